"""The ledgers the stages keep in ``ops``, and the conservation each checks — from the tables as
written, never from what the job meant to write:

- ``ops.deliveries`` (ingest): one row per delivered file (or one per rejected delivery, or one
  for an incremental delivery with no files): manifest rows = bronze rows + quarantined rows.
- ``ops.conservation`` (clean): per night, stage and entity: bronze rows = loaded (new or changed
  versions) + unchanged + quarantined + superseded; with it, ``ops.rule_hits``.
- ``ops.rule_hits`` of verify: the contradictions each rule registered tonight.

A ledger that does not balance raises ``ConservationError`` naming the delivery, the file or
table and the figures. ``jobs/ingest.py`` and ``jobs/clean.py`` call these after their writes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import functions as F

from .audit import record_rule_hits
from .config import Settings
from .delta import committed_txn_version, read_table, rows_frame, table_exists, write_table
from .errors import ConservationError, DeliveryRejected
from .manifest import Delivery, DeliveryFile, manifest_fingerprint, parse_batch_date
from .schemas import Entity

log = logging.getLogger("shuzhi.ledgers")

DELIVERIES = ("ops", "deliveries")
CONSERVATION = ("ops", "conservation")
BRONZE_QUARANTINE = ("bronze", "quarantine")
SILVER_QUARANTINE = ("silver", "quarantine")
FINDINGS = ("silver", "findings")


# ---------------------------------------------------------------- ingest: ops.deliveries

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


def _record_delivery(spark, settings: Settings, rows: list[dict], txn_id: str) -> None:
    """Append the delivery's ledger rows, once per delivery (``txn_id``)."""
    write_table(rows_frame(spark, "ops.deliveries", rows), settings.table_path(*DELIVERIES), mode="append",
                txn=(txn_id, 0), append_only=True, comment="delivery ledger: accepted/rejected, conservation")


def record_rejection(spark, settings: Settings, source: str, batch_date: str, rej: DeliveryRejected, run_id: str,
                     now: datetime) -> None:
    """One ledger row for a rejected delivery (keyed by its manifest's fingerprint and the reason)."""
    fp = manifest_fingerprint(settings.landing, source, batch_date)
    _record_delivery(spark, settings, [dict(
        delivery_id=f"{source}/{batch_date}/{fp}", source=source, batch_date=parse_batch_date(batch_date),
        kind=None, status="rejected", reason_code=rej.code, message=rej.message, file=None, entity=None,
        manifest_rows=None, bronze_rows=0, quarantined_rows=0, balanced=None, declared_encoding=None,
        actual_encoding=None, has_bom=None, run_id=run_id, recorded_at=now)],
        txn_id=f"rejected:{source}/{batch_date}/{fp}:{rej.code}")


def record_accepted(spark, settings: Settings, delivery: Delivery, result: IngestResult, run_id: str,
                    now: datetime) -> None:
    """One ledger row per file of an accepted delivery (one row when it had no files)."""
    common = dict(delivery_id=delivery.delivery_id, source=delivery.source,
                  batch_date=date.fromisoformat(delivery.batch_date), kind=delivery.kind, status="accepted",
                  reason_code=None, run_id=run_id, recorded_at=now)
    rows = [dict(common, message="; ".join(d.notes + delivery.notes) or None, file=f.file, entity=f.entity,
                 manifest_rows=f.manifest_rows, bronze_rows=f.bronze_rows, quarantined_rows=f.quarantined_rows,
                 balanced=f.balanced, declared_encoding=d.declared_encoding, actual_encoding=d.actual_encoding,
                 has_bom=d.has_bom)
            for f, d in zip(result.files, delivery.files)]
    if not rows:                          # an incremental delivery with nothing changed
        rows = [dict(common, message="; ".join(("no files: nothing changed",) + delivery.notes), file=None,
                     entity=None, manifest_rows=0, bronze_rows=0, quarantined_rows=0, balanced=True,
                     declared_encoding=None, actual_encoding=None, has_bom=None)]
    _record_delivery(spark, settings, rows, txn_id=f"accepted:{delivery.delivery_id}")


def count_ingested(spark, settings: Settings, delivery: Delivery, dfile: DeliveryFile, skipped: bool) -> FileResult:
    """What bronze and the quarantine now hold of this file (the first quarantined lines logged
    with their locator and rule)."""
    entity, bd = dfile.entity, date.fromisoformat(delivery.batch_date)
    b = (read_table(spark, settings.table_path("bronze", entity.table_name))
         .filter((F.col("_batch_date") == F.lit(bd)) & (F.col("_delivery_id") == delivery.delivery_id)).count())
    q_df = read_table(spark, settings.table_path(*BRONZE_QUARANTINE)).filter(
        (F.col("_source") == delivery.source) & (F.col("_batch_date") == F.lit(bd))
        & (F.col("_entity") == entity.name) & (F.col("_delivery_id") == delivery.delivery_id))
    reasons = {r["reason_code"]: r["count"] for r in q_df.groupBy("reason_code").count().collect()}
    for r in q_df.orderBy("_row").select("_file", "locator", "reason_code", "rule_detail").limit(10).collect():
        log.warning("delivery %s file %s %s: quarantined %s (%s)", delivery.label, r["_file"], r["locator"],
                    r["reason_code"], r["rule_detail"])
    return FileResult(dfile.name, entity.name, entity.table_name, dfile.rows, b, sum(reasons.values()), skipped,
                      reasons)


def check_ingested(delivery: Delivery, result: IngestResult) -> None:
    unbalanced = [f for f in result.files if not f.balanced]
    if unbalanced:
        raise ConservationError("; ".join(
            f"delivery {delivery.label} file {f.file}: manifest {f.manifest_rows} rows != bronze {f.bronze_rows} "
            f"+ quarantined {f.quarantined_rows}" for f in unbalanced))


# ---------------------------------------------------------------- clean: ops.conservation

@dataclass
class EntityResult:
    table: str
    batch_date: str
    status: str                     # cleaned | noop | no_delivery
    bronze_rows: int = 0
    loaded: int = 0                 # versions now in silver from tonight (new or changed)
    unchanged: int = 0              # re-delivered versions silver already holds
    quarantined: int = 0
    superseded: int = 0             # exact duplicates, older versions (tonight or vs silver)
    rule_hits: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.bronze_rows == self.loaded + self.unchanged + self.quarantined + self.superseded


def _where(entity: Entity, batch_date: str, prefix: str = "_") -> str:
    """The night's rows of one entity: lake tables name the columns ``_batch_date, _source,
    _entity``; the ops ledgers (``prefix=""``) ``batch_date, source, entity``."""
    return (f"{prefix}batch_date = DATE'{batch_date}' AND {prefix}source = '{entity.source}' "
            f"AND {prefix}entity = '{entity.name}'")


def recorded_clean(spark, settings: Settings, entity: Entity, batch_date: str, txn: str) -> EntityResult | None:
    """The ledger's row when this delivery was cleaned to the end under ``txn`` (the conservation
    row is the clean's last write): nothing to redo, and recomputing against a silver that later
    nights have moved on would not be this night's answer."""
    path = settings.table_path(*CONSERVATION)
    if not table_exists(spark, path) or committed_txn_version(spark, path, txn + ":conservation") is None:
        return None
    (row,) = read_table(spark, path).filter(F.expr(_where(entity, batch_date, "")) & (F.col("stage") == "clean")
                                           ).collect()
    return EntityResult(entity.table_name, batch_date, "noop", row["bronze_rows"], row["loaded"], row["unchanged"],
                        row["quarantined"], row["superseded"])


def count_cleaned(spark, settings: Settings, entity: Entity, res: EntityResult, delivery_id: str) -> list:
    """Fill ``res`` from what silver, its quarantine and the findings now hold of this delivery;
    returns the findings' (rule_id, action, hits) rows."""
    bd, where = date.fromisoformat(res.batch_date), _where(entity, res.batch_date)
    res.loaded = (read_table(spark, settings.table_path("silver", entity.table_name))
                  .filter((F.col("_delivery_id") == delivery_id) & (F.col("_batch_date") == F.lit(bd))).count())
    res.quarantined = (read_table(spark, settings.table_path(*SILVER_QUARANTINE))
                       .filter(F.expr(where) & (F.col("_delivery_id") == delivery_id)).count())
    fnd = read_table(spark, settings.table_path(*FINDINGS)).filter(F.expr(where))
    res.superseded = fnd.filter(F.col("action") == "supersede").select("_file", "_row").distinct().count()
    hits = fnd.groupBy("rule_id", "action").agg(F.count("*").alias("hits")).collect()
    res.rule_hits = {r["rule_id"]: r["hits"] for r in hits}
    return hits


def record_conservation(spark, settings: Settings, entity: Entity, res: EntityResult, hits: list, run_id: str,
                        txn: str) -> None:
    """The clean's conservation row and rule hits of this entity and night (replacing an earlier
    attempt's), once per ``txn``; then fail if it does not balance."""
    bd = date.fromisoformat(res.batch_date)
    cons = rows_frame(spark, "ops.conservation", [dict(
        batch_date=bd, stage="clean", source=entity.source, entity=entity.name, bronze_rows=res.bronze_rows,
        loaded=res.loaded, unchanged=res.unchanged, quarantined=res.quarantined, superseded=res.superseded,
        balanced=res.balanced, run_id=run_id, recorded_at=datetime.now())])
    where = _where(entity, res.batch_date, "") + " AND stage = 'clean'"
    write_table(cons, settings.table_path(*CONSERVATION), mode="replace", replace_where=where,
                partition_by=["batch_date"], txn=(txn + ":conservation", 0),
                comment="per stage, entity and night: rows in = loaded + unchanged + quarantined + superseded")
    record_rule_hits(spark, settings, [dict(batch_date=bd, stage="clean", rule_id=r["rule_id"], source=entity.source,
                                            entity=entity.name, action=r["action"], hits=r["hits"]) for r in hits],
                     replace_where=where, txn=txn)


def check_cleaned(res: EntityResult, delivery_id: str) -> None:
    if not res.balanced:
        raise ConservationError(
            f"clean {res.table} {res.batch_date} (delivery {delivery_id}): bronze {res.bronze_rows} rows "
            f"!= loaded {res.loaded} + unchanged {res.unchanged} + quarantined {res.quarantined} "
            f"+ superseded {res.superseded}")


def record_verify_hits(spark, settings: Settings, batch_date: str, findings: dict[str, int], txn: str) -> None:
    """Verify's rule hits: the contradictions each rule observed tonight (``findings``)."""
    bd = date.fromisoformat(batch_date)
    record_rule_hits(spark, settings, [dict(batch_date=bd, stage="verify", rule_id=r, source="all", entity="all",
                                            action="register", hits=n) for r, n in sorted(findings.items())],
                     replace_where=f"batch_date = DATE'{batch_date}' AND stage = 'verify'", txn=txn)
