"""Tiering by measured access and the archive zone, simulated with --as-of on a generated lake.

Months of a silver table go cold with age unless people read them, and come back when read;
readers see one view over both tiers; moves survive a SIGKILL at any point. Archive batches
round-trip through restore exactly (row counts, every sha256), a tampered file is caught, and
destruction reaches into the archive zone and the restored copies."""
import os
import random
import shutil
import stat
from dataclasses import replace
from datetime import datetime, timedelta

import pyarrow.parquet as pq
import pytest
from conftest import LIFECYCLE_START as START
from conftest import killed_midway
from pyspark.sql import functions as F

from jobs import archive, destroy, tier
from shuzhi.access import ACCESS_LOG, COLD, Reader, log_access, read
from shuzhi.archive import ArchiveCorrupt, archive_root, read_manifest, sha256_file, verify_batch
from shuzhi.crypto import Keyring
from shuzhi.delta import read_table, table_exists, table_version
from shuzhi.retention import load_policy
from shuzhi.schemas import catalog
from shuzhi.stages.retention import month_of as month_column

T = "police_incidents"
OFFICE = Reader("li.wei", "governance_office")


def unified_ids(spark, s, table=T):
    df = read(spark, s, f"silver.{table}", reader=Reader.pipeline("test"))
    return sorted((r["record_id"], r["_content_hmac"]) for r in df.select("record_id", "_content_hmac").collect())


def month_of(df, layer, table, s, kr):
    """The lifecycle month of a silver entity table's rows (the policy of conf/, the test's keyring)."""
    e = catalog().entity_for_table(table)
    return month_column(layer, e, load_policy().classes[e.retention_class], kr)


def months(spark, s, kr, table=T):
    hot = read_table(spark, s.table_path("silver", table))
    return sorted({r[0] for r in hot.select(month_of(hot, "silver", table, s, kr)).collect() if r[0]})


@pytest.mark.integration
def test_months_go_cold_unless_read_and_come_back_when_read(spark, lake):
    kr = Keyring.load(lake.key_dir)
    pol = load_policy()
    before = unified_ids(spark, lake)
    all_months = months(spark, lake, kr)
    assert len(all_months) >= 3, all_months
    as_of = START + timedelta(days=pol.classes["incident"].cold_after + 60)
    at = datetime.combine(as_of - timedelta(days=5), datetime.min.time())
    # the office reads one month often: it stays hot though it is old enough to go cold
    kept = all_months[-1]
    for i in range(pol.tiering.keep_hot_reads):
        log_access(spark, lake, OFFICE, f"silver.{T}", partition=kept, at=at + timedelta(hours=i))
    res = tier.run(spark, lake, as_of.isoformat(), keyring=kr)
    assert res.demoted.get(T, 0) > 0, res
    cold = read_table(spark, lake.table_path(COLD, T))
    cold_months = sorted({r[0] for r in cold.select("_month").distinct().collect()})
    assert kept not in cold_months and cold_months == res.cold_months[T]
    assert set(cold_months) | {kept} <= set(all_months)
    assert unified_ids(spark, lake) == before                  # readers see every record, wherever it lives
    files = [p for p in lake.table_path(COLD, T).rglob("*.parquet")]
    assert files and {pq.ParquetFile(p).metadata.row_group(0).column(0).compression for p in files} == {"ZSTD"}
    # re-running the same as-of changes nothing
    v = (table_version(spark, lake.table_path("silver", T)), table_version(spark, lake.table_path(COLD, T)))
    assert tier.run(spark, lake, as_of.isoformat(), keyring=kr).status == "noop"
    assert v == (table_version(spark, lake.table_path("silver", T)), table_version(spark, lake.table_path(COLD, T)))

    # a cold month read often again comes back to hot; the read goes through the read interface
    back = cold_months[0]
    later = as_of + timedelta(days=10)
    df = read(spark, lake, f"silver.{T}", reader=OFFICE, months=[back])
    n_back = df.count()
    assert n_back > 0
    ev = read_table(spark, lake.table_path(*ACCESS_LOG)).filter(F.col("who") == "li.wei").collect()
    assert any(r["partition"] == back and r["role"] == "governance_office" for r in ev)
    for i in range(pol.tiering.promote_reads):
        log_access(spark, lake, OFFICE, f"silver.{T}", partition=back,
                   at=datetime.combine(later - timedelta(days=1), datetime.min.time()) + timedelta(hours=i))
    res2 = tier.run(spark, lake, later.isoformat(), keyring=kr)
    assert res2.promoted.get(T) == n_back
    assert back not in res2.cold_months[T]
    hot = read_table(spark, lake.table_path("silver", T))
    assert hot.filter(month_of(hot, "silver", T, lake, kr) == back).count() == n_back
    assert unified_ids(spark, lake) == before


@pytest.mark.integration
def test_archive_restore_round_trip_and_tamper(spark, lake):
    kr = Keyring.load(lake.key_dir)
    pol = load_policy()
    inc = read_table(spark, lake.table_path("silver", T))
    cols = ["record_id", "_content_hmac", "updated_at", "handling_status"]
    # taken now: a Delta DataFrame reads the table's latest version whenever it is evaluated
    inc_rows = sorted(map(tuple, inc.select(*cols).collect()))
    open_before = sum(1 for r in inc_rows if r[3] == "1")
    as_of = (START + timedelta(days=pol.classes["incident"].archive_after + 400)).isoformat()
    res = archive.run(spark, lake, as_of, keyring=kr)
    assert res.status == "archived" and res.archived.get(f"silver.{T}", 0) > 0, res
    m = verify_batch(lake, as_of, spark)
    taken = m["tables"][f"silver.{T}"]["rows"]
    assert res.removed[f"silver.{T}"] == taken
    left = read_table(spark, lake.table_path("silver", T))
    assert left.count() == len(inc_rows) - taken
    assert left.filter("handling_status = '1'").count() == open_before      # held: still live
    # every file read-only, every sha256 as the manifest says
    for table, t in m["tables"].items():
        for f in t["files"]:
            p = archive_root(lake) / as_of / table / f["file"]
            # the mode bits, not os.access: root may write a 0444 file, and the tests run as root
            assert stat.S_IMODE(os.stat(p).st_mode) & 0o222 == 0, f"{p} is writable: {oct(os.stat(p).st_mode)}"
            assert sha256_file(p) == f["sha256"]
    # re-running the archive changes nothing
    v = table_version(spark, lake.table_path("silver", T))
    again = archive.run(spark, lake, as_of, keyring=kr)
    assert again.removed == {} and table_version(spark, lake.table_path("silver", T)) == v
    # restore: exactly the rows that left
    out = archive.restore(spark, lake, as_of)
    assert out == {k: t["rows"] for k, t in m["tables"].items()}
    restored = read_table(spark, lake.table_path("restored", f"{as_of}__silver__{T}"))
    left_ids = {r[0] for r in left.select("record_id").collect()}
    gone = [r for r in inc_rows if r[0] not in left_ids]
    assert sorted(map(tuple, restored.select(*cols).collect())) == gone
    # a tampered file is caught and named
    f = m["tables"][f"silver.{T}"]["files"][0]["file"]
    p = archive_root(lake) / as_of / f"silver.{T}" / f
    os.chmod(p, 0o644)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ArchiveCorrupt, match=f):
        archive.restore(spark, lake, as_of)


@pytest.mark.integration
def test_destroy_reaches_cold_tier_archive_and_restored_copies(spark, lake):
    kr = Keyring.load(lake.key_dir)
    pol = load_policy()
    arch_day = (START + timedelta(days=pol.classes["incident"].archive_after + 400)).isoformat()
    tier.run(spark, lake, (START + timedelta(days=400)).isoformat(), keyring=kr)
    assert table_exists(spark, lake.table_path(COLD, "police_population")) or \
        table_exists(spark, lake.table_path(COLD, T))
    archive.run(spark, lake, arch_day, keyring=kr)
    archive.restore(spark, lake, arch_day)
    res = destroy.run(spark, lake, "2062-01-01", keyring=kr)
    assert res.findings == [] and res.status == "destroyed"
    assert any(k.startswith("archive/") for k in res.rows_deleted), res.rows_deleted
    assert any(k.startswith("restored.") for k in res.rows_deleted), res.rows_deleted
    verify_batch(lake, arch_day, spark)       # the rewritten batch matches its new manifest
    m = read_manifest(lake, arch_day)
    assert m["tables"][f"silver.{T}"].get("destroyed_rows", 0) > 0


@pytest.mark.crash
def test_tier_killed_midway_then_rerun_ends_like_uninterrupted(spark, built, tmp_path):
    kr = Keyring.load(built.key_dir)
    as_of = (START + timedelta(days=load_policy().classes["incident"].cold_after + 60)).isoformat()
    ref = replace(built, lake=tmp_path / "ref", home=tmp_path / "ref-home")
    shutil.copytree(built.lake, ref.lake)
    tier.run(spark, ref, as_of, keyring=kr)

    def state(s):
        out = {}
        for e in ("police_incidents", "police_population", "civil_affairs_assistance", "health_residents"):
            hot = sorted(r[0] for r in read_table(spark, s.table_path("silver", e)).select("record_id").collect())
            cp = s.table_path(COLD, e)
            cold = sorted(r[0] for r in read_table(spark, cp).select("record_id").collect()) \
                if table_exists(spark, cp) else []
            out[e] = (hot, cold)
        return out

    want = state(ref)
    rng = random.Random(7)
    kills = 0
    for trial in range(3):
        s, killed = killed_midway(built, tmp_path / f"trial-{trial}", "tier", as_of,
                                  lambda s: (s.lake / COLD).exists(), rng, most=8.0)
        kills += killed
        tier.run(spark, s, as_of, keyring=kr)           # the re-run completes the moves
        got = state(s)
        assert got == want, f"trial {trial}"
        # never lost in between: every record is in hot or cold
        assert all(set(h) | set(c) == set(want[e][0]) | set(want[e][1]) for e, (h, c) in got.items())
    assert kills >= 2
