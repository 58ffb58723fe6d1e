"""A column store of numpy arrays that can grow (persons, houses, cases, enrolments...)."""
from __future__ import annotations

import numpy as np

NAT_D = np.datetime64("NaT", "D")
NAT_S = np.datetime64("NaT", "s")
DAY = np.timedelta64(1, "D")


class Store:
    """Named, equally long numpy columns. Read ``store.col``; write ``store.col[idx] = v``;
    grow with ``append``, which returns the new rows' indices."""

    def __init__(self, **cols: np.ndarray) -> None:
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of unequal length: { {k: len(v) for k, v in cols.items()} }")
        object.__setattr__(self, "cols", dict(cols))

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.cols[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: np.ndarray) -> None:
        if name not in self.cols:
            raise AttributeError(f"Store has no column {name!r}")
        if len(value) != len(self):
            raise ValueError(f"column {name!r}: length {len(value)}, store has {len(self)}")
        self.cols[name] = value

    def append(self, **cols) -> np.ndarray:
        """Append rows; columns not given get their type's null (NaT, -1, None, False, 0)."""
        n = {len(np.atleast_1d(v)) for v in cols.values()}
        if len(n) != 1:
            raise ValueError(f"append: columns of unequal length {n}")
        k = n.pop()
        start = len(self)
        for name, arr in self.cols.items():
            if name in cols:
                new = np.asarray(cols[name])
                if arr.dtype == object:
                    new = np.asarray(new, dtype=object)
                else:
                    new = new.astype(arr.dtype)
            else:
                new = null_like(arr, k)
            self.cols[name] = np.concatenate([arr, new])
        unknown = set(cols) - set(self.cols)
        if unknown:
            raise ValueError(f"append: unknown columns {sorted(unknown)}")
        return np.arange(start, start + k)


def group_by(keys: np.ndarray):
    """An index on ``keys`` (e.g. a store's person column): ``members(k)`` gives the row indices
    whose key is ``k``, in row order."""
    order = np.argsort(keys, kind="stable")
    sk = keys[order]

    def members(k: int) -> np.ndarray:
        lo, hi = np.searchsorted(sk, k), np.searchsorted(sk, k, side="right")
        return order[lo:hi]
    return members


def null_like(arr: np.ndarray, k: int) -> np.ndarray:
    if arr.dtype == object:
        return np.full(k, None, dtype=object)
    if arr.dtype.kind == "M":
        return np.full(k, np.datetime64("NaT"), dtype=arr.dtype)
    if arr.dtype == bool:
        return np.zeros(k, dtype=bool)
    if arr.dtype.kind in "iu":
        return np.full(k, -1 if arr.dtype.kind == "i" else 0, dtype=arr.dtype)
    return np.zeros(k, dtype=arr.dtype)


def ymd(dates: np.ndarray, sep: str = "-") -> np.ndarray:
    """datetime64[D] → 'YYYY-MM-DD' (or 'YYYYMMDD' with sep=''); NaT → ''."""
    s = np.datetime_as_string(dates.astype("M8[D]"), unit="D").astype(object)
    s[np.isnat(dates)] = ""
    if sep != "-":
        s = np.array([v.replace("-", sep) for v in s], dtype=object)
    return s


def local_ts(ts: np.ndarray) -> np.ndarray:
    """datetime64[s] → 'YYYY-MM-DD HH:MM:SS'."""
    return np.array([v.replace("T", " ") for v in np.datetime_as_string(ts.astype("M8[s]"), unit="s")],
                    dtype=object)


def iso_offset_ts(ts: np.ndarray) -> np.ndarray:
    """datetime64[s] local (UTC+8) → 'YYYY-MM-DDTHH:MM:SS+08:00'."""
    return np.array([v + "+08:00" for v in np.datetime_as_string(ts.astype("M8[s]"), unit="s")], dtype=object)


def age_on(birth: np.ndarray, day: np.datetime64) -> np.ndarray:
    """Completed years of age on ``day`` (datetime64[D] births)."""
    b = birth.astype("M8[D]")
    by = b.astype("M8[Y]").astype(np.int64) + 1970
    bm = b.astype("M8[M]").astype(np.int64) % 12
    bd = (b - b.astype("M8[M]")).astype(np.int64)
    d = np.datetime64(day, "D")
    dy = int(d.astype("M8[Y]").astype(np.int64)) + 1970
    dm = int(d.astype("M8[M]").astype(np.int64)) % 12
    dd = int((d - d.astype("M8[M]")).astype(np.int64))
    before = (bm > dm) | ((bm == dm) & (bd > dd))
    return dy - by - before.astype(np.int64)


def times_on(day: np.datetime64, rng: np.random.Generator, n: int, start_h: int = 8, end_h: int = 23) -> np.ndarray:
    """n local timestamps on ``day`` between start_h:00 and end_h:00 (datetime64[s])."""
    base = np.datetime64(day, "D").astype("M8[s]")
    return base + rng.integers(start_h * 3600, end_h * 3600, n).astype("m8[s]")
