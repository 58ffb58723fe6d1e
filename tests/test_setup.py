"""Set-up facts a fresh machine depends on: clear errors for missing jars/keys, keys outside git
and the lake, schemas/ consistent."""
import os
import stat
import subprocess

import pytest

from shuzhi.config import REPO_ROOT, Settings
from shuzhi.crypto import Keyring
from shuzhi.errors import SetupError
from shuzhi.schemas import catalog
from shuzhi.spark import delta_jars

pytestmark = pytest.mark.unit


def test_missing_jar_names_the_setup_command(tmp_path):
    s = Settings.load(home=tmp_path, jars_dir=tmp_path / "no-jars")
    with pytest.raises(SetupError, match="make setup"):
        delta_jars(s)


def test_missing_keyring_names_the_setup_command(tmp_path):
    with pytest.raises(SetupError, match="make setup"):
        Keyring.load(tmp_path / "nokeys")


def test_keyring_created_once_private_and_outside_lake_and_git(tmp_path):
    s = Settings.load(home=tmp_path / "home", key_dir=tmp_path / "keys")
    k1 = Keyring.create(s.key_dir)
    k2 = Keyring.create(s.key_dir)                 # idempotent: never replaced
    assert (k1.key_id, k1.aes_key) == (k2.key_id, k2.aes_key) and len(k1.aes_key) == 32
    mode = stat.S_IMODE(os.stat(s.key_dir / "keyring.json").st_mode)
    assert mode == 0o600
    assert s.lake not in s.key_dir.parents and "aes" not in repr(k1)
    default = Settings.load()
    assert REPO_ROOT not in default.key_dir.parents and default.lake not in default.key_dir.parents
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert "keyring" not in tracked


def test_every_spec_field_maps_to_an_element():
    cat = catalog()
    assert {s: sorted(e) for s, e in cat.sources.items()} == {
        "police": ["houses", "incidents", "population"], "civil_affairs": ["assistance"],
        "social_security": ["insurance"], "health": ["residents"]}
    assert len(cat.entity("police", "population").fields) == 17
    ids = {f.name for e in cat.entities() for f in e.fields if f.element.name == "citizen_id"}
    assert ids == {"GMSFHM", "FZGMSFHM", "id_number", "sfzh", "id_no"}
    for e in cat.entities():
        for f in e.fields:
            assert f.sensitivity in ("L1", "L2", "L3", "L4") and f.element.pii and f.element.retention
    assert cat.code_list("ethnicity").codes["02"] == "蒙古族"   # GB/T 3304 (SPEC's "05 Mongol" is a slip)


def test_generator_draws_codes_from_schemas_and_plants_only_unknown_ones():
    from feedsim import reference as ref

    cat = catalog()
    # the generator's codes are the schemas' (it defines them so), and those are the standards' codes,
    # written out here by hand: GB/T 2261.1 sex codes, the SPEC's incident categories
    assert ref.SEX_CODES == tuple(cat.code_list("sex").codes) == ("0", "1", "2", "9")
    assert ref.INCIDENT_CATEGORIES == tuple(cat.code_list("incident_category").codes) == (
        "01", "02", "03", "04", "05", "06", "99")
    assert set(ref.ETHNICITY_WEIGHTS) <= set(cat.code_list("ethnicity").codes)
    # every field it plants unknown codes in has a code list (none skipped below), and no planted code is in it
    assert set(ref.UNKNOWN_CODES) <= set(cat.code_lists), set(ref.UNKNOWN_CODES) - set(cat.code_lists)
    for name, planted in ref.UNKNOWN_CODES.items():
        assert not set(planted) & set(cat.code_list(name).codes), name


def test_the_driver_jvm_maps_the_class_archive_setup_dumped(spark, spark_settings):
    """``shuzhi setup`` dumps the class archive (``shuzhi.classarchive``) and every driver JVM maps
    it: read from the JVM's own memory map, so an archive the JVM refused would not count."""
    from shuzhi.spark import class_archive

    archive = class_archive(Settings.load(spark=spark_settings))
    assert archive.is_file(), f"no class archive at {archive}: run `make setup`"
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/maps", encoding="utf-8") as fh:
        mapped = {line.split()[-1] for line in fh if line.rstrip().endswith(".jsa")}
    assert str(archive) in mapped


def test_setup_skips_the_airflow_migration_only_while_the_migrated_db_is_unchanged(tmp_path, monkeypatch):
    """``shuzhi setup`` skips ``airflow db migrate`` when its stamp equals what the DB holds now: the
    same Airflow version and migration revision of the SQLite DB under AIRFLOW_HOME."""
    import importlib.metadata
    import sqlite3

    from shuzhi.cli import _migrated_as

    monkeypatch.delenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", raising=False)
    s = Settings.load(home=tmp_path)
    s.airflow_home.mkdir(parents=True)
    assert _migrated_as(s) == ""                                  # no DB yet: migrate
    db = s.airflow_home / "airflow.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE alembic_version (version_num TEXT)")
    assert _migrated_as(s) == ""                                  # no revision: migrate
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO alembic_version VALUES ('d2f4e1b3c5a7')")
    version = importlib.metadata.version("apache-airflow")
    assert _migrated_as(s) == f"apache-airflow {version} revision d2f4e1b3c5a7\n"
    with sqlite3.connect(db) as con:                              # another revision: not the stamp's
        con.execute("UPDATE alembic_version SET version_num = 'aaaaaaaaaaaa'")
    assert _migrated_as(s) == f"apache-airflow {version} revision aaaaaaaaaaaa\n"
    (s.airflow_home / "airflow.cfg").write_text("[database]\nsql_alchemy_conn = postgresql://x/airflow\n")
    assert _migrated_as(s) == ""                                  # another database: always migrate
    (s.airflow_home / "airflow.cfg").write_text(f"[database]\nsql_alchemy_conn = sqlite:///{db}\n")
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite:////elsewhere/airflow.db")
    assert _migrated_as(s) == ""
