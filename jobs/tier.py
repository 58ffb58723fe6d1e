"""Tiering: place each month of each silver table (by its records' lifecycle date) in the hot or
the cold tier, from its age and how often people read it (``ops.access_log``).

    spark-submit jobs/tier.py --as-of 2028-06-01

A month past its class's ``cold_after`` (``conf/retention.yaml``) with fewer than
``keep_hot_reads`` reads in the window goes to ``<lake>/cold/<table>`` (Delta, partitioned by
``_month``, zstd); a cold month with ``promote_reads`` reads comes back. Readers use
``shuzhi.access.read`` and see one view over both tiers. Each move copies (MERGE on
``record_id``, so a repeated copy changes nothing), checks every moved record is in the
target, and only then deletes from the source: a job killed at any point leaves each record in
at least one tier, and the re-run completes the move. Tables that changed are compacted and
Z-ordered (hot, by ``record_id``) afterwards; unchanged ones are left alone, so a re-run is a no-op.
"""
from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date

from pyspark.sql import functions as F

from shuzhi import publish, registry
from shuzhi.access import COLD
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import delete_matching, move_rows, parquet_codec, read_table, table_exists
from shuzhi.jobmain import job_main
from shuzhi.retention import Policy, load_policy
from shuzhi.schemas import catalog
from shuzhi.selection import month_reads_of, retention_task
from shuzhi.stages.retention import cold_candidates, reads_of

log = logging.getLogger("shuzhi.tier")


@dataclass
class TierResult:
    as_of: str
    status: str = "tiered"                                        # tiered | noop
    demoted: dict[str, int] = field(default_factory=dict)        # table → rows moved hot → cold
    promoted: dict[str, int] = field(default_factory=dict)       # table → rows moved cold → hot
    cold_months: dict[str, list[str]] = field(default_factory=dict)
    reads: dict[str, dict[str, int]] = field(default_factory=dict)   # table → month → reads in the window


def run(spark, settings: Settings, as_of: str, *, run_id: str | None = None, keyring: Keyring | None = None,
        policy: Policy | None = None) -> TierResult:
    keyring = keyring or Keyring.load(settings.key_dir)
    policy = policy or load_policy()
    tp = policy.tiering
    day = date.fromisoformat(as_of)
    res = TierResult(as_of)
    with audited(spark, settings, stage="tier", source=None, batch_date=as_of, run_id=run_id or uuid.uuid4().hex) \
            as audit, publish.retention_writes(spark, settings, "tier", as_of):
        entities = catalog().entities()
        reads_of_table = month_reads_of(spark, settings, [f"silver.{e.table_name}" for e in entities], day,
                                        tp.window_days)
        for e in entities:
            t = e.table_name
            hot_p, cold_p = settings.table_path("silver", t), settings.table_path(COLD, t)
            if not table_exists(spark, hot_p):
                continue
            cls = policy.classes[e.retention_class]
            reads = reads_of_table[f"silver.{t}"]
            res.reads[t] = {m: n for m, n in reads.items() if n}
            hot = read_table(spark, hot_p)
            cols = hot.columns
            demote = cold_candidates(hot, e, cls, day, reads, tp.keep_hot_reads, keyring)
            changed = False
            stats = registry.stats_columns(f"cold.{t}", cols)
            n = move_rows(spark, demote, str(hot_p), str(cold_p), partition_by=["_month"], codec=tp.cold_codec,
                      stats_columns=stats, comment=f"cold tier of silver.{t} (by month of its lifecycle date, zstd)")
            if n:
                res.demoted[t] = n
                changed = True
            if table_exists(spark, cold_p):
                cold = read_table(spark, cold_p)
                promote_months = [m for m, nr in reads.items() if m != "*" and nr >= tp.promote_reads]
                if reads_of(reads, "*") >= tp.promote_reads:
                    promote_months = [r[0] for r in cold.select("_month").distinct().collect()]
                if promote_months:
                    back = cold.filter(F.col("_month").isin(promote_months)).select(*cols)
                    n = move_rows(spark, back, str(cold_p), str(hot_p))
                    if n:
                        res.promoted[t] = n
                        changed = True
                # a newer version delivered after its record went cold lives in hot: drop the cold copy
                stale = read_table(spark, cold_p).join(read_table(spark, hot_p).select("record_id"), "record_id",
                                                       "left_semi")
                if delete_matching(spark, cold_p, stale, ["record_id"]):
                    changed = True
                res.cold_months[t] = sorted(r[0] for r in read_table(spark, cold_p).select("_month").distinct()
                                            .collect())
            if changed:
                spark.sql(f"OPTIMIZE delta.`{hot_p}` ZORDER BY (record_id)")
                if table_exists(spark, cold_p):
                    with parquet_codec(spark, tp.cold_codec):
                        spark.sql(f"OPTIMIZE delta.`{cold_p}`")
        if not res.demoted and not res.promoted:
            res.status = audit.outcome = "noop"
        audit.rows_in = sum(res.demoted.values()) + sum(res.promoted.values())
        audit.detail = json.dumps({"demoted": res.demoted, "promoted": res.promoted,
                                   "cold_months": {k: len(v) for k, v in res.cold_months.items()}})[:4000]
    return res


def summary(res: TierResult) -> dict:
    return {"stage": "tier", **asdict(res)}


def task(spark, settings: Settings, as_of: str, run_id: str | None = None) -> dict:
    return retention_task(spark, settings, "tier", as_of,
                          lambda keyring, policy, _holds: summary(run(spark, settings, as_of, run_id=run_id,
                                                                      keyring=keyring, policy=policy)))


def main(argv: list[str] | None = None) -> int:
    return job_main("tier", task, {"as_of": "required: the date ages are counted to (YYYY-MM-DD)"}, argv)


if __name__ == "__main__":
    sys.exit(main())
