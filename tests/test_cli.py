"""The CLI answers bad input the way the office's exports do: one ``error:`` line naming what was
given and what is allowed, exit code 2, before Spark starts; an unknown source is never a ledger
row; a read never creates a lake; ``shuzhi airflow -- …`` works as documented; stdout carries only
a command's result (JVM logs and prints go to stderr)."""
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from feedsim.cli import main as feedsim_main
from shuzhi.cli import main as shuzhi_main
from shuzhi.config import REPO_ROOT


def main(argv):
    """The product's CLI, or the simulator's for an argv that starts with ``feedsim``."""
    return feedsim_main(argv[1:]) if argv[:1] == ["feedsim"] else shuzhi_main(argv)


SHUZHI = str(Path(sys.executable).parent / "shuzhi")
NOT_A_DATE = "is not a date (expected YYYY-MM-DD, a real calendar date)"
GATED = ("bronze.civil_affairs_assistance, bronze.health_residents, bronze.police_houses, bronze.police_incidents, "
         "bronze.police_population, bronze.quarantine, bronze.social_security_insurance, gold.conflicts, gold.event, "
         "gold.house, gold.organisation, gold.person, ops.conservation, ops.retention_status, "
         "silver.civil_affairs_assistance, silver.findings, silver.health_residents, silver.police_houses, "
         "silver.police_incidents, silver.police_population, silver.quarantine, silver.social_security_insurance")
SOURCES = "police, civil_affairs, social_security, health"
LAYERS = "bronze, silver, gold, ops, cold, restored"

# (argv, the one stderr line); {lake}, {home} and {tmp} are filled in per test
BAD_ARGUMENTS = [
    (["ingest", "police", "2026-13-45"], f"error: batch date '2026-13-45' {NOT_A_DATE}"),
    (["ingest", "police", "20261125"], f"error: batch date '20261125' {NOT_A_DATE}"),
    (["ingest", "polic", "2026-11-25"], f"error: source 'polic' is not one of {SOURCES}"),
    (["clean", "2026-02-30"], f"error: batch date '2026-02-30' {NOT_A_DATE}"),
    (["verify", "2026-11-3x"], f"error: batch date '2026-11-3x' {NOT_A_DATE}"),
    (["night", "2026-11-31"], f"error: batch date '2026-11-31' {NOT_A_DATE}"),
    (["night", "2026-11-25", "--through", "2026-11-3x"], f"error: --through '2026-11-3x' {NOT_A_DATE}"),
    (["night", "2026-11-25", "--through", "2026-11-24"], "error: --through 2026-11-24 is before the first night "
                                                         "2026-11-25"),
    (["tier", "--as-of", "2028-13-01"], f"error: --as-of '2028-13-01' {NOT_A_DATE}"),
    (["archive", "--as-of", "2032-6-1"], f"error: --as-of '2032-6-1' {NOT_A_DATE}"),
    (["destroy", "--as-of", "yesterday"], f"error: --as-of 'yesterday' {NOT_A_DATE}"),
    (["gate", "bronze.police_populaton", "2026-11-25"], f"error: no gate for table 'bronze.police_populaton'; "
                                                         f"gated tables: {GATED}"),
    (["gate", "police_population"], f"error: no gate for table 'police_population' (name it <layer>.<table>); "
                                    f"gated tables: {GATED}"),
    (["gate", "bronze.police_population", "2026-11-31"], f"error: batch date '2026-11-31' {NOT_A_DATE}"),
    (["query", "police_incidents"], "error: table 'police_incidents' is not <layer>.<name> (e.g. "
                                    f"silver.police_incidents); layers: {LAYERS}"),
    (["query", "silver.police_incidents", "--role", "mayor"],
     "error: role 'mayor' is not one of data_engineer, governance_office, scheduler (conf/roles.yaml)"),
    (["query", "silver.police_incidents", "--month", "2026-13"],
     "error: --month '2026-13' is not a month (expected YYYY-MM, e.g. 2026-10)"),
    (["query", "silver.police_incidents", "--limit", "-1"], "error: --limit -1 must be 0 or more"),
    (["feedsim", "score", "2026-11-25", "--truth", "{tmp}/missing"],
     "error: --truth {tmp}/missing: no such folder (the generator's ground truth, e.g. {home}/truth)"),
    (["feedsim", "score", "2026-11-25x", "--truth", "{tmp}"], f"error: batch date '2026-11-25x' {NOT_A_DATE}"),
    (["export", "conflicts", "--out", "{tmp}/c.csv", "--status", "closed"],
     "error: status 'closed' is not one of open, resolved"),
    (["export", "quarantine", "--out", "{tmp}/q.csv", "--source", "polic"],
     f"error: source 'polic' is not one of {SOURCES}"),
    (["rules", "--night", "tomorrow"], f"error: night 'tomorrow' {NOT_A_DATE}"),
    (["report", "--night", "2026-11-31"], f"error: night '2026-11-31' {NOT_A_DATE}"),
    (["--env", "prod", "summary"], "error: environment 'prod' is not one of local, cluster (conf/environments.yaml)"),
    (["feedsim", "generate", "--start", "2026-11-31"], f"error: --start '2026-11-31' {NOT_A_DATE}"),
    (["feedsim", "demo", "--nights", "0"], "error: --nights 0 must be at least 1"),
]
# reading commands (and the retention stages) on a lake that does not exist
NO_LAKE = "error: no lake at {lake} (SHUZHI_HOME={home}); run the demo or ingest first"
READS = [["summary"], ["rules"], ["report"], ["export", "conflicts", "--out", "{tmp}/c.csv"],
         ["export", "quarantine", "--out", "{tmp}/q.csv"], ["query", "silver.police_incidents"],
         ["feedsim", "score", "2026-11-25", "--truth", "{tmp}/truth"],
         ["gate", "bronze.police_population", "2026-11-25"],
         ["restore", "2032-06-01"], ["tier", "--as-of", "2028-06-01"], ["destroy", "--as-of", "2057-01-01"]]


@pytest.fixture
def no_lake(settings, tmp_path, monkeypatch):
    """The environment of a user whose SHUZHI_HOME names a folder without a lake (a typo)."""
    for k, v in settings.env_vars().items():
        if not k.startswith("AIRFLOW"):      # Airflow reads its config once per process: keep the session's DB
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("SHUZHI_LAKE")
    monkeypatch.delenv("SHUZHI_ROLE", raising=False)
    (tmp_path / "truth" / "2026-11-25").mkdir(parents=True)
    (tmp_path / "truth" / "2026-11-25" / "truth.csv").write_text("class,source\n", encoding="utf-8")
    return settings


def fill(argv, settings, tmp_path):
    return [a.format(lake=settings.lake, home=settings.home, tmp=tmp_path) for a in argv]


@pytest.mark.unit
@pytest.mark.parametrize("argv, line", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_bad_argument_is_one_error_line_exit_2(no_lake, tmp_path, capsys, argv, line):
    assert main(fill(argv, no_lake, tmp_path)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == line.format(lake=no_lake.lake, home=no_lake.home, tmp=tmp_path) + "\n"
    assert not no_lake.lake.exists()


@pytest.mark.unit
def test_bad_role_from_the_environment(no_lake, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHUZHI_ROLE", "mayor")
    assert main(["export", "conflicts", "--out", str(tmp_path / "c.csv")]) == 2
    assert capsys.readouterr().err == ("error: role 'mayor' is not one of data_engineer, governance_office, "
                                       "scheduler (conf/roles.yaml)\n")


@pytest.mark.unit
@pytest.mark.parametrize("argv", READS, ids=[" ".join(a) for a in READS])
def test_reads_on_a_missing_lake_fail_and_create_nothing(no_lake, tmp_path, capsys, argv):
    assert main(fill(argv, no_lake, tmp_path)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == NO_LAKE.format(lake=no_lake.lake, home=no_lake.home) + "\n"
    assert not no_lake.lake.exists() and not no_lake.home.exists()
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "q.csv").exists()


@pytest.mark.unit
def test_missing_lake_names_shuzhi_lake_when_set(no_lake, capsys, monkeypatch):
    monkeypatch.setenv("SHUZHI_LAKE", str(no_lake.home / "lakke"))
    assert main(["summary"]) == 2
    lake = no_lake.home / "lakke"
    assert capsys.readouterr().err == f"error: no lake at {lake} (SHUZHI_LAKE={lake}); run the demo or ingest first\n"


@pytest.mark.unit
def test_an_empty_lake_folder_is_no_lake(no_lake, capsys):
    (no_lake.lake / "ops").mkdir(parents=True)
    assert main(["rules"]) == 2
    assert "error: no lake at" in capsys.readouterr().err


@pytest.mark.unit
def test_usage_errors_never_start_spark(no_lake, tmp_path):
    """All of them in one process that never starts a JVM, in a fraction of Spark's start-up."""
    cases = [fill(a, no_lake, tmp_path) for a, _ in BAD_ARGUMENTS] + [fill(a, no_lake, tmp_path) for a in READS]
    code = ("import contextlib, io, json, sys, time\n"
            "from feedsim.cli import main as feedsim_main\n"
            "from shuzhi.cli import main as shuzhi_main\n"
            "main = lambda argv: feedsim_main(argv[1:]) if argv[:1] == ['feedsim'] else shuzhi_main(argv)\n"
            "cases = json.loads(sys.argv[1])\n"
            "t0 = time.monotonic(); rcs = []\n"
            "for argv in cases:\n"
            "    with contextlib.redirect_stderr(io.StringIO()):\n"
            "        rcs.append(main(argv))\n"
            "from pyspark import SparkContext\n"
            "print(json.dumps({'rcs': rcs, 'seconds': time.monotonic() - t0,"
            " 'jvm': SparkContext._gateway is not None}))")
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(cases)], env=dict(os.environ), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["rcs"] == [2] * len(cases)
    assert res["jvm"] is False
    assert res["seconds"] < 10, res            # Spark alone takes 17 s or more to start here
    assert not no_lake.lake.exists()


@pytest.mark.integration
def test_unknown_source_is_a_usage_error_never_a_ledger_row(no_lake, tmp_path, capsys):
    from airflow.sdk.exceptions import AirflowFailException

    from shuzhi import tasks
    from shuzhi.exports import UsageError

    assert main(["ingest", "polic", "2026-11-25"]) == 2
    assert capsys.readouterr().err == f"error: source 'polic' is not one of {SOURCES}\n"
    with pytest.raises(UsageError, match="source 'polic' is not one of"):
        tasks.ingest("polic", "2026-11-25", no_lake)
    # in Airflow: failed without retries (retrying cannot make the source exist)
    with pytest.raises(AirflowFailException, match="source 'polic'"):
        tasks.for_airflow(tasks.ingest, "polic", "2026-11-25", no_lake)
    assert not no_lake.lake.exists()                       # no ops.deliveries, no ops.job_runs, nothing
    # the gate task refuses a table it has no suite for, and one the lake does not hold
    with pytest.raises(UsageError, match="no gate for table 'ops.deliveries'"):
        tasks.gate("ops.deliveries", "2026-11-25", no_lake)
    with pytest.raises(UsageError, match="does not exist in the lake"):
        tasks.gate("bronze.police_population", "2026-11-25", no_lake)
    assert not no_lake.lake.exists()


@pytest.mark.integration
def test_gate_tables_are_the_dags_gates():
    """The list the CLI checks a gate's table against is exactly what the DAGs gate."""
    from shuzhi.gates import gate_tables

    life = runpy.run_path(str(REPO_ROOT / "dags" / "shuzhi_lifecycle.py"))
    ret = runpy.run_path(str(REPO_ROOT / "dags" / "shuzhi_retention.py"))
    dag_gates = ({f"bronze.{t}" for t in life["TABLES"] + ["quarantine"]} | set(life["SILVER_GATES"])
                 | set(life["GOLD_GATES"]) | {ret["STATUS"]})
    assert set(gate_tables()) == dag_gates
    assert ", ".join(gate_tables()) == GATED


@pytest.mark.integration
def test_airflow_double_dash_form(settings, airflow_db, tmp_path):
    """README: ``shuzhi airflow -- dags list``; the form without ``--`` works too."""
    env = {**os.environ, **settings.env_vars(),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(airflow_db) / 'airflow.db'}"}
    ser = subprocess.run([SHUZHI, "airflow", "dags", "reserialize"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ser.returncode == 0, ser.stdout[-2000:] + ser.stderr[-2000:]
    proc = subprocess.run([SHUZHI, "airflow", "--", "dags", "list", "-o", "json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    listed = next(line for line in proc.stdout.splitlines() if line.startswith("["))   # airflow may warn first
    ids = {d["dag_id"] for d in json.loads(listed)}
    assert ids == {"shuzhi_ingest_police", "shuzhi_ingest_civil_affairs", "shuzhi_ingest_social_security",
                   "shuzhi_ingest_health", "shuzhi_lifecycle", "shuzhi_retention"}


@pytest.mark.spark
def test_query_stdout_is_json_lines_only(spark, settings):
    """``shuzhi query … | jq``: every stdout line is one JSON row; Spark's start-up lines go to stderr."""
    from shuzhi.delta import write_table

    df = spark.createDataFrame([("E1", "赛罕区大学东街1号", 3), ("E2", "昭乌达路11号", 1)],
                               "record_id string, place string, persons int")
    write_table(df, settings.table_path("gold", "event"), mode="append")
    env = {**os.environ, **settings.env_vars()}
    env.pop("SHUZHI_ROLE", None)
    proc = subprocess.run([SHUZHI, "query", "gold.event", "--limit", "5"], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(rows, key=lambda r: r["record_id"]) == [
        {"record_id": "E1", "place": "赛罕区大学东街1号", "persons": 3},
        {"record_id": "E2", "place": "昭乌达路11号", "persons": 1}]
    assert proc.stdout.endswith("\n") and len(proc.stdout.splitlines()) == 2


PROBE = """
import sys
from shuzhi.config import Settings, SparkSettings
from shuzhi.delta import write_table
from shuzhi.spark import get_spark

s = Settings.load(home=sys.argv[1], spark=SparkSettings(master="local[2]", shuffle_partitions=2, driver_memory="1g"))
spark = get_spark(s, "probe")
jvm = spark._jvm
jvm.System.out.println("JVM-STDOUT-PROBE")
codegen = jvm.org.apache.logging.log4j.LogManager.getLogger(
    "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator")
codegen.error("CODEGEN-PROBE failed to compile: Code grows beyond 64 KB",
              jvm.java.lang.RuntimeException("JANINO-TRACE"))
p = s.table_path("ops", "tiny")
df = spark.createDataFrame([("a", 1)], "k string, v int")
write_table(df, p, mode="append")
write_table(df, p, mode="snapshot")
spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
from delta.tables import DeltaTable
DeltaTable.forPath(spark, str(p)).vacuum(0)          # Delta prints "Deleted N files …" (println)
print("RESULT")
"""


@pytest.mark.spark
def test_jvm_prints_and_logs_go_to_stderr(tmp_path):
    """What the JVM prints outside Log4j (VACUUM's lines), its start-up WARN lines and the code
    generator's errors: all on stderr; the code generator's as one line without its stack trace."""
    proc = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "home")], env=dict(os.environ),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == "RESULT\n"
    err = proc.stderr
    assert "JVM-STDOUT-PROBE" in err and "Deleted " in err
    line = next(ln for ln in err.splitlines() if "CODEGEN-PROBE" in ln)
    assert line.endswith("ERROR CodeGenerator: CODEGEN-PROBE failed to compile: Code grows beyond 64 KB")
    assert "JANINO-TRACE" not in err
