"""The exception hierarchy of cohort and the CLI exit codes.

Every error a user can fix is a :class:`UserError`: the CLI prints its message
on one line, without a traceback, and exits with its ``exit_code``. Messages
say what went wrong, where (file, row, column, table) and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CohortError",
    "UserError",
    "SchemaError",
    "MappingError",
    "ConfigError",
    "InputFileError",
    "ValidationFailed",
    "ModelSpecError",
    "DatabaseLockedError",
    "AlreadyLoadedError",
    "OrphanRowsError",
    "StudyNotFoundError",
    "ParameterError",
    "NoSuchBatchError",
    "ConvergenceWarning",
    "EmptyResultWarning",
    "EXIT_OK",
    "EXIT_ROWS_QUARANTINED",
    "EXIT_FATAL",
    "EXIT_USER_ERROR",
]

EXIT_OK = 0
EXIT_ROWS_QUARANTINED = 1
EXIT_FATAL = 2
EXIT_USER_ERROR = 3


class CohortError(Exception):
    """Base class of every error raised by cohort."""


class UserError(CohortError):
    """An error the user can fix; printed as one line by the CLI."""

    exit_code: int = EXIT_USER_ERROR


class SchemaError(UserError):
    """The study database has an unknown or incompatible schema."""


class MappingError(UserError):
    """A site mapping spec does not fit the file or the canonical table."""


class ConfigError(UserError):
    """A study setting (cohort.toml, COHORT_INPUT_ROOT) is not usable as given."""


class InputFileError(UserError):
    """A source file cannot be read as what it claims to be."""


class DatabaseLockedError(UserError):
    """Another process holds the study database."""


class AlreadyLoadedError(UserError):
    """The same load again: the same file (sha256) into the same table with the same mapping
    as a batch loaded, superseded or rolled back before (``--force`` loads it anew)."""


class OrphanRowsError(UserError):
    """A rollback would leave rows of other tables without their participants
    (``--force`` rolls back anyway)."""


class StudyNotFoundError(UserError):
    """No study database at the path given (nothing is created unless asked: ``create=True``,
    ``cohort load --create``); the message names the folder's studies, closest name first."""


class ParameterError(UserError):
    """A derivation parameter's value is not of its declared type, or not one the study
    knows (an event type, term, origin, ...); the message lists the allowed values."""


class NoSuchBatchError(UserError):
    """A batch id that is not among the study's uploads."""


class ValidationFailed(UserError):
    """A batch failed a fatal validation rule: nothing was promoted."""

    exit_code = EXIT_FATAL


class ModelSpecError(UserError):
    """A model formula, option or data column is not usable as given."""


class ConvergenceWarning(UserWarning):
    """A model fit did not converge or sits on a boundary; see ``.warnings``."""


class EmptyResultWarning(UserWarning):
    """A derivation returned no rows, or rows without a single event: check its parameters."""
