"""The result of validating one batch: findings, summary, status, JSON and HTML."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["ValidationReport", "FINDINGS_SCHEMA", "SUMMARY_SCHEMA", "empty_findings"]

FINDINGS_SCHEMA: dict[str, pl.DataType] = {
    "source_line": pl.Int64(),
    "participant_id": pl.String(),
    "column_name": pl.String(),
    "value": pl.String(),
    "rule": pl.String(),
    "severity": pl.String(),
    "message": pl.String(),
}
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(),
    "severity": pl.String(),
    "expectation_type": pl.String(),
    "column": pl.String(),
    "n_failing": pl.Int64(),
    "examples": pl.List(pl.String()),
    "suite_file": pl.String(),
    "message": pl.String(),
}
_SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2}


def empty_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


@dataclass(frozen=True)
class ValidationReport:
    """What validating one batch found.

    Attributes
    ----------
    table, relation
        The canonical table and the relation (e.g. ``staging.batch_7``) checked.
    n_rows
        Rows in the relation.
    findings
        One row per failing row and rule: source_line, participant_id,
        column_name, value (text), rule, severity, message. Batch-level
        findings have a null source_line.
    summary
        One row per rule run: rule, severity, expectation_type, column,
        n_failing, examples (a few failing values), suite_file, message.
    fatal_reasons
        Why nothing may be promoted; empty when the batch may load.
    gx_results
        GX's own validation result (JSON dict), for reference.
    """

    table: str
    relation: str
    n_rows: int
    findings: pl.DataFrame
    summary: pl.DataFrame
    fatal_reasons: tuple[str, ...]
    gx_results: Mapping[str, Any] = field(repr=False)
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)
    elapsed_s: float = 0.0
    warnings: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``"fatal"``, ``"errors"``, ``"warnings"`` or ``"pass"``."""
        if self.fatal_reasons:
            return "fatal"
        severities = set(self.findings.get_column("severity").unique().to_list())
        if "error" in severities or "fatal" in severities:
            return "errors"
        if "warning" in severities:
            return "warnings"
        return "pass"

    @property
    def exit_code(self) -> int:
        """0 pass/warnings, 1 errors (rows quarantined), 2 fatal."""
        return {"pass": 0, "warnings": 0, "errors": 1, "fatal": 2}[self.status]

    @property
    def rows_to_quarantine(self) -> list[int]:
        """Sorted unique source lines with at least one error finding."""
        return (
            self.findings.filter(
                (pl.col("severity") == "error") & pl.col("source_line").is_not_null()
            )
            .get_column("source_line").unique().sort().to_list()
        )

    @property
    def rows_warned(self) -> list[int]:
        """Sorted unique source lines with a warning and no error finding."""
        bad = set(self.rows_to_quarantine)
        lines = (
            self.findings.filter(
                (pl.col("severity") == "warning") & pl.col("source_line").is_not_null()
            )
            .get_column("source_line").unique().sort().to_list()
        )
        return [s for s in lines if s not in bad]

    def failing_summary(self) -> pl.DataFrame:
        """The summary rows of rules that found something."""
        return self.summary.filter(pl.col("n_failing") > 0)

    def to_dict(self, *, max_findings: int | None = None) -> dict[str, Any]:
        """Plain, JSON-serialisable data (all findings unless ``max_findings``)."""
        findings = self.findings if max_findings is None else self.findings.head(max_findings)
        return {
            "table": self.table,
            "relation": self.relation,
            "status": self.status,
            "n_rows": self.n_rows,
            "n_findings": self.findings.height,
            "n_rows_to_quarantine": len(self.rows_to_quarantine),
            "fatal_reasons": list(self.fatal_reasons),
            "warnings": list(self.warnings),
            "elapsed_s": round(self.elapsed_s, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "config": dict(self.config),
            "summary": self.summary.to_dicts(),
            "findings": findings.to_dicts(),
        }

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` (with the raw GX results) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        data["gx_results"] = self.gx_results
        path.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        return path

    def write_data_docs(self, folder: str | Path, *, max_rows_per_rule: int = 50) -> Path:
        """Write the validation as HTML: GX's own Data Docs page and cohort's page.

        ``gx_<relation>.html`` is GX's Data Docs rendering of the validation result
        (its page renderer; styles load from GX's CDN). ``validation_<relation>.html``
        (returned) is self-contained and adds cohort's row-level findings.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"gx_{_slug(self.relation)}.html").write_text(
            _render_gx_data_docs(self.gx_results), encoding="utf-8")
        path = folder / f"validation_{_slug(self.relation)}.html"
        path.write_text(_render_html(self, max_rows_per_rule), encoding="utf-8")
        return path


def _render_gx_data_docs(gx_results: Mapping[str, Any]) -> str:
    """GX's Data Docs page for one validation result (no file-backed context needed)."""
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    result = ExpectationSuiteValidationResultSchema().load(dict(gx_results))
    return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(result))


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.fatal{background:#f8d0d0}.error{background:#fde2c8}
.warning{background:#fff5c2}.pass{background:#dff3df}code{font-size:.85em}
details{margin:.3em 0}
"""


def _render_html(report: ValidationReport, max_rows: int) -> str:
    e = html.escape
    status = report.status
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Validation of {e(report.relation)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Validation of <code>{e(report.relation)}</code> ({e(report.table)})</h1>",
        f"<p class='{e(status if status != 'errors' else 'error')}'><b>Status: {e(status)}</b>: "
        f"{report.n_rows} rows, {len(report.rows_to_quarantine)} to quarantine, "
        f"{len(report.rows_warned)} with warnings only.</p>",
    ]
    if report.fatal_reasons:
        out.append("<h2>Fatal</h2><ul>" + "".join(
            f"<li>{e(r)}</li>" for r in report.fatal_reasons) + "</ul>")
    out.append("<h2>Rules</h2><table><tr><th>rule</th><th>severity</th><th>expectation</th>"
               "<th>column</th><th>failing</th><th>examples</th><th>message</th></tr>")
    for row in report.summary.iter_rows(named=True):
        cls = row["severity"] if row["n_failing"] else "pass"
        out.append(
            f"<tr class='{cls}'><td><code>{e(row['rule'])}</code></td><td>{e(row['severity'])}</td>"
            f"<td>{e(row['expectation_type'] or '')}</td><td>{e(row['column'] or '')}</td>"
            f"<td>{row['n_failing']}</td><td>{e(', '.join(row['examples'] or []))}</td>"
            f"<td>{e(row['message'] or '')}</td></tr>")
    out.append("</table><h2>Failing rows</h2>")
    for rule, group in report.findings.group_by("rule", maintain_order=True):
        rule_name = rule[0] if isinstance(rule, tuple) else rule
        out.append(f"<details><summary><code>{e(str(rule_name))}</code>: {group.height} rows"
                   f"</summary><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in
                   ("source_line", "participant_id", "column_name", "value")) + "</tr>")
        for r in group.head(max_rows).iter_rows(named=True):
            out.append("<tr>" + "".join(f"<td>{e('' if r[c] is None else str(r[c]))}</td>" for c in
                       ("source_line", "participant_id", "column_name", "value")) + "</tr>")
        if group.height > max_rows:
            out.append(f"<tr><td colspan='4'>... {group.height - max_rows} more in the JSON report"
                       "</td></tr>")
        out.append("</table></details>")
    out.append("<h2>Great Expectations results</h2>")
    for res in report.gx_results.get("results", []):
        cfg = res.get("expectation_config", {})
        ok = "pass" if res.get("success") else (cfg.get("meta", {}).get("severity", "error"))
        out.append(f"<details class='{e(str(ok))}'><summary>{e(cfg.get('type', ''))} "
                   f"<code>{e(str(cfg.get('meta', {}).get('rule', '')))}</code>: "
                   f"{'success' if res.get('success') else 'failed'}</summary><pre>"
                   f"{e(json.dumps({'kwargs': cfg.get('kwargs'), 'result': res.get('result')}, indent=1, default=str))}"
                   "</pre></details>")
    out.append("</body></html>")
    return "\n".join(out)
