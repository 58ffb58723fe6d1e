import os
from pathlib import Path

import pytest

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
