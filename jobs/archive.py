"""Archive: records past their archive age (``conf/retention.yaml``) and under no legal hold leave
the live tables for the archive zone; ``restore`` brings a batch back as queryable tables.

    spark-submit jobs/archive.py --as-of 2031-12-01
    spark-submit jobs/archive.py --restore 2031-12-01

One batch per ``--as-of``: the silver record and every bronze version of it, as zstd Parquet,
with a manifest (tables, months of the lifecycle date, row counts, sha256 of every file) —
see ``shuzhi.archive``. Crash-safe: copy into staging, read the counts back, commit the manifest,
move the batch into place, and only then delete from the live tables (MERGE on the keys the batch
holds). A re-run with the batch in place only finishes those deletes; with nothing due, it is a
no-op. The gold tables drop archived records when they are rebuilt the next night.
"""
from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date

from shuzhi import publish
from shuzhi.access import COLD
from shuzhi.archive import MANIFEST, RESTORED, ArchiveCorrupt, archive_root, clear_debris, verify_batch, write_batch
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import delete_matching, read_table, table_exists, write_to
from shuzhi.jobmain import job_main
from shuzhi.retention import Policy, load_policy
from shuzhi.selection import archive_tables, retention_task, select_records
from shuzhi.stages.retention import ROW_KEY

log = logging.getLogger("shuzhi.archive")


@dataclass
class ArchiveResult:
    as_of: str
    status: str                                          # archived | noop
    batch_id: str | None = None
    archived: dict[str, int] = field(default_factory=dict)   # layer.table → rows in the batch
    removed: dict[str, int] = field(default_factory=dict)    # layer.table → rows deleted from live this run
    held_records: int = 0


def keys_of(table: str) -> list[str]:
    return ["record_id"] if table.startswith("silver.") else ROW_KEY


def run(spark, settings: Settings, as_of: str, *, run_id: str | None = None, keyring: Keyring | None = None,
        policy: Policy | None = None) -> ArchiveResult:
    keyring = keyring or Keyring.load(settings.key_dir)
    policy = policy or load_policy()
    day = date.fromisoformat(as_of)
    res = ArchiveResult(as_of, "archived", batch_id=as_of)
    batch_dir = archive_root(settings) / as_of
    with audited(spark, settings, stage="archive", source=None, batch_date=as_of, run_id=run_id or uuid.uuid4().hex) \
            as audit, publish.retention_writes(spark, settings, "archive", as_of):
        clear_debris(settings)
        if not (batch_dir / MANIFEST).is_file():
            sel = select_records(spark, settings, day, policy, keyring, "archive")
            if sel is None or sel.selected.isEmpty():
                res.status, res.batch_id, audit.outcome = "noop", None, "noop"
                audit.detail = f"nothing past its archive age at {as_of}"
                return res
            res.held_records = sel.held_records
            write_batch(spark, settings, as_of, archive_tables(spark, settings, sel))
        m = verify_batch(settings, as_of, spark)
        for table, entry in m["tables"].items():
            res.archived[table] = entry["rows"]
            layer, name = table.split(".", 1)
            for key in [table] + ([f"{COLD}.{name}"] if layer == "silver" else []):
                p = settings.table_path(*key.split(".", 1))
                if entry["files"] and table_exists(spark, p) and (n := delete_matching(
                        spark, p, spark.read.parquet(str(batch_dir / table)), keys_of(table))):
                    res.removed[key] = res.removed.get(key, 0) + n
        audit.rows_in = sum(res.archived.values())
        audit.detail = json.dumps({"batch": as_of, "archived": res.archived, "removed": res.removed})[:4000]
    return res


def restore(spark, settings: Settings, batch_id: str) -> dict[str, int]:
    """Verify a batch against its manifest (every sha256, every count), then load each of its
    tables into ``<lake>/restored/<batch>__<layer>__<name>`` (Delta, queryable). Returns rows per
    table. Idempotent: a restored table is rebuilt whole."""
    m = verify_batch(settings, batch_id, spark)
    out = {}
    with audited(spark, settings, stage="restore", source=None, batch_date=None) as audit:
        for table, entry in m["tables"].items():
            if not entry["files"]:
                continue
            df = spark.read.parquet(str(archive_root(settings) / batch_id / table))
            key = f"{RESTORED}.{batch_id}__{table.replace('.', '__')}"
            write_to(settings, key, df, mode="snapshot")
            n = read_table(spark, settings.table_path(*key.split(".", 1))).count()
            if n != entry["rows"]:
                raise ArchiveCorrupt(f"restore {batch_id} {table}: {n} rows loaded, manifest says {entry['rows']}")
            out[table] = n
        audit.rows_in = sum(out.values())
        audit.detail = json.dumps({"batch": batch_id, "restored": out})
    return out


def summary(res: ArchiveResult) -> dict:
    return {"stage": "archive", **asdict(res)}


def task(spark, settings: Settings, as_of: str | None = None, restore_batch: str | None = None,
         run_id: str | None = None) -> dict:
    """Archive as of a date, or (``restore_batch``) verify and load one archive batch."""
    if restore_batch:
        return {"batch": restore_batch, "restored_rows": restore(spark, settings, restore_batch)}
    return retention_task(spark, settings, "archive", as_of,
                          lambda keyring, policy, _holds: summary(run(spark, settings, as_of, run_id=run_id,
                                                                      keyring=keyring, policy=policy)))


def main(argv: list[str] | None = None) -> int:
    return job_main("archive", task, {"as_of": "the date ages are counted to (YYYY-MM-DD)",
                                      "restore_batch": "an archive batch id: verify it and load it into restored/"},
                    argv)


if __name__ == "__main__":
    sys.exit(main())
