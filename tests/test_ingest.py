"""Ingest: every format read correctly, malformed records quarantined with the right reason and
locator, manifest faults reject the whole delivery, re-runs change nothing."""
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import deliveries as dl
import pytest
from pyspark.sql import functions as F

from jobs import ingest
from shuzhi.crypto import decrypt
from shuzhi.delta import read_table, table_exists, table_version
from shuzhi.errors import DeliveryRejected

pytestmark = pytest.mark.spark

D = "2026-11-27"


def bronze(spark, settings, table):
    return read_table(spark, settings.table_path("bronze", table))


def quarantine(spark, settings):
    return read_table(spark, settings.table_path("bronze", "quarantine"))


def plain(df, col, keyring):
    return [r[0] for r in df.orderBy("_row").select(decrypt(F.col(col), keyring)).collect()]


def test_police_csv_gb18030_with_short_and_long_lines(spark, settings, keyring):
    rows = [dl.pop_row("P1", "150105198503021234", "张三"),
            dl.pop_row("P2", "15010519850302123X", "阿不都·热合曼", HJDZ="呼和浩特市,赛罕区 \"东\"街"),
            "P3,150105198503021234,李四,1",                                 # too few fields
            ",".join(dl.pop_row("P4", "150105198503021234", "王五")) + ",extra",  # too many
            dl.pop_row("P5", "", "赵六", LXDH="")]
    dl.police_population(settings.landing, D, rows)
    res = ingest.run(spark, settings, "police", D, keyring=keyring)
    assert res.status == "loaded"
    (f,) = res.files
    assert (f.manifest_rows, f.bronze_rows, f.quarantined_rows) == (5, 3, 2)
    b = bronze(spark, settings, "police_population")
    assert [r["RECORD_ID"] for r in b.orderBy("_row").collect()] == ["P1", "P2", "P5"]
    assert [r["_row"] for r in b.orderBy("_row").collect()] == [1, 2, 5]
    assert plain(b, "XM", keyring) == ["张三", "阿不都·热合曼", "赵六"]
    assert plain(b, "HJDZ", keyring)[1] == "呼和浩特市,赛罕区 \"东\"街"
    assert dict(b.schema["XM"].jsonValue())["type"] == "binary"
    q = quarantine(spark, settings).orderBy("_row").collect()
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [
        (3, "line 4", "CSV_TOO_FEW_FIELDS"), (4, "line 5", "CSV_TOO_MANY_FIELDS")]
    assert q[0]["rule_detail"] == "expected 17 fields, found 4"
    raw = spark.createDataFrame(q).select(decrypt(F.col("raw_record_enc"), keyring)).collect()
    assert raw[0][0] == "P3,150105198503021234,李四,1"


def test_police_file_really_utf8_is_detected_not_mojibake(spark, settings, keyring):
    rows = [dl.pop_row("P1", "150105198503021234", "乌兰图雅"), dl.pop_row("P2", "150105198503021234", "张三")]
    dl.police_population(settings.landing, D, rows, encoding="utf-8", declared="GB18030")
    ingest.run(spark, settings, "police", D, keyring=keyring)
    b = bronze(spark, settings, "police_population")
    assert plain(b, "XM", keyring) == ["乌兰图雅", "张三"]
    assert {r["_encoding"] for r in b.collect()} == {"UTF-8"}
    led = read_table(spark, settings.table_path("ops", "deliveries")).collect()
    assert [(r["declared_encoding"], r["actual_encoding"], r["status"]) for r in led] == [
        ("GB18030", "UTF-8", "accepted")]


def test_police_utf8_bom(spark, settings, keyring):
    dl.police_population(settings.landing, D, [dl.pop_row("P1", "150105198503021234", "张三")], encoding="utf-8",
                         bom=True)
    ingest.run(spark, settings, "police", D, keyring=keyring)
    b = bronze(spark, settings, "police_population").collect()
    assert b[0]["RECORD_ID"] == "P1"


def test_jsonl_bom_broken_line_and_money_as_text(spark, settings, keyring):
    rec = dict(record_id="M1", id_number="150105198503021234", name="张三", gender="男", birth_date="1985-03-02",
               assistance_type="DIBAO", monthly_amount_yuan=850.00, start_date="2026-01-01", end_date=None,
               status="ACTIVE", household_id="MZH1", community_code="150105001001", death_registered_date=None,
               updated_at="2026-11-27T21:04:11+08:00")
    lines = ['{"record_id": "M1", ' + json.dumps(rec, ensure_ascii=False)[1:].replace('"record_id": "M1", ', ""),
             dict(rec, record_id="M2", monthly_amount_yuan="850.00元"),
             '{"record_id": "M3", "name": "李',
             dict(rec, record_id="M4", monthly_amount_yuan=-12.5, assistance_type=None)]
    lines[0] = json.dumps(rec, ensure_ascii=False).replace("850.0", "850.00")
    dl.civil_affairs(settings.landing, D, lines, bom=True)
    res = ingest.run(spark, settings, "civil_affairs", D, keyring=keyring)
    assert (res.files[0].bronze_rows, res.files[0].quarantined_rows) == (3, 1)
    b = bronze(spark, settings, "civil_affairs_assistance")
    assert [r["record_id"] for r in b.orderBy("_row").collect()] == ["M1", "M2", "M4"]
    assert plain(b, "monthly_amount_yuan", keyring) == ["850.00", "850.00元", "-12.5"]
    assert plain(b, "assistance_type", keyring) == ["DIBAO", "DIBAO", None]   # L3: who receives assistance
    (q,) = quarantine(spark, settings).collect()
    assert (q["_row"], q["locator"], q["reason_code"]) == (3, "line 3", "JSON_UNPARSABLE")


def test_xml_broken_element_and_empty_elements(spark, settings, keyring):
    el = dict(record_id="H1", id_no="150105198503021234", name="张三", sex_code="1", birth_date="1985-03-02",
              community_code="150105001002", chronic_conditions="I10;E11", disability_grade=None,
              family_doctor_team="T015", last_visit_date="2026-10-11", death_date="", updated_at="2026-11-27 08:00:00")
    broken = "  <resident><record_id>H2</record_id><name>李四</nam><sex_code>2</sex_code></resident>"
    dl.health(settings.landing, D, [el, broken, dict(el, record_id="H3", name="王五")])
    res = ingest.run(spark, settings, "health", D, keyring=keyring)
    assert (res.files[0].bronze_rows, res.files[0].quarantined_rows) == (2, 1)
    b = bronze(spark, settings, "health_residents").orderBy("_row")
    rows = b.collect()
    assert [r["record_id"] for r in rows] == ["H1", "H3"] and [r["_row"] for r in rows] == [1, 3]
    assert plain(b, "chronic_conditions", keyring) == ["I10;E11", "I10;E11"]
    assert rows[0]["disability_grade"] is None and rows[0]["death_date"] is None
    (q,) = quarantine(spark, settings).collect()
    assert (q["_row"], q["reason_code"], q["locator"]) == (2, "XML_MALFORMED", "<resident> #2")


def test_parquet_types_kept(spark, settings, keyring):
    ts = datetime(2026, 11, 27, 1, 2, 3, tzinfo=timezone.utc)
    rows = [dict(record_id="S1", sfzh="150105198503021234", xm="张三", insurance_type="110", enrolment_status="1",
                 employer_uscc="91150105MA0N8XYZ3Q", employer_name="呼和浩特某公司", monthly_benefit=Decimal("3120.50"),
                 last_payment_date=date(2026, 11, 15), updated_at=ts),
            dict(record_id="S2", sfzh=None, xm=None, insurance_type="390", enrolment_status="1", employer_uscc=None,
                 employer_name=None, monthly_benefit=None, last_payment_date=None, updated_at=ts)]
    dl.social_security(settings.landing, D, rows)
    ingest.run(spark, settings, "social_security", D, keyring=keyring)
    b = bronze(spark, settings, "social_security_insurance").orderBy("_row")
    r = b.collect()
    assert r[0]["employer_uscc"] == "91150105MA0N8XYZ3Q"          # L1: organisation codes are public
    assert b.schema["updated_at"].dataType.typeName() == "timestamp"
    local = b.select(F.date_format("updated_at", "yyyy-MM-dd HH:mm:ss")).first()[0]
    assert local == "2026-11-27 09:02:03"          # the UTC instant, shown in the session tz Asia/Shanghai
    assert plain(b, "monthly_benefit", keyring) == ["3120.50", None]
    assert plain(b, "last_payment_date", keyring) == ["2026-11-15", None]
    assert r[1]["sfzh"] is None and r[1]["sfzh__tok"] is None


def test_identity_token_is_hmac_of_normalised_number(spark, settings, keyring):
    rows = [dl.pop_row("P1", "１５０１０５１９８５０３０２１２３ｘ", "张三"),
            dl.pop_row("P2", "150105-19850302-123x", "张三"), dl.pop_row("P3", "150105850302123", "张三")]
    dl.police_population(settings.landing, D, rows)
    ingest.run(spark, settings, "police", D, keyring=keyring)
    toks = [r["GMSFHM__tok"] for r in bronze(spark, settings, "police_population").orderBy("_row").collect()]
    from stdnum.cn import ric  # independent GB 11643 implementation

    from shuzhi.standards import citizen_id_normalised_py
    lifted = citizen_id_normalised_py("150105850302123")
    assert lifted.startswith("15010519850302123") and ric.is_valid(lifted)
    assert toks[0] == toks[1] == keyring.token_py("15010519850302123X")
    assert toks[2] == keyring.token_py(lifted)


@pytest.mark.parametrize("fault, code", [
    ("no_manifest", "MANIFEST_MISSING"), ("unparsable", "MANIFEST_UNPARSABLE"), ("missing_file", "FILE_MISSING"),
    ("row_count", "ROW_COUNT_MISMATCH"), ("sha256", "SHA256_MISMATCH")])
def test_manifest_fault_rejects_whole_delivery(spark, settings, keyring, fault, code):
    d = dl.police_population(settings.landing, D, [dl.pop_row("P1", "150105198503021234", "张三"),
                                                   "P2,broken"])
    m = d / "manifest.json"
    if fault == "no_manifest":
        m.unlink()
    elif fault == "unparsable":
        m.write_text('{"source": "police", "files": [', encoding="utf-8")
    elif fault == "missing_file":
        (d / "population_20261127.csv").unlink()
    elif fault == "row_count":
        mj = json.loads(m.read_text())
        mj["files"][0]["rows"] = 3
        m.write_text(json.dumps(mj))
    elif fault == "sha256":
        f = d / "population_20261127.csv"
        f.write_bytes(f.read_bytes().replace("张".encode("gb18030"), "章".encode("gb18030")))
    with pytest.raises(DeliveryRejected) as exc:
        ingest.run(spark, settings, "police", D, keyring=keyring)
    assert exc.value.code == code and "police/2026-11-27" in str(exc.value)
    assert not table_exists(spark, settings.table_path("bronze", "police_population"))
    assert not table_exists(spark, settings.table_path("bronze", "quarantine"))
    (led,) = read_table(spark, settings.table_path("ops", "deliveries")).collect()
    assert (led["status"], led["reason_code"]) == ("rejected", code)
    (audit,) = read_table(spark, settings.table_path("ops", "job_runs")).collect()
    assert audit["outcome"] == "rejected" and code in audit["error_message"]


def test_rerun_same_delivery_changes_nothing(spark, settings, keyring):
    dl.police_population(settings.landing, D, [dl.pop_row("P1", "150105198503021234", "张三"), "P2,broken"])
    first = ingest.run(spark, settings, "police", D, keyring=keyring)
    tables = [settings.table_path("bronze", "police_population"), settings.table_path("bronze", "quarantine"),
              settings.table_path("ops", "deliveries")]
    versions = [table_version(spark, t) for t in tables]
    snapshot = [sorted(map(str, read_table(spark, t).drop("_loaded_at", "recorded_at").collect())) for t in tables]
    again = ingest.run(spark, settings, "police", D, keyring=keyring)
    assert first.status == "loaded" and again.status == "noop"
    assert [table_version(spark, t) for t in tables] == versions
    assert [sorted(map(str, read_table(spark, t).drop("_loaded_at", "recorded_at").collect()))
            for t in tables] == snapshot
    runs = read_table(spark, settings.table_path("ops", "job_runs"))
    outcomes = [r["outcome"] for r in runs.orderBy("started_at").collect()]
    assert outcomes == ["success", "noop"]


def test_stats_never_collected_on_sensitive_columns(spark, settings, keyring):
    dl.police_population(settings.landing, D, [dl.pop_row("P1", "150105198503021234", "张三")])
    ingest.run(spark, settings, "police", D, keyring=keyring)
    from delta.tables import DeltaTable
    bronze = DeltaTable.forPath(spark, str(settings.table_path("bronze", "police_population")))
    props = bronze.detail().collect()[0]["properties"]
    cols = props["delta.dataSkippingStatsColumns"].split(",")
    assert "RECORD_ID" in cols and "_row" in cols
    for sensitive in ("GMSFHM", "GMSFHM__tok", "XM", "LXDH", "HJDZ", "XZZ", "MZDM"):
        assert sensitive not in cols
