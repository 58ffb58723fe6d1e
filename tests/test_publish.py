"""Write–audit–publish (shuzhi.publish): a reader of silver or gold never sees a version whose
critical gate failed; the next good night continues from the published version; a night re-run
after its rejection is written and judged again; a retention stage refuses an ungated head.

The failure is planted the way a faulty stage would leave it: a second row for a record id appended
to the head of silver (and of gold.person) after the stage wrote, before the gate — the
``one row per record id`` expectation is critical."""
import deliveries as dl
import pytest
from pyspark.sql import functions as F

from jobs import clean, gate, ingest, tier, verify
from shuzhi.access import Reader, read
from shuzhi.delta import read_table, table_version
from shuzhi.errors import GateFailed
from shuzhi.publish import PendingGate, Verdicts, verdicts

D1, D2, D3 = "2026-11-25", "2026-11-26", "2026-11-27"
SILVER = "silver.police_population"


cid = dl.identity_number


def row(rid: str, n: int, night: str) -> list[str]:
    return dl.pop_row(rid, cid(n), ["张三", "李四", "王五", "赵六"][n % 4], XBDM="1", CSRQ=f"19{80 + n:02d}0302",
                      GXSJ=f"{night} 08:00:00")


def deliver(spark, settings, keyring, night: str, rows) -> None:
    dl.police_population(settings.landing, night, rows)
    assert ingest.run(spark, settings, "police", night, keyring=keyring).status == "loaded"
    clean.task(spark, settings, night)              # the pipeline's clean: it governs its silver tables


def seen(spark, settings, table: str = SILVER):
    return read(spark, settings, table, reader=Reader.pipeline("test"))


def record_ids(spark, settings) -> list[str]:
    return sorted(r[0] for r in seen(spark, settings).select("record_id").collect())


def plant_duplicate(spark, settings, table: str, key: str) -> int:
    """Append a second row for the first ``key`` of the table's head; returns the new head version."""
    path = settings.table_path(*table.split(".", 1))
    head = read_table(spark, path)
    head.limit(1).write.format("delta").mode("append").save(str(path))
    assert read_table(spark, path).groupBy(key).count().filter(F.col("count") > 1).count() == 1
    return table_version(spark, path)


@pytest.mark.unit
def test_verdicts_follow_published_rejected_and_rebased_versions():
    none = Verdicts(SILVER, ())
    assert (none.governed, none.published, none.base, none.needs_rebase) == (False, None, 0, False)
    v = Verdicts(SILVER, ((-1, None, "governed"), (2, D1, "published"), (4, D2, "rejected")))
    assert (v.published, v.base, v.needs_rebase, v.attempt(D2), v.attempt(D1)) == (2, 2, True, 1, 0)
    assert v.judged(4) and v.judged(2) and not v.judged(3)
    after = Verdicts(SILVER, v.rows + ((5, D3, "rebased"),))
    assert (after.published, after.base, after.needs_rebase) == (2, 5, False)      # readers still at 2
    twice = Verdicts(SILVER, after.rows + ((7, D2, "rejected"),))
    assert (twice.needs_rebase, twice.txn_suffix(D2), twice.txn_suffix(D3)) == (True, "#2", "")


@pytest.mark.spark
def test_readers_never_see_a_version_whose_critical_gate_failed(spark, settings, keyring):
    # night 1: written, gated, published
    deliver(spark, settings, keyring, D1, [row("P1", 1, D1), row("P2", 2, D1)])
    assert seen(spark, settings).count() == 0                 # governed, nothing published yet: nothing to see
    assert gate.run(spark, settings, SILVER, D1).status in ("passed", "warned")
    assert record_ids(spark, settings) == ["P1", "P2"]
    verify.task(spark, settings, D1)
    assert gate.run(spark, settings, "gold.person", D1).status in ("passed", "warned")
    published_gold = table_version(spark, settings.table_path("gold", "person"))

    # night 2: the write is not seen before its gate; a planted fault fails the gate; still not seen
    deliver(spark, settings, keyring, D2, [row("P3", 3, D2)])
    assert record_ids(spark, settings) == ["P1", "P2"]
    bad = plant_duplicate(spark, settings, SILVER, "record_id")
    with pytest.raises(GateFailed, match=r"expect_column_values_to_be_unique\(record_id\)"):
        gate.run(spark, settings, SILVER, D2)
    assert verdicts(spark, settings, SILVER).rows[-1] == (bad, D2, "rejected")
    assert record_ids(spark, settings) == ["P1", "P2"]        # the published version, no duplicate
    # gold is built from published silver only, and its own rejected version is not seen either
    verify.task(spark, settings, D2)
    person = read_table(spark, settings.table_path("gold", "person"))
    assert person.count() == 2                                # P3 never reached gold
    plant_duplicate(spark, settings, "gold.person", "person_token")
    with pytest.raises(GateFailed):
        gate.run(spark, settings, "gold.person", D2)
    gold_seen = seen(spark, settings, "gold.person")
    assert gold_seen.count() == 2
    assert {r[0].isoformat() for r in gold_seen.select("_as_of").distinct().collect()} == {D1}
    assert verdicts(spark, settings, "gold.person").published == published_gold

    # night 3: clean continues from the published version (the rejected one is rolled back first);
    # before its gate, a retention stage refuses to publish over the ungated head
    deliver(spark, settings, keyring, D3, [row("P4", 4, D3)])
    assert [s for _, _, s in verdicts(spark, settings, SILVER).rows][-1] == "rebased"
    with pytest.raises(PendingGate, match=SILVER):
        tier.run(spark, settings, D3, keyring=keyring)
    gate.run(spark, settings, SILVER, D3)
    assert record_ids(spark, settings) == ["P1", "P2", "P4"]
    verify.task(spark, settings, D3)
    gate.run(spark, settings, "gold.person", D3)
    assert {r[0].isoformat() for r in seen(spark, settings, "gold.person").select("_as_of").distinct()
            .collect()} == {D3}

    # the operator re-runs night 2: written again (its first write was rejected), judged, published
    clean.task(spark, settings, D2)
    assert record_ids(spark, settings) == ["P1", "P2", "P4"]
    gate.run(spark, settings, SILVER, D2)
    assert record_ids(spark, settings) == ["P1", "P2", "P3", "P4"]
    head = table_version(spark, settings.table_path("silver", "police_population"))
    clean.task(spark, settings, D2)                           # and once more: nothing changes
    assert table_version(spark, settings.table_path("silver", "police_population")) == head
    assert seen(spark, settings).groupBy("record_id").count().filter(F.col("count") > 1).count() == 0
