"""Cross-verify's first stage (shuzhi.stages.conflicts): each detector on tiny silver-like frames (the
short keys ``silver_inputs`` makes), the death precedence, the pending and stale inputs, and the
register rows. Every expected frame is written here by hand from the rule's text (conf/rules.yaml,
the docstrings), never by calling the function under test; each case has a null row and an
empty input."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import date, datetime
from decimal import Decimal

import pytest
from frames import assert_frame_equal, frame
from pyspark.sql import functions as F

from shuzhi.crypto import encrypt
from shuzhi.frames import union_all
from shuzhi.rules import load_rules, load_tags, precedence
from shuzhi.stages.conflicts import (
    VerifyParams,
    conflicts_schema,
    deaths,
    observed_conflicts,
    pending_police_identities,
    stale_refs,
    x_absent_police,
    x_birth_mismatch,
    x_deceased_paid,
    x_dup_person,
    x_id_birth_sex,
    x_name_mismatch,
    x_uscc_invalid,
    x_vacant_occupied,
)

pytestmark = pytest.mark.unit

NIGHT = date(2026, 11, 27)
PARAMS = VerifyParams(load_rules(), precedence(), load_tags())
T1, T2 = datetime(2026, 11, 27, 8), datetime(2026, 11, 27, 9)
B = date(1985, 3, 2)
# the frames silver_inputs hands the detectors (L3 values the rules compare already decrypted)
POP = ("record_id string, tok string, id_enc binary, name binary, name__mtok string, birth_date date, sex string, "
       "citizen_id__birth date, citizen_id__sex string, person_status string, deregistration_date date, "
       "house_code string, household_id string, community_code string, ethnicity binary, updated_at timestamp, "
       "person_hint string")
CA = ("record_id string, tok string, id_enc binary, name binary, name__mtok string, birth_date date, sex string, "
      "citizen_id__birth date, citizen_id__sex string, assistance_type string, case_status string, "
      "household_id string, community_code string, death_date date, updated_at timestamp, person_hint string")
SS = ("record_id string, tok string, id_enc binary, name binary, name__mtok string, citizen_id__birth date, "
      "insurance_type string, enrolment_status string, employer_uscc string, employer_uscc__valid boolean, "
      "employer_name string, monthly_benefit decimal(12,2), last_payment_date date, updated_at timestamp, "
      "person_hint string")
HL = ("record_id string, tok string, id_enc binary, name binary, name__mtok string, birth_date date, sex string, "
      "citizen_id__birth date, citizen_id__sex string, community_code string, has_chronic boolean, "
      "has_disability boolean, death_date date, updated_at timestamp, person_hint string")
HOUSES = ("record_id string, house_code string, address string, community_code string, owner_citizen_id binary, "
          "owner_citizen_id__tok string, house_use string, declared_residents int, updated_at timestamp")
REGISTER = ("conflict_id string, rule_id string, severity string, departments array<string>, "
            "record_refs array<string>, subject string, person_token string, citizen_id_enc binary, "
            "evidence string, first_seen date, last_seen date, status string, resolved_on date, _run_id string")
FINDING = ("rule_id string, subject string, departments array<string>, record_refs array<string>, "
           "person_token string, citizen_id_enc binary, evidence string")


def cols(schema: str) -> list[str]:
    return [c.split(" ")[0] for c in schema.split(", ")]


def recs(spark, schema: str, *rows: dict):
    """A frame of the schema's columns; each row a dict of the values it has (the rest null)."""
    names = cols(schema)
    for r in rows:
        assert set(r) <= set(names), set(r) - set(names)
    return frame(spark, [tuple(r.get(n) for n in names) for r in rows], schema)


def found(parts: list):
    return union_all(parts)


def enc(s: str) -> bytes:        # a stand-in ciphertext: the detectors only carry it through
    return ("enc:" + s).encode()


# ---------------------------------------------------------------- deaths by source precedence

def test_deaths_take_the_date_of_the_first_source_in_precedence(tiny_spark):
    s = {"pop": recs(tiny_spark, POP,
                     dict(record_id="P1", tok="T1", person_status="1", deregistration_date=date(2026, 10, 1)),
                     dict(record_id="P3", tok="T3", person_status="0"),
                     dict(record_id="P4", tok="T4", person_status="1"),          # deregistered, no date
                     dict()),                                                    # the null row
         "ca": recs(tiny_spark, CA, dict(record_id="C1", tok="T1", death_date=date(2026, 9, 30)),
                    dict(record_id="C9", death_date=date(2026, 9, 1))),         # no token: nobody to link
         "hl": recs(tiny_spark, HL, dict(record_id="H2", tok="T2", death_date=date(2026, 8, 1)))}
    # death: [civil_affairs, health, police] — civil affairs' date wins over police's for T1
    want = frame(tiny_spark, [("T1", date(2026, 9, 30), ["civil_affairs/assistance/C1", "police/population/P1"],
                               ["civil_affairs", "police"]),
                              ("T2", date(2026, 8, 1), ["health/residents/H2"], ["health"])],
                 "tok string, death date, death_refs array<string>, death_srcs array<string>")
    assert_frame_equal(deaths(s, PARAMS.precedence["death"]), want)
    # police first: its date wins
    assert [r["death"] for r in deaths(s, ("police", "civil_affairs", "health")).filter("tok = 'T1'").collect()] == [
        date(2026, 10, 1)]
    assert deaths({}, PARAMS.precedence["death"]) is None
    empty = {k: df.limit(0) for k, df in s.items()}
    assert deaths(empty, PARAMS.precedence["death"]).collect() == []


# ---------------------------------------------------------------- the detectors

def test_deceased_paid(tiny_spark):
    s = {"pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", person_status="1",
                                           deregistration_date=date(2026, 10, 1))),
         "ca": recs(tiny_spark, CA,
                    dict(record_id="C1", tok="T1", id_enc=enc("1"), death_date=date(2026, 9, 30), case_status="ACTIVE",
                         assistance_type="DIBAO"),
                    dict(record_id="C2", tok="T2", id_enc=enc("2"), death_date=date(2026, 12, 1),  # after the night
                         case_status="ACTIVE", assistance_type="DIBAO"),
                    dict()),
         "ss": recs(tiny_spark, SS,
                    dict(record_id="S1", tok="T1", id_enc=enc("1"), insurance_type="110",
                         monthly_benefit=Decimal("3120.50"), last_payment_date=date(2026, 10, 15)),
                    dict(record_id="S2", tok="T1", id_enc=enc("1"), insurance_type="110",
                         monthly_benefit=Decimal("3120.50"), last_payment_date=date(2026, 9, 15)),   # before death
                    dict(record_id="S3", tok="T1", id_enc=enc("1"), last_payment_date=date(2026, 10, 15)),  # no benefit
                    dict())}
    by = "civil_affairs, police"
    want = frame(tiny_spark, [
        ("X_DECEASED_PAID", "social_security/insurance/S1", ["social_security", "civil_affairs", "police"],
         ["social_security/insurance/S1", "civil_affairs/assistance/C1", "police/population/P1"], "T1", enc("1"),
         f"benefit (scheme 110) paid after the death date recorded by {by}"),
        ("X_DECEASED_PAID", "civil_affairs/assistance/C1", ["civil_affairs", "police"],
         ["civil_affairs/assistance/C1", "police/population/P1"], "T1", enc("1"),
         f"assistance case still ACTIVE after the death recorded by {by}"),
    ], FINDING)
    assert_frame_equal(found(x_deceased_paid(s, NIGHT, PARAMS, None)), want)
    assert found(x_deceased_paid({k: df.limit(0) for k, df in s.items()}, NIGHT, PARAMS, None)).collect() == []
    assert x_deceased_paid({"ss": s["ss"]}, NIGHT, PARAMS, None) == []      # nobody's death known


def test_name_and_birth_mismatch_against_the_police_register(tiny_spark):
    s = {"pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", name__mtok="m1", birth_date=B),
                     dict(record_id="P2", tok="T2", name__mtok="m2"), dict()),
         "hl": recs(tiny_spark, HL, dict(record_id="H1", tok="T1", id_enc=enc("1"), name__mtok="mX",
                                         birth_date=date(1985, 3, 12)),
                    dict(record_id="H2", tok="T2", id_enc=enc("2"), name__mtok="m2", birth_date=B),  # police: no birth
                    dict(record_id="H9", tok="T9", name__mtok="m9", birth_date=B),                  # not in police
                    dict()),
         "ca": recs(tiny_spark, CA, dict(record_id="C1", tok="T1", name__mtok="m1"),   # same name, no birth date
                    dict(record_id="C2", tok="T1", id_enc=enc("1"))),                  # no name: nothing compared
         "ss": recs(tiny_spark, SS, dict(record_id="S1", tok="T1", id_enc=enc("1"), name__mtok="m1"))}
    names = frame(tiny_spark, [
        ("X_NAME_MISMATCH", "health/residents/H1", ["health", "police"],
         ["health/residents/H1", "police/population/P1"],
         "T1", enc("1"), "name in health differs from the police register (traditional/simplified variants compared "
         "as equal)")], FINDING)
    assert_frame_equal(found(x_name_mismatch(s, NIGHT, PARAMS, None)), names)
    births = frame(tiny_spark, [
        ("X_BIRTH_MISMATCH", "health/residents/H1", ["health", "police"],
         ["health/residents/H1", "police/population/P1"],
         "T1", enc("1"), "birth date in health differs from the police register by 10 day(s)")], FINDING)
    assert_frame_equal(found(x_birth_mismatch(s, NIGHT, PARAMS, None)), births)
    empty = {k: df.limit(0) for k, df in s.items()}
    assert found(x_name_mismatch(empty, NIGHT, PARAMS, None)).collect() == []
    assert found(x_birth_mismatch(empty, NIGHT, PARAMS, None)).collect() == []
    assert x_name_mismatch({"hl": s["hl"]}, NIGHT, PARAMS, None) == []         # no register to compare with


def test_birth_or_sex_against_the_number(tiny_spark):
    s = {"pop": recs(tiny_spark, POP,
                     dict(record_id="P1", tok="T1", id_enc=enc("1"), birth_date=B, citizen_id__birth=B, sex="2",
                          citizen_id__sex="1"),
                     dict(record_id="P2", tok="T2", birth_date=B, citizen_id__birth=B, sex="1", citizen_id__sex="1"),
                     dict()),
         "hl": recs(tiny_spark, HL,
                    # differs from the register too: that is X_BIRTH_MISMATCH's, not this rule's
                    dict(record_id="H1", tok="T1", birth_date=date(1985, 3, 12), citizen_id__birth=B),
                    # not in the register: compared with the number alone
                    dict(record_id="H3", tok="T3", id_enc=enc("3"), birth_date=date(1985, 3, 4), citizen_id__birth=B,
                         sex="9", citizen_id__sex="1"),                       # 9 (unstated) is not a contradiction
                    dict()),
         "ca": recs(tiny_spark, CA, dict(record_id="C1", birth_date=date(1990, 1, 1), citizen_id__birth=B))}  # no token
    want = frame(tiny_spark, [
        ("X_ID_BIRTH_SEX", "police/population/P1", ["police"], ["police/population/P1"], "T1", enc("1"),
         "sex code 2 but the number encodes 1"),
        ("X_ID_BIRTH_SEX", "health/residents/H3", ["health"], ["health/residents/H3"], "T3", enc("3"),
         "birth date differs from the one the number encodes by 2 day(s)")], FINDING)
    assert_frame_equal(found(x_id_birth_sex(s, NIGHT, PARAMS, None)), want)
    assert found(x_id_birth_sex({k: df.limit(0) for k, df in s.items()}, NIGHT, PARAMS, None)).collect() == []


def test_absent_from_police_unless_pending(tiny_spark):
    s = {"pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1"), dict()),
         "hl": recs(tiny_spark, HL, dict(record_id="H1", tok="T1"),
                    dict(record_id="H5", tok="T5", id_enc=enc("5")),
                    dict(record_id="H7", tok="T7", person_hint="h7"),         # pending by its name/birth hint
                    dict()),
         "ca": recs(tiny_spark, CA, dict(record_id="C5", tok="T5", id_enc=enc("5"))),
         "ss": recs(tiny_spark, SS, dict(record_id="S6", tok="T6"))}          # pending by its token
    pending = frame(tiny_spark, [("T6", None), (None, "h7"), (None, None)], "tok string, hint string")
    want = frame(tiny_spark, [
        ("X_ABSENT_POLICE", "person:T5", ["civil_affairs", "health"], ["civil_affairs/assistance/C5",
                                                                         "health/residents/H5"], "T5", enc("5"),
         "known to civil_affairs, health but not in the police population register")], FINDING)
    assert_frame_equal(found(x_absent_police(s, NIGHT, PARAMS, pending)), want)
    without = found(x_absent_police(s, NIGHT, PARAMS, None)).select("subject")
    assert_frame_equal(without, frame(tiny_spark, [("person:T5",), ("person:T6",), ("person:T7",)], "subject string"))
    assert found(x_absent_police({k: df.limit(0) for k, df in s.items()}, NIGHT, PARAMS, pending)).collect() == []


def test_vacant_house_with_active_residents(tiny_spark):
    s = {"houses": recs(tiny_spark, HOUSES,
                        dict(record_id="HS1", house_code="F1", house_use="4", owner_citizen_id=enc("o"),
                             owner_citizen_id__tok="TO"),
                        dict(record_id="HS2", house_code="F2", house_use="4"),   # vacant, nobody registered
                        dict(record_id="HS3", house_code="F3", house_use="1"),   # lived in
                        dict()),
         "pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", person_status="0", house_code="F1"),
                     dict(record_id="P2", tok="T2", person_status="0", house_code="F1"),
                     dict(record_id="P3", tok="T3", person_status="1", house_code="F1"),    # deceased: not active
                     dict(record_id="P4", tok="T4", person_status="0", house_code="F3"),
                     dict())}
    want = frame(tiny_spark, [
        ("X_VACANT_OCCUPIED", "police/houses/HS1", ["police"], ["police/houses/HS1", "police/population/P1",
                                                                "police/population/P2"], "TO", enc("o"),
         "declared vacant (FWYTDM=4) with 2 active resident(s) registered at the house code")], FINDING)
    assert_frame_equal(found(x_vacant_occupied(s, NIGHT, PARAMS, None)), want)
    assert found(x_vacant_occupied({k: df.limit(0) for k, df in s.items()}, NIGHT, PARAMS, None)).collect() == []


def test_invalid_employer_code(tiny_spark):
    s = {"ss": recs(tiny_spark, SS, dict(record_id="S1", tok="T1", id_enc=enc("1"), employer_uscc="91350100M000100Y44",
                                         employer_uscc__valid=False),
                    dict(record_id="S2", tok="T2", employer_uscc="91350100M000100Y43", employer_uscc__valid=True),
                    dict())}
    want = frame(tiny_spark, [("X_USCC_INVALID", "social_security/insurance/S1", ["social_security"],
                               ["social_security/insurance/S1"], "T1", enc("1"),
                               "employer code 91350100M000100Y44 fails its GB 32100 check character")], FINDING)
    assert_frame_equal(found(x_uscc_invalid(s, NIGHT, PARAMS, None)), want)
    assert found(x_uscc_invalid({"ss": s["ss"].limit(0)}, NIGHT, PARAMS, None)).collect() == []


def test_two_records_of_one_number_in_one_register(tiny_spark):
    s = {"pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", id_enc=enc("1"), updated_at=T1),
                     dict(record_id="P2", tok="T1", id_enc=enc("1"), updated_at=T2),       # the newer: primary
                     dict(record_id="P3", tok="T3", updated_at=T1),
                     dict(record_id="P8"), dict(record_id="P9")),                          # no token: not linked
         "hl": recs(tiny_spark, HL, dict(record_id="H1", tok="T1", updated_at=T1))}       # one record there
    want = frame(tiny_spark, [("X_DUP_PERSON", "police/population/P1", ["police"],
                               ["police/population/P1", "police/population/P2"], "T1", enc("1"),
                               "the same identity number as police record police/population/P2 (this is the older "
                               "record)")], FINDING)
    assert_frame_equal(found(x_dup_person(s, NIGHT, PARAMS, None)), want)
    assert found(x_dup_person({k: df.limit(0) for k, df in s.items()}, NIGHT, PARAMS, None)).collect() == []


# ---------------------------------------------------------------- the register's rows, pending and stale records

def test_observed_conflicts_one_row_per_rule_and_subject_stale_ones_left_out(tiny_spark):
    rules = {k: v for k, v in PARAMS.rules.items() if k in ("X_USCC_INVALID", "X_DUP_PERSON")}
    p = dataclasses.replace(PARAMS, rules=rules)
    s = {"ss": recs(tiny_spark, SS, dict(record_id="S1", tok="T1", id_enc=enc("1"), employer_uscc="U1",
                                         employer_uscc__valid=False),
                    dict(record_id="S2", tok="T2", employer_uscc="U2", employer_uscc__valid=False), dict()),
         "pop": recs(tiny_spark, POP, dict(record_id="P1", tok="T1", updated_at=T1),
                     dict(record_id="P2", tok="T1", updated_at=T2))}
    stale = frame(tiny_spark, [("social_security/insurance/S2",), (None,)], "ref string")
    got = observed_conflicts(s, NIGHT, None, "run-1", stale, p)

    def cid(rule, subject):      # the register's stable id: sha256(rule | subject), 24 hex characters
        return hashlib.sha256(f"{rule}|{subject}".encode()).hexdigest()[:24]

    want = frame(tiny_spark, [
        (cid("X_USCC_INVALID", "social_security/insurance/S1"), "X_USCC_INVALID", "medium", ["social_security"],
         ["social_security/insurance/S1"], "social_security/insurance/S1", "T1", enc("1"),
         "employer code U1 fails its GB 32100 check character", NIGHT, NIGHT, "open", None, "run-1"),
        (cid("X_DUP_PERSON", "police/population/P1"), "X_DUP_PERSON", "low", ["police"],
         ["police/population/P1", "police/population/P2"], "police/population/P1", "T1", None,
         "the same identity number as police record police/population/P2 (this is the older record)", NIGHT, NIGHT,
         "open", None, "run-1")], REGISTER)
    assert_frame_equal(got, want)
    # no rule runs: the register's schema, empty
    none = observed_conflicts(s, NIGHT, None, "run-1", None, dataclasses.replace(PARAMS, rules={}))
    assert none.schema == conflicts_schema() and none.collect() == []


def test_pending_police_identities(tiny_spark, memory_keyring):
    kr = memory_keyring
    pop = recs(tiny_spark, POP, dict(record_id="P1", tok="T1"))
    cq = frame(tiny_spark, [("police", "population", "P1", "T1", "h1"),      # back in silver: not pending
                            ("police", "population", "P9", "T9", "h9"),
                            ("health", "residents", "H9", "T8", "h8"),         # another register
                            ("police", "population", "P10", None, None),       # nothing to match on
                            (None, None, None, None, None)],
               "_source string, _entity string, record_id string, citizen_id__tok string, person_hint string")
    iq = frame(tiny_spark, [("police", "population", 'P7,"150105 19850302 1230",张三'),
                            ("police", "houses", "HS1,150105198503021230"), (None, None, None)],
               "_source string, _entity string, raw string").select(
        "_source", "_entity", encrypt(F.col("raw"), kr).alias("raw_record_enc"))
    token = hmac.new(kr.hmac_key, b"150105198503021230", hashlib.sha256).hexdigest()
    want = frame(tiny_spark, [("T9", "h9"), (token, None)], "tok string, hint string")
    assert_frame_equal(pending_police_identities(pop, cq, iq, kr), want)
    assert pending_police_identities(pop, None, None, kr) is None
    assert pending_police_identities(None, cq.limit(0), iq.limit(0), kr).collect() == []


def test_stale_refs_are_records_whose_newest_version_is_quarantined(tiny_spark):
    d27, d28 = date(2026, 11, 27), date(2026, 11, 28)
    cq = frame(tiny_spark, [("police", "population", "P1", d28), ("police", "population", "P2", d27),
                            ("health", "residents", "H1", d28), (None, None, None, None)],
               "_source string, _entity string, record_id string, _batch_date date")
    silver = {"police_population": frame(tiny_spark, [("P1", d27), ("P2", d28), (None, None)],
                                         "record_id string, _batch_date date"),
              "health_residents": frame(tiny_spark, [("H1", d28)], "record_id string, _batch_date date")}
    assert_frame_equal(stale_refs(cq, silver), frame(tiny_spark, [("police/population/P1",)], "ref string"))
    assert stale_refs(None, silver) is None
    assert stale_refs(cq, {}) is None
    assert stale_refs(cq.limit(0), silver).collect() == []
