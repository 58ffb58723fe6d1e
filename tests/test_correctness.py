"""Measured correctness: the clean and cross-verify stages scored against the generator's ground
truth over several nights (a full night, incremental nights, a full re-sync).

Recall and precision of planted defects and contradictions must each be ≥ 99 % every night, with
no delivered record unaccounted for. The confusion figures per defect class are printed (run with
``-s`` to see them)."""
from datetime import date, timedelta

import pytest

from feedsim import generate
from feedsim.scoring import score_night
from jobs import clean, ingest, verify
from shuzhi.schemas import catalog

pytestmark = pytest.mark.integration

NIGHTS = 3


def test_clean_and_verify_against_ground_truth(spark, settings, capsys):
    start = date(2026, 11, 25)
    generate(settings.landing, settings.truth, residents=1500, nights=NIGHTS, start_date=start, seed=7,
             full_resync_every=2)   # night 3 is a full re-sync
    scores = []
    for n in range(NIGHTS):
        bd = (start + timedelta(days=n)).isoformat()
        for src in catalog().sources:
            ingest.run(spark, settings, src, bd)
        results = clean.run(spark, settings, bd)
        assert all(r.balanced for r in results)
        verify.run(spark, settings, bd)
        sc = score_night(spark, settings, settings.truth, bd)
        scores.append(sc)
        with capsys.disabled():
            print("\n" + sc.table())
    for sc in scores:
        assert sc.delivered > 0 and sc.unaccounted == [] and sc.accounted == sc.delivered, sc.unaccounted
        assert sc.recall >= 0.99, sc.table()
        assert sc.precision >= 0.99, sc.table()
    assert sum(sc.tp + sc.fn for sc in scores) > 500, "too few planted items to measure"
    # every defect class the generator planted over the run was met at least once
    met = {k for sc in scores for k, c in sc.classes.items() if c.tp}
    planted = {k for sc in scores for k, c in sc.classes.items() if c.tp + c.fn}
    assert planted - met == set()
    assert len(planted) >= 30, sorted(planted)
