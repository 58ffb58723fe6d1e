"""The ingest stage's transforms (shuzhi.stages.bronze) and the ingest job's pure helpers, on tiny
in-memory frames. Every expected frame is written here by hand from the rule's text (the
docstrings, the ingest reason codes of conf/rules.yaml), never by calling the function under
test; each case has a null row and an empty input."""
from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime

import pytest
from frames import assert_frame_equal, frame
from pyspark.sql import functions as F

from jobs.ingest import FileResult, IngestResult, summary
from shuzhi.crypto import decrypt
from shuzhi.schemas import catalog
from shuzhi.stages.bronze import (
    Lineage,
    csv_field_count,
    filter_malformed,
    filter_well_formed,
    line_of,
    stats_columns_for,
    to_bronze,
    to_quarantine,
    with_lineage,
    with_reason,
)

pytestmark = pytest.mark.unit

HOUSES = catalog().entity("police", "houses")          # csv, 8 fields, FZGMSFHM encrypted and tokenised
HEALTH = catalog().entity("health", "residents")       # xml
HOUSE_COLS = ", ".join(f"{n} string" for n in HOUSES.field_names)
RAW_HOUSES = f"{HOUSE_COLS}, _corrupt_record string, _row bigint"
LIN = Lineage("police", "houses", "2026-11-27", "houses_20261127.csv", "police/2026-11-27/abc", "run-1",
              datetime(2026, 11, 27, 23, 0, 0), "GB18030")
ID1 = "150105198503021234"


def house(rid, fwbm="F1", owner=ID1, corrupt=None, row=1):
    return (rid, fwbm, "大学东街1号", "150105001001", owner, "1", "2", "2026-11-27 08:00:00", corrupt, row)


def token(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- line_of: the human locator

ROWS = [(1,), (2,), (5,), (None,)]


@pytest.mark.parametrize("fmt, events, exact, expected", [
    # CSV line numbers count the header line
    ("csv", (), True, ["line 2", "line 3", "line 6", None]),
    # (record, extra lines before it): record 2 has one blank line before it, record 5 three more
    ("csv", ((2, 1), (5, 3)), True, ["line 2", "line 4", "line 10", None]),
    ("jsonl", (), True, ["line 1", "line 2", "line 5", None]),
    ("jsonl", ((2, 1),), True, ["line 1", "line 3", "line 6", None]),
    # without exact events a text record is named by number
    ("csv", ((2, 1),), False, ["record 1", "record 2", "record 5", None]),
    ("xml", (), True, ["<resident> #1", "<resident> #2", "<resident> #5", None]),
    ("parquet", (), True, ["row 1", "row 2", "row 5", None]),
], ids=["csv", "csv-events", "jsonl", "jsonl-events", "csv-not-exact", "xml", "parquet"])
def test_line_of(tiny_spark, fmt, events, exact, expected):
    df = frame(tiny_spark, ROWS, "_row bigint")
    got = df.select("_row", line_of(fmt, F.col("_row"), events, exact).alias("locator"))
    want = frame(tiny_spark, [(r, loc) for (r,), loc in zip(ROWS, expected, strict=True)],
                                      "_row bigint, locator string")
    assert_frame_equal(got, want)


def test_line_of_empty_input(tiny_spark):
    df = frame(tiny_spark, [], "_row bigint")
    got = df.select("_row", line_of("csv", F.col("_row"), ((1, 1),)).alias("locator"))
    assert_frame_equal(got, frame(tiny_spark, [], "_row bigint, locator string"))


# ---------------------------------------------------------------- well-formed / malformed records

def test_csv_field_count(tiny_spark):
    df = frame(tiny_spark, [("a,b,c",), ('a,"b,c",d',), ('"a""b",c',), ("",), (None,)], "raw string")
    got = df.select("raw", csv_field_count(F.col("raw")).alias("n"))
    # commas inside double quotes (an escaped "" too) do not part fields (RFC 4180); an empty line is one
    # empty field; no line, no count
    want = frame(tiny_spark, [("a,b,c", 3), ('a,"b,c",d', 3), ('"a""b",c', 2), ("", 1), (None, None)],
                                      "raw string, n int")
    assert_frame_equal(got, want)


def test_filter_well_formed_keeps_parsed_records_with_their_id(tiny_spark):
    raw = frame(tiny_spark, [house("H1"), house("H2", corrupt="H2,F2", row=2), house("  ", row=3),
                                      house(None, row=4), (None,) * 9 + (5,)], RAW_HOUSES)
    got = filter_well_formed(raw, HOUSES)
    want = frame(tiny_spark, [house("H1")[:8] + (1,)], f"{HOUSE_COLS}, _row bigint")
    assert_frame_equal(got, want)
    assert_frame_equal(filter_well_formed(frame(tiny_spark, [], RAW_HOUSES), HOUSES),
                       frame(tiny_spark, [], f"{HOUSE_COLS}, _row bigint"))


def test_malformed_records_get_their_reason(tiny_spark):
    too_many = "H3,F3,a,b,c,d,e,f,g"
    malformed = 'H4,F4,"a"b,SQ,id,1,2,t'      # 8 fields, yet the reader could not parse it
    raw = frame(tiny_spark, [
        house("H1"),                                            # well-formed: not malformed
        house(None, corrupt="H2,F2", row=2),
        house(None, corrupt=too_many, row=3),
        house(None, corrupt=malformed, row=4),
        house("  ", fwbm="F5", owner=None, row=5),              # parsed, record id blank
        (None,) * 9 + (6,),                                     # the null row: parsed, nothing in it
    ], RAW_HOUSES)
    got = with_reason(filter_malformed(raw, HOUSES), HOUSES).select("_row", "_corrupt_record", "reason_code",
                                                                    "rule_detail")
    as_json = ('{"RECORD_ID":"  ","FWBM":"F5","DZ":"大学东街1号","SQDM":"150105001001","FWYTDM":"1",'
               '"JZRS":"2","GXSJ":"2026-11-27 08:00:00"}')
    want = frame(tiny_spark, [
        (2, "H2,F2", "CSV_TOO_FEW_FIELDS", "expected 8 fields, found 2"),
        (3, too_many, "CSV_TOO_MANY_FIELDS", "expected 8 fields, found 9"),
        (4, malformed, "CSV_MALFORMED", "expected 8 fields, found 8"),
        (5, as_json, "RECORD_ID_MISSING", "RECORD_ID is empty"),
        (6, "{}", "RECORD_ID_MISSING", "RECORD_ID is empty"),
    ], "_row bigint, _corrupt_record string, reason_code string, rule_detail string")
    assert_frame_equal(got, want)
    empty = with_reason(filter_malformed(frame(tiny_spark, [], RAW_HOUSES), HOUSES), HOUSES)
    assert_frame_equal(empty.select("_row", "_corrupt_record", "reason_code", "rule_detail"),
                       frame(tiny_spark, [], "_row bigint, _corrupt_record string, reason_code string, "
                                                  "rule_detail string"))


def test_xml_reasons_and_a_self_closing_resident(tiny_spark):
    cols = ", ".join(f"{n} string" for n in HEALTH.field_names)
    blank = (None,) * len(HEALTH.field_names)
    raw = frame(tiny_spark, [blank + ("<resident><id_no>1</resident>", 1), blank + ("<resident/>", 2),
                                      blank + (None, 3)], f"{cols}, _corrupt_record string, _row bigint")
    got = with_reason(filter_malformed(raw, HEALTH), HEALTH).select("_row", "_corrupt_record", "reason_code",
                                                                    "rule_detail")
    # <resident/> parsed (an empty element) but without record_id: as JSON, which is "{}"
    want = frame(tiny_spark, [(1, "<resident><id_no>1</resident>", "XML_MALFORMED",
                                        "element is not well-formed XML"),
                                       (2, "<resident/>", "RECORD_ID_MISSING", "record_id is empty"),
                                       (3, "{}", "RECORD_ID_MISSING", "record_id is empty")],
                                      "_row bigint, _corrupt_record string, reason_code string, rule_detail string")
    assert_frame_equal(got, want)


# ---------------------------------------------------------------- lineage, bronze and quarantine rows

def test_with_lineage(tiny_spark):
    df = frame(tiny_spark, [("H1",), (None,)], "RECORD_ID string")
    got = with_lineage(df, LIN)
    lineage = ("police", "houses", date(2026, 11, 27), "houses_20261127.csv", "police/2026-11-27/abc", "run-1",
               datetime(2026, 11, 27, 23, 0, 0), "GB18030")
    schema = ("RECORD_ID string, _source string, _entity string, _batch_date date, _file string, "
              "_delivery_id string, _run_id string, _loaded_at timestamp, _encoding string")
    want = frame(tiny_spark, [("H1",) + lineage, (None,) + lineage], schema)
    assert_frame_equal(got, want)
    assert_frame_equal(with_lineage(frame(tiny_spark, [], "RECORD_ID string"), LIN),
                       frame(tiny_spark, [], schema))


def test_to_bronze_encrypts_l3_tokenises_ids_and_adds_lineage(tiny_spark, memory_keyring):
    kr = memory_keyring
    raw = frame(tiny_spark, [house("H1", owner=" 150105-19850302-1234 "), house("H2", owner=None, row=2),
                                      house("H3", corrupt="H3,x", row=3)], RAW_HOUSES)
    got = to_bronze(raw, HOUSES, LIN, kr)
    assert got.columns == HOUSES.field_names + ["FZGMSFHM__tok", "_source", "_entity", "_batch_date", "_file", "_row",
                                                "_delivery_id", "_run_id", "_loaded_at", "_encoding", "_key_id"]
    # the delivered text is kept (encrypted); the token is of the normalised number
    plain = got.select("RECORD_ID", decrypt(F.col("FZGMSFHM"), kr).alias("owner"), "FZGMSFHM__tok", "_row",
                       "_key_id", "_batch_date")
    want = frame(tiny_spark, [("H1", " 150105-19850302-1234 ", token(kr.hmac_key, ID1), 1, "kunit",
                                        date(2026, 11, 27)),
                                       ("H2", None, None, 2, "kunit", date(2026, 11, 27))],
                                      "RECORD_ID string, owner string, FZGMSFHM__tok string, _row bigint, "
                                      "_key_id string, _batch_date date")
    assert_frame_equal(plain, want)
    assert to_bronze(frame(tiny_spark, [], RAW_HOUSES), HOUSES, LIN, kr).collect() == []


def test_to_quarantine_keeps_the_raw_text_encrypted_with_its_locator(tiny_spark, memory_keyring):
    kr = memory_keyring
    raw = frame(tiny_spark, [house("H1"), house(None, corrupt="H2,F2", row=2), (None,) * 9 + (4,)],
                                     RAW_HOUSES)
    got = to_quarantine(raw, HOUSES, LIN, kr, line_events=((3, 1),))
    assert got.columns == ["_source", "_entity", "_batch_date", "_file", "_row", "locator", "stage", "reason_code",
                           "rule_detail", "raw_record_enc", "_delivery_id", "_run_id", "_loaded_at", "_encoding",
                           "_key_id"]
    assert dict(got.dtypes)["raw_record_enc"] == "binary"
    plain = got.select("_row", "locator", "stage", "reason_code", decrypt(F.col("raw_record_enc"), kr).alias("raw"),
                       "_key_id")
    want = frame(tiny_spark, [(2, "line 3", "ingest", "CSV_TOO_FEW_FIELDS", "H2,F2", "kunit"),
                                       (4, "line 6", "ingest", "RECORD_ID_MISSING", "{}", "kunit")],
                                      "_row bigint, locator string, stage string, reason_code string, raw string, "
                                      "_key_id string")
    assert_frame_equal(plain, want)
    assert to_quarantine(frame(tiny_spark, [], RAW_HOUSES), HOUSES, LIN, kr).collect() == []


def test_stats_columns_never_l3_l4_nor_tokens(tiny_spark):
    df = frame(tiny_spark, [], f"{HOUSE_COLS}, FZGMSFHM__tok string, _row bigint")
    assert stats_columns_for(HOUSES, df) == ["RECORD_ID", "FWBM", "DZ", "SQDM", "FWYTDM", "JZRS", "GXSJ", "_row"]
    assert stats_columns_for(HOUSES, frame(tiny_spark, [], "FZGMSFHM binary")) == []


# ---------------------------------------------------------------- the ingest job's result helpers

def test_file_result_balanced_and_summary():
    ok = FileResult("houses_20261127.csv", "houses", "police_houses", 10, 8, 2, False, {"CSV_TOO_FEW_FIELDS": 2})
    short = FileResult("population_20261127.csv", "population", "police_population", 10, 8, 1, False)
    assert ok.balanced and not short.balanced
    res = IngestResult("police", "2026-11-27", "loaded", "full", [ok, short])
    assert summary(res) == {
        "source": "police", "batch_date": "2026-11-27", "status": "loaded", "kind": "full",
        "files": [{"table": "police_houses", "file": "houses_20261127.csv", "manifest_rows": 10, "bronze_rows": 8,
                   "quarantined_rows": 2, "reasons": {"CSV_TOO_FEW_FIELDS": 2}},
                  {"table": "police_population", "file": "population_20261127.csv", "manifest_rows": 10,
                   "bronze_rows": 8, "quarantined_rows": 1, "reasons": {}}]}
    assert summary(IngestResult("police", "2026-11-27", "rejected", reason_code="MANIFEST_MISSING")) == {
        "source": "police", "batch_date": "2026-11-27", "status": "rejected", "kind": None, "files": []}
