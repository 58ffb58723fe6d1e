"""Cross-verify's second stage (shuzhi.stages.themes): the golden person record with its tags
(elderly_alone's thresholds are data: conf/rules.yaml ``tags``), and the house, event and
organisation themes, on tiny silver-like frames. Every expected frame is written here by hand
from the tag's text (conf/rules.yaml), never by calling the function under test; each case has a
null row and an empty input."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest
from frames import assert_frame_equal, frame
from pyspark.sql import functions as F
from test_unit_conflicts import CA, HL, HOUSES, PARAMS, POP, REGISTER, SS, recs

from shuzhi.rules import Tag
from shuzhi.stages.themes import event_theme, house_theme, organisation_theme, person_theme

pytestmark = pytest.mark.unit

NIGHT = date(2026, 11, 27)
T1, T2 = datetime(2026, 11, 27, 8), datetime(2026, 11, 27, 9)
INCIDENTS = ("record_id string, incident_number string, report_time timestamp, incident_category string, "
             "address string, community_code string, involved_citizen_ids binary, "
             "involved_citizen_ids__tok array<string>, handling_status string, updated_at timestamp")


def silver(spark):
    pop = recs(spark, POP,
               # 76, active, alone at F1: elderly_alone (min_age 60, registered_residents 1)
               dict(record_id="P1", tok="T1", birth_date=date(1950, 1, 1), person_status="0", house_code="F1",
                    updated_at=T1),
               # 60 tomorrow: not yet
               dict(record_id="P2", tok="T2", birth_date=date(1966, 11, 28), person_status="0", house_code="F2",
                    updated_at=T1),
               # 86 but not alone: F3 has two active residents
               dict(record_id="P3", tok="T3", birth_date=date(1940, 5, 5), person_status="0", house_code="F3",
                    household_id="HH3", updated_at=T1),
               dict(record_id="P4", tok="T4", birth_date=date(1990, 1, 1), person_status="0", house_code="F3",
                    household_id="HH3", updated_at=T1),
               dict(record_id="P5", tok="T5", birth_date=date(1940, 1, 1), person_status="2", updated_at=T1),
               dict(record_id="P6", tok="T6", birth_date=date(1940, 1, 1), person_status="1",
                    deregistration_date=date(2026, 10, 1), house_code="F6", updated_at=T1),
               dict())
    hl = recs(spark, HL,
              dict(record_id="H1", tok="T1", birth_date=date(1950, 1, 2), has_chronic=True, has_disability=False,
                   updated_at=T2),                       # police's birth date wins (precedence: identity)
              dict(record_id="H7", tok="T7", birth_date=date(1950, 1, 1), has_chronic=False, has_disability=True,
                   updated_at=T1),                       # not in the police register: never elderly_alone
              dict())
    ca = recs(spark, CA,
              dict(record_id="C3", tok="T3", case_status="ACTIVE", assistance_type="DIBAO", household_id="HH3",
                   updated_at=T1),
              dict(record_id="C4", tok="T4", case_status="CLOSED", assistance_type="DIBAO", household_id="HH3",
                   updated_at=T1),                       # the household has an active allowance case
              dict(record_id="C8", tok="T8", case_status="ACTIVE", assistance_type="DISABILITY", updated_at=T1),
              dict())
    return {"pop": pop, "hl": hl, "ca": ca}


def register(spark):
    return frame(spark, [("c1", "X_DUP_PERSON", "low", [], [], "s1", "T6", None, "e", NIGHT, NIGHT, "open", None, "r"),
                         ("c2", "X_DUP_PERSON", "low", [], [], "s2", "T1", None, "e", NIGHT, NIGHT, "resolved", NIGHT,
                          "r"),
                         ("c3", "X_USCC_INVALID", "low", [], [], "s3", None, None, "e", NIGHT, NIGHT, "open", None,
                          "r")], REGISTER)


PERSON_COLS = ["person_token", "birth_date", "person_status", "deceased", "moved_out", "sources", "record_refs",
               "open_conflicts", "tags"]
PERSON = ("person_token string, birth_date date, person_status string, deceased boolean, moved_out boolean, "
          "sources array<string>, record_refs array<string>, open_conflicts bigint, tags array<string>")


def test_person_theme_golden_record_and_tags(tiny_spark):
    s = silver(tiny_spark)
    got = person_theme(s, register(tiny_spark), NIGHT, PARAMS)
    pp, hh = "police/population/", "health/residents/"
    want = frame(tiny_spark, [
        ("T1", date(1950, 1, 1), "0", False, False, ["health", "police"], [hh + "H1", pp + "P1"], 0,
         ["elderly_alone", "chronic_condition"]),
        ("T2", date(1966, 11, 28), "0", False, False, ["police"], [pp + "P2"], 0, []),
        ("T3", date(1940, 5, 5), "0", False, False, ["civil_affairs", "police"],
         ["civil_affairs/assistance/C3", pp + "P3"], 0, ["dibao_household"]),
        ("T4", date(1990, 1, 1), "0", False, False, ["civil_affairs", "police"],
         ["civil_affairs/assistance/C4", pp + "P4"], 0, ["dibao_household"]),
        ("T5", date(1940, 1, 1), "2", False, True, ["police"], [pp + "P5"], 0, ["moved_out"]),
        ("T6", date(1940, 1, 1), "1", True, False, ["police"], [pp + "P6"], 1, ["deceased", "has_open_conflicts"]),
        # known to health or civil affairs only: no police status, so neither deceased nor moved out is known
        ("T7", date(1950, 1, 1), None, None, None, ["health"], [hh + "H7"], 0, ["disability"]),
        ("T8", None, None, None, None, ["civil_affairs"], ["civil_affairs/assistance/C8"], 0, ["disability"]),
    ], PERSON)
    assert_frame_equal(got, want, columns=PERSON_COLS)
    assert {r["person_token"]: r["_as_of"] for r in got.collect()} == dict.fromkeys(
        ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"], NIGHT)
    empty = person_theme({k: df.limit(0) for k, df in s.items()}, register(tiny_spark).limit(0), NIGHT, PARAMS)
    assert_frame_equal(empty, frame(tiny_spark, [], PERSON), columns=PERSON_COLS)


def test_elderly_alone_thresholds_are_the_catalogues(tiny_spark):
    """min_age 80 instead of 60: the 76-year-old living alone is no longer tagged."""
    tags = dict(PARAMS.tags)
    tags["person"] = {**tags["person"], "elderly_alone": Tag("person", "elderly_alone", "独居老人", "alone",
                                                             (("min_age", 80), ("registered_residents", 1)))}
    got = person_theme(silver(tiny_spark), register(tiny_spark), NIGHT, dataclasses.replace(PARAMS, tags=tags))
    assert_frame_equal(got.filter(F.col("person_token").isin("T1", "T3")), frame(
        tiny_spark, [("T1", ["chronic_condition"]), ("T3", ["dibao_household"])], "person_token string, "
        "tags array<string>"), columns=["person_token", "tags"])
    # two residents allowed: the 86-year-old sharing F3 is "alone" by this catalogue
    tags["person"]["elderly_alone"] = Tag("person", "elderly_alone", "独居老人", "alone",
                                          (("min_age", 80), ("registered_residents", 2)))
    got = person_theme(silver(tiny_spark), register(tiny_spark), NIGHT, dataclasses.replace(PARAMS, tags=tags))
    assert [r["tags"] for r in got.filter(F.col("person_token") == "T3").collect()] == [
        ["elderly_alone", "dibao_household"]]


def test_house_theme_latest_version_and_tags(tiny_spark):
    s = {"houses": recs(tiny_spark, HOUSES,
                        dict(record_id="HS1", house_code="F1", house_use="1", declared_residents=1, updated_at=T1),
                        dict(record_id="HS1b", house_code="F1", house_use="4", declared_residents=2, updated_at=T2),
                        dict(record_id="HS2", house_code="F2", house_use="2", declared_residents=0, updated_at=T1),
                        dict(record_id="HS3", house_code="F3", house_use="1", updated_at=T1),   # nothing declared
                        dict()),
         "pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", person_status="0", house_code="F1"),
                     dict(record_id="P2", tok="T2", person_status="1", house_code="F1"), dict())}
    cols = ["house_code", "record_id", "house_use", "declared_residents", "registered_residents", "tags"]
    schema = ("house_code string, record_id string, house_use string, declared_residents int, "
              "registered_residents bigint, tags array<string>")
    want = frame(tiny_spark, [("F1", "HS1b", "4", 2, 1, ["vacant_with_residents", "declared_differs_from_registered"]),
                              ("F2", "HS2", "2", 0, 0, ["rented"]),
                              ("F3", "HS3", "1", None, 0, [])], schema)
    assert_frame_equal(house_theme(s, NIGHT), want, columns=cols)
    # without the population register nobody is registered anywhere
    assert [r["registered_residents"] for r in house_theme({"houses": s["houses"]}, NIGHT).collect()] == [0, 0, 0]
    assert_frame_equal(house_theme({k: df.limit(0) for k, df in s.items()}, NIGHT), frame(tiny_spark, [], schema),
                       columns=cols)


def test_event_theme_links_persons_and_houses(tiny_spark):
    s = {"incidents": frame(tiny_spark, [
        ("E1", "J1", T1, "06", "大学东街1号", "150105001001", None, ["T1", "T9"], "1", T1),
        ("E2", "J2", T1, "01", "昭乌达路11号", "150105001001", None, [], "2", T1),
        ("E3", "J3", T1, "01", None, None, None, None, "2", T1),
        (None,) * 10], INCIDENTS)}
    person = frame(tiny_spark, [("T1",), (None,)], "person_token string")
    house = frame(tiny_spark, [("大学东街1号", "F1"), (None, "F0")], "address string, house_code string")
    got = event_theme(s, person, house, NIGHT).select("record_id", "house_code", F.sort_array("person_tokens")
                                                      .alias("person_tokens"), "persons_linked", "tags")
    schema = ("record_id string, house_code string, person_tokens array<string>, persons_linked bigint, "
              "tags array<string>")
    want = frame(tiny_spark, [("E1", "F1", ["T1", "T9"], 1, ["open_case", "domestic"]),   # T9: no golden record
                              ("E2", None, [], 0, []), ("E3", None, [], 0, []), (None, None, [], 0, [])], schema)
    assert_frame_equal(got, want)
    no_house = event_theme(s, person, None, NIGHT)
    assert [r["house_code"] for r in no_house.collect()] == [None] * 4
    empty = event_theme({"incidents": s["incidents"].limit(0)}, person.limit(0), house.limit(0), NIGHT)
    assert empty.collect() == []


def test_organisation_theme(tiny_spark):
    s = {"ss": recs(tiny_spark, SS,
                    dict(record_id="S1", tok="T1", employer_uscc="U1", employer_name="甲公司",
                         employer_uscc__valid=True, enrolment_status="1"),
                    dict(record_id="S2", tok="T2", employer_uscc="U1", employer_uscc__valid=True, enrolment_status="2"),
                    dict(record_id="S3", tok="T1", employer_uscc="U1", employer_uscc__valid=True, enrolment_status="1"),
                    dict(record_id="S4", tok="T3", employer_uscc="U2", employer_name="乙厂", employer_uscc__valid=False,
                         enrolment_status="1"),
                    dict())}                                                  # no employer: no organisation
    schema = ("uscc string, name string, uscc_valid boolean, enrolled_persons bigint, contributing_persons bigint, "
              "tags array<string>, _as_of date")
    want = frame(tiny_spark, [("U1", "甲公司", True, 2, 1, [], NIGHT),
                              ("U2", "乙厂", False, 1, 1, ["invalid_uscc"], NIGHT)], schema)
    assert_frame_equal(organisation_theme(s, NIGHT), want)
    assert_frame_equal(organisation_theme({"ss": s["ss"].limit(0)}, NIGHT), frame(tiny_spark, [], schema))
