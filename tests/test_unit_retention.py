"""The retention stages' transforms (shuzhi.stages.retention) and the policy's ages
(shuzhi.retention) on tiny in-memory frames: a record's clock and month, which records are due,
which tokens a hold covers, what destruction selects and what goes cold. Every expected frame is
written here by hand from the policy's text (conf/retention.yaml, the docstrings), never by
calling the function under test; each case has a null row and an empty input."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from frames import assert_frame_equal, frame
from pyspark.sql import functions as F

from shuzhi.crypto import encrypt
from shuzhi.retention import LOAD_DATE, Hold, RetentionClass
from shuzhi.schemas import catalog
from shuzhi.stages.retention import (
    clock_of,
    cold_candidates,
    destroyed_records,
    entity_ref,
    held_tokens,
    month_of,
    reads_of,
    silver_refs,
    tokens_of,
)

pytestmark = pytest.mark.unit

INCIDENTS = catalog().entity("police", "incidents")      # clock: report_time (L2, a timestamp; noon here,
#                                                          so no time zone moves its date)
HEALTH = catalog().entity("health", "residents")         # clock: death_date (L3: encrypted in silver)
HOUSES = catalog().entity("police", "houses")            # clock: load_date (the night delivered)
# hand-made classes with short ages, so the cutoffs are easy to read: 10 days to destruction, 30 to cold
INCIDENT = RetentionClass("incident", "report_time", cold_after=30, archive_after=60, destroy_after=10)
HEALTH_RECORD = RetentionClass("health_record", "death_date", cold_after=30, archive_after=60, destroy_after=10)
HOUSE = RetentionClass("house_register", LOAD_DATE, cold_after=30, archive_after=60, destroy_after=10)
SILVER_INCIDENTS = ("record_id string, report_time timestamp, handling_status string, "
                    "involved_citizen_ids__tok array<string>, _batch_date date")


def test_policy_cutoffs():
    # a record whose clock is on or before the cutoff is past the age
    assert INCIDENT.cutoff(date(2026, 12, 1), "destroy") == date(2026, 11, 21)
    assert INCIDENT.destroy_cutoff(date(2026, 12, 1)) == date(2026, 11, 21)
    assert INCIDENT.cutoff(date(2026, 12, 1), "cold") == date(2026, 11, 1)
    assert INCIDENT.cutoff(date(2026, 12, 1), "archive") == date(2026, 10, 2)
    assert reads_of({"*": 2, "2026-10": 5}, "2026-10") == 5 and reads_of({}, "2026-10") == 0


def test_tokens_of_every_person_a_row_names(tiny_spark):
    df = frame(tiny_spark, [("R1", "A", ["B", None, "C"]), ("R2", None, None), ("R3", "A", []), (None, None, None)],
               "record_id string, owner__tok string, involved__tok array<string>")
    got = df.select("record_id", tokens_of(df).alias("tokens"))
    want = frame(tiny_spark, [("R1", ["A", "B", "C"]), ("R2", []), ("R3", ["A"]), (None, [])],
                 "record_id string, tokens array<string>")
    assert_frame_equal(got, want)
    no_tokens = frame(tiny_spark, [("R1",)], "record_id string")
    assert_frame_equal(no_tokens.select("record_id", tokens_of(no_tokens).alias("tokens")),
                       frame(tiny_spark, [("R1", [])], "record_id string, tokens array<string>"))
    assert df.limit(0).select(tokens_of(df)).collect() == []


def test_clock_and_month_of_a_record(tiny_spark, memory_keyring):
    kr = memory_keyring
    inc = frame(tiny_spark, [("I1", datetime(2026, 10, 5, 12), date(2026, 11, 27)),
                             ("I2", None, date(2026, 11, 27)), (None, None, None)],
                "record_id string, report_time timestamp, _batch_date date")
    got = inc.select("record_id", clock_of(INCIDENTS, INCIDENT, kr).alias("clock"),
                     month_of("silver", INCIDENTS, INCIDENT, kr).alias("month"),
                     month_of("bronze", INCIDENTS, INCIDENT, kr).alias("night_month"),
                     entity_ref(INCIDENTS).alias("ref"))
    # silver and cold rows: the month of the entity's clock; any other layer: of the night delivered
    want = frame(tiny_spark, [("I1", date(2026, 10, 5), "2026-10", "2026-11", "police/incidents/I1"),
                              ("I2", None, None, "2026-11", "police/incidents/I2"), (None, None, None, None, None)],
                 "record_id string, clock date, month string, night_month string, ref string")
    assert_frame_equal(got, want)
    # an encrypted clock is decrypted in memory; load_date is the night delivered
    hl = frame(tiny_spark, [("H1", "2026-01-02", date(2026, 11, 27)), ("H2", None, date(2026, 11, 27))],
               "record_id string, death_date string, _batch_date date").withColumn(
        "death_date", encrypt(F.col("death_date"), kr))
    assert_frame_equal(hl.select("record_id", clock_of(HEALTH, HEALTH_RECORD, kr).alias("clock"),
                                 month_of("cold", HEALTH, HEALTH_RECORD, kr).alias("month")),
                       frame(tiny_spark, [("H1", date(2026, 1, 2), "2026-01"), ("H2", None, None)],
                             "record_id string, clock date, month string"))
    hs = frame(tiny_spark, [("HS1", date(2026, 11, 27)), (None, None)], "record_id string, _batch_date date")
    assert_frame_equal(hs.select("record_id", clock_of(HOUSES, HOUSE, kr).alias("clock")),
                       frame(tiny_spark, [("HS1", date(2026, 11, 27)), (None, None)], "record_id string, clock date"))
    assert inc.limit(0).select(clock_of(INCIDENTS, INCIDENT, kr)).collect() == []


def test_silver_refs_due_at_the_as_of_date(tiny_spark, memory_keyring):
    df = frame(tiny_spark, [("I1", datetime(2026, 11, 21, 12), "2", ["T1"], date(2026, 11, 27)),   # on the cutoff
                            ("I2", datetime(2026, 11, 22, 12), "2", ["T2"], date(2026, 11, 27)),    # a day younger
                            ("I3", None, "1", None, date(2026, 11, 27)),                          # no clock: live
                            (None,) * 5], SILVER_INCIDENTS)
    got = silver_refs(df, INCIDENTS, INCIDENT, date(2026, 12, 1), memory_keyring)      # cutoff 2026-11-21
    want = frame(tiny_spark, [("police_incidents", "I1", "police/incidents/I1", True, ["T1"], "2026-11"),
                              ("police_incidents", "I2", "police/incidents/I2", False, ["T2"], "2026-11"),
                              ("police_incidents", "I3", "police/incidents/I3", False, [], None),
                              ("police_incidents", None, None, False, [], None)],
                 "table string, record_id string, ref string, due boolean, tokens array<string>, month string")
    assert_frame_equal(got, want)
    assert silver_refs(df.limit(0), INCIDENTS, INCIDENT, date(2026, 12, 1), memory_keyring).collect() == []


def test_held_tokens_are_the_persons_an_open_hold_names(tiny_spark):
    open_incident = Hold("H_OPEN_INCIDENT", "未办结", "open", "silver.police_incidents", "handling_status = '1'", True,
                         ("involved_citizen_ids__tok",))
    records_only = Hold("H_RECORD", "记录", "record", "silver.police_incidents", "handling_status = '1'", True, ())
    df = frame(tiny_spark, [("I1", None, "1", ["T1", "T2"], None), ("I2", None, "1", ["T2", None], None),
                            ("I3", None, "2", ["T3"], None), ("I4", None, "1", None, None), (None,) * 5],
               SILVER_INCIDENTS)
    assert_frame_equal(held_tokens([(open_incident, df), (records_only, df)]),
                       frame(tiny_spark, [("T1",), ("T2",)], "token string"))
    assert held_tokens([(records_only, df)]) is None and held_tokens([]) is None
    assert held_tokens([(open_incident, df.limit(0))]).collect() == []


REFS = "table string, record_id string, ref string, due boolean, tokens array<string>, month string"


def test_destroyed_records_are_due_and_neither_held_nor_naming_a_held_person(tiny_spark):
    refs = frame(tiny_spark, [("t", "R1", "s/e/R1", True, ["T1"], "2016-01"),
                              ("t", "R2", "s/e/R2", True, ["T2"], "2016-01"),     # the record itself is held
                              ("t", "R3", "s/e/R3", True, ["T1", "T9"], "2016-01"),  # names a held person
                              ("t", "R4", "s/e/R4", False, ["T1"], "2026-01"),    # not due
                              ("t", "R5", "s/e/R5", True, [], "2016-02"),
                              (None, None, None, None, None, None)], REFS)
    held_refs = frame(tiny_spark, [("s/e/R2",), (None,)], "ref string")
    held_tok = frame(tiny_spark, [("T9",)], "token string")
    out = "table string, record_id string, ref string, tokens array<string>, month string"
    assert_frame_equal(destroyed_records(refs, held_refs, held_tok),
                       frame(tiny_spark, [("t", "R1", "s/e/R1", ["T1"], "2016-01"),
                                          ("t", "R5", "s/e/R5", [], "2016-02")], out))
    assert_frame_equal(destroyed_records(refs, None, None).select("record_id"),
                       frame(tiny_spark, [("R1",), ("R2",), ("R3",), ("R5",)], "record_id string"))
    assert destroyed_records(refs.limit(0), held_refs, held_tok).collect() == []


def test_cold_candidates_are_old_months_nobody_reads(tiny_spark, memory_keyring):
    kr = memory_keyring
    hot = frame(tiny_spark, [("I1", datetime(2026, 10, 5, 12), "2", None, date(2026, 10, 6)),   # its month read 5 times
                             ("I2", datetime(2026, 11, 1, 12), "2", None, date(2026, 11, 2)),   # on the cutoff,
                                                                                                # read once
                             ("I3", datetime(2026, 11, 2, 12), "2", None, date(2026, 11, 3)),   # a day too young
                             ("I4", None, "1", None, date(2026, 11, 3)),                    # no clock: live
                             (None,) * 5], SILVER_INCIDENTS)
    day = date(2026, 12, 1)                                           # cold_after 30 days: cutoff 2026-11-01
    got = cold_candidates(hot, INCIDENTS, INCIDENT, day, {"2026-10": 5, "2026-11": 1}, 3, kr)
    want = frame(tiny_spark, [("I2", datetime(2026, 11, 1, 12), "2", None, date(2026, 11, 2), "2026-11")],
                 SILVER_INCIDENTS + ", _month string")
    assert_frame_equal(got, want)
    # every month read often enough ("*"): nothing goes cold
    assert_frame_equal(cold_candidates(hot, INCIDENTS, INCIDENT, day, {"*": 3}, 3, kr),
                       frame(tiny_spark, [], SILVER_INCIDENTS + ", _month string"))
    # unread: both old months
    assert sorted(r["record_id"] for r in cold_candidates(hot, INCIDENTS, INCIDENT, day, {}, 3, kr).collect()) == [
        "I1", "I2"]
    assert cold_candidates(hot.limit(0), INCIDENTS, INCIDENT, day, {}, 3, kr).collect() == []


def test_holds_read_for_one_question_refuse_another():
    """``shuzhi.selection.Holds`` built for (day, age, with_archive) answers only that question: a
    destroy selection or held count given holds built for another day or age is a mistake that
    would select from the wrong records, so it raises before reading anything."""
    from shuzhi.selection import Holds, held_count, select_records

    day = date(2062, 1, 1)
    for_destroy = Holds({}, {}, None, None, None, asked=(day, "destroy", True))
    for_archive = Holds({}, {}, None, None, None, asked=(day, "archive", False))
    with pytest.raises(ValueError, match="reused for"):
        select_records(None, None, day, None, None, "archive", holds=for_destroy)
    with pytest.raises(ValueError, match="reused for"):
        select_records(None, None, date(2061, 1, 1), None, None, "destroy", with_archive=True, holds=for_destroy)
    with pytest.raises(ValueError, match="reused for"):
        held_count(None, None, None, None, day, holds=for_archive)
    # no silver table (holds None): nothing to select, nobody held — and nothing read to say so
    assert select_records(None, None, day, None, None, "destroy", with_archive=True, holds=None) is None
    assert held_count(None, None, None, None, day, holds=None) == 0
