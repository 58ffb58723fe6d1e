"""Small DataFrame helpers every stage uses."""
from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

from pyspark.sql import DataFrame


def union_all(frames: Iterable[DataFrame], *, allow_missing: bool = False) -> DataFrame | None:
    """The frames stacked by column name (``allow_missing``: a column one of them lacks is null
    there); None for no frame at all."""
    frames = list(frames)
    if not frames:
        return None
    return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=allow_missing), frames)
