"""The ingest stage (delivery → bronze): what every bronze table and the ingest quarantine share
(lineage columns, reason codes, locators), and the pure transforms from the records a reader
parsed to bronze rows (L3/L4 encrypted, tokens, lineage) and quarantine rows (reason, locator,
the raw text encrypted). Declared once; the ingest job writes them and the gate baseline checks
them.

    >>> from shuzhi.rules import ingest_reasons
    >>> sorted(INGEST_CODES) == sorted(ingest_reasons())      # every code detected is described, and no other
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..crypto import Keyring, encrypt, with_protected_fields
from ..readers import CORRUPT
from ..schemas import Entity

LINEAGE_COLS = ["_source", "_entity", "_batch_date", "_file", "_row", "_delivery_id", "_run_id", "_loaded_at",
                "_encoding", "_key_id"]

# The quarantine reason codes this stage detects (``with_reason``); their descriptions are data,
# in conf/rules.yaml ``ingest`` (``shuzhi.rules.ingest_reasons``).
INGEST_CODES = ("CSV_TOO_FEW_FIELDS", "CSV_TOO_MANY_FIELDS", "CSV_MALFORMED", "JSON_UNPARSABLE", "XML_MALFORMED",
                "RECORD_ID_MISSING", "MALFORMED")

# Whole-delivery rejections (ops.deliveries reason_code): nothing of the delivery is loaded.
# code: (English, Chinese). The README lists them; tests/test_contract.py plants each one.
REJECTION_REASONS = {
    "MANIFEST_MISSING": (
        "no manifest.json in the delivery folder (it is written last: delivery incomplete)",
        "交付目录中没有manifest.json（交付未完成）",
    ),
    "MANIFEST_UNPARSABLE": (
        "manifest.json is not UTF-8 JSON (or nested too deep, or too large)",
        "manifest.json不是可解析的UTF-8 JSON",
    ),
    "MANIFEST_INVALID": (
        "manifest.json breaks schemas/manifest.schema.json (a key missing, a wrong type or range)",
        "manifest.json不符合清单规范（缺少字段、类型或取值范围错误）",
    ),
    "MANIFEST_MISMATCH": (
        "the manifest names another source or batch date than its folder",
        "清单中的部门或批次日期与所在目录不一致",
    ),
    "BATCH_DATE_INVALID": (
        "the batch-date folder is not a real date written YYYY-MM-DD",
        "批次日期目录名不是YYYY-MM-DD格式的有效日期",
    ),
    "BATCH_DATE_FUTURE": ("the delivery is dated after today", "交付的批次日期晚于今天"),
    "DELIVERY_EMPTY": ("a full delivery that lists no file", "全量交付未列出任何文件"),
    "FILE_NAME_INVALID": (
        "a listed file name is not the SPEC's name for its entity and batch date",
        "文件名不是接口规范规定的名称",
    ),
    "FILE_LISTED_TWICE": ("the manifest lists one file more than once", "清单重复列出同一文件"),
    "ENTITY_LISTED_TWICE": (
        "the manifest lists two files for one entity (SPEC: one file an entity)",
        "清单为同一实体列出了两个文件",
    ),
    "UNKNOWN_ENTITY": ("a listed entity is not one of the source's entities", "清单中的实体不属于该部门"),
    "ENCODING_INVALID": (
        "the declared encoding is not one the SPEC allows for the format",
        "声明的字符编码不被接口规范允许",
    ),
    "ENCODING_MISMATCH": (
        "the bytes are in no encoding the SPEC allows (UTF-16, NUL bytes, invalid UTF-8/GB18030)",
        "文件字节不是接口规范允许的编码",
    ),
    "UNSAFE_PATH": (
        "a symlink or non-regular file in the delivery, or a path outside the landing root",
        "交付中含符号链接、非普通文件或落地区之外的路径",
    ),
    "FILE_MISSING": ("the manifest names a file that is not in the folder", "清单列出的文件不存在"),
    "SHA256_MISMATCH": ("a file's bytes do not hash to the manifest's sha256", "文件的SHA-256与清单不符"),
    "ROW_COUNT_MISMATCH": (
        "a file holds another number of records than the manifest says (counting rule: README)",
        "文件记录数与清单不符",
    ),
    "HEADER_MISMATCH": (
        "a CSV header or Parquet column set is not the SPEC's (missing, renamed or unknown column)",
        "CSV表头或Parquet列与接口规范不符（缺列、改名或多列）",
    ),
    "COLUMN_TYPE_MISMATCH": ("a Parquet column has another type than the SPEC's", "Parquet列类型与接口规范不符"),
    "FIELD_MISSING": ("a required JSON key or XML element is absent from every record", "所有记录都缺少必填字段"),
    "PARQUET_UNREADABLE": (
        "the file is not a readable Parquet file (corrupt footer, not Parquet)",
        "文件不是可读取的Parquet文件",
    ),
    "JSON_NOT_LINES": ("a JSON Lines line holds a JSON array, not one object", "JSON Lines的某行是数组而不是单个对象"),
    "LINE_END_INVALID": ("a lone CR line end in a CSV file whose quoted fields span lines", "CSV中出现孤立的CR换行"),
    "XML_DOCTYPE": (
        "the XML file declares a DOCTYPE (entity expansion and external entities are refused)",
        "XML文件含DOCTYPE声明（拒绝实体展开和外部实体）",
    ),
}


def line_of(fmt: str, row_col, line_events=(), lines_exact: bool = True):
    """Human locator of a record: CSV line numbers count the header line. ``line_events``: (record,
    extra lines before it) where blank lines or quoted line breaks part records from lines
    (``shuzhi.filescan.FileScan.events``); without exact events a text record is named by number."""
    if fmt in ("csv", "jsonl"):
        if not lines_exact:
            return F.concat(F.lit("record "), row_col.cast("string"))
        line = row_col + (1 if fmt == "csv" else 0)
        if line_events:
            ev = F.array(*[F.struct(F.lit(r).cast("long").alias("r"), F.lit(n).cast("long").alias("n"))
                           for r, n in line_events])
            line = line + F.aggregate(F.filter(ev, lambda e: e["r"] <= row_col), F.lit(0).cast("long"),
                                      lambda acc, e: acc + e["n"])
        return F.concat(F.lit("line "), line.cast("string"))
    return {"xml": F.concat(F.lit("<resident> #"), row_col.cast("string"))}.get(
        fmt, F.concat(F.lit("row "), row_col.cast("string")))


# ---------------------------------------------------------------- delivered records → bronze / quarantine

@dataclass(frozen=True)
class Lineage:
    source: str
    entity: str
    batch_date: str
    file: str
    delivery_id: str
    run_id: str
    loaded_at: datetime
    encoding: str


def is_loadable(entity: Entity):
    """A record bronze can hold: parsed, and carrying its record id (SPEC identifies records by it)."""
    rid = F.col(entity.record_id)
    return F.col(CORRUPT).isNull() & rid.isNotNull() & (F.trim(rid.cast("string")) != "")


def filter_well_formed(raw_df: DataFrame, entity: Entity) -> DataFrame:
    return raw_df.filter(is_loadable(entity)).drop(CORRUPT)


def filter_malformed(raw_df: DataFrame, entity: Entity) -> DataFrame:
    """Records bronze cannot hold, with their raw text (a parsed record without its id: as JSON)."""
    raw_text = F.coalesce(F.col(CORRUPT), F.to_json(F.struct(*[F.col(n) for n in entity.field_names])))
    return (
        raw_df.filter(~is_loadable(entity))
        .withColumn("__parsed", F.col(CORRUPT).isNull() | (F.col(CORRUPT) == "<resident/>"))
        .withColumn(CORRUPT, raw_text)
    )


def csv_field_count(raw_col):
    """Number of fields of a raw CSV line (commas outside double quotes, RFC 4180)."""
    return F.size(F.split(raw_col, r',(?=(?:[^"]*"[^"]*")*[^"]*$)', -1))


def with_reason(malformed_df: DataFrame, entity: Entity) -> DataFrame:
    """Classify malformed records: ``reason_code`` and a short ``rule_detail``."""
    df = _with_format_reason(malformed_df, entity)
    missing_id = F.col("__parsed")
    return (df.withColumn("reason_code", F.when(missing_id, "RECORD_ID_MISSING").otherwise(F.col("reason_code")))
            .withColumn("rule_detail", F.when(missing_id, F.lit(f"{entity.record_id} is empty"))
                        .otherwise(F.col("rule_detail"))).drop("__parsed"))


def _with_format_reason(malformed_df: DataFrame, entity: Entity) -> DataFrame:
    n = len(entity.fields)
    if entity.format == "csv":
        found = csv_field_count(F.col(CORRUPT))
        code = (F.when(found < n, "CSV_TOO_FEW_FIELDS").when(found > n, "CSV_TOO_MANY_FIELDS")
                .otherwise("CSV_MALFORMED"))
        detail = F.concat(F.lit(f"expected {n} fields, found "), found.cast("string"))
    elif entity.format == "jsonl":
        code, detail = F.lit("JSON_UNPARSABLE"), F.lit("not a parsable JSON object")
    elif entity.format == "xml":
        code, detail = F.lit("XML_MALFORMED"), F.lit("element is not well-formed XML")
    else:
        code, detail = F.lit("MALFORMED"), F.lit("unreadable record")
    return malformed_df.withColumn("reason_code", code).withColumn("rule_detail", detail)


def with_lineage(df: DataFrame, lin: Lineage, key_id: str | None = None) -> DataFrame:
    return (df.withColumn("_source", F.lit(lin.source)).withColumn("_entity", F.lit(lin.entity))
            .withColumn("_batch_date", F.lit(date.fromisoformat(lin.batch_date)))
            .withColumn("_file", F.lit(lin.file)).withColumn("_delivery_id", F.lit(lin.delivery_id))
            .withColumn("_run_id", F.lit(lin.run_id)).withColumn("_loaded_at", F.lit(lin.loaded_at))
            .withColumn("_encoding", F.lit(lin.encoding)))


def to_bronze(raw_df: DataFrame, entity: Entity, lin: Lineage, keyring: Keyring) -> DataFrame:
    """Well-formed records as delivered, L3/L4 fields encrypted, identity tokens, lineage."""
    df = with_protected_fields(filter_well_formed(raw_df, entity), entity, keyring)
    df = with_lineage(df, lin)
    tokens = [f.token_column for f in entity.tokenised_fields]
    return df.select(*entity.field_names, *tokens, *LINEAGE_COLS)


def to_quarantine(raw_df: DataFrame, entity: Entity, lin: Lineage, keyring: Keyring,
                  line_events: tuple[tuple[int, int], ...] = (), lines_exact: bool = True) -> DataFrame:
    """Malformed records, kept whole: reason code, locator, and the raw text — encrypted, since a
    broken line still holds identity numbers and names. ``line_events``: where records and lines
    part (blank lines, quoted line breaks; ``shuzhi.filescan``), so the locator names the real line."""
    df = with_reason(filter_malformed(raw_df, entity), entity)
    df = with_lineage(df, lin).withColumn("stage", F.lit("ingest"))
    df = df.withColumn("locator", line_of(entity.format, F.col("_row"), line_events, lines_exact))
    df = df.withColumn("raw_record_enc", encrypt(F.col(CORRUPT), keyring)).withColumn("_key_id", F.lit(keyring.key_id))
    return df.select("_source", "_entity", "_batch_date", "_file", "_row", "locator", "stage", "reason_code",
                     "rule_detail", "raw_record_enc", "_delivery_id", "_run_id", "_loaded_at", "_encoding", "_key_id")


def stats_columns_for(entity: Entity, df: DataFrame) -> list[str]:
    """Columns Delta may keep statistics on: never L3/L4 values (ciphertext or not) nor tokens."""
    hidden = {f.name for f in entity.encrypted_fields} | {f.token_column for f in entity.tokenised_fields}
    return [c for c in df.columns if c not in hidden]
