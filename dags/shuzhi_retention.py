"""Nightly retention DAG: the lifecycle stages that keep the office within PIPL Art. 19 and 47.

    tier → gate → archive → gate → destroy → verify → gate

Each stage is a job of jobs/ (tier.py, archive.py, destroy.py) audited in ops.job_runs; each gate
is the ``ops.retention_status`` suite: nothing overdue after the stage, nothing under a legal
hold touched, destruction proven by its byte scan and certificate. ``as_of`` defaults to the
day before the run's logical date, in local time (``tasks.resolve_batch_date``: the 04:30 run of
12-02 counts ages to 12-01); a backfill with an explicit ``as_of`` simulates any date.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from shuzhi.config import load_yaml

CONF = load_yaml("sources.yaml")
TZ = pendulum.timezone(CONF["timezone"])
STATUS = "ops.retention_status"


@dag(
    dag_id="shuzhi_retention",
    schedule="30 4 * * *",
    start_date=pendulum.parse(CONF["start_date"], tz=TZ),
    catchup=False,
    max_active_runs=1,
    tags=["shuzhi", "retention"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="date retention ages are counted to (YYYY-MM-DD); "
            "default: the day before the logical date, local time",
        )
    },
)
def shuzhi_retention():
    @task
    def as_of(params=None, logical_date=None) -> str:
        from shuzhi.tasks import resolve_batch_date

        if params and params.get("as_of"):
            return params["as_of"]
        return resolve_batch_date(None, logical_date, CONF["timezone"])

    @task
    def stage(name: str, day: str) -> dict:
        from shuzhi.tasks import for_airflow, retention_stage

        return for_airflow(retention_stage, name, day)

    @task
    def verify(destroyed: dict, day: str) -> dict:
        from shuzhi.tasks import for_airflow, verify_destruction

        return for_airflow(verify_destruction, day, destroyed["held_before"])

    @task
    def gate(day: str) -> dict:
        from shuzhi.tasks import for_airflow
        from shuzhi.tasks import gate as run_gate

        return for_airflow(run_gate, STATUS, day)

    day = as_of()
    tiered = stage.override(task_id="tier")("tier", day)
    g1 = gate.override(task_id="gate_tier")(day)
    archived = stage.override(task_id="archive")("archive", day)
    g2 = gate.override(task_id="gate_archive")(day)
    destroyed = stage.override(task_id="destroy")("destroy", day)
    verified = verify(destroyed, day)
    g3 = gate.override(task_id="gate_destroy")(day)
    tiered >> g1 >> archived >> g2 >> destroyed
    verified >> g3


shuzhi_retention()
