"""What Airflow tasks call: thin wrappers over the jobs, returning small JSON-able dicts.

DAG files import this module lazily inside task bodies (no Spark at parse time). The same
functions back the CLI. ``conf/environments.yaml`` decides whether a job runs in-process
(``local[*]``, the default) or through ``spark-submit`` against a cluster master.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import date, datetime, timedelta

from .config import JOBS_DIR, Settings

log = logging.getLogger("shuzhi.tasks")


def resolve_batch_date(params: dict | None, logical_date: datetime | None, tz: str = "Asia/Shanghai") -> str:
    """The business date a run covers: the ``batch_date`` param if given (manual runs, backfills),
    else the day before the run's logical date in local time (the nightly run at 01:30 covers
    yesterday's deliveries). Never the wall clock."""
    if params and params.get("batch_date"):
        return date.fromisoformat(str(params["batch_date"])).isoformat()
    if logical_date is None:
        raise ValueError("no batch_date param and no logical date: cannot tell which batch to process")
    import pendulum

    return (pendulum.instance(logical_date).in_timezone(tz).date() - timedelta(days=1)).isoformat()


def _spark(settings: Settings, app: str):
    from .spark import get_spark

    return get_spark(settings, app)


def _submit(settings: Settings, job: str, args: list[str]) -> dict:
    """Run ``jobs/<job>.py`` with spark-submit against the configured master; its last stdout line is JSON."""
    from .spark import spark_conf

    import pyspark

    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    conf = [x for k, v in spark_conf(settings, f"shuzhi-{job}").items() if k != "spark.app.name"
            for x in ("--conf", f"{k}={v}")]
    cmd = [submit, "--master", settings.spark.master, *conf, str(JOBS_DIR / f"{job}.py"), *args, "--json"]
    proc = subprocess.run(cmd, env={**os.environ, **settings.env_vars()}, capture_output=True, text=True)
    sys.stderr.write(proc.stderr[-5000:])
    if proc.returncode != 0:
        raise RuntimeError(f"spark-submit {job} {' '.join(args)} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def manifest_ready(source: str, batch_date: str, settings: Settings | None = None) -> bool:
    from .manifest import manifest_present

    settings = settings or Settings.load()
    ready = manifest_present(settings.landing, source, batch_date)
    log.info("manifest for %s/%s %s", source, batch_date, "present" if ready else "not yet present")
    return ready


def ingest(source: str, batch_date: str, settings: Settings | None = None) -> dict:
    """Ingest one delivery. An unknown source or a batch date that is not a date is a usage error
    (``UsageError``, before Spark starts), never a rejected delivery in ``ops.deliveries``."""
    from .exports import check_source, parse_night

    check_source(source)
    parse_night(batch_date, "batch date")
    settings = settings or Settings.load()
    if settings.spark.submit:
        return _submit(settings, "ingest", ["--source", source, "--batch-date", batch_date])
    from jobs import ingest as job

    res = job.run(_spark(settings, f"ingest-{source}"), settings, source, batch_date)
    return ingest_summary(res)


def ingest_summary(res) -> dict:
    return {"source": res.source, "batch_date": res.batch_date, "status": res.status, "kind": res.kind,
            "files": [{"table": f.table, "file": f.file, "manifest_rows": f.manifest_rows, "bronze_rows": f.bronze_rows,
                       "quarantined_rows": f.quarantined_rows, "reasons": f.reasons} for f in res.files]}


def clean(batch_date: str, settings: Settings | None = None) -> dict:
    """Clean stage for every entity delivered that night (bronze → silver)."""
    settings = settings or Settings.load()
    if settings.spark.submit:
        return _submit(settings, "clean", ["--batch-date", batch_date])
    from jobs import clean as job

    return job.summary(job.run(_spark(settings, "clean"), settings, batch_date))


def verify(batch_date: str, settings: Settings | None = None) -> dict:
    """Cross-verify stage (silver → gold: conflicts register, theme tables)."""
    settings = settings or Settings.load()
    if settings.spark.submit:
        return _submit(settings, "verify", ["--batch-date", batch_date])
    from jobs import verify as job

    return job.summary(job.run(_spark(settings, "verify"), settings, batch_date))


def retention_stage(stage: str, as_of: str, settings: Settings | None = None) -> dict:
    """One stage of the retention DAG (``tier``, ``archive`` or ``destroy``) as of a date, with the
    records under legal hold counted before it; tier and archive record their status row (for the
    gate) at once, destroy's is recorded by ``verify_destruction``."""
    import json as _json

    settings = settings or Settings.load()
    from jobs import archive, destroy, tier

    from .crypto import Keyring
    from .lifecycle import held_count, record_status
    from .retention import load_policy

    spark = _spark(settings, stage)
    keyring, policy = Keyring.load(settings.key_dir), load_policy()
    held_before = held_count(spark, settings, policy, keyring, date.fromisoformat(as_of))
    job = {"tier": tier, "archive": archive, "destroy": destroy}[stage]
    out = job.summary(job.run(spark, settings, as_of, keyring=keyring, policy=policy))
    out["held_before"] = held_before
    if stage != "destroy":
        out["status_row"] = record_status(spark, settings, as_of, stage, held_before=held_before, verified=True,
                                          detail=_json.dumps(out, default=str), policy=policy, keyring=keyring)
    return out


def verify_destruction(as_of: str, held_before: int, settings: Settings | None = None) -> dict:
    """After destroy: the certificate of ``as_of`` (if anything was destroyed) must be complete with
    its byte scan passed; records the destroy stage's status row for the gate."""
    settings = settings or Settings.load()
    from pyspark.sql import functions as F

    from jobs.destroy import CERTIFICATES

    from .crypto import Keyring
    from .delta import read_table, table_exists
    from .lifecycle import record_status
    from .retention import load_policy

    spark = _spark(settings, "verify-destruction")
    path = settings.table_path(*CERTIFICATES)
    certs = (read_table(spark, path).filter(F.col("as_of") == F.lit(date.fromisoformat(as_of)))
             .select("certificate_id", "phase", "verification").collect() if table_exists(spark, path) else [])
    started = {r["certificate_id"] for r in certs if r["phase"] == "started"}
    done = {r["certificate_id"] for r in certs if r["phase"] == "completed"}
    verified = started <= done
    detail = "; ".join(f"{r['certificate_id']}: {r['verification']}" for r in certs if r["phase"] != "started") \
        or "nothing destroyed"
    return record_status(spark, settings, as_of, "destroy", held_before=held_before, verified=verified,
                         detail=detail, policy=load_policy(), keyring=Keyring.load(settings.key_dir))


def gate(table: str, batch_date: str | None, settings: Settings | None = None) -> dict:
    """Gate one table (one of ``gates.gate_tables()``) for a batch date. The table must exist: a
    gate reads, and never creates a lake (its audit and results tables) where there is none."""
    from .access import lake_tables
    from .errors import UsageError
    from .exports import parse_night
    from .gates import check_gate_table

    check_gate_table(table)
    parse_night(batch_date, "batch date")
    settings = settings or Settings.load()
    if table not in lake_tables(settings):
        raise UsageError(f"table {table} does not exist in the lake at {settings.lake}; nothing to gate")
    if settings.spark.submit:
        return _submit(settings, "gate", ["--table", table, "--batch-date", batch_date or ""])
    from jobs import gate as job

    out = job.run(_spark(settings, f"gate-{table}"), settings, table, batch_date)
    return gate_summary(out)


def gate_summary(out) -> dict:
    return {"suite": out.suite, "table": out.table, "batch_date": out.batch_date, "rows": out.rows,
            "status": out.status, "failed_warning": out.failed_warning, "failed_critical": out.failed_critical}


def for_airflow(fn, *args):
    """Call a task function; a rejected delivery, a failed critical gate or an argument no run can
    use becomes Airflow's non-retryable failure (retrying cannot fix it). Other errors keep
    Airflow's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from .errors import DeliveryRejected, DestructionNotProven, GateFailed
    from .errors import UsageError

    try:
        return fn(*args)
    except (DeliveryRejected, GateFailed, DestructionNotProven, UsageError) as exc:
        raise AirflowFailException(str(exc)) from exc
