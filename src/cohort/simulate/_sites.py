"""Per-site upload files of a simulated cohort, with optional seeded defects.

The writer is the inverse of each site's mapping spec
(``mappings/synthetic/<site>.toml``): it renames canonical columns to the
site's source names, inverts recodes and units, writes the site's format and
copies the spec beside the files, so the writer and the spec cannot drift.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from cohort.errors import ModelSpecError
from cohort.resources import resource_dir
from cohort.simulate._truth import Site
from cohort.tables import INSTRUMENT_RANGES

if TYPE_CHECKING:
    from cohort.simulate import SimulatedCohort

__all__ = ["SiteFile", "SiteFiles", "write_site_files", "site_spec_path", "DEFECT_KINDS"]

DEFECT_KINDS = (
    "score_out_of_range",
    "dose_mg_as_mg_per_kg",
    "visit_before_enrolment",
    "visit_after_death",
    "duplicated_visit",
    "misspelled_instrument",
    "orphan_participant",
)
_MISSPELT = {"MADRS": "MADSR", "MoCA": "MOCCA", "DSST": "DSTT"}
_FILLERS = {"senter": "Oslo", "registrert_av": "sykepleier", "centre": "HCL Lyon",
            "protocol_version": "v2.1"}
_EXCEL_MAX_ROWS = 1_048_575
DEFECT_RATE = 0.001  # per kind, of the rows of the table it targets (7 kinds: ~0.5 % of rows)
_MANIFEST_SCHEMA = {
    "site_id": pl.String, "table": pl.String, "file": pl.String, "sheet": pl.String,
    "source_line": pl.Int64, "participant_id": pl.String, "column": pl.String,
    "source_column": pl.String, "value": pl.String, "kind": pl.String,
}


@dataclass(frozen=True)
class SiteFile:
    """One written table of one site."""

    site_id: str
    site_name: str
    table: str
    path: Path
    format: str  # csv | excel | parquet
    sheet: str | None = None
    rows: int = 0


@dataclass(frozen=True)
class SiteFiles:
    """What :meth:`SimulatedCohort.write_site_files` wrote.

    Attributes
    ----------
    files : tuple[SiteFile, ...]
        One entry per (site, table): site_id, table, path, format, sheet, rows.
    specs : dict[str, Path]
        site_id -> the mapping spec copied beside that site's files.
    site_dirs : dict[str, Path]
        site_id -> the site folder (files and ``file`` entries of the spec are relative to it).
    defects : polars.DataFrame or None
        With ``defects=True``, one row per seeded defect: site_id, table,
        file (name relative to the site folder), sheet (Excel only),
        source_line, participant_id (as written), column (canonical name),
        source_column (name in the file), value (the defective value as
        written, as text: numbers with a '.' decimal point, dates ISO
        yyyy-mm-dd), kind (one of ``DEFECT_KINDS``).

        ``source_line`` is 1-based and counts the header as line 1, whatever
        the format: for CSV it is the line number in the file, for Excel the
        sheet row number, for Parquet the 0-based row index + 2 (as if a header
        row existed). Rows of a Parquet/Excel table are in file order.
    """

    files: tuple[SiteFile, ...]
    specs: dict[str, Path]
    site_dirs: dict[str, Path]
    defects: pl.DataFrame | None = None

    def to_frame(self) -> pl.DataFrame:
        """The written files as a polars DataFrame."""
        return pl.DataFrame(
            [{"site_id": f.site_id, "site_name": f.site_name, "table": f.table, "path": str(f.path),
              "format": f.format, "sheet": f.sheet, "rows": f.rows} for f in self.files],
            schema={"site_id": pl.String, "site_name": pl.String, "table": pl.String,
                    "path": pl.String, "format": pl.String, "sheet": pl.String, "rows": pl.Int64})


def site_spec_path(site_name: str) -> Path:
    """The committed mapping spec of a synthetic site (``mappings/synthetic/<name>.toml``)."""
    return resource_dir("mappings") / "synthetic" / f"{site_name}.toml"


def _col_spec(entry: str | dict[str, Any]) -> dict[str, Any]:
    return {"from": entry} if isinstance(entry, str) else dict(entry)


def _to_source(df: pl.DataFrame, tspec: dict[str, Any], site: Site) -> pl.DataFrame:
    """Canonical frame -> the site's source columns (inverse of the mapping spec)."""
    exprs = []
    for canon, entry in tspec["columns"].items():
        cs = _col_spec(entry)
        e = pl.col(canon)
        if canon == "score":
            e = e.cast(pl.Int64)
        if "recode" in cs:
            inverse = {v: k for k, v in cs["recode"].items()}
            keys = list(inverse.values())
            dtype = pl.Int64 if all(k.lstrip("-").isdigit() for k in keys) else pl.String
            targets = [int(k) for k in keys] if dtype == pl.Int64 else keys
            e = e.replace_strict(list(inverse), targets, default=None, return_dtype=dtype)
        unit = cs.get("unit", "mg")
        if unit == "mg/kg":
            e = e / pl.col(tspec["weight_column"])
        elif unit == "g":
            e = e / 1000.0
        exprs.append(e.alias(cs["from"]))
    for name in tspec.get("drop", {}).get("columns", []):
        exprs.append(pl.lit(_FILLERS.get(name, site.name)).alias(name))
    out = df.select(*exprs, *[c for c in ("_defect", "_dcol") if c in df.columns])
    # every canonical value must have a code (a missing one would silently become null)
    for canon, entry in tspec["columns"].items():
        cs = _col_spec(entry)
        if "recode" in cs and out[cs["from"]].null_count() != df[canon].null_count():
            bad = set(df[canon].drop_nulls().unique().to_list()) - set(cs["recode"].values())
            raise RuntimeError(f"spec recode of {canon!r} at {site.name} lacks codes for {sorted(bad)}")
    return out


def _rows(df: pl.DataFrame) -> pl.DataFrame:
    n = df.height
    return df.with_columns(
        pl.Series("_order", np.arange(n, dtype=np.int64) * 2),
        pl.lit(None, pl.String).alias("_defect"),
        pl.lit(None, pl.String).alias("_dcol"),
    )


def _mark(df: pl.DataFrame, idx: np.ndarray, kind: str, col: str, values: pl.Series | None = None,
          ) -> pl.DataFrame:
    """Set ``col`` of rows ``idx`` to ``values`` and mark them as defect ``kind``."""
    mask = np.zeros(df.height, dtype=bool)
    mask[idx] = True
    m = pl.Series(mask)
    out = df.with_columns(
        pl.when(m).then(pl.lit(kind)).otherwise(pl.col("_defect")).alias("_defect"),
        pl.when(m).then(pl.lit(col)).otherwise(pl.col("_dcol")).alias("_dcol"),
    )
    if values is not None:
        full = df[col].clone()
        full = full.scatter(idx, values.cast(full.dtype))
        out = out.with_columns(full.alias(col))
    return out


def _insert(df: pl.DataFrame, copies: pl.DataFrame) -> pl.DataFrame:
    """Insert ``copies`` (rows of df with changed values) right after their originals."""
    return pl.concat([df, copies.with_columns(pl.col("_order") + 1)]).sort("_order")


def _free(rng: np.random.Generator, taken: np.ndarray, k: int, eligible: np.ndarray) -> np.ndarray:
    cand = np.flatnonzero(eligible & ~taken)
    if cand.size == 0:
        return cand
    pick = rng.choice(cand, size=min(k, cand.size), replace=False)
    taken[pick] = True
    return np.sort(pick)


def _seed_defects(rng: np.random.Generator, t: dict[str, pl.DataFrame], dose_per_kg: bool,
                  all_ids: set[str], site: Site) -> dict[str, pl.DataFrame]:
    a, s = t["assessments"], t["treatment_sessions"]
    k = max(1, round(DEFECT_RATE * a.height))
    taken = np.zeros(a.height, dtype=bool)
    everything = np.ones(a.height, dtype=bool)
    # score out of range
    idx = _free(rng, taken, k, everything)
    hi = a["instrument"].gather(idx).replace_strict(
        {i: r[1] for i, r in INSTRUMENT_RANGES.items()}, return_dtype=pl.Float64).to_numpy()
    a = _mark(a, idx, "score_out_of_range", "score", pl.Series(hi + rng.integers(1, 16, idx.size)))
    # misspelled instrument
    idx = _free(rng, taken, k, a["instrument"].is_in(list(_MISSPELT)).to_numpy())
    a = _mark(a, idx, "misspelled_instrument", "instrument",
              a["instrument"].gather(idx).replace(_MISSPELT))
    # visit before enrolment (a follow-up visit dated before the enrolment date)
    enrol = a.select(pl.col("participant_id")).join(
        t["participants"].select("participant_id", "enrolled_on"), on="participant_id", how="left",
        maintain_order="left")["enrolled_on"]
    idx = _free(rng, taken, k, (a["assessed_on"] > enrol).to_numpy())
    before = enrol.gather(idx).to_numpy() - rng.integers(30, 366, idx.size).astype("timedelta64[D]")
    a = _mark(a, idx, "visit_before_enrolment", "assessed_on", pl.Series(before))
    # duplicated visit: an exact copy right after the original
    idx = _free(rng, taken, k, everything)
    dup = a[idx].with_columns(pl.lit("duplicated_visit").alias("_defect"),
                              pl.lit("assessed_on").alias("_dcol"))
    # visit after death: a copy of the last visit of a participant who died, dated after death
    died = t["exits"].filter(pl.col("reason") == "died").select("participant_id", "exit_date")
    last = (a.with_row_index("_i").filter(~pl.Series(taken)).group_by("participant_id")
            .agg(pl.col("_i").max()).join(died, on="participant_id").sort("participant_id"))
    after = last.head(0)
    if last.height:
        pick = np.sort(rng.choice(last.height, size=min(k, last.height), replace=False))
        after = last[pick]
    late_day = after["exit_date"].to_numpy() + rng.integers(1, 121, after.height).astype("timedelta64[D]")
    late = a[after["_i"].to_numpy()].with_columns(
        pl.Series("assessed_on", late_day, dtype=pl.Date),
        pl.lit("visit_after_death").alias("_defect"), pl.lit("assessed_on").alias("_dcol"))
    a = _insert(a, pl.concat([dup, late]))
    # orphan participant: a session row copied under an id that does not exist
    ks = max(1, round(DEFECT_RATE * s.height))
    idx = np.sort(rng.choice(s.height, size=min(ks, s.height), replace=False))
    width = len(next(iter(all_ids)).split("-", 1)[1]) if all_ids else 6
    fake: list[str] = []
    serial = 10 ** width - 1
    while len(fake) < idx.size and serial > 0:
        cand = f"{site.site_id}-{serial:0{width}d}"
        serial -= 7
        if cand not in all_ids:
            fake.append(cand)
    idx = idx[: len(fake)]
    orphans = s[idx].with_columns(pl.Series("participant_id", fake), pl.lit("orphan_participant")
                                  .alias("_defect"), pl.lit("participant_id").alias("_dcol"))
    # dose in mg where the site reports mg/kg
    if dose_per_kg:
        staken = np.zeros(s.height, dtype=bool)
        idx = _free(rng, staken, ks, (s["route"] == "iv").to_numpy())
        s = _mark(s, idx, "dose_mg_as_mg_per_kg", "dose_mg",
                  s["dose_mg"].gather(idx) * s["weight_kg"].gather(idx))
    s = _insert(s, orphans)
    return {**t, "assessments": a, "treatment_sessions": s}


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)


def write_site_files(sim: SimulatedCohort, out_dir: Path, *, defects: bool = False) -> SiteFiles:
    """Write ``out_dir/<site name>/`` for each site of ``sim`` (see :class:`SiteFiles`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[SiteFile] = []
    specs: dict[str, Path] = {}
    dirs: dict[str, Path] = {}
    manifest: list[dict[str, Any]] = []
    all_ids = set(sim.tables["participants"]["participant_id"].to_list())
    for si, site in enumerate(sim.truth.sites[: sim.n_sites]):
        spec_src = site_spec_path(site.name)
        spec = tomllib.loads(spec_src.read_text(encoding="utf-8"))
        fmt = spec["format"]
        read = spec.get("read", {})
        sdir = out_dir / site.name
        sdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec_src, sdir / "mapping.toml")
        specs[site.site_id] = sdir / "mapping.toml"
        dirs[site.site_id] = sdir
        ids = sim.tables["participants"].filter(pl.col("site_id") == site.site_id)["participant_id"]
        canon = {name: _rows(df.filter(pl.col("participant_id").is_in(ids.implode())))
                 for name, df in sim.tables.items()}
        dose_entry = _col_spec(spec["tables"]["treatment_sessions"]["columns"]["dose_mg"])
        if defects:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(sim.seed, spawn_key=(99, si))))
            canon = _seed_defects(rng, canon, dose_entry.get("unit") == "mg/kg", all_ids, site)
        workbook = None
        if fmt == "excel":
            import xlsxwriter

            wb_name = {tspec["file"] for tspec in spec["tables"].values()}
            if len(wb_name) != 1:
                raise RuntimeError(f"{site.name}: expected one workbook, spec names {sorted(wb_name)}")
            workbook = xlsxwriter.Workbook(sdir / wb_name.pop())
        try:
            for table, tspec in spec["tables"].items():
                tspec = {**tspec, "weight_column": "weight_kg"}
                src = _to_source(canon[table], tspec, site)
                body = src.drop("_defect", "_dcol")
                path = sdir / tspec["file"]
                if fmt == "csv":
                    text = body.write_csv(separator=read.get("delimiter", ","),
                                          decimal_comma=read.get("decimal_comma", False),
                                          date_format=read.get("date_format"))
                    path.write_bytes(text.encode(read.get("encoding", "utf-8")))
                elif fmt == "excel":
                    if body.height > _EXCEL_MAX_ROWS:
                        raise ModelSpecError(
                            f"site {site.name}: table {table} has {body.height:,} rows, more than an "
                            f"Excel sheet holds ({_EXCEL_MAX_ROWS:,}); simulate fewer participants "
                            "(or use simulate_to_parquet for big cohorts)")
                    body.write_excel(workbook, worksheet=tspec["sheet"], autofilter=False,
                                     dtype_formats={pl.Date: "yyyy-mm-dd"}, table_style=None,
                                     float_precision=4)
                elif fmt == "parquet":
                    body.write_parquet(path)
                else:
                    raise RuntimeError(f"unknown format {fmt!r} in {spec_src}")
                files.append(SiteFile(site.site_id, site.name, table, path, fmt, tspec.get("sheet"),
                                      body.height))
                if defects:
                    pid_col = _col_spec(tspec["columns"]["participant_id"])["from"]
                    rows = src.with_row_index("_i").filter(pl.col("_defect").is_not_null())
                    for r in rows.iter_rows(named=True):
                        scol = _col_spec(tspec["columns"][r["_dcol"]])["from"]
                        manifest.append({
                            "site_id": site.site_id, "table": table, "file": tspec["file"],
                            "sheet": tspec.get("sheet"), "source_line": r["_i"] + 2,
                            "participant_id": r[pid_col], "column": r["_dcol"],
                            "source_column": scol, "value": _text(r[scol]), "kind": r["_defect"],
                        })
        finally:
            if workbook is not None:
                workbook.close()
    man = pl.DataFrame(manifest, schema=_MANIFEST_SCHEMA) if defects else None
    return SiteFiles(files=tuple(files), specs=specs, site_dirs=dirs, defects=man)
