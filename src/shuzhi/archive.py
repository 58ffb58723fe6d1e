"""The archive zone: read-only, zstd-compressed Parquet batches under ``<lake>/archive/<batch_id>/``,
each with a ``manifest.json`` (tables, partitions by month of the lifecycle date, row counts,
sha256 and size of every file).

    <lake>/archive/2031-12-01/manifest.json
    <lake>/archive/2031-12-01/silver.police_incidents/part-…zstd.parquet

A batch is written in three steps — files into a staging folder, counts read back and checked,
the manifest written last (atomically) — so a batch folder with a manifest is complete, and one
without is debris of an interrupted run, cleared on the next. Files are made read-only (0444);
only destruction (``rewrite_without``) replaces them, with a new manifest.

    >>> m = verify_batch(settings, "2031-12-01")      # doctest: +SKIP  (raises ArchiveCorrupt)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from pyspark.sql import functions as F

from .config import Settings
from .errors import ShuzhiError
from .frames import union_all

MANIFEST = "manifest.json"
RESTORED = "restored"      # restore loads batches into <lake>/restored/<batch>__<layer>__<table>


class ArchiveCorrupt(ShuzhiError):
    """An archive batch does not match its manifest (a file missing, changed, or a count wrong)."""


def archive_root(settings: Settings) -> Path:
    return settings.lake / "archive"


def staging_root(settings: Settings) -> Path:
    """Where a batch is assembled before it moves into the archive whole."""
    return settings.lake / "_archive_staging"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def batches(settings: Settings) -> list[str]:
    """Complete batches (those with a manifest), oldest first."""
    root = archive_root(settings)
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}")) if root.is_dir() else []


def read_manifest(settings: Settings, batch_id: str) -> dict:
    path = archive_root(settings) / batch_id / MANIFEST
    if not path.is_file():
        raise ArchiveCorrupt(f"archive batch {batch_id}: no manifest at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())


def write_dataset(df, folder: Path) -> list[dict]:
    """Write ``df`` as zstd Parquet into ``folder`` (replacing it); return the file entries."""
    if folder.exists():
        shutil.rmtree(folder)
    df.write.option("compression", "zstd").parquet(str(folder))
    for p in folder.iterdir():          # Spark's _SUCCESS and .crc side files are not part of a batch
        if p.suffix != ".parquet":
            p.unlink()
    return [{"file": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in _data_files(folder)]


def table_entry(spark, folder: Path, files: list[dict], expected_rows: int, months: list[str]) -> dict:
    """Read the written files back and check the count before anything refers to them."""
    rows = spark.read.parquet(str(folder)).count() if files else 0
    if rows != expected_rows:
        raise ArchiveCorrupt(f"archive {folder}: wrote {expected_rows} rows, read back {rows}")
    return {"rows": rows, "months": months, "files": files}


def commit_manifest(batch_dir: Path, manifest: dict) -> None:
    """Write the manifest atomically, then make every data file read-only."""
    tmp = batch_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, batch_dir / MANIFEST)
    for p in batch_dir.rglob("*.parquet"):
        os.chmod(p, 0o444)


def write_batch(spark, settings: Settings, batch_id: str, tables: dict[str, tuple]) -> None:
    """Write a whole batch: each ``layer.table → (rows, row count, months)`` into staging, counts
    read back, the manifest committed, then the staging folder moved into place — the batch
    appears whole, or not at all. A table with no rows is left out."""
    stage = staging_root(settings) / batch_id
    manifest = {"batch_id": batch_id, "as_of": batch_id, "created_at": datetime.now().isoformat(timespec="seconds"),
                "policy": "conf/retention.yaml", "tables": {}}
    for table, (rows, n, months) in tables.items():
        if n:
            folder = stage / table
            manifest["tables"][table] = table_entry(spark, folder, write_dataset(rows.coalesce(1), folder), n, months)
    commit_manifest(stage, manifest)
    batch_dir = archive_root(settings) / batch_id
    batch_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(stage, batch_dir)


def verify_batch(settings: Settings, batch_id: str, spark=None) -> dict:
    """Every file of the manifest present with its sha256 and size, no file the manifest does not
    list, and (with ``spark``) the row counts. Returns the manifest; raises ``ArchiveCorrupt``."""
    m = read_manifest(settings, batch_id)
    batch_dir = archive_root(settings) / batch_id
    for table, t in m["tables"].items():
        folder = batch_dir / table
        listed = {f["file"] for f in t["files"]}
        present = {p.name for p in _data_files(folder)} if folder.is_dir() else set()
        if present - listed:
            raise ArchiveCorrupt(f"archive batch {batch_id} table {table}: files not in the manifest: "
                                 f"{sorted(present - listed)}")
        for f in t["files"]:
            p = folder / f["file"]
            if not p.is_file():
                raise ArchiveCorrupt(f"archive batch {batch_id} table {table}: file {f['file']} is missing")
            if p.stat().st_size != f["bytes"] or sha256_file(p) != f["sha256"]:
                raise ArchiveCorrupt(f"archive batch {batch_id} table {table}: file {f['file']} does not match "
                                     "its sha256 in the manifest")
        if spark is not None and t["files"]:
            n = spark.read.parquet(str(folder)).count()
            if n != t["rows"]:
                raise ArchiveCorrupt(f"archive batch {batch_id} table {table}: {n} rows, manifest says {t['rows']}")
    return m


def read_archived(spark, settings: Settings, table: str):
    """Every archived row of ``<layer>.<name>`` across complete batches (with ``_archive_batch``), or None."""
    folders = [(b, archive_root(settings) / b / table) for b in batches(settings)]
    return union_all((spark.read.parquet(str(folder)).withColumn("_archive_batch", F.lit(b))
                      for b, folder in folders if folder.is_dir() and _data_files(folder)), allow_missing=True)


def rewrite_without(spark, settings: Settings, batch_id: str, table: str, doomed, keys: list[str]) -> int:
    """Destruction inside the archive: rewrite one table of a batch without the ``doomed`` rows
    (matched on ``keys``), check the count, commit a new manifest, then delete the old files.
    Returns rows removed (0: nothing written). A crash leaves either the old or the new manifest
    complete; files of neither are debris ``clear_debris`` removes."""
    batch_dir = archive_root(settings) / batch_id
    m = read_manifest(settings, batch_id)
    folder = batch_dir / table
    if table not in m["tables"] or not m["tables"][table]["files"]:
        return 0
    df = spark.read.parquet(str(folder))
    cond = [df[k].eqNullSafe(doomed[k]) for k in keys]
    keep = df.join(doomed.select(*keys).distinct(), cond, "left_anti") if keys else df
    before = m["tables"][table]["rows"]
    kept = keep.count()
    if kept == before:
        return 0
    stage = batch_dir / f".{table}.rewrite"
    files = write_dataset(keep.coalesce(1), stage)
    entry = table_entry(spark, stage, files, kept, m["tables"][table]["months"])
    # move the new files beside the old ones, switch the manifest, then drop the old files
    old = {p.name for p in _data_files(folder)}
    for f in files:
        os.replace(stage / f["file"], folder / f["file"])
    shutil.rmtree(stage)
    m["tables"][table] = {**entry, "destroyed_rows": m["tables"][table].get("destroyed_rows", 0) + before - kept}
    m["rewritten_at"] = datetime.now().isoformat(timespec="seconds")
    commit_manifest(batch_dir, m)
    for name in old - {f["file"] for f in files}:
        p = folder / name
        os.chmod(p, 0o644)
        p.unlink()
    return before - kept


def clear_debris(settings: Settings) -> list[str]:
    """Remove what interrupted runs left: the staging area, batch folders without a manifest, and
    data files no manifest lists. Returns what was removed."""
    removed = []
    if staging_root(settings).exists():
        shutil.rmtree(staging_root(settings))
        removed.append(str(staging_root(settings)))
    root = archive_root(settings)
    if not root.is_dir():
        return removed
    for batch_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (batch_dir / MANIFEST).is_file():
            shutil.rmtree(batch_dir)
            removed.append(str(batch_dir))
            continue
        m = read_manifest(settings, batch_dir.name)
        for p in batch_dir.iterdir():
            if p.is_dir() and p.name.startswith("."):
                shutil.rmtree(p)
                removed.append(str(p))
        for table, t in m["tables"].items():
            listed = {f["file"] for f in t["files"]}
            for p in _data_files(batch_dir / table) if (batch_dir / table).is_dir() else []:
                if p.name not in listed:
                    os.chmod(p, 0o644)
                    p.unlink()
                    removed.append(str(p))
    return removed
