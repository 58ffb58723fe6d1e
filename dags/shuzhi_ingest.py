"""One ingest DAG per department, generated from conf/sources.yaml.

wait_for_manifest → ingest → gate_<table>… ; ingest publishes an Asset per bronze table (with the
batch date in the event's extra), which schedules the nightly lifecycle DAG. Orchestration
only: tasks call shuzhi.tasks, which calls the same job functions as the CLI and spark-submit.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

from shuzhi import registry
from shuzhi.config import load_yaml
from shuzhi.schemas import catalog

CONF = load_yaml("sources.yaml")
TZ = pendulum.timezone(CONF["timezone"])


def bronze_asset(table: str) -> Asset:
    return Asset(name=f"bronze.{table}", uri=registry.asset_uri("bronze", table))


def make_ingest_dag(source: str, cfg: dict):
    entities = catalog().entities(source)
    assets = [bronze_asset(e.table_name) for e in entities]

    @dag(dag_id=f"shuzhi_ingest_{source}", schedule=cfg["schedule"],
         start_date=pendulum.parse(CONF["start_date"], tz=TZ), catchup=False, max_active_runs=1,
         tags=["shuzhi", "ingest", source],
         params={"batch_date": Param(None, type=["null", "string"], format="date",
                                     description="business date of the delivery (YYYY-MM-DD); default: yesterday")},
         default_args={"retries": cfg["retries"], "retry_delay": timedelta(minutes=cfg["retry_delay_minutes"])},
         doc_md=f"Ingest the {source} delivery for a batch date into bronze ({', '.join(a.name for a in assets)}).")
    def ingest_dag():
        @task
        def batch_date(params=None, logical_date=None) -> str:
            from shuzhi.tasks import resolve_batch_date

            return resolve_batch_date(params, logical_date, CONF["timezone"])

        @task.sensor(poke_interval=cfg["poke_seconds"], timeout=cfg["manifest_timeout_minutes"] * 60,
                     mode="reschedule")
        def wait_for_manifest(bd: str) -> bool:
            from shuzhi.tasks import manifest_ready

            return manifest_ready(source, bd)

        @task(outlets=assets)
        def ingest(bd: str, outlet_events=None) -> dict:
            from shuzhi.tasks import for_airflow
            from shuzhi.tasks import ingest as run_ingest

            result = for_airflow(run_ingest, source, bd)
            for a in assets:
                outlet_events[a].extra = {"batch_date": bd, "status": result["status"]}
            return result

        @task
        def gate(table: str, bd: str) -> dict:
            from shuzhi.tasks import for_airflow
            from shuzhi.tasks import gate as run_gate

            return for_airflow(run_gate, table, bd)

        bd = batch_date()
        loaded = ingest(bd)
        wait_for_manifest(bd) >> loaded
        for e in entities:
            loaded >> gate.override(task_id=f"gate_{e.name}")(f"bronze.{e.table_name}", bd)

    return ingest_dag()


for _source, _cfg in CONF["sources"].items():
    globals()[f"shuzhi_ingest_{_source}"] = make_ingest_dag(_source, _cfg)
