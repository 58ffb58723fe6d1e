"""Department feedback lists (数据回流): for ONE department and one night, every record of theirs the
lake could not take as delivered — quarantined at ingest (``bronze.quarantine``) or by the clean
stage (``silver.quarantine``), corrected or flagged by a clean rule (``silver.findings``, actions
``FINDING_ACTIONS``), or named by a conflict of the register open that night (``gold.conflicts``) —
with where it is (file, line), the field and its data element, the rule and its Chinese text, what
was delivered (L3/L4 values masked inside Spark) and what the lake expects::

    >>> export_feedback(spark, settings, Path("police.csv"), department="police",
    ...                 night="2026-11-27")                                       # doctest: +SKIP
    41

The CSV is UTF-8 with a byte-order mark, CRLF, RFC 4180 quoting (``exports.write_csv``), headers
``中文（english）``. Only the department's records are read into it: the quarantines and findings
are filtered on ``_source``, the register's evidence records on the ``<department>/`` prefix of
``record_refs``, and another department's record reference in an evidence text is cut to its
department; ``feedback_lines`` refuses a row of another department.

Layout: the column builders and ``*_rows`` functions are pure (DataFrames and plain values in,
DataFrame out); ``feedback_lines`` turns the collected rows into CSV lines (pure Python);
``export_feedback`` is the shell that reads the lake and writes the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .config import SCHEMAS_DIR, Settings, load_yaml
from .crypto import Keyring
from .delta import table_exists
from .exports import ExportError, _read_logged, mask_citizen_id_col, mask_dates_beside, parse_night, write_csv
from .frames import union_all
from .rules import ingest_reasons, load_rules
from .schemas import Catalog, Entity, Field, catalog
from .stages.bronze import line_of

FEEDBACK_COLUMNS = [  # (english, 中文)
    ("night", "批次日期"), ("table", "数据表"), ("record_id", "记录编号"), ("file", "文件"), ("locator", "位置"),
    ("field", "字段"), ("element", "数据元"), ("action", "处理"), ("rule_id", "规则编号"), ("rule", "规则说明"),
    ("delivered", "交付值（敏感字段已脱敏）"), ("expected", "湖内要求或更正值"), ("detail", "详情"),
]
HEADER = "{zh}（{en}）"

# what silver.findings rows go to the department: a correction (the lake changed their value) and a
# flag (kept as delivered but wrong). `quarantine` hits are the silver.quarantine rows already;
# `supersede` (an older version or an exact duplicate giving way) is no fault of a value.
FINDING_ACTIONS = ("correct", "flag")
ACTION_ZH = {"ingest": "入湖隔离（未入库）", "quarantine": "清洗隔离（未入库）", "correct": "已按规则更正",
             "flag": "已标记（按原值保留）", "conflict": "跨部门冲突（未决）"}
KIND_ORDER = {k: i for i, k in enumerate(ACTION_ZH)}

# The data elements a cross-verify rule is about: a record named by a conflict is shown at every
# field of its entity with one of these elements (none: the record as a whole).
CONFLICT_ELEMENTS = {
    "X_DECEASED_PAID": ("person_status", "deregistration_date", "death_date", "case_status", "payment_date"),
    "X_NAME_MISMATCH": ("person_name",),
    "X_BIRTH_MISMATCH": ("birth_date",),
    "X_ID_BIRTH_SEX": ("birth_date", "sex"),
    "X_ABSENT_POLICE": ("citizen_id",),
    "X_VACANT_OCCUPIED": ("house_use", "house_code"),
    "X_USCC_INVALID": ("uscc",),
    "X_DUP_PERSON": ("citizen_id",),
}
HIDDEN = "******"          # an L3/L4 value that has no partial mask (address, amount, date, diagnosis …)
WHOLE_RECORD = "（整条记录）"

# one frame for every kind of row, so the parts union by name
ROW_SCHEMA = ("night date, entity string, record_id string, file string, row long, locator string, field string, "
              "kind string, rule_id string, delivered string, corrected string, detail string, masked_id string, "
              "others string")


class FeedbackError(ExportError):
    """A department or night the feedback export cannot use, or a row that is not the department's."""


def check_department(department: str) -> str:
    """A department (source) of ``schemas/feeds.yaml``; else a one-line FeedbackError listing them."""
    sources = catalog().sources
    if department not in sources:
        raise FeedbackError(f"department {department!r} is not one of {', '.join(sources)}")
    return department


# ---------------------------------------------------------------- column logic (pure)

def masked_value_col(col, element: str):
    """An L3/L4 plaintext as it may leave Spark: identity numbers as ``exports.mask_citizen_id``
    (each of a list), a name keeps its first character (the surname), a phone its first 3 and last 4
    digits; any other L3/L4 value is hidden whole (``HIDDEN``). Null stays null."""
    n = F.length(col)
    if element == "citizen_id":
        out = mask_citizen_id_col(col)
    elif element == "citizen_id_list":
        out = F.array_join(F.transform(F.split(col, ";"), lambda p: mask_citizen_id_col(F.trim(p))), ";")
    elif element == "person_name":
        out = F.when(n <= 1, F.repeat(F.lit("*"), n)).otherwise(
            F.concat(F.substring(col, 1, 1), F.repeat(F.lit("*"), n - 1)))
    elif element == "phone":
        out = F.when(n >= 7, F.concat(F.substring(col, 1, 3), F.repeat(F.lit("*"), n - 7), F.substring(col, -4, 4))
                     ).otherwise(F.repeat(F.lit("*"), n))
    else:
        out = F.lit(HIDDEN)
    return F.when(col.isNotNull(), out)


def _decrypt(col, keyring: Keyring):
    """Plaintext of a ciphertext, null when it is not one of this keyring's (never an error)."""
    return F.try_aes_decrypt(col, F.lit(keyring.aes_key), F.lit("GCM")).cast("string")


def delivered_col(entity: Entity, field_col, value_of, keyring: Keyring):
    """The delivered value of the field named by ``field_col`` (a delivered field name), as text:
    ``value_of(field)`` gives its column — ciphertext for an L3/L4 field, which is decrypted and
    masked here. A name that is no field of the entity (``""``: a record-level rule) gives null."""
    out = F.lit(None).cast("string")
    for f in entity.fields:
        v = value_of(f)
        text = masked_value_col(_decrypt(v, keyring), f.element.name) if f.is_encrypted else v.cast("string")
        out = F.when(field_col == F.lit(f.name), text).otherwise(out)
    return out


def masked_id_col(entity: Entity, field_col, delivered):
    """The masked identity number a row shows (when its field is an identity number), so dates
    beside it can be masked (``exports.mask_dates_beside``)."""
    ids = [f.name for f in entity.fields if f.element.name == "citizen_id"]
    return F.when(field_col.isin(ids), delivered) if ids else F.lit(None).cast("string")


_ID_RUN_JAVA = r"(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])"


def _select_row(df: DataFrame, **cols) -> DataFrame:
    names = [c.split()[0] for c in ROW_SCHEMA.split(", ")]
    types = dict(c.split() for c in ROW_SCHEMA.split(", "))
    return df.select(*[(cols[n] if n in cols else F.lit(None)).cast(types[n]).alias(n) for n in names])


# ---------------------------------------------------------------- the parts (pure)

def ingest_rows(bq_df: DataFrame, department: str, night: date, keyring: Keyring) -> DataFrame:
    """``bronze.quarantine`` rows of the department's night. The raw line is never shown (it holds
    names and addresses): delivered says so and lists the identity numbers found in it, masked."""
    df = bq_df.filter((F.col("_source") == department) & (F.col("_batch_date") == F.lit(night)))
    raw = _decrypt(F.col("raw_record_enc"), keyring)
    ids = F.regexp_extract_all(raw, F.lit(_ID_RUN_JAVA), 1)
    masked = F.array_join(F.transform(ids, lambda i: mask_citizen_id_col(i)), "、")
    first = F.try_element_at(F.transform(ids, lambda i: mask_citizen_id_col(i)), F.lit(1))
    delivered = F.concat(F.lit("无法解析的整条记录（内容含敏感信息，不予显示"),
                         F.when(F.size(ids) > 0, F.concat(F.lit("；其中身份号码："), masked)).otherwise(F.lit("")),
                         F.lit("）"))
    return _select_row(df, night=F.col("_batch_date"), entity=F.col("_entity"), file=F.col("_file"),
                       row=F.col("_row"), locator=F.col("locator"), field=F.lit(""), kind=F.lit("ingest"),
                       rule_id=F.col("reason_code"), delivered=delivered, detail=F.col("rule_detail"),
                       masked_id=first)


def clean_quarantine_rows(sq_df: DataFrame, department: str, night: date, entity: Entity,
                          keyring: Keyring) -> DataFrame:
    """``silver.quarantine`` rows of one entity of the department's night; the delivered value of
    the rule's field is read from the encrypted bronze row (``record_enc``: the row as JSON, an
    L3/L4 field there as base64 of its ciphertext)."""
    df = sq_df.filter((F.col("_source") == department) & (F.col("_entity") == entity.name)
                      & (F.col("_batch_date") == F.lit(night)))
    rec = _decrypt(F.col("record_enc"), keyring)

    def value_of(f: Field):
        v = F.get_json_object(rec, f"$.{f.name}")
        return F.try_to_binary(v, F.lit("base64")) if f.is_encrypted else v

    delivered = delivered_col(entity, F.col("field"), value_of, keyring)
    return _select_row(df, night=F.col("_batch_date"), entity=F.col("_entity"), record_id=F.col("record_id"),
                       file=F.col("_file"), row=F.col("_row"), locator=F.col("locator"),
                       field=F.coalesce(F.col("field"), F.lit("")), kind=F.lit("quarantine"),
                       rule_id=F.col("reason_code"), delivered=delivered, detail=F.col("rule_detail"),
                       masked_id=masked_id_col(entity, F.col("field"), delivered))


def findings_rows(findings_df: DataFrame, department: str, night: date, entity: Entity, keyring: Keyring,
                  bronze_df: DataFrame | None = None) -> DataFrame:
    """``silver.findings`` rows (actions ``FINDING_ACTIONS``) of one entity of the department's
    night. An L1/L2 field shows its ``before`` and, when corrected, its ``after``; an L3/L4 field (whose
    findings keep no value) shows its delivered value masked, from the bronze row (``bronze_df``;
    absent: null). A flagged value was kept as delivered: what the lake expects is the requirement."""
    df = findings_df.filter((F.col("_source") == department) & (F.col("_entity") == entity.name)
                            & (F.col("_batch_date") == F.lit(night)) & F.col("action").isin(*FINDING_ACTIONS))
    secret = [f for f in entity.fields if f.is_encrypted]
    if bronze_df is not None and secret:
        b = bronze_df.filter(F.col("_batch_date") == F.lit(night)).select(
            "_file", "_row", *[F.col(f.name).alias(f"__b_{f.name}") for f in secret])
        df = df.join(b, ["_file", "_row"], "left")
        enc = delivered_col(entity, F.col("field"), lambda f: F.col(f"__b_{f.name}") if f.is_encrypted
                            else F.lit(None), keyring)
    else:
        enc = F.lit(None).cast("string")
    secret_names = [f.name for f in secret]
    is_secret = F.col("field").isin(secret_names) if secret_names else F.lit(False)
    delivered = F.when(is_secret, enc).otherwise(F.col("before"))
    return _select_row(df, night=F.col("_batch_date"), entity=F.col("_entity"), record_id=F.col("record_id"),
                       file=F.col("_file"), row=F.col("_row"), locator=line_of(entity.format, F.col("_row")),
                       field=F.coalesce(F.col("field"), F.lit("")), kind=F.col("action"), rule_id=F.col("rule_id"),
                       delivered=delivered,
                       corrected=F.when(~is_secret & (F.col("action") == "correct"), F.col("after")),
                       detail=F.col("change"),
                       masked_id=masked_id_col(entity, F.col("field"), delivered))


def conflict_refs(conflicts_df: DataFrame, department: str, night: date) -> DataFrame:
    """The department's records named by a conflict open on ``night`` (first seen by then, not
    resolved by then): conflict_id, rule_id, severity, evidence, the other departments, entity, record_id."""
    open_then = ((F.col("first_seen") <= F.lit(night))
                 & (F.col("resolved_on").isNull() | (F.col("resolved_on") > F.lit(night))))
    df = conflicts_df.filter(open_then & F.array_contains("departments", department))
    prefix = f"{department}/"
    refs = df.select("conflict_id", "rule_id", "severity", "evidence",
                     F.array_join(F.array_sort(F.array_remove("departments", department)), ",").alias("others"),
                     F.explode("record_refs").alias("ref"))
    refs = refs.filter(F.col("ref").startswith(prefix))
    parts = F.split(F.col("ref"), "/", 3)
    return refs.select("conflict_id", "rule_id", "severity", "evidence", "others",
                       parts[1].alias("entity"), parts[2].alias("record_id")).dropDuplicates(
        ["conflict_id", "entity", "record_id"])


def conflict_rows(refs_df: DataFrame, entity: Entity, silver_df: DataFrame | None, night: date) -> DataFrame:
    """``conflict_refs`` of one entity, with the file and line of the version silver holds
    (``silver_df``: record_id, _file, _row; absent: no location)."""
    df = refs_df.filter(F.col("entity") == entity.name)
    if silver_df is not None:
        df = df.join(silver_df.select("record_id", "_file", "_row"), "record_id", "left")
    else:
        df = df.withColumn("_file", F.lit(None).cast("string")).withColumn("_row", F.lit(None).cast("long"))
    return _select_row(df, night=F.lit(night), entity=F.col("entity"), record_id=F.col("record_id"),
                       file=F.col("_file"), row=F.col("_row"),
                       locator=F.when(F.col("_row").isNotNull(), line_of(entity.format, F.col("_row"))),
                       field=F.lit(None), kind=F.lit("conflict"), rule_id=F.col("rule_id"),
                       delivered=F.col("evidence"),
                       detail=F.concat(F.lit("冲突编号 "), F.col("conflict_id"), F.lit("；严重程度 "),
                                       F.col("severity")),
                       others=F.col("others"))


# ---------------------------------------------------------------- text of a row (pure Python)

@dataclass(frozen=True)
class Texts:
    """The plain values ``feedback_lines`` needs: rule descriptions, ingest reason texts, department names."""
    rules_zh: Mapping[str, str]
    ingest_zh: Mapping[str, str]
    departments_zh: Mapping[str, str]

    @classmethod
    def load(cls, cat: Catalog) -> "Texts":
        return cls({r.id: r.zh for r in load_rules().values()}, {c: r.zh for c, r in ingest_reasons().items()},
                   {s: _source_zh(s) for s in cat.sources})


def _source_zh(source: str) -> str:
    return str(load_yaml("feeds.yaml", SCHEMAS_DIR)["sources"][source].get("name_zh", source))


def requirement_zh(f: Field, rule_id: str, cat: Catalog) -> str:
    """What the lake requires of field ``f``, from its data element in ``schemas/``.

    >>> pop = catalog().entity("police", "population")
    >>> requirement_zh(pop.field("XBDM"), "CODE_UNKNOWN", catalog())
    '性别：符合 GB/T 2261.1；取代码表 sex 中的代码（0=未知的性别、1=男、2=女、9=未说明的性别）'
    >>> requirement_zh(pop.field("CSRQ"), "DATE_LAYOUT", catalog())
    '出生日期：真实存在的日期，格式 yyyyMMdd'
    """
    el = f.element
    parts = []
    if f.required or rule_id in ("ID_EMPTY", "NAME_EMPTY"):
        parts.append("必填")
    if el.standard:
        parts.append(f"符合 {el.standard}")
    if el.code_list:
        codes = cat.code_list(el.code_list).codes
        sample = "、".join(f"{k}={v}" for k, v in list(codes.items())[:6]) + ("等" if len(codes) > 6 else "")
        parts.append(f"取代码表 {el.code_list} 中的代码（{sample}）")
    if el.pattern:
        parts.append(f"格式 {el.pattern}")
    if el.type in ("date", "timestamp"):
        parts.append("真实存在的" + ("日期" if el.type == "date" else "时间") + (f"，格式 {f.form}" if f.form else ""))
    if rule_id == "DATE_FUTURE":
        parts.append("不晚于批次日期")
    if el.name == "money_yuan":
        parts.append("非负金额（元，两位小数）")
    if el.name == "phone":
        parts.append("11位手机号或带区号的固定电话，不含+86、空格或连字符")
    if el.name == "person_name":
        parts.append("无首尾空格，少数民族姓名间隔号为“·”")
    return f"{el.name_zh}：" + ("；".join(parts) if parts else "符合数据元标准")


def ingest_requirement_zh(entity: Entity, reason: str) -> str:
    """What a delivered record must be for the ingest stage to read it (SPEC)."""
    if reason == "RECORD_ID_MISSING":
        return f"每条记录须有记录标识 {entity.record_id}（非空）"
    return {"csv": f"一行一条完整记录：{len(entity.fields)}个字段，与表头一致（RFC 4180引号规则）",
            "jsonl": f"一行一个可解析的JSON对象，含记录标识 {entity.record_id}",
            "xml": f"格式正确的<resident>元素，含记录标识 {entity.record_id}"}.get(
        entity.format, "符合接口规范的一条完整记录")


_REF = re.compile(r"\b([a-z_]+)/([a-z_]+)/([A-Za-z0-9_.\-]+)")


def scrub_refs(text: str | None, department: str) -> str | None:
    """Another department's record references in a text cut to their department (``health/…``).

    >>> scrub_refs("the same identity number as police record police/population/P1, not health/residents/H9", "police")
    'the same identity number as police record police/population/P1, not health/…'
    """
    if not text:
        return text
    return _REF.sub(lambda m: m.group(0) if m.group(1) == department else f"{m.group(1)}/…", text)


def _fields_for(entity: Entity, row: Mapping[str, Any]) -> list[Field]:
    if row["kind"] == "conflict":
        wanted = CONFLICT_ELEMENTS.get(row["rule_id"], ())
        return [f for f in entity.fields if f.element.name in wanted]
    name = row.get("field") or ""
    return [f for f in entity.fields if f.name == name]


def feedback_lines(rows: Iterable[Mapping[str, Any]], department: str, cat: Catalog, texts: Texts) -> list[list]:
    """Collected rows (``ROW_SCHEMA``) → CSV lines in ``FEEDBACK_COLUMNS`` order, sorted by table,
    file, position and kind. Dates beside a record's masked identity number (anywhere in the file)
    are masked in every cell of that record (``exports.mask_dates_beside``). Raises FeedbackError for
    a row of an entity that is not the department's."""
    rows = [dict(r) for r in rows]
    entities = cat.sources[department]
    masked: dict[tuple, str] = {}
    for r in rows:
        if r["entity"] not in entities:
            raise FeedbackError(f"a feedback row of {department} names entity {r['entity']!r}, which is not "
                                f"one of {department}'s ({', '.join(entities)})")
        key = (r["entity"], r["record_id"] or f"{r['file']}#{r['row']}")
        if r.get("masked_id") and len(r["masked_id"]) == 18:
            masked.setdefault(key, r["masked_id"])
    out = []
    for r in sorted(rows, key=lambda r: (r["entity"], r["file"] or "", r["row"] if r["row"] is not None else -1,
                                         KIND_ORDER.get(r["kind"], 9), r["rule_id"] or "", r["field"] or "")):
        e = entities[r["entity"]]
        m = masked.get((r["entity"], r["record_id"] or f"{r['file']}#{r['row']}"))
        fields = _fields_for(e, r)
        kind = r["kind"]
        if kind == "ingest":
            rule = texts.ingest_zh.get(r["rule_id"], "")
            expected = ingest_requirement_zh(e, r["rule_id"])
        elif kind == "conflict":
            rule = texts.rules_zh.get(r["rule_id"], "")
            others = [texts.departments_zh.get(o, o) for o in (r.get("others") or "").split(",") if o]
            expected = ("与" + "、".join(others) + "的记录一致（请核实后在源头更正）" if others
                        else "记录间一致（请核实后在源头更正）")
        else:
            rule = texts.rules_zh.get(r["rule_id"], "")
            expected = r["corrected"] if r.get("corrected") not in (None, "") else (
                "；".join(requirement_zh(f, r["rule_id"], cat) for f in fields) or "符合数据元标准")
        delivered = r["delivered"]
        if kind == "conflict":
            delivered = scrub_refs(delivered, department)
        cells = [mask_dates_beside(v, m) if isinstance(v, str) else v
                 for v in (delivered, expected, scrub_refs(r["detail"], department))]
        out.append([r["night"], e.name_zh, r["record_id"] or "", r["file"] or "", r["locator"] or "",
                    "、".join(f.name for f in fields) if fields else (r["field"] or WHOLE_RECORD),
                    "、".join(f.element.name_zh for f in fields), ACTION_ZH.get(kind, kind), r["rule_id"], rule,
                    *cells])
    return out


# ---------------------------------------------------------------- the shell

def _read(spark, settings: Settings, key: str, **filters):
    layer, name = key.split(".", 1)
    if not table_exists(spark, settings.table_path(layer, name)):
        return None
    return _read_logged(spark, settings, key, **filters)


def _has_rows(df: DataFrame) -> bool:
    return bool(df.limit(1).collect())


def feedback_frame(spark, settings: Settings, department: str, night: date, keyring: Keyring) -> DataFrame | None:
    """Every feedback row of the department's night as one DataFrame (``ROW_SCHEMA``), None if
    there is nothing to read. Reads through the logged read interface (role: the office's)."""
    cat = catalog()
    entities = cat.entities(department)
    f = dict(night=night.isoformat(), source=department)
    parts: list[DataFrame] = []
    bq = _read(spark, settings, "bronze.quarantine", **f)
    if bq is not None:
        parts.append(ingest_rows(bq, department, night, keyring))
    sq = _read(spark, settings, "silver.quarantine", **f)
    fi = _read(spark, settings, "silver.findings", **f)
    for e in entities:
        if sq is not None:
            parts.append(clean_quarantine_rows(sq, department, night, e, keyring))
        if fi is not None:
            mine = fi.filter((F.col("_source") == department) & (F.col("_entity") == e.name)
                             & (F.col("_batch_date") == F.lit(night)) & F.col("action").isin(*FINDING_ACTIONS))
            secret = [x.name for x in e.fields if x.is_encrypted]
            bronze = None
            if secret and _has_rows(mine.filter(F.col("field").isin(secret))):
                bronze = _read(spark, settings, f"bronze.{e.table_name}", **f)
            parts.append(findings_rows(mine, department, night, e, keyring, bronze))
    gc = _read(spark, settings, "gold.conflicts", night=night.isoformat(), department=department)
    if gc is not None:
        refs = conflict_refs(gc, department, night).cache()
        for e in entities:
            ids = [r["record_id"] for r in refs.filter(F.col("entity") == e.name).select("record_id").collect()]
            if not ids:
                continue
            silver = _read(spark, settings, f"silver.{e.table_name}", department=department, records=len(ids))
            if silver is not None:
                silver = silver.filter(F.col("record_id").isin(ids))
            parts.append(conflict_rows(refs, e, silver, night))
    return union_all(parts) if parts else None


def export_feedback(spark, settings: Settings, out: Path, *, department: str, night: str) -> int:
    """The department's feedback list of ``night`` → CSV (``FEEDBACK_COLUMNS``); tables that do not
    exist yet are skipped (nothing to read: a header-only file). Returns the number of rows."""
    check_department(department)
    d = parse_night(night)
    if d is None:
        raise FeedbackError("a feedback list is for one night: --night YYYY-MM-DD")
    keyring = Keyring.load(settings.key_dir)
    df = feedback_frame(spark, settings, department, d, keyring)
    rows = [] if df is None else [r.asDict() for r in df.collect()]
    cat = catalog()
    lines = feedback_lines(rows, department, cat, Texts.load(cat))
    return write_csv(out, FEEDBACK_COLUMNS, lines, header=HEADER)


def columns_header(columns: Sequence[tuple[str, str]] = FEEDBACK_COLUMNS) -> list[str]:
    """The CSV's header cells, Chinese first (English in brackets)."""
    return [HEADER.format(zh=zh, en=en) for en, zh in columns]
