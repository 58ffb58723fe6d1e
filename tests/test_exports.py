"""Exports for the office: BOM CSVs with Chinese intact, identity numbers masked, raw records never
exported; the rule catalogue's hit counts; the `shuzhi export` / `shuzhi rules` commands."""
import csv
import doctest
from datetime import date, datetime

import pytest

from shuzhi import exports
from shuzhi.cli import main
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, encrypt
from shuzhi.delta import write_table
from shuzhi.rules import ingest_reasons, load_rules

INGEST_REASONS = {c: r.en for c, r in ingest_reasons().items()}
INGEST_REASONS_ZH = {c: r.zh for c, r in ingest_reasons().items()}

ID = "150105198503021234"
ID2 = "11010119900307001X"
MASKED, MASKED2 = "150105********1234", "110101********001X"
RAW_TEXT = "P0009,王秘密,150105198503021234,甲街道1号"
BOM = b"\xef\xbb\xbf"
N1, N2 = date(2026, 11, 25), date(2026, 11, 26)


def _enc(spark, rows, schema, enc_cols, keyring):
    """DataFrame whose ``<c>_plain`` string columns become ``<c>`` ciphertext columns."""
    from pyspark.sql import functions as F

    df = spark.createDataFrame(rows, schema)
    for plain, enc in enc_cols.items():
        df = df.withColumn(enc, encrypt(F.col(plain), keyring)).drop(plain)
    return df


@pytest.fixture(scope="module")
def lake(spark, spark_settings, tmp_path_factory):
    """One small lake (conflicts, both quarantines, rule hits) shared by the read-only tests."""
    home = tmp_path_factory.mktemp("exports")
    s = Settings.load(home=home / "home", key_dir=home / "keys", spark=spark_settings)
    kr = Keyring.create(s.key_dir)
    conflicts = _enc(spark, [
        ("c1", "X_DECEASED_PAID", "high", ["health", "social_security"],
         ["health/death/D1", "social_security/insurance/S1"],
         "person:t1", "t1", ID, "死亡日期2026-10-01后仍发放养老金", N1, N2, "open", None),
        ("c2", "X_NAME_MISMATCH", "medium", ["police", "civil_affairs"],
         ["police/population/P2", "civil_affairs/assistance/A2"],
         "person:t2", "t2", ID2, "姓名不同, \"引号\"", N2, N2, "open", None),
        ("c3", "X_USCC_INVALID", "medium", ["social_security"], ["social_security/employer/E3"],
         "org:E3", None, None, "=1+1 code fails", N1, N1, "resolved", N2),
    ], "conflict_id string, rule_id string, severity string, departments array<string>, record_refs array<string>, "
       "subject string, person_token string, cid_plain string, evidence string, first_seen date, last_seen date, "
       "status string, resolved_on date", {"cid_plain": "citizen_id_enc"}, kr)
    write_table(conflicts.select("conflict_id", "rule_id", "severity", "departments", "record_refs", "subject",
                                 "person_token", "citizen_id_enc", "evidence", "first_seen", "last_seen", "status",
                                 "resolved_on"), s.table_path("gold", "conflicts"), mode="append")
    t = datetime(2026, 11, 26, 2, 0)
    bq = _enc(spark, [
        ("police", "population", N1, "population_20261125.csv", 7, "line 8", "ingest", "CSV_TOO_FEW_FIELDS",
         "expected 12 fields, found 4", RAW_TEXT, "d1", "r1", t, "GB18030", kr.key_id),
        ("health", "death", N2, "death_20261126.jsonl", 3, "line 3", "ingest", "JSON_UNPARSABLE",
         "not a parsable JSON object", RAW_TEXT + "{", "d2", "r1", t, "UTF-8", kr.key_id),
    ], "_source string, _entity string, _batch_date date, _file string, _row long, locator string, stage string, "
       "reason_code string, rule_detail string, raw_plain string, _delivery_id string, _run_id string, "
       "_loaded_at timestamp, _encoding string, _key_id string", {"raw_plain": "raw_record_enc"}, kr)
    write_table(bq, s.table_path("bronze", "quarantine"), mode="append")
    sq = _enc(spark, [
        ("police", "population", N1, "population_20261125.csv", 9, "P0009", "line 10", "clean", "ID_CHECK",
         "check character is 4, expected 7", "GMSFHM", ID, "tok", RAW_TEXT, "d1", "r2", t, kr.key_id),
        ("police", "population", N1, "population_20261125.csv", 11, "P0011", "line 12", "clean", "ID_CHECK",
         "check character is 1, expected 3", "GMSFHM", ID2, "tok2", RAW_TEXT, "d1", "r2", t, kr.key_id),
        ("civil_affairs", "assistance", N2, "assistance_20261126.csv", 2, "A0002", "line 3", "clean", "MONEY_NEGATIVE",
         "amount < 0", "JZJE", None, None, RAW_TEXT, "d3", "r2", t, kr.key_id),
    ], "_source string, _entity string, _batch_date date, _file string, _row long, record_id string, locator string, "
       "stage string, reason_code string, rule_detail string, field string, cid_plain string, citizen_id__tok string, "
       "rec_plain string, _delivery_id string, _run_id string, _loaded_at timestamp, _key_id string",
        {"cid_plain": "citizen_id_enc", "rec_plain": "record_enc"}, kr)
    write_table(sq, s.table_path("silver", "quarantine"), mode="append")
    hits = spark.createDataFrame([
        (N1, "clean", "ID_CHECK", "police", "population", "quarantine", 2),
        (N2, "clean", "ID_CHECK", "police", "population", "quarantine", 5),
        (N1, "clean", "ID_FULLWIDTH", "police", "population", "correct", 30),
        (N1, "clean", "ID_FULLWIDTH", "health", "death", "correct", 4),
        (N2, "verify", "X_DECEASED_PAID", "social_security", "insurance", "register", 1),
    ], "batch_date date, stage string, rule_id string, source string, entity string, action string, hits long")
    write_table(hits, s.table_path("ops", "rule_hits"), mode="append")
    return s


def read_csv(path):
    raw = path.read_bytes()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return raw, list(csv.DictReader(fh))


@pytest.mark.unit
def test_mask_doctest_and_spark_mask_agree(tiny_spark):
    from pyspark.sql import functions as F

    assert doctest.testmod(exports).failed == 0
    values = [ID, ID2, "150105850302123", "12345", "1234", "ab", "", None]
    got = tiny_spark.createDataFrame([(v,) for v in values], "v string").select(
        F.col("v"), exports.mask_citizen_id_col(F.col("v")).alias("m")).collect()
    assert {r["v"]: r["m"] for r in got} == {v: exports.mask_citizen_id(v) for v in values}
    assert set(INGEST_REASONS_ZH) == set(INGEST_REASONS)


@pytest.mark.spark
def test_conflicts_export(spark, lake, tmp_path):
    out = tmp_path / "out" / "冲突.csv"
    assert exports.export_conflicts(spark, lake, out) == 3
    raw, rows = read_csv(out)
    assert raw.startswith(BOM) and b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    assert ID.encode() not in raw and ID2.encode() not in raw
    header = raw[3:raw.index(b"\r\n")].decode("utf-8")
    assert header.startswith("冲突编号/conflict_id,规则编号/rule_id,规则说明/rule_description")
    by_id = {r["冲突编号/conflict_id"]: r for r in rows}
    c1 = by_id["c1"]
    assert c1["规则说明/rule_description"] == load_rules()["X_DECEASED_PAID"].zh
    assert c1["涉及部门/departments"] == "health、social_security"
    assert c1["证据记录/record_refs"] == "health/death/D1; social_security/insurance/S1"
    assert c1["身份号码（脱敏）/citizen_id_masked"] == MASKED
    assert c1["证据说明/evidence"] == "死亡日期2026-10-01后仍发放养老金"
    assert (c1["首次发现/first_seen"], c1["最近发现/last_seen"], c1["解决日期/resolved_on"]) == (
        "2026-11-25", "2026-11-26", "")
    assert by_id["c2"]["身份号码（脱敏）/citizen_id_masked"] == MASKED2
    assert by_id["c2"]["证据说明/evidence"] == "姓名不同, \"引号\""          # RFC 4180 quoting round-trips
    assert by_id["c3"]["身份号码（脱敏）/citizen_id_masked"] == "" and by_id["c3"]["状态/status"] == "resolved"
    assert not list(out.parent.glob(".*.tmp"))                                 # the temp file was renamed

    def ids(**kw):
        exports.export_conflicts(spark, lake, out, **kw)
        return sorted(r["冲突编号/conflict_id"] for r in read_csv(out)[1])

    assert ids(night="2026-11-25") == ["c1", "c3"]
    assert ids(status="open") == ["c1", "c2"]
    assert ids(rule="X_NAME_MISMATCH") == ["c2"]
    assert ids(night="2026-11-25", status="resolved") == ["c3"]
    with pytest.raises(exports.ExportError, match="not a date"):
        exports.export_conflicts(spark, lake, out, night="2026-11-31")
    with pytest.raises(exports.ExportError, match="not a verify rule"):
        exports.export_conflicts(spark, lake, out, rule="ID_CHECK")


@pytest.mark.spark
def test_quarantine_export_and_summary(spark, lake, tmp_path):
    out = tmp_path / "q.csv"
    assert exports.export_quarantine(spark, lake, out) == 5
    raw, rows = read_csv(out)
    assert raw.startswith(BOM)
    assert ID.encode() not in raw and ID2.encode() not in raw
    for fragment in ("王秘密", "甲街道1号"):                             # nothing of the raw records
        assert fragment.encode() not in raw
    assert {r["阶段/stage"] for r in rows} == {"ingest", "clean"}
    ingest = next(r for r in rows if r["原因代码/reason_code"] == "CSV_TOO_FEW_FIELDS")
    assert ingest["原因说明/reason"] == "CSV行字段数少于表头"
    assert (ingest["来源部门/source"], ingest["位置/locator"], ingest["记录编号/record_id"],
            ingest["身份号码（脱敏）/citizen_id_masked"]) == ("police", "line 8", "", "")
    clean = next(r for r in rows if r["记录编号/record_id"] == "P0009")
    assert clean["原因说明/reason"] == load_rules()["ID_CHECK"].zh
    assert clean["身份号码（脱敏）/citizen_id_masked"] == MASKED and clean["批次日期/night"] == "2026-11-25"

    def count(**kw):
        return exports.export_quarantine(spark, lake, out, **kw)

    assert count(night="2026-11-25") == 3
    assert count(source="police") == 3
    assert count(rule="ID_CHECK") == 2
    assert count(night="2026-11-26", source="health") == 1

    s_out = exports.summary_path(out)
    assert s_out.name == "q_summary.csv"
    assert exports.export_quarantine_summary(spark, lake, s_out) == 4
    raw, rows = read_csv(s_out)
    assert raw.startswith(BOM)
    got = {(r["批次日期/night"], r["来源部门/source"], r["原因代码/reason_code"]): int(r["记录数/records"])
           for r in rows}
    assert got == {("2026-11-25", "police", "CSV_TOO_FEW_FIELDS"): 1, ("2026-11-25", "police", "ID_CHECK"): 2,
                   ("2026-11-26", "health", "JSON_UNPARSABLE"): 1, ("2026-11-26", "civil_affairs", "MONEY_NEGATIVE"): 1}
    assert exports.export_quarantine_summary(spark, lake, s_out, source="police") == 2


@pytest.mark.spark
def test_rules_report(spark, lake, settings):
    by_id = {r["id"]: r for r in exports.rules_report(spark, lake, None)}
    assert set(by_id) == set(load_rules())
    assert by_id["ID_CHECK"]["hits"] == 7 and by_id["ID_FULLWIDTH"]["hits"] == 34
    assert by_id["X_DECEASED_PAID"]["hits"] == 1 and by_id["NAME_DOT"]["hits"] == 0
    assert by_id["ID_CHECK"]["zh"] == load_rules()["ID_CHECK"].zh and by_id["ID_CHECK"]["action"] == "quarantine"
    night1 = {r["id"]: r["hits"] for r in exports.rules_report(spark, lake, "2026-11-25")}
    assert (night1["ID_CHECK"], night1["ID_FULLWIDTH"], night1["X_DECEASED_PAID"]) == (2, 34, 0)
    # a fresh lake: no hits table, no quarantine yet
    assert all(r["hits"] == 0 for r in exports.rules_report(spark, settings, None))
    out = settings.home / "q.csv"
    assert exports.export_quarantine(spark, settings, out) == 0
    assert read_csv(out)[1] == [] and out.read_bytes().startswith(BOM)


@pytest.mark.spark
def test_cli(spark, lake, tmp_path, monkeypatch, capsys):
    for k, v in lake.env_vars().items():
        monkeypatch.setenv(k, v)
    out = tmp_path / "c.csv"
    assert main(["export", "conflicts", "--out", str(out), "--status", "open"]) == 0
    assert len(read_csv(out)[1]) == 2
    assert f"2 rows → {out}" in capsys.readouterr().out

    q = tmp_path / "q.csv"
    assert main(["export", "quarantine", "--out", str(q), "--source", "police", "--night", "2026-11-25"]) == 0
    printed = capsys.readouterr().out
    assert f"3 rows → {q}" in printed and str(tmp_path / "q_summary.csv") in printed
    assert len(read_csv(tmp_path / "q_summary.csv")[1]) == 2

    r = tmp_path / "rules.csv"
    assert main(["rules", "--night", "2026-11-26", "--csv", str(r)]) == 0
    printed = capsys.readouterr().out
    assert "ID_CHECK" in printed and load_rules()["ID_CHECK"].zh[:6] in printed
    hits = {row["规则编号/rule_id"]: row["命中次数/hits"] for row in read_csv(r)[1]}
    assert hits["ID_CHECK"] == "5" and hits["ID_FULLWIDTH"] == "0" and len(hits) == len(load_rules())

    assert main(["export", "conflicts", "--out", str(out), "--night", "2026-13-01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: night '2026-13-01' is not a date (expected YYYY-MM-DD, a real calendar date)"
    assert main(["export", "quarantine", "--out", str(q), "--source", "nobody"]) == 2
    assert "source 'nobody'" in capsys.readouterr().err
    assert main(["rules", "--night", "tomorrow"]) == 2


# ---------------------------------------------------------------- the mask cannot be undone

WEIGHTS, CHECKS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), "10X98765432"
NIGHT = date(2026, 11, 27)


def check_char(first17: str) -> str:
    return CHECKS[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]


def valid(number: str) -> bool:
    return len(number) == 18 and number[:17].isdigit() and check_char(number[:17]) == number[17]


class Person:
    """A valid number for a birth date on or after ``near``, the first one for which the register's
    own dates (first and last seen: the night) do not happen to rebuild a valid number."""

    def __init__(self, i: int, near: date, sex: str):
        from datetime import timedelta

        region, seq, night = "150105", "01" + sex, NIGHT.strftime("%Y%m%d")
        birth = next(near + timedelta(days=k) for k in range(30) if check_char(region + night + seq)
                     != check_char(region + (near + timedelta(days=k)).strftime("%Y%m%d") + seq))
        ymd = birth.strftime("%Y%m%d")
        self.id = region + ymd + seq + check_char(region + ymd + seq)
        self.birth, self.sex, self.mtok, self.i = birth, sex, f"m{i}", i


def silver(spark, keyring, rows, extra: str = ""):
    """A silver-like frame with the columns the cross-verify detectors (shuzhi.stages.conflicts) read
    (``id`` plain → ``id_enc``)."""
    from pyspark.sql import functions as F

    from shuzhi.crypto import encrypt

    schema = ("record_id string, id string, tok string, name__mtok string, birth_date date, sex string, "
              "citizen_id__birth date, citizen_id__sex string, updated_at timestamp, person_hint string" + extra)
    df = spark.createDataFrame(rows, schema)
    return df.withColumn("id_enc", encrypt(F.col("id"), keyring)).drop("id")


def _rec(rid, p: Person, keyring, birth=None, sex=None):
    return (rid, p.id, keyring.token_py(p.id), p.mtok, birth or p.birth, sex or p.sex, p.birth, p.sex,
            datetime(2026, 11, 27, 8), None)


@pytest.mark.spark
def test_birth_date_conflicts_cannot_unmask_the_number(spark, spark_settings, tmp_path):
    """The masked number hides exactly its 8 birth-date digits. Build a register of birth-date
    conflicts through the cross-verify detectors (every number valid), export it, and rebuild
    prefix + every date found in any column (and every date ± every number the row states) +
    suffix: none of the found dates gives a valid number, and the real birth date is never among
    the candidates. Rows written before the fix (evidence with the dates) are masked on export."""
    from datetime import timedelta

    from shuzhi.rules import load_rules, load_tags, precedence
    from shuzhi.stages.conflicts import VerifyParams, observed_conflicts

    s = Settings.load(home=tmp_path / "home", key_dir=tmp_path / "keys", spark=spark_settings)
    kr = Keyring.create(s.key_dir)
    people = [Person(i, date(1950 + 7 * i, 1 + i, 3 + 2 * i), "1" if i % 2 else "2") for i in range(6)]
    a1, a2, b1, b2, c1, c2 = people
    day = timedelta(days=1)
    # A: the police register agrees with the number, health / civil affairs have another birth date
    # B: the police record itself contradicts its number (birth; for b2 also the sex), health agrees with police
    # C: police and civil affairs agree on a birth date their number does not encode (c1); c2 as A
    pop = [_rec(f"R{p.i}", p, kr) for p in (a1, a2, c2)] + [
        _rec("RB1", b1, kr, birth=b1.birth + 40 * day), _rec("RB2", b2, kr, birth=b2.birth - 366 * day,
                                                             sex="1" if b2.sex == "2" else "2"),
        _rec("RC1", c1, kr, birth=c1.birth + 10 * day)]
    hl = [_rec("H1", a1, kr, birth=a1.birth + 5 * day), _rec("HB1", b1, kr, birth=b1.birth + 40 * day)]
    ca = [_rec("M2", a2, kr, birth=a2.birth - 31 * day), _rec("MC1", c1, kr, birth=c1.birth + 10 * day),
          _rec("MC2", c2, kr, birth=c2.birth + 3650 * day)]
    s_frames = {
        "pop": silver(spark, kr, [r + ("0", None) for r in pop], ", person_status string, deregistration_date date"),
        "hl": silver(spark, kr, [r + (None,) for r in hl], ", death_date date"),
        "ca": silver(spark, kr, [r + ("DIBAO", "ACTIVE", None) for r in ca],
                     ", assistance_type string, case_status string, death_date date")}
    pending = spark.createDataFrame([], "tok string, hint string")
    stale = spark.createDataFrame([], "ref string")
    obs = observed_conflicts(s_frames, NIGHT, pending, "run-1", stale, VerifyParams(load_rules(), precedence(),
                                                                                     load_tags()))
    write_table(obs, s.table_path("gold", "conflicts"), mode="append")
    # two rows of a register written before the fix (their evidence names the dates), and a
    # deceased-paid row whose death date is kept (it cannot rebuild the number)
    from pyspark.sql import functions as F

    from shuzhi.crypto import encrypt

    legacy = spark.createDataFrame([
        ("old1", "X_BIRTH_MISMATCH", "medium", ["health", "police"], ["health/residents/H9", "police/population/R9"],
         "health/residents/H9", "t9", a1.id, f"birth date in health 1999-09-09 differs from the police register "
                                             f"{a1.birth.isoformat()}", NIGHT, NIGHT, "open", None, "run-0"),
        ("old2", "X_ID_BIRTH_SEX", "medium", ["police"], ["police/population/R8"], "police/population/R8", "t8", b1.id,
         f"birth date {b1.birth.year}年{b1.birth.month}月{b1.birth.day}日 but the number encodes "
         f"{b1.birth.strftime('%Y%m%d')}", NIGHT, NIGHT, "open", None, "run-0"),
        ("old3", "X_DECEASED_PAID", "high", ["social_security", "health"], ["social_security/insurance/S7"],
         "social_security/insurance/S7", "t7", c2.id, "benefit paid after the death date 2026-10-02 recorded by health",
         NIGHT, NIGHT, "open", None, "run-0"),
    ], "conflict_id string, rule_id string, severity string, departments array<string>, record_refs array<string>, "
       "subject string, person_token string, id string, evidence string, first_seen date, last_seen date, "
       "status string, resolved_on date, _run_id string")
    legacy = legacy.withColumn("citizen_id_enc", encrypt(F.col("id"), kr)).drop("id")
    write_table(legacy.select(*obs.columns), s.table_path("gold", "conflicts"), mode="append")

    out = tmp_path / "conflicts.csv"
    n = exports.export_conflicts(spark, s, out)
    raw, rows = read_csv(out)
    assert n == len(rows) == 11
    by_subject = {r["证据记录/record_refs"].split("; ")[0]: r for r in rows}
    assert {(r["规则编号/rule_id"]) for r in rows} == {"X_BIRTH_MISMATCH", "X_ID_BIRTH_SEX", "X_DECEASED_PAID"}
    assert {k: r["证据说明/evidence"] for k, r in by_subject.items()} == {
        "health/residents/H1": "birth date in health differs from the police register by 5 day(s)",
        "civil_affairs/assistance/M2": "birth date in civil_affairs differs from the police register by 31 day(s)",
        "police/population/RB1": "birth date differs from the one the number encodes by 40 day(s)",
        "health/residents/HB1": "birth date differs from the one the number encodes by 40 day(s)",
        "police/population/RB2": "birth date differs from the one the number encodes by 366 day(s); sex code "
                                 f"{'1' if b2.sex == '2' else '2'} but the number encodes {b2.sex}",
        "police/population/RC1": "birth date differs from the one the number encodes by 10 day(s)",
        "civil_affairs/assistance/MC1": "birth date differs from the one the number encodes by 10 day(s)",
        "civil_affairs/assistance/MC2": "birth date in civil_affairs differs from the police register by 3650 day(s)",
        "health/residents/H9": "birth date in health ****-**-** differs from the police register ****-**-**",
        "police/population/R8": "birth date ****年**月**日 but the number encodes ********",
        "social_security/insurance/S7": "benefit paid after the death date 2026-10-02 recorded by health"}
    person_of = {"H1": a1, "M2": a2, "RB1": b1, "HB1": b1, "RB2": b2, "RC1": c1, "MC1": c1, "MC2": c2, "H9": a1,
                 "R8": b1, "S7": c2}

    import re

    found_valid, derived, n_derived = [], [], 0
    for key, r in by_subject.items():
        p = person_of[key.rsplit("/", 1)[1]]
        masked = r["身份号码（脱敏）/citizen_id_masked"]
        assert masked == p.id[:6] + "********" + p.id[14:]
        assert valid(masked[:6] + p.birth.strftime("%Y%m%d") + masked[14:])   # the true date would give it away
        text = " ".join(r.values())
        dates = {m.replace("-", "") for m in re.findall(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)|(?<!\d)\d{8}(?!\d)", text)}
        dates |= {f"{y}{int(mo):02d}{int(d):02d}" for y, mo, d in re.findall(r"(\d{4})年(\d{1,2})月(\d{1,2})日", text)}
        found_valid += [d for d in dates if valid(masked[:6] + d + masked[14:])]
        numbers = {int(x) for x in re.findall(r"(?<![\d-])\d{1,5}(?![\d-])", text)}
        for d in dates:
            try:
                base = date(int(d[:4]), int(d[4:6]), int(d[6:]))
            except ValueError:
                continue
            for k in numbers:
                for cand in (base - k * day, base + k * day):
                    n_derived += 1
                    derived.append(cand == p.birth)
    assert found_valid == []
    assert n_derived > 0 and not any(derived)
    assert not any(p.id.encode() in raw or p.birth.strftime("%Y%m%d").encode() in raw
                   or p.birth.isoformat().encode() in raw for p in people)


@pytest.mark.spark
def test_night_summary_by_department_with_gates_apart(spark, lake, tmp_path):
    """The closing table: departments only (entities added up), quarantined = ingest + clean,
    conflicts open / new / resolved per night from the register's dates; gates per layer."""
    from dataclasses import replace

    from shuzhi.reports import night_summary, render_summary

    s = replace(lake, home=tmp_path / "h", lake=tmp_path / "h" / "lake")
    import shutil
    shutil.copytree(lake.lake, s.lake)
    t0, t1 = datetime(2026, 11, 26, 1, 0), datetime(2026, 11, 26, 2, 0)
    pop, houses, gb = "population_20261125.csv", "houses_20261125.csv", "GB18030"
    write_table(spark.createDataFrame([
        ("police", N1, "d0", pop, "accepted", "full", 7, 7, 0, True, gb, gb, None, t0),
        ("police", N1, "d1", pop, "accepted", "full", 10, 9, 1, True, gb, "UTF-8", None, t1),
        ("police", N1, "d1", houses, "accepted", "full", 5, 5, 0, False, gb, gb, None, t1),
        ("health", N2, "d9", None, "rejected", None, None, None, None, None, None, None, "MANIFEST_MISSING", t1),
    ], "source string, batch_date date, delivery_id string, file string, status string, kind string, "
       "manifest_rows long, bronze_rows long, quarantined_rows long, balanced boolean, declared_encoding string, "
       "actual_encoding string, reason_code string, recorded_at timestamp"), s.table_path("ops", "deliveries"))
    write_table(spark.createDataFrame([
        ("bronze.police_population", "bronze.police_population", N1, "g1", t0, False, "critical"),
        ("bronze.police_population", "bronze.police_population", N1, "g2", t1, True, "critical"),
        ("silver.police_population", "silver.police_population", N1, "g3", t1, False, "warning"),
        ("silver.police_population", "silver.police_population", N1, "g3", t1, True, "critical"),
    ], "table string, suite string, batch_date date, gate_run_id string, evaluated_at timestamp, success boolean, "
       "severity string"), s.table_path("ops", "gate_results"))

    got = night_summary(spark, s)
    zero = {"delivered": 0, "loaded": 0, "q_ingest": 0, "q_clean": 0, "rejected": [], "balanced": True,
            "encodings": set(), "open": 0, "new": 0, "resolved": 0, "score": None}
    assert got["departments"] == {
        "2026-11-25": {
            "health": {**zero, "open": 1, "new": 1},
            "police": {**zero, "delivered": 15, "loaded": 14, "q_ingest": 1, "q_clean": 2, "balanced": False,
                       "encodings": {"population_20261125.csv: GB18030→UTF-8"}},       # d0 replaced by d1
            "social_security": {**zero, "open": 2, "new": 2}},
        "2026-11-26": {
            "civil_affairs": {**zero, "q_clean": 1, "open": 1, "new": 1},
            "health": {**zero, "q_ingest": 1, "rejected": ["MANIFEST_MISSING"], "open": 1},
            "police": {**zero, "open": 1, "new": 1},
            "social_security": {**zero, "open": 1, "resolved": 1}}}
    assert got["gates"] == {"2026-11-25": {
        "bronze": {"passed": 1, "warned": 0, "failed": 0, "not_passed": []},          # its latest run passed
        "silver": {"passed": 0, "warned": 1, "failed": 0, "not_passed": ["police_population (warned)"]}}}

    from rich.console import Console
    con = Console(width=200, record=True)
    render_summary(got, s, con)
    text = con.export_text()
    assert "公安 police" in text and "20.0%" in text and "police_population" not in text.split("质量门")[0]
