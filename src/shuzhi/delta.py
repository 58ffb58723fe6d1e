"""The one Delta writer. Every table of the lake is written through ``write_table``.

It creates the table on first use with its properties (partitioning, which columns Delta may
collect statistics on — never an L3/L4 column — and append-only for audit tables), and makes
writes idempotent with Delta's own transaction identifiers: a write tagged ``txn=(app_id, v)``
that the table has already committed is skipped, so a re-run adds no data version.

    >>> write_table(df, settings.table_path("ops", "job_runs"), mode="append",
    ...             append_only=True)                                   # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal, Sequence

from delta.tables import DeltaTable
from pyspark.sql import types as T

from . import deltalog, registry
from .errors import MoveNotVerified

WriteMode = Literal["append", "replace", "snapshot"]


@dataclass(frozen=True)
class WriteResult:
    path: str
    version: int          # table version after the call
    skipped: bool         # True when the txn id was already committed (idempotent re-run)


@contextmanager
def parquet_codec(spark, codec: str | None):
    """Write Parquet with ``codec`` (e.g. ``zstd`` for the cold tier) inside the block only."""
    key = "spark.sql.parquet.compression.codec"
    if codec is None:
        yield
        return
    before = spark.conf.get(key)
    spark.conf.set(key, codec)
    try:
        yield
    finally:
        spark.conf.set(key, before)


def table_exists(spark, path: Path | str) -> bool:

    return DeltaTable.isDeltaTable(spark, str(path))


def table_version(spark, path: Path | str) -> int:
    """The table's latest version: from its log's file names (``shuzhi.deltalog``), else Delta's history."""
    v = deltalog.latest_version(path)
    if isinstance(v, int):
        return v
    return DeltaTable.forPath(spark, str(path)).history(1).collect()[0]["version"]


def committed_txn_version(spark, path: Path | str, app_id: str) -> int | None:
    """Latest committed version of a transaction id in a table, or None: read from the log's files
    (``shuzhi.deltalog``: no Spark job), else from Delta's snapshot."""
    v = deltalog.txn_version(path, app_id)
    if v is not deltalog.UNKNOWN:
        return v
    jvm = spark.sparkContext._jvm
    log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(path))
    opt = log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).transactions().get(app_id)
    return None if opt.isEmpty() else int(opt.get())


def clear_uncommitted_debris(path: Path | str) -> bool:
    """A process killed while creating a table can leave its folder with an empty ``_delta_log``
    (and orphan data files): no commit, so nothing was ever part of a table. Delta then refuses
    the location; clear it. A folder with any commit or checkpoint is never touched."""

    folder = Path(str(path))
    log_dir = folder / "_delta_log"
    if not folder.exists():
        return False
    committed = log_dir.is_dir() and any(p.suffix == ".json" or ".checkpoint" in p.name for p in log_dir.iterdir())
    if committed:
        return False
    logging.getLogger("shuzhi.delta").warning("clearing %s: a table creation was interrupted before its first commit",
                                              folder)
    shutil.rmtree(folder)
    return True


def ensure_table(spark, path: Path | str, schema, *, partition_by: Sequence[str] = (),
                 stats_columns: Iterable[str] | None = None, append_only: bool = False,
                 comment: str | None = None, properties: dict[str, str] | None = None) -> None:
    """Create the Delta table at ``path`` if it does not exist (idempotent)."""

    if table_exists(spark, path):
        return
    b = DeltaTable.createIfNotExists(spark).location(str(path)).addColumns(schema)
    if partition_by:
        b = b.partitionedBy(*partition_by)
    if stats_columns is not None:

        skippable = (T.NumericType, T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType)
        types = {f.name: f.dataType for f in schema.fields}
        cols = [c for c in stats_columns if c not in partition_by and isinstance(types.get(c), skippable)]
        b = b.property("delta.dataSkippingStatsColumns", ",".join(cols) if cols else "_none_")
    if append_only:
        b = b.property("delta.appendOnly", "true")
    for k, v in (properties or {}).items():
        b = b.property(k, v)
    if comment:
        b = b.comment(comment)
    try:
        b.execute()
    except Exception as exc:  # only the debris of an interrupted creation is cleared, then retried once
        if "DELTA_TABLE_NOT_FOUND" not in str(exc) or not clear_uncommitted_debris(path):
            raise
        b.execute()


def write_table(df, path: Path | str, *, mode: WriteMode = "append", replace_where: str | None = None,
                partition_by: Sequence[str] = (), txn: tuple[str, int] | None = None,
                stats_columns: Iterable[str] | None = None, append_only: bool = False,
                comment: str | None = None) -> WriteResult:
    """Append to, or replace a slice (``replace_where``) of, the Delta table at ``path``.

    ``txn``: ``(app_id, version)`` — Delta skips the write if it already committed it.
    ``stats_columns``: the only columns Delta may collect file statistics on (set at creation).
    """
    spark = df.sparkSession
    path = str(path)
    ensure_table(spark, path, df.schema, partition_by=partition_by, stats_columns=stats_columns,
                 append_only=append_only, comment=comment)
    if txn is not None:
        done = committed_txn_version(spark, path, txn[0])
        if done is not None and done >= txn[1]:
            return WriteResult(path, table_version(spark, path), skipped=True)
    if mode == "append" and txn is not None and _append_with_txn(df, path, *txn):
        return WriteResult(path, table_version(spark, path), skipped=False)
    w = df.write.format("delta")
    if txn is not None:
        w = w.option("txnAppId", txn[0]).option("txnVersion", txn[1])
    if mode == "snapshot":   # derived tables rebuilt whole each night (gold themes); history stays in the log
        w = w.mode("overwrite").option("overwriteSchema", "false")
    elif mode == "replace":
        if not replace_where:
            raise ValueError("mode='replace' needs replace_where (whole-table overwrites are not allowed)")
        w = w.mode("overwrite").option("replaceWhere", replace_where)
    else:
        w = w.mode("append")
    w.save(path)
    return WriteResult(path, table_version(spark, path), skipped=False)


def _append_with_txn(df, path: str, app_id: str, version: int) -> bool:
    """Append ``df`` and record the transaction id ``(app_id, version)`` in one commit, as
    ``save`` with ``txnAppId``/``txnVersion`` would — through Delta's own transaction API.

    Why not ``save``: on every write with a transaction id, Delta 4.0.1's ``WriteIntoDelta``
    asks the snapshot for the id's last version (``txnVersion`` → ``Snapshot.setTransactions``),
    which reconstructs the whole table state with a Spark job (~0.75 s a write on this machine,
    no setting avoids it). ``write_table`` has already answered that question from the log's
    files (``committed_txn_version``), so this path writes the files, adds the
    ``SetTransaction`` and commits a ``WRITE`` (mode Append): the same actions, the same commit
    info (operation, partitionBy, isBlindAppend, operation metrics, ``userMetadata`` from the
    session), the table's constraints checked by ``writeFiles`` and its properties (append-only)
    by the commit. Given up: Delta's conflict check between two concurrent writers of the same
    app id (each night's jobs are one writer per table).

    Returns False, having written nothing, when the frame's columns are not the table's
    (names, order and types): ``save`` then decides (schema checks, errors) as before.
    """
    spark = df.sparkSession
    jvm = spark.sparkContext._jvm
    d = jvm.org.apache.spark.sql.delta
    txn = d.DeltaLog.forTable(spark._jsparkSession, path).startTransaction()
    meta = txn.metadata()
    table = T.StructType.fromJson(json.loads(meta.schema().json()))
    if [(f.name, f.dataType) for f in table.fields] != [(f.name, f.dataType) for f in df.schema.fields]:
        return False
    some, none, conv = jvm.scala.Some, jvm.scala.Option.empty(), jvm.scala.jdk.javaapi.CollectionConverters
    actions = jvm.java.util.ArrayList()
    actions.addAll(conv.asJava(txn.writeFiles(df._jdf)))
    actions.add(d.actions.SetTransaction(app_id, int(version), some(int(time.time() * 1000))))
    # partitionBy as save records it: the writer's own partitioning, none (the table's is in its metadata)
    no_columns = conv.asScala(jvm.java.util.ArrayList()).toList()
    op = d.DeltaOperations.Write(jvm.org.apache.spark.sql.SaveMode.Append, some(no_columns), none, none)
    txn.commit(conv.asScala(actions).toList(), op)
    return True


_PRIMITIVES = {"string": T.StringType(), "long": T.LongType(), "int": T.IntegerType(), "double": T.DoubleType(),
               "boolean": T.BooleanType(), "date": T.DateType(), "timestamp": T.TimestampType(),
               "binary": T.BinaryType()}


def spark_type(text: str) -> T.DataType:
    """A column type as ``schemas/tables.yaml`` writes it (``long``, ``array<string>``,
    ``array<struct<table:string,rows:long>>``) as a Spark type (no JVM needed).

    >>> spark_type("array<struct<table:string,rows:long>>").simpleString()
    'array<struct<table:string,rows:bigint>>'
    """
    text = text.strip()
    if text in _PRIMITIVES:
        return _PRIMITIVES[text]
    if text.startswith("array<") and text.endswith(">"):
        return T.ArrayType(spark_type(text[6:-1]))
    if text.startswith("struct<") and text.endswith(">"):
        fields, depth, start, body = [], 0, 0, text[7:-1]
        for i, ch in enumerate(body + ","):
            depth += {"<": 1, ">": -1}.get(ch, 0)
            if ch == "," and depth == 0:
                name, _, typ = body[start:i].partition(":")
                fields.append(T.StructField(name.strip(), spark_type(typ)))
                start = i + 1
        return T.StructType(fields)
    raise ValueError(f"column type {text!r}: not one of {', '.join(_PRIMITIVES)}, array<…>, struct<…>")


def schema_of(key: str) -> T.StructType:
    """The schema a writer gives the rows of a table declared column by column (the ops tables):
    its columns in the registry's order, types and NOT NULL from ``schemas/tables.yaml``."""
    return T.StructType([T.StructField(c.name, spark_type(c.type), c.nullable) for c in registry.table(key).columns])


def rows_frame(spark, key: str, rows: list[dict]):
    """``rows`` (dicts) as a DataFrame of the registry's schema for table ``key``."""
    return spark.createDataFrame(rows, schema_of(key))


def read_table(spark, path: Path | str):
    return spark.read.format("delta").load(str(path))


def merge_table(
    df,
    path: Path | str,
    *,
    keys: Sequence[str],
    update_when: str | None = None,
    update_set: dict[str, str] | None = None,
    insert: bool = True,
    when_not_matched_by_source: tuple[str | None, dict[str, str]] | None = None,
    txn: tuple[str, int] | None = None,
    partition_by: Sequence[str] = (),
    stats_columns: Iterable[str] | None = None,
    comment: str | None = None,
    deletion_vectors: bool = False,
) -> WriteResult:
    """``MERGE`` ``df`` (alias ``s``) into the Delta table at ``path`` (alias ``t``) on ``keys``.

    Matched rows are updated with all columns (or ``update_set``) when ``update_when`` holds; new keys
    are inserted; ``when_not_matched_by_source = (condition, {column: expression})`` updates target
    rows the source no longer has. ``txn`` makes the MERGE idempotent like ``write_table``: Delta
    records the transaction id (session confs ``spark.databricks.delta.write.txnAppId/txnVersion``)
    in the same commit, and a committed id is skipped. ``deletion_vectors`` (set at creation): an
    updated row is marked deleted in its file and rewritten alone, instead of rewriting every file
    the MERGE touches — so a small night costs in proportion to its rows, not to the table.
    """

    spark = df.sparkSession
    path = str(path)
    ensure_table(spark, path, df.schema, partition_by=partition_by, stats_columns=stats_columns, comment=comment,
                 properties={"delta.enableDeletionVectors": "true"} if deletion_vectors else None)
    if txn is not None:
        done = committed_txn_version(spark, path, txn[0])
        if done is not None and done >= txn[1]:
            return WriteResult(path, table_version(spark, path), skipped=True)
    cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
    m = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), cond)
    m = (m.whenMatchedUpdate(condition=update_when, set=update_set) if update_set
         else m.whenMatchedUpdateAll(condition=update_when))
    if insert:
        m = m.whenNotMatchedInsertAll()
    if when_not_matched_by_source is not None:
        nm_cond, nm_set = when_not_matched_by_source
        m = m.whenNotMatchedBySourceUpdate(condition=nm_cond, set=nm_set)
    conf = spark.conf
    if txn is not None:
        conf.set("spark.databricks.delta.write.txnAppId", txn[0])
        conf.set("spark.databricks.delta.write.txnVersion", str(txn[1]))
    try:
        m.execute()
    finally:
        if txn is not None:
            conf.unset("spark.databricks.delta.write.txnAppId")
            conf.unset("spark.databricks.delta.write.txnVersion")
    return WriteResult(path, table_version(spark, path), skipped=False)


def _declared(settings, key: str, columns) -> tuple[str, dict]:
    """The path of table ``key`` and what ``schemas/tables.yaml`` declares for its creation."""
    t = registry.table(key)
    layer, name = key.split(".", 1)
    return str(settings.table_path(layer, name)), dict(partition_by=list(t.partition_by), comment=t.description,
                                                        stats_columns=t.stats_columns(columns))


def write_to(settings, key: str, df, **kw) -> WriteResult:
    """``write_table`` into the registered table ``key`` (``layer.name``): its path, partitioning,
    append-only flag, statistics policy and description come from the registry."""
    path, declared = _declared(settings, key, df.columns)
    return write_table(df, path, append_only=registry.table(key).append_only, **declared, **kw)


def merge_into(settings, key: str, df, **kw) -> WriteResult:
    """``merge_table`` into the registered table ``key`` (as ``write_to``)."""
    path, declared = _declared(settings, key, df.columns)
    return merge_table(df, path, **declared, **kw)


def delete_matching(spark, path: Path | str, doomed, keys: Sequence[str]) -> int:
    """Delete the target rows matching ``doomed`` on ``keys`` (null-safe) with one MERGE."""

    doomed = doomed.select(*keys).distinct()
    if doomed.isEmpty():
        return 0
    table = DeltaTable.forPath(spark, str(path))
    target = table.toDF()
    if target.join(doomed, [target[k].eqNullSafe(doomed[k]) for k in keys], "left_semi").isEmpty():
        return 0          # nothing to delete (a re-run): no MERGE, no new version
    before = table_version(spark, path)
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    table.alias("t").merge(doomed.alias("s"), cond).whenMatchedDelete().execute()
    after = table_version(spark, path)
    if after == before:
        return 0
    metrics = deltalog.operation_metrics(path, after)
    if metrics is deltalog.UNKNOWN:
        metrics = DeltaTable.forPath(spark, str(path)).history(1).collect()[0]["operationMetrics"] or {}
    return int(metrics.get("numTargetRowsDeleted", 0))


def move_rows(spark, rows, source: str, target: str, *, partition_by=(), codec: str | None = None,
              stats_columns=None, comment: str | None = None) -> int:
    """Move ``rows`` between two Delta tables keyed on ``record_id``: copy them into ``target``
    (MERGE, so a repeated copy changes nothing), check every one is there, and only then delete
    them from ``source`` — killed at any point, each row is in at least one of the two. Returns
    the rows moved; ``MoveNotVerified`` (source untouched) if the copy is short."""
    n = rows.count()
    if not n:
        return 0
    with parquet_codec(spark, codec):
        merge_table(rows, target, keys=["record_id"], update_when="s.updated_at >= t.updated_at",
                    partition_by=partition_by, stats_columns=stats_columns, comment=comment)
    ids = rows.select("record_id")
    there = read_table(spark, target).join(ids, "record_id", "left_semi").count()
    if there < n:
        raise MoveNotVerified(f"tier move {source} → {target}: {n} records copied, {there} found; source kept")
    delete_matching(spark, source, ids, ["record_id"])
    return n
