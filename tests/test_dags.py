"""DAG integrity: every DAG imports without errors, has the expected tasks and edges, schedules
and Assets; parsing imports neither Spark nor GX."""
import subprocess
import sys

from shuzhi.schemas import catalog


def test_dags_import_and_wiring(airflow_db):
    from shuzhi.demo import load_dags

    bag = load_dags()
    sources = list(catalog().sources)
    assert set(bag.dag_ids) == {f"shuzhi_ingest_{s}" for s in sources} | {"shuzhi_lifecycle"}
    police = bag.get_dag("shuzhi_ingest_police")
    down = {t.task_id: set(t.downstream_task_ids) for t in police.tasks}
    assert down["wait_for_manifest"] == {"ingest"}
    assert down["ingest"] == {"gate_population", "gate_houses", "gate_incidents"}
    assert police.params["batch_date"] is None
    assert police.default_args["retries"] == 2
    outlets = {a.name for a in police.get_task("ingest").outlets}
    assert outlets == {"bronze.police_population", "bronze.police_houses", "bronze.police_incidents"}
    life = bag.get_dag("shuzhi_lifecycle")
    assert {t.task_id for t in life.tasks} >= {f"gate_bronze_{e.table_name}" for e in catalog().entities()} | {
        "gate_bronze_quarantine"}


def test_dag_files_do_not_import_spark_or_gx_at_parse_time():
    code = ("import sys, runpy; runpy.run_path('dags/shuzhi_ingest.py'); runpy.run_path('dags/shuzhi_lifecycle.py');"
            "bad = [m for m in ('pyspark', 'great_expectations', 'delta') if m in sys.modules]; print(bad);"
            "sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
