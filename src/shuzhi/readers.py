"""Spark readers for the four delivery formats, driven by ``schemas/``.

Text formats are read with every field as a string (bronze keeps values as delivered) plus
``_corrupt_record`` in PERMISSIVE mode, so a malformed record is kept, never dropped. Every
frame gets ``_row``: the 1-based index of the record in its file (CSV line = ``_row + 1``)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .manifest import DeliveryFile
from .schemas import Entity

CORRUPT = "_corrupt_record"
_PARQUET_TYPES = {"string": T.StringType(), "date": T.DateType(), "timestamp": T.TimestampType(),
                  "decimal(12,2)": T.DecimalType(12, 2)}


def read_schema(entity: Entity, columns: tuple[str, ...] | list[str] = ()) -> T.StructType:
    """The schema a delivery file is read with (delivered field names and types). ``columns``: a CSV
    header's order when it differs from SPEC's (same names), so each value lands in its own field."""
    if entity.format == "parquet":
        return T.StructType([T.StructField(f.name, _PARQUET_TYPES[f.parquet_type or "string"]) for f in entity.fields])
    names = list(columns) or entity.field_names
    return T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])


def with_partition_ids(df: DataFrame) -> DataFrame:
    """Tag each record with its read partition and position in it (input of ``with_row_index``)."""
    return df.withColumn("_pid", F.spark_partition_id()).withColumn("_mid", F.monotonically_increasing_id())


def with_row_index(df: DataFrame) -> DataFrame:
    """Add ``_row``: 1-based position of each record in file order (like RDD.zipWithIndex,
    but in DataFrame operations) to a ``with_partition_ids`` frame read from one file.
    Runs one small job (records per partition); cache ``df`` first so the file is parsed once."""
    counts = sorted((r["_pid"], r["count"]) for r in df.groupBy("_pid").count().collect())
    offsets, acc = {}, 0
    for pid, n in counts:
        offsets[pid] = acc
        acc += n
    if offsets:
        offset_map = F.create_map(*[x for pid, off in offsets.items() for x in (F.lit(pid), F.lit(off))])
        row = F.col("_mid") - F.col("_pid").cast("long") * F.lit(1 << 33) + offset_map[F.col("_pid")] + 1
    else:
        row = F.lit(None).cast("long")
    return df.withColumn("_row", row.cast("long")).drop("_pid", "_mid")


@contextmanager
def opened(spark: SparkSession, dfile: DeliveryFile) -> Iterator[DataFrame]:
    """A delivered file parsed once and cached, with ``_row``; the cache is released on exit.

    >>> with opened(spark, dfile) as raw_df:          # doctest: +SKIP
    ...     bronze_df = to_bronze(raw_df, ...)
    """
    base = with_partition_ids(read_delivery_file(spark, dfile)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield with_hidden_records(spark, with_row_index(base), dfile)
    finally:
        base.unpersist()


def with_hidden_records(spark: SparkSession, df: DataFrame, dfile: DeliveryFile) -> DataFrame:
    """XML: Spark's reader skips ``<resident/>`` (no space before ``/>``) though SPEC counts it as a
    record. Shift ``_row`` to the element's position and add each skipped element as a record whose
    raw text is ``<resident/>`` (so it is quarantined, never lost)."""
    if not dfile.hidden:
        return df
    thresholds = [v - j for j, v in enumerate(dfile.hidden)]         # reader row from which j+1 were skipped
    arr = F.array(*[F.lit(x).cast("long") for x in thresholds])
    shifted = df.withColumn("_row", F.col("_row") + F.size(F.filter(arr, lambda x: x <= F.col("_row"))))
    empty = spark.createDataFrame([(int(v),) for v in dfile.hidden], "_row long")
    for c in df.columns:
        if c != "_row":
            empty = empty.withColumn(
                c, (F.lit("<resident/>") if c == CORRUPT else F.lit(None)).cast(df.schema[c].dataType)
            )
    return shifted.unionByName(empty.select(*df.columns))


def read_delivery_file(spark: SparkSession, dfile: DeliveryFile) -> DataFrame:
    """Read one delivered file with Spark's own reader for its format (lazy, not cached, no ``_row``)."""
    entity, path = dfile.entity, str(dfile.path)
    schema = read_schema(entity, dfile.columns if dfile.reordered else ())
    if entity.format == "csv":
        # multiLine only for files with quoted line breaks (it reads a file as one split)
        df = (spark.read.schema(schema).option("header", True).option("encoding", dfile.actual_encoding)
              .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
              .option("multiLine", dfile.multiline).option("enforceSchema", True).option("quote", '"')
              .option("escape", '"').option("ignoreLeadingWhiteSpace", False)
              .option("ignoreTrailingWhiteSpace", False).csv(path))
        if dfile.reordered:
            df = df.select(*entity.field_names, CORRUPT)
    elif entity.format == "jsonl":
        r = spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
        if dfile.actual_encoding.upper().replace("-", "") != "UTF8":
            r = r.option("encoding", dfile.actual_encoding)  # (with it set, numbers lose their delivered text)
        df = r.json(path)
    elif entity.format == "xml":
        df = (spark.read.format("xml").schema(schema).option("rowTag", entity.row_tag)
              .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT)
              .option("encoding", dfile.actual_encoding).option("ignoreSurroundingSpaces", False)
              .option("nullValue", "").load(path))
    elif entity.format == "parquet":
        df = spark.read.schema(schema).parquet(path).withColumn(CORRUPT, F.lit(None).cast("string"))
    else:
        raise ValueError(f"{entity.source}/{entity.name}: unknown format {entity.format!r}")
    return df
