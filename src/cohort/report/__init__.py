"""Reports for people: self-contained HTML with embedded plots, JSON beside it."""

from cohort.report.arguments import analysis_arguments
from cohort.report.disclosure import redact_count, redact_counts
from cohort.report.html import HtmlReport

__all__ = ["HtmlReport", "analysis_arguments", "redact_count", "redact_counts"]
