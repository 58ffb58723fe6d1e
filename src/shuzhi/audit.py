"""The one audit writer: an append-only Delta table of job runs (``ops.job_runs``).

    >>> with audited(spark, settings, stage="ingest", source="police",
    ...              batch_date="2026-11-27") as run:                     # doctest: +SKIP
    ...     run.rows_in = 10234
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Iterator

from .config import Settings
from .delta import rows_frame, write_table

AUDIT_TABLE = ("ops", "job_runs")


@dataclass
class JobRun:
    run_id: str
    stage: str
    source: str | None
    batch_date: str | None
    dag_id: str | None = None
    task_id: str | None = None
    airflow_run_id: str | None = None
    rows_in: int | None = None
    rows_loaded: int | None = None
    rows_quarantined: int | None = None
    gate_outcome: str | None = None
    outcome: str = "running"
    error_message: str | None = None
    detail: str | None = None
    started_at: datetime = field(default_factory=datetime.now)
    ended_at: datetime | None = None


def write_job_run(spark, settings: Settings, run: JobRun) -> None:
    row = asdict(run)
    try:                              # a batch-date folder that is no date is recorded (message), never raised
        row["batch_date"] = date.fromisoformat(run.batch_date) if run.batch_date else None
    except ValueError:
        row["batch_date"] = None
    df = rows_frame(spark, "ops.job_runs", [row])
    write_table(df, settings.table_path(*AUDIT_TABLE), mode="append", append_only=True,
                comment="shuzhi job runs (append-only audit)")


def airflow_context_ids() -> dict[str, str | None]:
    """DAG, task and run ids when called inside an Airflow task (Airflow exports them)."""
    return {"dag_id": os.environ.get("AIRFLOW_CTX_DAG_ID"), "task_id": os.environ.get("AIRFLOW_CTX_TASK_ID"),
            "airflow_run_id": os.environ.get("AIRFLOW_CTX_DAG_RUN_ID")}


@contextmanager
def audited(spark, settings: Settings, *, stage: str, source: str | None, batch_date: str | None,
            run_id: str | None = None) -> Iterator[JobRun]:
    """Record one job run: the row is written when the block ends, whatever the outcome.
    The block may set ``run.outcome`` (e.g. ``rejected``, ``noop``); an exception marks it failed."""
    run = JobRun(run_id=run_id or uuid.uuid4().hex, stage=stage, source=source, batch_date=batch_date,
                 **airflow_context_ids())
    try:
        yield run
        if run.outcome == "running":
            run.outcome = "success"
    except BaseException as exc:
        if run.outcome in ("running", "success"):
            run.outcome = "failed"
        run.error_message = f"{type(exc).__name__}: {exc}"[:4000]
        raise
    finally:
        run.ended_at = datetime.now()
        write_job_run(spark, settings, run)


RULE_HITS = ("ops", "rule_hits")


def record_rule_hits(spark, settings: Settings, rows: list[dict], *, replace_where: str, txn: str) -> None:
    """A stage's nightly hit count of each rule (``ops.rule_hits``, published with the rule
    catalogue): the rows of ``replace_where`` replaced, once per ``txn``."""
    write_table(rows_frame(spark, "ops.rule_hits", rows), settings.table_path(*RULE_HITS), mode="replace",
                replace_where=replace_where, partition_by=["batch_date"], txn=(txn + ":rule_hits", 0),
                comment="nightly hit count of every rule (published with the rule catalogue)")
