"""The gate runner: baseline from schemas/, severities, results table, Data Docs."""
import re

import deliveries as dl
import pytest
from browser import open_page
from pyspark.sql import functions as F

from jobs import gate, ingest
from shuzhi.delta import read_table
from shuzhi.errors import GateFailed
from shuzhi.gates import bronze_baseline, data_docs_index
from shuzhi.schemas import catalog

D = "2026-11-27"


def page_status(page) -> str:
    """The word GX's validation page shows after "Status:" (its icon between)."""
    m = re.search(r'Status:</span>\s*<i [^>]*></i>\s*(\w+)', page.read_text(encoding="utf-8"))
    return m.group(1) if m else ""


@pytest.mark.unit
def test_baseline_is_derived_from_schemas():
    ex = bronze_baseline(catalog().entity("police", "population"))
    types = {(e.type, e.kwargs.get("column")): e.severity for e in ex}
    assert types[("expect_column_values_to_be_of_type", "GMSFHM")] == "critical"
    assert types[("expect_column_values_to_be_of_type", "XM")] == "critical"
    assert types[("expect_column_values_to_be_in_set", "XBDM")] == "warning"
    assert ("expect_column_values_to_be_in_set", "MZDM") not in types      # L3: encrypted, no plaintext check
    assert types[("expect_column_values_to_match_regex", "SQDM")] == "warning"


@pytest.mark.spark
def test_warning_recorded_and_run_goes_on_then_critical_stops(spark, settings, keyring):
    rows = [dl.pop_row("P1", "150105198503021234", "张三", XBDM="男"), dl.pop_row("P2", "150105198503021234", "李四")]
    dl.police_population(settings.landing, D, rows)
    ingest.run(spark, settings, "police", D, keyring=keyring)
    out = gate.run(spark, settings, "bronze.police_population", D)
    assert out.status == "warned" and out.failed_critical == []
    assert any("XBDM" in w for w in out.failed_warning)
    res = read_table(spark, settings.table_path("ops", "gate_results"))
    failed = res.filter(~F.col("success")).select("expectation", "column", "severity", "unexpected_count").collect()
    assert [(r["column"], r["severity"], r["unexpected_count"]) for r in failed] == [("XBDM", "warning", 1)]
    assert data_docs_index(settings).is_file()
    # its Data Docs page: the run named by the batch date, and a gate that only warned reads as succeeded
    site = data_docs_index(settings).parent / "validations" / "bronze" / "police_population"
    (page,) = site.glob(f"{D}/*/*.html")
    assert page_status(page) == "Succeeded"
    # the failed expectation's example value is on the page (the detail pass of gates.validate)
    assert "男" in page.read_text(encoding="utf-8")
    n = res.count()
    gate.run(spark, settings, "bronze.police_population", D)          # same data version: no new results
    assert read_table(spark, settings.table_path("ops", "gate_results")).count() == n

    # Plant plaintext in a sensitive column of a copy of the table: the critical check must stop it.
    path = settings.table_path("bronze", "police_population")
    bad = read_table(spark, path).withColumn("XM", F.lit("张三"))
    bad.write.format("delta").mode("overwrite").option("overwriteSchema", True).save(str(path))
    with pytest.raises(GateFailed, match="expect_column_values_to_be_of_type\\(XM\\)"):
        gate.run(spark, settings, "bronze.police_population", D)
    audit = read_table(spark, settings.table_path("ops", "job_runs")).orderBy("started_at").collect()
    assert [(r["stage"], r["gate_outcome"], r["outcome"]) for r in audit][-1] == (
        "gate:bronze.police_population", "failed", "failed")

    # Data Docs as the office opens them, in headless chromium with the network cut: the index lists
    # both validations of the night under its batch date, each page renders and loads nothing outside
    pages = sorted(site.glob(f"{D}/*/*.html"))
    assert [page_status(p) for p in pages] == ["Succeeded", "Failed"]      # named by run time: both kept
    index = open_page(data_docs_index(settings))
    assert (index["console"], index["page_errors"], index["outside_requests"], index["failed_requests"]) == (
        [], [], [], [])
    rows = [line.split("\t") for line in index["text"].splitlines() if "\t" in line and D in line]
    assert len(rows) == 2 and all(r[2].strip() == D and r[3].strip() == "bronze.police_population" for r in rows)
    for page in pages:
        seen = open_page(page)
        assert (seen["console"], seen["page_errors"], seen["outside_requests"], seen["failed_requests"]) == (
            [], [], [], []), page
        assert "Expectation Validation Result" in seen["text"] and D in seen["text"]


@pytest.mark.spark
def test_a_copied_lake_reuses_its_gate_results(spark, settings, keyring, tmp_path):
    """The reuse key names the data files relative to the table, so a lake copied (or restored)
    to another folder is the same data: its gates are not re-run nor re-recorded."""
    import shutil
    from dataclasses import replace

    dl.police_population(settings.landing, D, [dl.pop_row("P1", "150105198503021234", "张三", XBDM="男")])
    ingest.run(spark, settings, "police", D, keyring=keyring)
    first = gate.run(spark, settings, "bronze.police_population", D)
    whole = gate.run(spark, settings, "bronze.police_population", None)            # the whole table
    n = read_table(spark, settings.table_path("ops", "gate_results")).count()
    assert n > 0 and first.status == "warned" and whole.status == "warned"

    copy = replace(settings, home=tmp_path / "elsewhere", lake=tmp_path / "elsewhere" / "lake")
    shutil.copytree(settings.lake, copy.lake)
    again = gate.run(spark, copy, "bronze.police_population", D)
    again_whole = gate.run(spark, copy, "bronze.police_population", None)
    results = read_table(spark, copy.table_path("ops", "gate_results"))
    assert results.count() == n                                                       # nothing re-recorded
    assert (again.status, again.failed_warning, again.rows) == ("warned", first.failed_warning, 1)
    assert (again_whole.status, again_whole.rows) == ("warned", 1)
    assert again.skipped_write and again_whole.skipped_write                          # answered from the record


@pytest.mark.spark
def test_a_gate_reuses_its_checkpoint_until_the_stored_one_changes(spark, settings):
    """``gates.validate`` keeps a process's GX checkpoint per suite and fingerprint; GX checks it
    against the stored objects at each run, so a suite removed from the store is stored again and
    a changed suite gets its own checkpoint — the verdicts are those of the suite as given."""
    from shuzhi import gates

    df = spark.createDataFrame([(1, "a"), (2, None)], "id int, v string")
    not_null = [gates._e("expect_column_values_to_not_be_null", "critical", "test", column="v")]
    in_set = [gates._e("expect_column_values_to_be_in_set", "critical", "test", column="id", value_set=[1, 2])]
    assert not gates.validate(df, settings, "t:suite", not_null, asset="t.a").success
    held = len(gates._CHECKPOINTS)
    assert not gates.validate(df, settings, "t:suite", not_null, asset="t.a").success
    assert len(gates._CHECKPOINTS) == held                                    # the same checkpoint
    gates._context(str(settings.reports_dir)).suites.delete("t:suite")         # the store changed under it
    assert not gates.validate(df, settings, "t:suite", not_null, asset="t.a").success
    assert gates._context(str(settings.reports_dir)).suites.get("t:suite").expectations    # stored again
    assert gates.validate(df, settings, "t:suite", in_set, asset="t.a").success    # another suite, same name
    assert len(gates._CHECKPOINTS) == held + 1
    stored = gates._context(str(settings.reports_dir)).suites.get("t:suite")
    assert [e.expectation_type for e in stored.expectations] == ["expect_column_values_to_be_in_set"]
