"""The clean stage's standards and record transforms (shuzhi.standards, shuzhi.stages.silver) on
tiny in-memory frames. Every expected frame is written here by hand from the rule's text (the
docstrings, conf/rules.yaml, GB 11643's check character worked out on paper in the comments),
never by calling the function under test; each case has a null row and an empty input."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import date, datetime

import pytest
from frames import assert_frame_equal, frame
from pyspark.sql import functions as F

from shuzhi.crypto import encrypt
from shuzhi.rules import load_rules
from shuzhi.schemas import Entity, catalog
from shuzhi.stages.silver import (
    FINDING,
    classify_against_silver,
    dedupe,
    findings_rows,
    id_pre,
    standardise,
    std_citizen_id,
    std_date,
    std_name,
    std_phone,
    uscc_valid,
    with_region_check,
)
from shuzhi.standards import citizen_id_normalised, citizen_id_normalised_py, id_check_char

pytestmark = pytest.mark.unit

POP = catalog().entity("police", "population")
GMSFHM, XM, CSRQ, LXDH = (POP.field(n) for n in ("GMSFHM", "XM", "CSRQ", "LXDH"))
BATCH = date(2026, 11, 27)
# GB 11643 check character of 15010519850302123: Σ digit·weight (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2)
# = 7+45+0+5+0+20+2+9+48+15+0+27+0+10+8+8+6 = 210; 210 mod 11 = 1 → "10X98765432"[1] = "0"
VALID = "150105198503021230"
# 15010519850302102: 7+45+0+5+0+20+2+9+48+15+0+27+0+10+8+0+4 = 200; 200 mod 11 = 2 → "X"
VALID_X = "15010519850302102X"
# 15010519850230123 (30 February): Σ = 221; 221 mod 11 = 1 → "0"
BAD_BIRTH = "150105198502301230"
# 99010519850302123 (no province 99): Σ = 302; 302 mod 11 = 5 → "7"
BAD_REGION = "990105198503021237"
# GB/T 2260 spans (python-stdnum's cn/loc.dat, see tests/test_region_codes.py): 150105 from 1983,
# 152621 until 1996, 150120 until 1983
REGIONS = [("150105", [(1983, None)]), ("152621", [(None, 1996)]), ("150120", [(None, 1983)])]
REGIONS_SCHEMA = "code string, spans array<struct<start:int,end:int>>"


def token(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def applied(df, std, raw="raw"):
    """A standardiser's result as the engine materialises it: its intermediates in order, then the
    value, each rule's condition (null counts as not fired, as in ``standardise``) and the extras."""
    for name, col in std.pre:
        df = df.withColumn(name, col)
    return df.select(raw, std.value.alias("value"),
                     *[F.coalesce(cond, F.lit(False)).alias(rule) for rule, cond, _ in std.hits],
                     *[col.alias(name) for name, col in std.extra.items()])


# ---------------------------------------------------------------- identity numbers

def test_id_normalisation_and_check_character(tiny_spark):
    rows = [("１５０１０５１９８５０３０２１２３０",), (" 150105-19850302.123x ",), ("150105850302123",),
            ("abc",), ("",), (None,)]
    df = frame(tiny_spark, rows, "raw string")
    got = df.select("raw", citizen_id_normalised(F.col("raw")).alias("n"),
                    id_check_char(F.substring(F.col("raw"), 1, 17)).alias("chk"))
    # full-width → ASCII, separators dropped, x upper-cased (not validated); 15 digits lifted with
    # century 19 and the check character of 15010519850302123 ("0", see VALID); empty → null. The check
    # character is null unless the first 17 characters are digits.
    want = frame(tiny_spark, [("１５０１０５１９８５０３０２１２３０", VALID, None),
                              (" 150105-19850302.123x ", "15010519850302123X", None),
                              ("150105850302123", VALID, None), ("abc", "ABC", None), ("", None, None),
                              (None, None, None)], "raw string, n string, chk string")
    assert_frame_equal(got, want)
    digits = frame(tiny_spark, [(VALID[:17],), (VALID_X[:17],), (BAD_REGION[:17],), ("1501051985",), (None,)],
                   "d string")
    assert_frame_equal(digits.select("d", id_check_char(F.col("d")).alias("chk")),
                       frame(tiny_spark, [(VALID[:17], "0"), (VALID_X[:17], "X"), (BAD_REGION[:17], "7"),
                                          ("1501051985", None), (None, None)], "d string, chk string"))
    assert_frame_equal(frame(tiny_spark, [], "raw string").select(citizen_id_normalised(F.col("raw")).alias("n")),
                       frame(tiny_spark, [], "n string"))
    # the Python twin (exports, CLI) reads the same text the same way
    assert [citizen_id_normalised_py(r) for (r,) in rows] == [VALID, "15010519850302123X", VALID, "ABC", None, None]


def test_with_region_check(tiny_spark):
    regions = frame(tiny_spark, REGIONS, REGIONS_SCHEMA)
    rows = [("150105194306150019",),    # born 1943: window 1984–2026; 150105 in force from 1983 → valid
            ("152621200103070016",),    # born 2001: window 2001–2026; 152621 ended 1996 → not
            ("152621195003070015",),    # born 1950: window 1984–2026; 152621 until 1996 → valid
            ("150120194306150012",),    # 150120 ended 1983, before the first issue in 1984 → not
            (BAD_REGION,),              # no such code → not
            ("150105203001010017",),    # born 2030, after the batch year: no window → not
            (None,)]                    # no number → not
    df = frame(tiny_spark, rows, "__GMSFHM_n string")
    got = with_region_check(df, GMSFHM, "__GMSFHM_n", regions, 2026)
    want = frame(tiny_spark, [(r, ok) for (r,), ok in zip(rows, [True, False, True, False, False, False, False],
                                                           strict=True)],
                 "__GMSFHM_n string, __GMSFHM_region_ok boolean")
    assert_frame_equal(got, want)
    # a code created after the batch year is not valid yet
    late = frame(tiny_spark, [("653228", [(2024, None)])], REGIONS_SCHEMA)
    in_2023 = with_region_check(frame(tiny_spark, [("653228199001010012",)], "__GMSFHM_n string"), GMSFHM,
                                "__GMSFHM_n", late, 2023)
    assert [r["__GMSFHM_region_ok"] for r in in_2023.collect()] == [False]
    assert_frame_equal(with_region_check(frame(tiny_spark, [], "__GMSFHM_n string"), GMSFHM, "__GMSFHM_n", regions,
                                         2026),
                       frame(tiny_spark, [], "__GMSFHM_n string, __GMSFHM_region_ok boolean"))


ID_RULES = ["ID_FULLWIDTH", "ID_SEPARATOR", "ID_LOWER_X", "ID_LEGACY_15", "ID_FORMAT", "ID_CHECK", "ID_BIRTH",
            "ID_REGION", "ID_EMPTY"]


def _std_citizen_id(df, keyring):
    raw = F.col("raw")
    for name, col in id_pre(GMSFHM, raw):
        df = df.withColumn(name, col)
    df = with_region_check(df, GMSFHM, "__GMSFHM_n", frame(df.sparkSession, REGIONS, REGIONS_SCHEMA), BATCH.year)
    return applied(df, std_citizen_id(GMSFHM, raw, BATCH, keyring))


def test_citizen_id_standard(tiny_spark, memory_keyring):
    kr = memory_keyring

    def hits(*fired):
        return tuple(r in fired for r in ID_RULES)

    def ok(n, sex):      # a valid number: its token, its encoded birth date (1985-03-02) and sex
        return (n, True, token(kr.hmac_key, n), date(1985, 3, 2), sex)

    bad = (False, None, None, None)
    rows = [
        (VALID,) + ok(VALID, "1") + hits(),                          # 17th digit 3: odd → male ("1")
        ("１５０１０５１９８５０３０２１２３０",) + ok(VALID, "1") + hits("ID_FULLWIDTH"),
        ("150105 19850302-1230",) + ok(VALID, "1") + hits("ID_SEPARATOR"),
        ("15010519850302102x",) + ok(VALID_X, "2") + hits("ID_LOWER_X"),   # 17th digit 2: even → female
        ("150105850302123",) + ok(VALID, "1") + hits("ID_LEGACY_15"),
        ("15010519850302123", "15010519850302123") + bad + hits("ID_FORMAT"),
        ("150105198503021234", "150105198503021234") + bad + hits("ID_CHECK"),
        (BAD_BIRTH, BAD_BIRTH) + bad + hits("ID_BIRTH"),
        (BAD_REGION, BAD_REGION) + bad + hits("ID_REGION"),
        ("", None) + bad + hits("ID_EMPTY"),
        (None, None) + bad + hits("ID_EMPTY"),
    ]
    schema = ("raw string, value string, citizen_id__valid boolean, citizen_id__tok string, "
              "citizen_id__birth date, citizen_id__sex string, " + ", ".join(f"{r} boolean" for r in ID_RULES))
    cols = ["raw", "value", "citizen_id__valid", "citizen_id__tok", "citizen_id__birth", "citizen_id__sex", *ID_RULES]
    got = _std_citizen_id(frame(tiny_spark, [(r[0],) for r in rows], "raw string"), kr)
    assert_frame_equal(got, frame(tiny_spark, rows, schema), columns=cols)
    assert_frame_equal(_std_citizen_id(frame(tiny_spark, [], "raw string"), kr), frame(tiny_spark, [], schema),
                       columns=cols)


# ---------------------------------------------------------------- names, phones, dates

def test_name_standard(tiny_spark, memory_keyring):
    kr = memory_keyring
    rules = ["NAME_SPACE", "NAME_DOT", "NAME_EMPTY"]
    # spaces removed, dots unified to the middle dot ·, kept as delivered (traditional too); the
    # comparison form is simplified, its token keyed; an empty name (required) is a hit
    rows = [("张三", "张三", "张三", False, False, False),
            ("张 三", "张三", "张三", True, False, False),
            ("阿依古丽.买买提", "阿依古丽·买买提", "阿依古丽·买买提", False, True, False),
            ("張偉", "張偉", "张伟", False, False, False),
            ("", None, None, False, False, True),
            (None, None, None, False, False, True)]
    schema = "raw string, value string, name__cmp string, NAME_SPACE boolean, NAME_DOT boolean, NAME_EMPTY boolean"
    got = applied(frame(tiny_spark, [(r[0],) for r in rows], "raw string"), std_name(XM, F.col("raw"), kr))
    assert_frame_equal(got, frame(tiny_spark, rows, schema), columns=["raw", "value", "name__cmp", *rules])
    assert [(r["name__cmp"], r["name__mtok"]) for r in got.collect() if r["raw"] == "張偉"] == [
        ("张伟", token(kr.hmac_key, "张伟"))]
    empty = applied(frame(tiny_spark, [], "raw string"), std_name(XM, F.col("raw"), kr))
    assert_frame_equal(empty, frame(tiny_spark, [], schema), columns=["raw", "value", "name__cmp", *rules])


def test_phone_standard(tiny_spark):
    rows = [("13812345678", "13812345678", False, False, False),
            ("+86 138-1234-5678", "13812345678", True, False, False),      # +86, spaces, dashes removed
            ("(0471) 123-4567", "(0471) 123-4567", False, True, False),    # a landline is kept as one
            ("12345", "12345", False, False, True),
            ("  ", None, False, False, False),
            (None, None, False, False, False)]
    schema = "raw string, value string, PHONE_FORMAT boolean, PHONE_LANDLINE boolean, PHONE_INVALID boolean"
    got = applied(frame(tiny_spark, [(r[0],) for r in rows], "raw string"), std_phone(LXDH, F.col("raw")))
    assert_frame_equal(got, frame(tiny_spark, rows, schema))
    assert_frame_equal(applied(frame(tiny_spark, [], "raw string"), std_phone(LXDH, F.col("raw"))),
                       frame(tiny_spark, [], schema))


def test_date_standard(tiny_spark):
    d = date(1985, 3, 2)
    rows = [("19850302", d, False, False, False),                     # the field's own layout (yyyyMMdd)
            ("1985-03-02", d, False, True, False),
            ("1985/3/2", d, False, True, False),
            ("19850230", None, True, False, False),                   # 30 February: impossible
            ("yesterday", None, True, False, False),
            ("20270101", date(2027, 1, 1), False, False, True),       # after the batch date
            ("  ", None, False, False, False),
            (None, None, False, False, False)]
    schema = "raw string, value date, DATE_INVALID boolean, DATE_LAYOUT boolean, DATE_FUTURE boolean"
    got = applied(frame(tiny_spark, [(r[0],) for r in rows], "raw string"), std_date(CSRQ, F.col("raw"), BATCH))
    assert_frame_equal(got, frame(tiny_spark, rows, schema))
    assert_frame_equal(applied(frame(tiny_spark, [], "raw string"), std_date(CSRQ, F.col("raw"), BATCH)),
                       frame(tiny_spark, [], schema))


def test_uscc_check(tiny_spark):
    # GB 32100: 91350100M000100Y4 + check. Σ value·weight over the 17 characters
    # (9·1 1·3 3·9 5·27 0·19 1·26 0·16 0·17 M=21·20 0·29 0·25 0·13 1·8 0·24 0·10 Y=30·30 4·28)
    # = 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640; 1640 mod 31 = 28; 31 − 28 = 3 → "3"
    rows = [("91350100M000100Y43", True), ("91350100M000100Y44", False), ("91350100M000100Y4", False),
            ("91350100I000100Y43", False), (None, None)]
    df = frame(tiny_spark, [(r[0],) for r in rows], "u string")
    assert_frame_equal(df.select("u", uscc_valid(F.col("u")).alias("ok")),
                       frame(tiny_spark, rows, "u string, ok boolean"))
    assert frame(tiny_spark, [], "u string").select(uscc_valid(F.col("u"))).collect() == []


# ---------------------------------------------------------------- the engine: the catalogue decides

def test_standardise_findings_follow_the_catalogue_and_hide_l3_values(tiny_spark, memory_keyring):
    """A two-field entity: the phone as an L2 field (its findings keep before/after) and the name as
    delivered (L3: findings without values); the catalogue with NAME_SPACE disabled runs no NAME_SPACE."""
    kr = memory_keyring
    rid = POP.field("RECORD_ID")
    phone_l2 = dataclasses.replace(LXDH, sensitivity="L2")
    ent = Entity("police", "population", "人口", "csv", "GB18030", "x_{yyyymmdd}.csv", "RECORD_ID", "GXSJ",
                 "person_register", (rid, XM, phone_l2))
    rules = dict(load_rules())
    rules["NAME_SPACE"] = dataclasses.replace(rules["NAME_SPACE"], enabled=False)
    bronze = frame(tiny_spark, [("P1", "张 三", "+86 13812345678", date(2026, 11, 27)),
                                ("P2", "李四", "12345", date(2026, 11, 27)),
                                ("P3", None, None, date(2026, 11, 27))],
                   "RECORD_ID string, XM string, LXDH string, _batch_date date")
    bronze = bronze.withColumn("XM", encrypt(F.col("XM"), kr))
    regions = frame(tiny_spark, REGIONS, REGIONS_SCHEMA)
    got = standardise(bronze, ent, kr, "2026-11-27", regions, rules)
    f = FINDING.simpleString()
    want = frame(tiny_spark, [
        ("P1", "张三", "13812345678", [("PHONE_FORMAT", "LXDH", "correct", "+86 / spaces / dashes removed",
                                        "+86 13812345678", "13812345678")], None),
        ("P2", "李四", "12345", [("PHONE_INVALID", "LXDH", "flag", "not a valid mobile number", "12345", "12345")],
         None),
        ("P3", None, None, [("NAME_EMPTY", "XM", "quarantine", "empty", None, None)],
         ("NAME_EMPTY", "XM", "quarantine", "empty", None, None)),
    ], f"record_id string, name string, phone string, _findings array<{f}>, _quarantine {f}")
    assert_frame_equal(got, want, columns=["record_id", "name", "phone", "_findings", "_quarantine"])
    assert "_batch_date" in got.columns and "__XM_raw" not in got.columns
    empty = standardise(bronze.limit(0), ent, kr, "2026-11-27", regions, rules)
    assert empty.collect() == []


# ---------------------------------------------------------------- records: findings, duplicates, versions

LINEAGE = "_source string, _entity string, _batch_date date, _file string, _row bigint"


def test_findings_rows_one_row_per_hit(tiny_spark):
    f = FINDING.simpleString()
    std = frame(tiny_spark, [
        ("police", "population", BATCH, "p.csv", 1, "P1", [("PHONE_FORMAT", "LXDH", "correct", "c", "a", "b"),
                                                          ("NAME_SPACE", "XM", "correct", "s", None, None)]),
        ("police", "population", BATCH, "p.csv", 2, "P2", []),
        ("police", "population", BATCH, "p.csv", 3, None, None),
    ], f"{LINEAGE}, record_id string, _findings array<{f}>")
    out = ("_source string, _entity string, _batch_date date, _file string, _row bigint, record_id string, "
           "field string, rule_id string, action string, change string, before string, after string, _run_id string")
    want = frame(tiny_spark, [
        ("police", "population", BATCH, "p.csv", 1, "P1", "LXDH", "PHONE_FORMAT", "correct", "c", "a", "b", "r1"),
        ("police", "population", BATCH, "p.csv", 1, "P1", "XM", "NAME_SPACE", "correct", "s", None, None, "r1")], out)
    assert_frame_equal(findings_rows(std, "r1"), want)
    assert_frame_equal(findings_rows(std.limit(0), "r1"), frame(tiny_spark, [], out))


def test_dedupe_exact_duplicates_then_versions(tiny_spark):
    t1, t2 = datetime(2026, 11, 27, 8), datetime(2026, 11, 27, 9)
    ok = frame(tiny_spark, [
        ("police", "population", BATCH, "p.csv", 1, "P1", t1, "h1"),
        ("police", "population", BATCH, "p.csv", 2, "P1", t1, "h1"),     # exact duplicate of line 1
        ("police", "population", BATCH, "p.csv", 3, "P1", t2, "h2"),     # the latest version of P1
        ("police", "population", BATCH, "p.csv", 4, "P2", t1, "h3"),
        ("police", "population", BATCH, "p.csv", 5, "P2", t1, "h4"),     # same update time: the later line wins
        ("police", "population", BATCH, "p.csv", 6, "P3", None, "h5"),   # no update time: loses to one with
        ("police", "population", BATCH, "p.csv", 7, "P3", t1, "h6"),
        ("police", "population", BATCH, "p.csv", 8, None, None, None),   # the null row: a record of its own
    ], f"{LINEAGE}, record_id string, updated_at timestamp, _content_hmac string")
    survivors, superseded = dedupe(ok)
    assert_frame_equal(survivors.select("_row", "record_id"),
                       frame(tiny_spark, [(3, "P1"), (5, "P2"), (7, "P3"), (8, None)], "_row bigint, record_id string"))
    sup = f"{LINEAGE}, record_id string, rule_id string, change string"
    older = "older version of the record id in the same delivery"
    assert_frame_equal(superseded, frame(tiny_spark, [
        ("police", "population", BATCH, "p.csv", 2, "P1", "DUP_EXACT", "exact duplicate of an earlier line"),
        ("police", "population", BATCH, "p.csv", 1, "P1", "DUP_VERSION", older),
        ("police", "population", BATCH, "p.csv", 4, "P2", "DUP_VERSION", older),
        ("police", "population", BATCH, "p.csv", 6, "P3", "DUP_VERSION", older)], sup))
    s0, x0 = dedupe(ok.limit(0))
    assert s0.collect() == [] and x0.collect() == []


def test_classify_against_silver(tiny_spark):
    t1, t2 = datetime(2026, 11, 27, 8), datetime(2026, 11, 28, 8)
    schema = "record_id string, updated_at timestamp, _content_hmac string, _delivery_id string, _row bigint"
    current = frame(tiny_spark, [("P2", t1, "h2", "d1", 1), ("P3", t1, "h3", "d1", 2), ("P4", t2, "h4", "d1", 3),
                                 ("P5", t2, "h5", "d2", 7), ("P6", t1, "h6", "d1", 4)], schema)
    tonight = frame(tiny_spark, [("P1", t2, "h1", "d2", 1),    # not in silver: new
                                 ("P2", t2, "h2b", "d2", 2),   # updated later: newer
                                 ("P3", t1, "h3", "d2", 3),    # same time, same content: unchanged
                                 ("P4", t1, "h4b", "d2", 4),   # updated earlier than silver's: stale
                                 ("P5", t2, "h5", "d2", 7),    # this delivery's own line, merged before: ours
                                 ("P6", t1, "h6b", "d2", 5),   # same time, other content: stale
                                 (None, None, None, "d2", 6)], schema)
    got = classify_against_silver(tonight, current).select("record_id", "__state")
    assert_frame_equal(got, frame(tiny_spark, [("P1", "new"), ("P2", "newer"), ("P3", "unchanged"), ("P4", "stale"),
                                               ("P5", "ours"), ("P6", "stale"), (None, "new")],
                                  "record_id string, __state string"))
    assert_frame_equal(classify_against_silver(tonight, None).select("record_id", "__state"),
                       frame(tiny_spark, [(r, "new") for r in ("P1", "P2", "P3", "P4", "P5", "P6", None)],
                             "record_id string, __state string"))
    assert classify_against_silver(tonight.limit(0), current).collect() == []
