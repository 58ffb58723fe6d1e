"""Clean (bronze → silver): every SPEC defect kind gets its rule, its action and its correction;
duplicates and versions collapse; conservation holds; re-runs change nothing; nights MERGE
incrementally; the published rule hit counts are the findings."""
from collections import Counter
from datetime import date, datetime, timezone
from decimal import Decimal

import deliveries as dl
import pytest
from pyspark.sql import functions as F
from stdnum.cn import ric, uscc

from jobs import clean, ingest
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, decrypt
from shuzhi.delta import read_table, table_version

pytestmark = pytest.mark.spark

D = "2026-11-27"
D2 = "2026-11-28"
D3 = "2026-11-29"

FULLWIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def cid(region: str, ymd: str, seq: str) -> str:
    """A GB 11643 number with its check character computed independently (python-stdnum)."""
    first17 = f"{region}{ymd}{seq}"
    assert len(first17) == 17
    return first17 + ric.calc_check_digit(first17 + "0")    # stdnum drops the last character


def cid_ending_x(region: str, ymd: str) -> str:
    for n in range(1000):
        v = cid(region, ymd, f"{n:03d}")
        if v.endswith("X"):
            return v
    raise AssertionError("no sequence gives check character X")


def wrong_check(number: str) -> str:
    good = number[17]
    bad = "0" if good != "0" else "1"
    return number[:17] + bad


def valid_uscc(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


# ------------------------------------------------------------------ helpers

def table(spark, settings, layer, name):
    return read_table(spark, settings.table_path(layer, name))


def findings(spark, settings, batch_date=D, source=None):
    night = F.lit(date.fromisoformat(batch_date))
    df = table(spark, settings, "silver", "findings").filter(F.col("_batch_date") == night)
    if source:
        df = df.filter(F.col("_source") == source)
    return df.collect()


def rules_by_record(rows) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for r in rows:
        out.setdefault(r["record_id"], set()).add(r["rule_id"])
    return out


def silver_plain(spark, settings, tbl, keyring, cols) -> dict[str, dict]:
    """record_id → {col: value}: encrypted columns decrypted, timestamps as text in the session
    time zone (Asia/Shanghai), other columns as stored."""
    df = table(spark, settings, "silver", tbl)
    types = dict(df.dtypes)
    sel = [decrypt(F.col(c), keyring).alias(c) if types[c] == "binary"
           else F.date_format(c, "yyyy-MM-dd HH:mm:ss").alias(c) if types[c] == "timestamp" else F.col(c) for c in cols]
    return {r["record_id"]: r.asDict() for r in df.select("record_id", *sel).collect()}


def quarantine_codes(spark, settings, batch_date=D, source=None) -> dict[str, str]:
    night = F.lit(date.fromisoformat(batch_date))
    q = table(spark, settings, "silver", "quarantine").filter(F.col("_batch_date") == night)
    if source:
        q = q.filter(F.col("_source") == source)
    rows = q.collect()
    out = {r["record_id"]: r["reason_code"] for r in rows}
    assert len(out) == len(rows), "a record quarantined twice"
    return out


def conservation(spark, settings, source, entity, batch_date):
    (row,) = (table(spark, settings, "ops", "conservation")
              .filter((F.col("batch_date") == F.lit(date.fromisoformat(batch_date))) & (F.col("source") == source)
                      & (F.col("entity") == entity) & (F.col("stage") == "clean")).collect())
    return row


# ------------------------------------------------------------------ the night-1 lake
# One police population delivery (one row per defect kind, duplicates and versions, clean rows
# that later nights change), a civil-affairs and a social-security delivery, ingested and cleaned
# once for the module. Later nights (test_rerun_...) only touch the B* records, so every other test
# reads night-1 state whatever the order.

N_FULL = cid("150105", "19850302", "101")
N_SEP = cid("150105", "19850302", "102")
N_X = cid_ending_x("150105", "19860415")
LEGACY15 = "150105850302123"
N_LEGACY = cid("150105", "19850302", "123")        # what the 15-digit number lifts to
N_CHECK = wrong_check(cid("150105", "19850302", "104"))
N_BIRTH = cid("150105", "19850230", "105")          # 30 February, with a correct check character
N_REGION = cid("990101", "19850302", "106")         # no such county
# 150120 呼和浩特 市区 (GB/T 2260 until 1983): abolished before any number was assigned (first issue
# 1984), so wrong whatever the birth year — unlike 150105 (from 1983), which a holder born in 1970
# carries legitimately (GB 11643: the county when the number was assigned; tests/test_region_codes.py)
N_REGION_ABOLISHED = cid("150120", "19700101", "107")
N_CLEAN = cid("110101", "19500101", "108")

# record id → (GMSFHM, overrides, expected rule ids, where: "silver" or the quarantine reason)
DEFECTS = {
    "R01": (N_FULL.translate(FULLWIDTH), {}, {"ID_FULLWIDTH"}, "silver"),
    "R02": (f"{N_SEP[:6]} {N_SEP[6:14]}-{N_SEP[14:]}", {}, {"ID_SEPARATOR"}, "silver"),
    "R03": (N_X.lower(), {}, {"ID_LOWER_X"}, "silver"),
    "R04": (LEGACY15, {}, {"ID_LEGACY_15"}, "silver"),
    "R05": (N_CHECK, {}, {"ID_CHECK"}, "ID_CHECK"),
    "R06": (N_BIRTH, {}, {"ID_BIRTH"}, "ID_BIRTH"),
    "R07": (N_REGION, {}, {"ID_REGION"}, "ID_REGION"),
    "R08": ("", {}, {"ID_EMPTY"}, "ID_EMPTY"),
    "R09": (cid("150105", "19850302", "109"), {"XM": "张\u3000三 "}, {"NAME_SPACE"}, "silver"),
    "R10": (cid("150105", "19850302", "110"), {"XM": "阿不都.热合曼"}, {"NAME_DOT"}, "silver"),
    "R11": (cid("150105", "19850302", "111"), {"XM": ""}, {"NAME_EMPTY"}, "NAME_EMPTY"),
    "R12": (cid("150105", "19850302", "112"), {"XBDM": "男"}, {"CODE_LABEL"}, "silver"),
    "R13": (cid("150105", "19850302", "113"), {"MZDM": "77"}, {"CODE_UNKNOWN"}, "silver"),
    "R14": (cid("150105", "19850302", "114"), {"CSRQ": "1985-03-02"}, {"DATE_LAYOUT"}, "silver"),
    "R15": (cid("150105", "19850302", "115"), {"CSRQ": "20230230"}, {"DATE_INVALID"}, "DATE_INVALID"),
    "R16": (cid("150105", "19850302", "116"), {"CSRQ": "20270105"}, {"DATE_FUTURE"}, "DATE_FUTURE"),
    "R17": (cid("150105", "19850302", "117"), {"LXDH": "+86 138 0013 8000"}, {"PHONE_FORMAT"}, "silver"),
    "R18": (cid("150105", "19850302", "118"), {"LXDH": "0471-6123456"}, {"PHONE_LANDLINE"}, "silver"),
    "R19": (cid("150105", "19850302", "119"), {"LXDH": "138001"}, {"PHONE_INVALID"}, "silver"),
    "R20": (N_CLEAN, {"CSRQ": "19500101", "HJDZ_XZQHDM": "110101"}, set(), "silver"),
    "R21": (N_REGION_ABOLISHED, {}, {"ID_REGION"}, "ID_REGION"),
}
ENCRYPTED_POP = {"GMSFHM", "XM", "MZDM", "HJDZ", "XZZ", "LXDH"}

NA1, NA2 = cid("150105", "19850302", "201"), cid("150105", "19850302", "202")
DUPS = [dl.pop_row("A1", NA1, "王五"),
        dl.pop_row("A1", NA1, "王五"),                                                      # exact duplicate
        dl.pop_row("A2", NA2, "赵六", LXDH="13900139000", GXSJ="2026-11-27 09:00:00"),       # newer, earlier line
        dl.pop_row("A2", NA2, "赵六", LXDH="13700137000", GXSJ="2026-11-26 10:00:00")]       # older, later line
NB = {k: cid("150105", "19850302", s) for k, s in (("B1", "401"), ("B2", "402"), ("B3", "403"), ("B5", "405"))}
B_ROWS = [dl.pop_row("B1", NB["B1"], "甲一"), dl.pop_row("B2", NB["B2"], "乙二", LXDH="13800000002"),
          dl.pop_row("B3", NB["B3"], "丙三")]
POP_ROWS = [dl.pop_row(rid, gm, "张三", **kw) for rid, (gm, kw, _, _) in DEFECTS.items()] + DUPS + B_ROWS
ROW_OF = {"A1": 22, "A2": 24, "B1": 26, "B2": 27, "B3": 28}    # first line of each record id


def _ca(rid, **kw):
    base = dict(record_id=rid, id_number=cid("150105", "19850302", "301"), name="张三", gender="男",
                birth_date="1985-03-02", assistance_type="DIBAO", monthly_amount_yuan=850.0, start_date="2026-01-01",
                end_date=None, status="ACTIVE", household_id="MZH1", community_code="150105001001",
                death_registered_date=None, updated_at="2026-11-27T21:04:11+08:00")
    base.update(kw)
    return base


def _ss(rid, **kw):
    base = dict(record_id=rid, sfzh=cid("150105", "19850302", "311"), xm="李四", insurance_type="110",
                enrolment_status="1", employer_uscc=None, employer_name="呼和浩特某公司",
                monthly_benefit=None, last_payment_date=None,
                updated_at=datetime(2026, 11, 27, 1, 2, 3, tzinfo=timezone.utc))
    base.update(kw)
    return base


GOOD_USCC = valid_uscc("91150105MA0N12345")
BAD_USCC = GOOD_USCC[:17] + ("0" if GOOD_USCC[17] != "0" else "1")
CA_LINES = [_ca("M1"),                                              # clean: number 850.0, label 男
            _ca("M2", monthly_amount_yuan="850.00元"),
            _ca("M3", monthly_amount_yuan=-12.5),
            _ca("M4", gender="M"),
            _ca("M5", gender="1"),
            _ca("M6", gender="女", id_number=cid("150105", "19850302", "302"))]
SS_ROWS = [_ss("S1", employer_uscc=GOOD_USCC, monthly_benefit=Decimal("3120.50"), last_payment_date=date(2026, 11, 15)),
           _ss("S2", employer_uscc=BAD_USCC)]


def _pop_delivery(settings, batch_date, rows, kind):
    data = dl.csv_bytes(dl.POP_HEADER, rows)
    dl.write_delivery(settings.landing, "police", batch_date, {"population": (data, len(rows), "GB18030")}, kind=kind)


@pytest.fixture(scope="module")
def night1(spark, spark_settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("clean")
    settings = Settings.load(home=home / "home", key_dir=home / "keys", spark=spark_settings)
    keyring = Keyring.create(settings.key_dir)
    _pop_delivery(settings, D, POP_ROWS, "full")
    dl.civil_affairs(settings.landing, D, CA_LINES)
    dl.social_security(settings.landing, D, SS_ROWS)
    for src in ("police", "civil_affairs", "social_security"):
        res = ingest.run(spark, settings, src, D, keyring=keyring)
        assert res.status == "loaded" and all(f.quarantined_rows == 0 for f in res.files)
    results = {r.table: r for r in clean.run(spark, settings, D, keyring=keyring)}
    return settings, keyring, results


# ------------------------------------------------------------------ 1: one row per defect kind

def test_every_defect_kind_gets_its_rule_and_action(spark, night1):
    settings, keyring, results = night1
    fnd = [r for r in findings(spark, settings, source="police") if r["record_id"] in DEFECTS]
    by_rec = rules_by_record(fnd)
    assert {rid: by_rec.get(rid, set()) for rid in DEFECTS} == {rid: exp for rid, (_, _, exp, _) in DEFECTS.items()}
    from shuzhi.rules import load_rules
    rules = load_rules()
    for r in fnd:     # the action conf/rules.yaml gives the rule, the file, the 1-based data line
        assert r["action"] == rules[r["rule_id"]].action, r
        assert (r["_file"], r["_source"], r["_entity"]) == ("population_20261127.csv", "police", "population")
        assert r["_row"] == list(DEFECTS).index(r["record_id"]) + 1
    assert {(r["record_id"], r["field"]) for r in fnd} == {
        ("R01", "GMSFHM"), ("R02", "GMSFHM"), ("R03", "GMSFHM"), ("R04", "GMSFHM"), ("R05", "GMSFHM"),
        ("R06", "GMSFHM"), ("R07", "GMSFHM"), ("R08", "GMSFHM"), ("R09", "XM"), ("R10", "XM"), ("R11", "XM"),
        ("R12", "XBDM"), ("R13", "MZDM"), ("R14", "CSRQ"), ("R15", "CSRQ"), ("R16", "CSRQ"), ("R17", "LXDH"),
        ("R18", "LXDH"), ("R19", "LXDH"), ("R21", "GMSFHM")}

    # silver holds exactly the usable records, the quarantine the others with their reason
    expected_q = {rid: where for rid, (_, _, _, where) in DEFECTS.items() if where != "silver"}
    assert quarantine_codes(spark, settings, source="police") == expected_q
    silver = silver_plain(spark, settings, "police_population", keyring,
                          ["citizen_id", "citizen_id__tok", "citizen_id__valid", "name", "sex", "ethnicity",
                           "birth_date", "phone"])
    assert set(silver) & set(DEFECTS) == {rid for rid, (_, _, _, where) in DEFECTS.items() if where == "silver"}
    assert silver["R01"]["citizen_id"] == N_FULL
    assert silver["R01"]["citizen_id__tok"] == keyring.token_py(N_FULL)
    assert silver["R02"]["citizen_id"] == N_SEP and silver["R02"]["citizen_id__tok"] == keyring.token_py(N_SEP)
    assert silver["R03"]["citizen_id"] == N_X and silver["R03"]["citizen_id__tok"] == keyring.token_py(N_X)
    assert silver["R04"]["citizen_id"] == N_LEGACY and ric.is_valid(N_LEGACY)
    assert silver["R04"]["citizen_id__tok"] == keyring.token_py(N_LEGACY)
    assert all(v["citizen_id__valid"] for v in silver.values())
    assert silver["R09"]["name"] == "张三"
    assert silver["R10"]["name"] == "阿不都·热合曼"
    assert silver["R12"]["sex"] == "1"
    assert silver["R13"]["ethnicity"] == "77"                # flagged, kept as delivered
    assert silver["R14"]["birth_date"] == date(1985, 3, 2)
    assert silver["R20"]["birth_date"] == date(1950, 1, 1)
    assert silver["R17"]["phone"] == "13800138000"
    assert silver["R18"]["phone"] == "0471-6123456"           # landline kept
    assert silver["R19"]["phone"] == "138001"                 # flagged, kept
    assert (silver["R20"]["phone"], silver["R20"]["name"], silver["R20"]["sex"], silver["R20"]["ethnicity"]) == (
        "13800138000", "张三", "1", "01")

    q = {r["record_id"]: r for r in table(spark, settings, "silver", "quarantine")
         .select("record_id", "citizen_id__tok", "field", "locator", "stage",
                 decrypt(F.col("record_enc"), keyring).alias("rec")).collect()}
    assert q["R05"]["citizen_id__tok"] is None                # no join token for an invalid number
    assert (q["R05"]["field"], q["R05"]["stage"], q["R05"]["locator"]) == ("GMSFHM", "clean", "line 6")
    assert q["R11"]["field"] == "XM" and q["R11"]["citizen_id__tok"] == keyring.token_py(DEFECTS["R11"][0])
    assert '"RECORD_ID":"R15"' in q["R15"]["rec"] and "20230230" in q["R15"]["rec"]

    res = results["police_population"]
    assert (res.status, res.bronze_rows, res.loaded, res.unchanged, res.quarantined, res.superseded) == (
        "cleaned", 28, 18, 0, 8, 2)


def test_quarantine_keeps_the_normalised_identity_number_encrypted(spark, night1):
    settings, keyring, _ = night1
    q = {r["record_id"]: r["cid"] for r in table(spark, settings, "silver", "quarantine")
         .select("record_id", decrypt(F.col("citizen_id_enc"), keyring).alias("cid")).collect()}
    assert q["R05"] == N_CHECK and q["R06"] == N_BIRTH and q["R11"] == DEFECTS["R11"][0]
    assert q["R08"] is None


def test_findings_carry_values_only_for_l1_l2_fields(spark, night1):
    settings, keyring, _ = night1
    fnd = [r for r in findings(spark, settings, source="police") if r["record_id"] in DEFECTS]
    secret = [r for r in fnd if r["field"] in ENCRYPTED_POP]
    assert {r["field"] for r in secret} == {"GMSFHM", "XM", "MZDM", "LXDH"}
    assert all(r["before"] is None and r["after"] is None for r in secret)
    vals = {(r["record_id"], r["rule_id"]): (r["before"], r["after"]) for r in fnd if r["field"] not in ENCRYPTED_POP}
    assert vals == {("R12", "CODE_LABEL"): ("男", "1"), ("R14", "DATE_LAYOUT"): ("1985-03-02", "1985-03-02"),
                    ("R15", "DATE_INVALID"): ("20230230", None), ("R16", "DATE_FUTURE"): ("20270105", "2027-01-05")}
    # no L3/L4 value anywhere in the findings' text
    texts = " ".join(str(v) for r in findings(spark, settings) for v in r.asDict().values())
    for secret_value in (N_FULL, N_SEP, N_X, N_LEGACY, N_CHECK, LEGACY15, "热合曼", "13800138000", "6123456",
                         "850.00", "-12.5", "3120.5"):
        assert secret_value not in texts


# ------------------------------------------------------------------ 2: duplicates and versions

def test_exact_duplicates_and_versions_collapse_and_conservation_balances(spark, night1):
    settings, keyring, results = night1
    fnd = [r for r in findings(spark, settings, source="police") if r["record_id"] not in DEFECTS]
    assert sorted((r["record_id"], r["_row"], r["rule_id"], r["action"], r["field"]) for r in fnd) == [
        ("A1", 23, "DUP_EXACT", "supersede", ""), ("A2", 25, "DUP_VERSION", "supersede", "")]
    assert all(r["before"] is None and r["after"] is None for r in fnd)
    silver = silver_plain(spark, settings, "police_population", keyring, ["phone", "updated_at", "_row", "_batch_date"])
    assert (silver["A1"]["_row"], silver["A1"]["_batch_date"]) == (22, date(2026, 11, 27))
    # the later update time wins, although its line comes first
    assert (silver["A2"]["phone"], silver["A2"]["updated_at"], silver["A2"]["_row"]) == (
        "13900139000", "2026-11-27 09:00:00", 24)
    assert not {"A1", "A2"} & set(quarantine_codes(spark, settings))

    c = conservation(spark, settings, "police", "population", D)
    assert (c["bronze_rows"], c["loaded"], c["unchanged"], c["quarantined"], c["superseded"], c["balanced"]) == (
        28, 18, 0, 8, 2, True)
    assert c["bronze_rows"] == c["loaded"] + c["unchanged"] + c["quarantined"] + c["superseded"]
    assert c["run_id"] == findings(spark, settings, source="police")[0]["_run_id"]


# ------------------------------------------------------------------ 3: civil affairs and social security

def test_civil_affairs_money_and_labels_social_security_uscc(spark, night1):
    settings, keyring, results = night1
    assert uscc.is_valid(GOOD_USCC) and not uscc.is_valid(BAD_USCC)
    ca = findings(spark, settings, source="civil_affairs")
    assert sorted((r["record_id"], r["field"], r["rule_id"], r["action"], r["before"], r["after"]) for r in ca) == [
        ("M2", "monthly_amount_yuan", "MONEY_TEXT", "correct", None, None),       # L3: no values
        ("M3", "monthly_amount_yuan", "MONEY_NEGATIVE", "quarantine", None, None),
        ("M4", "gender", "CODE_LABEL", "correct", "M", "1"),
        ("M5", "gender", "CODE_LABEL", "correct", "1", "1")]                       # a code where SPEC sends labels
    assert quarantine_codes(spark, settings, source="civil_affairs") == {"M3": "MONEY_NEGATIVE"}
    silver = silver_plain(spark, settings, "civil_affairs_assistance", keyring,
                          ["monthly_amount", "sex", "birth_date", "name", "assistance_type", "updated_at"])
    assert {rid: (v["monthly_amount"], v["sex"]) for rid, v in silver.items()} == {
        "M1": ("850.00", "1"), "M2": ("850.00", "1"), "M4": ("850.00", "1"), "M5": ("850.00", "1"),
        "M6": ("850.00", "2")}
    assert (silver["M1"]["birth_date"], silver["M1"]["assistance_type"], silver["M1"]["name"]) == (
        date(1985, 3, 2), "DIBAO", "张三")
    assert silver["M1"]["updated_at"] == "2026-11-27 21:04:11"

    ss = findings(spark, settings, source="social_security")
    assert [(r["record_id"], r["field"], r["rule_id"], r["action"], r["before"], r["after"]) for r in ss] == [
        ("S2", "employer_uscc", "USCC_CHECK", "flag", BAD_USCC, BAD_USCC)]
    assert quarantine_codes(spark, settings, source="social_security") == {}
    sv = silver_plain(spark, settings, "social_security_insurance", keyring,
                      ["employer_uscc", "employer_uscc__valid", "monthly_benefit", "last_payment_date", "name",
                       "updated_at"])
    assert {rid: (v["employer_uscc"], v["employer_uscc__valid"]) for rid, v in sv.items()} == {
        "S1": (GOOD_USCC, True), "S2": (BAD_USCC, False)}
    assert (sv["S1"]["monthly_benefit"], sv["S1"]["last_payment_date"], sv["S1"]["name"], sv["S1"]["updated_at"]) == (
        "3120.50", "2026-11-15", "李四", "2026-11-27 09:02:03")
    assert sv["S2"]["monthly_benefit"] is None and sv["S2"]["last_payment_date"] is None
    for src, ent, n, loaded, q in (("civil_affairs", "assistance", 6, 5, 1), ("social_security", "insurance", 2, 2, 0)):
        c = conservation(spark, settings, src, ent, D)
        assert (c["bronze_rows"], c["loaded"], c["quarantined"], c["superseded"], c["balanced"]) == (
            n, loaded, q, 0, True)
        r = results[f"{src}_{ent}"]
        assert (r.status, r.bronze_rows, r.loaded, r.quarantined) == ("cleaned", n, loaded, q)


# ------------------------------------------------------------------ 5: published rule hits

def test_rule_hits_equal_findings_per_rule(spark, night1):
    settings, _, results = night1
    fnd = findings(spark, settings)
    counts = Counter((r["_source"], r["_entity"], r["rule_id"]) for r in fnd)
    hits = (table(spark, settings, "ops", "rule_hits")
            .filter((F.col("batch_date") == F.lit(date.fromisoformat(D))) & (F.col("stage") == "clean")).collect())
    assert {(h["source"], h["entity"], h["rule_id"]): h["hits"] for h in hits} == dict(counts)
    assert len(hits) == len(counts)           # one row per entity and rule
    from shuzhi.rules import load_rules
    assert all(h["action"] == load_rules()[h["rule_id"]].action for h in hits)
    assert results["police_population"].rule_hits == {rule: n for (s, _, rule), n in counts.items() if s == "police"}
    pol = {rule: n for (s, _, rule), n in counts.items() if s == "police"}
    assert pol["ID_REGION"] == 2 and pol["DUP_EXACT"] == 1 and pol["DUP_VERSION"] == 1 and sum(pol.values()) == 22
    assert {rule: n for (s, _, rule), n in counts.items() if s != "police"} == {
        "MONEY_TEXT": 1, "MONEY_NEGATIVE": 1, "CODE_LABEL": 2, "USCC_CHECK": 1}


# ------------------------------------------------------------------ 4: idempotency and incremental nights

VOLATILE = ["citizen_id", "name", "hukou_address", "current_address", "phone", "ethnicity"]   # ciphertext, random IV


def test_rerun_is_noop_then_incremental_nights_merge(spark, night1):
    settings, keyring, _ = night1
    paths = {name: settings.table_path(*name.split("/")) for name in
             ("silver/police_population", "silver/civil_affairs_assistance", "silver/social_security_insurance",
              "silver/findings", "silver/quarantine", "ops/conservation", "ops/rule_hits")}
    v1 = {k: table_version(spark, p) for k, p in paths.items()}
    silver_before = sorted(map(str, table(spark, settings, "silver", "police_population").drop(*VOLATILE).collect()))
    again = {r.table: r for r in clean.run(spark, settings, D, keyring=keyring)}
    assert {t: r.status for t, r in again.items() if r.status != "no_delivery"} == {
        "police_population": "noop", "civil_affairs_assistance": "noop", "social_security_insurance": "noop"}
    p = again["police_population"]
    assert (p.bronze_rows, p.loaded, p.unchanged, p.quarantined, p.superseded) == (28, 18, 0, 8, 2)
    assert {k: table_version(spark, p) for k, p in paths.items()} == v1
    assert sorted(map(str, table(spark, settings, "silver", "police_population").drop(*VOLATILE).collect())) == \
        silver_before
    s1 = silver_plain(spark, settings, "police_population", keyring, ["phone", "updated_at", "_batch_date"])

    # night 2, incremental: B2 changed, B5 new
    _pop_delivery(settings, D2, [dl.pop_row("B2", NB["B2"], "乙二", LXDH="13900000002", XZZ="新城区新华大街9号",
                                            GXSJ="2026-11-28 10:00:00"),
                                 dl.pop_row("B5", NB["B5"], "戊五", GXSJ="2026-11-28 10:00:00")], "incremental")
    ingest.run(spark, settings, "police", D2, keyring=keyring)
    (r2,) = [r for r in clean.run(spark, settings, D2, keyring=keyring) if r.table == "police_population"]
    assert (r2.status, r2.bronze_rows, r2.loaded, r2.unchanged, r2.quarantined, r2.superseded) == (
        "cleaned", 2, 2, 0, 0, 0)
    s2 = silver_plain(spark, settings, "police_population", keyring,
                      ["phone", "current_address", "updated_at", "_batch_date", "name"])
    assert len(s2) == len(s1) + 1 and set(s2) - set(s1) == {"B5"}
    assert (s2["B2"]["phone"], s2["B2"]["current_address"], s2["B2"]["updated_at"], s2["B2"]["_batch_date"]) == (
        "13900000002", "新城区新华大街9号", "2026-11-28 10:00:00", date(2026, 11, 28))
    assert (s2["B5"]["name"], s2["B5"]["_batch_date"]) == ("戊五", date(2026, 11, 28))
    # every record the night did not touch keeps its version and night
    for rid in set(s1) - {"B2"}:
        assert {k: s2[rid][k] for k in ("record_id", "phone", "updated_at", "_batch_date")} == s1[rid], rid
    assert {v["_batch_date"] for rid, v in s2.items() if rid not in ("B2", "B5")} == {date(2026, 11, 27)}
    assert findings(spark, settings, D2) == [] and quarantine_codes(spark, settings, D2) == {}
    c2 = conservation(spark, settings, "police", "population", D2)
    assert (c2["bronze_rows"], c2["loaded"], c2["unchanged"], c2["quarantined"], c2["superseded"]) == (2, 2, 0, 0, 0)
    # night 1's findings, quarantine and conservation are untouched by night 2
    assert len(findings(spark, settings, D)) == 22 + 4 + 1
    assert conservation(spark, settings, "police", "population", D)["bronze_rows"] == 28

    # night 3: the older (night-1) version of B2 delivered again, and B1 exactly as silver holds it
    _pop_delivery(settings, D3, [dl.pop_row("B2", NB["B2"], "乙二", LXDH="13800000002"), B_ROWS[0]], "incremental")
    ingest.run(spark, settings, "police", D3, keyring=keyring)
    (r3,) = [r for r in clean.run(spark, settings, D3, keyring=keyring) if r.table == "police_population"]
    assert (r3.bronze_rows, r3.loaded, r3.unchanged, r3.quarantined, r3.superseded) == (2, 0, 1, 0, 1)
    f3 = findings(spark, settings, D3)
    assert [(r["record_id"], r["_row"], r["rule_id"], r["action"], r["field"]) for r in f3] == [
        ("B2", 1, "DUP_VERSION", "supersede", "")]
    assert "older than" in f3[0]["change"] and "silver" in f3[0]["change"]
    s3 = silver_plain(spark, settings, "police_population", keyring,
                      ["phone", "current_address", "updated_at", "_batch_date", "name"])
    assert s3 == s2                                  # B1 keeps night 1 as its night, B2 its night-2 version
    c3 = conservation(spark, settings, "police", "population", D3)
    assert (c3["bronze_rows"], c3["loaded"], c3["unchanged"], c3["quarantined"], c3["superseded"], c3["balanced"]) == (
        2, 0, 1, 0, 1, True)
    hits3 = (table(spark, settings, "ops", "rule_hits")
             .filter(F.col("batch_date") == F.lit(date.fromisoformat(D3))).collect())
    assert [(h["source"], h["entity"], h["rule_id"], h["hits"]) for h in hits3] == [
        ("police", "population", "DUP_VERSION", 1)]
