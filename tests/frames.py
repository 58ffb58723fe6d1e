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
    assert _types(actual) == _types(expected), f"columns differ:\n  got      {_types(actual)}\n  expected {_types(expected)}"
    got, want = rows_of(actual), rows_of(expected)
    missing, extra = want - got, got - want
    assert not missing and not extra, (f"rows differ:\n  missing {sorted(map(repr, missing.elements()))}"
                                       f"\n  unexpected {sorted(map(repr, extra.elements()))}")
