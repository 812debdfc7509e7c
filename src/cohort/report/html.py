"""A self-contained HTML report: sections of text, tables and embedded PNG plots."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from cohort.report.disclosure import NOT_FOR_RELEASE_TEXT

__all__ = ["HtmlReport"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:2em;color:#345}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eef2f6}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}img{max-width:100%}figcaption{font-size:.85em;color:#555}
.note{color:#555;font-size:.9em}
.not-for-release{background:#b00;color:#fff;font-weight:bold;padding:.6em 1em;font-size:1.2em}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return html.escape(str(value))


@dataclass
class HtmlReport:
    """Build a report section by section, then :meth:`write` it.

    Examples
    --------
    >>> import polars as pl, tempfile, pathlib
    >>> r = HtmlReport("Demo")
    >>> r.heading("Counts"); r.table(pl.DataFrame({"table": ["a"], "rows": [10]}))
    >>> r.write(pathlib.Path(tempfile.mkdtemp()) / "r.html").exists()
    True
    """

    title: str
    parts: list[str] = field(default_factory=list)
    #: True when disclosure control is off: a NOT FOR RELEASE banner tops the page.
    not_for_release: bool = False

    def heading(self, text: str) -> None:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")

    def text(self, text: str, *, note: bool = False) -> None:
        cls = ' class="note"' if note else ""
        self.parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def table(self, df: pl.DataFrame, *, max_rows: int = 60) -> None:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
        rows = "".join(
            "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
            for row in df.head(max_rows).iter_rows()
        )
        more = (f'<p class="note">{df.height - max_rows} more rows in the JSON.</p>'
                if df.height > max_rows else "")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}")

    def figure(self, fig: Any, caption: str) -> None:
        """Embed a matplotlib figure as a PNG (no external files, no network).

        ``savefig`` on a :class:`matplotlib.figure.Figure` needs no pyplot; the figures
        cohort builds are not registered with pyplot, so there is nothing to close.
        """
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        data = base64.b64encode(buf.getvalue()).decode("ascii")
        self.parts.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def render(self) -> str:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
        body = "\n".join(self.parts)
        banner = (f"<p class='not-for-release'>{html.escape(NOT_FOR_RELEASE_TEXT)}</p>"
                  if self.not_for_release else "")
        return (
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>{banner}"
            f"<h1>{html.escape(self.title)}</h1><p class='note'>Generated {stamp} by cohort.</p>"
            f"{body}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path
