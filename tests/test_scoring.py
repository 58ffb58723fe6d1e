"""The scorer against tiny hand-built lake tables and a hand-written truth.csv."""
import csv
from datetime import date, datetime

import pytest

from feedsim.defects import ACTIONS
from feedsim.scoring import ClassScore, NightScore, score_night
from feedsim.truth import TRUTH_COLUMNS
from shuzhi.delta import schema_of, write_table

pytestmark = pytest.mark.spark

NIGHT = "2026-11-27"
D = date(2026, 11, 27)
T0 = datetime(2026, 11, 27, 23, 0)
POP = "population_20261127.csv"
ASSIST = "assistance_20261127.jsonl"

FINDINGS = ("_source string, _entity string, _batch_date date, _file string, _row long, record_id string, "
            "field string, rule_id string, action string, change string, before string, after string, _run_id string")
SILVER_Q = ("_source string, _entity string, _batch_date date, _file string, _row long, record_id string, "
            "locator string, stage string, reason_code string, rule_detail string, field string, "
            "citizen_id_enc binary, citizen_id__tok string, record_enc binary, _delivery_id string, _run_id string, "
            "_loaded_at timestamp, _key_id string")
INGEST_Q = ("_source string, _entity string, _batch_date date, _file string, _row long, locator string, "
            "stage string, reason_code string, rule_detail string, raw_record_enc binary, _delivery_id string, "
            "_run_id string, _loaded_at timestamp, _encoding string, _key_id string")
CONFLICTS = ("conflict_id string, rule_id string, severity string, departments array<string>, "
             "record_refs array<string>, subject string, person_token string, citizen_id_enc binary, "
             "evidence string, first_seen date, last_seen date, status string, resolved_on date")
LINEAGE = ("_source string, _entity string, _batch_date date, _file string, _row long, _delivery_id string, "
           "_run_id string, _loaded_at timestamp, _encoding string, _key_id string")


def _write(spark, settings, layer, name, rows, schema, partition_by=()):
    write_table(spark.createDataFrame(rows, schema), settings.table_path(layer, name), mode="append",
                partition_by=list(partition_by))


def _lin(source, entity, file, row):
    return (source, entity, D, file, row, f"{source}/{NIGHT}/x", "run", T0, "UTF-8", "k1")


def _truth(tmp_path, rows):
    path = tmp_path / "truth" / NIGHT / "truth.csv"
    path.parent.mkdir(parents=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
        w.writeheader()
        for r in rows:
            full = {c: "" for c in TRUTH_COLUMNS}
            full.update(batch_date=NIGHT, expected_action=ACTIONS[r["defect_class"]], **r)
            w.writerow(full)
    return tmp_path / "truth"


def _t(source, entity, file, row, record_id, cls, field=""):
    return dict(source=source, entity=entity, file=file, row=row, record_id=record_id, defect_class=cls, field=field)


def _finding(row, rid, field, rule, action):
    return ("police", "population", D, POP, row, rid, field, rule, action, "x", None, None, "run")


def _conflict(cid, rule, refs, status="open"):
    return (cid, rule, "medium", sorted({r.split("/")[0] for r in refs}), refs, refs[0], None, None, "ev",
            D, D, status, None if status == "open" else D)


@pytest.fixture
def night(spark, settings, tmp_path):
    """police: 7 delivered lines (1 broken at ingest); civil affairs: 3 lines (BOM), one of them lost."""
    _write(spark, settings, "ops", "deliveries", [
        dict(delivery_id="police/x", source="police", batch_date=D, kind="full", status="accepted", file=POP,
             entity="population", manifest_rows=7, bronze_rows=6, quarantined_rows=1, balanced=True,
             declared_encoding="GB18030", actual_encoding="UTF-8", has_bom=False, run_id="run", recorded_at=T0),
        dict(delivery_id="ca/x", source="civil_affairs", batch_date=D, kind="full", status="accepted", file=ASSIST,
             entity="assistance", manifest_rows=3, bronze_rows=3, quarantined_rows=0, balanced=True,
             declared_encoding="UTF-8", actual_encoding="UTF-8", has_bom=True, run_id="run", recorded_at=T0),
        dict(delivery_id="police/y", source="police", batch_date=date(2026, 11, 26), kind="full", status="accepted",
             file="population_20261126.csv", entity="population", manifest_rows=99, bronze_rows=99,
             quarantined_rows=0, balanced=True, declared_encoding="GB18030", actual_encoding="UTF-8", has_bom=True,
             run_id="run", recorded_at=T0),
    ], schema_of("ops.deliveries"))
    # bronze: police rows 1-5 and 7 (row 6 broken at ingest); civil affairs rows 1-3
    _write(spark, settings, "bronze", "police_population",
           [(f"P{i}", f"name{i}") + _lin("police", "population", POP, i) for i in (1, 2, 3, 4, 5)]
           + [("P1", "name1") + _lin("police", "population", POP, 7)],
           "RECORD_ID string, XM string, " + LINEAGE, ["_batch_date"])
    _write(spark, settings, "bronze", "civil_affairs_assistance",
           [(f"C{i}", f"name{i}") + _lin("civil_affairs", "assistance", ASSIST, i) for i in (1, 2, 3)],
           "record_id string, name string, " + LINEAGE, ["_batch_date"])
    _write(spark, settings, "bronze", "quarantine",
           [("police", "population", D, POP, 6, "line 7", "ingest", "CSV_TOO_FEW_FIELDS",
             "expected 20 fields, found 12", None, "police/x", "run", T0, "UTF-8", "k1")],
           INGEST_Q, ["_source", "_batch_date"])
    _write(spark, settings, "silver", "findings", [
        _finding(1, "P1", "GMSFHM", "ID_FULLWIDTH", "correct"),        # TP id_fullwidth
        _finding(1, "P1", "JHRGMSFHM", "ID_FULLWIDTH", "correct"),     # same record, another field: counted once
        _finding(3, "P3", "LXDH", "PHONE_FORMAT", "correct"),          # FP phone_format
        _finding(4, "P4", "GMSFHM", "ID_CHECK", "flag"),               # should be quarantine: FN + FP id_bad_check
        _finding(5, "P5", "GXSJ", "TIME_INVALID", "quarantine"),       # unmapped rule: FP rule:TIME_INVALID
        _finding(7, "P1", "", "DUP_EXACT", "supersede"),               # TP dup_exact
    ], FINDINGS, ["_batch_date"])
    _write(spark, settings, "silver", "quarantine",
           [("police", "population", D, POP, 5, "P5", "line 6", "clean", "TIME_INVALID", "bad time", "GXSJ",
             None, None, None, "police/x", "run", T0, "k1")], SILVER_Q, ["_source", "_batch_date"])
    _write(spark, settings, "silver", "police_population", [(f"P{i}", "x") for i in (1, 2, 3, 4)],
           "record_id string, name string")
    _write(spark, settings, "silver", "civil_affairs_assistance", [("C1", "x"), ("C2", "x")],
           "record_id string, name string")              # C3 went nowhere: unaccounted
    _write(spark, settings, "gold", "conflicts", [
        _conflict("c1", "X_DECEASED_PAID", ["social_security/insurance/S1", "police/population/P1"]),  # TP
        _conflict("c2", "X_NAME_MISMATCH", ["civil_affairs/assistance/C2", "police/population/P9"]),   # FP
        _conflict("c3", "X_ABSENT_POLICE", ["social_security/insurance/S7"]),       # not touching tonight
        _conflict("c4", "X_BIRTH_MISMATCH", ["police/population/P3"], status="resolved"),
    ], CONFLICTS)
    return _truth(tmp_path, [
        _t("police", "population", POP, 1, "P1", "id_fullwidth", "GMSFHM"),
        _t("police", "population", POP, 2, "P2", "date_layout", "CSRQ"),
        _t("police", "population", POP, 4, "P4", "id_bad_check", "GMSFHM"),
        _t("police", "population", POP, 6, "P6", "broken_csv_short"),
        _t("police", "population", POP, 7, "P1", "dup_exact"),
        _t("civil_affairs", "assistance", ASSIST, 1, "C1", "name_traditional", "name"),
        _t("civil_affairs", "assistance", ASSIST, 2, "C2", "name_traditional", "name"),
        _t("civil_affairs", "assistance", ASSIST, "", "", "bom"),
        _t("social_security", "insurance", "", "", "S1", "contra_deceased_benefit", "status"),
        _t("police", "population", POP, 3, "P3", "contra_birthdate_mismatch", "CSRQ"),
    ])


def _counts(c: ClassScore) -> tuple[int, int, int, int]:
    return c.expected, c.tp, c.fn, c.fp


def test_score_night(spark, settings, night):
    s = score_night(spark, settings, night, NIGHT)
    assert isinstance(s, NightScore)
    got = {k: _counts(c) for k, c in s.classes.items() if c.expected or c.fp}
    assert got == {
        "id_fullwidth": (1, 1, 0, 0),
        "date_layout": (1, 0, 1, 0),
        "phone_format": (0, 0, 0, 1),
        "id_bad_check": (1, 0, 1, 1),
        "rule:TIME_INVALID": (0, 0, 0, 1),
        "broken_csv_short": (1, 1, 0, 0),
        "dup_exact": (1, 1, 0, 0),
        "name_traditional": (2, 1, 1, 0),
        "bom": (1, 1, 0, 0),
        "encoding_utf8_as_gb18030": (0, 0, 0, 1),
        "contra_deceased_benefit": (1, 1, 0, 0),
        "contra_name_mismatch": (0, 0, 0, 1),
        "contra_birthdate_mismatch": (1, 0, 1, 0),
    }
    assert _counts(s.classes["contra_absent_from_police"]) == (0, 0, 0, 0)   # c3 does not touch tonight
    assert set(ACTIONS) | {"contra_uscc_bad_check@clean"} <= set(s.classes)
    assert (s.tp, s.fn, s.fp) == (6, 4, 5)
    assert s.recall == pytest.approx(6 / 10) and s.precision == pytest.approx(6 / 11)
    assert s.classes["phone_format"].precision == 0.0 and s.classes["phone_format"].recall == 1.0
    assert "P2" in s.classes["date_layout"].examples_fn[0]
    assert "[reported as X_NAME_MISMATCH]" in s.classes["name_traditional"].examples_fn[0]
    assert s.classes["encoding_utf8_as_gb18030"].examples_fp == [POP]
    assert (s.delivered, s.accounted) == (10, 9)
    assert s.unaccounted == [f"{ASSIST} row 3 (C3)"]
    text = s.table()
    assert "id_bad_check" in text and "unaccounted: assistance_20261127.jsonl row 3 (C3)" in text


def test_empty_lake_everything_missed(spark, settings, tmp_path):
    truth = _truth(tmp_path, [_t("police", "population", POP, 1, "P1", "id_fullwidth", "GMSFHM"),
                              _t("social_security", "insurance", "insurance_20261127.parquet", 4, "S4",
                                 "contra_uscc_bad_check", "employer_uscc")])
    s = score_night(spark, settings, truth, NIGHT)
    assert _counts(s.classes["id_fullwidth"]) == (1, 0, 1, 0)
    assert _counts(s.classes["contra_uscc_bad_check"]) == (1, 0, 1, 0)
    assert _counts(s.classes["contra_uscc_bad_check@clean"]) == (1, 0, 1, 0)
    assert (s.delivered, s.accounted, s.unaccounted) == (0, 0, [])
