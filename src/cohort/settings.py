"""A study's settings: ``cohort.toml`` beside its database, read once and checked.

Every key is checked against :data:`SCHEMA`: an unknown key (with the closest known
one), a wrong type or an impossible value is one line naming the file, the key and what
is expected (:class:`cohort.errors.ConfigError`)::

    [database]
    memory_limit = "4GB"      # DuckDB's memory bound (it spills to .study.tmp/ beyond it)
    threads = 2
    [load]
    input_root = "inbox"      # loads only from inside this folder (relative: to the study's)
    [validation]
    fatal_error_fraction = 0.1
    [study]
    timezone = "Europe/Oslo"  # time-zone-aware timestamps are read as dates here

An administrator's ``COHORT_INPUT_ROOT`` (an absolute folder) can only be narrowed by a
study: ``[load] input_root`` must then lie inside it (:meth:`Settings.input_root_in`).

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> load_settings(folder).timezone
'UTC'
>>> _ = (folder / "cohort.toml").write_text('[database]\\nthreads = "two"\\n')
>>> load_settings(folder)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
cohort.errors.ConfigError: .../cohort.toml: [database] threads: expected a whole number >= 1, got "two"
"""

from __future__ import annotations

import os
import re
import tomllib
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohort.errors import ConfigError
from cohort.tomlcheck import At, Key, check_table, shown, text, whole_number
from cohort.validate.config import VALIDATION_KEYS, ValidationConfig

__all__ = [
    "DEFAULT_MEMORY_LIMIT", "DEFAULT_TIMEZONE", "INPUT_ROOT_VARIABLE", "SCHEMA", "SETTINGS_FILE",
    "Settings", "load_settings", "study_timezone",
]

#: the settings file beside a study's database
SETTINGS_FILE = "cohort.toml"
#: DuckDB memory bound of a study connection unless cohort.toml says otherwise
DEFAULT_MEMORY_LIMIT = "2GB"
#: the study's time zone unless cohort.toml says otherwise (``[study] timezone``)
DEFAULT_TIMEZONE = "UTC"
#: the environment variable of the administrator's input folder
INPUT_ROOT_VARIABLE = "COHORT_INPUT_ROOT"

_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_MEMORY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*|%)\s*", re.IGNORECASE)
#: below this DuckDB cannot run the loader's queries
_MEMORY_FLOOR = 64 * 2**20


def _memory_limit(value: Any, at: At) -> str:
    """A size with its unit ("2GB", "512MiB") of at least 64MiB, or a share of RAM ("50%")."""
    expected = 'expected a size with its unit of at least 64MB ("2GB", "512MB") or a share of RAM ("50%")'
    match = _MEMORY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        at.fail(f"{expected}, got {shown(value)}")
    amount, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        fits = 0 < amount <= 100
    else:
        fits = unit in _UNITS and amount * _UNITS[unit] >= _MEMORY_FLOOR
    if not fits:
        at.fail(f"{expected}, got {shown(value)}")
    return value.strip()


def _time_zone(value: Any, at: At) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, TypeError, ValueError, OSError):
        at.fail(f'expected an IANA time zone name ("UTC", "Europe/Oslo"), got {shown(value)}')
    return value


#: every key of cohort.toml
SCHEMA: dict[str, Any] = {
    "database": {
        "memory_limit": Key(_memory_limit, f"DuckDB's memory bound (default {DEFAULT_MEMORY_LIMIT})"),
        "threads": Key(whole_number(1), "DuckDB threads (default: one per core)"),
    },
    "load": {
        "input_root": Key(text, "loads only from inside this folder (relative: to the study's)"),
    },
    "validation": VALIDATION_KEYS,
    "study": {
        "timezone": Key(_time_zone, f"IANA time zone of the study (default {DEFAULT_TIMEZONE})"),
    },
}


@dataclass(frozen=True)
class Settings:
    """A study's checked settings (defaults where cohort.toml is silent or absent).

    Parameters
    ----------
    folder
        The study's folder (where cohort.toml is, or would be).
    source
        The cohort.toml read, or None when there is none.
    memory_limit, threads
        ``[database]``: DuckDB's memory bound; its thread count (None: DuckDB's own).
    input_root
        ``[load] input_root`` as written (None: not set); see :meth:`input_root_in`.
    validation
        ``[validation]`` as a :class:`cohort.validate.ValidationConfig`.
    timezone
        ``[study] timezone``: an IANA name, default "UTC".
    """

    folder: Path
    source: Path | None = None
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    threads: int | None = None
    input_root: str | None = None
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    timezone: str = DEFAULT_TIMEZONE
    #: (mtime, size) of the file when it was read (None: there was none)
    stamp: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    @property
    def changed(self) -> bool:
        """Whether cohort.toml was written, created or removed since these were read."""
        return _stamp(self.file) != self.stamp

    @property
    def file(self) -> Path:
        """The settings file (whether or not it exists)."""
        return self.source or self.folder / SETTINGS_FILE

    def input_root_in(self, environment: str | None) -> Path | None:
        """The folder loads must come from, given the administrator's COHORT_INPUT_ROOT
        (``environment``; None or "": not set). cohort.toml may only narrow it.

        Raises
        ------
        ConfigError
            COHORT_INPUT_ROOT is not an absolute path, or ``[load] input_root`` does not
            lie inside it.
        """
        admin = None
        if environment:
            admin = Path(environment)
            if not admin.is_absolute():
                raise ConfigError(f"{INPUT_ROOT_VARIABLE}={environment}: must be an absolute "
                                  "folder (it is the administrator's bound for every study)")
        if self.input_root is None:
            return admin
        own = self.folder / self.input_root
        if admin is not None and not own.resolve().is_relative_to(admin.resolve()):
            raise ConfigError(
                f"{self.file}: [load] input_root: {shown(self.input_root)} (that is "
                f"{own.resolve()}) lies outside {INPUT_ROOT_VARIABLE} ({admin}), which a study "
                f"may only narrow; set a folder inside {admin}, or remove input_root")
        return own


def _stamp(file: Path) -> tuple[int, int] | None:
    try:
        status = file.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


def _read(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the study settings: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; save it as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None


def load_settings(folder: str | os.PathLike[str]) -> Settings:
    """Read and check ``cohort.toml`` in ``folder`` (absent: the defaults)."""
    folder = Path(folder)
    file = folder / SETTINGS_FILE
    stamp = _stamp(file)
    if stamp is None:
        return Settings(folder)
    at = At(str(file), (), ConfigError)
    raw = _read(file)
    checked = check_table(raw, SCHEMA, at)
    database, load, study = (checked.get(t, {}) for t in ("database", "load", "study"))
    validation = ValidationConfig.from_dict(raw.get("validation", {}), source=str(file),
                                            section=("validation",))
    return Settings(
        folder, file,
        memory_limit=database.get("memory_limit", DEFAULT_MEMORY_LIMIT),
        threads=database.get("threads"),
        input_root=load.get("input_root"),
        validation=validation,
        timezone=study.get("timezone", DEFAULT_TIMEZONE),
        stamp=stamp,
    )


def study_timezone(folder: str | os.PathLike[str]) -> str:
    """The study's time zone (``[study] timezone`` in cohort.toml; default "UTC")."""
    return load_settings(folder).timezone
