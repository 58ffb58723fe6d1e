"""Identity numbers (GB 11643-1999), unified social credit codes (GB 32100-2015) and mobile numbers.

Check characters are computed in bulk with numpy and agree with python-stdnum's
``stdnum.cn.ric.calc_check_digit`` / ``stdnum.cn.uscc.calc_check_digit`` (the tests check it).
"""
from __future__ import annotations

import numpy as np
from stdnum.cn import uscc as _uscc

_ID_WEIGHTS = np.array([pow(2, 17 - i, 11) for i in range(17)], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"), dtype="<U1")


def id_check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check character for each 17-digit string (ISO 7064 MOD 11-2)."""
    digits = np.frombuffer(np.asarray(first17, dtype="<U17").astype("S17").tobytes(), dtype=np.uint8)
    digits = (digits.reshape(-1, 17).astype(np.int64) - 48)
    return _ID_CHECK[(digits @ _ID_WEIGHTS) % 11]


def id_check_char(first17: str) -> str:
    return str(id_check_chars(np.array([first17]))[0])


def make_id_numbers(region: np.ndarray, birth: np.ndarray, sex: np.ndarray, rng: np.random.Generator,
                    taken: set[str]) -> np.ndarray:
    """18-character identity numbers, unique against ``taken`` (which is updated).

    region: 6-digit strings; birth: datetime64[D] (the date the number encodes); sex 1/2 →
    odd/even sequence code."""
    n = len(region)
    ymd = np.datetime_as_string(birth.astype("datetime64[D]"), unit="D")
    base = np.char.add(np.asarray(region, dtype="<U6"),
                       np.char.replace(ymd.astype("<U10"), "-", ""))
    seq = rng.integers(0, 500, n) * 2 + (sex == 1)  # odd for men
    out = np.empty(n, dtype=object)
    todo = np.arange(n)
    for _ in range(50):
        if len(todo) == 0:
            break
        f17 = np.char.add(base[todo], np.char.zfill(seq[todo].astype("<U3"), 3))
        ids = np.char.add(f17, id_check_chars(f17))
        retry = []
        for k, i in enumerate(todo):
            v = str(ids[k])
            if v in taken:
                retry.append(i)
            else:
                taken.add(v)
                out[i] = v
        todo = np.array(retry, dtype=np.int64)
        if len(todo):
            seq[todo] = rng.integers(0, 500, len(todo)) * 2 + (sex[todo] == 1)
    if len(todo):
        raise RuntimeError(f"could not allocate {len(todo)} unique identity numbers")
    return out


def legacy_15(id18: str) -> str:
    """The legacy 15-digit number of an 18-digit one (persons born 1900-1999)."""
    return id18[:6] + id18[8:17]


def with_bad_check(id18: str, k: int) -> str:
    right = id18[-1]
    wrong = [c for c in "0123456789X" if c != right]
    return id18[:-1] + wrong[k % len(wrong)]


# ---------------------------------------------------------------- USCC ----
_ORG_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code_check(body8: str) -> str:
    """GB 11714 organisation-code check character for the 8 body characters."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, _ORG_WEIGHTS))
    c = 11 - total % 11
    return "X" if c == 10 else "0" if c == 11 else str(c)


def make_uscc(authority: str, category: str, region: str, rng: np.random.Generator, letters: bool) -> str:
    """A GB 32100 code: registration authority + category + region + organisation code + check."""
    if letters:  # newer codes allocated with "MA…" style organisation codes
        body = "MA" + "".join(rng.choice(list(_ORG_ALPHABET), 6))
    else:
        body = "".join(rng.choice(list("0123456789"), 8))
    first17 = authority + category + region + body + org_code_check(body)
    return first17 + _uscc.calc_check_digit(first17)


def uscc_with_bad_check(code: str, k: int) -> str:
    right = code[-1]
    wrong = [c for c in _ORG_ALPHABET if c != right]
    return code[:-1] + wrong[k % len(wrong)]


def uscc_check_ok(code: str) -> bool:
    """Check character only (stdnum's ``validate`` also wants digits in positions 1-8, which
    GB 32100 does not: authority/category may be letters such as ``N2`` or ``Y1``)."""
    return len(code) == 18 and code[-1] == _uscc.calc_check_digit(code[:17])


# ---------------------------------------------------------------- mobile numbers ----
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "147", "150", "151", "152",
                   "153", "155", "156", "157", "158", "159", "166", "173", "176", "177", "178", "180", "181",
                   "182", "183", "185", "186", "187", "188", "189", "191", "198", "199")


def make_mobiles(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random 11-digit mainland mobile numbers (not checked for uniqueness)."""
    pre = rng.choice(np.array(MOBILE_PREFIXES, dtype=object), n)
    rest = rng.integers(0, 10 ** 8, n)
    return np.array([p + f"{r:08d}" for p, r in zip(pre, rest)], dtype=object)
