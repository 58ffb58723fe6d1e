"""Destruction, phase by phase: what ``jobs/destroy.py`` sequences.

The unit is the record of a SPEC entity (silver, keyed ``source/entity/record_id``): it is due
when its clock plus its class's ``destroy_after`` (``conf/retention.yaml``) is on or before the
as-of date, and destroyed unless a hold covers it or a person it names. With it go its bronze
versions, its corrections log, its quarantined versions, the gold rows built from it, and — for a
person no surviving row names any more (a *destroyed person*) — the person's golden record and
conflicts. Rows of the quarantine tables (and bronze versions that never became live) run on the
``quarantine`` class by the night they were delivered.

The phases, in the order the job runs them:

1. ``plan``: each table's (and each archive batch's) doomed rows, computed before any delete,
   silver last (``Plan``).
2. ``fingerprints``: what the byte scan must not find afterwards — the destroyed persons'
   identity numbers, names, tokens and the ciphertexts the destroyed rows held — and the
   certificate's digests (``Fingerprints``); kept encrypted with the certificate key outside the
   lake (``Workfile``) until the certificate is complete, so a re-run after a crash still scans
   for everything.
3. ``start_certificate``: the ``started`` row of ``ops.destruction_certificates`` (append-only).
4. ``erase``: the logical deletes (archive batches rewritten, then every table, silver last).
5. ``purge``: deletion vectors purged (``REORG … APPLY (PURGE)``), the purged version published,
   then old versions and change-data files removed (``VACUUM`` with Delta's retention check
   overridden for that call only).
6. ``prove``: every byte under the lake root scanned (``shuzhi.scan.scan_destroyed``); a table
   the scan finds them in (an old version of a table this run did not change) is purged too and
   the lake scanned again.
7. ``complete_certificate``: the ``completed`` (or ``failed``) row.

Crash safety: silver, from which the plan is computed, is deleted last, so a re-run recomputes
the same plan; the tables already purged are kept in the work file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from . import publish
from .access import COLD, read_if_exists
from .archive import RESTORED, archive_root, batches, clear_debris, read_archived, read_manifest, rewrite_without
from .config import CONF_DIR, Settings
from .crypto import Keyring, certificate_digest, decrypt
from .delta import delete_matching, read_table, rows_frame, table_exists, write_table
from .frames import union_all
from .retention import Policy, lake_tables
from .scan import Finding, scan_destroyed
from .selection import Selection
from .stages.retention import (
    GOLD_KEYS,
    ROW_KEY,
    destroyed_persons,
    doomed_delivered,
    doomed_findings,
    doomed_gold,
    doomed_quarantined,
    entity_ref,
    tokens_of,
)

log = logging.getLogger("shuzhi.destroy")

CERTIFICATES = ("ops", "destruction_certificates")

Doomed = tuple[str, str, DataFrame, list[str]]      # (layer or archive batch, table, doomed rows, their keys)


@dataclass
class DestroyResult:
    as_of: str
    status: str                                   # destroyed | noop | failed
    certificate_id: str | None = None
    records: dict[str, int] = field(default_factory=dict)        # silver table → records destroyed
    persons: int = 0                                             # persons no surviving row names
    held_records: int = 0
    rows_deleted: dict[str, int] = field(default_factory=dict)   # layer.table → rows deleted this run
    tables_vacuumed: list[str] = field(default_factory=list)
    files_scanned: int = 0
    findings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)      # phase → wall seconds (select … scan)

    def __post_init__(self) -> None:
        self._clock = time.monotonic()                          # not a field: not in the summary

    def lap(self, phase: str) -> None:
        """The wall seconds since the previous lap (or since the result was made), as ``phase``."""
        now = time.monotonic()
        self.seconds[phase] = round(now - self._clock, 1)
        self._clock = now


# ---------------------------------------------------------------- 1. the plan

@dataclass
class Plan:
    """What this destruction takes, computed before any delete."""
    entities: dict
    silver: dict[str, DataFrame]
    doomed: DataFrame                      # the records destroyed: table, record_id, ref, tokens, month
    persons: DataFrame                     # tokens of the destroyed persons
    n_persons: int
    tables: list[Doomed]                   # lake tables that lose rows (silver last)
    archive: list[Doomed]                  # archive batches' tables that lose rows
    archived_silver: dict[str, list[DataFrame]] = field(default_factory=dict)   # doomed rows in the archive

    @property
    def records(self) -> dict[str, int]:
        return {r["table"]: r["n"] for r in self.doomed.groupBy("table").agg(F.count("*").alias("n")).collect()}

    @property
    def empty(self) -> bool:
        return not (self.tables or self.archive)


def plan(spark, settings: Settings, sel: Selection, policy: Policy, day: date) -> Plan:
    """Each table's and each archive batch's doomed rows (checkpointed: they are read for the
    fingerprints, the certificate and the delete); only tables that lose rows are kept."""
    entities, silver, doomed = sel.entities, sel.silver, sel.selected
    live = (sel.refs.join(doomed.select("ref"), "ref", "left_anti").select("table", "record_id", "ref", "tokens")
            .localCheckpoint(eager=True))
    q_cut = policy.table_class("silver.quarantine").destroy_cutoff(day)
    doomed_refs = doomed.select("ref")

    tables: list[Doomed] = []
    surviving_tokens = [live.select(F.explode("tokens").alias("token"))]
    for t, e in entities.items():
        b = read_if_exists(spark, settings, "bronze", t)
        if b is None:
            continue
        gone = doomed_delivered(b.withColumn("__ref", entity_ref(e, e.record_id)), doomed_refs,
                                live.filter(F.col("table") == t), q_cut)
        tables.append(("bronze", t, gone, ROW_KEY))
        surviving_tokens.append(b.join(gone.select(*ROW_KEY), ROW_KEY, "left_anti")
                                .select(F.explode(tokens_of(b)).alias("token")))
    sq = read_if_exists(spark, settings, "silver", "quarantine")
    if sq is not None:
        gone = doomed_quarantined(sq, doomed_refs, q_cut)
        tables.append(("silver", "quarantine", gone, ["_source"] + ROW_KEY))
        surviving_tokens.append(sq.join(gone.select("_source", *ROW_KEY), ["_source"] + ROW_KEY, "left_anti")
                                .select(F.col("citizen_id__tok").alias("token")))
    persons = destroyed_persons(doomed, union_all(surviving_tokens)).localCheckpoint(eager=True)
    bq = read_if_exists(spark, settings, "bronze", "quarantine")
    if bq is not None:
        bq_cut = policy.table_class("bronze.quarantine").destroy_cutoff(day)
        tables.append(("bronze", "quarantine", bq.filter(F.col("_batch_date") <= F.lit(bq_cut)),
                       ["_source"] + ROW_KEY))
    fi = read_if_exists(spark, settings, "silver", "findings")
    if fi is not None:
        tables.append(("silver", "findings", doomed_findings(fi, doomed_refs, live, q_cut),
                       ["_batch_date", "_source", "_entity", "record_id"]))
    for name, keys in GOLD_KEYS.items():
        g = read_if_exists(spark, settings, "gold", name)
        if g is not None:
            tables.append(("gold", name, doomed_gold(name, g, doomed, persons), keys))
    for t in silver:
        ids = doomed.filter(F.col("table") == t).select("record_id")
        if table_exists(spark, settings.table_path(COLD, t)):
            tables.append((COLD, t, ids, ["record_id"]))
        tables.append(("silver", t, ids, ["record_id"]))
    tables[:0] = _restored_copies(spark, settings, entities, doomed)
    archive, archived_silver = _archive_batches(spark, settings, entities, doomed)

    tables = [(layer, name, gone.localCheckpoint(eager=True), keys) for layer, name, gone, keys in tables]
    archive = [(b, t, gone.localCheckpoint(eager=True), keys) for b, t, gone, keys in archive]
    return Plan(entities, silver, doomed, persons, persons.count(), [p for p in tables if not p[2].isEmpty()],
                [p for p in archive if not p[2].isEmpty()], archived_silver)


def _restored_copies(spark, settings: Settings, entities: dict, doomed: DataFrame) -> list[Doomed]:
    """Copies restored from the archive for querying go the same way as their batch."""
    out: list[Doomed] = []
    doomed_refs = doomed.select(F.col("ref").alias("__ref"))
    for layer, name in lake_tables(settings.lake):
        if layer != RESTORED or name.count("__") < 2:
            continue
        _, src_layer, t = name.split("__", 2)
        r = read_if_exists(spark, settings, layer, name)
        if r is None or t not in entities:
            continue
        if src_layer == "silver":
            out.insert(0, (layer, name, r.join(doomed.filter(F.col("table") == t).select("record_id"),
                                               "record_id", "left_semi"), ["record_id"]))
        else:
            e = entities[t]
            gone = r.withColumn("__ref", entity_ref(e, e.record_id)).join(doomed_refs, "__ref", "left_semi")
            out.insert(0, (layer, name, gone.drop("__ref"), ROW_KEY))
    return out


def _archive_batches(spark, settings: Settings, entities: dict, doomed: DataFrame
                     ) -> tuple[list[Doomed], dict[str, list[DataFrame]]]:
    """The archive zone: each batch's copy of the records, to be rewritten without the destroyed."""
    clear_debris(settings)
    out: list[Doomed] = []
    archived_silver: dict[str, list[DataFrame]] = {}
    doomed_refs = doomed.select(F.col("ref").alias("__ref"))
    for b in batches(settings):
        for table, entry in read_manifest(settings, b)["tables"].items():
            layer, name = table.split(".", 1)
            if not entry["files"] or name not in entities:
                continue
            df = spark.read.parquet(str(archive_root(settings) / b / table))
            if layer == "silver":
                gone = df.join(doomed.filter(F.col("table") == name).select("record_id"), "record_id", "left_semi")
                out.append((b, table, gone, ["record_id"]))
                archived_silver.setdefault(name, []).append(gone)
            else:
                e = entities[name]
                gone = df.withColumn("__ref", entity_ref(e, e.record_id)).join(doomed_refs, "__ref", "left_semi")
                out.append((b, table, gone.drop("__ref"), ROW_KEY))
    return out, archived_silver


# ---------------------------------------------------------------- 2. fingerprints

class Workfile:
    """The scan's fingerprints, encrypted with the certificate key, outside the lake, kept only
    until the certificate is complete (so a re-run after a crash still scans for everything)."""

    def __init__(self, settings: Settings, cert_key: bytes, as_of: str):
        self.path = settings.home / "destruction" / f"{as_of}.fp"
        self.key = hashlib.sha256(b"shuzhi-destruction-workfile" + cert_key).digest()

    def load(self) -> dict:
        if not self.path.is_file():
            return {"ids": [], "names": [], "strings": [], "blobs": [], "certificate_id": None, "tables": []}
        raw = self.path.read_bytes()
        return json.loads(AESGCM(self.key).decrypt(raw[:12], raw[12:], None))

    def save(self, fp: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        nonce = os.urandom(12)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(nonce + AESGCM(self.key).encrypt(nonce, json.dumps(fp).encode(), None))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Fingerprints:
    """What the scan must not find, and what the certificate names (digests only)."""
    ids: set[str]
    names: set[str]
    strings: set[str]
    blobs: set[bytes]
    person_digests: list[str]
    record_digests: list[str]
    certificate_id: str
    touched: list[str]          # tables to purge: losing rows now, or already by a crashed run

    def saved(self) -> dict:
        return {"ids": sorted(self.ids), "names": sorted(self.names), "strings": sorted(self.strings),
                "blobs": sorted(b.hex() for b in self.blobs), "certificate_id": self.certificate_id,
                "tables": self.touched}


def fingerprints(spark, settings: Settings, p: Plan, keyring: Keyring, cert_key: bytes, saved: dict,
                 as_of: str) -> Fingerprints:
    """Computed before the first delete, from the doomed rows; merged with what a crashed run of
    the same destruction saved (``Workfile``)."""
    pid_col = {t: e.person_id_field for t, e in p.entities.items()}
    ids, names, strings = set(saved["ids"]), set(saved["names"]), set(saved["strings"])
    blobs = {bytes.fromhex(b) for b in saved["blobs"]}
    sources = [(t, df.join(p.doomed.filter(F.col("table") == t).select("record_id"), "record_id", "left_semi"))
               for t, df in p.silver.items()] + [(t, g) for t, gs in p.archived_silver.items() for g in gs]
    for t, d in sources:
        if pid_col.get(t) is not None and "name" in d.columns:
            rows = (d.join(p.persons.withColumnRenamed("token", "citizen_id__tok"), "citizen_id__tok", "left_semi")
                    .select(decrypt(F.col("citizen_id"), keyring).alias("i"), decrypt(F.col("name"), keyring)
                            .alias("n"), "person_hint").collect())
            ids |= {r["i"] for r in rows if r["i"]}
            names |= {r["n"] for r in rows if r["n"]}
            strings |= {r["person_hint"] for r in rows if r["person_hint"]}
    if strings and p.silver:   # a digest the destroyed share with a surviving record is not theirs alone
        hint_set = list(strings)
        for t, df in p.silver.items():
            if "person_hint" in df.columns:
                alive = df.join(p.doomed.filter(F.col("table") == t).select("record_id"), "record_id", "left_anti")
                strings -= {r[0] for r in alive.filter(F.col("person_hint").isin(hint_set))
                            .select("person_hint").distinct().collect()}
    strings |= {r["token"] for r in p.persons.collect()}
    for _, _, gone, _ in p.tables + p.archive:
        blobs |= set(_binary_values(gone))
    survivors = list(p.silver.items()) + [(t, a) for t in p.silver
                                          if (a := read_archived(spark, settings, f"silver.{t}")) is not None]
    blobs -= _still_held(spark, survivors, p.doomed, blobs)
    record_digests = sorted(certificate_digest(cert_key, r["ref"]) for r in p.doomed.select("ref").collect())
    cert_id = saved["certificate_id"] or hashlib.sha256(
        (as_of + "|" + "|".join(record_digests)).encode()).hexdigest()[:24]
    touched = sorted(set(saved.get("tables", [])) | {f"{layer}.{name}" for layer, name, _, _ in p.tables})
    return Fingerprints(ids, names, strings, blobs, sorted({certificate_digest(cert_key, i) for i in ids}),
                        record_digests, cert_id, touched)


def _binary_values(df: DataFrame) -> list[bytes]:
    cols = [c for c, t in df.dtypes if t == "binary"]
    if not cols:
        return []
    vals = df.select(F.explode(F.array(*[F.col(c) for c in cols])).alias("b")).filter("b IS NOT NULL")
    return [bytes(r["b"]) for r in vals.collect()]


def _still_held(spark, silver: list[tuple[str, DataFrame]], doomed: DataFrame, blobs: set[bytes]) -> set[bytes]:
    """The ciphertexts among ``blobs`` that a surviving silver record — live (hot or cold) or in the
    archive zone — holds too: a bronze version that never became live can share its encrypted value
    with the record that did, and a golden record copies its values from a person's records. They
    are that record's, not the destroyed rows' alone, so the scan must not demand their absence."""
    if not blobs:
        return set()
    wanted = spark.createDataFrame([(b,) for b in blobs], "b binary")
    out: set[bytes] = set()
    for t, df in silver:
        cols = [c for c, ty in df.dtypes if ty == "binary"]
        if not cols:
            continue
        alive = df.join(doomed.filter(F.col("table") == t).select("record_id"), "record_id", "left_anti")
        vals = alive.select(F.explode(F.array(*[F.col(c) for c in cols])).alias("b")).filter("b IS NOT NULL")
        out |= {bytes(r["b"]) for r in vals.join(wanted, "b", "left_semi").distinct().collect()}
    return out


# ---------------------------------------------------------------- 3 and 7. the certificate

def _policy_digest() -> str:
    return "conf/retention.yaml sha256:" + hashlib.sha256((CONF_DIR / "retention.yaml").read_bytes()).hexdigest()[:16]


def _certificate_row(p: Plan, fp: Fingerprints, policy: Policy, day: date, run_id: str, started: datetime,
                     **rest) -> dict:
    return dict(certificate_id=fp.certificate_id, as_of=day, rule=_policy_digest(),
                classes=json.dumps({k: asdict(v) for k, v in policy.classes.items()}, ensure_ascii=False),
                holds=[h.id for h in policy.holds], records=len(fp.record_digests), persons=p.n_persons,
                run_id=run_id, started_at=started, **rest)


def start_certificate(spark, settings: Settings, p: Plan, fp: Fingerprints, policy: Policy, day: date, run_id: str,
                      started: datetime) -> None:
    """The ``started`` row, once per certificate (a re-run after a crash finds it)."""
    path = settings.table_path(*CERTIFICATES)
    if table_exists(spark, path) and not read_table(spark, path).filter(
            (F.col("certificate_id") == fp.certificate_id) & (F.col("phase") == "started")).isEmpty():
        return
    row = _certificate_row(p, fp, policy, day, run_id, started, phase="started", tables=[],
                           record_digests=fp.record_digests, person_digests=fp.person_digests,
                           verification="pending", files_scanned=None, findings=None, ended_at=None)
    write_table(rows_frame(spark, "ops.destruction_certificates", [row]), path, mode="append", append_only=True,
                comment="destruction certificates (append-only): started / completed rows per destruction")


def complete_certificate(spark, settings: Settings, p: Plan, fp: Fingerprints, policy: Policy, day: date,
                         run_id: str, started: datetime, res: DestroyResult, findings: list[Finding]) -> None:
    """The ``completed`` row (``failed`` when the scan found anything), each table's state."""
    def folder(t: str) -> str:
        return t if t.startswith("archive/") else t.replace(".", "/", 1)

    log_until = day + _log_days(policy.log_retention)     # the run's as-of date, never the wall clock
    tables = [dict(table=t, rows_deleted=n, log_entries_until=log_until,
                   state=("logically erased" if any(f.file.startswith(folder(t) + "/") for f in findings)
                          else "physically erased")) for t, n in sorted(res.rows_deleted.items())]
    ok = not findings
    row = _certificate_row(p, fp, policy, day, run_id, started, phase="completed" if ok else "failed",
                           tables=tables, record_digests=[], person_digests=[],
                           verification=(f"passed: 0 findings in {res.files_scanned} files under the lake root"
                                         if ok else f"FAILED: {len(findings)} findings, e.g. {findings[0]}"),
                           files_scanned=res.files_scanned, findings=len(findings), ended_at=datetime.now())
    write_table(rows_frame(spark, "ops.destruction_certificates", [row]), settings.table_path(*CERTIFICATES),
                mode="append", append_only=True)


def _log_days(interval: str) -> timedelta:
    parts = interval.split()
    n = int(parts[1]) if parts[0] == "interval" else int(parts[0])
    return timedelta(days=n)


# ---------------------------------------------------------------- 4. logical erasure

def erase(spark, settings: Settings, p: Plan, as_of: str) -> dict[str, int]:
    """Every place, silver last: rows deleted per ``archive/<batch>/<table>`` and ``layer.table``."""
    deleted: dict[str, int] = {}
    for b, table, gone, keys in p.archive:
        n = rewrite_without(spark, settings, b, table, gone, keys)
        if n:
            deleted[f"archive/{b}/{table}"] = n
    for layer, name, gone, keys in p.tables:
        n = delete_matching(spark, settings.table_path(layer, name), gone, keys)
        if n:
            deleted[f"{layer}.{name}"] = n
            log.info("destroy %s: %d rows deleted from %s.%s", as_of, n, layer, name)
    return deleted


# ---------------------------------------------------------------- 5. physical erasure

def purge(spark, settings: Settings, tables: list[str], policy: Policy, as_of: str) -> list[str]:
    """Deletion vectors, old versions, change data — of each of ``tables`` (never the certificates);
    the tables where anything was done. REORG … APPLY (PURGE) where deletion vectors exist; the
    purged versions become the ones readers see (one append to ``ops.published``) before VACUUM,
    with the retention check off for these calls only, removes the files of the versions before
    them. A clean table is left alone, so a re-run adds no version."""
    todo = []
    for t in tables:
        layer, name = t.split(".", 1)
        path = settings.table_path(layer, name)
        if (layer, name) == CERTIFICATES or not table_exists(spark, path):
            continue
        dvs, garbage = _physical_debris(spark, path)
        if dvs:
            spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
        if dvs or garbage:
            todo.append((t, path))
    if not todo:
        return []
    publish.publish_heads(spark, settings, [t for t, _ in todo], as_of, "destroy")
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        for _, path in todo:
            DeltaTable.forPath(spark, str(path)).vacuum(policy.vacuum_retain_hours)
    finally:
        spark.conf.set(key, before)
    return [t for t, _ in todo]


def _physical_debris(spark, path: Path) -> tuple[bool, bool]:
    """(deletion vectors on disk, files on disk the current version does not use)."""
    folder = Path(str(path))
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
               and "_delta_log" not in p.parts and not p.name.startswith(".") and p.suffix in (".parquet", ".bin")}
    dvs = any(p.endswith(".bin") for p in on_disk)
    used = {unquote(f).split(str(folder) + "/", 1)[-1] for f in read_table(spark, path).inputFiles()}
    garbage = any(p not in used for p in on_disk if p.endswith(".parquet"))
    return dvs, garbage


# ---------------------------------------------------------------- 6. proof

def prove(spark, settings: Settings, fp: Fingerprints, purged: list[str], policy: Policy,
          as_of: str) -> tuple[list[Finding], int, list[str]]:
    """Scan every byte under the lake root: (findings, files scanned, tables purged in addition).
    An older version of a table this run did not change can still hold them (a nightly rebuild kept
    in the history): those tables are purged and the lake scanned again."""
    def scan():
        return scan_destroyed(settings.lake, ids=fp.ids, names=fp.names, strings=fp.strings, blobs=fp.blobs)

    findings, files = scan()
    extra = sorted(_tables_of(settings, findings) - set(purged))
    if not extra:
        return findings, files, []
    log.info("destroy %s: scan found old versions in %s; purging them too", as_of, ", ".join(extra))
    again = purge(spark, settings, extra, policy, as_of)
    findings, files = scan()
    return findings, files, again


def _tables_of(settings: Settings, findings) -> set[str]:
    """The Delta tables (``layer.name``) whose folders hold these findings' files."""
    folders = {f"{layer}/{name}/": f"{layer}.{name}" for layer, name in lake_tables(settings.lake)}
    return {t for f in findings for prefix, t in folders.items() if f.file.startswith(prefix)}
