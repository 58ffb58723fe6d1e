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
