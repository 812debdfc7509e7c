"""A site file as the loader sees it: its format (checked against its first bytes),
size, lines (delimited text) with a sparse index of where they are, and its sha256
(computed in the background while the load works).
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cohort.errors import InputFileError

__all__ = ["BLOCK", "SourceFile", "describe_file", "detect_format"]

_EXTENSIONS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".xlsx": "excel", ".xlsm": "excel", ".xls": "excel",
    ".parquet": "parquet", ".pq": "parquet",
    ".sav": "spss", ".zsav": "spss",
    ".sas7bdat": "sas",
    ".dta": "stata",
}
_MAGIC = {
    "excel": (b"PK\x03\x04",),
    "parquet": (b"PAR1",),
    "spss": (b"$FL2", b"$FL3"),
}
#: an OLE2 compound file: an Excel 97-2003 workbook (.xls), or an encrypted .xlsx
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


#: bytes per block of the sparse newline index (and of reads)
BLOCK = 1 << 20


@dataclass(frozen=True)
class SourceFile:
    path: Path
    format: str
    size_bytes: int
    #: lines (delimited text only): line feeds, + 1 for a last line without one. A line ends
    #: with ``\n`` (or ``\r\n``); a lone ``\r`` is a character inside its line, as every
    #: reader of :mod:`cohort.delimited` counts (see its docstring)
    lines: int | None = None
    #: newlines before each block of ``BLOCK`` bytes, to find a line without reading it all
    newlines_before: tuple[int, ...] = ()
    _digest: Future[str] | None = field(default=None, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """The file's SHA-256 (hex); computed in the background, this waits for it."""
        assert self._digest is not None
        return self._digest.result()


_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cohort-sha256")


def _sha256(path: Path) -> str:
    try:  # Linux: this thread alone yields to the load's work and uses the idle moments
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):
        pass
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def detect_format(path: Path, declared: str | None = None) -> str:
    """The file's format from its extension (or ``declared``), checked against its bytes."""
    fmt = declared or _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"{path}: unknown file type {path.suffix!r}; expected one of "
            f"{', '.join(sorted(_EXTENSIONS))}, or set `format` in the mapping"
        )
    with path.open("rb") as fh:
        head = fh.read(8192)
    if not head:
        raise InputFileError(f"{path}: the file is empty (0 bytes); ask the site to resend it")
    if fmt == "excel" and head.startswith(_OLE2):
        raise InputFileError(
            f"{path}: is an Excel 97-2003 workbook (.xls) or a password-protected one; cohort "
            "reads .xlsx and .xlsm: open it in Excel or LibreOffice, remove any password and "
            "save it as Excel Workbook (.xlsx)")
    if fmt in _MAGIC and not head.startswith(_MAGIC[fmt]):
        raise InputFileError(
            f"{path}: is not a valid {fmt} file (its first bytes are {head[:8]!r}); "
            "the extension does not match the content"
        )
    if fmt == "csv" and b"\x00" in head:
        raise InputFileError(f"{path}: contains NUL bytes: binary data, not a delimited text file")
    return fmt


def describe_file(path: Path, declared_format: str | None = None, *,
                  input_root: Path | None = None, digest: bool = True) -> SourceFile:
    """Check a file and return its format, size and (delimited text) lines; its sha256
    is computed in the background meanwhile (:attr:`SourceFile.sha256` waits for it).

    With ``input_root``, the file (after following links) must lie inside that folder.
    """
    try:
        resolved = path.resolve(strict=True)
    except RuntimeError:
        raise InputFileError(f"{path}: symbolic link loop") from None
    except OSError as exc:
        if exc.errno == 40:  # ELOOP
            raise InputFileError(f"{path}: symbolic link loop") from None
        raise InputFileError(f"{path}: no such file") from None
    if input_root is not None and not resolved.is_relative_to(input_root.resolve()):
        raise InputFileError(
            f"{path}: outside the allowed input folder {input_root} (it resolves to {resolved}); "
            "copy the file into that folder, or change input_root in cohort.toml")
    if not resolved.is_file():
        raise InputFileError(f"{path}: not a regular file")
    fmt = detect_format(resolved, declared_format)
    hashed = _HASHER.submit(_sha256, resolved) if digest else None
    before: list[int] = []
    newlines, last = 0, b"\n"
    if fmt == "csv":  # the lines, to check that every line is accounted for, and where they are
        with resolved.open("rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                before.append(newlines)
                newlines += int(np.count_nonzero(np.frombuffer(block, np.uint8) == 10))
                last = block[-1:]
    lines = newlines + (last != b"\n") if fmt == "csv" else None
    return SourceFile(resolved, fmt, resolved.stat().st_size, lines, tuple(before), hashed)
