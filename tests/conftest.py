import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

# Airflow reads its configuration once per process: give the whole test session one
# AIRFLOW_HOME (SQLite metadata DB) before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="shuzhi-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")
os.environ["AIRFLOW__CORE__DEFAULT_TIMEZONE"] = "Asia/Shanghai"

from shuzhi.config import Settings, SparkSettings  # noqa: E402 (after the Airflow settings above)
from shuzhi.crypto import Keyring  # noqa: E402


@pytest.fixture(scope="session")
def spark_settings() -> SparkSettings:
    return SparkSettings(master="local[2]", submit=False, shuffle_partitions=2, driver_memory="4g", ui=False)


@pytest.fixture
def settings(tmp_path, spark_settings) -> Settings:
    """A fresh lake, landing zone and keyring per test (keys outside the lake)."""
    s = Settings.load(home=tmp_path / "home", key_dir=tmp_path / "keys", spark=spark_settings)
    Keyring.create(s.key_dir)
    return s


# JVM flags for a session of unit tests only (`make unit`): the client compiler alone and the serial
# collector. Tiny frames never run long enough for the optimising compiler to pay for itself: it
# roughly halves the JVM's CPU time of the unit layer. Sessions with spark/integration tests keep
# the JVM's defaults (their jobs run long enough to want C2). Read by the JVM when it starts.
UNIT_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="session")
def spark(spark_settings, tmp_path_factory, request):
    from shuzhi.spark import get_spark

    unit_only = all(item.get_closest_marker("unit") is not None for item in request.session.items)
    set_options = unit_only and "JAVA_TOOL_OPTIONS" not in os.environ
    if set_options:
        os.environ["JAVA_TOOL_OPTIONS"] = UNIT_JVM_OPTIONS
    s = Settings.load(home=tmp_path_factory.mktemp("sess"), spark=spark_settings)
    try:
        session = get_spark(s, "shuzhi-tests")
    finally:
        if set_options:
            del os.environ["JAVA_TOOL_OPTIONS"]     # the JVM has read it; no child process inherits it
    yield session
    session.stop()


# Run-time settings of the unit layer's frames (a handful of rows each): one shuffle partition, one
# task per scan of a hand-built frame, and expressions interpreted rather than compiled (compiling
# costs more than running on ten rows: the identity-number standard's first evaluation drops from
# ~7 s to under 1 s). factoryMode is an internal setting of Spark's own test suites; the
# spark/integration layers keep the defaults. Joins of hand-built frames are not broadcast (an
# explicit broadcast() hint still is): with adaptive execution off each broadcast is a Spark job of
# its own, run before the query's — the workflow state's six joins ran as 8 jobs in 0.85 s, with
# shuffled joins in one partition as 2 jobs in 0.33 s.
TINY_FRAMES = {"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false",
               "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
               "spark.sql.leafNodeDefaultParallelism": "1", "spark.sql.autoBroadcastJoinThreshold": "-1"}


@pytest.fixture
def tiny_spark(spark):
    """The session's SparkSession set for tiny in-memory frames for one test (the unit layer), then
    set back — per test, not per module: a module may hold spark-layer tests too, which must run with
    the session's own settings. No lake, no table, nothing on disk."""
    before = {k: spark.conf.get(k, None) for k in TINY_FRAMES}
    for k, v in TINY_FRAMES.items():
        spark.conf.set(k, v)
    yield spark
    for k, v in before.items():
        if v is None:
            spark.conf.unset(k)
        else:
            spark.conf.set(k, v)


@pytest.fixture(scope="session")
def memory_keyring() -> Keyring:
    """A keyring held in memory only (fixed keys; no key file anywhere): for the unit layer."""
    return Keyring("kunit", bytes(range(32)), bytes(range(100, 132)))


@pytest.fixture
def keyring(settings) -> Keyring:
    return Keyring.load(settings.key_dir)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """Airflow's metadata DB for the session, migrated once."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], env=dict(os.environ), check=True, capture_output=True)
    return _AIRFLOW_HOME


@pytest.fixture
def airflow_env(settings, airflow_db, monkeypatch) -> dict:
    """Point the tasks (which load Settings from the environment) at this test's lake and keys."""
    env = {**settings.env_vars(), "AIRFLOW_HOME": airflow_db}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


LIFECYCLE_START = date(2026, 11, 25)


def _build_lifecycle_lake(spark, spark_settings, root: Path) -> Settings:
    from feedsim import generate
    from jobs import clean, ingest, verify
    from shuzhi.schemas import catalog

    s = Settings.load(home=root / "home", key_dir=root / "keys", spark=spark_settings)
    kr = Keyring.create(s.key_dir)
    generate(s.landing, s.truth, residents=600, nights=2, start_date=LIFECYCLE_START, seed=11)
    for n in range(2):
        bd = (LIFECYCLE_START + timedelta(days=n)).isoformat()
        for src in catalog().sources:
            ingest.run(spark, s, src, bd, keyring=kr)
        clean.run(spark, s, bd, keyring=kr)
        verify.run(spark, s, bd, keyring=kr)
    return s


@pytest.fixture(scope="session")
def built(spark, spark_settings, tmp_path_factory):
    """One lake for the lifecycle tests (each works on a copy, see ``lake``; nobody changes this
    one): two nights of 600 residents, ingested, cleaned and cross-verified. Under pytest-xdist
    the workers share it: the first to ask builds it under a lock, the others wait and reuse it."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return _build_lifecycle_lake(spark, spark_settings, tmp_path_factory.mktemp("lifecycle"))
    import fcntl

    root = tmp_path_factory.getbasetemp().parent / "lifecycle-shared"     # the same for every worker
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".built").exists():
            shutil.rmtree(root / "home", ignore_errors=True)
            shutil.rmtree(root / "keys", ignore_errors=True)
            _build_lifecycle_lake(spark, spark_settings, root)
            (root / ".built").touch()
    return Settings.load(home=root / "home", key_dir=root / "keys", spark=spark_settings)


@pytest.fixture
def lake(built, tmp_path):
    """A private copy of the built lake (same keys) for one test."""
    s = replace(built, lake=tmp_path / "lake", home=tmp_path / "home")
    shutil.copytree(built.lake, s.lake)
    return s


def killed_midway(built: Settings, copy_to: Path, job: str, as_of: str, started, rng, *, most: float,
                  least: float = 0.0) -> tuple[Settings, bool]:
    """A copy of the built lake in ``copy_to`` on which ``python -m jobs.<job> --as-of`` ran until
    ``started(settings)`` became true, then a random ``least..most`` seconds more, then got SIGKILL
    (its whole process group: the Spark JVM too). Returns the copy and whether the kill landed
    (the job may have finished first)."""
    import signal
    import time

    s = replace(built, lake=copy_to / "lake", home=copy_to / "home")
    shutil.copytree(built.lake, s.lake)
    proc = subprocess.Popen([sys.executable, "-m", f"jobs.{job}", "--as-of", as_of], env={**os.environ, **s.env_vars()},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not started(s) and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(rng.uniform(least, most))
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return s, killed


def pytest_sessionfinish(session, exitstatus):
    """This process's Airflow home (metadata DB, task logs) goes when its tests passed; after a
    failure it stays for a look, and its path is printed. Each pytest-xdist worker has its own."""
    if exitstatus == 0:
        shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)
    elif Path(_AIRFLOW_HOME).is_dir():
        print(f"\nAirflow home of this test process kept for a look: {_AIRFLOW_HOME}", file=sys.stderr)


# The longest test files first: with `--dist loadfile` each worker takes whole files in collection
# order, and the end-to-end file collected last kept one worker busy ~20 min while the other idled.
LONGEST_FIRST = ("test_e2e_airflow.py", "test_correctness.py", "test_lifecycle.py", "test_destroy.py",
                 "test_contract.py")

# The test pyramid (setup.cfg declares the markers): every test is in exactly one layer.
LAYERS = ("unit", "spark", "integration", "crash")


def layers_of(item) -> list[str]:
    return [m for m in LAYERS if item.get_closest_marker(m) is not None]


@pytest.hookimpl(tryfirst=True)     # before `-m` deselects anything: a wrongly marked test fails every run
def pytest_collection_modifyitems(config, items):
    import doctest

    from _pytest.doctest import DoctestItem

    skipped = [item for item in items if isinstance(item, DoctestItem)
               and all(doctest.SKIP in ex.options for ex in item.dtest.examples)]
    if skipped:     # a docstring whose every example is `# doctest: +SKIP` (it needs a lake): nothing to run
        config.hook.pytest_deselected(items=skipped)
        items[:] = [item for item in items if item not in skipped]
    for item in items:
        if isinstance(item, DoctestItem) and not layers_of(item):
            item.add_marker(pytest.mark.unit)       # a docstring example is a unit test (`make unit` runs them)
    wrong = [item for item in items if len(layers_of(item)) != 1]
    for item in wrong:
        have = layers_of(item)
        why = f"has {len(have)} ({', '.join(have)})" if have else "has none"
        config.hook.pytest_collectreport(report=pytest.CollectReport(
            item.nodeid, "failed", f"{item.nodeid}: a test needs exactly one of the markers {', '.join(LAYERS)} "
            f"(module-level pytestmark or on the test; setup.cfg, tests/conftest.py); it {why}", []))
    if wrong:
        bad = {id(item) for item in wrong}
        items[:] = [item for item in items if id(item) not in bad]
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))    # stable: order within a file kept
