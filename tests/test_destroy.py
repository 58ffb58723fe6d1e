"""Destruction under the retention policy (conf/retention.yaml), simulated years ahead with --as-of.

A small generated lake (two nights through ingest → clean → cross-verify) is destroyed as of dates
decades away. The byte scan of the whole lake root is the assertion that the destroyed persons are
gone; the tests also check it can fail (it finds the same persons before destruction), that holds
are respected, that the certificate is complete and holds no join token, that re-running changes
nothing, and that a destroy job killed mid-way and re-run ends like an uninterrupted one."""
import random
import shutil
from dataclasses import replace
from datetime import timedelta

import pytest
from conftest import LIFECYCLE_START as START
from conftest import killed_midway
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F

from jobs import destroy
from shuzhi.crypto import Keyring, decrypt
from shuzhi.delta import read_table, table_version
from shuzhi.retention import lake_tables, load_policy
from shuzhi.scan import scan_destroyed
from shuzhi.schemas import catalog
from shuzhi.stages.retention import tokens_of

FAR = "2062-01-01"      # past every class's destruction age for anything with a clock


RUN_LOGS = {("ops", "job_runs"), ("ops", "access_log")}    # a re-run records itself there, by design


def versions(spark, s):
    """Delta version of every table but the two that log runs and reads."""
    return {f"{layer}.{n}": table_version(spark, s.table_path(layer, n)) for layer, n in lake_tables(s.lake)
            if (layer, n) not in RUN_LOGS}


def people(spark, s, kr):
    """Police population: token → (plaintext id, name, deregistration date)."""
    pop = read_table(spark, s.table_path("silver", "police_population"))
    return {r["t"]: (r["i"], r["n"], r["d"]) for r in pop.select(
        F.col("citizen_id__tok").alias("t"), decrypt(F.col("citizen_id"), kr).alias("i"),
        decrypt(F.col("name"), kr).alias("n"), F.col("deregistration_date").alias("d")).collect() if r["t"]}


def all_tokens(spark, s):
    """Every person token any surviving row of the lake names."""
    out = set()
    for layer, name in lake_tables(s.lake):
        df = read_table(spark, s.table_path(layer, name))
        for c, t in df.dtypes:
            if c.endswith("__tok") or c in ("person_token", "owner_token", "person_tokens"):
                col = F.explode_outer(c) if t.startswith("array") else F.col(c)
                out |= {r[0] for r in df.select(col).collect() if r[0]}
    return out


def held_rows(spark, s, tokens):
    """Per silver table, the rows that name any of these persons."""
    arr = F.array(*[F.lit(t) for t in sorted(tokens)])
    out = {}
    for e in catalog().entities():
        df = read_table(spark, s.table_path("silver", e.table_name))
        out[e.table_name] = df.filter(F.arrays_overlap(tokens_of(df), arr)).count()
    return out


@pytest.mark.integration
def test_destroy_far_future_leaves_no_byte_of_the_destroyed(spark, lake):
    kr = Keyring.load(lake.key_dir)
    before = people(spark, lake, kr)
    # the negative control: before destruction the scan does find these persons' tokens
    deregistered = {t: v for t, v in before.items() if v[2] is not None}
    assert deregistered, "the generator planted no deregistered persons"
    probe, _ = scan_destroyed(lake.lake, ids=set(), names=set(), strings=set(deregistered), blobs=set())
    assert any(f.kind == "token" for f in probe)

    open_persons = {r[0] for r in read_table(spark, lake.table_path("gold", "conflicts"))
                    .filter("status = 'open' AND person_token IS NOT NULL").select("person_token").collect()}
    open_incidents = {r[0] for r in read_table(spark, lake.table_path("silver", "police_incidents"))
                      .filter("handling_status = '1'").select("record_id").collect()}
    assert open_persons and open_incidents

    held_before = held_rows(spark, lake, open_persons)
    res = destroy.run(spark, lake, FAR, keyring=kr)
    assert res.status == "destroyed" and res.persons > 0 and sum(res.records.values()) > 0, res
    assert res.findings == [] and res.files_scanned > 100

    # who is gone: persons whose token no surviving row names
    surviving = all_tokens(spark, lake)
    gone = {t: v for t, v in before.items() if t not in surviving}
    assert gone and all(v[2] is not None for v in gone.values()), "only deregistered persons may be fully gone"
    # holds: every open-conflict person still has all the records they had; open incidents remain
    assert held_rows(spark, lake, open_persons) == held_before
    incidents = read_table(spark, lake.table_path("silver", "police_incidents"))
    left = {r[0] for r in incidents.select("record_id").collect()}
    assert open_incidents <= left
    # the independent scan (ids, names and tokens the test took before destroying) finds nothing
    findings, files = scan_destroyed(lake.lake, ids={v[0] for v in gone.values()},
                                     names={v[1] for v in gone.values()}, strings=set(gone), blobs=set())
    assert findings == [], findings[:5]
    # nothing past its destruction age is left that no hold covers: a second run has nothing to do
    v1 = versions(spark, lake)
    again = destroy.run(spark, lake, FAR, keyring=kr)
    assert again.status == "noop" and versions(spark, lake) == v1
    # no old version to travel back to: the first version of silver with data (1; 0 creates it) is gone
    pop = lake.table_path("silver", "police_population")
    # the log still names version 1's files, VACUUM removed them: reading them fails (Spark's
    # SparkException, which PySpark does not convert: it arrives as py4j's Py4JJavaError)
    with pytest.raises(Py4JJavaError, match=r"FAILED_READ_FILE\.FILE_NOT_EXIST"):
        # (collect, not count: Delta answers a count from the log's statistics without the files)
        spark.read.format("delta").option("versionAsOf", 1).load(str(pop)).select("record_id").collect()

    cert = read_table(spark, lake.table_path(*destroy.CERTIFICATES))
    rows = {r["phase"]: r for r in cert.filter(F.col("certificate_id") == res.certificate_id).collect()}
    assert set(rows) == {"started", "completed"}
    assert rows["completed"]["verification"].startswith("passed: 0 findings")
    assert {t["state"] for t in rows["completed"]["tables"]} == {"physically erased"}
    assert len(rows["started"]["record_digests"]) == rows["started"]["records"] == sum(res.records.values())
    assert not set(rows["started"]["record_digests"]) & set(before), "a certificate digest is a join token"
    assert not set(rows["started"]["person_digests"]) & set(before)


@pytest.mark.integration
def test_destroy_as_of_years_ahead_is_gradual(spark, lake):
    """Incidents (10 years from the report) and quarantined rows (3 years) go first; persons stay."""
    kr = Keyring.load(lake.key_dir)
    pol = load_policy()
    before = people(spark, lake, kr)
    inc = read_table(spark, lake.table_path("silver", "police_incidents"))
    closed = inc.filter("handling_status <> '1'").count()
    open_before = inc.filter("handling_status = '1'").count()     # counted now: inc reads the latest version
    as_of = (START + timedelta(days=pol.classes["incident"].destroy_after + 400)).isoformat()
    res = destroy.run(spark, lake, as_of, keyring=kr)
    assert 0 < res.records.get("police_incidents", 0) <= closed
    assert res.rows_deleted.get("silver.quarantine", 0) > 0 and res.rows_deleted.get("bronze.quarantine", 0) > 0
    assert "silver.police_population" not in res.rows_deleted    # nobody deregistered long enough ago
    assert set(before) == set(people(spark, lake, kr))
    assert read_table(spark, lake.table_path("silver", "police_incidents")).filter("handling_status = '1'").count() \
        == open_before
    # a year earlier nothing at all was due
    assert destroy.run(spark, lake, START.isoformat(), keyring=kr).status == "noop"


def lake_state(spark, s):
    out = {}
    for layer, name in lake_tables(s.lake):
        if (layer, name) in RUN_LOGS | {destroy.CERTIFICATES}:
            continue
        df = read_table(spark, s.table_path(layer, name))
        cols = sorted(c for c, t in df.dtypes if t != "binary" and c not in ("_run_id", "_loaded_at", "recorded_at",
                                                                            "evaluated_at", "gate_run_id"))
        out[f"{layer}.{name}"] = df.count(), sorted(map(repr, df.select(*cols).collect()))
    logs = {f"{layer}/{name}" for layer, name in RUN_LOGS | {destroy.CERTIFICATES}}   # a killed run logged too
    files = sorted(str(p.relative_to(s.lake)) for p in s.lake.rglob("*.parquet")
                   if "_delta_log" not in p.parts and str(p.relative_to(s.lake).parent) not in logs)
    return out, len(files)


@pytest.mark.crash
def test_destroy_killed_midway_then_rerun_ends_like_uninterrupted(spark, built, tmp_path):
    kr = Keyring.load(built.key_dir)
    ref = replace(built, lake=tmp_path / "ref", home=tmp_path / "ref-home")
    shutil.copytree(built.lake, ref.lake)
    destroy.run(spark, ref, FAR, keyring=kr)
    want, want_files = lake_state(spark, ref)
    rng = random.Random(20261128)
    kills = 0
    # killed after the certificate's started row (the deletes begin), at a random point of each
    # window: among the deletes, later among the deletes or the purge, in the purge or the scan
    for trial, (least, most) in enumerate([(0, 10), (10, 40), (40, 100)]):
        s, killed = killed_midway(built, tmp_path / f"trial-{trial}", "destroy", FAR,
                                  lambda s: (s.lake / "ops" / "destruction_certificates").exists(), rng,
                                  least=least, most=most)
        kills += killed
        res = destroy.run(spark, s, FAR, keyring=kr)     # the re-run completes it
        assert res.status in ("destroyed", "noop") and res.findings == []
        got, got_files = lake_state(spark, s)
        assert got == want and got_files == want_files, f"trial {trial}"
        phases = {r[0] for r in read_table(spark, s.table_path(*destroy.CERTIFICATES)).select("phase").collect()}
        assert "completed" in phases
        assert not (s.home / "destruction").exists() or not any((s.home / "destruction").iterdir())
    assert kills >= 2
