"""ID_REGION reads the address code as GB 11643 defines it: the county of the holder's household
registration when the number was assigned — numbers were first assigned in 1984–1985, and a holder
keeps the number when the county is later renamed, merged or abolished. So a code is valid when
GB/T 2260 had it in force at some time between max(birth year, 1984) and the delivery's year;
whether it existed in the birth year does not matter (python-stdnum's ``cn.ric`` assumes it must,
so agreeing with stdnum proves nothing).

Every expected outcome below is written by hand from that text. The codes are literals looked up
in python-stdnum's ``cn/loc.dat`` (the GB/T 2260 history both the cleaner and the generator read):

- 150105 内蒙古 呼和浩特 郊区 [1983-1999], renamed 赛罕区 [2000-]: created in 1983
- 152621 内蒙古 乌兰察布盟 武川县 [-1996] (the county moved to 呼和浩特 as 150125 in 1996): abolished 1996
- 150120 内蒙古 呼和浩特 市区 [-1983]: abolished before the first issue
- 653228 新疆 和田地区 和康县 [2024-]: created in 2024
- 110101 北京 东城区 (no dates)
- 990105: no province 99, not a GB/T 2260 code
"""
from __future__ import annotations

import csv
from datetime import date

import deliveries as dl
import pyarrow.parquet as pq
import pytest
from frames import frame
from pyspark.sql import functions as F
from stdnum import numdb
from test_clean import cid

from feedsim import DefectRates, generate
from feedsim import reference as ref
from jobs import clean, ingest
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, encrypt
from shuzhi.delta import read_table
from shuzhi.refdata import valid_region
from shuzhi.rules import load_rules
from shuzhi.schemas import catalog
from shuzhi.stages.silver import region_table, standardise

# (case, address code, birth date, delivery date, ID_REGION expected)
CASES = [
    ("born 1943, code created 1983", "150105", "19430615", "2026-11-27", False),
    ("born 1982, code created 1983", "150105", "19820101", "2026-11-27", False),
    ("born 2001, code abolished 1996", "152621", "20010307", "2026-11-27", True),
    ("born 1997, code abolished 1996", "152621", "19970101", "2026-11-27", True),
    ("born 1996, code abolished 1996: assigned at birth", "152621", "19961231", "2026-11-27", False),
    ("born 1950, code abolished 1996: assigned 1984-1996", "152621", "19500101", "2026-11-27", False),
    ("born 1943, code abolished 1983: before any number", "150120", "19430615", "2026-11-27", True),
    ("unknown code", "990105", "19850302", "2026-11-27", True),
    ("code created 2024, delivered 2023", "653228", "19900101", "2023-11-27", True),
    ("code created 2024, delivered 2026", "653228", "19900101", "2026-11-27", False),
    ("code without dates", "110101", "19500101", "2026-11-27", False),
]


@pytest.mark.unit
@pytest.mark.parametrize("case, code, ymd, delivered, wrong", CASES, ids=[c[0] for c in CASES])
def test_valid_region_reads_the_assignment_window(case, code, ymd, delivered, wrong):
    assert valid_region(code, int(ymd[:4]), int(delivered[:4])) is not wrong


@pytest.mark.unit
def test_valid_region_window_edges():
    assert valid_region("152621", 1996, 2026) and not valid_region("152621", 1997, 2026)   # until 1996
    assert valid_region("653228", 1990, 2024) and not valid_region("653228", 1990, 2023)   # from 2024
    assert not valid_region("150105", 2030, 2026)                    # born after the delivery: no window
    assert not valid_region("", 1985, 2026) and not valid_region("15010", 1985, 2026)


def _police_bronze(spark, keyring, rows):
    """A police population DataFrame as bronze holds it: the delivered text, L3/L4 fields encrypted."""
    entity = catalog().entity("police", "population")
    df = frame(spark, rows, ", ".join(f"{h} string" for h in dl.POP_HEADER))
    return entity, df.select(*[encrypt(F.col(f.name), keyring).alias(f.name) if f.is_encrypted else F.col(f.name)
                               for f in entity.fields])


@pytest.fixture(scope="module")
def regions(spark):
    """The clean stage's GB/T 2260 table (python-stdnum's, 7,000 rows), built and cached once for the module."""
    df = region_table(spark).cache()
    df.count()
    yield df
    df.unpersist()


def _clean_stage(spark, keyring, batch_date, rows, regions) -> dict[str, tuple[set[str], str | None, bool]]:
    """record id → (rule ids, quarantine rule id, citizen_id__valid) through the clean stage's standardise."""
    entity, bronze = _police_bronze(spark, keyring, rows)
    out = standardise(bronze, entity, keyring, batch_date, regions, load_rules())
    return {r["record_id"]: ({h["rule_id"] for h in r["_findings"]}, r["_quarantine"] and r["_quarantine"]["rule_id"],
                             r["citizen_id__valid"])
            for r in out.select("record_id", "_findings", "_quarantine", "citizen_id__valid").collect()}


@pytest.mark.unit
def test_clean_stage_region_rule_per_case(tiny_spark, memory_keyring, regions):
    for delivered in sorted({c[3] for c in CASES}):
        cases = [c for c in CASES if c[3] == delivered]
        rows = [dl.pop_row(f"C{k}", cid(code, ymd, f"{k:03d}"), "张三", CSRQ=ymd)
                for k, (_, code, ymd, _, _) in enumerate(cases)]
        got = _clean_stage(tiny_spark, memory_keyring, delivered, rows, regions)
        for k, (case, _, _, _, wrong) in enumerate(cases):
            expected = ({"ID_REGION"}, "ID_REGION", False) if wrong else (set(), None, True)
            assert got[f"C{k}"] == expected, (case, delivered)


@pytest.mark.unit
def test_clean_stage_null_and_legacy_rows(tiny_spark, memory_keyring, regions):
    rows = [dl.pop_row("N1", None, "张三"),                                     # no number at all
            dl.pop_row("N2", "", "张三"),
            dl.pop_row("L1", "152621500101123", "张三", CSRQ="19500101"),      # 15 digits: 武川县, born 1950
            dl.pop_row("L2", "150120430615123", "张三", CSRQ="19430615")]      # 15 digits: 市区, gone in 1983
    got = _clean_stage(tiny_spark, memory_keyring, "2026-11-27", rows, regions)
    assert got == {"N1": ({"ID_EMPTY"}, "ID_EMPTY", False), "N2": ({"ID_EMPTY"}, "ID_EMPTY", False),
                   "L1": ({"ID_LEGACY_15"}, None, True), "L2": ({"ID_LEGACY_15", "ID_REGION"}, "ID_REGION", False)}


# ------------------------------------------------------------------ the generator draws codes as registrations do

START = date(2026, 11, 25)


@pytest.fixture(scope="module")
def generated(spark, spark_settings, tmp_path_factory):
    """One night of 2,000 residents with defects at three times the default rates; the police
    delivery (population, houses, incidents: every registered person) ingested and cleaned."""
    root = tmp_path_factory.mktemp("regions")
    settings = Settings.load(home=root / "home", key_dir=root / "keys", spark=spark_settings)
    keyring = Keyring.create(settings.key_dir)
    generate(settings.landing, settings.truth, residents=2000, nights=1, start_date=START, seed=20261127,
             rates=DefectRates.scaled(3))
    night = START.isoformat()
    ingest.run(spark, settings, "police", night, keyring=keyring)
    clean.run(spark, settings, night, keyring=keyring)
    return settings, night


@pytest.mark.spark
def test_generated_numbers_carry_historical_and_migrant_codes(generated):
    settings, night = generated
    facts = pq.read_table(settings.truth / night / "population.parquet").to_pylist()
    ids = [f["person_id"] for f in facts]
    born = {i: int(i[6:10]) for i in ids}
    # elderly locals with the code of 郊区/赛罕区, which GB/T 2260 has only from 1983
    assert sum(1 for i in ids if i[:6] == "150105" and born[i] < 1983) > 100
    # numbers assigned in 武川县 before it gave up 152621 in 1996, and numbers from other provinces
    assert any(i[:6] == "152621" and born[i] < 1980 for i in ids)
    assert len({i[:2] for i in ids} - {"15"}) >= 10
    # nobody's true number carries a code abolished before max(birth year, 1984), or an unknown one
    assert not any(i[:6] in ("150120", "990105") for i in ids)
    assert not any(i[:6] == "152621" and born[i] > 1996 for i in ids)
    assert all(valid_region(i[:6], born[i], START.year) for i in ids)


@pytest.mark.unit
def test_generator_bad_prefixes_are_no_gb2260_codes():
    """stdnum's own lookup (not the generator's parser) knows none of the planted unknown prefixes,
    and gives the abolished ones the last years the planting relies on."""
    def county(code):
        return {k: v for _, props in numdb.get("cn/loc").info(code) for k, v in props.items()}.get("county")
    assert [county(c) for c in ref.BAD_REGIONS] == [None] * len(ref.BAD_REGIONS)
    assert [county(c) for c in ("150120", "152621", "640102")] == ["[-1983]市区", "[-1996]武川县", "[1983-2002]城区"]
    assert ref.abolished_before(1950) == ("150120", "140120", "640120")            # the 1983 ones only
    assert set(ref.abolished_before(2001)) == {"150120", "140120", "640120", "152621", "133001", "510102"}


@pytest.mark.spark
def test_only_planted_bad_regions_are_quarantined_by_id_region(spark, generated):
    settings, night = generated
    with open(settings.truth / night / "truth.csv", encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    planted = {(r["source"], r["file"], int(r["row"])) for r in truth
               if r["defect_class"] == "id_bad_region" and r["source"] == "police"}
    fnd = read_table(spark, settings.table_path("silver", "findings")).filter(F.col("rule_id") == "ID_REGION")
    hits = {(r["_source"], r["_file"], r["_row"]) for r in fnd.collect()}
    q = read_table(spark, settings.table_path("silver", "quarantine")).filter(F.col("reason_code") == "ID_REGION")
    quarantined = {(r["_source"], r["_file"], r["_row"]) for r in q.collect()}
    assert len(planted) >= 10
    assert hits == quarantined == planted
    # the planted prefixes are unknown codes or codes abolished before the holder could have a number
    prefixes = {r["detail"].split("'")[1][:6] for r in truth if r["defect_class"] == "id_bad_region"}
    unknown = {"990105", "000105", "150106", "150199", "159901", "350199"}
    abolished = {"150120", "140120", "640120", "152621", "133001", "640102", "510102"}
    assert prefixes <= unknown | abolished and prefixes & unknown and prefixes & abolished
