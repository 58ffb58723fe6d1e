"""Configuration, loaded once at the edge into typed objects.

Example::

    >>> from shuzhi.config import Settings
    >>> s = Settings.load(home="/tmp/shuzhi-doc")
    >>> s.table_path("bronze", "police_population").name
    'police_population'

Nothing below a job's entry point reads the environment: the jobs get a ``Settings``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = Path(os.environ.get("SHUZHI_CONF", REPO_ROOT / "conf"))
SCHEMAS_DIR = REPO_ROOT / "schemas"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"
JOBS_DIR = REPO_ROOT / "jobs"
DAGS_DIR = REPO_ROOT / "dags"
DELTA_VERSION = "4.0.1"
DELTA_JARS = (f"delta-spark_2.13-{DELTA_VERSION}.jar", f"delta-storage-{DELTA_VERSION}.jar")


# PyYAML's libyaml-backed safe loader (same YAML, same safe types; the wheels ship libyaml): about
# ten times faster than the pure-Python one, which spent 0.7 s on schemas/tables.yaml alone.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """One YAML file, parsed with the safe loader."""
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


@lru_cache(maxsize=None)
def load_yaml(name: str, folder: Path = CONF_DIR) -> dict[str, Any]:
    """Read one YAML file of ``conf/`` (or another folder), cached for the process."""
    return read_yaml(folder / name)


@dataclass(frozen=True)
class SparkSettings:
    master: str = "local[*]"
    submit: bool = False
    shuffle_partitions: int = 4
    driver_memory: str = "8g"
    ui: bool = False
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Settings:
    """Where everything lives, for one environment."""

    env: str
    home: Path
    lake: Path
    landing: Path
    truth: Path
    airflow_home: Path
    jars_dir: Path
    key_dir: Path
    spark: SparkSettings = field(default_factory=SparkSettings)

    @classmethod
    def load(cls, env: str | None = None, home: str | Path | None = None, **overrides: Any) -> "Settings":
        """Build settings from ``conf/environments.yaml`` and the SHUZHI_* environment variables."""
        conf = load_yaml("environments.yaml")
        env = env or os.environ.get("SHUZHI_ENV") or conf["default"]
        envconf = conf["environments"][env]
        home_path = Path(home or os.environ.get("SHUZHI_HOME") or REPO_ROOT / "var").expanduser().resolve()

        def under_home(p: str) -> Path:
            path = Path(p).expanduser()
            return path if path.is_absolute() else home_path / path

        paths = envconf["paths"]
        sec = load_yaml("security.yaml")
        settings = cls(
            env=env,
            home=home_path,
            lake=Path(os.environ["SHUZHI_LAKE"]) if os.environ.get("SHUZHI_LAKE")
            else under_home(paths["lake"]),
            landing=under_home(paths["landing"]),
            truth=under_home(paths["truth"]),
            airflow_home=under_home(paths["airflow_home"]),
            jars_dir=Path(os.environ.get("SHUZHI_JARS", "~/.cache/shuzhi/jars")).expanduser(),
            key_dir=Path(os.environ.get(sec["key_dir_env"], sec["key_dir_default"])).expanduser(),
            spark=SparkSettings(**envconf["spark"]),
        )
        return replace(settings, **overrides) if overrides else settings

    def table_path(self, layer: str, name: str) -> Path:
        """Location of a Delta table: ``<lake>/<layer>/<name>``."""
        return self.lake / layer / name

    def lake_exists(self) -> bool:
        """Whether the lake holds at least one Delta table (an empty or missing folder is no lake).
        Reading commands check this first: a read never creates a lake."""
        return self.lake.is_dir() and any(p.is_dir() for p in self.lake.glob("*/*/_delta_log"))

    @property
    def reports_dir(self) -> Path:
        return self.lake / "reports"

    @property
    def airflow_db(self) -> Path:
        """The embedded default's Airflow metadata DB (SQLite, Airflow's default file under AIRFLOW_HOME)."""
        return self.airflow_home / "airflow.db"

    def env_vars(self) -> dict[str, str]:
        """Environment that makes a child process (Airflow, spark-submit) see these settings."""
        return {
            "SHUZHI_LAKE": str(self.lake),
            "SHUZHI_ENV": self.env,
            "SHUZHI_HOME": str(self.home),
            "SHUZHI_JARS": str(self.jars_dir),
            "SHUZHI_KEY_DIR": str(self.key_dir),
            "AIRFLOW_HOME": str(self.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DEFAULT_TIMEZONE": load_yaml("sources.yaml")["timezone"],
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        }
