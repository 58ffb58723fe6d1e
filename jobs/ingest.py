"""Ingest: one department delivery → bronze Delta tables (+ quarantine), verified and encrypted.

    spark-submit jobs/ingest.py --source police --batch-date 2026-11-27

Steps: verify the manifest (any fault rejects the whole delivery, recorded in ops.deliveries);
read each file with Spark's reader for its format; keep malformed records as quarantine rows
(reason code, encrypted raw text); encrypt L3/L4 fields and add identity tokens; write each
entity's bronze table (partition of the batch date) and the quarantine, idempotently; then check
conservation from the written tables: manifest rows = bronze rows + quarantined rows.
"""
from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import functions as F
from pyspark.sql import types as T

from shuzhi import registry
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import read_table, write_table
from shuzhi.errors import ConservationError, DeliveryRejected
from shuzhi.jobmain import job_main
from shuzhi.manifest import (
    Delivery,
    DeliveryFile,
    check_source,
    manifest_fingerprint,
    parse_batch_date,
    verify_delivery,
)
from shuzhi.readers import opened
from shuzhi.stages.bronze import Lineage, to_bronze, to_quarantine

log = logging.getLogger("shuzhi.ingest")

QUARANTINE = ("bronze", "quarantine")
DELIVERIES = ("ops", "deliveries")


@dataclass
class FileResult:
    file: str
    entity: str
    table: str
    manifest_rows: int
    bronze_rows: int
    quarantined_rows: int
    skipped: bool
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.manifest_rows == self.bronze_rows + self.quarantined_rows


@dataclass
class IngestResult:
    source: str
    batch_date: str
    status: str                       # loaded | noop | rejected
    kind: str | None = None
    files: list[FileResult] = field(default_factory=list)
    reason_code: str | None = None
    message: str | None = None

# ---------------------------------------------------------------- I/O shell

def _deliveries_schema() -> T.StructType:
    s = T.StringType()
    return T.StructType([T.StructField(n, t) for n, t in [
        ("delivery_id", s), ("source", s), ("batch_date", T.DateType()), ("kind", s), ("status", s),
        ("reason_code", s), ("message", s), ("file", s), ("entity", s), ("manifest_rows", T.LongType()),
        ("bronze_rows", T.LongType()), ("quarantined_rows", T.LongType()), ("balanced", T.BooleanType()),
        ("declared_encoding", s), ("actual_encoding", s), ("has_bom", T.BooleanType()), ("run_id", s),
        ("recorded_at", T.TimestampType())]])


def record_delivery(spark, settings: Settings, rows: list[dict], txn_id: str) -> None:
    """Append the delivery's ledger rows (one per file, or one for a rejection), once per delivery."""
    write_table(
        spark.createDataFrame(rows, _deliveries_schema()),
        settings.table_path(*DELIVERIES),
        mode="append",
        txn=(txn_id, 0),
        append_only=True,
        comment="delivery ledger: accepted/rejected, conservation",
    )


def _ingest_file(spark, settings: Settings, delivery: Delivery, dfile: DeliveryFile, run_id: str,
                 loaded_at: datetime, keyring: Keyring) -> FileResult:
    entity = dfile.entity
    lin = Lineage(delivery.source, entity.name, delivery.batch_date, dfile.name, delivery.delivery_id, run_id,
                  loaded_at, dfile.actual_encoding)
    for note in dfile.notes:
        log.warning("delivery %s file %s: %s", delivery.label, dfile.name, note)
    if dfile.encoding_mismatch:
        log.warning("delivery %s file %s: manifest says %s but the bytes are %s%s; reading as %s", delivery.label,
                    dfile.name, dfile.declared_encoding, dfile.actual_encoding, " with a BOM" if dfile.has_bom else "",
                    dfile.actual_encoding)
    with opened(spark, dfile) as raw:  # parsed once, cached; released after both writes
        bronze_df = to_bronze(raw, entity, lin, keyring)
        quarantine_df = to_quarantine(raw, entity, lin, keyring, dfile.line_events, dfile.lines_exact)
        txn = f"ingest:{delivery.delivery_id}:{entity.table_name}"
        bw = write_table(
            bronze_df,
            settings.table_path("bronze", entity.table_name),
            mode="replace",
            replace_where=f"_batch_date = DATE'{delivery.batch_date}'",
            partition_by=["_batch_date"],
            txn=(txn, 0),
            stats_columns=registry.stats_columns(f"bronze.{entity.table_name}", bronze_df.columns),
            comment=f"bronze {entity.source}.{entity.name} ({entity.name_zh}) as delivered; L3/L4 encrypted",
        )
        write_table(quarantine_df, settings.table_path(*QUARANTINE), mode="replace",
                    replace_where=(f"_source = '{delivery.source}' AND _batch_date = DATE'{delivery.batch_date}' "
                                   f"AND _entity = '{entity.name}'"),
                    partition_by=["_source", "_batch_date"], txn=(txn + ":quarantine", 0),
                    stats_columns=registry.stats_columns("bronze.quarantine", quarantine_df.columns),
                    comment="records that could not be loaded, with reason codes; raw text encrypted")
    # Conservation from what the tables now hold, not from what we meant to write.
    b = (read_table(spark, settings.table_path("bronze", entity.table_name))
         .filter((F.col("_batch_date") == F.lit(date.fromisoformat(delivery.batch_date)))
                 & (F.col("_delivery_id") == delivery.delivery_id)).count())
    q_df = read_table(spark, settings.table_path(*QUARANTINE)).filter(
        (F.col("_source") == delivery.source)
        & (F.col("_batch_date") == F.lit(date.fromisoformat(delivery.batch_date)))
        & (F.col("_entity") == entity.name)
        & (F.col("_delivery_id") == delivery.delivery_id)
    )
    reasons = {r["reason_code"]: r["count"] for r in q_df.groupBy("reason_code").count().collect()}
    for r in q_df.orderBy("_row").select("_file", "locator", "reason_code", "rule_detail").limit(10).collect():
        log.warning("delivery %s file %s %s: quarantined %s (%s)", delivery.label, r["_file"], r["locator"],
                    r["reason_code"], r["rule_detail"])
    return FileResult(
        dfile.name, entity.name, entity.table_name, dfile.rows, b, sum(reasons.values()), bw.skipped, reasons
    )


def run(spark, settings: Settings, source: str, batch_date: str, *, run_id: str | None = None,
        keyring: Keyring | None = None) -> IngestResult:
    """Ingest one delivery. Raises ``DeliveryRejected`` (after recording it) or ``ConservationError``."""
    check_source(source)                      # a typo is the caller's mistake: no ledger row, no audit row
    keyring = keyring or Keyring.load(settings.key_dir)
    run_id = run_id or uuid.uuid4().hex
    with audited(spark, settings, stage="ingest", source=source, batch_date=batch_date, run_id=run_id) as audit:
        now = datetime.now()
        try:
            delivery = verify_delivery(settings.landing, source, batch_date)
        except DeliveryRejected as rej:
            fp = manifest_fingerprint(settings.landing, source, batch_date)
            record_delivery(spark, settings, [dict(
                delivery_id=f"{source}/{batch_date}/{fp}", source=source, batch_date=parse_batch_date(batch_date),
                kind=None, status="rejected", reason_code=rej.code, message=rej.message, file=None, entity=None,
                manifest_rows=None, bronze_rows=0, quarantined_rows=0, balanced=None, declared_encoding=None,
                actual_encoding=None, has_bom=None, run_id=run_id, recorded_at=now)],
                txn_id=f"rejected:{source}/{batch_date}/{fp}:{rej.code}")
            audit.outcome = "rejected"
            audit.detail = rej.code
            log.error("%s — nothing of it was loaded", rej)
            raise
        result = IngestResult(source, batch_date, "loaded", kind=delivery.kind)
        for dfile in delivery.files:
            result.files.append(_ingest_file(spark, settings, delivery, dfile, run_id, now, keyring))
        for note in delivery.notes:
            log.warning("delivery %s: %s", delivery.label, note)
        rows = [dict(delivery_id=delivery.delivery_id, source=source, batch_date=date.fromisoformat(batch_date),
                     kind=delivery.kind, status="accepted", reason_code=None,
                     message="; ".join(d.notes + delivery.notes) or None, file=f.file, entity=f.entity,
                     manifest_rows=f.manifest_rows, bronze_rows=f.bronze_rows, quarantined_rows=f.quarantined_rows,
                     balanced=f.balanced, declared_encoding=d.declared_encoding, actual_encoding=d.actual_encoding,
                     has_bom=d.has_bom, run_id=run_id, recorded_at=now)
                for f, d in zip(result.files, delivery.files)]
        if not rows:                          # an incremental delivery with nothing changed
            rows = [dict(delivery_id=delivery.delivery_id, source=source, batch_date=date.fromisoformat(batch_date),
                         kind=delivery.kind, status="accepted", reason_code=None,
                         message="; ".join(("no files: nothing changed",) + delivery.notes), file=None, entity=None,
                         manifest_rows=0, bronze_rows=0, quarantined_rows=0, balanced=True, declared_encoding=None,
                         actual_encoding=None, has_bom=None, run_id=run_id, recorded_at=now)]
        record_delivery(spark, settings, rows, txn_id=f"accepted:{delivery.delivery_id}")
        if all(f.skipped for f in result.files):
            result.status = "noop"
            audit.outcome = "noop"
        audit.rows_in = sum(f.manifest_rows for f in result.files)
        audit.rows_loaded = sum(f.bronze_rows for f in result.files)
        audit.rows_quarantined = sum(f.quarantined_rows for f in result.files)
        unbalanced = [f for f in result.files if not f.balanced]
        if unbalanced:
            raise ConservationError("; ".join(
                f"delivery {delivery.label} file {f.file}: manifest {f.manifest_rows} rows != bronze {f.bronze_rows} "
                f"+ quarantined {f.quarantined_rows}" for f in unbalanced))
        return result


def summary(res: IngestResult) -> dict:
    return {"source": res.source, "batch_date": res.batch_date, "status": res.status, "kind": res.kind,
            "files": [{"table": f.table, "file": f.file, "manifest_rows": f.manifest_rows, "bronze_rows": f.bronze_rows,
                       "quarantined_rows": f.quarantined_rows, "reasons": f.reasons} for f in res.files]}


def task(spark, settings: Settings, source: str, batch_date: str, run_id: str | None = None) -> dict:
    """What the runner returns for one delivery (in-process or through spark-submit)."""
    return summary(run(spark, settings, source, batch_date, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("ingest", task, {"source": "required: department, e.g. police",
                                     "batch_date": "required: YYYY-MM-DD"}, argv)


if __name__ == "__main__":
    sys.exit(main())
