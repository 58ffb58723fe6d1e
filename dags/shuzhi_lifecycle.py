"""Nightly lifecycle DAG, scheduled on the bronze Assets of every source.

    gate bronze (every table + quarantine) → clean → gate silver (every table, quarantine,
    findings, conservation) → cross-verify → gate gold (conflicts register, theme tables)
    → quality (metrics, department scorecards, anomaly flags; a failure-severity flag fails it)
    → report (the night's cockpit page; runs whatever quality's outcome)
    → night_failed (runs only when a task failed, and fails: the report succeeding must not make
      Airflow call the night a success — a run's state is its last tasks' state)

A failed critical gate stops everything downstream of it. Tiering, archive and destroy stages
are added by the lifecycle issue.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from shuzhi import registry
from shuzhi.config import load_yaml
from shuzhi.schemas import catalog

CONF = load_yaml("sources.yaml")
TZ = pendulum.timezone(CONF["timezone"])
TABLES = [e.table_name for e in catalog().entities()]
# the gated tables each stage writes (schemas/tables.yaml), in the order declared there
BRONZE_GATES = registry.stage_gates("ingest")     # every entity's bronze table, then bronze.quarantine
SILVER_GATES = registry.stage_gates("clean")      # every silver table, quarantine, findings, ops.conservation
GOLD_GATES = registry.stage_gates("verify")       # the conflicts register, then the theme tables


def asset(table: str) -> Asset:
    return Asset(name=table, uri=registry.asset_uri(table))


SCHEDULE = None
for _t in TABLES:  # all of them: the night is complete when every department's tables are updated
    _a = asset(f"bronze.{_t}")
    SCHEDULE = _a if SCHEDULE is None else (SCHEDULE & _a)


@dag(dag_id=CONF["lifecycle_dag"], schedule=SCHEDULE, start_date=pendulum.parse(CONF["start_date"], tz=TZ),
     catchup=False, max_active_runs=1, tags=["shuzhi", "lifecycle"],
     params={"batch_date": Param(None, type=["null", "string"], format="date",
                                 description="business date (YYYY-MM-DD); default: from the triggering asset events")})
def shuzhi_lifecycle():
    @task
    def batch_date(params=None, triggering_asset_events=None, logical_date=None) -> str:
        if params and params.get("batch_date"):
            return params["batch_date"]
        dates = sorted({ev.extra.get("batch_date") for evs in (triggering_asset_events or {}).values()
                        for ev in evs if ev.extra.get("batch_date")})
        if dates:
            return dates[-1]
        from shuzhi.tasks import resolve_batch_date

        return resolve_batch_date(params, logical_date, CONF["timezone"])

    @task
    def gate(table: str, bd: str) -> dict:
        from shuzhi.tasks import for_airflow
        from shuzhi.tasks import gate as run_gate

        return for_airflow(run_gate, table, bd)

    @task(outlets=[asset(f"silver.{t}") for t in TABLES])
    def clean(bd: str) -> dict:
        from shuzhi.tasks import clean as run_clean
        from shuzhi.tasks import for_airflow

        return for_airflow(run_clean, bd)

    @task(outlets=[asset("gold.conflicts")])
    def cross_verify(bd: str) -> dict:
        from shuzhi.tasks import for_airflow
        from shuzhi.tasks import verify as run_verify

        return for_airflow(run_verify, bd)

    @task(outlets=[asset("ops.quality_metrics")])
    def quality(bd: str) -> dict:
        from shuzhi.tasks import for_airflow
        from shuzhi.tasks import quality as run_quality

        return for_airflow(run_quality, bd)

    @task(trigger_rule="all_done")
    def report(bd: str) -> dict:
        from shuzhi.tasks import for_airflow
        from shuzhi.tasks import report as run_report

        return for_airflow(run_report, bd)

    @task(trigger_rule="one_failed", retries=0)
    def night_failed() -> None:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a task of this night failed (see the run's failed tasks); the cockpit page "
                                   "was written all the same")

    bd = batch_date()
    bronze = [gate.override(task_id=f"gate_{g.replace('.', '_')}")(g, bd) for g in BRONZE_GATES]
    cleaned = clean(bd)
    bronze >> cleaned
    silver = [gate.override(task_id=f"gate_{g.replace('.', '_')}")(g, bd) for g in SILVER_GATES]
    cleaned >> silver
    verified = cross_verify(bd)
    silver >> verified
    gold = [gate.override(task_id=f"gate_{g.replace('.', '_')}")(g, bd) for g in GOLD_GATES]
    verified >> gold
    scored = quality(bd)
    reported = report(bd)
    gold >> scored >> reported
    [bd, *bronze, cleaned, *silver, verified, *gold, scored, reported] >> night_failed()


shuzhi_lifecycle()
