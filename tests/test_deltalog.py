"""``shuzhi.deltalog`` reads the latest version and transaction versions from a table's log files;
Delta's own snapshot is the reference, on a real table written past two checkpoints."""
import pytest
from pyspark.errors import AnalysisException, UnsupportedOperationException

from shuzhi import deltalog
from shuzhi.delta import DeltaTable, _append_with_txn, committed_txn_version, delete_matching, write_table
from shuzhi.publish import _unpublished_commits, commit_tag


def _delta_txn(spark, path, app_id):
    """Delta's own answer (the snapshot's SetTransactions), not through shuzhi.delta."""
    jvm = spark.sparkContext._jvm
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(path))
    opt = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).transactions().get(app_id)
    return None if opt.isEmpty() else int(opt.get())


@pytest.mark.spark
def test_log_reader_agrees_with_delta_past_checkpoints(spark, tmp_path):
    path = tmp_path / "t"
    assert deltalog.latest_version(path) is None and deltalog.txn_version(path, "a") is None
    df = spark.createDataFrame([(1, "x")], "id int, v string")
    apps = ["a", "b", "c"]
    seen, stamps = [], []
    assert deltalog.latest_commit_stamp(path) is None
    for n in range(23):                                   # checkpoints at versions 10 and 20 (interval 10)
        app = apps[n % 3]
        r = write_table(df, path, mode="append", txn=(app, n))
        assert not r.skipped
        seen.append(r.version)
        want_latest = DeltaTable.forPath(spark, str(path)).history(1).collect()[0]["version"]
        assert deltalog.latest_version(path) == want_latest == r.version
        stamps.append(deltalog.latest_commit_stamp(path))
        assert stamps[-1][0] == r.version and stamps[-1] not in stamps[:-1]
        if n in (0, 9, 10, 11, 20, 22):
            for a in [*apps, "never"]:
                assert deltalog.txn_version(path, a) == _delta_txn(spark, path, a), (n, a)
    assert (path / "_delta_log" / f"{20:020d}.checkpoint.parquet").is_file()
    assert deltalog.txn_version(path, "a") == 21 and deltalog.txn_version(path, "c") == 20
    # a re-run of a committed transaction is skipped, and adds no version
    assert write_table(df, path, mode="append", txn=("b", 22)).skipped
    assert deltalog.latest_version(path) == seen[-1] and deltalog.latest_commit_stamp(path) == stamps[-1]
    assert committed_txn_version(spark, path, "a") == 21
    # a log this reader cannot replay (the checkpoint it names is gone): UNKNOWN, so the writer asks Delta
    checkpoint = path / "_delta_log" / f"{20:020d}.checkpoint.parquet"
    checkpoint.rename(tmp_path / "moved.parquet")
    assert deltalog.txn_version(path, "a") is deltalog.UNKNOWN
    (tmp_path / "moved.parquet").rename(checkpoint)
    # a delete's row count is read from its commit file: what Delta's history says of that commit
    assert delete_matching(spark, path, spark.createDataFrame([(1,)], "id int"), ["id"]) == 23
    last = DeltaTable.forPath(spark, str(path)).history(1).collect()[0]
    assert deltalog.operation_metrics(path, last["version"]) == last["operationMetrics"]
    assert last["operationMetrics"]["numTargetRowsDeleted"] == "23"
    assert deltalog.operation_metrics(path, last["version"] + 1) is deltalog.UNKNOWN
    # the commits after a version with their tags, newest first: what Delta's history lists
    with commit_tag(spark, "shuzhi:retention:test"):
        write_table(df, path, mode="append")
    hist = DeltaTable.forPath(spark, str(path)).history().filter("version > 20").select("version", "userMetadata")
    assert _unpublished_commits(spark, path, 20) == [(int(v), m) for v, m in hist.collect()]
    assert _unpublished_commits(spark, path, 20)[0][1] == "shuzhi:retention:test"


@pytest.mark.unit
def test_unknown_logs(tmp_path):
    log = tmp_path / "t" / "_delta_log"
    log.mkdir(parents=True)
    assert deltalog.latest_version(tmp_path / "t") is deltalog.UNKNOWN      # debris: a log with no commit
    (log / f"{5:020d}.json").write_text('{"txn":{"appId":"a","version":3}}\n', encoding="utf-8")
    assert deltalog.txn_version(tmp_path / "t", "a") is deltalog.UNKNOWN    # no checkpoint, no commit 0
    (log / "_last_checkpoint").write_text('{"version": 4, "v2Checkpoint": {}}', encoding="utf-8")
    assert deltalog.txn_version(tmp_path / "t", "a") is deltalog.UNKNOWN    # a v2 checkpoint
    (log / f"{0:020d}.json").write_text('{"txn":{"appId":"a","version":1}}\n', encoding="utf-8")
    (log / "_last_checkpoint").unlink()
    assert deltalog.txn_version(tmp_path / "t", "a") is deltalog.UNKNOWN    # a gap: commits 1–4 missing
    for v in range(1, 5):
        (log / f"{v:020d}.json").write_text('{"commitInfo":{"txn":"not an action"}}\n', encoding="utf-8")
    assert deltalog.txn_version(tmp_path / "t", "a") == 3 and deltalog.txn_version(tmp_path / "t", "b") is None
    assert deltalog.latest_version(tmp_path / "t") == 5


@pytest.mark.spark
def test_active_files_are_what_a_partition_read_scans(spark, tmp_path):
    """``deltalog.active_files`` (what a gate's fingerprint is made of) against Spark's
    ``inputFiles`` of the same read: per partition and whole, past a checkpoint, after a delete."""
    from datetime import date

    from pyspark.sql import functions as F

    from shuzhi.gates import data_fingerprint, relative_files

    path = tmp_path / "p"
    days = [date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)]
    for n in range(12):                                   # a checkpoint at version 10
        df = spark.createDataFrame([(n, days[n % 3])], "id int, _batch_date date")
        write_table(df, path, mode="append", partition_by=["_batch_date"])
    delete_matching(spark, path, spark.createDataFrame([(0,), (4,)], "id int"), ["id"])
    assert (path / "_delta_log" / f"{10:020d}.checkpoint.parquet").is_file()

    def spark_files(d=None):
        df = spark.read.format("delta").load(str(path))
        if d is not None:
            df = df.filter(F.col("_batch_date") == F.lit(d))
        return sorted(relative_files(df.inputFiles(), path)), df

    whole, df = spark_files()
    assert sorted(relative_files(deltalog.active_files(path), path)) == whole and len(whole) >= 10
    assert data_fingerprint(df, path, {}) == data_fingerprint(df, path)
    for d in days:
        want, df = spark_files(d)
        got = deltalog.active_files(path, {"_batch_date": d.isoformat()})
        assert sorted(relative_files(got, path)) == want and want, d
        assert data_fingerprint(df, path, {"_batch_date": d.isoformat()}) == data_fingerprint(df, path)
    assert deltalog.active_files(path, {"_batch_date": "2026-11-28"}) == []
    assert deltalog.active_files(tmp_path / "none") is deltalog.UNKNOWN


@pytest.mark.spark
def test_an_append_with_a_txn_id_is_one_commit_as_save_makes_it(spark, tmp_path):
    """``write_table(..., txn=…)`` appends through Delta's transaction API (not ``save``): the
    commit it makes is what ``save`` with txnAppId/txnVersion makes of the same frame."""
    from datetime import date

    df = spark.createDataFrame([(1, "x", date(2026, 11, 25)), (2, None, date(2026, 11, 26))],
                               "id int, v string, _batch_date date")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    write_table(df.limit(0), theirs, partition_by=["_batch_date"], append_only=True)
    with commit_tag(spark, "shuzhi:test"):
        r = write_table(df, ours, partition_by=["_batch_date"], txn=("ingest", 7), append_only=True)
        df.write.format("delta").mode("append").option("txnAppId", "ingest").option("txnVersion", 7).save(str(theirs))
    assert not r.skipped and r.version == 1
    assert sorted(spark.read.format("delta").load(str(ours)).collect()) == sorted(df.collect())
    assert sorted(p.name for p in ours.iterdir() if p.name != "_delta_log") == ["_batch_date=2026-11-25",
                                                                               "_batch_date=2026-11-26"]
    assert _delta_txn(spark, ours, "ingest") == deltalog.txn_version(ours, "ingest") == 7
    got, want = deltalog.commit_info(ours, 1), deltalog.commit_info(theirs, 1)
    for k in ("operation", "operationParameters", "isBlindAppend", "userMetadata"):
        assert got.get(k) == want.get(k), k
    assert got["operation"] == "WRITE" and got["userMetadata"] == "shuzhi:test" and got["isBlindAppend"] is True
    assert got["operationMetrics"]["numOutputRows"] == want["operationMetrics"]["numOutputRows"] == "2"
    assert set(got["operationMetrics"]) == set(want["operationMetrics"])
    # a re-run of the same id is skipped, and adds no version
    assert write_table(df, ours, txn=("ingest", 7)).skipped and deltalog.latest_version(ours) == 1
    # the low-level path takes only a frame with the table's columns, in order, of its types
    assert _append_with_txn(df, str(ours), "ingest", 8) is True and deltalog.latest_version(ours) == 2
    assert _append_with_txn(df.select("v", "id", "_batch_date"), str(ours), "ingest", 9) is False
    assert deltalog.latest_version(ours) == 2 and deltalog.txn_version(ours, "ingest") == 8
    # anything else goes to save, which decides as before: an unknown column is refused
    with pytest.raises(AnalysisException):
        write_table(df.withColumn("extra", df.id), ours, txn=("ingest", 9))
    # and the table's properties still hold: an append-only table refuses a delete
    with pytest.raises(UnsupportedOperationException):
        DeltaTable.forPath(spark, str(ours)).delete("id = 1")
