"""Comparing a DataFrame with an expected frame built by hand (the unit layer, tests/test_unit_*.py).

``pyspark.testing.assertDataFrameEqual`` imports pandas-on-Spark, which does not import with the
locked pandas; this is the part of it the tests need: the same columns with the same types, and the
same rows as a multiset (order ignored: a transform does not promise one)."""
from __future__ import annotations

from collections import Counter


def _types(df) -> list[tuple[str, str]]:
    return [(f.name, f.dataType.simpleString()) for f in df.schema.fields]


def _hashable(v):
    """A collected value as something a Counter can count: arrays and structs as tuples, maps as sorted pairs."""
    if isinstance(v, (list, tuple)):        # a Row is a tuple
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, bytearray):
        return bytes(v)
    return v


def rows_of(df) -> Counter:
    return Counter(_hashable(r) for r in df.collect())


def assert_frame_equal(actual, expected, *, columns: list[str] | None = None) -> None:
    """``actual`` (optionally only ``columns`` of it, in that order) has ``expected``'s columns, types and rows."""
    if columns is not None:
        actual = actual.select(*columns)
    assert _types(actual) == _types(expected), (f"columns differ:\n  got      {_types(actual)}"
                                                f"\n  expected {_types(expected)}")
    got, want = rows_of(actual), rows_of(expected)
    missing, extra = want - got, got - want
    assert not missing and not extra, (f"rows differ:\n  missing {sorted(map(repr, missing.elements()))}"
                                       f"\n  unexpected {sorted(map(repr, extra.elements()))}")


def _literal(v) -> str | None:
    """A scalar as Spark SQL literal text — read exactly as ``F.lit(v)`` would give it — or None."""
    import datetime as dt
    import decimal
    import math
    import time

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"CAST('{v!r}' AS DOUBLE)" if math.isinf(v) or math.isnan(v) else f"{v!r}D"
    if isinstance(v, decimal.Decimal):
        return f"{v}BD"
    if isinstance(v, str):      # the parser reads backslash escapes in string literals
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, (bytes, bytearray)):
        return f"X'{bytes(v).hex()}'"
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        # as PySpark sends a naive datetime: seconds of the local wall-clock time (time.mktime)
        return f"TIMESTAMP_MICROS({int(time.mktime(v.timetuple())) * 1_000_000 + v.microsecond})"
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return f"DATE'{v.isoformat()}'"
    return None


_SCHEMAS: dict = {}


def frame(spark, rows: list[tuple] | tuple, schema: str):
    """A frame built by hand, from the arguments ``createDataFrame`` takes: ``rows`` of Python values
    (None, str, int, float, bool, Decimal, date, datetime, bytes; tuples for structs, lists for
    arrays, dicts for maps) in the columns of the DDL ``schema``. Built as a local relation —
    ``SELECT CAST(v AS type) … FROM VALUES …``, the values written as SQL literals (any other kind
    bound as a parameter) — so making it runs no Spark job and costs one call into the JVM
    (``createDataFrame`` of a Python list runs a job to ship the rows: on the 2-core machine most
    of a tiny test's time), and a projection or filter of it is evaluated on the driver."""
    from pyspark.sql.types import _parse_datatype_string

    if schema not in _SCHEMAS:
        _SCHEMAS[schema] = _parse_datatype_string(schema).fields
    fields = _SCHEMAS[schema]
    names = [f"`{f.name}`" for f in fields]
    types = [f.dataType.simpleString() for f in fields]
    if not rows:
        cols = ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in zip(names, types, strict=True))
        return spark.sql(f"SELECT {cols} WHERE false")
    args: dict = {}

    def sql(v) -> str:      # a value as SQL: structs (tuples), arrays (lists), maps (dicts) built
        if v is None:
            return "NULL"
        if isinstance(v, tuple):
            return "struct(" + ", ".join(sql(x) for x in v) + ")"
        if isinstance(v, list):
            return "array(" + ", ".join(sql(x) for x in v) + ")"
        if isinstance(v, dict):
            return "map(" + ", ".join(f"{sql(k)}, {sql(x)}" for k, x in v.items()) + ")"
        text = _literal(v)
        if text is not None:
            return text
        name = f"v{len(args)}"
        args[name] = v
        return f":{name}"

    tuples = []
    for r, row in enumerate(rows):
        if len(row) != len(fields):
            raise ValueError(f"row {r} has {len(row)} values for {len(fields)} columns: {row!r}")
        tuples.append("(" + ", ".join(sql(v) for v in row) + ")")
    cols = ", ".join(f"CAST(col{i + 1} AS {t}) AS {n}" for i, (n, t) in enumerate(zip(names, types, strict=True)))
    return spark.sql(f"SELECT {cols} FROM VALUES {', '.join(tuples)}", args=args or None)
