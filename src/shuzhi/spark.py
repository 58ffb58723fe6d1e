"""The one SparkSession builder (local Delta, no downloads at run time).

    >>> from shuzhi.config import Settings
    >>> from shuzhi.spark import get_spark
    >>> spark = get_spark(Settings.load())          # doctest: +SKIP
"""
from __future__ import annotations

from .config import DELTA_JARS, Settings
from .errors import SetupError


def delta_jars(settings: Settings) -> list[str]:
    """Paths of the Delta jars in the local cache; a missing jar names the set-up command."""
    paths = [settings.jars_dir / j for j in DELTA_JARS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SetupError(f"Delta Lake jars missing: {', '.join(missing)}. "
                         f"Run `make setup` (scripts/setup.sh) once to fetch them from Maven Central.")
    return [str(p) for p in paths]


def spark_conf(settings: Settings, app_name: str = "shuzhi") -> dict[str, str]:
    s = settings.spark
    return {
        "spark.app.name": app_name,
        "spark.jars": ",".join(delta_jars(settings)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(s.shuffle_partitions),
        "spark.default.parallelism": str(max(2, s.shuffle_partitions)),
        "spark.ui.enabled": str(s.ui).lower(),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": s.timezone,
        "spark.driver.memory": s.driver_memory,
        # SPEC: police files are GB18030; Spark 4 only accepts that charset name with this flag.
        "spark.sql.legacy.javaCharsets": "true",
        # Delta's own state reconstruction defaults to 50 partitions: far too many on 2 cores.
        "spark.databricks.delta.snapshotPartitions": str(max(1, s.shuffle_partitions)),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.driver.extraJavaOptions": "-Dlog4j2.level=WARN",
    }


def get_spark(settings: Settings, app_name: str = "shuzhi"):
    """Return the process's SparkSession, creating it with Delta on first use."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.master(settings.spark.master)
    for k, v in spark_conf(settings, app_name).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
