"""``shuzhi`` command line: set-up, the demo (main job), single stages, reports.

    shuzhi setup                       # keys + Airflow metadata DB (called by scripts/setup.sh)
    shuzhi demo                        # run the DAGs through Airflow for every night in landing, summarise
    shuzhi night 2026-11-27 [--through 2026-11-30]   # whole nights without Airflow, in one process
    shuzhi ingest police 2026-11-27    # one stage for one batch, without Airflow
    shuzhi gate bronze.police_population 2026-11-27
    shuzhi clean 2026-11-27            # clean stage (bronze → silver) without Airflow
    shuzhi verify 2026-11-27           # cross-verify (silver → gold: conflicts register, theme tables)
    shuzhi destroy --as-of 2056-12-01  # retention: destroy what is past its age, byte-scan the lake, certify
    shuzhi summary                     # per night and source: delivered / loaded / quarantined / gates
    shuzhi export conflicts --out c.csv [--night D] [--status open] [--rule X_DECEASED_PAID]
    shuzhi export quarantine --out q.csv [--night D] [--source police] [--rule ID_CHECK]   # + q_summary.csv
    shuzhi rules [--night D] [--csv rules.csv]  # rule catalogue with hit counts
    shuzhi airflow -- dags list        # the airflow CLI with this project's environment

Deliveries to try it on, and their ground truth, come from the department simulator, a package of
its own that this one never imports: ``feedsim generate``, ``feedsim score``, ``feedsim demo``.
"""
from __future__ import annotations

import argparse
import configparser
import importlib.metadata
import logging
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable

from . import classarchive, commands
from .commands import check_usage, fail
from .config import Settings, load_yaml
from .crypto import Keyring
from .errors import ShuzhiError, UsageError


def apply_env(settings: Settings) -> None:
    for k, v in settings.env_vars().items():
        os.environ.setdefault(k, v)


def check_env(env: str | None) -> None:
    """An environment named by ``--env`` or ``$SHUZHI_ENV`` must be one of conf/environments.yaml."""
    envs = load_yaml("environments.yaml")["environments"]
    env = env or os.environ.get("SHUZHI_ENV")
    if env and env not in envs:
        raise UsageError(f"environment {env!r} is not one of {', '.join(envs)} (conf/environments.yaml)")


MIGRATED_STAMP = ".shuzhi-db-migrated"


def _migrated_as(settings: Settings) -> str:
    """What ``airflow db migrate`` left, as a line to compare: the Airflow version and the
    migration revision of the SQLite DB under ``AIRFLOW_HOME``. ``""`` (never equal to a stamp)
    when that cannot be read cheaply: another database configured, no DB file, no revision.
    ``airflow db migrate`` takes ~9 s even with nothing to do; a stamp equal to this line lets
    ``shuzhi setup`` (every ``make`` target) skip it."""
    db = settings.airflow_db
    default = f"sqlite:///{db}"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(settings.airflow_home / "airflow.cfg")
    conn = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or cfg.get("database", "sql_alchemy_conn",
                                                                          fallback=default)
    if conn != default or not db.is_file():
        return ""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            revs = sorted(r[0] for r in con.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.Error:
        return ""
    return f"apache-airflow {importlib.metadata.version('apache-airflow')} revision {','.join(revs)}\n" if revs else ""


def cmd_setup(settings: Settings, args) -> int:
    kr = Keyring.create(settings.key_dir)
    print(f"keyring {kr.key_id} at {settings.key_dir} (outside the lake and outside git)")
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    stamp = settings.airflow_home / MIGRATED_STAMP
    if stamp.is_file() and stamp.read_text() == _migrated_as(settings):
        print(f"Airflow metadata DB up to date in {settings.airflow_home}")
    else:
        env = {**os.environ, **settings.env_vars()}
        airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
        proc = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        stamp.write_text(_migrated_as(settings))
        print(f"Airflow metadata DB ready in {settings.airflow_home}")
    print(classarchive.ensure_line(settings))
    return 0


def cmd_airflow(settings: Settings, args) -> int:
    """``shuzhi airflow -- dags list``: the ``--`` only ends shuzhi's own options (``shuzhi airflow
    dags list`` works too); airflow gets what follows it."""
    env = {**os.environ, **settings.env_vars()}
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return subprocess.call([airflow, *rest], env=env)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shuzhi", description="数治 shuzhi — data-governance lakehouse")
    p.add_argument("--env", help="environment in conf/environments.yaml (default: SHUZHI_ENV or local)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("setup", help="create keys and Airflow's metadata DB (idempotent)").set_defaults(fn=cmd_setup)
    a = sub.add_parser("airflow", help="run the airflow CLI with this project's environment")
    a.add_argument("rest", nargs=argparse.REMAINDER)
    a.set_defaults(fn=cmd_airflow)
    commands.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, check every argument (and the lake a reading command needs) before anything starts
    Spark — a bad one is one ``error:`` line and exit code 2 — then run the command."""
    return run_cli(build_parser(), check_usage, argv)


def run_cli(parser: argparse.ArgumentParser, check: Callable[[Settings, argparse.Namespace], None],
            argv: list[str] | None) -> int:
    """The life of a command line, for ``shuzhi`` and for tools built on it (``feedsim``): parse,
    ``check`` the arguments against the settings (a ``ShuzhiError`` is one ``error:`` line, exit
    code 2), export the settings to the environment, run the command."""
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        check_env(args.env)
        settings = Settings.load(env=args.env)
        check(settings, args)
    except ShuzhiError as exc:
        return fail(exc)
    apply_env(settings)
    return int(args.fn(settings, args) or 0)


if __name__ == "__main__":
    sys.exit(main())
