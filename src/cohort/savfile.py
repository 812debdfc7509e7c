"""How many records an SPSS system file (``.sav``) holds, when its header does not say.

The header of a ``.sav`` file gives its number of records, or -1 for "unknown" (the format
allows it; some writers stream). pyreadstat refuses a file that holds fewer records than
its header gives, but with -1 it reads whatever is there: a truncated file would load part
of its records without a word. For such a file the data section is walked here (the
dictionary records, then the records: fixed-size, or bytecode-compressed) to count the
records it holds and to find one cut short. A file compressed with zlib (``.zsav``) has
block sizes of its own that pyreadstat checks.

Layout: the SPSS system file format as documented by GNU PSPP ("System File Format").
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

from cohort.errors import InputFileError

__all__ = ["sav_records"]

_HEADER_BYTES = 176
_UNKNOWN = -1
#: bytecode compression: no value; the end of the data; 8 bytes that follow the block
_PADDING, _END, _RAW = 0, 252, 253


def _truncated(path: Path, why: str) -> InputFileError:
    return InputFileError(f"{path}: {why}: the file is truncated or damaged; nothing was "
                          "loaded. Ask the site to export it again")


def _dictionary_end(data: mmap.mmap, order: str, path: Path) -> tuple[int, int]:
    """Where the data section starts, and the 8-byte units of a record."""
    def int32(at: int) -> int:
        if at + 4 > len(data):
            raise _truncated(path, "the dictionary ends early")
        return int(struct.unpack_from(order + "i", data, at)[0])

    at, units = _HEADER_BYTES, 0
    while True:
        kind = int32(at)
        if kind == 2:  # a variable (or the continuation of a long string)
            has_label, missing = int32(at + 8), int32(at + 12)
            at, units = at + 32, units + 1
            if has_label:
                at += 4 + (int32(at) + 3) // 4 * 4
            at += abs(missing) * 8
        elif kind == 3:  # value labels
            count, at = int32(at + 4), at + 8
            for _ in range(count):
                if at + 9 > len(data):
                    raise _truncated(path, "the dictionary ends early")
                at += 8 + (data[at + 8] + 1 + 7) // 8 * 8
        elif kind == 4:  # the variables of the labels before
            at += 8 + 4 * int32(at + 4)
        elif kind == 6:  # documents
            at += 8 + 80 * int32(at + 4)
        elif kind == 7:  # extensions
            at += 16 + int32(at + 8) * int32(at + 12)
        elif kind == 999:
            return at + 8, units
        else:
            raise _truncated(path, f"unknown dictionary record type {kind} at byte {at}")


def _compressed_units(data: mmap.mmap, start: int, path: Path) -> int:
    """The 8-byte units of bytecode-compressed data from ``start``."""
    at, units, size = start, 0, len(data)
    while at < size:
        if at + 8 > size:
            raise _truncated(path, "the data ends inside a block of compression codes")
        codes, at = data[at:at + 8], at + 8
        for code in codes:
            if code == _END:
                return units
            if code == _PADDING:
                continue
            if code == _RAW:
                if at + 8 > size:
                    raise _truncated(path, "the data ends inside a value")
                at += 8
            units += 1
    return units


def sav_records(path: Path) -> int | None:
    """The records of a ``.sav`` file whose header does not give their number (None for
    one whose header does: pyreadstat checks that count itself, and for a ``.zsav``).

    Raises
    ------
    InputFileError
        The data section ends inside a record (the file is truncated or damaged).
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if len(data) < _HEADER_BYTES or data[:4] != b"$FL2":
            return None
        order = "<" if struct.unpack_from("<i", data, 64)[0] in (2, 3) else ">"
        compression = struct.unpack_from(order + "i", data, 72)[0]
        declared = struct.unpack_from(order + "i", data, 80)[0]
        if declared != _UNKNOWN or compression not in (0, 1):
            return None
        start, width = _dictionary_end(data, order, path)
        if not width:
            return 0
        units = len(data) - start if compression == 0 else None
        if units is not None:
            if units % 8:
                raise _truncated(path, "the data ends inside a value")
            units //= 8
        else:
            units = _compressed_units(data, start, path)
    if units % width:
        raise _truncated(path, f"the data ends inside record {units // width + 1}")
    return units // width
