"""Department feedback lists (数据回流): one department's quarantined, corrected, flagged and conflicted
records of a night — theirs only, every one of them, L3/L4 values masked, BOM CSV."""
import csv
import doctest
import json
from datetime import date, datetime

import pytest

from shuzhi import feedback
from shuzhi.cli import main
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, encrypt, with_protected_fields
from shuzhi.delta import rows_frame, write_to
from shuzhi.rules import load_rules
from shuzhi.schemas import catalog
from tests.deliveries import POP_HEADER, pop_row

NIGHT, BEFORE, AFTER = date(2026, 11, 27), date(2026, 11, 26), date(2026, 11, 28)
POP_FILE = "population_20261127.csv"
BOM = b"\xef\xbb\xbf"

ID_RAW = "150105198801010019"      # police: inside a line the ingest stage could not parse
ID_Q = "150105198503021239"        # police: quarantined by ID_CHECK
ID_LOWER = "11010119900307001x"    # police: corrected by ID_LOWER_X (record P0001, born 1990-03-07)
ID_CA = "440106198001011238"       # civil affairs (another department)
ID_HL = "320102197001011234"       # health (another department)
PHONE = "138-0013-8000"
SECRET_NAME = "王秘密"
POP = catalog().entity("police", "population")
CA = catalog().entity("civil_affairs", "assistance")


def _bronze(spark, entity, rows: list[tuple[int, list[str]]], keyring, night, file):
    """Bronze rows as the ingest stage writes them: the delivered fields, L3/L4 encrypted, tokens, lineage."""
    from pyspark.sql import functions as F

    names = entity.field_names
    df = spark.createDataFrame([tuple(vals) + (row,) for row, vals in rows],
                               ", ".join(f"`{n}` string" for n in names) + ", _row long")
    df = with_protected_fields(df, entity, keyring)
    return (df.withColumn("_source", F.lit(entity.source)).withColumn("_entity", F.lit(entity.name))
            .withColumn("_batch_date", F.lit(night)).withColumn("_file", F.lit(file)))


def _ca_values(rid, id_number, name, amount="850.00"):
    v = dict(record_id=rid, id_number=id_number, name=name, gender="男", birth_date="1980-01-01",
             assistance_type="DIBAO", monthly_amount_yuan=amount, start_date="2026-01-01", end_date="",
             status="ACTIVE", household_id="H9", community_code="440106001001", death_registered_date="",
             updated_at="2026-11-27T08:00:00+08:00")
    return [v[n] for n in CA.field_names]


@pytest.fixture(scope="module")
def lake(spark, spark_settings, tmp_path_factory):
    """Two departments' quarantines and findings and a register naming both, written by hand."""
    from pyspark.sql import functions as F

    home = tmp_path_factory.mktemp("feedback")
    s = Settings.load(home=home / "home", key_dir=home / "keys", spark=spark_settings)
    kr = Keyring.create(s.key_dir)
    t = datetime(2026, 11, 28, 2, 0)

    # ingest quarantine: police (this night and the night before), health
    bq = spark.createDataFrame([
        ("police", "population", NIGHT, POP_FILE, 7, "line 8", "ingest", "CSV_TOO_FEW_FIELDS",
         "expected 17 fields, found 4", f"P0007,{SECRET_NAME},{ID_RAW},甲街道1号"),
        ("police", "population", BEFORE, "population_20261126.csv", 2, "line 3", "ingest", "CSV_TOO_MANY_FIELDS",
         "expected 17 fields, found 18", "P0077,x,y"),
        ("health", "residents", NIGHT, "residents_20261127.xml", 3, "<resident> #3", "ingest", "XML_MALFORMED",
         "element is not well-formed XML", f"<resident><record_id>H3</record_id><id_no>{ID_HL}</id_no>"),
    ], "_source string, _entity string, _batch_date date, _file string, _row long, locator string, stage string, "
       "reason_code string, rule_detail string, raw string")
    bq = (bq.withColumn("raw_record_enc", encrypt(F.col("raw"), kr)).drop("raw")
          .withColumn("_delivery_id", F.lit("d1")).withColumn("_run_id", F.lit("r1"))
          .withColumn("_loaded_at", F.lit(t)).withColumn("_encoding", F.lit("GB18030"))
          .withColumn("_key_id", F.lit(kr.key_id)))
    write_to(s, "bronze.quarantine", bq, mode="append")

    # bronze rows of the night (what the clean stage read)
    pop = _bronze(spark, POP, [
        (1, pop_row("P0001", ID_LOWER, "张三", CSRQ="1990/03/07", LXDH=PHONE)),
        (4, pop_row("P0004", "150105198503021234", "李四", XBDM="7")),
        (9, pop_row("P0009", ID_Q, SECRET_NAME)),
    ], kr, NIGHT, POP_FILE)
    write_to(s, "bronze.police_population", pop, mode="append")
    ca = _bronze(spark, CA, [(2, _ca_values("A0002", ID_CA, "赵五", "-10.00"))], kr, NIGHT, "assistance_20261127.jsonl")

    # clean quarantine: the bronze row as encrypted JSON (as shuzhi.stages.silver.quarantine_rows)
    def quarantined(b, rid, reason, fld, detail, id_col, locator):
        return b.filter(F.col("record_id" if "record_id" in b.columns else "RECORD_ID") == rid).select(
            "_source", "_entity", "_batch_date", "_file", "_row", F.lit(rid).alias("record_id"),
            F.lit(locator).alias("locator"), F.lit("clean").alias("stage"), F.lit(reason).alias("reason_code"),
            F.lit(detail).alias("rule_detail"), F.lit(fld).alias("field"), F.col(id_col).alias("citizen_id_enc"),
            F.col(f"{id_col}__tok").alias("citizen_id__tok"), F.lit(None).cast("string").alias("person_hint"),
            encrypt(F.to_json(F.struct(*[F.col(n) for n in (POP if "RECORD_ID" in b.columns else CA).field_names])),
                    kr).alias("record_enc"),
            F.lit("d1").alias("_delivery_id"), F.lit("r2").alias("_run_id"), F.lit(t).alias("_loaded_at"),
            F.lit(kr.key_id).alias("_key_id"))

    sq = quarantined(pop, "P0009", "ID_CHECK", "GMSFHM", "GMSFHM: wrong check character", "GMSFHM", "line 10")
    sq = sq.unionByName(quarantined(ca, "A0002", "MONEY_NEGATIVE", "monthly_amount_yuan",
                                    "monthly_amount_yuan: negative", "id_number", "line 2"))
    write_to(s, "silver.quarantine", sq, mode="append")

    fi = spark.createDataFrame([
        ("police", "population", NIGHT, POP_FILE, 1, "P0001", "CSRQ", "DATE_LAYOUT", "correct",
         "yyyy/MM/dd → yyyyMMdd", "1990/03/07", "1990-03-07"),
        ("police", "population", NIGHT, POP_FILE, 1, "P0001", "GMSFHM", "ID_LOWER_X", "correct",
         "lower-case x → X", None, None),
        ("police", "population", NIGHT, POP_FILE, 1, "P0001", "LXDH", "PHONE_FORMAT", "correct",
         "dashes removed", None, None),
        ("police", "population", NIGHT, POP_FILE, 4, "P0004", "XBDM", "CODE_UNKNOWN", "flag", "not in code list",
         "7", "7"),
        ("police", "population", NIGHT, POP_FILE, 9, "P0009", "GMSFHM", "ID_CHECK", "quarantine",
         "wrong check character", None, None),                                   # = the quarantine row
        ("police", "population", NIGHT, POP_FILE, 5, "P0005", "", "DUP_VERSION", "supersede",
         "older version", None, None),                                           # no fault of a value
        ("police", "population", BEFORE, "population_20261126.csv", 3, "P0003", "XBDM", "CODE_LABEL", "correct",
         "label → code", "男", "1"),                                             # another night
        ("civil_affairs", "assistance", NIGHT, "assistance_20261127.jsonl", 3, "A0003", "name", "NAME_SPACE",
         "correct", "spaces removed", None, None),                               # another department
    ], "_source string, _entity string, _batch_date date, _file string, _row long, record_id string, field string, "
       "rule_id string, action string, change string, before string, after string")
    write_to(s, "silver.findings", fi.withColumn("_run_id", F.lit("r2")), mode="append")

    gc = spark.createDataFrame([
        ("c1", "X_NAME_MISMATCH", "medium", ["civil_affairs", "police"],
         ["civil_affairs/assistance/A0002", "police/population/P0002"], "civil_affairs/assistance/A0002", "t2",
         ID_CA, "name in civil_affairs differs from the police register (traditional/simplified variants "
                "compared as equal)", BEFORE, NIGHT, "open", None),
        ("c2", "X_DUP_PERSON", "low", ["police"], ["police/population/P0010", "police/population/P0001"],
         "police/population/P0010", "t1", ID_LOWER,
         "the same identity number as police record police/population/P0001 (this is the older record)",
         NIGHT, NIGHT, "open", None),
        ("c3", "X_ABSENT_POLICE", "medium", ["health", "police"], ["health/residents/H8", "police/population/P0008"],
         "person:t8", "t8", ID_HL, "known to health but not in the police population register",
         BEFORE, BEFORE, "resolved", NIGHT),                                     # resolved by the night
        ("c4", "X_VACANT_OCCUPIED", "medium", ["police"], ["police/houses/F0001", "police/population/P0004"],
         "police/houses/F0001", None, None, "declared vacant (FWYTDM=4) with 1 active resident(s)",
         AFTER, AFTER, "open", None),                                            # not known yet that night
        ("c5", "X_DECEASED_PAID", "high", ["health", "social_security"],
         ["social_security/insurance/S1", "health/residents/H1"], "social_security/insurance/S1", "t9", ID_HL,
         "benefit (scheme 110) paid after the death date recorded by health", BEFORE, NIGHT, "open", None),
    ], "conflict_id string, rule_id string, severity string, departments array<string>, record_refs array<string>, "
       "subject string, person_token string, cid string, evidence string, first_seen date, last_seen date, "
       "status string, resolved_on date")
    gc = gc.withColumn("citizen_id_enc", encrypt(F.col("cid"), kr)).drop("cid").withColumn("_run_id", F.lit("r3"))
    write_to(s, "gold.conflicts", gc, mode="append")

    silver_pop = spark.createDataFrame([
        ("P0001", POP_FILE, 1), ("P0002", "population_20261126.csv", 2), ("P0010", POP_FILE, 10),
    ], "record_id string, _file string, _row long")
    write_to(s, "silver.police_population", silver_pop, mode="append")
    scores = [dict(night=n, department="police", dimension=d, score=v, weight=1.0, metrics=1, computed_at=t,
                   run_id="q1") for n, d, v in ((BEFORE, "overall", 80.0), (NIGHT, "overall", 91.25),
                                                (NIGHT, "accuracy", 50.0))]
    write_to(s, "ops.quality_scores", rows_frame(spark, "ops.quality_scores", scores), mode="append")
    return s


def read_csv(path):
    raw = path.read_bytes()
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return raw, list(csv.reader(fh))


H = {en: i for i, (en, _) in enumerate(feedback.FEEDBACK_COLUMNS)}


@pytest.mark.spark
def test_police_feedback(spark, lake, tmp_path):
    out = tmp_path / "police.csv"
    n = feedback.export_feedback(spark, lake, out, department="police", night="2026-11-27")
    raw, rows = read_csv(out)
    header, body = rows[0], rows[1:]
    assert n == len(body) == 9
    assert raw.startswith(BOM) and raw.count(b"\n") == raw.count(b"\r\n")
    assert header[:3] == ["批次日期（night）", "数据表（table）", "记录编号（record_id）"]

    def cell(r, en):
        return r[H[en]]

    got = {(cell(r, "action"), cell(r, "rule_id"), cell(r, "record_id"), cell(r, "file"), cell(r, "locator"),
            cell(r, "field")) for r in body}
    assert got == {
        ("入湖隔离（未入库）", "CSV_TOO_FEW_FIELDS", "", POP_FILE, "line 8", "（整条记录）"),
        ("清洗隔离（未入库）", "ID_CHECK", "P0009", POP_FILE, "line 10", "GMSFHM"),
        ("已按规则更正", "DATE_LAYOUT", "P0001", POP_FILE, "line 2", "CSRQ"),
        ("已按规则更正", "ID_LOWER_X", "P0001", POP_FILE, "line 2", "GMSFHM"),
        ("已按规则更正", "PHONE_FORMAT", "P0001", POP_FILE, "line 2", "LXDH"),
        ("已标记（按原值保留）", "CODE_UNKNOWN", "P0004", POP_FILE, "line 5", "XBDM"),
        ("跨部门冲突（未决）", "X_NAME_MISMATCH", "P0002", "population_20261126.csv", "line 3", "XM"),
        ("跨部门冲突（未决）", "X_DUP_PERSON", "P0010", POP_FILE, "line 11", "GMSFHM"),
        ("跨部门冲突（未决）", "X_DUP_PERSON", "P0001", POP_FILE, "line 2", "GMSFHM"),
    }
    assert {cell(r, "table") for r in body} == {"实有人口"}
    assert {cell(r, "night") for r in body} == {"2026-11-27"}
    by = {(cell(r, "rule_id"), cell(r, "record_id")): r for r in body}
    q = by[("ID_CHECK", "P0009")]
    assert cell(q, "delivered") == "150105********1239" and cell(q, "element") == "公民身份号码"
    assert cell(q, "rule") == load_rules()["ID_CHECK"].zh
    assert cell(q, "expected").startswith("公民身份号码：必填；符合 GB 11643-1999")
    ing = by[("CSV_TOO_FEW_FIELDS", "")]
    assert "150105********0019" in cell(ing, "delivered") and cell(ing, "rule") == "CSV行字段数少于表头"
    assert cell(ing, "expected") == "一行一条完整记录：17个字段，与表头一致（RFC 4180引号规则）"
    assert cell(by[("ID_LOWER_X", "P0001")], "delivered") == "110101********001x"
    assert cell(by[("PHONE_FORMAT", "P0001")], "delivered") == "138******8000"
    # P0001 shows a masked identity number: its dates are masked in every cell of its rows
    birth = by[("DATE_LAYOUT", "P0001")]
    assert (cell(birth, "delivered"), cell(birth, "expected")) == ("****-**-**", "****-**-**")
    flag = by[("CODE_UNKNOWN", "P0004")]
    assert cell(flag, "delivered") == "7" and cell(flag, "expected").startswith("性别：符合 GB/T 2261.1")
    name = by[("X_NAME_MISMATCH", "P0002")]
    assert cell(name, "expected") == "与民政的记录一致（请核实后在源头更正）" and cell(name, "element") == "姓名"

    # nothing in plaintext that is L3/L4, nothing of another department
    for secret in (ID_RAW, ID_Q, ID_LOWER, ID_LOWER.upper(), ID_CA, ID_HL, SECRET_NAME, PHONE, "13800138000",
                   "1990/03/07", "1990-03-07", "19900307", "甲街道1号", "张三"):
        assert secret.encode() not in raw, secret
    for other in ("A0002", "A0003", "H3", "H8", "S1", "assistance_", "residents_", "440106********1238",
                  "320102********1234", "P0077", "P0003", "P0005", "P0008", "F0001"):
        assert other.encode() not in raw, other

    # the same night again: the same file
    assert feedback.export_feedback(spark, lake, out, department="police", night="2026-11-27") == 9
    assert out.read_bytes() == raw


@pytest.mark.spark
def test_civil_affairs_feedback_and_cli(spark, lake, tmp_path, monkeypatch, capsys):
    out = tmp_path / "ca.csv"
    for k, v in lake.env_vars().items():
        monkeypatch.setenv(k, v)
    assert main(["export", "feedback", "--department", "civil_affairs", "--night", "2026-11-27",
                 "--out", str(out)]) == 0
    assert f"3 rows → {out}" in capsys.readouterr().out
    raw, rows = read_csv(out)
    body = rows[1:]
    got = {(r[H["rule_id"]], r[H["record_id"]], r[H["field"]], r[H["delivered"]]) for r in body}
    assert got == {
        ("MONEY_NEGATIVE", "A0002", "monthly_amount_yuan", "******"),     # an amount (L3): hidden whole
        ("NAME_SPACE", "A0003", "name", ""),                                # no bronze row to show it from
        ("X_NAME_MISMATCH", "A0002", "name",
         "name in civil_affairs differs from the police register (traditional/simplified variants compared as "
         "equal)"),
    }
    assert {r[H["table"]] for r in body} == {"社会救助与死亡登记"}
    name = next(r for r in body if r[H["rule_id"]] == "X_NAME_MISMATCH")
    assert name[H["locator"]] == "" and name[H["expected"]] == "与公安的记录一致（请核实后在源头更正）"
    for other in (b"P0002", b"P0001", b"population_", ID_CA.encode(), b"-10.00", "赵五".encode()):
        assert other not in raw

    # a night with nothing: a header-only file
    assert main(["export", "feedback", "--department", "health", "--night", "2026-11-25", "--out", str(out)]) == 0
    assert len(read_csv(out)[1]) == 1
    capsys.readouterr()
    assert main(["export", "feedback", "--department", "polic", "--night", "2026-11-27", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == ("error: department 'polic' is not one of police, civil_affairs, "
                                               "social_security, health")
    assert main(["export", "feedback", "--department", "police", "--night", "2026-02-30", "--out", str(out)]) == 2
    assert "night '2026-02-30' is not a date" in capsys.readouterr().err

    # the data catalogue of this lake: live facts from Delta and ops.quality_scores
    cat_out = tmp_path / "reports" / "catalog.json"
    assert main(["catalog", "--out", str(cat_out), "--html", str(tmp_path / "catalog.html")]) == 0
    ds = {d["id"]: d for d in json.loads(cat_out.read_text(encoding="utf-8"))["datasets"]}
    assert (ds["bronze.quarantine"]["rows"], ds["silver.quarantine"]["rows"], ds["gold.conflicts"]["rows"]) == (3, 2, 5)
    assert ds["silver.findings"]["last_update"] is not None and ds["silver.findings"]["exists"] is True
    assert (ds["silver.police_population"]["quality_score"], ds["silver.police_population"]["quality_night"]) == (
        91.25, "2026-11-27")
    assert ds["silver.health_residents"]["rows"] is None and ds["silver.health_residents"]["quality_score"] is None
    text = cat_out.read_text(encoding="utf-8") + (tmp_path / "catalog.html").read_text(encoding="utf-8")
    for secret in (ID_RAW, ID_Q, ID_CA, ID_HL, SECRET_NAME):
        assert secret not in text


@pytest.mark.unit
def test_lines_refuse_another_department():
    assert doctest.testmod(feedback).failed == 0
    row = dict(night=NIGHT, entity="residents", record_id="H1", file="residents_20261127.xml", row=1,
               locator="<resident> #1", field="", kind="ingest", rule_id="XML_MALFORMED", delivered="x",
               corrected=None, detail=None, masked_id=None, others=None)
    cat = catalog()
    with pytest.raises(feedback.FeedbackError, match="names entity 'residents'"):
        feedback.feedback_lines([row], "police", cat, feedback.Texts.load(cat))
    line = feedback.feedback_lines([row], "health", cat, feedback.Texts.load(cat))[0]
    assert line[H["table"]] == "居民健康档案" and line[H["field"]] == "（整条记录）"


@pytest.mark.unit
def test_header_is_chinese_first():
    assert feedback.columns_header()[:2] == ["批次日期（night）", "数据表（table）"]
    assert POP_HEADER[:3] == ["RECORD_ID", "GMSFHM", "XM"]
