"""The feed generator against SPEC.md, checked on the files it writes (no mocks).

Each expectation is recomputed from the written bytes with independent parsers (csv, json,
xml.etree, pyarrow, python-stdnum) and compared with the ground truth the generator wrote.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from stdnum import numdb
from stdnum.cn import ric, uscc

from feedsim import DefectRates, GenerationSummary, generate, main

pytestmark = pytest.mark.unit

START = date(2026, 11, 25)
POP_FIELDS = ["RECORD_ID", "GMSFHM", "XM", "XBDM", "CSRQ", "MZDM", "HJDZ_XZQHDM", "HJDZ", "XZZ", "SQDM", "FWBM",
              "HH", "YHZGXDM", "LXDH", "RYZTDM", "ZXRQ", "GXSJ"]
HOUSE_FIELDS = ["RECORD_ID", "FWBM", "DZ", "SQDM", "FZGMSFHM", "FWYTDM", "JZRS", "GXSJ"]
INCIDENT_FIELDS = ["RECORD_ID", "JJBH", "BJSJ", "AJLBDM", "FSDZ", "SQDM", "SJRGMSFHM", "CLZTDM", "GXSJ"]
CSV_FIELDS = {"population": POP_FIELDS, "houses": HOUSE_FIELDS, "incidents": INCIDENT_FIELDS}
# expected actions as the brief states them (independent of the generator's table)
EXPECTED_ACTIONS = {
    **dict.fromkeys(["id_lowercase_x", "id_fullwidth", "id_separators", "id_15_digit", "name_spaces",
                     "name_middle_dot", "code_as_label", "date_layout", "phone_format", "money_text", "dup_exact",
                     "dup_version", "bom", "encoding_utf8_as_gb18030"], "corrected"),
    **dict.fromkeys(["id_bad_check", "id_bad_birthdate", "id_bad_region", "id_empty", "name_empty",
                     "date_impossible", "date_future", "money_negative", "broken_csv_short", "broken_csv_long",
                     "broken_json", "broken_xml"], "quarantined"),
    **dict.fromkeys(["code_unknown", "phone_landline", "phone_short", "dup_person_two_ids",
                     "contra_deceased_benefit", "contra_name_mismatch", "contra_birthdate_mismatch",
                     "contra_id_birth_sex", "contra_absent_from_police", "contra_vacant_house_residents",
                     "contra_uscc_bad_check"], "flagged"),
    "name_traditional": "tolerated",
}
RIC_INVALID = {"id_separators", "id_15_digit", "id_bad_check", "id_bad_birthdate", "id_bad_region", "id_empty"}


# ---------------------------------------------------------------- runs (module-scoped) ----
@dataclasses.dataclass
class Run:
    landing: Path
    truth: Path
    summary: GenerationSummary

    def nights(self) -> list[str]:
        return self.summary.nights

    def manifest(self, source: str, night: str) -> dict:
        return json.loads((self.landing / source / night / "manifest.json").read_text(encoding="utf-8"))

    def delivery(self, night: str) -> dict:
        return json.loads((self.truth / night / "deliveries.json").read_text(encoding="utf-8"))

    def actual(self, source: str, night: str, name: str) -> dict:
        return next(f for f in self.delivery(night)["sources"][source]["files"] if f["name"] == name)

    def truth_rows(self, night: str) -> list[dict]:
        with open(self.truth / night / "truth.csv", encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))

    def text(self, source: str, night: str, name: str) -> str:
        data = (self.landing / source / night / name).read_bytes()
        info = self.actual(source, night, name)
        if info["bom"]:
            assert data.startswith(b"\xef\xbb\xbf")
            data = data[3:]
        return data.decode("gb18030" if info["encoding_actual"] == "GB18030" else "utf-8")

    def files(self, source: str, entity: str):
        for night in self.nights():
            for f in self.manifest(source, night)["files"]:
                if f["entity"] == entity:
                    yield night, f["name"]


def _generate(tmp, name, **kw) -> Run:
    root = tmp / name
    s = generate(root / "landing", root / "truth", start_date=START, **kw)
    return Run(root / "landing", root / "truth", s)


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> Run:
    """Three nights, defects at three times the default rates, full re-sync every second night."""
    return _generate(tmp_path_factory.mktemp("gen"), "noisy", residents=3000, nights=3, seed=7,
                     rates=DefectRates.scaled(3), full_resync_every=2)


@pytest.fixture(scope="module")
def filelevel(tmp_path_factory) -> Run:
    """Every police file in UTF-8 (manifest still GB18030) and every UTF-8 file with a BOM."""
    rates = dataclasses.replace(DefectRates.none(), bom=1.0, encoding_utf8_as_gb18030=1.0, broken_csv_long=0.02)
    return _generate(tmp_path_factory.mktemp("gen"), "filelevel", residents=600, nights=1, seed=3, rates=rates)


@pytest.fixture(scope="module")
def contra(tmp_path_factory) -> Run:
    """No format defects; contradictions and duplicate persons at high rates."""
    rates = dataclasses.replace(DefectRates.none(), contra_deceased_benefit=0.5, contra_name_mismatch=0.02,
                                contra_birthdate_mismatch=0.02, contra_id_birth_sex=0.02,
                                contra_absent_from_police=0.02, contra_vacant_house_residents=0.03,
                                contra_uscc_bad_check=0.02, dup_person_two_ids=0.01)
    return _generate(tmp_path_factory.mktemp("gen"), "contra", residents=4000, nights=2, seed=11, rates=rates)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Run:
    return _generate(tmp_path_factory.mktemp("gen"), "clean", residents=1500, nights=2, seed=5,
                     rates=DefectRates.none())


def _rows_of(truth: list[dict], file: str, *classes: str) -> dict[int, str]:
    return {int(r["row"]): r["defect_class"] for r in truth if r["file"] == file and r["defect_class"] in classes}


def _csv_records(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:]


def _ric_ok(value: str, as_of_year: int = START.year) -> bool:
    """A valid GB 11643 number, read from the standard with python-stdnum's parts: 18 characters,
    stdnum's check character, a real birth date, and an address code that stdnum's GB/T 2260 table
    has in force at some time between max(birth year, 1984) and ``as_of_year`` — the county where
    the number was assigned (first issue 1984). Not ``ric.is_valid``: it wants the code in force in
    the birth year, which elderly and migrant holders' genuine numbers often fail."""
    try:
        n = ric.compact(value)
        if len(n) != 18 or not n[:17].isdigit() or n[17] != ric.calc_check_digit(n):
            return False
        born = ric.get_birth_date(n).year
    except Exception:
        return False
    county = {k: v for _, props in numdb.get("cn/loc").info(n[:6]) for k, v in props.items()}.get("county")
    if county is None:
        return False
    first = max(born, 1984)
    for name in county.split(","):
        if not name.startswith("["):
            return True
        start, end = name[1:].split("]")[0].split("-")
        if (not start or int(start) <= as_of_year) and (not end or int(end) >= first):
            return True
    return False


# ---------------------------------------------------------------- determinism ----
def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    a = _generate(tmp_path, "a", residents=700, nights=2, seed=99)
    b = _generate(tmp_path, "b", residents=700, nights=2, seed=99)
    c = _generate(tmp_path, "c", residents=700, nights=2, seed=100)
    assert _tree_bytes(a.landing) == _tree_bytes(b.landing)
    assert _tree_bytes(a.truth) == _tree_bytes(b.truth)
    la, lc = _tree_bytes(a.landing), _tree_bytes(c.landing)
    assert la.keys() == lc.keys()
    assert all(la[k] != lc[k] for k in la if k.endswith((".csv", ".parquet", ".xml")) and "population_" in k)


# ---------------------------------------------------------------- manifests ----
def _count_records(run: Run, source: str, night: str, name: str) -> int:
    if name.endswith(".parquet"):
        return pq.read_metadata(run.landing / source / night / name).num_rows
    text = run.text(source, night, name)
    if name.endswith(".csv"):
        return len(_csv_records(text)[1])
    if name.endswith(".jsonl"):
        return len(text.splitlines())
    return len(re.findall(r"<resident>", text))


@pytest.mark.parametrize("fixture", ["noisy", "filelevel", "clean"])
def test_manifest_matches_files(fixture, request):
    run: Run = request.getfixturevalue(fixture)
    for night in run.nights():
        for source in ("police", "civil_affairs", "social_security", "health"):
            m = run.manifest(source, night)
            assert (m["source"], m["batch_date"]) == (source, night)
            assert m["kind"] in ("full", "incremental")
            for f in m["files"]:
                data = (run.landing / source / night / f["name"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == f["sha256"], f["name"]
                assert _count_records(run, source, night, f["name"]) == f["rows"], f["name"]
                assert f["encoding"] == ("GB18030" if source == "police" else "UTF-8")
                assert f["name"] == f"{f['entity']}_{night.replace('-', '')}." + {
                    "police": "csv", "civil_affairs": "jsonl", "social_security": "parquet", "health": "xml"}[source]


def test_kinds_full_then_incremental_with_resync(noisy):
    kinds = [noisy.manifest("police", n)["kind"] for n in noisy.nights()]
    assert kinds == ["full", "incremental", "full"]  # full_resync_every=2
    for source in ("civil_affairs", "social_security", "health"):
        assert [noisy.manifest(source, n)["kind"] for n in noisy.nights()] == kinds
    full1, inc, full3 = (sum(f["rows"] for f in noisy.manifest("police", n)["files"]) for n in noisy.nights())
    assert inc < full1 / 5 and full3 >= full1 * 0.99


def test_incremental_records_updated_on_batch_date(noisy):
    """Every record in an incremental delivery carries an update time on the batch date, except the
    planted older versions (dup_version)."""
    night = noisy.nights()[1]
    truth = noisy.truth_rows(night)
    seen_before = set()
    for _, name in noisy.files("police", "population"):
        if name.endswith(noisy.nights()[0].replace("-", "") + ".csv"):
            seen_before = {r[0] for r in _csv_records(noisy.text("police", noisy.nights()[0], name))[1]}
    for name in (f"population_{night.replace('-', '')}.csv", f"incidents_{night.replace('-', '')}.csv"):
        header, rows = _csv_records(noisy.text("police", night, name))
        gx = header.index("GXSJ")
        off_day = {i for i, r in enumerate(rows, 1) if len(r) == len(header) and not r[gx].startswith(night)}
        assert off_day == set(_rows_of(truth, name, "dup_version"))
    _, rows = _csv_records(noisy.text("police", night, f"population_{night.replace('-', '')}.csv"))
    ids = {r[0] for r in rows}
    assert ids & seen_before  # changed records ...
    # ... and created ones: persons who were not in the district the night before (births, move-ins)
    before = {f["police_record_id"] for f in pq.read_table(noisy.truth / noisy.nights()[0] / "population.parquet")
              .to_pylist()}
    assert ids - seen_before <= {rid for rid in ids if rid not in before}


# ---------------------------------------------------------------- formats ----
def test_police_csv_is_gb18030_crlf_with_header(noisy):
    for entity, fields in CSV_FIELDS.items():
        for night, name in noisy.files("police", entity):
            info = noisy.actual("police", night, name)
            data = (noisy.landing / "police" / night / name).read_bytes()
            if info["encoding_actual"] != "GB18030":
                continue
            assert not data.startswith(b"\xef\xbb\xbf")
            text = data.decode("gb18030")
            if re.search(r"[^\x00-\x7f]", text):  # Chinese text: GB18030 bytes, not UTF-8
                with pytest.raises(UnicodeDecodeError):
                    data.decode("utf-8")
            assert data.count(b"\r\n") == data.count(b"\n") == data.count(b"\r")
            assert text.split("\r\n", 1)[0] == ",".join(fields)


def test_utf8_police_file_declared_gb18030(filelevel):
    night = filelevel.nights()[0]
    truth = filelevel.truth_rows(night)
    manifest = filelevel.manifest("police", night)
    for f in manifest["files"]:
        data = (filelevel.landing / "police" / night / f["name"]).read_bytes()
        assert f["encoding"] == "GB18030"
        assert data.startswith(b"\xef\xbb\xbf")
        text = data[3:].decode("utf-8")            # really UTF-8 ...
        assert re.search(r"[\u4e00-\u9fff]", text)  # ... with Chinese text in it
        assert data[3:].decode("gb18030", errors="replace") != text  # read as declared: mojibake
        classes = {r["defect_class"] for r in truth if r["file"] == f["name"]}
        assert {"encoding_utf8_as_gb18030", "bom"} <= classes
    for source in ("civil_affairs", "health"):
        for f in filelevel.manifest(source, night)["files"]:
            assert (filelevel.landing / source / night / f["name"]).read_bytes().startswith(b"\xef\xbb\xbf")
            assert any(r["file"] == f["name"] and r["defect_class"] == "bom" and r["row"] == "" for r in truth)


def test_parquet_schema_exact(noisy):
    expected = pa.schema([("record_id", pa.string()), ("sfzh", pa.string()), ("xm", pa.string()),
                          ("insurance_type", pa.string()), ("enrolment_status", pa.string()),
                          ("employer_uscc", pa.string()), ("employer_name", pa.string()),
                          ("monthly_benefit", pa.decimal128(12, 2)), ("last_payment_date", pa.date32()),
                          ("updated_at", pa.timestamp("ms", tz="UTC"))])
    for night, name in noisy.files("social_security", "insurance"):
        schema = pq.read_schema(noisy.landing / "social_security" / night / name)
        assert schema.remove_metadata().equals(expected), schema
        t = pq.read_table(noisy.landing / "social_security" / night / name)
        if night == noisy.nights()[0]:
            benefit = t.column("monthly_benefit").drop_null()
            assert len(benefit) and all(v.as_py().as_tuple().exponent == -2 for v in benefit[:50])


def test_xml_elements_parse_except_planted(noisy):
    for night, name in noisy.files("health", "residents"):
        text = noisy.text("health", night, name)
        assert text.startswith(f'<residents batch_date="{night}">\n') and text.endswith("</residents>\n")
        chunks = re.findall(r"<resident>.*?</resident>", text, flags=re.S)
        assert len(chunks) == noisy.manifest("health", night)["files"][0]["rows"]
        bad = set()
        for i, chunk in enumerate(chunks, 1):
            try:
                el = ET.fromstring(chunk)
                assert [c.tag for c in el][:2] == ["record_id", "id_no"]
            except ET.ParseError:
                bad.add(i)
        assert bad == set(_rows_of(noisy.truth_rows(night), name, "broken_xml"))
        if not bad:
            ET.fromstring(text)


def test_broken_csv_lines_match_truth(noisy):
    found = 0
    for entity, fields in CSV_FIELDS.items():
        for night, name in noisy.files("police", entity):
            _, rows = _csv_records(noisy.text("police", night, name))
            short = {i for i, r in enumerate(rows, 1) if len(r) < len(fields)}
            long = {i for i, r in enumerate(rows, 1) if len(r) > len(fields)}
            truth = noisy.truth_rows(night)
            assert short == set(_rows_of(truth, name, "broken_csv_short"))
            assert long == set(_rows_of(truth, name, "broken_csv_long"))
            found += len(short) + len(long)
    assert found > 10


def test_broken_json_lines_match_truth(noisy):
    found = 0
    for night, name in noisy.files("civil_affairs", "assistance"):
        bad = set()
        for i, line in enumerate(noisy.text("civil_affairs", night, name).splitlines(), 1):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                bad.add(i)
        assert bad == set(_rows_of(noisy.truth_rows(night), name, "broken_json"))
        found += len(bad)
    assert found >= 1


def test_population_ids_failing_stdnum_are_the_planted_ones(noisy):
    checked = 0
    for night, name in noisy.files("police", "population"):
        truth = noisy.truth_rows(night)
        _, rows = _csv_records(noisy.text("police", night, name))
        invalid = {i for i, r in enumerate(rows, 1) if len(r) == len(POP_FIELDS) and not _ric_ok(r[1])}
        planted = _rows_of(truth, name, *RIC_INVALID)
        assert invalid == set(planted)
        lower = {i for i, r in enumerate(rows, 1) if len(r) == len(POP_FIELDS) and r[1].endswith("x")}
        assert lower == set(_rows_of(truth, name, "id_lowercase_x"))
        full = {i for i, r in enumerate(rows, 1) if len(r) == len(POP_FIELDS) and re.search("[０-９]", r[1])}
        assert full == set(_rows_of(truth, name, "id_fullwidth"))
        checked += len(invalid)
    assert checked > 20


def test_uscc_failing_check_char_are_the_planted_ones(noisy, contra):
    letters = n_bad = 0
    for run in (noisy, contra):
        for night, name in run.files("social_security", "insurance"):
            t = pq.read_table(run.landing / "social_security" / night / name).to_pylist()
            codes = [(i, r["employer_uscc"]) for i, r in enumerate(t, 1) if r["employer_uscc"] is not None]
            bad = {i for i, code in codes if code[-1] != uscc.calc_check_digit(code[:17])}
            assert bad == set(_rows_of(run.truth_rows(night), name, "contra_uscc_bad_check"))
            n_bad += len(bad)
            for i, r in enumerate(t, 1):
                code = r["employer_uscc"]
                if code is None or i in bad:
                    continue
                # valid per GB 32100; stdnum's validate() also rejects letters in positions 1-8
                assert uscc.is_valid(code) or not code[:8].isdigit(), code
                letters += not code[:8].isdigit()
    assert letters > 0 and n_bad > 0


def test_duplicates_match_truth(noisy):
    for entity, fields in CSV_FIELDS.items():
        for night, name in noisy.files("police", entity):
            truth = noisy.truth_rows(night)
            _, rows = _csv_records(noisy.text("police", night, name))
            first, exact = {}, set()
            for i, r in enumerate(rows, 1):
                key = tuple(r)
                if key in first:
                    exact.add(i)
                else:
                    first[key] = i
            assert exact == set(_rows_of(truth, name, "dup_exact"))
            by_id = defaultdict(list)
            for i, r in enumerate(rows, 1):
                if len(r) == len(fields):
                    by_id[r[0]].append((r[-1], i, tuple(r)))
            older = set()
            for versions in by_id.values():
                distinct = sorted(set(versions))
                if len({v[2] for v in distinct}) > 1:
                    older |= {v[1] for v in distinct[:-1]}
            assert older == set(_rows_of(truth, name, "dup_version"))


# ---------------------------------------------------------------- contradictions ----
def _health_records(run: Run, night: str) -> list[dict]:
    name = f"residents_{night.replace('-', '')}.xml"
    return [{c.tag: (c.text or "") for c in ET.fromstring(ch)}
            for ch in re.findall(r"<resident>.*?</resident>", run.text("health", night, name), flags=re.S)]


def test_contradictions_match_truth(contra):
    night = contra.nights()[0]
    truth = contra.truth_rows(night)
    d8 = night.replace("-", "")
    _, pop = _csv_records(contra.text("police", night, f"population_{d8}.csv"))
    _, houses = _csv_records(contra.text("police", night, f"houses_{d8}.csv"))
    health = _health_records(contra, night)
    police_name = {r[1]: r[2] for r in pop}
    # absent from police: known to health, not in the register
    absent = {h["id_no"] for h in health} - set(police_name)
    assert absent == {r["person_id"] for r in truth if r["defect_class"] == "contra_absent_from_police"}
    assert absent
    # a different name in health (a traditional-character variant would not count: none planted here)
    mism = {h["record_id"] for h in health if h["id_no"] in police_name and h["name"] != police_name[h["id_no"]]}
    assert mism == {r["record_id"] for r in truth
                    if r["defect_class"] == "contra_name_mismatch" and r["source"] == "health"}
    # vacant houses with active residents
    active_fwbm = Counter(r[10] for r in pop if r[14] == "0" and r[10])
    vacant = {h[0] for h in houses if h[5] == "4" and active_fwbm[h[1]]}
    assert vacant == {r["record_id"] for r in truth if r["defect_class"] == "contra_vacant_house_residents"}
    assert vacant
    # pension paid after the death date recorded by health
    died = {h["id_no"]: h["death_date"] for h in health if h["death_date"]}
    ss = pq.read_table(contra.landing / "social_security" / night / f"insurance_{d8}.parquet").to_pylist()
    paid_after = {r["record_id"] for r in ss if r["sfzh"] in died and r["monthly_benefit"] is not None
                  and r["enrolment_status"] == "1" and r["last_payment_date"] > date.fromisoformat(died[r["sfzh"]])}
    assert paid_after == {r["record_id"] for r in truth
                          if r["defect_class"] == "contra_deceased_benefit" and r["source"] == "social_security"}
    # one person, two record ids in the police register
    ids = Counter(r[1] for r in pop)
    two = {r[0] for r in pop if ids[r[1]] > 1 and r[0] >= "RK09"}
    assert two == {r["record_id"] for r in truth
                   if r["defect_class"] == "dup_person_two_ids" and r["source"] == "police"}
    # sex disagreeing with the identity number (17th digit odd = male)
    wrong_sex = {r[0] for r in pop if r[3] != ("1" if int(r[1][16]) % 2 else "2")}
    assert wrong_sex == {r["record_id"] for r in truth if r["defect_class"] == "contra_id_birth_sex"
                         and r["source"] == "police" and r["field"] == "XBDM"}
    # birth date disagreeing with the identity number
    wrong_birth = {r[0] for r in pop if r[4] != r[1][6:14]}
    assert wrong_birth == {r["record_id"] for r in truth if r["defect_class"] == "contra_id_birth_sex"
                           and r["source"] == "police" and r["field"] == "CSRQ"}
    classes = {r["defect_class"] for r in truth}
    assert {"contra_birthdate_mismatch", "contra_uscc_bad_check"} <= classes


# ---------------------------------------------------------------- truth ----
def test_every_defect_class_is_planted_and_action_is_right(noisy, filelevel, contra):
    rows = [r for run in (noisy, filelevel, contra) for n in run.nights() for r in run.truth_rows(n)]
    assert {r["defect_class"] for r in rows} == set(EXPECTED_ACTIONS)
    for r in rows:
        assert r["expected_action"] == EXPECTED_ACTIONS[r["defect_class"]], r
        assert r["batch_date"] in ("2026-11-25", "2026-11-26", "2026-11-27")
        if r["defect_class"] not in ("bom", "encoding_utf8_as_gb18030", "contra_vacant_house_residents"):
            assert _ric_ok(r["person_id"]) if r["person_id"] else r["source"] == "police"


def test_clean_run_has_no_truth_and_valid_data(clean):
    for night in clean.nights():
        assert clean.truth_rows(night) == []
        d8 = night.replace("-", "")
        header, pop = _csv_records(clean.text("police", night, f"population_{d8}.csv"))
        assert all(len(r) == len(header) and _ric_ok(r[1]) and r[1] == r[1].strip() for r in pop)
        assert all(re.fullmatch(r"1\d{10}", r[13]) and re.fullmatch(r"\d{8}", r[4]) for r in pop)
        ET.fromstring(clean.text("health", night, f"residents_{d8}.xml"))
        for line in clean.text("civil_affairs", night, f"assistance_{d8}.jsonl").splitlines():
            json.loads(line)
    # households: exactly one active head
    night = clean.nights()[0]
    _, pop = _csv_records(clean.text("police", night, f"population_{night.replace('-', '')}.csv"))
    heads = Counter(r[11] for r in pop if r[14] == "0" and r[12] == "02")
    active_hh = {r[11] for r in pop if r[14] == "0"}
    assert all(heads[h] == 1 for h in active_hh)
    rel = Counter(r[12] for r in pop)
    assert set(rel) <= {"02", "10", "20", "50", "99"} and rel["20"] > rel["50"] > 0
    eth = Counter(r[5] for r in pop)
    assert eth["01"] > len(pop) * 0.6 and eth["02"] > 0
    assert {r[9][:6] for r in pop} == {"150105"} and all(len(r[9]) == 12 for r in pop)


def test_truth_outside_landing_and_landing_holds_only_deliveries(noisy, tmp_path):
    assert not noisy.truth.resolve().is_relative_to(noisy.landing.resolve())
    for p in noisy.landing.rglob("*"):
        if p.is_file():
            source, night, name = p.relative_to(noisy.landing).parts
            assert source in ("police", "civil_affairs", "social_security", "health")
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", night)
            assert name == "manifest.json" or re.fullmatch(r"[a-z]+_\d{8}\.(csv|jsonl|parquet|xml)", name)
    for night in noisy.nights():
        assert {p.name for p in (noisy.truth / night).iterdir()} == {"truth.csv", "deliveries.json",
                                                                      "population.parquet"}
    with pytest.raises(ValueError, match="landing"):
        generate(tmp_path / "l", tmp_path / "l" / "truth", residents=100, nights=1)


def test_population_truth_facts(noisy):
    night = noisy.nights()[0]
    facts = pq.read_table(noisy.truth / night / "population.parquet").to_pylist()
    assert all(_ric_ok(f["person_id"]) for f in facts)
    by_id = {f["person_id"]: f for f in facts}
    _, pop = _csv_records(noisy.text("police", night, f"population_{night.replace('-', '')}.csv"))
    status = {"0": "active", "1": "deceased", "2": "moved_out"}
    truth = noisy.truth_rows(night)
    touched = {int(r["row"]) for r in truth if r["file"].startswith("population_") and r["row"]}
    for i, r in enumerate(pop, 1):
        if i in touched:
            continue
        f = by_id[r[1]]
        assert (f["name"], status[r[14]]) == (r[2], f["status"])
    ages = Counter((date.fromisoformat(night) - f["birth_date"]).days // 3652 for f in facts if f["status"] == "active")
    assert ages[3] > ages[0] > ages[9] > 0  # a pyramid: more 30-somethings than babies than 90-somethings


def test_cli_writes_clean_delivery(tmp_path, capsys):
    rc = main(["--landing", str(tmp_path / "landing"), "--truth", str(tmp_path / "truth"), "--residents", "300",
               "--nights", "2", "--clean", "--seed", "1"])
    assert rc == 0
    assert (tmp_path / "landing" / "health" / "2026-11-26" / "manifest.json").exists()
    assert (tmp_path / "truth" / "2026-11-26" / "truth.csv").read_text(encoding="utf-8").count("\n") == 1
    assert "2 night(s)" in capsys.readouterr().out


def test_world_stays_consistent_over_nights(tmp_path):
    """Replaying clean deliveries as a lake (latest version per record id wins): updates only move
    forward, each household keeps one active head, vacancy and declared residents agree with the
    register, and no pension is paid after a death, across a pension payday and a full re-sync."""
    s = generate(tmp_path / "l", tmp_path / "t", residents=2500, nights=8, start_date=date(2026, 12, 11),
                 seed=21, rates=DefectRates.none(), full_resync_every=7)
    pop, houses, ss, health = {}, {}, {}, {}
    kinds = []
    for night in s.nights:
        d8 = night.replace("-", "")
        kinds.append(json.loads((tmp_path / "l" / "police" / night / "manifest.json").read_text())["kind"])

        def read(name: str, night: str = night) -> list[list[str]]:
            return _csv_records((tmp_path / "l" / "police" / night / name).read_bytes().decode("gb18030"))[1]
        for r in read(f"population_{d8}.csv"):
            assert r[0] not in pop or pop[r[0]][16] <= r[16]
            pop[r[0]] = r
        houses.update({r[1]: r for r in read(f"houses_{d8}.csv")})
        ss.update({r["record_id"]: r for r in
                   pq.read_table(tmp_path / "l" / "social_security" / night / f"insurance_{d8}.parquet").to_pylist()})
        for el in ET.fromstring((tmp_path / "l" / "health" / night / f"residents_{d8}.xml").read_text("utf-8")):
            h = {c.tag: c.text or "" for c in el}
            health[h["record_id"]] = h
        active = [r for r in pop.values() if r[14] == "0"]
        heads = Counter(r[11] for r in active if r[12] == "02")
        assert all(heads[r[11]] == 1 for r in active), night
        living = Counter(r[10] for r in active if r[10])
        for h in houses.values():
            assert (h[5] != "4" or living[h[1]] == 0) and (h[5] not in "12" or int(h[6]) == living[h[1]]), h
        died = {h["id_no"]: h["death_date"] for h in health.values() if h["death_date"]}
        assert not [r for r in ss.values() if r["sfzh"] in died and r["monthly_benefit"] is not None
                    and str(r["last_payment_date"]) > died[r["sfzh"]]]
    assert kinds == ["full"] + ["incremental"] * 6 + ["full"]
    paid = Counter(str(r["last_payment_date"]) for r in ss.values() if r["monthly_benefit"] is not None)
    assert paid.most_common(1)[0][0] == "2026-12-15"  # the payday within the run reached the pensioners
