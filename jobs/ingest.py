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

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shuzhi.audit import audited
from shuzhi.bronze import LINEAGE_COLS, line_of
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, encrypt, with_protected_fields
from shuzhi.delta import read_table, write_table
from shuzhi.errors import ConservationError, DeliveryRejected
from shuzhi.manifest import (Delivery, DeliveryFile, check_source, manifest_fingerprint, parse_batch_date,
                             verify_delivery)
from shuzhi.readers import CORRUPT, opened
from shuzhi.schemas import Entity
from shuzhi.jobmain import job_main

log = logging.getLogger("shuzhi.ingest")

QUARANTINE = ("bronze", "quarantine")
DELIVERIES = ("ops", "deliveries")


@dataclass(frozen=True)
class Lineage:
    source: str
    entity: str
    batch_date: str
    file: str
    delivery_id: str
    run_id: str
    loaded_at: datetime
    encoding: str


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

    @property
    def tables(self) -> list[str]:
        return [f.table for f in self.files]


# ---------------------------------------------------------------- pure transforms

def is_loadable(entity: Entity):
    """A record bronze can hold: parsed, and carrying its record id (SPEC identifies records by it)."""
    rid = F.col(entity.record_id)
    return F.col(CORRUPT).isNull() & rid.isNotNull() & (F.trim(rid.cast("string")) != "")


def filter_well_formed(raw_df: DataFrame, entity: Entity) -> DataFrame:
    return raw_df.filter(is_loadable(entity)).drop(CORRUPT)


def filter_malformed(raw_df: DataFrame, entity: Entity) -> DataFrame:
    """Records bronze cannot hold, with their raw text (a parsed record without its id: as JSON)."""
    raw_text = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(n) for n in entity.field_names])))
    return raw_df.filter(~is_loadable(entity)).withColumn("__parsed", F.col(CORRUPT).isNull() | (F.col(CORRUPT) == "<resident/>")) \
        .withColumn(CORRUPT, raw_text)


def csv_field_count(raw_col):
    """Number of fields of a raw CSV line (commas outside double quotes, RFC 4180)."""
    return F.size(F.split(raw_col, r',(?=(?:[^"]*"[^"]*")*[^"]*$)', -1))


def with_reason(malformed_df: DataFrame, entity: Entity) -> DataFrame:
    """Classify malformed records: ``reason_code`` and a short ``rule_detail``."""
    df = _with_format_reason(malformed_df, entity)
    missing_id = F.col("__parsed")
    return (df.withColumn("reason_code", F.when(missing_id, "RECORD_ID_MISSING").otherwise(F.col("reason_code")))
            .withColumn("rule_detail", F.when(missing_id, F.lit(f"{entity.record_id} is empty"))
                        .otherwise(F.col("rule_detail"))).drop("__parsed"))


def _with_format_reason(malformed_df: DataFrame, entity: Entity) -> DataFrame:
    n = len(entity.fields)
    if entity.format == "csv":
        found = csv_field_count(F.col(CORRUPT))
        code = (F.when(found < n, "CSV_TOO_FEW_FIELDS").when(found > n, "CSV_TOO_MANY_FIELDS")
                .otherwise("CSV_MALFORMED"))
        detail = F.concat(F.lit(f"expected {n} fields, found "), found.cast("string"))
    elif entity.format == "jsonl":
        code, detail = F.lit("JSON_UNPARSABLE"), F.lit("not a parsable JSON object")
    elif entity.format == "xml":
        code, detail = F.lit("XML_MALFORMED"), F.lit("element is not well-formed XML")
    else:
        code, detail = F.lit("MALFORMED"), F.lit("unreadable record")
    return malformed_df.withColumn("reason_code", code).withColumn("rule_detail", detail)


def with_lineage(df: DataFrame, lin: Lineage, key_id: str | None = None) -> DataFrame:
    return (df.withColumn("_source", F.lit(lin.source)).withColumn("_entity", F.lit(lin.entity))
            .withColumn("_batch_date", F.lit(date.fromisoformat(lin.batch_date)))
            .withColumn("_file", F.lit(lin.file)).withColumn("_delivery_id", F.lit(lin.delivery_id))
            .withColumn("_run_id", F.lit(lin.run_id)).withColumn("_loaded_at", F.lit(lin.loaded_at))
            .withColumn("_encoding", F.lit(lin.encoding)))


def to_bronze(raw_df: DataFrame, entity: Entity, lin: Lineage, keyring: Keyring) -> DataFrame:
    """Well-formed records as delivered, L3/L4 fields encrypted, identity tokens, lineage."""
    df = with_protected_fields(filter_well_formed(raw_df, entity), entity, keyring)
    df = with_lineage(df, lin)
    tokens = [f.token_column for f in entity.tokenised_fields]
    return df.select(*entity.field_names, *tokens, *LINEAGE_COLS)


def to_quarantine(raw_df: DataFrame, entity: Entity, lin: Lineage, keyring: Keyring,
                  line_events: tuple[tuple[int, int], ...] = (), lines_exact: bool = True) -> DataFrame:
    """Malformed records, kept whole: reason code, locator, and the raw text — encrypted, since a
    broken line still holds identity numbers and names. ``line_events``: where records and lines
    part (blank lines, quoted line breaks; ``shuzhi.filescan``), so the locator names the real line."""
    df = with_reason(filter_malformed(raw_df, entity), entity)
    df = with_lineage(df, lin).withColumn("stage", F.lit("ingest"))
    df = df.withColumn("locator", line_of(entity.format, F.col("_row"), line_events, lines_exact))
    df = df.withColumn("raw_record_enc", encrypt(F.col(CORRUPT), keyring)).withColumn("_key_id", F.lit(keyring.key_id))
    return df.select("_source", "_entity", "_batch_date", "_file", "_row", "locator", "stage", "reason_code",
                     "rule_detail", "raw_record_enc", "_delivery_id", "_run_id", "_loaded_at", "_encoding", "_key_id")


def stats_columns_for(entity: Entity, df: DataFrame) -> list[str]:
    """Columns Delta may keep statistics on: never L3/L4 values (ciphertext or not) nor tokens."""
    hidden = {f.name for f in entity.encrypted_fields} | {f.token_column for f in entity.tokenised_fields}
    return [c for c in df.columns if c not in hidden]


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
    write_table(spark.createDataFrame(rows, _deliveries_schema()), settings.table_path(*DELIVERIES),
                mode="append", txn=(txn_id, 0), append_only=True, comment="delivery ledger: accepted/rejected, conservation")


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
        bw = write_table(bronze_df, settings.table_path("bronze", entity.table_name), mode="replace",
                         replace_where=f"_batch_date = DATE'{delivery.batch_date}'", partition_by=["_batch_date"],
                         txn=(txn, 0), stats_columns=stats_columns_for(entity, bronze_df),
                         comment=f"bronze {entity.source}.{entity.name} ({entity.name_zh}) as delivered; L3/L4 encrypted")
        write_table(quarantine_df, settings.table_path(*QUARANTINE), mode="replace",
                    replace_where=(f"_source = '{delivery.source}' AND _batch_date = DATE'{delivery.batch_date}' "
                                   f"AND _entity = '{entity.name}'"),
                    partition_by=["_source", "_batch_date"], txn=(txn + ":quarantine", 0),
                    stats_columns=[c for c in quarantine_df.columns if c != "raw_record_enc"],
                    comment="records that could not be loaded, with reason codes; raw text encrypted")
    # Conservation from what the tables now hold, not from what we meant to write.
    b = (read_table(spark, settings.table_path("bronze", entity.table_name))
         .filter((F.col("_batch_date") == F.lit(date.fromisoformat(delivery.batch_date)))
                 & (F.col("_delivery_id") == delivery.delivery_id)).count())
    q_df = (read_table(spark, settings.table_path(*QUARANTINE))
            .filter((F.col("_source") == delivery.source) & (F.col("_batch_date") == F.lit(date.fromisoformat(delivery.batch_date)))
                    & (F.col("_entity") == entity.name) & (F.col("_delivery_id") == delivery.delivery_id)))
    reasons = {r["reason_code"]: r["count"] for r in q_df.groupBy("reason_code").count().collect()}
    for r in q_df.orderBy("_row").select("_file", "locator", "reason_code", "rule_detail").limit(10).collect():
        log.warning("delivery %s file %s %s: quarantined %s (%s)", delivery.label, r["_file"], r["locator"],
                    r["reason_code"], r["rule_detail"])
    return FileResult(dfile.name, entity.name, entity.table_name, dfile.rows, b, sum(reasons.values()), bw.skipped, reasons)


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
