"""cohort: longitudinal cohort studies from site files to survival and mixed models.

The flat public API; analysis subpackages are ``cohort.survival`` and
``cohort.longitudinal`` (import them by name).
"""

from cohort.errors import (
    CohortError,
    ConvergenceWarning,
    EmptyResultWarning,
    MappingError,
    ModelSpecError,
    ParameterError,
    SchemaError,
    StudyNotFoundError,
    UserError,
    ValidationFailed,
)
from cohort.study import SCHEMA_VERSION, Study, open_study

open = open_study  # noqa: A001 - `cohort.open(path)` is the documented entry point

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CohortError",
    "ConvergenceWarning",
    "MappingError",
    "ModelSpecError",
    "EmptyResultWarning",
    "ParameterError",
    "SchemaError",
    "StudyNotFoundError",
    "Study",
    "UserError",
    "ValidationFailed",
    "open",
    "open_study",
    "__version__",
]
