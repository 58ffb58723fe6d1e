"""Cross-verify (silver → gold): each X_* rule fires exactly on its planted contradiction and not
on its look-alike, the register keeps first/last seen and resolves what is fixed, re-runs change
nothing, and the theme tables link persons, houses, events and organisations."""
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import deliveries as dl
import pytest
from pyspark.sql import functions as F
from stdnum.cn import ric, uscc

from jobs import clean, ingest, verify
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, decrypt
from shuzhi.delta import read_table, table_version
from shuzhi.schemas import catalog

pytestmark = pytest.mark.spark

D1 = "2026-11-27"
D2 = "2026-11-28"
N1, N2 = date(2026, 11, 27), date(2026, 11, 28)


def cid(region: str, ymd: str, seq: str) -> str:
    first17 = f"{region}{ymd}{seq}"
    return first17 + ric.calc_check_digit(first17 + "0")     # stdnum drops the last character


GOOD_USCC = "91150105MA0N12345" + uscc.calc_check_digit("91150105MA0N12345")
BAD_USCC = GOOD_USCC[:17] + ("0" if GOOD_USCC[17] != "0" else "1")


class P:
    """A person: number (valid), name, birth date, sex code the number encodes."""

    def __init__(self, region, ymd, seq, name):
        self.id = cid(region, ymd, seq)
        self.name = name
        self.csrq = ymd
        self.birth = f"{ymd[:4]}-{ymd[4:6]}-{ymd[6:]}"
        self.sex = "1" if int(seq[2]) % 2 else "2"
        self.label = "男" if self.sex == "1" else "女"


P1 = P("150105", "19850302", "011", "张一")      # in all four departments, consistent
P2 = P("110101", "19550505", "021", "王二")      # died (health) and pension paid after the death
P3 = P("110101", "19500101", "032", "刘三")      # died, last payment before the death
P4 = P("150105", "19900707", "041", "李四")      # another name in health (fixed on night 2)
P5 = P("150105", "19880808", "051", "张伟")      # health writes 張偉: the same name
P6 = P("150105", "19920202", "062", "赵六")      # civil affairs has another birth date
P7 = P("150105", "19930303", "071", "孙七")      # police sex code contradicts the number
P8 = P("150105", "19940404", "081", "周八")      # only in health and social security
P9 = P("150105", "19950505", "091", "吴九")      # employer code fails its check
P10 = P("150105", "19960606", "101", "郑十")     # two police record ids
P11 = P("110101", "19501010", "111", "冯十一")   # 76, alone in a house
P12 = P("150105", "19970707", "121", "陈十二")   # lives in a house declared vacant
NX = cid("150105", "19980808", "131")            # valid number known to nobody but an incident
PERSONS = [P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12]

HOUSE_ADDR = {"F01": "赛罕区大学东街1号", "F02": "赛罕区大学东街2号", "F11": "赛罕区昭乌达路11号",
              "F12": "赛罕区昭乌达路12号"}


def pop(rid, p: P, house, **kw):
    fields = dict(XBDM=p.sex, CSRQ=p.csrq, HJDZ_XZQHDM=p.id[:6], FWBM=house, HH="H" + rid)
    return dl.pop_row(rid, p.id, p.name, **{**fields, **kw})


def police_delivery(settings):
    population = [pop("R01", P1, "F01"), pop("R02", P2, "F02"), pop("R03", P3, "F02"), pop("R04", P4, "F04"),
                  pop("R05", P5, "F05"), pop("R06", P6, "F06"), pop("R07", P7, "F07", XBDM="2"),
                  pop("R09", P9, "F09"),
                  pop("R10A", P10, "F10", GXSJ="2026-11-20 08:00:00"), pop("R10B", P10, "F10"),
                  pop("R11", P11, "F11"), pop("R12", P12, "F12")]
    houses = [[rid, code, HOUSE_ADDR[code], "150105001001", owner, use, n, "2026-11-27 08:00:00"]
              for rid, code, owner, use, n in (("HS01", "F01", P1.id, "1", "1"), ("HS02", "F02", P2.id, "1", "2"),
                                               ("HS11", "F11", P11.id, "1", "1"), ("HS12", "F12", "", "4", "0"))]
    incidents = [["E1", "J20261126001", "2026-11-26 20:00:00", "01", HOUSE_ADDR["F11"], "150105001001",
                  f"{P1.id};{P7.id};{NX}", "1", "2026-11-27 08:00:00"],
                 ["E2", "J20261126002", "2026-11-26 21:00:00", "02", "赛罕区某路99号", "150105001001", "", "3",
                  "2026-11-27 08:00:00"]]
    files = {}
    for ent, rows in (("population", population), ("houses", houses), ("incidents", incidents)):
        header = catalog().entity("police", ent).field_names
        files[ent] = (dl.csv_bytes(header, rows), len(rows), "GB18030")
    dl.write_delivery(settings.landing, "police", D1, files)


def hl(rid, p: P, name=None, death=None, updated="2026-11-27 08:00:00"):
    return dict(record_id=rid, id_no=p.id, name=name or p.name, sex_code=p.sex, birth_date=p.birth,
                community_code="150105001001", chronic_conditions=None, disability_grade=None,
                family_doctor_team="T015", last_visit_date="2026-10-11", death_date=death, updated_at=updated)


def ca(rid, p: P, birth=None, **kw):
    base = dict(record_id=rid, id_number=p.id, name=p.name, gender=p.label, birth_date=birth or p.birth,
                assistance_type="DIBAO", monthly_amount_yuan=850.0, start_date="2026-01-01", end_date=None,
                status="ACTIVE", household_id="MZH" + rid, community_code="150105001001", death_registered_date=None,
                updated_at="2026-11-27T21:04:11+08:00")
    base.update(kw)
    return base


def ss(rid, p: P, **kw):
    base = dict(record_id=rid, sfzh=p.id, xm=p.name, insurance_type="110", enrolment_status="1", employer_uscc=None,
                employer_name=None, monthly_benefit=None, last_payment_date=None,
                updated_at=datetime(2026, 11, 27, 1, 0, 0, tzinfo=timezone.utc))
    base.update(kw)
    return base


def tok(keyring, p):
    return keyring.token_py(p.id if isinstance(p, P) else p)


def register(spark, settings):
    register = read_table(spark, settings.table_path("gold", "conflicts"))
    return {(r["rule_id"], r["subject"]): r for r in register.collect()}


def gold(spark, settings, name):
    return read_table(spark, settings.table_path("gold", name))


@pytest.fixture(scope="module")
def lake(spark, spark_settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("verify")
    settings = Settings.load(home=home / "home", key_dir=home / "keys", spark=spark_settings)
    keyring = Keyring.create(settings.key_dir)
    police_delivery(settings)
    dl.health(settings.landing, D1, [hl("H1", P1), hl("H2", P2, death="2026-01-10"), hl("H3", P3, death="2026-01-10"),
                                     hl("H4", P4, name="李斯"), hl("H5", P5, name="張偉"), hl("H8", P8)])
    dl.civil_affairs(settings.landing, D1, [ca("M1", P1),
                                            ca("M6", P6, birth="1992-03-02", assistance_type="DISABILITY")])
    dl.social_security(settings.landing, D1, [
        ss("S1", P1, employer_uscc=GOOD_USCC, employer_name="呼和浩特某公司"),
        ss("S2", P2, enrolment_status="3", monthly_benefit=Decimal("3000.00"), last_payment_date=date(2026, 11, 15)),
        ss("S3", P3, enrolment_status="3", monthly_benefit=Decimal("2500.00"), last_payment_date=date(2025, 12, 15)),
        ss("S8", P8, employer_uscc=GOOD_USCC, employer_name="呼和浩特某公司"),
        ss("S9", P9, employer_uscc=BAD_USCC, employer_name="某无效代码公司", enrolment_status="2")])
    for src in ("police", "civil_affairs", "social_security", "health"):
        res = ingest.run(spark, settings, src, D1, keyring=keyring)
        assert res.status == "loaded" and all(f.quarantined_rows == 0 for f in res.files)
    for r in clean.run(spark, settings, D1, keyring=keyring):
        assert r.status == "cleaned" and r.quarantined == 0 and r.superseded == 0, r
    v1 = verify.run(spark, settings, D1, keyring=keyring)
    snap = {"register": register(spark, settings),
            "person": {r["person_token"]: r.asDict() for r in gold(spark, settings, "person").collect()}}
    # night 2: health corrects P4's name
    d = dl.health(settings.landing, D2, [hl("H4", P4, updated="2026-11-28 09:00:00")])
    manifest = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    (d / "manifest.json").write_text(json.dumps(dict(manifest, kind="incremental")), encoding="utf-8")
    ingest.run(spark, settings, "health", D2, keyring=keyring)
    clean.run(spark, settings, D2, keyring=keyring)
    v2 = verify.run(spark, settings, D2, keyring=keyring)
    return settings, keyring, v1, v2, snap


def expected(keyring):
    """(rule, subject) → record refs that must be in the evidence."""
    return {
        ("X_DECEASED_PAID", "social_security/insurance/S2"): {"social_security/insurance/S2", "health/residents/H2"},
        ("X_NAME_MISMATCH", "health/residents/H4"): {"health/residents/H4", "police/population/R04"},
        ("X_BIRTH_MISMATCH", "civil_affairs/assistance/M6"): {"civil_affairs/assistance/M6", "police/population/R06"},
        ("X_ID_BIRTH_SEX", "police/population/R07"): {"police/population/R07"},
        ("X_ABSENT_POLICE", "person:" + tok(keyring, P8)): {"health/residents/H8", "social_security/insurance/S8"},
        ("X_VACANT_OCCUPIED", "police/houses/HS12"): {"police/houses/HS12", "police/population/R12"},
        ("X_USCC_INVALID", "social_security/insurance/S9"): {"social_security/insurance/S9"},
        ("X_DUP_PERSON", "police/population/R10A"): {"police/population/R10A", "police/population/R10B"},
    }


PERSON_OF = {"social_security/insurance/S2": P2, "health/residents/H4": P4, "civil_affairs/assistance/M6": P6,
             "police/population/R07": P7, "social_security/insurance/S9": P9, "police/population/R10A": P10}


def test_night1_each_rule_fires_exactly_once(spark, lake):
    settings, keyring, v1, _, snap = lake
    reg = snap["register"]
    exp = expected(keyring)
    assert set(reg) == set(exp)
    assert v1.findings == {rule: 1 for rule, _ in exp}
    assert (v1.opened, v1.resolved, v1.open_total) == (8, 0, 8)
    for key, want in exp.items():
        r = reg[key]
        assert set(r["record_refs"]) == want, key
        assert (r["status"], r["first_seen"], r["last_seen"], r["resolved_on"]) == ("open", N1, N1, None), key
    by_rule = {k[0]: reg[k] for k in reg}
    assert set(by_rule["X_DECEASED_PAID"]["departments"]) == {"social_security", "health"}
    assert set(by_rule["X_NAME_MISMATCH"]["departments"]) == {"health", "police"}
    assert set(by_rule["X_BIRTH_MISMATCH"]["departments"]) == {"civil_affairs", "police"}
    assert set(by_rule["X_ABSENT_POLICE"]["departments"]) == {"health", "social_security"}
    assert by_rule["X_ABSENT_POLICE"]["person_token"] == tok(keyring, P8)
    assert by_rule["X_VACANT_OCCUPIED"]["person_token"] is None          # the house has no owner person
    for (rule, subject), r in reg.items():
        if subject in PERSON_OF:
            assert r["person_token"] == tok(keyring, PERSON_OF[subject]), subject
        assert r["severity"] == {"X_DECEASED_PAID": "high", "X_DUP_PERSON": "low"}.get(rule, "medium")
        # evidence without L3/L4 plaintext, and no birth date (the exported mask hides exactly those digits)
        for p in PERSONS:
            assert p.id not in r["evidence"] and p.name not in r["evidence"]
            assert p.birth not in r["evidence"] and p.csrq not in r["evidence"]
    assert reg[("X_BIRTH_MISMATCH", "civil_affairs/assistance/M6")]["evidence"] == \
        "birth date in civil_affairs differs from the police register by 29 day(s)"       # 1992-03-02 vs 02-02
    assert reg[("X_ID_BIRTH_SEX", "police/population/R07")]["evidence"] == "sex code 2 but the number encodes 1"
    # the identity number travels encrypted
    enc = read_table(spark, settings.table_path("gold", "conflicts")).select(
        "subject", decrypt(F.col("citizen_id_enc"), keyring).alias("cid")).collect()
    assert {r["subject"]: r["cid"] for r in enc if r["subject"] in PERSON_OF} == {
        s: p.id for s, p in PERSON_OF.items()}


def test_night2_fix_resolves_others_stay_open(spark, lake):
    settings, keyring, _, v2, _ = lake
    reg = register(spark, settings)
    exp = expected(keyring)
    assert set(reg) == set(exp)
    fixed = ("X_NAME_MISMATCH", "health/residents/H4")
    r = reg[fixed]
    assert (r["status"], r["resolved_on"], r["first_seen"], r["last_seen"]) == ("resolved", N2, N1, N1)
    for key in set(exp) - {fixed}:
        r = reg[key]
        assert (r["status"], r["first_seen"], r["last_seen"], r["resolved_on"]) == ("open", N1, N2, None), key
        assert set(r["record_refs"]) == exp[key]
    assert v2.findings == {rule: 1 for rule, _ in set(exp) - {fixed}}
    assert (v2.opened, v2.resolved, v2.open_total) == (0, 1, 7)
    # silver holds the corrected health record
    h4 = read_table(spark, settings.table_path("silver", "health_residents")).filter(F.col("record_id") == "H4") \
        .select(decrypt(F.col("name"), keyring).alias("n"), "_batch_date").collect()
    assert [(x["n"], x["_batch_date"]) for x in h4] == [("李四", N2)]


def test_rerunning_verify_changes_no_table(spark, lake):
    settings, keyring, _, _, _ = lake
    paths = [settings.table_path("gold", t) for t in ("conflicts", "person", "house", "event", "organisation")] + [
        settings.table_path("ops", "rule_hits")]
    before = [table_version(spark, p) for p in paths]
    reg_before = sorted(map(str, read_table(spark, paths[0]).drop("citizen_id_enc").collect()))
    verify.run(spark, settings, D2, keyring=keyring)
    assert [table_version(spark, p) for p in paths] == before
    assert sorted(map(str, read_table(spark, paths[0]).drop("citizen_id_enc").collect())) == reg_before


def test_person_theme(spark, lake):
    settings, keyring, _, _, snap = lake
    rows = {r["person_token"]: r for r in gold(spark, settings, "person").collect()}
    t = {p.name: tok(keyring, p) for p in PERSONS}
    assert set(rows) == set(t.values())                     # one row per person token (P10's two records: one)
    name_of = {v: k for k, v in t.items()}
    sources = {name_of[k]: r["sources"] for k, r in rows.items()}
    assert sources == {
        "张一": ["civil_affairs", "health", "police", "social_security"],
        "王二": ["health", "police", "social_security"], "刘三": ["health", "police", "social_security"],
        "李四": ["health", "police"], "张伟": ["health", "police"], "赵六": ["civil_affairs", "police"],
        "孙七": ["police"], "周八": ["health", "social_security"], "吴九": ["police", "social_security"],
        "郑十": ["police"], "冯十一": ["police"], "陈十二": ["police"]}
    assert set(rows[t["郑十"]]["record_refs"]) == {"police/population/R10A", "police/population/R10B"}
    tags_n2 = {name_of[k]: set(r["tags"]) for k, r in rows.items()}
    tags_n1 = {name_of[k]: set(r["tags"]) for k, r in snap["person"].items()}
    want_n1 = {"张一": {"dibao_household"}, "王二": {"deceased", "has_open_conflicts"}, "刘三": {"deceased"},
               "李四": {"has_open_conflicts"}, "张伟": set(), "赵六": {"disability", "has_open_conflicts"},
               "孙七": {"has_open_conflicts"}, "周八": {"has_open_conflicts"}, "吴九": {"has_open_conflicts"},
               "郑十": {"has_open_conflicts"}, "冯十一": {"elderly_alone"}, "陈十二": set()}
    assert tags_n1 == want_n1
    assert tags_n2 == dict(want_n1, 李四=set())                 # P4's only conflict resolved on night 2
    assert {name_of[k]: r["open_conflicts"] for k, r in rows.items() if r["open_conflicts"]} == {
        "王二": 1, "赵六": 1, "孙七": 1, "周八": 1, "吴九": 1, "郑十": 1}
    p2 = rows[t["王二"]]
    assert p2["deceased"] is True and p2["birth_date"] == date(1955, 5, 5) and p2["sex"] == "1"
    assert rows[t["冯十一"]]["house_code"] == "F11" and rows[t["刘三"]]["deceased"] is True
    assert rows[t["张一"]]["deceased"] is False
    # identity by precedence: police name for P5 (health writes 張偉), health for P8 (not in police)
    names = {r["person_token"]: r["n"] for r in gold(spark, settings, "person")
             .select("person_token", decrypt(F.col("name"), keyring).alias("n")).collect()}
    assert names[t["张伟"]] == "张伟" and names[t["周八"]] == "周八" and names[t["李四"]] == "李四"
    assert {r["_as_of"] for r in rows.values()} == {N2}


def test_house_event_organisation_themes(spark, lake):
    settings, keyring, _, _, _ = lake
    houses = {r["house_code"]: r for r in gold(spark, settings, "house").collect()}
    assert {k: r["registered_residents"] for k, r in houses.items()} == {"F01": 1, "F02": 2, "F11": 1, "F12": 1}
    assert houses["F12"]["house_use"] == "4" and "vacant_with_residents" in houses["F12"]["tags"]
    assert {k: set(r["tags"]) for k, r in houses.items()} == {
        "F01": set(), "F02": set(), "F11": set(), "F12": {"vacant_with_residents", "declared_differs_from_registered"}}
    assert houses["F01"]["owner_token"] == tok(keyring, P1) and houses["F12"]["owner_token"] is None

    events = {r["record_id"]: r for r in gold(spark, settings, "event").collect()}
    assert set(events) == {"E1", "E2"}
    e1 = events["E1"]
    assert e1["house_code"] == "F11"
    assert set(e1["person_tokens"]) == {tok(keyring, P1), tok(keyring, P7), tok(keyring, NX)}
    assert len(e1["person_tokens"]) == 3 and e1["persons_linked"] == 2     # NX is nobody's person record
    assert (events["E2"]["house_code"], events["E2"]["person_tokens"], events["E2"]["persons_linked"]) == (None, [], 0)

    orgs = {r["uscc"]: r for r in gold(spark, settings, "organisation").collect()}
    assert {k: (r["uscc_valid"], r["enrolled_persons"], r["contributing_persons"], r["name"])
            for k, r in orgs.items()} == {GOOD_USCC: (True, 2, 2, "呼和浩特某公司"),
                                          BAD_USCC: (False, 1, 0, "某无效代码公司")}
    assert orgs[BAD_USCC]["tags"] == ["invalid_uscc"] and orgs[GOOD_USCC]["tags"] == []
