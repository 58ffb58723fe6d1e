"""End to end through Airflow: generated multi-night deliveries → every source's ingest DAG and
the lifecycle DAG per night (real task runs in Airflow's metadata DB: bronze gates → clean →
silver gates → cross-verify → gold gates) → gated bronze, silver and gold. Conservation holds for
every delivery and every clean stage; re-running a whole night changes no table. Then the
retention DAG, decades later, tiers, archives and destroys with every gate green."""
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from browser import open_page
from pyspark.sql import functions as F

from feedsim import generate
from shuzhi.delta import read_table, table_version
from shuzhi.gates import data_docs_index
from shuzhi.schemas import catalog

pytestmark = pytest.mark.integration
NIGHTS = ["2026-11-25", "2026-11-26"]


def lake_versions(spark, settings):
    tables = [(layer, e.table_name) for e in catalog().entities() for layer in ("bronze", "silver")] + [
        ("bronze", "quarantine"), ("ops", "deliveries"), ("ops", "gate_results"), ("silver", "quarantine"),
        ("silver", "findings"), ("ops", "conservation"), ("ops", "rule_hits"), ("gold", "conflicts"),
        ("gold", "person"), ("gold", "house"), ("gold", "event"), ("gold", "organisation")]
    return {t: table_version(spark, settings.table_path(*t)) for t in tables}


def test_nights_through_airflow(spark, settings, airflow_env, tmp_path):
    started = datetime.now(timezone.utc)
    generate(settings.landing, settings.truth, residents=300, nights=len(NIGHTS),
             start_date=date.fromisoformat(NIGHTS[0]), seed=11)
    from shuzhi.demo import load_dags, quiet_airflow_logs, run_night

    quiet_airflow_logs()
    bag = load_dags()
    sources = list(catalog().sources)
    for night in NIGHTS:
        states = run_night(bag, night, sources)
        assert set(states.values()) == {"success"}, states

    # The lifecycle's last step wrote each night's cockpit page, listed in the index; no identity
    # number appears in it unmasked (masked numbers keep 6 + 4 digits around the stars).
    cockpit = settings.reports_dir / "cockpit"
    index = (cockpit / "index.html").read_text(encoding="utf-8")
    for night in NIGHTS:
        page = (cockpit / f"{night}.html").read_text(encoding="utf-8")
        assert f"数据治理驾驶舱 Governance cockpit — {night}" in page and f'href="{night}.html"' in index
        assert re.search(r"(?<![0-9A-Za-z])[0-9]{17}[0-9X](?![0-9A-Za-z])", page) is None
    assert (cockpit / "catalogue.html").is_file() and (cockpit / "catalogue.json").is_file()

    # As the office opens them: headless chromium, network cut. The cockpit page of the last night
    # draws every chart; the Data Docs index lists the nights' validations under their batch dates.
    seen = open_page(cockpit / f"{NIGHTS[-1]}.html", tmp_path / "cockpit.png")
    assert (seen["console"], seen["page_errors"], seen["outside_requests"], seen["failed_requests"]) == (
        [], [], [], [])
    assert len(seen["charts"]) >= 3 and all(c["shapes"] > 0 and c["width"] > 0 for c in seen["charts"]), seen["charts"]
    assert (tmp_path / "cockpit.png").stat().st_size > 10_000
    docs = open_page(data_docs_index(settings))
    assert (docs["console"], docs["page_errors"], docs["outside_requests"], docs["failed_requests"]) == (
        [], [], [], [])
    listed = [line.split("\t") for line in docs["text"].splitlines() if line.count("\t") >= 4]
    validations = list((data_docs_index(settings).parent / "validations").rglob("*.html"))
    assert listed and {r[2].strip() for r in listed} <= set(NIGHTS)                  # its first page of rows
    assert re.search(rf"Showing 1 to \d+ of {len(validations)} rows", docs["text"]), docs["text"][-300:]

    # Airflow records each run's real start (dag.test alone would stamp it with its logical date)
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    with create_session() as session:
        runs = session.query(DagRun.dag_id, DagRun.start_date, DagRun.end_date).all()
    assert len(runs) == (len(sources) + 1) * len(NIGHTS)
    assert all(started <= r.start_date <= r.end_date <= datetime.now(timezone.utc) for r in runs), runs

    # Conservation for every delivery of every night: manifest rows = bronze + quarantine.
    led = read_table(spark, settings.table_path("ops", "deliveries"))
    rows = led.collect()
    assert {(r["source"], r["batch_date"].isoformat()) for r in rows} == {(s, n) for s in sources for n in NIGHTS}
    assert all(r["status"] == "accepted" and r["balanced"] for r in rows)
    for r in rows:
        folder = settings.landing / r["source"] / r["batch_date"].isoformat()
        manifest = json.loads((folder / "manifest.json").read_text())
        (entry,) = [f for f in manifest["files"] if f["name"] == r["file"]]
        table = settings.table_path("bronze", f"{r['source']}_{r['entity']}")
        b = read_table(spark, table).filter(F.col("_batch_date") == r["batch_date"]).count()
        q = (read_table(spark, settings.table_path("bronze", "quarantine"))
             .filter((F.col("_batch_date") == r["batch_date"]) & (F.col("_file") == r["file"])).count())
        assert entry["rows"] == b + q, (r["file"], entry["rows"], b, q)

    # The planted broken lines are exactly what the quarantine holds.
    import csv
    planted = set()
    for night in NIGHTS:
        with open(settings.truth / night / "truth.csv", encoding="utf-8") as fh:
            planted |= {(r["file"], int(r["row"])) for r in csv.DictReader(fh)
                        if r["defect_class"].startswith("broken_")}
    held = {(r["_file"], r["_row"]) for r in read_table(spark, settings.table_path("bronze", "quarantine")).collect()}
    assert held == planted

    # Audit: every ingest and gate run recorded, with Airflow's ids.
    audit = read_table(spark, settings.table_path("ops", "job_runs"))
    ing = audit.filter(F.col("stage") == "ingest").collect()
    assert len(ing) == len(sources) * len(NIGHTS) and {r["outcome"] for r in ing} == {"success"}
    assert all(r["dag_id"] and r["dag_id"].startswith("shuzhi_ingest_") for r in ing)
    gates = read_table(spark, settings.table_path("ops", "gate_results"))
    assert gates.filter((F.col("severity") == "critical") & ~F.col("success")).count() == 0
    n = len(catalog().entities())
    assert gates.select("table").distinct().count() == (n + 1) + (n + 3) + 5   # bronze, silver (+ops), gold

    # The clean stage balanced every entity every night; the cross-verify stage ran every night.
    cons = read_table(spark, settings.table_path("ops", "conservation")).collect()
    delivered = {(r["source"], r["entity"], r["batch_date"]) for r in rows if r["bronze_rows"] > 0}
    assert {(r["source"], r["entity"], r["batch_date"]) for r in cons} == delivered
    assert all(r["balanced"] for r in cons)
    assert all(r["bronze_rows"] == r["loaded"] + r["unchanged"] + r["quarantined"] + r["superseded"] for r in cons)
    ver = audit.filter(F.col("stage") == "verify").collect()
    assert len(ver) == len(NIGHTS) and {r["dag_id"] for r in ver} == {"shuzhi_lifecycle"}
    assert read_table(spark, settings.table_path("gold", "conflicts")).count() > 0

    # Re-running a whole night's DAG runs changes nothing in the lake.
    noops = audit.filter((F.col("stage") == "ingest") & (F.col("outcome") == "noop")).count()
    assert noops == 0
    before = lake_versions(spark, settings)
    states = run_night(bag, NIGHTS[0], sources)
    assert set(states.values()) == {"success"}
    assert lake_versions(spark, settings) == before
    assert read_table(spark, settings.table_path("ops", "job_runs")).filter(
        (F.col("stage") == "ingest") & (F.col("outcome") == "noop")).count() == noops + len(sources)

    # The retention DAG decades later: tier → gate → archive → gate → destroy → verify → gate.
    from shuzhi.demo import run_dag
    dr = run_dag(bag.dags["shuzhi_retention"], "2062-01-01", {"as_of": "2062-01-01"})
    assert str(dr.state) == "success"
    status = {r["stage"]: r for r in read_table(spark, settings.table_path("ops", "retention_status")).collect()}
    assert set(status) == {"tier", "archive", "destroy"}
    assert all(r["overdue"] == 0 and r["held_before"] == r["held_after"] and r["verified"] for r in status.values())
    certs = read_table(spark, settings.table_path("ops", "destruction_certificates")).collect()
    assert {r["phase"] for r in certs} == {"started", "completed"}
    stages = {r["stage"] for r in read_table(spark, settings.table_path("ops", "job_runs"))
              .filter(F.col("dag_id") == "shuzhi_retention").collect()}
    assert {"tier", "archive", "destroy", "gate:ops.retention_status"} <= stages


def test_airflow_cli_dags_test(settings, airflow_env, tmp_path):
    """The real `airflow dags test` command, in its own process, for one source and night."""
    generate(settings.landing, settings.truth, residents=100, nights=1, start_date=date(2026, 11, 25), seed=3)
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow), "dags", "test", "shuzhi_ingest_health", "2026-11-26T01:30:00+08:00"],
                          env={**os.environ, **airflow_env}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Its whole log (the driver JVM's included: its stdout and stderr are this process's stderr) has
    # no code-generation fallback: a plan over Java's 64 KB method limit is compiled, refused and
    # interpreted (issue 14: lost speed and thousands of log lines in a demo).
    log = proc.stdout + proc.stderr
    assert "Executing DAG" in log or "shuzhi_ingest_health" in log, log[-2000:]
    # (conf/log4j2.properties prints the code generator's refusal as its one message line, without
    # the exception: "Failed to compile the generated Java code.")
    fallbacks = [ln for ln in log.splitlines() if "grows beyond 64 KB" in ln or "InternalCompilerException" in ln
                 or "Failed to compile the generated Java code" in ln]
    assert fallbacks == [], fallbacks[:5]
    from shuzhi.spark import get_spark
    spark = get_spark(settings)
    (led,) = read_table(spark, settings.table_path("ops", "deliveries")).collect()
    assert (led["source"], led["batch_date"].isoformat(), led["balanced"]) == ("health", "2026-11-25", True)
