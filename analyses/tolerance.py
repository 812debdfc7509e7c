"""Tolerance to ketamine: the dose per kg over time and time to a >= 25% dose escalation.

Run it on a study database (for example the demo's):

    python analyses/tolerance.py --db out/demo/study.duckdb --out out/analyses/tolerance

It writes, into --out, report.html (self-contained, plots embedded), results.json and
km_escalation.csv (the released Kaplan-Meier table the plot is drawn from).
Counts pass disclosure control (cohort.report.disclosure: 1-7 redacted, others rounded
to 5; the curve is computed from released counts); model estimates are kept as fitted.
--no-disclosure-control turns the rules off and stamps every output NOT FOR RELEASE.

Tolerance, as the study defines it: a rise of >= 25% in the dose per kg a participant
needs. Two views of it:
  1. the trajectory: mean dose per kg per participant and quarter (3 months) since the
     first session, modelled with a linear mixed model, as
     lme4::lmer(dose_mg_per_kg ~ years * route + (years | participant_id)):
     `years` is the yearly change of the dose per kg on the reference route, and
     `years:route[...]` how much faster or slower it changes on the other route;
  2. the event: time from the first session to the first session whose dose per kg is at
     least 25% above the participant's baseline (the mean of the first BASELINE_SESSIONS
     sessions), censored at the last session; Kaplan-Meier by route with the log-rank test.
"""

from __future__ import annotations

import polars as pl

import cohort
from cohort import longitudinal as lg
from cohort import survival as sv
from cohort.report import HtmlReport, analysis_arguments

ESCALATION = 0.25          # a rise of >= 25% over baseline counts as escalation
BASELINE_SESSIONS = 3      # baseline dose per kg: the mean of the first 3 sessions
PERIOD_YEARS = 0.25        # the trajectory averages the dose per kg over quarters
FORMULA = "dose_mg_per_kg ~ years * route"
YEARS = [1.0, 2.0, 3.0]    # times at which the proportion escalated is tabulated
GRID_YEARS = 1 / 12        # released curves are computed on a monthly time grid


def main() -> None:
    args = analysis_arguments(__doc__.split("\n")[0])
    release = args.disclosure

    with cohort.open(args.db, create=False, read_only=True) as study:
        sessions = study.table("treatment_sessions")
        # follow_up: one row per participant with the first session (origin), its route,
        # age and sex
        people = study.derive("follow_up").select(
            "participant_id", "origin_date", "route", "sex", "age_at_origin")

    # Sessions without a weight have no dose per kg: left out here, and counted in the report.
    no_weight = sessions.filter(pl.col("dose_mg_per_kg").is_null()).height
    sessions = (sessions.filter(pl.col("dose_mg_per_kg").is_not_null())
                .join(people, on="participant_id", how="inner")
                .with_columns(years=(pl.col("session_date") - pl.col("origin_date"))
                              .dt.total_days() / 365.25)
                .filter(pl.col("years") >= 0))

    # -- 1. the trajectory of the dose per kg ----------------------------------------------
    quarterly = (sessions
                 .with_columns(period=(pl.col("years") / PERIOD_YEARS).floor())
                 .group_by("participant_id", "route", "period")
                 .agg(dose_mg_per_kg=pl.col("dose_mg_per_kg").mean(), sessions=pl.len())
                 .with_columns(years=(pl.col("period") + 0.5) * PERIOD_YEARS)
                 .sort("participant_id", "period"))
    model = lg.lmm(quarterly, FORMULA, groups="participant_id", random="~years", reml=True)

    # -- 2. time to the first >= 25% escalation ---------------------------------------------
    escalation = lg.dose_escalation(sessions, participant="participant_id", time="session_date",
                                    dose="dose_mg_per_kg", threshold=ESCALATION,
                                    baseline_sessions=BASELINE_SESSIONS)
    escalation = escalation.join(people.select("participant_id", "route"), on="participant_id",
                                 how="left").with_columns(
        years=pl.col("time") / 365.25, escalated=pl.col("event").cast(pl.Int8))
    km = release.kaplan_meier(escalation, time="years", event="escalated", by="route",
                              grid=GRID_YEARS)
    lr = sv.logrank(escalation, time="years", event="escalated", by="route")
    # proportion escalated by each time = 1 - Kaplan-Meier "survival" (free of escalation)
    at_years = (km.at(YEARS)
                .with_columns(n_risk=pl.col("n_risk").cast(pl.Int64),
                              escalated=1 - pl.col("survival"),
                              escalated_low=1 - pl.col("conf_high"),
                              escalated_high=1 - pl.col("conf_low"))
                .select("group", "time", "n_risk", "escalated", "escalated_low", "escalated_high"))
    at_years = release.counts(at_years, ["n_risk"])
    counts = release.counts(
        escalation.group_by("route").agg(participants=pl.len(),
                                         escalated=pl.col("escalated").sum().cast(pl.Int64))
        .with_columns(pl.col("participants").cast(pl.Int64)).sort("route"),
        ["participants", "escalated"])

    # -- report ------------------------------------------------------------------------------
    r = HtmlReport("Tolerance: dose per kg over time and dose escalation",
                   not_for_release=not release.enabled)
    r.text(f"Study: {args.db}. {release.note()}", note=True)
    if no_weight:
        r.text(f"{release.count(no_weight) or 'A few'} session(s) without a weight "
               "have no dose per kg and are left out.", note=True)

    r.heading("Dose per kg over time")
    r.text(f"Mean dose per kg per participant and {PERIOD_YEARS:g}-year period since the first "
           f"session; linear mixed model {FORMULA}, random intercept and slope on years "
           "(REML).", note=True)
    r.table(model.summary)
    r.table(model.variance_components)
    for w in model.warnings:
        r.text(f"Warning: {release.text(w)}", note=True)
    r.figure(lg.spaghetti(model, time="years", n_sample=30),
             "Dose per kg (mg/kg) of 30 participants with the fitted mean trajectory and its 95% "
             "CI (route at its most frequent value)")

    r.heading(f"Time to the first dose escalation of {ESCALATION:.0%} or more")
    r.text(f"Baseline: mean dose per kg of the first {BASELINE_SESSIONS} sessions; censored at "
           "the last session.", note=True)
    r.table(counts)
    r.figure(km.plot(at_risk=False, xlabel="years since the first session",
                     ylabel="Proportion without escalation"),
             "Kaplan-Meier estimate of remaining free of dose escalation, by route, with 95% CIs")
    r.table(at_years)
    r.text(f"Log-rank test: chi-square {lr.statistic:.2f} on {lr.df} df, p = {lr.p_value:.3g}.")

    args.out.mkdir(parents=True, exist_ok=True)
    r.write(args.out / "report.html")
    release.write_csv(km.summary, args.out / "km_escalation.csv")
    results = {
        "analysis": "tolerance",
        "database": str(args.db),
        "parameters": {"escalation": ESCALATION, "baseline_sessions": BASELINE_SESSIONS,
                       "period_years": PERIOD_YEARS},
        "sessions_without_weight": release.count(no_weight),
        "dose_trajectory": {"formula": FORMULA, "random": "~years",
                            "summary": model.summary.to_dicts(),
                            "variance_components": model.variance_components.to_dicts(),
                            "converged": model.converged, "singular": model.singular,
                            "warnings": [release.text(w) for w in model.warnings],
                            "observations": release.count(model.nobs),
                            "participants": release.count(model.ngroups)},
        "escalation": {"counts": counts.to_dicts(), "median": km.median().to_dicts(),
                       "at_years": at_years.to_dicts(), "grid_years": GRID_YEARS,
                       "curve": km.summary.to_dicts(),
                       "logrank": {"statistic": lr.statistic, "df": lr.df, "p_value": lr.p_value}},
    }
    release.write_json(results, args.out / "results.json")
    print(f"wrote {args.out / 'report.html'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
