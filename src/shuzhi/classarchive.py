"""The driver JVM's class-data-sharing archive, dumped once by ``shuzhi setup``.

A Spark driver loads some 15,000 classes from about 250 jars, and the first plan of each kind
(the first MERGE, window, XML read…) loads more. With a dynamic CDS archive (JDK 13+) the JVM maps
the classes a warm-up loaded instead of finding, reading, parsing and verifying them again. Measured
on this machine (2 cores), five unit tests in one fresh session, alternated: 48.4 / 50.8 s without,
44.2 / 42.1 s with this module's archive; the session start 9.8 / 10.7 s → 7.3 / 6.1 s.

The archive lives beside the Delta jars (``SHUZHI_JARS``), named by the java binary, PySpark's jars
and the Delta jars (``shuzhi.spark.class_archive``). ``shuzhi.spark.driver_java_options`` adds it
to every driver JVM when it exists; when it does not (set-up not run, another JDK) nothing changes,
and a JVM that finds it does not match its classpath ignores it without a word.

    python -m shuzhi.classarchive        # dump it now (``shuzhi setup`` does when it is missing)
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from delta.tables import DeltaTable
from pyspark import SparkContext
from pyspark.sql import Window
from pyspark.sql import functions as F

from .config import Settings
from .errors import SetupError
from .spark import class_archive, get_spark


def ensure(settings: Settings) -> tuple[Path, float | None]:
    """The archive for this set-up, dumped in a child process if missing: (path, seconds taken, or
    None when it was there already). The dump goes to a temporary name first, so a killed set-up
    leaves no half-written archive under the real name; archives of other set-ups are removed."""
    target = class_archive(settings)
    if target.is_file():
        return target, None
    started = time.monotonic()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    proc = subprocess.run([sys.executable, "-m", "shuzhi.classarchive", "--dump-to", str(tmp)],
                          env={**os.environ, **settings.env_vars()}, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise SetupError(f"dumping the JVM class archive failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    tmp.replace(target)
    for old in target.parent.glob("classes-*.jsa"):
        if old != target:
            old.unlink()
    return target, time.monotonic() - started


def ensure_line(settings: Settings) -> str:
    """``ensure``, said in one line (``shuzhi setup`` and ``python -m shuzhi.classarchive``)."""
    path, took = ensure(settings)
    return f"JVM class archive {path} ({'there already' if took is None else f'dumped in {took:.0f} s'})"


def warm_up(spark, where: Path) -> None:
    """What a night does, in miniature, so its classes are loaded before the JVM exits: delivered
    formats read, ciphers, windows, aggregates, joins, a partitioned Delta write, a MERGE, a
    read back, a checkpointed log."""
    (where / "in.csv").write_text("id,name\n1,甲\n2,乙\n3\n", encoding="utf-8")
    (where / "in.json").write_text('{"id": 1, "name": "甲"}\n{broken\n', encoding="utf-8")
    (where / "in.xml").write_text("<rows><row><id>1</id><name>甲</name></row></rows>", encoding="utf-8")
    read = dict(mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt")
    spark.read.options(header=True, **read).schema("id string, name string, _corrupt string").csv(
        str(where / "in.csv")).collect()
    spark.read.options(**read).schema("id string, name string, _corrupt string").json(str(where / "in.json")).collect()
    spark.read.format("xml").options(rowTag="row", **read).load(str(where / "in.xml")).collect()
    key = F.lit(bytes(range(32)))
    df = (spark.range(2000).select(F.col("id"), (F.col("id") % 7).cast("string").alias("k"),
                                   F.date_add(F.current_date(), -(F.col("id") % 30).cast("int")).alias("d"))
          .withColumn("e", F.base64(F.aes_encrypt(F.col("k"), key, F.lit("GCM"))))
          .withColumn("h", F.sha2(F.concat_ws("\u0001", "k", "d"), 256)))
    w = Window.partitionBy("k").orderBy(F.col("d").desc(), "id")
    top = df.withColumn("r", F.row_number().over(w)).filter("r = 1")
    agg = df.groupBy("k").agg(F.count(F.lit(1)).alias("n"), F.max_by("id", "d").alias("m"),
                              F.collect_set("d").alias("ds"), F.countDistinct("h").alias("u"))
    top.join(agg, "k").join(F.broadcast(agg.select("k")), "k", "left_anti").collect()
    df.select(F.aes_decrypt(F.unbase64("e"), key, F.lit("GCM")).cast("string")).collect()
    path = str(where / "delta")
    df.write.format("delta").partitionBy("k").save(path)
    table = DeltaTable.forPath(spark, path)
    table.alias("t").merge(df.limit(100).alias("s"), "t.id = s.id").whenMatchedUpdateAll() \
        .whenNotMatchedInsertAll().execute()
    for _ in range(10):                          # past Delta's checkpoint interval
        df.limit(5).write.format("delta").mode("append").save(path)
    spark.read.format("delta").load(path).groupBy("k").count().collect()
    table.history().collect()
    spark.read.format("delta").option("versionAsOf", 0).load(path).count()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = Settings.load()
    if args[:1] != ["--dump-to"]:
        print(ensure_line(settings))
        return 0
    spark = get_spark(settings, "shuzhi-class-archive", dump_archive_to=Path(args[1]))
    with tempfile.TemporaryDirectory(prefix="shuzhi-warm-up-") as where:
        warm_up(spark, Path(where))
    spark.stop()
    gateway = SparkContext._gateway
    proc = gateway.proc
    gateway.shutdown()
    proc.stdin.close()                           # the gateway JVM exits on end of input, dumping the
    proc.wait()                                  # archive on its way out: wait until it has
    return 0


if __name__ == "__main__":
    sys.exit(main())
