"""The driver's py4j traffic while a stage builds its columns: each function of
``pyspark.sql.functions`` is looked up in the JVM once per gateway (``shuzhi.spark``), and no call
sends its Python call site (``spark.python.sql.dataFrameDebugging.enabled`` off)."""
from collections import Counter

import py4j.clientserver
import pytest
from pyspark.sql import functions as F


@pytest.fixture
def commands(monkeypatch):
    """Every py4j command this process sends while the test runs, by its first three lines
    (command, sub-command, target)."""
    sent: Counter = Counter()
    send = py4j.clientserver.ClientServerConnection.send_command

    def counting(self, command):
        sent[tuple(command.split("\n")[:3])] += 1
        return send(self, command)

    monkeypatch.setattr(py4j.clientserver.ClientServerConnection, "send_command", counting)
    return sent


@pytest.mark.unit
def test_functions_are_looked_up_once_and_call_sites_are_not_sent(tiny_spark, commands):
    df = tiny_spark.createDataFrame([(1,), (2,), (None,)], "a int")
    F.lit(0), F.when(F.lit(True), F.lit(0)), F.coalesce(F.lit(0))      # looked up before counting starts
    commands.clear()
    cols = [F.when(df["a"] == F.lit(k), F.lit(f"v{k}")).otherwise(F.coalesce(F.lit("none"))).alias(f"c{k}")
            for k in range(40)]
    got = [tuple(r) for r in df.select(*cols[:3]).collect()]
    assert got == [("none", "v1", "none"), ("none", "none", "v2"), ("none", "none", "none")]
    # 40 columns × (when, lit ×3, coalesce, otherwise, ==, alias): none of them asked the JVM
    # for the functions class or one of its members again (PySpark 4.0 alone asks twice a call)
    lookups = {k: n for k, n in commands.items() if k[0] == "r" and k[2:] == ("org.apache.spark.sql.functions",)}
    assert lookups == {}
    origins = sum(n for k, n in commands.items() if any("PySparkCurrentOrigin" in part for part in k))
    assert origins == 0
    assert tiny_spark.conf.get("spark.python.sql.dataFrameDebugging.enabled") == "false"
