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
    "MALFORMED": "record cannot be read",
}
# The same reasons in Chinese, for the office's exports (same keys as INGEST_REASONS).
INGEST_REASONS_ZH = {
    "CSV_TOO_FEW_FIELDS": "CSV行字段数少于表头",
    "CSV_TOO_MANY_FIELDS": "CSV行字段数多于表头",
    "CSV_MALFORMED": "CSV行无法解析",
    "JSON_UNPARSABLE": "JSON Lines行不是可解析的JSON对象",
    "XML_MALFORMED": "<resident>元素不是格式正确的XML",
    "MALFORMED": "记录无法读取",
}


def line_of(fmt: str, row_col):
    """Human locator of a record: CSV line numbers count the header line."""
    from pyspark.sql import functions as F

    return {"csv": F.concat(F.lit("line "), (row_col + 1).cast("string")),
            "jsonl": F.concat(F.lit("line "), row_col.cast("string")),
            "xml": F.concat(F.lit("<resident> #"), row_col.cast("string"))}.get(
        fmt, F.concat(F.lit("row "), row_col.cast("string")))
