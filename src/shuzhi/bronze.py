"""What every bronze table and the ingest quarantine share: lineage columns and reason codes.
Declared once; the ingest job writes them and the gate baseline checks them."""

LINEAGE_COLS = ["_source", "_entity", "_batch_date", "_file", "_row", "_delivery_id", "_run_id", "_loaded_at",
                "_encoding", "_key_id"]

# Quarantine reason codes at ingest (later stages add their own).
INGEST_REASONS = {
    "CSV_TOO_FEW_FIELDS": "CSV line has fewer fields than the header",
    "CSV_TOO_MANY_FIELDS": "CSV line has more fields than the header",
    "CSV_MALFORMED": "CSV line cannot be parsed",
    "JSON_UNPARSABLE": "JSON Lines line is not a parsable JSON object",
    "XML_MALFORMED": "<resident> element is not well-formed XML",
    "RECORD_ID_MISSING": "well-formed record without its record id (SPEC: a record is identified by it)",
    "MALFORMED": "record cannot be read",
}
# The same reasons in Chinese, for the office's exports (same keys as INGEST_REASONS).
INGEST_REASONS_ZH = {
    "CSV_TOO_FEW_FIELDS": "CSV行字段数少于表头",
    "CSV_TOO_MANY_FIELDS": "CSV行字段数多于表头",
    "CSV_MALFORMED": "CSV行无法解析",
    "JSON_UNPARSABLE": "JSON Lines行不是可解析的JSON对象",
    "XML_MALFORMED": "<resident>元素不是格式正确的XML",
    "RECORD_ID_MISSING": "记录格式正确但缺少记录标识",
    "MALFORMED": "记录无法读取",
}

# Whole-delivery rejections (ops.deliveries reason_code): nothing of the delivery is loaded.
# code: (English, Chinese). The README lists them; tests/test_contract.py plants each one.
REJECTION_REASONS = {
    "MANIFEST_MISSING": ("no manifest.json in the delivery folder (it is written last: delivery incomplete)",
                         "交付目录中没有manifest.json（交付未完成）"),
    "MANIFEST_UNPARSABLE": ("manifest.json is not UTF-8 JSON (or nested too deep, or too large)",
                            "manifest.json不是可解析的UTF-8 JSON"),
    "MANIFEST_INVALID": ("manifest.json breaks schemas/manifest.schema.json (a key missing, a wrong type or range)",
                         "manifest.json不符合清单规范（缺少字段、类型或取值范围错误）"),
    "MANIFEST_MISMATCH": ("the manifest names another source or batch date than its folder",
                          "清单中的部门或批次日期与所在目录不一致"),
    "BATCH_DATE_INVALID": ("the batch-date folder is not a real date written YYYY-MM-DD",
                           "批次日期目录名不是YYYY-MM-DD格式的有效日期"),
    "BATCH_DATE_FUTURE": ("the delivery is dated after today", "交付的批次日期晚于今天"),
    "DELIVERY_EMPTY": ("a full delivery that lists no file", "全量交付未列出任何文件"),
    "FILE_NAME_INVALID": ("a listed file name is not the SPEC's name for its entity and batch date",
                          "文件名不是接口规范规定的名称"),
    "FILE_LISTED_TWICE": ("the manifest lists one file more than once", "清单重复列出同一文件"),
    "ENTITY_LISTED_TWICE": ("the manifest lists two files for one entity (SPEC: one file an entity)",
                            "清单为同一实体列出了两个文件"),
    "UNKNOWN_ENTITY": ("a listed entity is not one of the source's entities", "清单中的实体不属于该部门"),
    "ENCODING_INVALID": ("the declared encoding is not one the SPEC allows for the format", "声明的字符编码不被接口规范允许"),
    "ENCODING_MISMATCH": ("the bytes are in no encoding the SPEC allows (UTF-16, NUL bytes, invalid UTF-8/GB18030)",
                          "文件字节不是接口规范允许的编码"),
    "UNSAFE_PATH": ("a symlink or non-regular file in the delivery, or a path outside the landing root",
                    "交付中含符号链接、非普通文件或落地区之外的路径"),
    "FILE_MISSING": ("the manifest names a file that is not in the folder", "清单列出的文件不存在"),
    "SHA256_MISMATCH": ("a file's bytes do not hash to the manifest's sha256", "文件的SHA-256与清单不符"),
    "ROW_COUNT_MISMATCH": ("a file holds another number of records than the manifest says (counting rule: README)",
                           "文件记录数与清单不符"),
    "HEADER_MISMATCH": ("a CSV header or Parquet column set is not the SPEC's (missing, renamed or unknown column)",
                        "CSV表头或Parquet列与接口规范不符（缺列、改名或多列）"),
    "COLUMN_TYPE_MISMATCH": ("a Parquet column has another type than the SPEC's", "Parquet列类型与接口规范不符"),
    "FIELD_MISSING": ("a required JSON key or XML element is absent from every record", "所有记录都缺少必填字段"),
    "PARQUET_UNREADABLE": ("the file is not a readable Parquet file (corrupt footer, not Parquet)",
                           "文件不是可读取的Parquet文件"),
    "JSON_NOT_LINES": ("a JSON Lines line holds a JSON array, not one object", "JSON Lines的某行是数组而不是单个对象"),
    "LINE_END_INVALID": ("a lone CR line end in a CSV file whose quoted fields span lines", "CSV中出现孤立的CR换行"),
    "XML_DOCTYPE": ("the XML file declares a DOCTYPE (entity expansion and external entities are refused)",
                    "XML文件含DOCTYPE声明（拒绝实体展开和外部实体）"),
}


def line_of(fmt: str, row_col, line_events=(), lines_exact: bool = True):
    """Human locator of a record: CSV line numbers count the header line. ``line_events``: (record,
    extra lines before it) where blank lines or quoted line breaks part records from lines
    (``shuzhi.filescan.FileScan.events``); without exact events a text record is named by number."""
    from pyspark.sql import functions as F

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
