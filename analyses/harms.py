"""Harms of long-term ketamine: incidence by cumulative dose, and competing risks.

Run it on a study database (for example the demo's):

    python analyses/harms.py --db out/demo/study.duckdb --out out/analyses/harms

It writes, into --out, report.html (self-contained, plots embedded), results.json and
cif_<cause>.csv (the released cumulative-incidence tables the plots are drawn from).
Counts pass disclosure control (cohort.report.disclosure: 1-7 redacted, others rounded
to 5); rates are computed from the rounded counts and suppressed with them; curves are
computed from released counts. --no-disclosure-control turns the rules off and stamps
every output NOT FOR RELEASE.

What it does:
  1. incidence rates per 1000 person-years by band of cumulative ketamine dose
     (sql/derive/person_time.sql splits each participant's follow-up when the cumulative
     dose crosses 1, 2 and 5 g), with exact Poisson CIs and rate ratios against '<1 g':
     the first event of each outcome (an event type, death, or an adverse event named by
     its term: cystitis, hypertension); follow-up stops there (person_time with that
     event_type and term);
  2. competing risks of ketamine use disorder, death and withdrawal from the study
     (sql/derive/competing_risks.sql): cumulative incidence (Aalen-Johansen) by route,
     with Gray's test.
"""

from __future__ import annotations

import polars as pl

import cohort
from cohort.report import HtmlReport, analysis_arguments

DOSE_BANDS_G = [1.0, 2.0, 5.0]   # cut points of cumulative dose (grams)
REFERENCE_BAND = "<1 g"
# outcome label -> person_time parameters: an events.event_type (or 'death'), with a term
OUTCOMES = {
    "ketamine use disorder": {"event_type": "ketamine_use_disorder"},
    "non-prescribed ketamine use": {"event_type": "non_prescribed_use"},
    "cystitis": {"event_type": "adverse_event", "term": "cystitis"},
    "hypertension": {"event_type": "adverse_event", "term": "hypertension"},
    "death": {"event_type": "death"},
}
CAUSES = ["ketamine_use_disorder", "death", "withdrawal"]   # competing causes, coded 1, 2, 3
YEARS = [1.0, 2.0, 3.0, 4.0]
GRID_YEARS = 1 / 12        # released curves are computed on a monthly time grid


def main() -> None:
    args = analysis_arguments(__doc__.split("\n")[0])
    release = args.disclosure

    with cohort.open(args.db, create=False, read_only=True) as study:
        person_time = {label: study.derive("person_time", dose_bands_g=DOSE_BANDS_G, **o)
                       for label, o in OUTCOMES.items()}
        competing = study.derive("competing_risks", causes=CAUSES)

    band_order = (pl.concat([pt.select("exposure_band", "exposure_level")
                             for pt in person_time.values()]).unique()
                  .sort("exposure_level")["exposure_band"].to_list())

    # -- 1. incidence rates by cumulative-dose band ------------------------------------------
    rate_tables = {}
    for label in OUTCOMES:
        pt = person_time[label].group_by("exposure_band").agg(
            pl.col("events").sum(), pl.col("person_years").sum())
        reference = REFERENCE_BAND if REFERENCE_BAND in pt["exposure_band"].to_list() else None
        # rates from the released counts, as OpenSAFELY does: a rate of the raw count
        # times the person-years shown would give the raw count back
        table = release.rates(pt, events="events", person_time="person_years",
                              by="exposure_band", reference=reference)
        order = {b: i for i, b in enumerate(band_order)}
        table = (table.with_columns(order=pl.col("exposure_band").replace_strict(
                     order, default=len(order)))
                 .sort("order").drop("order"))
        rate_tables[label] = table

    # -- 2. competing risks ---------------------------------------------------------------------
    cause_counts = release.counts(
        competing.group_by("cause", "cause_name").agg(n=pl.len()).sort("cause"), ["n"])
    cif = {}
    for code, name in enumerate(CAUSES, start=1):
        cif[name] = release.cumulative_incidence(competing, time="time_years", event="cause",
                                                 cause=code, by="route", grid=GRID_YEARS)

    # -- report ------------------------------------------------------------------------------
    r = HtmlReport("Harms of long-term ketamine: incidence by cumulative dose, competing risks",
                   not_for_release=not release.enabled)
    r.text(f"Study: {args.db}. {release.note()} Rates based on a suppressed count are not "
           "shown.", note=True)
    r.heading("Incidence per 1000 person-years by cumulative ketamine dose")
    r.text(f"Rate ratios against '{REFERENCE_BAND}' (exact conditional Poisson test); rates, "
           "CIs and ratios are computed from the rounded counts; each outcome's first event "
           "ends its follow-up.", note=True)
    for label, table in rate_tables.items():
        r.text(label)
        r.table(table)

    r.heading("Competing risks: ketamine use disorder, death, withdrawal")
    r.table(cause_counts)
    for name, ci in cif.items():
        r.figure(ci.plot(at_risk=False, xlabel="years since the first session",
                         ylabel=f"Cumulative incidence of {name}"),
                 f"Cumulative incidence of {name} by route (Aalen-Johansen, 95% CIs), "
                 "with the other causes competing")
        r.table(ci.at(YEARS).select("group", "time", "estimate", "conf_low", "conf_high"))
    gray = next(iter(cif.values())).tests   # Gray's test of every cause (the same for each fit)
    if gray is not None:
        r.text("Gray's test of equal cumulative incidence across routes, per cause code "
               f"(1..{len(CAUSES)} = {', '.join(CAUSES)}):", note=True)
        r.table(gray)

    args.out.mkdir(parents=True, exist_ok=True)
    r.write(args.out / "report.html")
    for name, ci in cif.items():
        release.write_csv(ci.summary, args.out / f"cif_{name}.csv")
    results = {
        "analysis": "harms",
        "database": str(args.db),
        "dose_bands_g": DOSE_BANDS_G,
        "incidence": {label: t.to_dicts() for label, t in rate_tables.items()},
        "competing_risks": {
            "causes": CAUSES,
            "counts": cause_counts.to_dicts(),
            "participants": release.count(competing.height),
            "grid_years": GRID_YEARS,
            "cumulative_incidence": {
                name: {"at_years": ci.at(YEARS).select("group", "time", "estimate", "conf_low",
                                                       "conf_high").to_dicts(),
                       "gray_test": None if ci.tests is None else ci.tests.to_dicts(),
                       "curve": ci.summary.to_dicts()}
                for name, ci in cif.items()},
        },
    }
    release.write_json(results, args.out / "results.json")
    print(f"wrote {args.out / 'report.html'} and {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
