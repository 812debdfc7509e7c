"""Files the command line writes for people: tables (CSV, xlsx, Parquet) and output folders.

Every tabular export goes through :func:`write_table`, so each one gets the same care:

- the output folder is created if missing, or refused with one line (a file in the way,
  no permission) by :func:`output_folder`;
- an unknown extension is one line naming the supported ones;
- text cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return) get a leading ``'``, as OWASP recommends against CSV
  injection, in CSV and xlsx alike (the xlsx writer also writes every string as a string,
  never as a formula, number or link). Only text cells are touched: numeric, date and
  boolean columns are written as they are (a negative dose ``-0.3`` in a numeric column is
  a number, not a formula). Parquet is not opened by spreadsheets and is written as is.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from cohort.errors import UserError

__all__ = ["FORMULA_PREFIXES", "TABLE_FORMATS", "neutralise_formulas", "output_folder",
           "table_path", "write_table"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: File extensions :func:`write_table` writes.
TABLE_FORMATS = (".csv", ".xlsx", ".parquet")

_FORMULA_START = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_PREFIXES) + "]"


def output_folder(folder: Path, *, option: str, given: Path | None = None) -> Path:
    """Create ``folder`` (and its parents) if missing; one line if it cannot be.

    Parameters
    ----------
    folder
        The folder to write into.
    option, given
        The command-line option and the path it gave (default: ``folder``), for the
        message (e.g. ``"--out"``, a file inside ``folder``).

    Raises
    ------
    UserError
        A file is in the way, or the folder cannot be created (no permission, read-only).

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> output_folder(root / "reports" / "2026", option="--out").is_dir()
    True
    """
    named = f"{option} {given or folder}"
    for ancestor in (folder, *folder.parents):
        if ancestor.exists() and not ancestor.is_dir():
            raise UserError(f"{named}: {ancestor} is a file, not a folder; "
                            "move it away or give another path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{named}: cannot create the folder {folder} "
                        f"({exc.strerror or exc}); give a path you can write to") from None
    return folder


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix ``'`` to every text cell that starts like a formula; other columns as they are.

    Examples
    --------
    >>> df = pl.DataFrame({"value": ["=1+1", "-2+3", "ok", None], "n": [-2, 3, 4, 5]})
    >>> neutralise_formulas(df).rows()
    [("'=1+1", -2), ("'-2+3", 3), ('ok', 4), (None, 5)]
    """
    text = [c for c, t in df.schema.items() if t in (pl.String, pl.Categorical, pl.Enum)]
    return df.with_columns(
        pl.when(pl.col(c).cast(pl.String).str.contains(_FORMULA_START))
        .then(pl.lit("'") + pl.col(c).cast(pl.String))
        .otherwise(pl.col(c).cast(pl.String))
        .alias(c)
        for c in text
    )


def _write_xlsx(df: pl.DataFrame, path: Path) -> None:
    """Every string a string cell (xlsxwriter would otherwise write ``=...`` as a formula
    and ``http...`` as a link); a file that cannot be created is an OSError, as elsewhere."""
    import xlsxwriter
    from xlsxwriter.exceptions import FileCreateError

    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                               "strings_to_numbers": False,
                                               "strings_to_urls": False})
    df.write_excel(workbook, autofit=True)
    try:
        workbook.close()
    except FileCreateError as exc:  # it wraps the OSError of creating the file
        cause = exc.args[0] if exc.args else None
        raise cause if isinstance(cause, OSError) else OSError(str(exc)) from None


def table_path(path: Path, *, option: str) -> Path:
    """Check ``path`` for :func:`write_table` before any work: a known extension, not a
    folder, its folder created (``option`` names the command-line option, for the messages).

    Raises
    ------
    UserError
        An unsupported extension, a folder at ``path``, or a folder that cannot be created.
    """
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise UserError(f"{option} {path}: cannot write {suffix or 'a file without extension'}; "
                        f"use a file name ending in {', '.join(TABLE_FORMATS)}")
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name ending in {suffix}")
    output_folder(path.parent, option=option, given=path)
    return path


def write_table(df: pl.DataFrame, path: Path, *, option: str) -> Path:
    """Write ``df`` to ``path`` as its extension says (.csv, .xlsx, .parquet).

    The folder is created if missing; text cells that start like a formula are neutralised in
    CSV and xlsx (:func:`neutralise_formulas`). ``option`` names the command-line option
    that gave ``path``, for the messages.

    Raises
    ------
    UserError
        An unsupported extension, a folder that cannot be created, or a file that cannot be
        written.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp()) / "new" / "rows.csv"
    >>> _ = write_table(pl.DataFrame({"v": ["@SUM(A1)"]}), out, option="--export")
    >>> out.read_text()
    "v\\n'@SUM(A1)\\n"
    """
    suffix = table_path(path, option=option).suffix.lower()
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    if nested and suffix != ".parquet":
        raise UserError(f"{option} {path}: column(s) {', '.join(nested)} hold lists or records, "
                        f"which {suffix} cannot; write a .parquet file")
    try:
        if suffix == ".parquet":
            df.write_parquet(path)
        elif suffix == ".csv":
            neutralise_formulas(df).write_csv(path)
        else:
            _write_xlsx(neutralise_formulas(df), path)
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write this file ({exc.strerror or exc}); "
                        "give a path you can write to") from None
    return path
