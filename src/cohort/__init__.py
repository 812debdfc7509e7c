"""cohort: longitudinal cohort studies from site files to survival and mixed models.

The flat public API. The analysis subpackages (``cohort.survival``,
``cohort.longitudinal``, ``cohort.describe``, ...; see ``SUBMODULES``) are
reachable as attributes after ``import cohort``: each is imported on first use
(PEP 562), so ``import cohort`` stays fast.
"""

import importlib as _importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

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

#: Public submodules reachable as ``cohort.<name>``, imported on first access.
SUBMODULES = (
    "derive",
    "describe",
    "export",
    "ingest",
    "longitudinal",
    "report",
    "simulate",
    "survival",
    "validate",
)

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


def __getattr__(name: str) -> "ModuleType":
    """Import a public submodule on first access (``cohort.survival``) (PEP 562)."""
    if name in SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBMODULES))
