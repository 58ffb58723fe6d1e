"""Ingest: one department delivery → bronze Delta tables (+ quarantine), verified and encrypted.

    spark-submit jobs/ingest.py --source police --batch-date 2026-11-27

Steps: verify the manifest (any fault rejects the whole delivery, recorded in ops.deliveries);
read each file with Spark's reader for its format; keep malformed records as quarantine rows
(reason code, encrypted raw text); encrypt L3/L4 fields and add identity tokens; write each
entity's bronze table (partition of the batch date) and the quarantine, idempotently; then check
conservation from the written tables: manifest rows = bronze rows + quarantined rows, per file, in
the delivery ledger ``ops.deliveries`` (``shuzhi.ledgers``).
"""
from __future__ import annotations

import logging
import sys
import uuid
from datetime import datetime

from shuzhi import ledgers
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import write_to
from shuzhi.errors import DeliveryRejected
from shuzhi.jobmain import job_main
from shuzhi.ledgers import FileResult, IngestResult
from shuzhi.manifest import Delivery, DeliveryFile, check_source, verify_delivery
from shuzhi.readers import opened
from shuzhi.stages.bronze import Lineage, to_bronze, to_quarantine

log = logging.getLogger("shuzhi.ingest")

__all__ = ["FileResult", "IngestResult", "run", "summary", "task"]


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
        bw = write_to(settings, f"bronze.{entity.table_name}", bronze_df, mode="replace", txn=(txn, 0),
                      replace_where=f"_batch_date = DATE'{delivery.batch_date}'")
        write_to(settings, "bronze.quarantine", quarantine_df, mode="replace", txn=(txn + ":quarantine", 0),
                 replace_where=(f"_source = '{delivery.source}' AND _batch_date = DATE'{delivery.batch_date}' "
                                f"AND _entity = '{entity.name}'"))
    return ledgers.count_ingested(spark, settings, delivery, dfile, bw.skipped)   # from what the tables hold


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
            ledgers.record_rejection(spark, settings, source, batch_date, rej, run_id, now)
            audit.outcome = "rejected"
            audit.detail = rej.code
            log.error("%s — nothing of it was loaded", rej)
            raise
        result = IngestResult(source, batch_date, "loaded", kind=delivery.kind)
        for dfile in delivery.files:
            result.files.append(_ingest_file(spark, settings, delivery, dfile, run_id, now, keyring))
        for note in delivery.notes:
            log.warning("delivery %s: %s", delivery.label, note)
        ledgers.record_accepted(spark, settings, delivery, result, run_id, now)
        if all(f.skipped for f in result.files):
            result.status = "noop"
            audit.outcome = "noop"
        audit.rows_in = sum(f.manifest_rows for f in result.files)
        audit.rows_loaded = sum(f.bronze_rows for f in result.files)
        audit.rows_quarantined = sum(f.quarantined_rows for f in result.files)
        ledgers.check_ingested(delivery, result)
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
