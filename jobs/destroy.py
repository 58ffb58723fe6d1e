"""Destroy: remove every record past its destruction age (and not under a legal hold) from every
place the lake holds it, prove it with a byte scan of the whole lake, and certify it.

    spark-submit jobs/destroy.py --as-of 2056-12-01

Policy: ``conf/retention.yaml`` (classes, clocks, holds). The unit is the record of a SPEC entity
(silver, keyed ``source/entity/record_id``): it is due when its clock plus its class's
``destroy_after`` is on or before ``--as-of``, and destroyed unless a hold covers it or a person it
names. With it go its bronze versions, its corrections log, its quarantined versions, the gold rows
built from it, and — for a person no surviving row names any more (a *destroyed person*) — the
person's golden record and conflicts. Rows of the quarantine tables (and bronze versions that never
became live) run on the ``quarantine`` class by the night they were delivered.

Then physically, in every table that lost rows: deletion vectors purged (``REORG … APPLY
(PURGE)``), old versions and change-data files removed (``VACUUM`` with Delta's retention check
overridden in this job only); and every byte under the lake root scanned for the destroyed
persons' identity numbers, names, tokens and the ciphertexts the destroyed rows held
(``shuzhi.scan.scan_destroyed``). A table the scan finds them in is purged too and the lake
scanned again (an old version of a table this run did not change, e.g. a nightly rebuild). A
certificate goes into ``ops.destruction_certificates`` (append-only): a ``started`` row before the
first delete, a ``completed`` (or ``failed``) row after the scan. A finding fails the job.

Crash safety: silver, from which the plan is computed, is deleted last, so a re-run recomputes
the same plan; the scan's fingerprints and the tables to purge are kept (encrypted with the
certificate key, outside the lake) in ``$SHUZHI_HOME/destruction/`` until the certificate is
complete. Re-running after completion finds nothing due: no write, no certificate.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shuzhi import publish
from shuzhi.access import COLD
from shuzhi.archive import RESTORED, archive_root, batches, clear_debris, read_archived, read_manifest, rewrite_without
from shuzhi.audit import audited
from shuzhi.config import CONF_DIR, Settings
from shuzhi.crypto import Keyring, certificate_digest, certificate_key, decrypt
from shuzhi.delta import delete_matching, read_table, table_exists, write_table
from shuzhi.errors import DestructionNotProven
from shuzhi.frames import union_all
from shuzhi.jobmain import job_main
from shuzhi.retention import Policy, lake_tables, load_policy
from shuzhi.scan import scan_destroyed
from shuzhi.selection import ROW_KEY, read_if_exists, record_status, retention_task, select_records
from shuzhi.stages.retention import (
    GOLD_KEYS,
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


# ---------------------------------------------------------------- I/O shell

def _certificate_schema() -> T.StructType:
    s, L = T.StringType(), T.LongType()
    return T.StructType([
        T.StructField("certificate_id", s, False), T.StructField("phase", s, False),
        T.StructField("as_of", T.DateType(), False), T.StructField("rule", s),
        T.StructField("classes", s), T.StructField("holds", T.ArrayType(s)),
        T.StructField("records", L), T.StructField("persons", L),
        T.StructField("tables", T.ArrayType(T.StructType([
            T.StructField("table", s), T.StructField("rows_deleted", L), T.StructField("state", s),
            T.StructField("log_entries_until", T.DateType())]))),
        T.StructField("record_digests", T.ArrayType(s)), T.StructField("person_digests", T.ArrayType(s)),
        T.StructField("verification", s), T.StructField("files_scanned", L), T.StructField("findings", L),
        T.StructField("run_id", s), T.StructField("started_at", T.TimestampType()),
        T.StructField("ended_at", T.TimestampType()),
    ])


def _policy_digest() -> str:
    return "conf/retention.yaml sha256:" + hashlib.sha256((CONF_DIR / "retention.yaml").read_bytes()).hexdigest()[:16]


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


class _Workfile:
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


def _physical_debris(spark, path: Path) -> tuple[bool, bool]:
    """(deletion vectors on disk, files on disk the current version does not use)."""
    folder = Path(str(path))
    on_disk = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
               and "_delta_log" not in p.parts and not p.name.startswith(".") and p.suffix in (".parquet", ".bin")}
    dvs = any(p.endswith(".bin") for p in on_disk)

    used = {unquote(f).split(str(folder) + "/", 1)[-1] for f in read_table(spark, path).inputFiles()}
    garbage = any(p not in used for p in on_disk if p.endswith(".parquet"))
    return dvs, garbage


def _purge_and_vacuum(spark, path: Path, retain_hours: int, published=lambda: None) -> bool:
    """REORG … APPLY (PURGE) where deletion vectors exist, then VACUUM with the retention check
    off for this call only. Returns whether anything was done (a clean table is left alone, so a
    re-run adds no version). ``published()`` runs between the two: the purged version becomes the
    one readers see before VACUUM removes the files of the versions before it."""

    dvs, garbage = _physical_debris(spark, path)
    if dvs:
        spark.sql(f"REORG TABLE delta.`{path}` APPLY (PURGE)")
        garbage = True
    if not garbage:
        return False
    published()
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        DeltaTable.forPath(spark, str(path)).vacuum(retain_hours)
    finally:
        spark.conf.set(key, before)
    return True


def run(spark, settings: Settings, as_of: str, *, run_id: str | None = None, keyring: Keyring | None = None,
        policy: Policy | None = None) -> DestroyResult:
    keyring = keyring or Keyring.load(settings.key_dir)
    policy = policy or load_policy()
    run_id = run_id or uuid.uuid4().hex
    day = date.fromisoformat(as_of)
    res = DestroyResult(as_of, "destroyed")
    cert_key = certificate_key(settings.key_dir)
    work = _Workfile(settings, cert_key, as_of)
    clock = [time.monotonic()]

    def lap(phase: str) -> None:
        now = time.monotonic()
        res.seconds[phase] = round(now - clock[0], 1)
        clock[0] = now

    with audited(spark, settings, stage="destroy", source=None, batch_date=as_of, run_id=run_id) as audit, \
            publish.retention_writes(spark, settings, "destroy", as_of):
        sel = select_records(spark, settings, day, policy, keyring, "destroy", with_archive=True)
        if sel is None:
            res.status, audit.outcome, audit.detail = "noop", "noop", "no silver tables"
            return res
        entities, silver, refs, doomed = sel.entities, sel.silver, sel.refs, sel.selected
        res.records = {r["table"]: r["n"] for r in doomed.groupBy("table").agg(F.count("*").alias("n")).collect()}
        res.held_records = sel.held_records
        live = (refs.join(doomed.select("ref"), "ref", "left_anti").select("table", "record_id", "ref", "tokens")
                .localCheckpoint(eager=True))
        q_cut = policy.table_class("silver.quarantine").destroy_cutoff(day)
        doomed_refs = doomed.select("ref")
        lap("select")

        # what each table loses (computed before any delete; silver last)
        plan: list[tuple[str, str, DataFrame, list[str]]] = []      # (layer, name, doomed rows, keys)
        surviving_tokens = [live.select(F.explode("tokens").alias("token"))]
        for t, e in entities.items():
            b = read_if_exists(spark, settings, "bronze", t)
            if b is None:
                continue
            gone = doomed_delivered(b.withColumn("__ref", entity_ref(e, e.record_id)), doomed_refs,
                                    live.filter(F.col("table") == t), q_cut)
            plan.append(("bronze", t, gone, ROW_KEY))
            surviving_tokens.append(b.join(gone.select(*ROW_KEY), ROW_KEY, "left_anti")
                                    .select(F.explode(tokens_of(b)).alias("token")))
        sq = read_if_exists(spark, settings, "silver", "quarantine")
        if sq is not None:
            gone = doomed_quarantined(sq, doomed_refs, q_cut)
            plan.append(("silver", "quarantine", gone, ["_source"] + ROW_KEY))
            surviving_tokens.append(sq.join(gone.select("_source", *ROW_KEY), ["_source"] + ROW_KEY, "left_anti")
                                    .select(F.col("citizen_id__tok").alias("token")))
        persons = destroyed_persons(doomed, union_all(surviving_tokens)).localCheckpoint(eager=True)
        bq = read_if_exists(spark, settings, "bronze", "quarantine")
        if bq is not None:
            bq_cut = policy.table_class("bronze.quarantine").destroy_cutoff(day)
            plan.append(("bronze", "quarantine", bq.filter(F.col("_batch_date") <= F.lit(bq_cut)),
                         ["_source"] + ROW_KEY))
        fi = read_if_exists(spark, settings, "silver", "findings")
        if fi is not None:
            plan.append(("silver", "findings", doomed_findings(fi, doomed_refs, live, q_cut),
                         ["_batch_date", "_source", "_entity", "record_id"]))
        for name, keys in GOLD_KEYS.items():
            g = read_if_exists(spark, settings, "gold", name)
            if g is not None:
                plan.append(("gold", name, doomed_gold(name, g, doomed, persons), keys))
        for t in silver:
            ids = doomed.filter(F.col("table") == t).select("record_id")
            if table_exists(spark, settings.table_path(COLD, t)):
                plan.append((COLD, t, ids, ["record_id"]))
            plan.append(("silver", t, ids, ["record_id"]))
        # copies restored from the archive for querying go the same way as their batch
        for layer, name in lake_tables(settings.lake):
            if layer != RESTORED or name.count("__") < 2:
                continue
            _, src_layer, t = name.split("__", 2)
            r = read_if_exists(spark, settings, layer, name)
            if r is None or t not in entities:
                continue
            if src_layer == "silver":
                plan.insert(0, (layer, name, r.join(doomed.filter(F.col("table") == t).select("record_id"),
                                                    "record_id", "left_semi"), ["record_id"]))
            else:
                e = entities[t]
                gone = (r.withColumn("__ref", entity_ref(e, e.record_id))
                        .join(doomed_refs.withColumnRenamed("ref", "__ref"), "__ref", "left_semi").drop("__ref"))
                plan.insert(0, (layer, name, gone, ROW_KEY))
        # the archive zone: each batch's copy of the records, rewritten without the destroyed
        clear_debris(settings)
        arch_plan: list[tuple[str, str, DataFrame, list[str]]] = []   # (batch, layer.table, doomed rows, keys)
        archived_silver: dict[str, list[DataFrame]] = {}
        for b in batches(settings):
            for table, entry in read_manifest(settings, b)["tables"].items():
                layer, name = table.split(".", 1)
                if not entry["files"] or name not in entities:
                    continue
                df = spark.read.parquet(str(archive_root(settings) / b / table))
                if layer == "silver":
                    gone = df.join(doomed.filter(F.col("table") == name).select("record_id"), "record_id", "left_semi")
                    arch_plan.append((b, table, gone, ["record_id"]))
                    archived_silver.setdefault(name, []).append(gone)
                else:
                    e = entities[name]
                    aref = df.withColumn("__ref", entity_ref(e, e.record_id))
                    gone = aref.join(doomed_refs.withColumnRenamed("ref", "__ref"), "__ref", "left_semi").drop("__ref")
                    arch_plan.append((b, table, gone, ROW_KEY))

        # each table's doomed rows, computed once (they are read for the scan's fingerprints, the
        # match check and the delete); only tables that lose rows are kept in the plan
        plan = [(layer, name, gone.localCheckpoint(eager=True), keys) for layer, name, gone, keys in plan]
        plan = [p for p in plan if not p[2].isEmpty()]
        arch_plan = [(b, t, gone.localCheckpoint(eager=True), keys) for b, t, gone, keys in arch_plan]
        arch_plan = [p for p in arch_plan if not p[2].isEmpty()]
        fp = work.load()
        n_persons = persons.count()
        lap("plan")
        res.persons = n_persons
        planned = bool(plan or arch_plan)
        if not planned and fp["certificate_id"] is None:
            res.status, audit.outcome = "noop", "noop"
            audit.detail = f"nothing past its destruction age at {as_of} (held: {res.held_records})"
            return res

        # fingerprints for the scan (before the first delete) and the certificate's digests
        started = datetime.now()
        pid_col = {t: e.person_id_field for t, e in entities.items()}
        ids, names, strings, blobs = set(fp["ids"]), set(fp["names"]), set(fp["strings"]), set()
        blobs |= {bytes.fromhex(b) for b in fp["blobs"]}
        person_digests = []
        sources = [(t, df.join(doomed.filter(F.col("table") == t).select("record_id"), "record_id", "left_semi"))
                   for t, df in silver.items()] + [(t, g) for t, gs in archived_silver.items() for g in gs]
        for t, d in sources:
            if pid_col.get(t) is not None and "name" in d.columns:
                rows = (d.join(persons.withColumnRenamed("token", "citizen_id__tok"), "citizen_id__tok", "left_semi")
                        .select(decrypt(F.col("citizen_id"), keyring).alias("i"), decrypt(F.col("name"), keyring)
                                .alias("n"), "person_hint").collect())
                ids |= {r["i"] for r in rows if r["i"]}
                names |= {r["n"] for r in rows if r["n"]}
                hints = {r["person_hint"] for r in rows if r["person_hint"]}
                strings |= hints
        if strings and silver:   # a digest the destroyed share with a surviving record is not theirs alone
            hint_set = list(strings)
            for t, df in silver.items():
                if "person_hint" in df.columns:
                    alive = df.join(doomed.filter(F.col("table") == t).select("record_id"), "record_id", "left_anti")
                    strings -= {r[0] for r in alive.filter(F.col("person_hint").isin(hint_set))
                                .select("person_hint").distinct().collect()}
        strings |= {r["token"] for r in persons.collect()}
        for _, _, gone, _ in plan + arch_plan:
            blobs |= set(_binary_values(gone))
        survivors = list(silver.items()) + [(t, a) for t in silver
                                            if (a := read_archived(spark, settings, f"silver.{t}")) is not None]
        blobs -= _still_held(spark, survivors, doomed, blobs)
        person_digests = sorted({certificate_digest(cert_key, i) for i in ids})
        record_digests = sorted(certificate_digest(cert_key, r["ref"]) for r in doomed.select("ref").collect())
        cert_id = fp["certificate_id"] or hashlib.sha256(
            (as_of + "|" + "|".join(record_digests)).encode()).hexdigest()[:24]
        # the tables to purge: those losing rows now, and those a crashed run of this destruction
        # already took rows from (kept in the work file, as a re-run finds nothing left to delete there)
        touched = sorted(set(fp.get("tables", [])) | {f"{layer}.{name}" for layer, name, _, _ in plan})
        work.save({"ids": sorted(ids), "names": sorted(names), "strings": sorted(strings),
                   "blobs": sorted(b.hex() for b in blobs), "certificate_id": cert_id, "tables": touched})
        res.certificate_id = cert_id
        lap("fingerprints")
        cert_path = settings.table_path(*CERTIFICATES)
        classes = json.dumps({k: asdict(v) for k, v in policy.classes.items()}, ensure_ascii=False)
        already = (table_exists(spark, cert_path) and not read_table(spark, cert_path)
                   .filter((F.col("certificate_id") == cert_id) & (F.col("phase") == "started")).isEmpty())
        if not already:
            write_table(spark.createDataFrame([dict(
                certificate_id=cert_id, phase="started", as_of=day, rule=_policy_digest(), classes=classes,
                holds=[h.id for h in policy.holds], records=len(record_digests), persons=n_persons, tables=[],
                record_digests=record_digests, person_digests=person_digests, verification="pending",
                files_scanned=None, findings=None, run_id=run_id, started_at=started, ended_at=None)],
                _certificate_schema()), cert_path, mode="append", append_only=True,
                comment="destruction certificates (append-only): started / completed rows per destruction")

        # logical erasure: every place, silver last
        for b, table, gone, keys in arch_plan:
            n = rewrite_without(spark, settings, b, table, gone, keys)
            if n:
                res.rows_deleted[f"archive/{b}/{table}"] = n
        for layer, name, gone, keys in plan:
            n = delete_matching(spark, settings.table_path(layer, name), gone, keys)
            if n:
                res.rows_deleted[f"{layer}.{name}"] = n
                log.info("destroy %s: %d rows deleted from %s.%s", as_of, n, layer, name)
        lap("erase")
        # physical erasure: deletion vectors, old versions, change data — of every table that lost rows
        def purge(tables: list[str]) -> None:
            for t in tables:
                layer, name = t.split(".", 1)
                if (layer, name) != CERTIFICATES and table_exists(spark, settings.table_path(layer, name)) \
                        and _purge_and_vacuum(spark, settings.table_path(layer, name), policy.vacuum_retain_hours,
                                              lambda t=t: publish.publish_head(spark, settings, t, as_of, "destroy")):
                    res.tables_vacuumed.append(t)

        purge(touched)
        lap("purge_vacuum")
        # proof: every byte under the lake root
        findings, res.files_scanned = scan_destroyed(settings.lake, ids=ids, names=names, strings=strings,
                                                     blobs=blobs)
        # an older version of a table this run did not change can still hold them (a nightly rebuild
        # kept in the history): purge the tables named, and scan again
        extra = sorted(_tables_of(settings, findings) - set(res.tables_vacuumed))
        if extra:
            log.info("destroy %s: scan found old versions in %s; purging them too", as_of, ", ".join(extra))
            purge(extra)
            findings, res.files_scanned = scan_destroyed(settings.lake, ids=ids, names=names, strings=strings,
                                                         blobs=blobs)
        lap("scan")
        res.findings = [str(f) for f in findings[:200]]
        def folder(t: str) -> str:
            return t if t.startswith("archive/") else t.replace(".", "/", 1)

        def erased(t: str) -> str:
            return ("logically erased" if any(f.file.startswith(folder(t) + "/") for f in findings)
                    else "physically erased")

        log_until = day + _log_days(policy.log_retention)     # the run's as-of date, never the wall clock
        tables = [dict(table=t, rows_deleted=n,
                       state=erased(t),
                       log_entries_until=log_until) for t, n in sorted(res.rows_deleted.items())]
        ok = not findings
        write_table(spark.createDataFrame([dict(
            certificate_id=cert_id, phase="completed" if ok else "failed", as_of=day, rule=_policy_digest(),
            classes=classes, holds=[h.id for h in policy.holds], records=len(record_digests), persons=n_persons,
            tables=tables, record_digests=[], person_digests=[],
            verification=(f"passed: 0 findings in {res.files_scanned} files under the lake root" if ok else
                          f"FAILED: {len(findings)} findings, e.g. {findings[0]}"),
            files_scanned=res.files_scanned, findings=len(findings), run_id=run_id, started_at=started,
            ended_at=datetime.now())], _certificate_schema()), cert_path, mode="append", append_only=True)
        audit.rows_in = sum(res.records.values())
        audit.detail = json.dumps({"certificate": cert_id, "persons": n_persons, "rows_deleted": res.rows_deleted},
                                  ensure_ascii=False)[:4000]
        if not ok:
            res.status = "failed"
            raise DestructionNotProven(
                f"destruction as of {as_of} (certificate {cert_id}) not proven: {len(findings)} findings under "
                f"{settings.lake}: " + "; ".join(res.findings[:10]))
        work.remove()
    return res


def _tables_of(settings: Settings, findings) -> set[str]:
    """The Delta tables (``layer.name``) whose folders hold these findings' files."""
    folders = {f"{layer}/{name}/": f"{layer}.{name}" for layer, name in lake_tables(settings.lake)}
    return {t for f in findings for prefix, t in folders.items() if f.file.startswith(prefix)}


def _log_days(interval: str) -> timedelta:
    parts = interval.split()
    n = int(parts[1]) if parts[0] == "interval" else int(parts[0])
    return timedelta(days=n)


def summary(res: DestroyResult) -> dict:
    return {"stage": "destroy", **asdict(res)}


def verify(spark, settings: Settings, as_of: str, held_before: int, policy: Policy, keyring: Keyring) -> dict:
    """After destroy: the certificate of ``as_of`` (if anything was destroyed) must be complete with
    its byte scan passed; records the destroy stage's status row for the gate."""
    path = settings.table_path(*CERTIFICATES)
    certs = (read_table(spark, path).filter(F.col("as_of") == F.lit(date.fromisoformat(as_of)))
             .select("certificate_id", "phase", "verification").collect() if table_exists(spark, path) else [])
    started = {r["certificate_id"] for r in certs if r["phase"] == "started"}
    done = {r["certificate_id"] for r in certs if r["phase"] == "completed"}
    detail = "; ".join(f"{r['certificate_id']}: {r['verification']}" for r in certs if r["phase"] != "started") \
        or "nothing destroyed"
    return record_status(spark, settings, as_of, "destroy", held_before=held_before, verified=started <= done,
                         detail=detail, policy=policy, keyring=keyring)


def task(spark, settings: Settings, as_of: str, verify_held_before: str | int | None = None,
         run_id: str | None = None) -> dict:
    """Destroy as of a date (its status row is recorded by the verify step), or, given
    ``verify_held_before``, verify that destruction and record the status row."""
    if verify_held_before is not None:
        return verify(spark, settings, as_of, int(verify_held_before), load_policy(), Keyring.load(settings.key_dir))
    return retention_task(spark, settings, "destroy", as_of,
                          lambda keyring, policy: summary(run(spark, settings, as_of, run_id=run_id, keyring=keyring,
                                                              policy=policy)), record=False)


def main(argv: list[str] | None = None) -> int:
    return job_main("destroy", task, {"as_of": "required: the date ages are counted to (YYYY-MM-DD)",
                                      "verify_held_before": "verify the destruction of as_of instead; records "
                                                            "under hold before it"}, argv)


if __name__ == "__main__":
    sys.exit(main())
