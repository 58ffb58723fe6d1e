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
from dataclasses import asdict
from datetime import datetime

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shuzhi import ledgers, publish
from shuzhi.access import Reader, night_delivery, read
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import merge_into, write_to
from shuzhi.jobmain import job_main
from shuzhi.ledgers import EntityResult
from shuzhi.rules import load_rules
from shuzhi.schemas import Entity, catalog
from shuzhi.stages import silver as stage

log = logging.getLogger("shuzhi.clean")

__all__ = ["EntityResult", "clean_entity", "run", "summary", "task"]


def clean_entity(spark, settings: Settings, entity: Entity, batch_date: str, keyring: Keyring, run_id: str,
                 regions_df: DataFrame) -> EntityResult:
    table = entity.table_name
    bronze, delivery_id = night_delivery(spark, settings, table, batch_date)
    if bronze is None:
        return EntityResult(table, batch_date, "no_delivery")
    # a rejected silver version is not built on: back to the published one first (shuzhi.publish);
    # a re-run after a rejection writes again under a new txn id, one after a success does not
    verdicts = publish.rebase(spark, settings, f"silver.{table}", batch_date, by="clean")
    txn = f"clean:{delivery_id}:{table}{verdicts.txn_suffix(batch_date)}"
    done = ledgers.recorded_clean(spark, settings, entity, batch_date, txn)
    if done is not None:          # cleaned to the end under this txn id: its ledger row is the answer
        return done
    res = EntityResult(table, batch_date, "cleaned")
    std = stage.silver_rows(bronze, entity, keyring, batch_date, regions_df, load_rules(), run_id, datetime.now())
    std = std.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        res.bronze_rows = std.count()
        where = f"_batch_date = DATE'{batch_date}' AND _source = '{entity.source}' AND _entity = '{entity.name}'"
        # 1. quarantine
        q = stage.quarantine_rows(std.filter(F.col("_quarantine").isNotNull()), bronze, entity, keyring)
        write_to(settings, "silver.quarantine", q, mode="replace", replace_where=where, txn=(txn + ":quarantine", 0))
        # 2. duplicates and versions, then against silver
        ok = std.filter(F.col("_quarantine").isNull())
        survivors, dup = stage.dedupe(ok)
        # what the lake holds of this table, hot and cold tiers together (shuzhi.access)
        current = read(spark, settings, f"silver.{table}", reader=Reader.pipeline("clean"))
        states = stage.classify_against_silver(survivors, current).persist(StorageLevel.MEMORY_AND_DISK)
        supersede = stage.superseded_rows(dup, states, run_id)
        # 3. the findings log (every rule hit + superseded lines)
        findings = stage.findings_rows(std, run_id).unionByName(supersede)
        write_to(settings, "silver.findings", findings, mode="replace", replace_where=where, txn=(txn + ":findings", 0))
        # 4. MERGE into silver
        cols = entity.silver_columns()
        upsert = states.filter(F.col("__state").isin("new", "newer", "ours")).select(*cols)
        merge_into(settings, f"silver.{table}", upsert, keys=["record_id"], update_when="s.updated_at > t.updated_at",
                   txn=(txn + ":merge", 0), deletion_vectors=True)
        res.unchanged = states.filter(F.col("__state") == "unchanged").count()
        states.unpersist()
        # 5. conservation from the written tables
        hits = ledgers.count_cleaned(spark, settings, entity, res, delivery_id)
        ledgers.record_conservation(spark, settings, entity, res, hits, run_id, txn)
    finally:
        std.unpersist()
    ledgers.check_cleaned(res, delivery_id)
    return res


def run(spark, settings: Settings, batch_date: str, *, source: str | None = None, run_id: str | None = None,
        keyring: Keyring | None = None) -> list[EntityResult]:
    """Clean every entity delivered for ``batch_date`` (of one source, or all)."""
    keyring = keyring or Keyring.load(settings.key_dir)
    run_id = run_id or uuid.uuid4().hex
    regions_df = stage.region_table(spark).persist()
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
