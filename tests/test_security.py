"""No plaintext identity number or name anywhere under the lake root (data files, _delta_log,
checkpoints, Data Docs), after ingesting and gating a generated delivery of every source."""
from datetime import date

import pyarrow.parquet as pq
import pytest

from feedsim import generate
from jobs import gate, ingest
from shuzhi.delta import write_table
from shuzhi.scan import scan_tree
from shuzhi.schemas import catalog

pytestmark = pytest.mark.spark

NIGHT = "2026-11-25"


def truth_people(truth_root):
    t = pq.read_table(truth_root / "population.parquet").to_pylist()
    ids = {r["person_id"] for r in t if r["person_id"]}
    names = {r["name"] for r in t if r["name"] and len(r["name"]) >= 3}  # 2-char windows of random
    return ids, names                                                     # ciphertext collide by chance


def test_no_plaintext_at_rest(spark, settings, keyring):
    generate(settings.landing, settings.truth, residents=400, nights=1, start_date=date.fromisoformat(NIGHT), seed=7)
    for src in catalog().sources:
        ingest.run(spark, settings, src, NIGHT, keyring=keyring)
    for e in catalog().entities():
        gate.run(spark, settings, f"bronze.{e.table_name}", NIGHT)
    gate.run(spark, settings, "bronze.quarantine", NIGHT)
    ids, names = truth_people(settings.truth)
    assert len(ids) > 300 and len(names) > 50

    # Controls: the scanner finds the plaintext where it is (the deliveries), including inside a
    # snappy-compressed Delta table written the way the lake writes.
    in_landing = scan_tree(settings.landing, ids, names)
    assert sum(f.kind == "id" for f in in_landing) > 300 and sum(f.kind == "name" for f in in_landing) > 50
    control = spark.createDataFrame([(sorted(ids)[0], sorted(names)[0])], "id string, name string")
    write_table(control, settings.home / "control" / "t", mode="append")
    kinds = {f.kind for f in scan_tree(settings.home / "control", ids, names)}
    assert kinds == {"id", "name"}

    findings = scan_tree(settings.lake, ids, names)
    assert findings == [], "\n".join(map(str, findings[:20]))
    assert any(settings.lake.rglob("*.checkpoint.parquet")) or any(settings.lake.rglob("_delta_log/*.json"))
