"""The delivery contract (SPEC "Delivery layout" + each format), one hand-built delivery per fault:
every case is a copy of a small valid delivery with one thing changed, and its outcome is written
here by hand — the reason code in ops.deliveries, a fragment of the one-line message, nothing loaded
for a rejection; for a load, conservation exact (manifest rows = bronze + quarantine) and the right
values in the right columns. All cases share one Spark session."""
import hashlib
import json
import os
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import deliveries as dl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from jobs import ingest
from shuzhi.crypto import decrypt
from shuzhi.delta import read_table, table_exists
from shuzhi.errors import DeliveryRejected, UsageError
from shuzhi.readers import read_delivery_file
from shuzhi.stages.bronze import REJECTION_REASONS

D = "2026-11-27"
ID1, ID2 = "150105198503021234", "11010119900307001X"
REC = dict(record_id="M1", id_number=ID1, name="张三", gender="男", birth_date="1985-03-02", assistance_type="DIBAO",
           monthly_amount_yuan=850.00, start_date="2026-01-01", end_date=None, status="ACTIVE", household_id="MZH1",
           community_code="150105001001", death_registered_date=None, updated_at="2026-11-27T21:04:11+08:00")
EL = dict(record_id="H1", id_no=ID1, name="张三", sex_code="1", birth_date="1985-03-02", community_code="150105001002",
          chronic_conditions="I10", disability_grade=None, family_doctor_team="T015", last_visit_date="2026-10-11",
          death_date=None, updated_at="2026-11-27 08:00:00")
TS = datetime(2026, 11, 27, 1, 2, 3, tzinfo=timezone.utc)
INS = dict(record_id="S1", sfzh=ID1, xm="张三", insurance_type="110", enrolment_status="1", employer_uscc=None,
           employer_name=None, monthly_benefit=Decimal("3120.50"), last_payment_date=date(2026, 11, 15), updated_at=TS)


def _rewrite_manifest(d: Path, change) -> None:
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    change(m)
    text = json.dumps(m, ensure_ascii=False).replace('"@1e400"', "1e400")     # a number no float holds
    (d / "manifest.json").write_text(text, encoding="utf-8")


def _police(landing, rows=None, bd=D, **kw) -> Path:
    rows = rows or [dl.pop_row("P1", ID1, "张三"), dl.pop_row("P2", ID2, "李四")]
    return dl.police_population(landing, bd, rows, **kw)


def _raw_police(landing, text: str, rows: int, bd=D, encoding="gb18030", declared="GB18030") -> Path:
    data = text.encode(encoding)
    return dl.write_delivery(landing, "police", bd, {"population": (data, rows, declared)})


HEADER = ",".join(dl.POP_HEADER)
LINE1, LINE2 = ",".join(dl.pop_row("P1", ID1, "张三")), ",".join(dl.pop_row("P2", ID2, "李四"))


def _parquet(landing, table: pa.Table, rows=None) -> Path:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    n = table.num_rows if rows is None else rows
    return dl.write_delivery(landing, "social_security", D, {"insurance": (data, n, "UTF-8")})


def _ins_table(**changes) -> pa.Table:
    cols = {"record_id": pa.array(["S1"]), "sfzh": pa.array([ID1]), "xm": pa.array(["张三"]),
            "insurance_type": pa.array(["110"]), "enrolment_status": pa.array(["1"]),
            "employer_uscc": pa.array([None], pa.string()), "employer_name": pa.array([None], pa.string()),
            "monthly_benefit": pa.array([Decimal("3120.50")], pa.decimal128(12, 2)),
            "last_payment_date": pa.array([date(2026, 11, 15)], pa.date32()),
            "updated_at": pa.array([TS], pa.timestamp("ms", tz="UTC"))}
    for k, v in changes.items():
        if v is None:
            cols.pop(k)
        elif isinstance(v, tuple):
            cols[v[0]] = cols.pop(k)
        else:
            cols[k] = v
    return pa.table(cols)


def _xml(landing, body: str, rows: int, bd=D) -> Path:
    data = f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode("utf-8")
    return dl.write_delivery(landing, "health", bd, {"residents": (data, rows, "UTF-8")})


def _el(**kw) -> str:
    e = dict(EL, **kw)
    inner = "".join(f"<{k}>{v}</{k}>" if v is not None else f"<{k}/>" for k, v in e.items())
    return "<resident>" + inner + "</resident>"


def _jsonl(landing, text: str, rows: int) -> Path:
    return dl.write_delivery(landing, "civil_affairs", D, {"assistance": (text.encode("utf-8"), rows, "UTF-8")})


def _folder(landing, source, bd, manifest: dict | str, files: dict[str, bytes] | None = None) -> Path:
    d = landing / source / bd
    d.mkdir(parents=True, exist_ok=True)
    for n, data in (files or {}).items():
        (d / n).write_bytes(data)
    (d / "manifest.json").write_text(manifest if isinstance(manifest, str) else json.dumps(manifest), encoding="utf-8")
    return d


def _entry(name, data: bytes, rows, entity="population", encoding="GB18030"):
    return {"name": name, "entity": entity, "rows": rows, "sha256": hashlib.sha256(data).hexdigest(),
            "encoding": encoding}


# ------------------------------------------------------------------ rejections

def _case_header_renamed(landing):
    _raw_police(landing, HEADER.replace("GMSFHM", "SFZH") + "\r\n" + LINE1 + "\r\n", 1)
    return "police", D, "HEADER_MISMATCH", "missing GMSFHM; unknown SFZH"


def _case_header_extra_column(landing):
    _raw_police(landing, HEADER + ",BZ\r\n" + LINE1 + ",x\r\n", 1)
    return "police", D, "HEADER_MISMATCH", "unknown BZ"


def _case_header_missing_column(landing):
    _raw_police(landing, HEADER.replace(",LXDH", "") + "\r\n" + LINE1.replace(",13800138000", "") + "\r\n", 1)
    return "police", D, "HEADER_MISMATCH", "missing LXDH"


def _case_header_lower_case(landing):
    _raw_police(landing, HEADER.lower() + "\r\n" + LINE1 + "\r\n", 1)
    return "police", D, "HEADER_MISMATCH", "missing RECORD_ID"


def _case_empty_csv(landing):
    _raw_police(landing, "", 0)
    return "police", D, "HEADER_MISMATCH", "no header line"


def _case_parquet_missing_id(landing):
    _parquet(landing, _ins_table(sfzh=None))
    return "social_security", D, "HEADER_MISMATCH", "missing sfzh"


def _case_parquet_upper_case(landing):
    _parquet(landing, _ins_table(sfzh=("SFZH",)))
    return "social_security", D, "HEADER_MISMATCH", "unknown SFZH"


def _case_parquet_wrong_type(landing):
    _parquet(landing, _ins_table(monthly_benefit=pa.array([3120.5], pa.float64())))
    return "social_security", D, "COLUMN_TYPE_MISMATCH", "column monthly_benefit is double; SPEC: decimal128(12, 2)"


def _case_parquet_not_parquet(landing):
    dl.write_delivery(landing, "social_security", D, {"insurance": (b"record_id,sfzh\nS1,x\n", 1, "UTF-8")})
    return "social_security", D, "PARQUET_UNREADABLE", "not a readable Parquet file"


def _case_parquet_corrupt_footer(landing):
    sink = pa.BufferOutputStream()
    pq.write_table(_ins_table(), sink)
    data = sink.getvalue().to_pybytes()
    data = data[:-12] + b"\x00" * 8 + data[-4:]
    dl.write_delivery(landing, "social_security", D, {"insurance": (data, 1, "UTF-8")})
    return "social_security", D, "PARQUET_UNREADABLE", "insurance_20261127.parquet"


def _case_json_required_key_absent(landing):
    lines = [json.dumps({("idno" if k == "id_number" else k): v for k, v in dict(REC, record_id=f"M{i}").items()},
                        ensure_ascii=False) for i in range(3)]
    _jsonl(landing, "\n".join(lines) + "\n", 3)
    return "civil_affairs", D, "FIELD_MISSING", "required key id_number is in none of its 3 records"


def _case_xml_required_element_absent(landing):
    body = "<residents>" + "".join(_el(record_id=f"H{i}").replace("id_no>", "idno>") for i in range(2)) + "</residents>"
    _xml(landing, body, 2)
    return "health", D, "FIELD_MISSING", "required element id_no"


def _m(key, value):
    def change(m):
        m["files"][0][key] = value
    return change


@pytest.mark.spark
@pytest.mark.parametrize("change, code, fragment", [
    (_m("rows", "@1e400"), "MANIFEST_INVALID", "files[0].rows"),
    (_m("entity", ["population"]), "MANIFEST_INVALID", "files[0].entity"),
    (_m("encoding", 18030), "MANIFEST_INVALID", "files[0].encoding"),
    (_m("name", 20261127), "MANIFEST_INVALID", "files[0].name"),
    (_m("name", "population_2026:1127.csv"), "MANIFEST_INVALID", "files[0].name"),
    (_m("name", "population_*.csv"), "MANIFEST_INVALID", "files[0].name"),
    (_m("name", "../houses_20261127.csv"), "MANIFEST_INVALID", "files[0].name"),
    (_m("rows", -1), "MANIFEST_INVALID", "files[0].rows"),
    (_m("rows", True), "MANIFEST_INVALID", "files[0].rows"),
    (_m("sha256", "abc"), "MANIFEST_INVALID", "files[0].sha256"),
    (_m("encoding", "klingon"), "ENCODING_INVALID", "'klingon' is not allowed for csv"),
    (_m("entity", "persons"), "UNKNOWN_ENTITY", "entity 'persons'"),
    (_m("name", "population_20261128.csv"), "FILE_NAME_INVALID", "SPEC names the population file of 2026-11-27 "
                                                                  "population_20261127.csv"),
    (lambda m: m.pop("kind"), "MANIFEST_INVALID", "'kind' is a required property"),
    (lambda m: m.__setitem__("kind", "delta"), "MANIFEST_INVALID", ".kind"),
    (lambda m: m.__setitem__("source", "health"), "MANIFEST_MISMATCH", "source='health'"),
    (lambda m: m.__setitem__("batch_date", "2026-11-26"), "MANIFEST_MISMATCH", "batch_date='2026-11-26'"),
    (lambda m: m["files"].append(dict(m["files"][0])), "FILE_LISTED_TWICE", "lists population_20261127.csv twice"),
    (lambda m: m["files"].append(dict(m["files"][0], name="population_20261127_2.csv")), "ENTITY_LISTED_TWICE",
     "two files for entity population"),
    (lambda m: m.__setitem__("files", []), "DELIVERY_EMPTY", "lists no file"),
    (_m("rows", 3), "ROW_COUNT_MISMATCH", "manifest says 3 rows, file has 2 records"),
], ids=["rows_1e400", "entity_list", "encoding_number", "name_number", "name_colon", "name_glob", "name_path",
        "rows_negative", "rows_bool", "sha_short", "encoding_unknown", "entity_unknown", "name_other_date",
        "kind_missing", "kind_unknown", "source_other", "date_other", "file_twice", "entity_twice", "full_empty",
        "rows_more"])
def test_manifest_fault_is_a_rejection_with_its_code(spark, settings, keyring, change, code, fragment):
    d = _police(settings.landing)
    _rewrite_manifest(d, change)
    _assert_rejected(spark, settings, keyring, "police", D, code, fragment)


@pytest.mark.spark
@pytest.mark.parametrize("case", [
    _case_header_renamed, _case_header_extra_column, _case_header_missing_column, _case_header_lower_case,
    _case_empty_csv, _case_parquet_missing_id, _case_parquet_upper_case, _case_parquet_wrong_type,
    _case_parquet_not_parquet, _case_parquet_corrupt_footer, _case_json_required_key_absent,
    _case_xml_required_element_absent], ids=lambda c: c.__name__[6:])
def test_header_and_schema_faults_reject_the_delivery(spark, settings, keyring, case):
    source, bd, code, fragment = case(settings.landing)
    _assert_rejected(spark, settings, keyring, source, bd, code, fragment)


def _assert_rejected(spark, settings, keyring, source, bd, code, fragment):
    with pytest.raises(DeliveryRejected) as exc:
        ingest.run(spark, settings, source, bd, keyring=keyring)
    assert exc.value.code == code, str(exc.value)
    assert code in REJECTION_REASONS
    assert fragment in exc.value.message, exc.value.message
    assert f"delivery {source}/{bd}" in exc.value.message and "\n" not in exc.value.message
    (led,) = read_table(spark, settings.table_path("ops", "deliveries")).collect()
    assert (led["status"], led["reason_code"], led["source"]) == ("rejected", code, source)
    assert fragment in led["message"]
    lake = settings.lake
    assert not (lake / "bronze").exists() or not any((lake / "bronze").iterdir()), "nothing loaded"
    return led


@pytest.mark.spark
@pytest.mark.parametrize("folder, shown", [("2026-11-99", "'2026-11-99'"), ("20261126", "'20261126'"),
                                           ("2026-11-2'", "\"2026-11-2'\""), ("2026-02-30", "'2026-02-30'")])
def test_batch_date_folder_that_is_not_a_date(spark, settings, keyring, folder, shown):
    data = (HEADER + "\r\n" + LINE1 + "\r\n").encode("gb18030")
    _folder(settings.landing, "police", folder, {"source": "police", "batch_date": folder, "kind": "full",
                                                 "files": [_entry("population_20261127.csv", data, 1)]},
            {"population_20261127.csv": data})
    led = _assert_rejected(spark, settings, keyring, "police", folder, "BATCH_DATE_INVALID", shown)
    assert led["batch_date"] is None and led["delivery_id"].startswith(f"police/{folder}/")


@pytest.mark.spark
def test_delivery_dated_in_the_future(spark, settings, keyring):
    _police(settings.landing, bd="2030-01-01", rows=[dl.pop_row("P1", ID1, "张三", GXSJ="2029-12-31 08:00:00")])
    _assert_rejected(spark, settings, keyring, "police", "2030-01-01", "BATCH_DATE_FUTURE", "is after today")


@pytest.mark.spark
def test_manifest_nested_100000_levels(spark, settings, keyring):
    d = _police(settings.landing)
    (d / "manifest.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    _assert_rejected(spark, settings, keyring, "police", D, "MANIFEST_UNPARSABLE", "nested too deeply")


@pytest.mark.spark
def test_utf16_file(spark, settings, keyring):
    _raw_police(settings.landing, "\ufeff" + HEADER + "\r\n" + LINE1 + "\r\n", 1, encoding="utf-16-le")
    _assert_rejected(spark, settings, keyring, "police", D, "ENCODING_MISMATCH", "UTF-16")


@pytest.mark.spark
def test_json_array_on_one_line(spark, settings, keyring):
    _jsonl(settings.landing, json.dumps([REC, dict(REC, record_id="M2")], ensure_ascii=False) + "\n", 2)
    _assert_rejected(spark, settings, keyring, "civil_affairs", D, "JSON_NOT_LINES", "line 1 holds a JSON array")


@pytest.mark.spark
def test_manifest_counting_blank_lines_as_rows_is_told_exactly(spark, settings, keyring):
    _raw_police(settings.landing, HEADER + "\r\n" + LINE1 + "\r\n\r\n" + LINE2 + "\r\n", 3)
    _assert_rejected(spark, settings, keyring, "police", D, "ROW_COUNT_MISMATCH",
                     "manifest says 3 rows, file has 2 records (4 lines, 1 header line, 1 blank, not records)")


# ------------------------------------------------------------------ section 5: nothing outside the landing tree

@pytest.mark.spark
def test_symlink_to_a_file_outside(spark, settings, keyring, tmp_path):
    d = _police(settings.landing)
    outside = tmp_path / "elsewhere.csv"
    (d / "population_20261127.csv").rename(outside)
    (d / "population_20261127.csv").symlink_to(outside)
    _assert_rejected(spark, settings, keyring, "police", D, "UNSAFE_PATH", "population_20261127.csv is a symlink")


@pytest.mark.spark
def test_symlink_to_etc_passwd_reads_nothing_of_it(spark, settings, keyring):
    data = Path("/etc/passwd").read_bytes()
    entry = _entry("population_20261127.csv", data, data.count(b"\n") - 1)
    d = _folder(settings.landing, "police", D, {"source": "police", "batch_date": D, "kind": "full", "files": [entry]})
    (d / "population_20261127.csv").symlink_to("/etc/passwd")
    _assert_rejected(spark, settings, keyring, "police", D, "UNSAFE_PATH", "/etc/passwd")
    for p in settings.lake.rglob("*"):
        if p.is_file():
            assert b"root:x:0" not in p.read_bytes() and b"/bin/" not in p.read_bytes(), p


@pytest.mark.spark
def test_delivery_folder_that_is_a_symlink(spark, settings, keyring, tmp_path):
    real = _police(tmp_path / "other_landing")
    (settings.landing / "police").mkdir(parents=True)
    (settings.landing / "police" / D).symlink_to(real)
    _assert_rejected(spark, settings, keyring, "police", D, "UNSAFE_PATH", "delivery folder 2026-11-27 is a symlink")


@pytest.mark.spark
def test_manifest_that_is_a_symlink(spark, settings, keyring, tmp_path):
    d = _police(settings.landing)
    (d / "manifest.json").rename(tmp_path / "m.json")
    (d / "manifest.json").symlink_to(tmp_path / "m.json")
    _assert_rejected(spark, settings, keyring, "police", D, "UNSAFE_PATH", "manifest manifest.json is a symlink")


@pytest.mark.spark
def test_fifo_as_data_file_is_not_opened(spark, settings, keyring):
    d = _police(settings.landing)
    (d / "population_20261127.csv").unlink()
    os.mkfifo(d / "population_20261127.csv")
    _assert_rejected(spark, settings, keyring, "police", D, "UNSAFE_PATH", "is not a regular file")


BILLION_LAUGHS = ('<!DOCTYPE residents [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>')
XXE = '<!DOCTYPE residents [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
EXTERNAL_DTD = '<!DOCTYPE residents SYSTEM "file:///etc/passwd">'


@pytest.mark.spark
@pytest.mark.parametrize("doctype, name", [(BILLION_LAUGHS, "&d;"), (XXE, "&xxe;"), (EXTERNAL_DTD, "张三")],
                         ids=["billion_laughs", "xxe", "external_dtd"])
def test_xml_doctype_is_refused_and_never_expanded(spark, settings, keyring, doctype, name):
    d = _xml(settings.landing, doctype + "\n<residents>" + _el(name=name) + "</residents>", 1)
    _assert_rejected(spark, settings, keyring, "health", D, "XML_DOCTYPE", "declares a DOCTYPE")
    # and were the check ever bypassed, Spark's XML reader would not expand or fetch the entities
    from shuzhi.manifest import DeliveryFile
    from shuzhi.schemas import catalog

    ent = catalog().entity("health", "residents")
    f = DeliveryFile("residents_20261127.xml", ent, d / "residents_20261127.xml", 1, "", "UTF-8", "UTF-8", False)
    values = " ".join(str(v) for r in read_delivery_file(spark, f).collect() for v in r if v is not None)
    assert "root:" not in values and "aaaaaaaaaaaaaaaaaaaa" not in values


# ------------------------------------------------------------------ loads: the file keeps the contract

def _ledger(spark, settings):
    return read_table(spark, settings.table_path("ops", "deliveries")).collect()


def _bronze(spark, settings, table):
    return read_table(spark, settings.table_path("bronze", table)).orderBy("_row")


def _quarantine(spark, settings):
    return read_table(spark, settings.table_path("bronze", "quarantine")).orderBy("_row").collect()


def _plain(df, col, keyring):
    return [r[0] for r in df.select(decrypt(F.col(col), keyring)).collect()]


@pytest.mark.spark
def test_swapped_columns_are_read_by_name(spark, settings, keyring):
    header = HEADER.replace("GMSFHM", "@").replace("LXDH", "GMSFHM").replace("@", "LXDH")
    pos_id, pos_phone = dl.POP_HEADER.index("GMSFHM"), dl.POP_HEADER.index("LXDH")
    row = dl.pop_row("P1", ID1, "张三", LXDH="13912345678")
    row[pos_id], row[pos_phone] = row[pos_phone], row[pos_id]
    _raw_police(settings.landing, header + "\r\n" + ",".join(row) + "\r\n", 1)
    res = ingest.run(spark, settings, "police", D, keyring=keyring)
    assert (res.files[0].bronze_rows, res.files[0].quarantined_rows) == (1, 0)
    b = _bronze(spark, settings, "police_population")
    assert _plain(b, "GMSFHM", keyring) == [ID1] and _plain(b, "LXDH", keyring) == ["13912345678"]
    (led,) = _ledger(spark, settings)
    assert led["status"] == "accepted" and "read by name" in led["message"]


@pytest.mark.spark
def test_unlisted_file_and_unknown_keys_are_recorded(spark, settings, keyring):
    line = json.dumps(dict(REC, remark="备注"), ensure_ascii=False)
    d = _jsonl(settings.landing, line + "\n", 1)
    (d / "assistance_20261127.jsonl.bak").write_text("x")
    ingest.run(spark, settings, "civil_affairs", D, keyring=keyring)
    (led,) = _ledger(spark, settings)
    assert led["status"] == "accepted" and led["balanced"]
    assert "unknown keys, not loaded: remark ×1" in led["message"]
    assert "does not list (not read): assistance_20261127.jsonl.bak" in led["message"]


@pytest.mark.spark
def test_incremental_delivery_with_no_files(spark, settings, keyring):
    d = _police(settings.landing)
    _rewrite_manifest(d, lambda m: (m.__setitem__("kind", "incremental"), m.__setitem__("files", [])))
    (d / "population_20261127.csv").unlink()
    res = ingest.run(spark, settings, "police", D, keyring=keyring)
    assert res.files == []
    (led,) = _ledger(spark, settings)
    assert (led["status"], led["message"]) == ("accepted", "no files: nothing changed")


def _load(spark, settings, keyring, source, table):
    res = ingest.run(spark, settings, source, D, keyring=keyring)
    (f,) = res.files
    assert f.balanced, f
    return f, _bronze(spark, settings, table), _quarantine(spark, settings)


@pytest.mark.spark
def test_csv_blank_lines_in_the_middle_and_at_the_end(spark, settings, keyring):
    text = HEADER + "\r\n" + LINE1 + "\r\n\r\n  \r\n" + "P3,broken\r\n" + LINE2 + "\r\n\r\n"
    _raw_police(settings.landing, text, 3)
    f, b, q = _load(spark, settings, keyring, "police", "police_population")
    assert (f.bronze_rows, f.quarantined_rows) == (2, 1)
    assert [r["RECORD_ID"] for r in b.collect()] == ["P1", "P2"]
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [(2, "line 5", "CSV_TOO_FEW_FIELDS")]
    assert "3 blank line(s)" in _ledger(spark, settings)[0]["message"]


@pytest.mark.spark
def test_csv_cr_only_line_ends(spark, settings, keyring):
    _raw_police(settings.landing, HEADER + "\r" + LINE1 + "\r" + "P3,broken\r" + LINE2 + "\r", 3)
    f, b, q = _load(spark, settings, keyring, "police", "police_population")
    assert [r["RECORD_ID"] for r in b.collect()] == ["P1", "P2"]
    assert [(r["locator"], r["reason_code"]) for r in q] == [("line 3", "CSV_TOO_FEW_FIELDS")]


@pytest.mark.spark
def test_csv_quoted_field_with_a_line_break(spark, settings, keyring):
    row = dl.pop_row("P1", ID1, "张三", HJDZ="赛罕区\r\n大学东街1号")
    import csv as _csv
    import io

    buf = io.StringIO()
    _csv.writer(buf, lineterminator="\r\n").writerow(row)
    text = HEADER + "\r\n" + buf.getvalue() + "P3,broken\r\n" + LINE2 + "\r\n"
    _raw_police(settings.landing, text, 3)
    f, b, q = _load(spark, settings, keyring, "police", "police_population")
    assert [r["RECORD_ID"] for r in b.collect()] == ["P1", "P2"]
    assert _plain(b, "HJDZ", keyring)[0].replace("\r\n", "\n") == "赛罕区\n大学东街1号"
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [(2, "line 4", "CSV_TOO_FEW_FIELDS")]


@pytest.mark.spark
def test_csv_record_without_its_record_id_is_quarantined(spark, settings, keyring):
    _raw_police(settings.landing, HEADER + "\r\n" + LINE1 + "\r\n" + ",".join(dl.pop_row("", ID2, "李四")) + "\r\n", 2)
    f, b, q = _load(spark, settings, keyring, "police", "police_population")
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [(2, "line 3", "RECORD_ID_MISSING")]


@pytest.mark.spark
def test_jsonl_blank_lines(spark, settings, keyring):
    lines = [json.dumps(REC, ensure_ascii=False), "", '{"record_id": "M2", "name": "李', "   ",
             json.dumps(dict(REC, record_id="M3"), ensure_ascii=False)]
    _jsonl(settings.landing, "\n".join(lines) + "\n\n", 3)
    f, b, q = _load(spark, settings, keyring, "civil_affairs", "civil_affairs_assistance")
    assert [r["record_id"] for r in b.collect()] == ["M1", "M3"]
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [(2, "line 3", "JSON_UNPARSABLE")]


@pytest.mark.spark
def test_xml_records_in_comments_and_cdata_are_not_records(spark, settings, keyring):
    body = ("<residents>\n<!-- " + _el(record_id="C1") + " -->\n" + _el(record_id="H1") + "\n<![CDATA[ " +
            _el(record_id="C2") + " ]]>\n" + _el(record_id="H2") + "\n</residents>")
    _xml(settings.landing, body, 2)
    f, b, q = _load(spark, settings, keyring, "health", "health_residents")
    assert [r["record_id"] for r in b.collect()] == ["H1", "H2"] and q == []


@pytest.mark.spark
def test_xml_self_closing_resident_is_quarantined_not_lost(spark, settings, keyring):
    body = ("<residents>\n" + _el(record_id="H1") + "\n<resident/>\n" + _el(record_id="H3")
            + "\n<resident />\n</residents>")
    _xml(settings.landing, body, 4)
    f, b, q = _load(spark, settings, keyring, "health", "health_residents")
    assert [(r["record_id"], r["_row"]) for r in b.collect()] == [("H1", 1), ("H3", 3)]
    assert [(r["_row"], r["locator"], r["reason_code"]) for r in q] == [
        (2, "<resident> #2", "RECORD_ID_MISSING"), (4, "<resident> #4", "RECORD_ID_MISSING")]


@pytest.mark.spark
def test_xml_unknown_element_is_recorded(spark, settings, keyring):
    el = _el(record_id="H1").replace("</resident>", "<nickname>x</nickname></resident>")
    _xml(settings.landing, "<residents>" + el + "</residents>", 1)
    f, b, q = _load(spark, settings, keyring, "health", "health_residents")
    assert "unknown elements, not loaded: nickname ×1" in _ledger(spark, settings)[0]["message"]


@pytest.mark.spark
def test_a_rejected_source_leaves_the_other_sources_of_the_night_loading(spark, settings, keyring):
    _raw_police(settings.landing, HEADER.replace("GMSFHM", "SFZH") + "\r\n" + LINE1 + "\r\n", 1)
    _xml(settings.landing, "<residents>" + _el(record_id="H1") + "</residents>", 1)
    with pytest.raises(DeliveryRejected):
        ingest.run(spark, settings, "police", D, keyring=keyring)
    res = ingest.run(spark, settings, "health", D, keyring=keyring)
    assert res.status == "loaded" and res.files[0].bronze_rows == 1
    led = sorted((r["source"], r["status"], r["reason_code"]) for r in _ledger(spark, settings))
    assert led == [("health", "accepted", None), ("police", "rejected", "HEADER_MISMATCH")]


@pytest.mark.unit
def test_unknown_source_is_a_usage_error_and_writes_nothing(spark, settings, keyring):
    _police(settings.landing)
    with pytest.raises(UsageError, match="source 'polic' is not one of police, civil_affairs"):
        ingest.run(spark, settings, "polic", D, keyring=keyring)
    assert not table_exists(spark, settings.table_path("ops", "deliveries"))
    assert not table_exists(spark, settings.table_path("ops", "job_runs"))
