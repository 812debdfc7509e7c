"""Validation of uploads with Great Expectations on DuckDB, with row-level results.

>>> from cohort.validate import validate_relation, ValidationConfig, ValidationReport
"""

from cohort.validate.config import ConfigError, ValidationConfig
from cohort.validate.report import ValidationReport
from cohort.validate.run import validate_relation
from cohort.validate.suites import Rule, Suite, SuiteError, load_suites, suite_files

__all__ = [
    "validate_relation",
    "ValidationConfig",
    "ValidationReport",
    "ConfigError",
    "SuiteError",
    "Rule",
    "Suite",
    "load_suites",
    "suite_files",
]
