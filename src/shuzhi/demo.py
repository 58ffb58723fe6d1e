"""The main job: generate several nights of deliveries, run the DAGs for each night through
Airflow (``dag.test``: real task runs recorded in Airflow's metadata DB, in this process so one
local Spark session serves every task), then print what happened per night and source."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

from .config import DAGS_DIR, Settings, load_yaml

log = logging.getLogger("shuzhi.demo")


def logical_date_for(batch_date: str):
    """The nightly schedule's run time for a batch: 01:30 the next morning, local time."""
    import pendulum

    tz = load_yaml("sources.yaml")["timezone"]
    d = date.fromisoformat(batch_date) + timedelta(days=1)
    return pendulum.datetime(d.year, d.month, d.day, 1, 30, tz=tz)


def load_dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS_DIR))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


def run_night(bag, batch_date: str, sources: list[str], on_step=None) -> dict[str, str]:
    """Run each source's ingest DAG, then the lifecycle DAG, for one batch date. Returns DAG run states."""
    states = {}
    conf = {"batch_date": batch_date}
    for src in sources:
        dr = bag.dags[f"shuzhi_ingest_{src}"].test(logical_date=logical_date_for(batch_date), run_conf=conf)
        states[f"shuzhi_ingest_{src}"] = str(dr.state)
        if on_step:
            on_step(f"{batch_date} ingest {src}: {dr.state}")
    lifecycle = load_yaml("sources.yaml")["lifecycle_dag"]
    dr = bag.dags[lifecycle].test(logical_date=logical_date_for(batch_date), run_conf=conf)
    states[lifecycle] = str(dr.state)
    if on_step:
        on_step(f"{batch_date} lifecycle: {dr.state}")
    return states


def quiet_airflow_logs() -> None:
    for name in ("airflow", "airflow.task", "airflow.processor", "py.warnings", "great_expectations", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_demo(settings: Settings, *, residents: int = 20_000, nights: int = 3, start: str = "2026-11-25",
             seed: int = 20261127) -> dict:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .generator import generate
    from .exports import (export_conflicts, export_quarantine, export_quarantine_summary, export_rules,
                          rules_report, summary_path)
    from .reports import night_summary, render_summary
    from .scoring import score_night
    from .spark import get_spark

    import sys

    console = Console() if sys.stdout.isatty() else Console(width=160)
    t0 = datetime.now()
    console.print(f"[bold]shuzhi demo[/bold]: {residents:,} residents, {nights} nights from {start}, seed {seed}")
    gen = generate(settings.landing, settings.truth, residents=residents, nights=nights,
                   start_date=date.fromisoformat(start), seed=seed)
    console.print(f"generated {len(gen.files)} files into {settings.landing} "
                  f"(ground truth: {gen.truth_rows:,} planted items in {settings.truth})")
    quiet_airflow_logs()
    bag = load_dags()
    sources = list(load_yaml("sources.yaml")["sources"])
    states: dict[str, dict[str, str]] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("nights", total=nights * (len(sources) + 1))
        scores = {}
        for night in gen.nights:
            states[night] = run_night(bag, night, sources,
                                      on_step=lambda msg: progress.update(task, advance=1, description=msg))
            scores[night] = score_night(get_spark(settings), settings, settings.truth, night)
    spark = get_spark(settings)
    summary = night_summary(spark, settings)
    render_summary(summary, settings, console)
    console.print("[bold]clean + cross-verify against the generator's ground truth[/bold] "
                  "(per night: planted items found / missed / false findings; records unaccounted)")
    for night, sc in scores.items():
        console.print(f"  {night}: expected {sc.tp + sc.fn:,}  found {sc.tp:,}  missed {sc.fn:,}  false {sc.fp:,}  "
                      f"recall {sc.recall:.4f}  precision {sc.precision:.4f}  "
                      f"unaccounted {sc.delivered - sc.accounted} of {sc.delivered:,}")
    out = settings.home / "exports"
    last = gen.nights[-1]
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
    return {"states": states, "summary": summary, "failed": failed, "scores": scores}
