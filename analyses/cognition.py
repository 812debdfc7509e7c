"""Cognition over years of ketamine therapy: MoCA and DSST trajectories, reliable change.

Run it on a study database (for example the demo's):

    python analyses/cognition.py --db out/demo/study.duckdb --out out/analyses/cognition

It writes, into --out, report.html (self-contained, plots embedded) and results.json.
Counts pass disclosure control (cohort.report.disclosure: 1-7 redacted, others rounded
to 5, percentages from the released counts); model estimates are kept as fitted.
--no-disclosure-control turns the rules off and stamps every output NOT FOR RELEASE.

What it does, for each instrument (MoCA: 0-30, DSST: 0-133, higher is better):
  1. derive the repeated measures in long format (sql/derive/trajectories.sql): score,
     years since the first dose, cumulative ketamine dose (grams, sessions strictly before
     the visit), age at the first dose, sex;
  2. fit a linear mixed model, as lme4::lmer(score ~ years * cumulative_dose_g +
     age_at_first_dose + sex + (years | participant_id)), REML;
     the years:cumulative_dose_g interaction asks whether scores change faster over time
     in those exposed to more ketamine;
  3. plot the observed trajectories of a sample of participants with the fitted mean;
  4. classify each participant's change from baseline to the last visit (at least
     MIN_YEARS later) as reliable decline, improvement or no reliable change (reliable
     change index with practice-effect correction, Chelune 1993).
"""

from __future__ import annotations

import polars as pl

import cohort
from cohort import longitudinal as lg
from cohort.report import HtmlReport, analysis_arguments

FORMULA = "score ~ years * cumulative_dose_g + age_at_first_dose + sex"
RANDOM = "~years"          # random intercept and slope on years, correlated
MIN_YEARS = 1.0            # the follow-up score for reliable change: last visit >= 1 year on
# Test-retest reliability and practice effect (mean retest gain) per instrument. These are
# ASSUMPTIONS taken as typical published values: replace them with the values of the
# normative or control sample your study refers to.
RELIABLE_CHANGE = {
    "MoCA": {"reliability": 0.92, "practice_effect": 0.5},   # Nasreddine et al. 2005
    "DSST": {"reliability": 0.85, "practice_effect": 1.5},
}


def baseline_and_last(visits: pl.DataFrame) -> pl.DataFrame:
    """One row per participant: the baseline score and the score of the last visit at
    least MIN_YEARS after the first dose (participants without such a visit are left out)."""
    last = (visits.filter(pl.col("years") >= MIN_YEARS)
            .sort("participant_id", "years")
            .group_by("participant_id", maintain_order=True)
            .agg(follow_up=pl.col("score").last(), follow_up_years=pl.col("years").last(),
                 baseline=pl.col("baseline").first()))
    return last.drop_nulls(["baseline", "follow_up"])


def main() -> None:
    args = analysis_arguments(__doc__.split("\n")[0])
    release = args.disclosure

    with cohort.open(args.db, create=False, read_only=True) as study:
        visits = study.derive("trajectories", instruments=list(RELIABLE_CHANGE))

    r = HtmlReport("Cognition over years of ketamine therapy",
                   not_for_release=not release.enabled)
    r.text(f"Study: {args.db}. Linear mixed model per instrument: {FORMULA}, random "
           f"intercept and slope on years by participant (REML). {release.note()}", note=True)
    results: dict = {"analysis": "cognition", "database": str(args.db),
                     "formula": FORMULA, "random": RANDOM, "instruments": {}}

    for instrument, rc in RELIABLE_CHANGE.items():
        d = visits.filter(pl.col("instrument") == instrument)
        if d.height == 0:
            r.heading(instrument)
            r.text(f"No {instrument} assessments in this study.")
            results["instruments"][instrument] = None
            continue

        # -- the data ---------------------------------------------------------------------
        per_person = d.group_by("participant_id").agg(visits=pl.len(), years=pl.col("years").max())
        data_summary = release.counts(pl.DataFrame({
            "participants": [per_person.height], "assessments": [d.height],
            "median_visits": [float(per_person["visits"].median())],
            "median_years_followed": [float(per_person["years"].median())],
        }), ["participants", "assessments"])

        # -- the mixed model ----------------------------------------------------------------
        model = lg.lmm(d, FORMULA, groups="participant_id", random=RANDOM, reml=True)

        # -- reliable change from baseline to the last visit --------------------------------
        pairs = baseline_and_last(d)
        rci = lg.reliable_change(pairs, baseline="baseline", follow_up="follow_up",
                                 reliability=rc["reliability"],
                                 practice_effect=rc["practice_effect"], method="chelune")
        change = (rci.group_by("change").agg(n=pl.len()).sort("change")
                  .with_columns(pl.col("n").cast(pl.Int64)))
        # percentages of the released counts over their released total
        change = release.counts(change, ["n"]).with_columns(
            percent=100.0 * pl.col("n") / pl.col("n").sum())

        r.heading(f"{instrument}")
        r.table(data_summary)
        r.table(model.summary)
        r.table(model.variance_components)
        note = "" if model.converged and not model.singular else " (see warnings)"
        r.text(f"{release.count(model.nobs) or 'A few'} assessments of "
               f"{release.count(model.ngroups) or 'a few'} participants; engine "
               f"{model.engine}; converged {model.converged}, singular fit {model.singular}"
               f"{note}. years:cumulative_dose_g is the change in the yearly slope per gram "
               "of cumulative dose.", note=True)
        for w in model.warnings:
            r.text(f"Warning: {release.text(w)}", note=True)
        r.figure(lg.spaghetti(model, time="years", n_sample=30),
                 f"{instrument}: observed trajectories of 30 participants with the fitted "
                 "mean and its 95% CI (other covariates at their mean or most frequent value)")
        r.text(f"Reliable change (Chelune) from baseline to the last visit at least "
               f"{MIN_YEARS:g} year(s) later: reliability {rc['reliability']}, practice effect "
               f"{rc['practice_effect']} points (assumed values; see the script).", note=True)
        r.table(change)

        results["instruments"][instrument] = {
            "data": data_summary.to_dicts()[0],
            "lmm": {"summary": model.summary.to_dicts(),
                    "variance_components": model.variance_components.to_dicts(),
                    "converged": model.converged, "singular": model.singular,
                    "warnings": [release.text(w) for w in model.warnings], "engine": model.engine,
                    "loglik": model.loglik, "aic": model.aic, "bic": model.bic},
            "reliable_change": {**rc, "min_years": MIN_YEARS, "method": "chelune",
                                "summary": change.to_dicts()},
        }

    args.out.mkdir(parents=True, exist_ok=True)
    r.write(args.out / "report.html")
    release.write_json(results, args.out / "results.json")
    print(f"wrote {args.out / 'report.html'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
