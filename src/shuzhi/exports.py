"""What the governance office takes away: the conflicts register and the quarantine as CSV files
Excel opens with the Chinese intact, and the published rule catalogue with its hit counts::

    >>> export_conflicts(spark, settings, Path("conflicts.csv"), status="open")    # doctest: +SKIP
    12
    >>> export_quarantine(spark, settings, Path("q.csv"), night="2026-11-27")       # doctest: +SKIP
    40
    >>> [r["hits"] for r in rules_report(spark, settings, "2026-11-27")][:3]        # doctest: +SKIP
    [17, 3, 0]

Every CSV is UTF-8 with a byte-order mark, CRLF line ends and RFC 4180 quoting, headers
``中文/english``, written to a temporary file in the target folder and renamed (a reader never
sees half a file). Identity numbers appear only masked (decrypted and masked inside Spark); the
encrypted raw records of the quarantine (``raw_record_enc``, ``record_enc``) are never selected.
"""
from __future__ import annotations

import contextlib
import csv
import os
import re
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from pyspark.sql import functions as F

from .access import Reader, read
from .config import Settings
from .crypto import Keyring, decrypt
from .delta import table_exists
from .errors import ShuzhiError, UsageError  # noqa: F401  (UsageError: re-exported for callers of exports)
from .frames import union_all
from .rules import ingest_reasons, load_rules
from .schemas import catalog
from .standards import ID_CHECK_CHARS, ID_WEIGHTS

CONFLICT_COLUMNS = [  # (english, 中文)
    ("conflict_id", "冲突编号"), ("rule_id", "规则编号"), ("rule_description", "规则说明"), ("severity", "严重程度"),
    ("departments", "涉及部门"), ("record_refs", "证据记录"), ("citizen_id_masked", "身份号码（脱敏）"),
    ("evidence", "证据说明"), ("first_seen", "首次发现"), ("last_seen", "最近发现"), ("status", "状态"),
    ("resolved_on", "解决日期"),
]
QUARANTINE_COLUMNS = [
    ("night", "批次日期"), ("source", "来源部门"), ("entity", "数据实体"), ("file", "文件"), ("locator", "位置"),
    ("stage", "阶段"), ("reason_code", "原因代码"), ("reason", "原因说明"), ("rule_detail", "详情"),
    ("record_id", "记录编号"), ("citizen_id_masked", "身份号码（脱敏）"),
]
QUARANTINE_SUMMARY_COLUMNS = [
    ("night", "批次日期"), ("source", "来源部门"), ("stage", "阶段"), ("reason_code", "原因代码"),
    ("reason", "原因说明"), ("records", "记录数"),
]
RULES_COLUMNS = [
    ("rule_id", "规则编号"), ("stage", "阶段"), ("action", "处理方式"), ("severity", "严重程度"), ("hits", "命中次数"),
    ("description_zh", "中文说明"), ("description_en", "英文说明"),
]
_RULES_KEYS = ("id", "stage", "action", "severity", "hits", "zh", "en")  # rules_report keys, in RULES_COLUMNS order
STATUSES = ("open", "resolved")
_YMD = re.compile(r"\d{4}-\d{2}-\d{2}")


class ExportError(UsageError):
    """A filter the export cannot use (bad date, unknown rule, source or status)."""


# ---------------------------------------------------------------- masking

def mask_citizen_id(s: str | None) -> str | None:
    """Masked identity number: an 18-character number keeps its region prefix (6) and its last
    4; anything else keeps its first 2 and last 2 (four characters or fewer: all masked).

    >>> mask_citizen_id("150105198503021234")
    '150105********1234'
    >>> mask_citizen_id("15010519850302123X")
    '150105********123X'
    >>> mask_citizen_id("150105850302123")
    '15***********23'
    >>> mask_citizen_id("1234")
    '****'
    >>> mask_citizen_id("") , mask_citizen_id(None) is None
    ('', True)
    """
    if s is None:
        return None
    n = len(s)
    if n == 18:
        return s[:6] + "*" * 8 + s[-4:]
    if n <= 4:
        return "*" * n
    return s[:2] + "*" * (n - 4) + s[-2:]


def mask_citizen_id_col(col):
    """``mask_citizen_id`` as a Spark column expression, so a decrypted number never leaves Spark."""

    n = F.length(col)
    return (F.when(n == 18, F.concat(F.substring(col, 1, 6), F.lit("*" * 8), F.substring(col, 15, 4)))
            .when(n <= 4, F.repeat(F.lit("*"), n))
            .otherwise(F.concat(F.substring(col, 1, 2), F.repeat(F.lit("*"), n - 4), F.substring(col, -2, 2))))


def _masked_identity(col, keyring):

    return mask_citizen_id_col(decrypt(col, keyring))


# ---------------------------------------------------------------- text next to a masked number

# The mask hides the 8 birth-date digits of an 18-character number, so no text exported beside
# it may name a date that, put back between the prefix and the suffix, rebuilds the number.
# Rules whose evidence may carry a date that is not a birth date (X_DECEASED_PAID: the death
# date) keep such a date unless it could rebuild the number (its check character would be valid;
# a date that could not is no clue: anyone can test it against the prefix and suffix); in every
# other row beside a masked number, every date is masked.
NON_BIRTH_DATE_RULES = frozenset({"X_DECEASED_PAID"})
_ID_RUN = re.compile(r"(?<![0-9])(?:\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
_DATE8 = re.compile(r"(?<![0-9])(?:1[89]|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![0-9])")
_DATE_SEP = re.compile(r"(?<![0-9])(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(\s*日)?(?![0-9])")


def rebuilds_number(masked: str, ymd: str) -> bool:
    """Whether ``ymd`` (8 digits) between a masked 18-character number's prefix and suffix gives a
    number whose GB 11643 check character is valid.

    >>> rebuilds_number("150105********1230", "19850302"), rebuilds_number("150105********1230", "19850303")
    (True, False)
    """

    n = masked[:6] + ymd + masked[14:]
    if len(n) != 18 or not n[:17].isdigit():
        return False
    return ID_CHECK_CHARS[sum(int(c) * w for c, w in zip(n[:17], ID_WEIGHTS)) % 11] == n[17].upper()


def mask_dates_beside(text: str | None, masked: str | None, rule_id: str | None = None) -> str | None:
    """``text`` exported in the same row as the masked identity number ``masked``: identity-number-
    like runs are masked like the number; if the row carries a masked number, every date
    (``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY/M/D``, ``YYYY年M月D日``) that could be the hidden birth date is
    masked — all of them, except in the rules of ``NON_BIRTH_DATE_RULES``, whose dates stay unless
    they would rebuild the number.

    >>> mask_dates_beside("birth date 1985-03-02 but the number encodes 19850302", "150105********1234")
    'birth date ****-**-** but the number encodes ********'
    >>> mask_dates_beside("死亡日期2026-10-01后仍发放养老金", "150105********1234", "X_DECEASED_PAID")
    '死亡日期2026-10-01后仍发放养老金'
    >>> mask_dates_beside("死亡日期1985年3月2日", "150105********1230", "X_DECEASED_PAID")
    '死亡日期****年**月**日'
    >>> mask_dates_beside("record 150105198503021234", None)
    'record 150105********1234'
    """
    if not text:
        return text
    text = _ID_RUN.sub(lambda m: mask_citizen_id(m.group(0)), text)
    if not masked:
        return text

    def hide(ymd: str) -> bool:
        if rule_id in NON_BIRTH_DATE_RULES and len(masked) == 18:
            return rebuilds_number(masked, ymd)
        return True

    def sep(m):
        y, mo, d, day = m.group(1), m.group(2), m.group(3), m.group(4)
        if not hide(f"{y}{int(mo):02d}{int(d):02d}"):
            return m.group(0)
        if "年" in m.group(0):
            return f"****年**月**{'日' if day else ''}"
        return "****-**-**"

    text = _DATE_SEP.sub(sep, text)
    return _DATE8.sub(lambda m: "********" if hide(m.group(0)) else m.group(0), text)


# ---------------------------------------------------------------- filters

def parse_night(night: str | None, what: str = "night") -> date | None:
    """``YYYY-MM-DD`` → date (``what`` names the argument in the message); raises ExportError with
    a one-line message.

    >>> parse_night("2026-11-25")
    datetime.date(2026, 11, 25)
    >>> parse_night("2026-13-45", "batch date")
    Traceback (most recent call last):
    ...
    shuzhi.exports.ExportError: batch date '2026-13-45' is not a date (expected YYYY-MM-DD, a real calendar date)
    """
    if night is None:
        return None
    s = str(night)
    try:
        if not _YMD.fullmatch(s):            # fromisoformat also takes 20261125 and 2026-W48-3
            raise ValueError(s)
        return date.fromisoformat(s)
    except ValueError:
        raise ExportError(f"{what} {night!r} is not a date (expected YYYY-MM-DD, a real calendar date)") from None


def check_source(source: str) -> str:
    """A department of ``schemas/feeds.yaml``; else a UsageError listing them (``Catalog.check_source``)."""

    return catalog().check_source(source)


def check_filters(kind: str, *, night: str | None = None, status: str | None = None, rule: str | None = None,
                  source: str | None = None) -> None:
    """Reject a filter that cannot match anything, naming it (``kind``: conflicts | quarantine)."""

    parse_night(night)
    if status is not None and status not in STATUSES:
        raise ExportError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if rule is not None:
        rules = load_rules()
        known = ({r for r in rules if rules[r].stage == "verify"} if kind == "conflicts"
                 else {r for r in rules if rules[r].stage == "clean"} | set(ingest_reasons()))
        if rule not in known:
            raise ExportError(f"rule {rule!r} is not a {'verify' if kind == 'conflicts' else 'clean-stage or ingest'} "
                              f"rule (see `shuzhi rules`)")
    if source is not None:
        check_source(source)


# ---------------------------------------------------------------- CSV

def _read_logged(spark, settings: Settings, table: str, **filters):
    """Exports read through the read interface: each export is an access event (who, role, table,
    the filters as its key range); the role defaults to the office's."""

    key_range = " AND ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or None
    reader = Reader.from_env(role=os.environ.get("SHUZHI_ROLE") or "governance_office")
    return read(spark, settings, table, reader=reader, describe=key_range)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (date, datetime)):
        return v.isoformat()
    return str(v)


def write_csv(out: Path, columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]],
              header: str = "{zh}/{en}") -> int:
    """Write ``rows`` under a ``中文/english`` header (``header``: the cell's format): UTF-8 with BOM, CRLF,
    RFC 4180 quoting, atomically (temporary file in the same folder, then rename). Returns the number of
    data rows."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as fh:
            w = csv.writer(fh, dialect="excel", lineterminator="\r\n")
            w.writerow([header.format(zh=zh, en=en) for en, zh in columns])
            for r in rows:
                w.writerow([_cell(v) for v in r])
                n += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return n


def summary_path(out: Path) -> Path:
    """Where the quarantine summary goes: ``<out stem>_summary.csv`` next to ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_summary.csv")


# ---------------------------------------------------------------- conflicts register

def export_conflicts(spark, settings: Settings, out: Path, *, night: str | None = None, status: str | None = None,
                     rule: str | None = None) -> int:
    """``gold/conflicts`` → CSV. ``night``: conflicts known by that night (``first_seen <= night``);
    ``status``/``rule``: exact. A register that does not exist yet gives a header-only file."""


    check_filters("conflicts", night=night, status=status, rule=rule)
    d = parse_night(night)
    path = settings.table_path("gold", "conflicts")
    rows: list = []
    if table_exists(spark, path):
        keyring = Keyring.load(settings.key_dir)
        df = _read_logged(spark, settings, "gold.conflicts", night=night, status=status, rule=rule)
        if d is not None:
            df = df.filter(F.col("first_seen") <= F.lit(d))
        if status is not None:
            df = df.filter(F.col("status") == status)
        if rule is not None:
            df = df.filter(F.col("rule_id") == rule)
        rows = (df.orderBy("first_seen", "rule_id", "conflict_id")
                .select("conflict_id", "rule_id", "severity",
                        F.array_join("departments", "、").alias("departments"),
                        F.array_join("record_refs", "; ").alias("record_refs"),
                        _masked_identity(F.col("citizen_id_enc"), keyring).alias("citizen_id_masked"),
                        "evidence", "first_seen", "last_seen", "status", "resolved_on")
                .collect())
    rules = load_rules()

    def line(r):
        zh = rules[r["rule_id"]].zh if r["rule_id"] in rules else ""
        return [r["conflict_id"], r["rule_id"], zh, r["severity"], r["departments"], r["record_refs"],
                r["citizen_id_masked"], mask_dates_beside(r["evidence"], r["citizen_id_masked"], r["rule_id"]),
                r["first_seen"], r["last_seen"], r["status"], r["resolved_on"]]

    return write_csv(out, CONFLICT_COLUMNS, (line(r) for r in rows))


# ---------------------------------------------------------------- quarantine (ingest + clean)

def _quarantine_df(spark, settings: Settings, *, night: str | None, source: str | None, rule: str | None,
                   identity: bool):
    """Both quarantines as one DataFrame of exportable columns (never the encrypted raw records);
    ``identity``: add the masked identity number (needs the keyring). None when neither table exists."""


    d = parse_night(night)
    parts = []
    for layer in ("bronze", "silver"):
        path = settings.table_path(layer, "quarantine")
        if not table_exists(spark, path):
            continue
        df = _read_logged(spark, settings, f"{layer}.quarantine", night=night, source=source, rule=rule)
        if d is not None:
            df = df.filter(F.col("_batch_date") == F.lit(d))
        if source is not None:
            df = df.filter(F.col("_source") == source)
        if rule is not None:
            df = df.filter(F.col("reason_code") == rule)
        cols = [F.col("_batch_date").alias("night"), F.col("_source").alias("source"), F.col("_entity").alias("entity"),
                F.col("_file").alias("file"), F.col("_row").cast("long").alias("row"), "locator", "stage",
                "reason_code", "rule_detail"]
        if layer == "silver":
            cols.append(F.col("record_id").cast("string").alias("record_id"))
            if identity:
                cols.append(_masked_identity(F.col("citizen_id_enc"), Keyring.load(settings.key_dir))
                            .alias("citizen_id_masked"))
        else:
            cols.append(F.lit(None).cast("string").alias("record_id"))
            if identity:
                cols.append(F.lit(None).cast("string").alias("citizen_id_masked"))
        parts.append(df.select(*cols))
    return union_all(parts)


def _reason_zh(stage: str | None, code: str | None) -> str:

    rules, ingest = load_rules(), ingest_reasons()
    if stage == "ingest" and code in ingest:
        return ingest[code].zh
    if code in rules:
        return rules[code].zh
    return ingest[code].zh if code in ingest else ""


def export_quarantine(spark, settings: Settings, out: Path, *, night: str | None = None, source: str | None = None,
                      rule: str | None = None) -> int:
    """``bronze/quarantine`` ∪ ``silver/quarantine`` → CSV, one row per quarantined record (a missing
    table is skipped). ``night`` = batch date, ``source``, ``rule`` = reason code; all exact."""
    check_filters("quarantine", night=night, source=source, rule=rule)
    df = _quarantine_df(spark, settings, night=night, source=source, rule=rule, identity=True)
    rows = [] if df is None else df.orderBy("night", "source", "stage", "file", "row", "reason_code").collect()
    return write_csv(out, QUARANTINE_COLUMNS, (
        [r["night"], r["source"], r["entity"], r["file"], r["locator"], r["stage"], r["reason_code"],
         _reason_zh(r["stage"], r["reason_code"]), mask_dates_beside(r["rule_detail"], r["citizen_id_masked"]),
         r["record_id"], r["citizen_id_masked"]]
        for r in rows))


def export_quarantine_summary(spark, settings: Settings, out: Path, *, night: str | None = None,
                              source: str | None = None, rule: str | None = None) -> int:
    """Quarantined records counted by night, source and reason (the stage is implied by the reason)
    → CSV (the CLI writes it to ``summary_path(out)``). Returns the number of count rows."""
    check_filters("quarantine", night=night, source=source, rule=rule)
    df = _quarantine_df(spark, settings, night=night, source=source, rule=rule, identity=False)
    rows = ([] if df is None else df.groupBy("night", "source", "stage", "reason_code").count()
            .orderBy("night", "source", "stage", "reason_code").collect())
    return write_csv(out, QUARANTINE_SUMMARY_COLUMNS, (
        [r["night"], r["source"], r["stage"], r["reason_code"], _reason_zh(r["stage"], r["reason_code"]), r["count"]]
        for r in rows))


# ---------------------------------------------------------------- rule catalogue

def rules_report(spark, settings: Settings, night: str | None = None) -> list[dict]:
    """Every rule of ``conf/rules.yaml`` with its hits from ``ops/rule_hits`` for ``night`` (all nights
    summed when None; 0 when the table does not exist yet)."""


    d = parse_night(night)
    hits: dict[str, int] = {}
    path = settings.table_path("ops", "rule_hits")
    if table_exists(spark, path):
        df = _read_logged(spark, settings, "ops.rule_hits", night=night)
        if d is not None:
            df = df.filter(F.col("batch_date") == F.lit(d))
        hits = {r["rule_id"]: int(r["hits"] or 0)
                for r in df.groupBy("rule_id").agg(F.sum("hits").alias("hits")).collect()}
    return [{"id": r.id, "stage": r.stage, "action": r.action, "severity": r.severity, "zh": r.zh, "en": r.en,
             "enabled": r.enabled, "hits": hits.get(r.id, 0)} for r in load_rules().values()]


def export_rules(report: list[dict], out: Path) -> int:
    """A ``rules_report`` → CSV (same format as the other exports)."""
    return write_csv(out, RULES_COLUMNS, ([r[k] for k in _RULES_KEYS] for r in report))
