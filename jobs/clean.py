"""Clean: bronze → silver, one silver table per SPEC entity, every field to its data-element standard.

    spark-submit jobs/clean.py --batch-date 2026-11-27 [--source police]

For each entity delivered that night: standardise every field (``shuzhi.stages.silver``; rules and
their actions from ``conf/rules.yaml``), log every rule hit in ``silver.findings``, move records
a quarantine rule hit to ``silver.quarantine``, collapse exact duplicates and let the latest
version of a record id win (update time, then the later line), then ``MERGE`` the survivors into
``silver.<source>_<entity>`` keyed on the record id — so an incremental night costs in
proportion to its delivery. The new silver version is not read by anyone until its gate publishes
it (``shuzhi.publish``). Conservation is checked from the written tables:
bronze rows = loaded (new, changed or unchanged versions) + quarantined + superseded, recorded in
``ops.conservation``, or the job fails. Rule hit counts go to ``ops.rule_hits``.
"""
from __future__ import annotations

import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shuzhi import publish, registry
from shuzhi.access import Reader, read
from shuzhi.audit import audited, record_rule_hits
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import committed_txn_version, merge_table, read_table, table_exists, write_table
from shuzhi.errors import ConservationError
from shuzhi.jobmain import job_main
from shuzhi.rules import load_rules
from shuzhi.schemas import Entity, catalog
from shuzhi.stages.silver import (
    classify_against_silver,
    dedupe,
    findings_rows,
    protect,
    quarantine_rows,
    region_table,
    standardise,
    with_person_hint,
)

log = logging.getLogger("shuzhi.clean")

FINDINGS = ("silver", "findings")
QUARANTINE = ("silver", "quarantine")
CONSERVATION = ("ops", "conservation")


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


# ---------------------------------------------------------------- pure transforms

# ---------------------------------------------------------------- I/O shell

def clean_entity(spark, settings: Settings, entity: Entity, batch_date: str, keyring: Keyring, run_id: str,
                 regions_df: DataFrame) -> EntityResult:
    bd = date.fromisoformat(batch_date)
    table = entity.table_name
    res = EntityResult(table, batch_date, "cleaned")
    bronze_path = settings.table_path("bronze", table)
    if not table_exists(spark, bronze_path):
        res.status = "no_delivery"
        return res
    bronze = read_table(spark, bronze_path).filter(F.col("_batch_date") == F.lit(bd))
    ids = [r[0] for r in bronze.select("_delivery_id").distinct().collect()]
    if not ids:
        res.status = "no_delivery"
        return res
    delivery_id = sorted(ids)[-1]
    # a rejected silver version is not built on: back to the published one first (shuzhi.publish);
    # a re-run after a rejection writes again under a new txn id, one after a success does not
    verdicts = publish.rebase(spark, settings, f"silver.{table}", batch_date, by="clean")
    txn = f"clean:{delivery_id}:{table}{verdicts.txn_suffix(batch_date)}"
    cons_path = settings.table_path(*CONSERVATION)
    if table_exists(spark, cons_path) and committed_txn_version(spark, cons_path, txn + ":conservation") is not None:
        # this delivery was cleaned to the end (the conservation row is the last write): nothing to redo,
        # and recomputing against a silver that later nights have moved on would not be this night's answer
        (row,) = (read_table(spark, cons_path).filter((F.col("batch_date") == F.lit(bd)) & (F.col("stage") == "clean")
                                                      & (F.col("source") == entity.source)
                                                      & (F.col("entity") == entity.name)).collect())
        return EntityResult(table, batch_date, "noop", row["bronze_rows"], row["loaded"], row["unchanged"],
                            row["quarantined"], row["superseded"])
    now = datetime.now()
    std = standardise(bronze, entity, keyring, batch_date, regions_df, load_rules())
    std = with_person_hint(std, entity, keyring)
    std = std.withColumn("_run_id", F.lit(run_id)).withColumn("_loaded_at", F.lit(now))
    std = protect(std, entity, keyring).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        res.bronze_rows = std.count()
        where = f"_batch_date = DATE'{batch_date}' AND _source = '{entity.source}' AND _entity = '{entity.name}'"
        # 1. quarantine
        q = quarantine_rows(std.filter(F.col("_quarantine").isNotNull()), bronze, entity, keyring)
        write_table(q, settings.table_path(*QUARANTINE), mode="replace", replace_where=where,
                    partition_by=["_source", "_batch_date"], txn=(txn + ":quarantine", 0),
                    stats_columns=registry.stats_columns("silver.quarantine", q.columns),
                    comment="records the clean stage could not use, with the rule that stopped them")
        # 2. duplicates and versions, then against silver
        ok = std.filter(F.col("_quarantine").isNull())
        survivors, dup = dedupe(ok)
        silver_path = settings.table_path("silver", table)
        # what the lake holds of this table, hot and cold tiers together (shuzhi.access)
        current = read(spark, settings, f"silver.{table}", reader=Reader.pipeline("clean"))
        states = classify_against_silver(survivors, current).persist(StorageLevel.MEMORY_AND_DISK)
        stale = states.filter(F.col("__state") == "stale").select(
            "_source", "_entity", "_batch_date", "_file", "_row", "record_id", F.lit("DUP_VERSION").alias("rule_id"),
            F.lit("older than (or tied with) the version already in silver").alias("change"))
        supersede = dup.unionByName(stale).select(
            "_source", "_entity", "_batch_date", "_file", "_row", "record_id", F.lit("").alias("field"), "rule_id",
            F.lit("supersede").alias("action"), "change", F.lit(None).cast("string").alias("before"),
            F.lit(None).cast("string").alias("after"), F.lit(run_id).alias("_run_id"))
        # 3. the findings log (every rule hit + superseded lines)
        findings = findings_rows(std, run_id).unionByName(supersede)
        write_table(findings, settings.table_path(*FINDINGS), mode="replace", replace_where=where,
                    partition_by=["_batch_date"], txn=(txn + ":findings", 0),
                    comment="clean-stage rule hits: record, field, rule, kind of change (no L3/L4 values)")
        # 4. MERGE into silver
        cols = entity.silver_columns()
        upsert = states.filter(F.col("__state").isin("new", "newer", "ours")).select(*cols)
        merge_table(upsert, silver_path, keys=["record_id"], update_when="s.updated_at > t.updated_at",
                    txn=(txn + ":merge", 0), partition_by=[], deletion_vectors=True,
                    stats_columns=registry.stats_columns(f"silver.{table}", cols),
                    comment=f"silver {entity.source}.{entity.name} ({entity.name_zh}): standardised, latest version "
                            "per record id; L3/L4 encrypted")
        res.unchanged = states.filter(F.col("__state") == "unchanged").count()
        states.unpersist()
        # 5. conservation from the written tables
        res.loaded = (read_table(spark, silver_path)
                      .filter((F.col("_delivery_id") == delivery_id) & (F.col("_batch_date") == F.lit(bd))).count())
        res.quarantined = (read_table(spark, settings.table_path(*QUARANTINE))
                           .filter(F.expr(where) & (F.col("_delivery_id") == delivery_id)).count())
        fnd = read_table(spark, settings.table_path(*FINDINGS)).filter(F.expr(where))
        res.superseded = fnd.filter(F.col("action") == "supersede").select("_file", "_row").distinct().count()
        hits = fnd.groupBy("rule_id", "action").agg(F.count("*").alias("hits")).collect()
        res.rule_hits = {r["rule_id"]: r["hits"] for r in hits}
        _record_counts(spark, settings, entity, res, hits, run_id, txn)
    finally:
        std.unpersist()
    if not res.balanced:
        raise ConservationError(
            f"clean {table} {batch_date} (delivery {delivery_id}): bronze {res.bronze_rows} rows "
            f"!= loaded {res.loaded} + unchanged {res.unchanged} + quarantined {res.quarantined} "
            f"+ superseded {res.superseded}"
        )
    return res


def _record_counts(spark, settings: Settings, entity: Entity, res: EntityResult, hits, run_id: str, txn: str) -> None:
    bd = date.fromisoformat(res.batch_date)
    now = datetime.now()
    cons = spark.createDataFrame([dict(
        batch_date=bd, stage="clean", source=entity.source, entity=entity.name, bronze_rows=res.bronze_rows,
        loaded=res.loaded, unchanged=res.unchanged, quarantined=res.quarantined, superseded=res.superseded,
        balanced=res.balanced, run_id=run_id, recorded_at=now)], conservation_schema())
    where = (f"batch_date = DATE'{res.batch_date}' AND stage = 'clean' AND source = '{entity.source}' "
             f"AND entity = '{entity.name}'")
    write_table(cons, settings.table_path(*CONSERVATION), mode="replace", replace_where=where,
                partition_by=["batch_date"], txn=(txn + ":conservation", 0),
                comment="per stage, entity and night: rows in = loaded + unchanged + quarantined + superseded")
    record_rule_hits(spark, settings, [dict(batch_date=bd, stage="clean", rule_id=r["rule_id"], source=entity.source,
                                            entity=entity.name, action=r["action"], hits=r["hits"]) for r in hits],
                     replace_where=where, txn=txn)


def conservation_schema() -> T.StructType:
    L, s = T.LongType(), T.StringType()
    return T.StructType([T.StructField(n, t) for n, t in [
        ("batch_date", T.DateType()), ("stage", s), ("source", s), ("entity", s), ("bronze_rows", L), ("loaded", L),
        ("unchanged", L), ("quarantined", L), ("superseded", L), ("balanced", T.BooleanType()), ("run_id", s),
        ("recorded_at", T.TimestampType())]])


def run(spark, settings: Settings, batch_date: str, *, source: str | None = None, run_id: str | None = None,
        keyring: Keyring | None = None) -> list[EntityResult]:
    """Clean every entity delivered for ``batch_date`` (of one source, or all)."""
    keyring = keyring or Keyring.load(settings.key_dir)
    run_id = run_id or uuid.uuid4().hex
    regions_df = region_table(spark).persist()
    results = []
    with audited(spark, settings, stage="clean", source=source, batch_date=batch_date, run_id=run_id) as audit:
        for entity in catalog().entities(source):
            r = clean_entity(spark, settings, entity, batch_date, keyring, run_id, regions_df)
            results.append(r)
            log.info("clean %s %s: %s bronze=%d loaded=%d unchanged=%d quarantined=%d superseded=%d", r.table,
                     batch_date, r.status, r.bronze_rows, r.loaded, r.unchanged, r.quarantined, r.superseded)
        if results and all(r.status in ("noop", "no_delivery") for r in results):
            audit.outcome = "noop"
        audit.rows_in = sum(r.bronze_rows for r in results)
        audit.rows_loaded = sum(r.loaded + r.unchanged for r in results)
        audit.rows_quarantined = sum(r.quarantined for r in results)
    regions_df.unpersist()
    return results


def summary(results: list[EntityResult]) -> dict:
    return {"stage": "clean", "entities": [asdict(r) | {"balanced": r.balanced} for r in results]}


def task(spark, settings: Settings, batch_date: str, source: str | None = None, run_id: str | None = None) -> dict:
    """The pipeline's clean (Airflow, the CLI): its silver tables are governed — read at their
    published versions only (``shuzhi.publish``)."""
    publish.govern(spark, settings, [f"silver.{e.table_name}" for e in catalog().entities(source)], batch_date)
    return summary(run(spark, settings, batch_date, source=source, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("clean", task, {"batch_date": "required: YYYY-MM-DD", "source": "one department only"}, argv)


if __name__ == "__main__":
    sys.exit(main())
