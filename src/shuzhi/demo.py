"""The main job: run the DAGs for each night delivered in the landing zone through Airflow
(``dag.test``: real task runs recorded in Airflow's metadata DB, in this process so one local
Spark session serves every task), then print what happened per night and source. ``feedsim demo``
generates the nights first and scores each one.

Airflow and pendulum are imported inside the functions that need them: the CLI imports this
module, and its argument checks must answer before Airflow's start-up (seconds)."""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .cockpit_report import night_page
from .config import DAGS_DIR, Settings, load_yaml
from .errors import ShuzhiError
from .exports import (
    export_conflicts,
    export_quarantine,
    export_quarantine_summary,
    export_rules,
    rules_report,
    summary_path,
)
from .reports import night_summary, render_summary
from .spark import get_spark

log = logging.getLogger("shuzhi.demo")


class DagImportError(ShuzhiError):
    """A DAG file of ``dags/`` does not import: no run can start."""


class AirflowNotSetUp(ShuzhiError):
    """Airflow's metadata DB of this home was never migrated: no run can be recorded."""


def check_airflow_db(settings: Settings) -> None:
    """The embedded default keeps Airflow's metadata in SQLite under ``$SHUZHI_HOME/airflow``; a home
    ``shuzhi setup`` never saw has none, and Airflow would fail deep in a query (no such table)."""
    if os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        return                                          # a DB of its own: Airflow checks it
    db = settings.airflow_db
    if not db.is_file() or db.stat().st_size == 0:
        raise AirflowNotSetUp(f"Airflow's metadata DB {db} does not exist: run `shuzhi setup` "
                              f"(or `make setup`) for SHUZHI_HOME={settings.home} first")


def logical_date_for(batch_date: str):
    """The nightly schedule's run time for a batch: 01:30 the next morning, local time."""
    import pendulum  # lazy: Airflow's own dependency, slow to import (see the module's docstring)

    tz = load_yaml("sources.yaml")["timezone"]
    d = date.fromisoformat(batch_date) + timedelta(days=1)
    return pendulum.datetime(d.year, d.month, d.day, 1, 30, tz=tz)


def load_dags():
    from airflow.dag_processing.dagbag import DagBag  # lazy: Airflow's start-up (see the module's docstring)

    bag = DagBag(str(DAGS_DIR))
    if bag.import_errors:
        raise DagImportError(f"DAG import errors: {bag.import_errors}")
    return bag


def run_dag(dag, batch_date: str, conf: dict | None = None):
    """One DAG run for ``batch_date`` (``dag.test``: its tasks in this process; ``conf``: the run's
    conf, default ``{"batch_date": batch_date}``), with the run's real start time recorded:
    ``dag.test`` stamps a run's start with its logical date (a backfilled night of last week would
    show as lasting days in the UI); the end time Airflow records is real."""
    from airflow.models.dagrun import DagRun  # lazy: Airflow's start-up (see the module's docstring)
    from airflow.utils.session import create_session
    from sqlalchemy import update

    started = datetime.now(timezone.utc)
    dr = dag.test(logical_date=logical_date_for(batch_date), run_conf=conf or {"batch_date": batch_date})
    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.dag_id == dr.dag_id, DagRun.run_id == dr.run_id)
                        .values(start_date=started))
    return dr


def run_night(bag, batch_date: str, sources: list[str], on_step=None) -> dict[str, str]:
    """Run each source's ingest DAG, then the lifecycle DAG, for one batch date. Returns DAG run states."""
    states = {}
    for dag_id in [*(f"shuzhi_ingest_{src}" for src in sources), load_yaml("sources.yaml")["lifecycle_dag"]]:
        dr = run_dag(bag.dags[dag_id], batch_date)
        states[dag_id] = str(dr.state)
        if on_step:
            on_step(f"{batch_date} {dag_id.removeprefix('shuzhi_').replace('_', ' ', 1)}: {dr.state}")
    return states


def quiet_airflow_logs() -> None:
    for name in ("airflow", "airflow.task", "airflow.processor", "py.warnings", "great_expectations", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)


def delivered_nights(settings: Settings) -> list[str]:
    """Batch dates with a delivery folder of some source in the landing zone, oldest first."""
    sources = list(load_yaml("sources.yaml")["sources"])
    found = {p.name for src in sources if (settings.landing / src).is_dir() for p in (settings.landing / src).iterdir()
             if p.is_dir() and _is_date(p.name)}
    return sorted(found)


def _is_date(name: str) -> bool:
    try:
        return date.fromisoformat(name).isoformat() == name
    except ValueError:
        return False


def run_demo(settings: Settings, nights: list[str], *, console: Console | None = None,
             after_night: Callable[[str], None] | None = None) -> dict:
    """Run every source's ingest DAG and the nightly DAG for each night in turn (``after_night``
    is called after each, e.g. to score it), then print the summary and write the office's exports
    of the last night. Deliveries come from the landing zone: a department's, or the simulator's."""
    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    t0 = datetime.now()
    check_airflow_db(settings)
    quiet_airflow_logs()
    bag = load_dags()
    sources = list(load_yaml("sources.yaml")["sources"])
    states: dict[str, dict[str, str]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("nights", total=len(nights) * (len(sources) + 1))
        for night in nights:
            states[night] = run_night(bag, night, sources,
                                      on_step=lambda msg: progress.update(task, advance=1, description=msg))
            if after_night:
                after_night(night)
    spark = get_spark(settings)
    summary = night_summary(spark, settings)
    render_summary(summary, settings, console)
    out = settings.home / "exports"
    last = nights[-1]
    n_c = export_conflicts(spark, settings, out / f"conflicts_{last}.csv", status="open")
    n_q = export_quarantine(spark, settings, out / f"quarantine_{last}.csv", night=last)
    export_quarantine_summary(spark, settings, summary_path(out / f"quarantine_{last}.csv"), night=last)
    export_rules(rules_report(spark, settings, last), out / f"rules_{last}.csv")
    console.print(f"exports for the office (UTF-8 with BOM, masked identity numbers): {n_c:,} open conflicts → "
                  f"{out / f'conflicts_{last}.csv'}; {n_q:,} quarantined records of {last} → "
                  f"{out / f'quarantine_{last}.csv'} (+ _summary by night/source/rule); rule catalogue with "
                  f"tonight's hit counts → {out / f'rules_{last}.csv'}")
    failed = {n: {d: s for d, s in st.items() if s != "success"} for n, st in states.items()}
    failed = {n: v for n, v in failed.items() if v}
    if failed:
        console.print(f"[red]DAG runs not successful:[/red] {failed}")
    console.print(f"done in {(datetime.now() - t0).total_seconds():.0f} s; Airflow DB: {settings.airflow_home}")
    # the caller prints this last (after its own lines): the office's view, the index beside it
    return {"states": states, "summary": summary, "failed": failed, "cockpit": night_page(settings, last).resolve()}
