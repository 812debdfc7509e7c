"""Library plots leave no global matplotlib state: no backend switch, no figure registered with pyplot.

Each plot is built in a fresh interpreter whose backend is ``template`` (headless, and not Agg,
so a library that forces Agg is caught); the report embeds a Figure built without pyplot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    import numpy as np
    import polars as pl
    from matplotlib.figure import Figure

    import cohort
    from cohort import describe, longitudinal as lg, survival as sv
    from cohort.report.html import HtmlReport

    rng = np.random.default_rng(3)
    n = 120
    df = pl.DataFrame({
        "participant_id": np.arange(n),
        "t": rng.exponential(5.0, n),
        "e": rng.integers(0, 2, n),
        "cause": rng.integers(0, 3, n),
        "x": rng.normal(size=n),
        "arm": rng.choice(["a", "b"], n),
    })
    m = lg.lmm(lg.example_data(), "y ~ time + x", groups="subject", random="~time")
    g = lg.gee(lg.example_data(), "y ~ time + x", groups="subject")
    figures = {
        "kaplan_meier": sv.kaplan_meier(df, time="t", event="e", by="arm").plot(),
        "kaplan_meier (no at-risk table)": sv.kaplan_meier(df, time="t", event="e").plot(at_risk=False),
        "cumulative_incidence": sv.cumulative_incidence(df, time="t", event="cause").plot(),
        "cox forest": sv.cox(df, "x + arm", time="t", event="e").plot(),
        "fine_gray forest": sv.fine_gray(df, "x", time="t", event="cause").plot(),
        "lmm caterpillar": m.plot(),
        "spaghetti": lg.spaghetti(m, time="time", n_sample=5),
        "gee forest": g.plot(),
        "table1 love plot": describe.table1(df, by="arm", variables=["x", "t"]).plot(),
        "attrition": describe.attrition([("all", df), ("events", df.filter(pl.col("e") == 1))]).plot(),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure), (name, type(fig))

    own = Figure()
    ax = own.subplots()
    assert lg.spaghetti(m, time="time", n_sample=5, ax=ax) is own
    assert describe.table1(df, by="arm", variables=["x"]).plot(ax=ax) is own

    report = HtmlReport("figures")
    report.figure(figures["kaplan_meier"], "KM")
    assert "data:image/png;base64,iVBOR" in report.render()

    import matplotlib
    import matplotlib.pyplot as plt

    print(matplotlib.get_backend(), plt.get_fignums())
""")


def test_plots_keep_the_backend_and_register_no_figure_with_pyplot():
    env = {**os.environ, "MPLBACKEND": "template"}
    run = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300,
                         env=env, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "template []"
