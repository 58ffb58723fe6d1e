"""The one SparkSession builder (local Delta, no downloads at run time).

    >>> from shuzhi.config import Settings
    >>> from shuzhi.spark import get_spark
    >>> spark = get_spark(Settings.load())          # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from functools import lru_cache
from pathlib import Path

import pyspark
from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from .config import CONF_DIR, DELTA_JARS, DELTA_VERSION, REPO_ROOT, Settings
from .errors import SetupError


def _hold_the_functions_class() -> None:
    """Make PySpark look up each JVM function of ``org.apache.spark.sql.functions`` once per
    gateway, not once per call. PySpark 4.0's ``_get_jvm_function`` asks the JVM for the class by
    name and then for the member by name on every ``F.lit``/``F.when``/… (py4j's JVM view and class
    objects cache nothing): two of the three py4j round trips of each such call, 2,123 of the 7,083
    the clean stage's standardise of one police table made. The same static method is called
    either way; a PySpark other than the pinned 4.0 line is left alone."""
    from pyspark.sql.functions import builtin  # lazy: the module is PySpark 4.0's layout, read only when called

    original = getattr(builtin, "_get_jvm_function", None)
    if not pyspark.__version__.startswith("4.0.") or original is None or getattr(original, "held", False):
        return
    view: list = [None, None]                   # the JVM view these were looked up in, and its class
    members: dict = {}                          # function name → py4j member of that class

    def _get_jvm_function(name: str, sc: SparkContext):
        if view[0] is not sc._jvm:              # a new gateway: look everything up again
            view[:] = [sc._jvm, getattr(sc._jvm, "org.apache.spark.sql.functions")]
            members.clear()
        member = members.get(name)
        if member is None:
            member = members[name] = getattr(view[1], name)
        return member

    _get_jvm_function.held = True               # type: ignore[attr-defined]
    builtin._get_jvm_function = _get_jvm_function


_hold_the_functions_class()


def log4j2_conf() -> Path:
    """Log4j 2 configuration of the driver JVM (every log line on stderr, Spark's code-generator
    fallbacks as one line without a stack trace): ``conf/log4j2.properties``, the repository's
    when a ``SHUZHI_CONF`` folder has none."""
    p = CONF_DIR / "log4j2.properties"
    return p if p.is_file() else REPO_ROOT / "conf" / "log4j2.properties"


def delta_jars(settings: Settings) -> list[str]:
    """Paths of the Delta jars in the local cache; a missing jar names the set-up command."""
    paths = [settings.jars_dir / j for j in DELTA_JARS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SetupError(f"Delta Lake jars missing: {', '.join(missing)}. "
                         f"Run `make setup` (scripts/setup.sh) once to fetch them from Maven Central.")
    return [str(p) for p in paths]


# JVM unified logging of class data sharing off: an archive that does not match (another JDK or
# jar set) is then silently not used, and dumping one does not print a line per skipped class.
CDS_QUIET = "-Xlog:cds=off,cds+dynamic=off"


@lru_cache(maxsize=None)
def _classpath_key(jars_dir: Path) -> str:
    """What a class archive was dumped against: the java that spark-submit starts, PySpark's jars
    and the Delta jars (names and sizes). The JVM checks the classpath itself and ignores an
    archive that does not match; the key only keeps archives of different set-ups apart."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.realpath(os.path.join(home, "bin", "java") if home else (shutil.which("java") or "java"))
    jars = Path(pyspark.__file__).parent / "jars"
    parts = [java, pyspark.__version__, DELTA_VERSION]
    parts += [f"{p.name}:{p.stat().st_size}" for p in sorted(jars.glob("*.jar"))]
    parts += [f"{name}:{(jars_dir / name).stat().st_size}" for name in DELTA_JARS if (jars_dir / name).is_file()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def class_archive(settings: Settings) -> Path:
    """The driver JVM's class-data-sharing archive for this set-up (``shuzhi setup`` dumps it beside
    the Delta jars; see ``shuzhi.classarchive``)."""
    return settings.jars_dir / f"classes-{_classpath_key(settings.jars_dir)}.jsa"


def driver_java_options(settings: Settings, dump_archive_to: Path | None = None) -> str:
    """The driver JVM's options: our Log4j configuration, and the class archive when there is one
    (the JVM maps the classes it holds instead of reading, parsing and verifying them from ~250
    jars: a session starts about 2.5 s sooner and a test's first plan of a kind sooner still);
    ``dump_archive_to``: write one at exit instead."""
    opts = [f"-Dlog4j2.configurationFile={log4j2_conf().as_uri()}"]
    if dump_archive_to is not None:
        opts += [f"-XX:ArchiveClassesAtExit={dump_archive_to}", CDS_QUIET]
    elif (archive := class_archive(settings)).is_file():
        opts += [f"-XX:SharedArchiveFile={archive}", CDS_QUIET]
    return " ".join(opts)


def spark_conf(settings: Settings, app_name: str = "shuzhi", dump_archive_to: Path | None = None) -> dict[str, str]:
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
        # PySpark 4 wraps every DataFrame and function call to send its Python call site to the JVM
        # (for error contexts): about seven py4j round trips a call, half of all the driver's py4j
        # traffic when a stage builds its plans. Our errors name delivery, file, line and rule.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
        "spark.driver.extraJavaOptions": driver_java_options(settings, dump_archive_to),
    }


def _launch_jvm(conf: dict[str, str], master: str) -> None:
    """Start the driver JVM (py4j gateway) with its stdout on this process's stderr: what the JVM
    prints outside Log4j (Delta's ``VACUUM`` "Deleted N files …" lines, ``println`` of libraries,
    Python workers' output) must not mix with a command's result on stdout. No-op when a gateway
    exists (an earlier session, or ``spark-submit``, whose JVM is the parent process)."""

    if SparkContext._gateway is not None:
        return
    sc_conf = SparkConf(loadDefaults=False).setMaster(master).setAll(list(conf.items()))
    SparkContext._ensure_initialized(gateway=launch_gateway(sc_conf, popen_kwargs={"stdout": _stderr_fd()}))


def _stderr_fd() -> int:
    """This process's stderr as a file descriptor (2 when ``sys.stderr`` is not a file, e.g. captured)."""
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return 2


def get_spark(settings: Settings, app_name: str = "shuzhi", dump_archive_to: Path | None = None):
    """Return the process's SparkSession, creating it with Delta on first use (``dump_archive_to``:
    its JVM writes a class archive there when it exits; ``shuzhi.classarchive``)."""

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    conf = spark_conf(settings, app_name, dump_archive_to)
    _launch_jvm(conf, settings.spark.master)
    builder = SparkSession.builder.master(settings.spark.master)
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
