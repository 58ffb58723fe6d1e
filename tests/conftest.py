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

from shuzhi.config import Settings, SparkSettings
from shuzhi.crypto import Keyring


@pytest.fixture(scope="session")
def spark_settings() -> SparkSettings:
    return SparkSettings(master="local[2]", submit=False, shuffle_partitions=2, driver_memory="4g", ui=False)


@pytest.fixture
def settings(tmp_path, spark_settings) -> Settings:
    """A fresh lake, landing zone and keyring per test (keys outside the lake)."""
    s = Settings.load(home=tmp_path / "home", key_dir=tmp_path / "keys", spark=spark_settings)
    Keyring.create(s.key_dir)
    return s


@pytest.fixture(scope="session")
def spark(spark_settings, tmp_path_factory):
    from shuzhi.spark import get_spark

    s = Settings.load(home=tmp_path_factory.mktemp("sess"), spark=spark_settings)
    session = get_spark(s, "shuzhi-tests")
    yield session
    session.stop()


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


@pytest.fixture(scope="session")
def built(spark, spark_settings, tmp_path_factory):
    """One lake for the lifecycle tests (each works on a copy, see ``lake``): two nights of 600
    residents, ingested, cleaned and cross-verified."""
    from jobs import clean, ingest, verify
    from shuzhi.generator import generate
    from shuzhi.schemas import catalog

    root = tmp_path_factory.mktemp("lifecycle")
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


@pytest.fixture
def lake(built, tmp_path):
    """A private copy of the built lake (same keys) for one test."""
    s = replace(built, lake=tmp_path / "lake", home=tmp_path / "home")
    shutil.copytree(built.lake, s.lake)
    return s
