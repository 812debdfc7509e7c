"""Reports for people: self-contained HTML with embedded plots, JSON beside it."""

from cohort.report.arguments import analysis_arguments
from cohort.report.disclosure import NOT_FOR_RELEASE, Disclosure, redact_count, redact_counts
from cohort.report.html import HtmlReport

__all__ = ["NOT_FOR_RELEASE", "Disclosure", "HtmlReport", "analysis_arguments", "redact_count",
           "redact_counts"]
