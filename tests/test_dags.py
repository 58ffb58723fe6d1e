"""DAG integrity: every DAG imports without errors, has the expected tasks and edges, schedules
and Assets; parsing imports neither Spark nor GX."""
import subprocess
import sys

import pytest

from shuzhi.schemas import catalog

pytestmark = pytest.mark.integration


def test_dags_import_and_wiring(airflow_db):
    from shuzhi.demo import load_dags

    bag = load_dags()
    sources = list(catalog().sources)
    assert set(bag.dag_ids) == {f"shuzhi_ingest_{s}" for s in sources} | {"shuzhi_lifecycle", "shuzhi_retention"}
    police = bag.get_dag("shuzhi_ingest_police")
    down = {t.task_id: set(t.downstream_task_ids) for t in police.tasks}
    assert down["wait_for_manifest"] == {"ingest"}
    assert down["ingest"] == {"gate_population", "gate_houses", "gate_incidents"}
    assert police.params["batch_date"] is None
    assert police.default_args["retries"] == 2
    outlets = {a.name for a in police.get_task("ingest").outlets}
    assert outlets == {"bronze.police_population", "bronze.police_houses", "bronze.police_incidents"}
    life = bag.get_dag("shuzhi_lifecycle")
    bronze_gates = {f"gate_bronze_{e.table_name}" for e in catalog().entities()} | {"gate_bronze_quarantine"}
    silver_gates = {f"gate_silver_{e.table_name}" for e in catalog().entities()} | {
        "gate_silver_quarantine", "gate_silver_findings", "gate_ops_conservation"}
    gold_gates = {f"gate_gold_{t}" for t in ("conflicts", "person", "house", "event", "organisation")}
    life_down = {t.task_id: set(t.downstream_task_ids) for t in life.tasks}
    assert set(life_down) == bronze_gates | silver_gates | gold_gates | {"batch_date", "clean", "cross_verify",
                                                                                "quality", "report", "night_failed"}
    # any failed task fails the run: night_failed, downstream of every task, runs (and fails) only then;
    # otherwise it is skipped and the run succeeds
    assert life.get_task("night_failed").trigger_rule == "one_failed"
    assert set(life.get_task("night_failed").upstream_task_ids) == set(life_down) - {"night_failed"}
    life_down = {t: d - {"night_failed"} for t, d in life_down.items() if t != "night_failed"}
    # bronze gates → clean → silver gates → cross-verify → gold gates: a failed gate stops what follows
    assert all(life_down[g] == {"clean"} for g in bronze_gates)
    assert life_down["clean"] == silver_gates
    assert all(life_down[g] == {"cross_verify"} for g in silver_gates)
    assert life_down["cross_verify"] == gold_gates
    assert all(life_down[g] == {"quality"} for g in gold_gates) and life_down["quality"] == {"report"}
    # the cockpit page is written whatever quality's outcome: a failed anomaly gate is what the office reads
    assert life.get_task("report").trigger_rule == "all_done" and life_down["report"] == set()
    assert {a.name for a in life.get_task("cross_verify").outlets} == {"gold.conflicts"}
    # retention: tier → gate → archive → gate → destroy → verify → gate
    ret = {t.task_id: set(t.downstream_task_ids) for t in bag.get_dag("shuzhi_retention").tasks}
    assert ret["as_of"] == {"tier", "gate_tier", "archive", "gate_archive", "destroy", "verify", "gate_destroy"}
    assert ret["tier"] == {"gate_tier"} and ret["gate_tier"] == {"archive"}
    assert ret["archive"] == {"gate_archive"} and ret["gate_archive"] == {"destroy"}
    assert ret["destroy"] == {"verify"} and ret["verify"] == {"gate_destroy"} and ret["gate_destroy"] == set()


def test_dag_files_do_not_import_spark_or_gx_at_parse_time():
    code = ("import sys, runpy; runpy.run_path('dags/shuzhi_ingest.py'); runpy.run_path('dags/shuzhi_lifecycle.py');"
            "runpy.run_path('dags/shuzhi_retention.py');"
            "bad = [m for m in ('pyspark', 'great_expectations', 'delta') if m in sys.modules]; print(bad);"
            "sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
