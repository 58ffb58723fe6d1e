"""The runner: what Airflow tasks and the CLI call — one function per job, each returning a small
JSON-able dict. With ``commands``, ``cli`` and ``demo``, the only code that imports ``jobs``.

One dispatcher (``run_job``) decides for every job, retention jobs included, whether it runs in
this process (``local[*]``, the default) or through ``spark-submit`` against a cluster master
(``conf/environments.yaml``: ``submit``). Either way the caller gets the job's ``task`` dict, and
the data faults keep their type: a rejected delivery, a failed critical gate, an unproven
destruction, an unusable argument.

DAG files import this module inside task bodies (no Spark at parse time).
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta

import pendulum
import pyspark

from jobs import archive, destroy, tier
from jobs import clean as clean_job
from jobs import gate as gate_job
from jobs import ingest as ingest_job
from jobs import quality as quality_job
from jobs import report as report_job
from jobs import verify as verify_job

from .access import lake_tables
from .config import JOBS_DIR, Settings
from .errors import DeliveryRejected, DestructionNotProven, GateFailed, JobFailed, UsageError
from .exports import check_source, parse_night
from .gates import check_gate_table
from .manifest import manifest_present
from .spark import get_spark, spark_conf

log = logging.getLogger("shuzhi.tasks")

JOBS = {"ingest": ingest_job, "gate": gate_job, "clean": clean_job, "verify": verify_job, "tier": tier,
        "archive": archive, "destroy": destroy, "quality": quality_job,
        "report": report_job}


def resolve_batch_date(params: dict | None, logical_date: datetime | None, tz: str = "Asia/Shanghai") -> str:
    """The business date a run covers: the ``batch_date`` param if given (manual runs, backfills),
    else the day before the run's logical date in local time (the nightly run at 01:30 covers
    yesterday's deliveries). Never the wall clock."""
    if params and params.get("batch_date"):
        return date.fromisoformat(str(params["batch_date"])).isoformat()
    if logical_date is None:
        raise UsageError("no batch_date param and no logical date: cannot tell which batch to process")
    return (pendulum.instance(logical_date).in_timezone(tz).date() - timedelta(days=1)).isoformat()


def run_job(job: str, settings: Settings, app: str, **args) -> dict:
    """Run ``jobs/<job>.py``'s ``task`` with ``args``: in this process, or with spark-submit."""
    if settings.spark.submit:
        return _submit(settings, job, args)
    return JOBS[job].task(get_spark(settings, app), settings, **args)


def _submit(settings: Settings, job: str, args: dict) -> dict:
    """``spark-submit jobs/<job>.py --opt value … --json`` against the configured master; its last
    stdout line is the task's JSON; its exit code tells a data fault from a failure."""
    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    conf = [x for k, v in spark_conf(settings, f"shuzhi-{job}").items() if k != "spark.app.name"
            for x in ("--conf", f"{k}={v}")]
    opts = [x for k, v in args.items() if v is not None for x in (f"--{k.replace('_', '-')}", str(v))]
    cmd = [submit, "--master", settings.spark.master, *conf, str(JOBS_DIR / f"{job}.py"), *opts, "--json"]
    proc = subprocess.run(cmd, env={**os.environ, **settings.env_vars()}, capture_output=True, text=True)
    sys.stderr.write(proc.stderr[-5000:])
    if proc.returncode == 0:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    message = last.split(": ", 1)[-1]
    if proc.returncode == 3 and (m := re.match(r"\[(\w+)\] (.*)", message)):
        raise DeliveryRejected(m.group(1), m.group(2))
    fault = {4: GateFailed, 5: DestructionNotProven, 2: UsageError}.get(proc.returncode)
    if fault:
        raise fault(message)
    raise JobFailed(f"spark-submit {job} {' '.join(opts)} exited {proc.returncode}: {proc.stderr[-1500:]}")


def manifest_ready(source: str, batch_date: str, settings: Settings | None = None) -> bool:
    settings = settings or Settings.load()
    ready = manifest_present(settings.landing, source, batch_date)
    log.info("manifest for %s/%s %s", source, batch_date, "present" if ready else "not yet present")
    return ready


def ingest(source: str, batch_date: str, settings: Settings | None = None) -> dict:
    """Ingest one delivery. An unknown source or a batch date that is not a date is a usage error
    (``UsageError``, before Spark starts), never a rejected delivery in ``ops.deliveries``."""
    check_source(source)
    parse_night(batch_date, "batch date")
    settings = settings or Settings.load()
    return run_job("ingest", settings, f"ingest-{source}", source=source, batch_date=batch_date)


def clean(batch_date: str, settings: Settings | None = None) -> dict:
    """Clean stage for every entity delivered that night (bronze → silver)."""
    return run_job("clean", settings or Settings.load(), "clean", batch_date=batch_date)


def verify(batch_date: str, settings: Settings | None = None) -> dict:
    """Cross-verify stage (silver → gold: conflicts register, theme tables)."""
    return run_job("verify", settings or Settings.load(), "verify", batch_date=batch_date)


def quality(batch_date: str, settings: Settings | None = None) -> dict:
    """The night's quality metrics, department scorecards and anomaly flags (after the gold gates)."""
    return run_job("quality", settings or Settings.load(), "quality", batch_date=batch_date)


def report(batch_date: str, settings: Settings | None = None) -> dict:
    """The night's cockpit page, the index of nights and the catalogue page (the DAG's last step)."""
    return run_job("report", settings or Settings.load(), "report", batch_date=batch_date)


def retention_stage(stage: str, as_of: str, settings: Settings | None = None) -> dict:
    """One stage of the retention DAG (``tier``, ``archive`` or ``destroy``) as of a date, with the
    records under legal hold counted before it; tier and archive record their status row (for the
    gate) at once, destroy's is recorded by ``verify_destruction``."""
    if stage not in ("tier", "archive", "destroy"):
        raise UsageError(f"retention stage {stage!r} is not one of tier, archive, destroy")
    return run_job(stage, settings or Settings.load(), stage, as_of=as_of)


def verify_destruction(as_of: str, held_before: int, settings: Settings | None = None) -> dict:
    """After destroy: the certificate of ``as_of`` (if anything was destroyed) must be complete with
    its byte scan passed; records the destroy stage's status row for the gate."""
    return run_job("destroy", settings or Settings.load(), "verify-destruction", as_of=as_of,
                   verify_held_before=held_before)


def gate(table: str, batch_date: str | None, settings: Settings | None = None) -> dict:
    """Gate one table (one of ``gates.gate_tables()``) for a batch date. The table must exist: a
    gate reads, and never creates a lake (its audit and results tables) where there is none."""
    check_gate_table(table)
    parse_night(batch_date, "batch date")
    settings = settings or Settings.load()
    if table not in lake_tables(settings):
        raise UsageError(f"table {table} does not exist in the lake at {settings.lake}; nothing to gate")
    return run_job("gate", settings, f"gate-{table}", table=table, batch_date=batch_date)


def restore(settings: Settings, batch_id: str) -> dict:
    """Verify an archive batch against its manifest and load it into ``restored/``."""
    return run_job("archive", settings, "restore", restore_batch=batch_id)


def for_airflow(fn, *args):
    """Call a task function; a rejected delivery, a failed critical gate or an argument no run can
    use becomes Airflow's non-retryable failure (retrying cannot fix it). Other errors keep
    Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException  # lazy: 4 s of Airflow start-up the CLI must not pay

    try:
        return fn(*args)
    except (DeliveryRejected, GateFailed, DestructionNotProven, UsageError) as exc:
        raise AirflowFailException(str(exc)) from exc
