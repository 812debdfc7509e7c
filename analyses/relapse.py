"""Relapse after ketamine therapy: time to first relapse and recurrent relapses.

Run it on a study database (for example the demo's):

    python analyses/relapse.py --db out/demo/study.duckdb --out out/analyses/relapse

It writes, into --out:
    report.html   a self-contained report (tables and plots embedded) for people;
    results.json  the same numbers for machines.
    km_relapse.csv  the released Kaplan-Meier table the plot is drawn from.
Counts in all of them pass disclosure control (cohort.report.disclosure: 1-7 redacted,
others rounded to 5; curves, percentages and the log-rank table computed from the
released counts) so the outputs may leave the study; model estimates are not counts and
are kept as fitted. --no-disclosure-control turns the rules off and stamps every output
NOT FOR RELEASE.

What it does, step by step (each step is a few lines below; copy and adapt freely):
  1. derive the time to first relapse (sql/derive/time_to_event.sql) and the recurrent
     relapse episodes (sql/derive/recurrent_episodes.sql) from the study database;
  2. describe the cohort: participant flow, Table 1 by route, follow-up;
  3. Kaplan-Meier curves of relapse-free survival by route, with the log-rank test;
  4. Cox model of the first relapse, its proportional-hazards test and a forest plot;
  5. Andersen-Gill model of all relapses (recurrent events) with robust (sandwich) SEs.
"""

from __future__ import annotations

import polars as pl

import cohort
from cohort import survival as sv
from cohort.describe import attrition, follow_up_summary, table1
from cohort.report import HtmlReport, analysis_arguments

# The covariates of both models. treatment(x, reference=...) picks the reference level.
COVARIATES = [
    "age_per_10y",                                   # age at the first session, per 10 years
    "treatment(sex, reference='female')",
    "treatment(diagnosis, reference='MDD')",
    "treatment(route, reference='intranasal')",
    "prior_episodes",                                # depressive episodes before enrolment
    "concomitant_antidepressant",                    # 0/1 at baseline
]
# Times (years since the first session) at which survival and numbers at risk are shown.
YEARS = [1.0, 2.0, 3.0, 4.0]
# Released curves are computed on this time grid (years): a month.
GRID_YEARS = 1 / 12


def main() -> None:
    args = analysis_arguments(__doc__.split("\n")[0])
    release = args.disclosure

    # -- 1. data --------------------------------------------------------------------------
    # read_only: an analysis never changes the study.
    with cohort.open(args.db, create=False, read_only=True) as study:
        participants = study.table("participants")
        sessions = study.table("treatment_sessions")
        tte = study.derive("time_to_event", event_type="relapse")          # one row per participant
        episodes = study.derive("recurrent_episodes", event_type="relapse")  # one row per episode

    def model_columns(df: pl.DataFrame) -> pl.DataFrame:
        """Covariates as the models use them (numbers, not booleans)."""
        return df.with_columns(
            age_per_10y=pl.col("age_at_origin") / 10,
            concomitant_antidepressant=pl.col("concomitant_antidepressant").cast(pl.Int8),
        )

    # Follow-up must go past the first session (an event on day 0 cannot be analysed).
    analysed = model_columns(tte.filter(pl.col("time_days") > 0))
    episodes = model_columns(episodes)

    # -- 2. describe the cohort -------------------------------------------------------------
    flow = attrition(
        {"enrolled": participants, "with a treatment session": sessions,
         "with follow-up after the first session": analysed},
        reasons={"with a treatment session": "no session recorded",
                 "with follow-up after the first session": "follow-up ended on the first day"},
    )
    flow = release.apply(flow)
    baseline = table1(
        analysed, by="route",
        variables=["age_at_origin", "sex", "diagnosis", "prior_episodes",
                   "concomitant_antidepressant", "baseline_weight_kg", "site_id"],
        nonnormal=["prior_episodes"], test=True,
    )
    baseline = release.apply(baseline)
    follow = release.apply(follow_up_summary(analysed, time="time_years", event="event"))

    # -- 3. Kaplan-Meier by route and log-rank test -------------------------------------------
    # the curves are computed from released counts (rounded risk sets and event counts on
    # a monthly grid, small steps merged): the plot, the tables and the JSON show the same
    km = release.kaplan_meier(analysed, time="time_years", event="event", by="route",
                              grid=GRID_YEARS)
    lr = sv.logrank(analysed, time="time_years", event="event", by="route")
    at_years = release.counts(km.at(YEARS), ["n_risk"])
    lr_table = release.logrank_table(lr)

    # -- 4. Cox model of the first relapse -------------------------------------------------
    formula = " + ".join(COVARIATES)
    cox = sv.cox(analysed, formula, time="time_years", event="event")
    ph = cox.check_proportional_hazards()   # Schoenfeld-residual test per term, as R's cox.zph

    # -- 5. Andersen-Gill: every relapse, follow-up goes on after each one --------------------
    # (start, stop] intervals in years since the first session; cluster= gives robust SEs
    # that account for the several episodes of one participant.
    ag = sv.cox(episodes, formula, start="start_years", time="stop_years", event="event",
                cluster="participant_id")

    # -- report ------------------------------------------------------------------------------
    r = HtmlReport("Relapse after ketamine therapy", not_for_release=not release.enabled)
    r.text(f"Study: {args.db}. {release.note()}", note=True)
    for w in baseline.warnings + follow.warnings + flow.warnings:
        r.text(f"Note: {w}", note=True)

    r.heading("Participants")
    r.table(flow.summary)
    r.figure(flow.plot(), "Participant flow")

    r.heading("Baseline characteristics by route of the first session")
    r.table(baseline.summary)
    r.text("mean (SD), median [IQR] or n (%); smd: absolute standardised mean difference "
           "(Austin 2009); p: ANOVA, Kruskal-Wallis or chi-square.", note=True)

    r.heading("Follow-up")
    r.table(follow.summary)
    r.text("Median follow-up by the reverse Kaplan-Meier method; person-years to the first "
           "relapse or censoring.", note=True)
    r.table(follow.censoring)

    r.heading("Time to first relapse by route")
    r.figure(km.plot(at_risk=False, xlabel="years since the first session",
                     ylabel="Relapse-free survival"),
             "Kaplan-Meier estimate of relapse-free survival by route, with 95% CIs")
    r.table(km.median())
    r.table(at_years)
    r.text(f"Log-rank test: chi-square {lr.statistic:.2f} on {lr.df} df, p = {lr.p_value:.3g}.")
    r.table(lr_table)

    r.heading("Cox model of the first relapse (Efron ties)")
    r.table(cox.summary)
    r.figure(cox.plot(title="Hazard ratios of first relapse"), "Hazard ratios with 95% CIs")
    r.text(f"Concordance {cox.concordance:.3f}. Proportional hazards (Schoenfeld residuals, "
           f"KM-transformed time):", note=True)
    r.table(ph)

    r.heading("All relapses: Andersen-Gill model with robust SEs")
    r.table(ag.summary)
    r.figure(ag.plot(title="Rate ratios of relapse (Andersen-Gill)"),
             "Andersen-Gill hazard ratios with robust 95% CIs")
    r.text("Each participant contributes (start, stop] intervals between relapses; the robust "
           "(sandwich) variance clusters on the participant.", note=True)

    args.out.mkdir(parents=True, exist_ok=True)
    r.write(args.out / "report.html")
    release.write_csv(km.summary, args.out / "km_relapse.csv")

    def model(fit: sv.CoxFit) -> dict:
        n = fit.n_clusters if fit.n_clusters else fit.n
        return {"formula": fit.formula, "converged": fit.converged, "warnings": [release.text(w) for w in fit.warnings],
                "participants": release.count(n),
                "events": release.count(fit.n_events),
                "concordance": fit.concordance, "summary": fit.summary.to_dicts()}

    results = {
        "analysis": "relapse",
        "database": str(args.db),
        "attrition": flow.to_dict(),
        "table1": baseline.to_dict(),
        "follow_up": follow.to_dict(),
        "kaplan_meier": {"grid_years": GRID_YEARS, "median": km.median().to_dicts(),
                         "at_years": at_years.to_dicts(), "curve": km.summary.to_dicts()},
        "logrank": {"statistic": lr.statistic, "df": lr.df, "p_value": lr.p_value,
                    "groups": lr_table.to_dicts()},
        "cox": {**model(cox), "proportional_hazards": ph.to_dicts()},
        "andersen_gill": model(ag),
    }
    release.write_json(results, args.out / "results.json")
    print(f"wrote {args.out / 'report.html'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
