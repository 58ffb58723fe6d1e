"""Column logic for data-element standards (pure Column → Column functions).

GB 11643-1999 citizen identity numbers: 17 digits + ISO 7064 MOD 11-2 check character.

    >>> from pyspark.sql import functions as F                  # doctest: +SKIP
    >>> df.select(citizen_id_normalised(F.col("GMSFHM")))       # doctest: +SKIP
"""
from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
FULLWIDTH = "０１２３４５６７８９Ｘｘ"
HALFWIDTH = "0123456789XX"


def id_check_char(first17: Column) -> Column:
    """The GB 11643 check character for a column of 17 digits (null if not 17 digits)."""
    total = sum(F.substring(first17, i + 1, 1).try_cast("int") * w for i, w in enumerate(ID_WEIGHTS))
    return F.when(first17.rlike(r"^\d{17}$"),
                  F.substring(F.lit(ID_CHECK_CHARS), (total % 11).cast("int") + 1, 1))


def citizen_id_stripped(col: Column) -> Column:
    """Full-width → ASCII, spaces, hyphens and dots dropped, upper case (no lifting, no checks)."""
    return F.upper(F.regexp_replace(F.translate(col, FULLWIDTH, HALFWIDTH), r"[\s\u3000\-\.·]", ""))


def citizen_id_lifted(s: Column) -> Column:
    """A stripped number with a legacy 15-digit number lifted to 18 (century 19, check char); empty → null.
    Pass a column reference (not a big expression): ``s`` is used several times."""
    first17 = F.concat(F.substring(s, 1, 6), F.lit("19"), F.substring(s, 7, 9))
    lifted = F.when(s.rlike(r"^\d{15}$"), F.concat(first17, id_check_char(first17))).otherwise(s)
    return F.when(lifted == "", F.lit(None)).otherwise(lifted)


def citizen_id_normalised(col: Column) -> Column:
    """Normalise an identity number as delivered: full-width → ASCII, drop spaces, hyphens and
    dots, upper-case ``x``, and lift a legacy 15-digit number to 18 (century 19, check char).
    Does not validate: a wrong check character stays wrong. Empty → null."""
    return citizen_id_lifted(citizen_id_stripped(col))


def citizen_id_normalised_py(value: str | None) -> str | None:
    """The same normalisation in Python (for exports, tests and the CLI)."""
    if value is None:
        return None
    s = value.translate(str.maketrans(FULLWIDTH, HALFWIDTH))
    s = "".join(ch for ch in s if not ch.isspace() and ch not in "-.·").upper()
    if len(s) == 15 and s.isdigit():
        first17 = s[:6] + "19" + s[6:]
        total = sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS))
        s = first17 + ID_CHECK_CHARS[total % 11]
    return s or None

