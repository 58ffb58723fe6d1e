"""Quality metrics (shuzhi.stages.quality, shuzhi.quality, jobs/quality.py): the measures counted
from the lake's own tables, the metrics and their scores, the department scorecards, the anomaly
flags on history and their gate, the cockpit's report — and the job on a small lake built here by
hand over four nights. Every expected number is worked out by hand below from the rows written
and the definitions of conf/quality.yaml (the arithmetic is spelled out), never by calling the
code under test."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from frames import frame

from shuzhi.errors import GateFailed
from shuzhi.quality import QualityConfigError, due_epoch, load_quality, measure_params, parse_quality
from shuzhi.stages.quality import (
    ALL,
    AnomalyConfig,
    Check,
    Dimension,
    Flag,
    LakeFrames,
    Level,
    MeasureParams,
    Metric,
    MetricValue,
    QualityConfig,
    TableShape,
    anomaly_gate,
    change_rate,
    compute_metrics,
    detect_anomalies,
    night_measures,
    report,
    robust_z,
    score,
    scorecards,
)

N1, N2, N3, N4 = (date(2026, 11, 24) + timedelta(days=i) for i in range(4))
SH = ZoneInfo("Asia/Shanghai")


def lin_lower(v, target, floor):
    """The score of a lower-is-better value, by the definition (conf/quality.yaml header)."""
    return 100.0 if v <= target else 0.0 if v >= floor else 100 * (floor - v) / (floor - target)


def lin_higher(v, target, floor):
    return 100.0 if v >= target else 0.0 if v <= floor else 100 * (v - floor) / (target - floor)


# ---------------------------------------------------------------- scores and metrics (pure Python)

SHARE = Metric("share", "占比", "a share", "accuracy", ("bad",), "all_rows", 1.0, "lower", 0.01, 0.05)
PER_K = Metric("rate", "千人率", "per 1000", "consistency", ("conflicts",), "persons", 1000.0, "lower", 1.0, 51.0,
               level="department")
SUM2 = Metric("sum2", "合计", "two summed", "accuracy", ("bad", "worse"), "all_rows", 1.0, "lower", 0.0, 0.5,
              weight=3.0)
COUNT = Metric("count", "记录数", "rows", "completeness", ("rows",), None, 1.0, "higher", None, None)


@pytest.mark.unit
def test_score_is_linear_between_target_and_floor_and_clamped():
    assert [score(v, SHARE) for v in (0.0, 0.01, 0.02, 0.03, 0.05, 0.2)] == [100.0, 100.0, 75.0, 50.0, 0.0, 0.0]
    higher = Metric("c", "完整", "complete", "completeness", ("n",), "d", 1.0, "higher", 0.99, 0.89)
    assert [score(v, higher) for v in (1.0, 0.99, 0.94, 0.89, 0.1)] == [100.0, 100.0, 50.0, 0.0, 0.0]
    assert score(None, SHARE) is None
    assert score(123.0, COUNT) is None          # not scored


@pytest.mark.unit
def test_metrics_per_table_pooled_per_department_and_per_department():
    measures = [
        ("police", "police_population", "bad", 2.0), ("police", "police_population", "worse", 1.0),
        ("police", "police_population", "all_rows", 100.0), ("police", "police_population", "rows", 100.0),
        ("police", "police_houses", "bad", 3.0), ("police", "police_houses", "worse", 0.0),
        ("police", "police_houses", "all_rows", 50.0), ("police", "police_houses", "rows", 50.0),
        ("health", "health_residents", "bad", 0.0), ("health", "health_residents", "worse", None),   # not available
        ("health", "health_residents", "all_rows", 0.0), ("health", "health_residents", "rows", 0.0),
        ("police", ALL, "conflicts", 3.0), ("police", ALL, "persons", 200.0),
        ("health", ALL, "conflicts", 1.0), ("health", ALL, "persons", 0.0),
    ]
    got = {(v.department, v.table, v.metric): v for v in compute_metrics(measures, (SHARE, SUM2, PER_K, COUNT))}
    want = {
        # share = bad / all_rows; score 100 at 0.01, 0 at 0.05
        ("police", "police_population", "share"): (2.0, 100.0, 0.02, 75.0),
        ("police", "police_houses", "share"): (3.0, 50.0, 0.06, 0.0),
        ("police", ALL, "share"): (5.0, 150.0, 5 / 150, 100 * (0.05 - 5 / 150) / 0.04),
        ("health", "health_residents", "share"): (0.0, 0.0, None, None),          # denominator 0
        ("health", ALL, "share"): (0.0, 0.0, None, None),
        # sum2 = (bad + worse) / all_rows; 100 at 0, 0 at 0.5
        ("police", "police_population", "sum2"): (3.0, 100.0, 0.03, 94.0),
        ("police", "police_houses", "sum2"): (3.0, 50.0, 0.06, 88.0),
        ("police", ALL, "sum2"): (6.0, 150.0, 0.04, 92.0),
        ("health", "health_residents", "sum2"): (None, 0.0, None, None),          # `worse` not available
        # rate = conflicts / persons × 1000; 100 at 1, 0 at 51
        ("police", ALL, "rate"): (3.0, 200.0, 15.0, 72.0),
        ("health", ALL, "rate"): (1.0, 0.0, None, None),
        # count = rows × 1, unscored, no denominator
        ("police", "police_population", "count"): (100.0, None, 100.0, None),
        ("police", "police_houses", "count"): (50.0, None, 50.0, None),
        ("police", ALL, "count"): (150.0, None, 150.0, None),
        ("health", "health_residents", "count"): (0.0, None, 0.0, None),
        ("health", ALL, "count"): (0.0, None, 0.0, None),
    }
    assert set(got) == set(want) | {("health", ALL, "sum2")}
    for k, (num, den, val, sc) in want.items():
        v = got[k]
        assert (v.numerator, v.denominator) == (num, den), k
        assert v.value == (None if val is None else pytest.approx(val)), k
        assert v.score == (None if sc is None else pytest.approx(sc, abs=1e-4)), k
    # health's pooled sum2: no table had both parts known
    assert (got[("health", ALL, "sum2")].numerator, got[("health", ALL, "sum2")].value) == (None, None)
    assert got[("police", ALL, "rate")].dimension == "consistency"
    assert compute_metrics([], (SHARE,)) == []


def _config(metrics=(SHARE, SUM2, PER_K, COUNT)) -> QualityConfig:
    dims = (Dimension("conformity", "规范性", "conformity", 0.2), Dimension("completeness", "完整性", "c", 0.2),
            Dimension("accuracy", "准确性", "a", 0.4), Dimension("consistency", "一致性", "c", 0.2),
            Dimension("timeliness", "时效性", "t", 0.0), Dimension("uniqueness", "唯一性", "u", 0.0))
    return QualityConfig(dims, tuple(metrics), AnomalyConfig(14, 3, ()))


def _mv(dept, table, metric, dim, sc):
    return MetricValue(dept, table, dim, metric, None, None, None, sc)


@pytest.mark.unit
def test_scorecards_weight_metrics_within_and_dimensions_across():
    values = [
        _mv("police", ALL, "share", "accuracy", 40.0), _mv("police", ALL, "sum2", "accuracy", 80.0),  # weights 1, 3
        _mv("police", "police_population", "share", "accuracy", 0.0),      # a table row: not in the scorecard
        _mv("police", ALL, "rate", "consistency", 50.0),
        _mv("police", ALL, "count", "completeness", None),                  # unscored
        _mv("health", ALL, "rate", "consistency", None),
    ]
    got = {(s.department, s.dimension): s for s in scorecards(values, _config())}
    # police accuracy (40×1 + 80×3) / 4 = 70; consistency 50; overall (0.4×70 + 0.2×50) / (0.4 + 0.2)
    assert got[("police", "accuracy")].score == pytest.approx(70.0) and got[("police", "accuracy")].metrics == 2
    assert got[("police", "accuracy")].weight == 0.4
    assert got[("police", "consistency")].score == pytest.approx(50.0)
    assert got[("police", "completeness")].score is None and got[("police", "completeness")].metrics == 0
    assert got[("police", "overall")].score == pytest.approx((0.4 * 70 + 0.2 * 50) / 0.6)
    assert got[("police", "overall")].weight == pytest.approx(0.6) and got[("police", "overall")].metrics == 2
    assert got[("health", "overall")].score is None and got[("health", "overall")].weight == 0
    assert len(got) == 2 * 7
    assert scorecards([], _config()) == []


# ---------------------------------------------------------------- anomalies

ROWS = Check("count", "table", "both", (Level("warning", 0.2, 3.5), Level("failure", 0.5, 6.0)),
             min_spread_rel=0.02, min_spread_abs=1.0)
QSHARE = Check("share", "table", "up", (Level("warning", 0.5, 3.5), Level("failure", 1.0, 6.0)),
               min_change=0.005, min_spread_rel=0.05, min_spread_abs=0.002)
ANOM = AnomalyConfig(lookback_nights=3, min_history=3, checks=(ROWS, QSHARE))


def _value(metric, v, table="police_population", dept="police"):
    return MetricValue(dept, table, "x", metric, None, None, v, None)


def _hist(metric, values, table="police_population", dept="police", start=N1):
    return [(start + timedelta(days=i), dept, table, metric, v) for i, v in enumerate(values)]


@pytest.mark.unit
def test_robust_z_and_change_rate():
    # [100, 101, 100]: median 100, |dev| 0, 1, 0 → MAD 0; spread max(0, 0.02 × 100, 1) = 2
    assert robust_z(70.0, [100.0, 101.0, 100.0], min_spread_rel=0.02, min_spread_abs=1.0) == (100.0, 2.0, -15.0)
    # [10, 20, 30, 40]: median 25, |dev| 15, 5, 5, 15 → MAD 10 → spread 14.826; z = (55 − 25) / 14.826
    med, spread, z = robust_z(55.0, [10.0, 20.0, 30.0, 40.0], min_spread_rel=0.0, min_spread_abs=0.001)
    assert (med, spread) == (25.0, pytest.approx(14.826)) and z == pytest.approx(30 / 14.826)
    assert change_rate(70.0, 100.0) == pytest.approx(-0.3)
    assert change_rate(0.0, 0.0) == 0.0 and change_rate(5.0, 0.0) == float("inf")


@pytest.mark.unit
def test_a_30_percent_drop_is_flagged_and_steady_nights_are_not():
    hist = _hist("count", [1000.0, 1010.0, 990.0, 1000.0])          # N1..N4; lookback 3 → 1010, 990, 1000
    n5 = N1 + timedelta(days=4)
    flags = detect_anomalies(n5, [_value("count", 700.0)], hist, ANOM)
    # prev 1000: rate −0.30 (> 0.2, not > 0.5); median 1000, |dev| 10, 10, 0 → MAD 10 → spread
    # max(14.826, 0.02 × 1000 = 20, 1) = 20; z = (700 − 1000) / 20 = −15 → warning
    assert flags == [Flag(n5, "police", "police_population", "count", 700.0, 1000.0, pytest.approx(-0.3),
                          1000 - 3.5 * 20, 1000 + 3.5 * 20, 3, "rate_of_change_and_robust_z", -15.0, "warning")]
    # steady: 1012 (rate 1.2 %), and a 45 % rise whose z is only 0.5 (a noisy history) are not flagged
    assert detect_anomalies(n5, [_value("count", 1012.0)], hist, ANOM) == []
    noisy = _hist("count", [100.0, 300.0, 100.0, 200.0])
    # last 3: 300, 100, 200: median 200, MAD 100 → spread 148.26; 290 is +45 % vs 200 but z 0.61
    assert detect_anomalies(n5, [_value("count", 290.0)], noisy, ANOM) == []
    # a 60 % drop: rate −0.6 > 0.5 and z −30 → failure
    assert detect_anomalies(n5, [_value("count", 400.0)], hist, ANOM)[0].severity == "failure"
    # too little history (2 nights < min_history 3): not judged
    assert detect_anomalies(N3, [_value("count", 10.0)], _hist("count", [1000.0, 1000.0]), ANOM) == []
    # a value of a later night in the history is ignored; None values are no history
    later = _hist("count", [1000.0, None, 1000.0]) + [(n5, "police", "police_population", "count", 1.0)]
    assert detect_anomalies(N4, [_value("count", 10.0)], later, ANOM) == []
    # department rows are not checked by a table check; another metric is not checked
    assert detect_anomalies(n5, [_value("count", 1.0, table=ALL), _value("other", 1.0)], hist, ANOM) == []


@pytest.mark.unit
def test_a_quarantine_share_jump_is_flagged_one_way_only():
    hist = _hist("share", [0.02, 0.02, 0.0192])
    # prev 0.0192 → 0.15: rate 6.8 (> 1.0); median 0.02, |dev| 0, 0, 0.0008 → MAD 0; spread
    # max(0, 0.05 × 0.02 = 0.001, 0.002) = 0.002; z = (0.15 − 0.02) / 0.002 = 65 → failure
    (f,) = detect_anomalies(N4, [_value("share", 0.15)], hist, ANOM)
    assert (f.severity, f.statistic, f.previous) == ("failure", pytest.approx(65.0), 0.0192)
    assert (f.expected_low, f.expected_high) == (pytest.approx(0.02 - 0.007), pytest.approx(0.02 + 0.007))
    assert f.change_rate == pytest.approx((0.15 - 0.0192) / 0.0192)
    # side up: a drop to 0 is good news, never flagged
    assert detect_anomalies(N4, [_value("share", 0.0)], hist, ANOM) == []
    # a change under min_change (0.005) is never flagged, however large relative to a tiny history
    assert detect_anomalies(N4, [_value("share", 0.004)], _hist("share", [0.0, 0.0, 0.0]), ANOM) == []
    # from 0 to 0.03: rate infinite (stored as None), z 15 → failure
    (g,) = detect_anomalies(N4, [_value("share", 0.03)], _hist("share", [0.0, 0.0, 0.0]), ANOM)
    assert (g.change_rate, g.statistic, g.severity, g.expected_low) == (None, pytest.approx(15.0), "failure", 0.0)


@pytest.mark.unit
def test_a_share_over_few_records_is_not_judged():
    few = AnomalyConfig(lookback_nights=3, min_history=3, checks=(replace(QSHARE, min_denominator=50),))
    hist = _hist("share", [0.0, 0.0, 0.0])

    def share(num, den):
        return MetricValue("police", "police_population", "x", "share", num, den, num / den, None)

    assert detect_anomalies(N4, [share(1, 4)], hist, few) == []                     # 1 of 4: 25 %, not news
    assert detect_anomalies(N4, [share(1, 49)], hist, few) == []                    # under 50: still not
    (f,) = detect_anomalies(N4, [share(15, 50)], hist, few)                         # 15 of 50: judged
    assert (f.value, f.severity) == (0.3, "failure")
    assert detect_anomalies(N4, [_value("share", 0.3)], hist, few) == []           # no denominator: not judged
    assert detect_anomalies(N4, [_value("share", 0.3)], hist, ANOM)[0].severity == "failure"   # the default: 0


@pytest.mark.unit
def test_anomaly_gate_raises_on_failures_naming_them_and_logs_warnings(caplog):
    warn = Flag(N4, "police", "police_population", "row_count", 70.0, 100.0, -0.3, 93.0, 107.0, 3,
                "rate_of_change_and_robust_z", -15.0, "warning")
    fail = Flag(N4, "health", "health_residents", "quarantine_share", 0.156863, 0.019231, 7.157, 0.013, 0.027, 3,
                "rate_of_change_and_robust_z", 68.4, "failure")
    with caplog.at_level(logging.WARNING, logger="shuzhi.quality"):
        anomaly_gate([warn])
        anomaly_gate([])
    assert "2026-11-27 police/police_population row_count: value 70 outside the expected range 93–107" in caplog.text
    with pytest.raises(GateFailed) as exc:
        anomaly_gate([warn, fail])
    msg = str(exc.value)
    assert "1 failure" in msg and "police_population" not in msg
    assert "2026-11-27 health/health_residents quarantine_share: value 0.156863 outside the expected range " \
           "0.013–0.027" in msg and "[failure]" in msg


# ---------------------------------------------------------------- the configuration

@pytest.mark.unit
def test_the_shipped_configuration_loads_and_is_checked():
    import yaml

    from shuzhi.quality import QUALITY_YAML

    cfg = load_quality()
    assert [d.id for d in cfg.dimensions] == ["conformity", "completeness", "accuracy", "consistency", "timeliness",
                                              "uniqueness"]
    assert sum(d.weight for d in cfg.dimensions) == pytest.approx(1.0)
    assert {m.dimension for m in cfg.metrics} == {d.id for d in cfg.dimensions}     # every dimension measured
    assert cfg.metric("quarantine_share").numerator == ("ingest_quarantined", "clean_quarantined")
    assert {c.metric for c in cfg.anomalies.checks} == {"row_count", "quarantine_share", "required_completeness",
                                                        "conflict_rate"}
    raw = yaml.safe_load(QUALITY_YAML.read_text(encoding="utf-8"))

    def broken(edit):
        r = yaml.safe_load(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
        edit(r)
        return r

    cases = [
        (lambda r: r["metrics"][0].update(numerator="no_such_measure"), "measure 'no_such_measure' is not one of"),
        (lambda r: r["metrics"][0].update(dimension="beauty"), "dimension 'beauty'"),
        (lambda r: r["metrics"][1].update(score={"target": 0.5, "floor": 0.1}), "target .* must be better"),
        (lambda r: r["metrics"][0].update(denominator="persons", numerator="bronze_rows"), "mix table and department"),
        (lambda r: r["metrics"].append(dict(r["metrics"][0])), "declared twice: rejected_delivery_share"),
        (lambda r: r["anomalies"].update(min_history=20), "min_history"),
        (lambda r: r["anomalies"]["checks"][0].update(side="sideways"), "side 'sideways'"),
        (lambda r: r["anomalies"]["checks"][3].update(at="table"), "conflict_rate has rows at department"),
        (lambda r: r["anomalies"]["checks"][0]["levels"].update(panic={"max_rate": 1, "max_z": 1}), "levels must"),
    ]
    for edit, match in cases:
        with pytest.raises(QualityConfigError, match=match):
            parse_quality(broken(edit))


@pytest.mark.unit
def test_measure_params_from_the_catalogue_rules_and_schedule():
    p = measure_params(N4)
    # SPEC: police population has 17 fields, identity number and name required; health residents 12
    assert p.tables["police_population"] == TableShape("police", 17, 2)
    assert p.tables["health_residents"] == TableShape("health", 12, 2)
    assert p.tables["police_houses"].required == 0
    assert p.required_rules == ("ID_EMPTY", "NAME_EMPTY")
    assert set(p.departments) == {"police", "civil_affairs", "social_security", "health"}
    # schedule 30 1 * * * Asia/Shanghai + 240 minutes: the night of 11-27 is due 11-28 05:30 +08:00
    assert p.due_epoch["police"] == int(datetime(2026, 11, 28, 5, 30, tzinfo=SH).timestamp())
    assert due_epoch("0 0 * * *", 0, "Asia/Shanghai", N4) == int(datetime(2026, 11, 28, 0, 0, tzinfo=SH).timestamp())


# ---------------------------------------------------------------- measures on tiny frames

DELIVERIES = ("delivery_id string, source string, batch_date date, status string, file string, entity string, "
              "manifest_rows long, recorded_at timestamp")
BRONZE = "_batch_date date"
PER_ENTITY = "_source string, _entity string, _batch_date date"
FINDINGS = "_source string, _entity string, _batch_date date, rule_id string, action string"
CONSERVATION = "batch_date date, stage string, source string, entity string, superseded long"
GATES = "gate_run_id string, table string, batch_date date, success boolean, evaluated_at timestamp"
CONFLICTS = "conflict_id string, departments array<string>, first_seen date, resolved_on date"
SILVER = "citizen_id__tok string, _batch_date date"


@pytest.mark.unit
def test_night_measures_count_the_nights_rows(tiny_spark):
    s = tiny_spark
    at = datetime(2026, 11, 28, 3, 0)           # naive, as the ledger holds it
    due = int(at.timestamp()) - 90 * 60         # so police is 90 minutes late
    shapes = {"police_population": TableShape("police", 10, 2), "health_residents": TableShape("health", 5, 1)}
    p = MeasureParams(shapes, ("police", "health", "civil_affairs"), ("ID_EMPTY",),
                      {"police": due, "health": due + 7200, "civil_affairs": due})
    f = LakeFrames(
        deliveries=frame(s, [
            ("p-old", "police", N4, "accepted", "population_20261127.csv", "population", 9, at),
            ("p-new", "police", N4, "accepted", "population_20261127.csv", "population", 8, at + timedelta(hours=1)),
            ("p-prev", "police", N3, "accepted", "population_20261126.csv", "population", 99, at),   # another night
            ("h-1", "health", N4, "accepted", "residents_20261127.xml", "residents", 4, at),
            ("c-1", "civil_affairs", N4, "rejected", None, None, None, at),
            ("c-2", "civil_affairs", N4, "rejected", None, None, None, at),
        ], DELIVERIES),
        bronze={"police_population": frame(s, [(N4,)] * 7 + [(N3,)] * 5, BRONZE),
                "health_residents": frame(s, [(N4,)] * 4, BRONZE)},
        silver={"police_population": frame(s, [("t1", N1), ("t1", N2), ("t2", N4), (None, N4),
                                                ("t3", N4 + timedelta(1))], SILVER)},
        ingest_quarantine=frame(s, [("police", "population", N4), ("police", "population", N3)], PER_ENTITY),
        clean_quarantine=frame(s, [("police", "population", N4), ("health", "residents", N4),
                                   ("health", "residents", N4)], PER_ENTITY),
        findings=frame(s, [("police", "population", N4, "ID_EMPTY", "quarantine"),
                           ("police", "population", N4, "ID_FULLWIDTH", "correct"),
                           ("police", "population", N4, "NAME_SPACE", "correct"),
                           ("health", "residents", N3, "ID_FULLWIDTH", "correct")], FINDINGS),
        conservation=None,                                   # not there yet: superseded not available
        gate_results=frame(s, [("g1", "bronze.police_population", N4, False, at),
                               ("g1", "bronze.police_population", N4, False, at),
                               ("g2", "bronze.police_population", N4, True, at + timedelta(hours=1)),
                               ("g2", "bronze.police_population", N4, False, at + timedelta(hours=1)),
                               ("g3", "silver.police_population", N4, True, at),
                               ("g4", "bronze.quarantine", N4, False, at)], GATES),
        conflicts=frame(s, [("c1", ["police", "health"], N1, None), ("c2", ["police"], N2, N4),
                            ("c3", ["health"], N4 + timedelta(1), None)], CONFLICTS),
    )
    got = {(r["department"], r["table"], r["measure"]): r["amount"] for r in night_measures(N4, f, p).collect()}
    pp, hr = ("police", "police_population"), ("health", "health_residents")
    want = {
        # police: the latest accepted delivery (p-new, 8 rows); 7 bronze rows tonight; fields 7 × 10,
        # required 7 × 2, one ID_EMPTY; gates: g2 (latest of bronze) 2 expectations, 1 failed + g3 1/0
        (*pp, "delivered_records"): 8.0, (*pp, "bronze_rows"): 7.0, (*pp, "ingest_quarantined"): 1.0,
        (*pp, "clean_quarantined"): 1.0, (*pp, "superseded"): None, (*pp, "fields_delivered"): 70.0,
        (*pp, "fields_corrected"): 2.0, (*pp, "required_values"): 14.0, (*pp, "required_missing"): 1.0,
        (*pp, "required_present"): 13.0, (*pp, "gate_expectations"): 3.0, (*pp, "gate_failed"): 1.0,
        (*hr, "delivered_records"): 4.0, (*hr, "bronze_rows"): 4.0, (*hr, "ingest_quarantined"): 0.0,
        (*hr, "clean_quarantined"): 2.0, (*hr, "superseded"): None, (*hr, "fields_delivered"): 20.0,
        (*hr, "fields_corrected"): 0.0, (*hr, "required_values"): 4.0, (*hr, "required_missing"): 0.0,
        (*hr, "required_present"): 4.0, (*hr, "gate_expectations"): 0.0, (*hr, "gate_failed"): 0.0,
        # departments: police 2 deliveries, on time? first accepted at `at`, due 90 min before → 90
        ("police", ALL, "deliveries_received"): 2.0, ("police", ALL, "deliveries_rejected"): 0.0,
        ("police", ALL, "delivery_missing"): 0.0, ("police", ALL, "lateness_minutes"): 90.0,
        ("police", ALL, "conflicts_open"): 1.0, ("police", ALL, "persons"): 2.0,     # c1 (c2 resolved on N4); t1, t2
        ("health", ALL, "deliveries_received"): 1.0, ("health", ALL, "deliveries_rejected"): 0.0,
        ("health", ALL, "delivery_missing"): 0.0, ("health", ALL, "lateness_minutes"): 0.0,   # due 30 min after
        ("health", ALL, "conflicts_open"): 1.0, ("health", ALL, "persons"): 0.0,     # c1 (c3 first seen later)
        ("civil_affairs", ALL, "deliveries_received"): 2.0, ("civil_affairs", ALL, "deliveries_rejected"): 2.0,
        ("civil_affairs", ALL, "delivery_missing"): 1.0, ("civil_affairs", ALL, "lateness_minutes"): None,
        ("civil_affairs", ALL, "conflicts_open"): 0.0, ("civil_affairs", ALL, "persons"): 0.0,
    }
    assert got == want
    # an empty ledger: no table rows, every department missing its delivery
    empty = dataclasses.replace(f, deliveries=f.deliveries.limit(0))
    got = {(r["department"], r["table"], r["measure"]): r["amount"] for r in night_measures(N4, empty, p).collect()}
    assert {k for k in got if k[1] != ALL} == set()
    assert [got[(d, ALL, "delivery_missing")] for d in p.departments] == [1.0, 1.0, 1.0]


# ---------------------------------------------------------------- the cockpit's view (pure)

@pytest.mark.unit
def test_report_scorecards_change_trend_and_flags():
    sc = [dict(night=n, department="police", dimension=d, score=s, weight=w, metrics=1)
          for n, d, s, w in [(N2, "overall", 80.0, 1.0), (N3, "overall", 70.0, 1.0), (N3, "accuracy", 60.0, 0.2),
                             (N1, "overall", 90.0, 1.0), (N4, "overall", 75.0, 1.0)]]
    me = [dict(night=n, department="police", table=ALL, dimension="accuracy", metric="share", numerator=1.0,
               denominator=10.0, value=v, score=None) for n, v in [(N2, 0.1), (N3, 0.2)]]
    an = [dict(night=N3, department="police", table="police_population", metric="row_count", value=70.0,
               severity="warning", computed_at=datetime(2026, 11, 28), run_id="r"),
          dict(night=N2, department="police", table="police_population", metric="row_count", value=1.0,
               severity="warning", computed_at=datetime(2026, 11, 27), run_id="r")]
    got = report(N3, me, sc, an)
    assert got["night"] == "2026-11-26" and got["previous_night"] == "2026-11-25"
    assert got["scorecards"] == {"police": {
        "overall": {"score": 70.0, "weight": 1.0, "previous": 80.0, "change": -10.0},
        "accuracy": {"score": 60.0, "weight": 0.2, "previous": None, "change": None}}}
    assert got["metrics"] == [dict(department="police", table=ALL, dimension="accuracy", metric="share", numerator=1.0,
                                   denominator=10.0, value=0.2, score=None, previous_value=0.1)]
    assert got["trend"] == {"police": {"accuracy": [["2026-11-26", 60.0]],
                                       "overall": [["2026-11-24", 90.0], ["2026-11-25", 80.0], ["2026-11-26", 70.0],
                                                   ["2026-11-27", 75.0]]}}
    assert got["anomalies"] == [dict(night="2026-11-26", department="police", table="police_population",
                                     metric="row_count", value=70.0, severity="warning")]
    first = report(N1, [], sc, [])
    assert first["previous_night"] is None and first["scorecards"]["police"]["overall"]["change"] is None


# ---------------------------------------------------------------- the job on a hand-built lake

FIELDS_POP, FIELDS_HEALTH = 17, 12          # SPEC: police population 17 fields, health residents 12; 2 required each
NIGHTS = (N1, N2, N3, N4)
# per night N1..N4: manifest rows, ingest-quarantined lines, clean-quarantined records
POLICE = dict(delivered=(100, 101, 100, 70), ingest_q=(1, 1, 1, 1), clean_q=(1, 1, 1, 1), corrected=(3, 3, 3, 5),
              required_missing=(2, 2, 2, 2), superseded=(0, 0, 0, 3))
HEALTH = dict(delivered=(50, 50, 52, 51), ingest_q=(0, 1, 0, 0), clean_q=(1, 0, 1, 8), corrected=(0, 0, 0, 0),
              required_missing=(0, 0, 0, 0), superseded=(0, 0, 0, 0))


def _local(night: date, hour: int, minute: int = 0) -> datetime:
    """A time on the morning after ``night``, Asia/Shanghai."""
    nxt = night + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, hour, minute, tzinfo=SH)


def _ledger(delivery_id, source, night, status, entity, rows, at, q=0):
    fname = None if entity is None else (f"{entity}_{night:%Y%m%d}." + ("csv" if source == "police" else "xml"))
    return dict(delivery_id=delivery_id, source=source, batch_date=night, kind=None if status == "rejected" else "full",
                status=status, reason_code="SHA256_MISMATCH" if status == "rejected" else None, message=None,
                file=fname, entity=entity, manifest_rows=rows, bronze_rows=None if rows is None else rows - q,
                quarantined_rows=q, balanced=True, declared_encoding=None, actual_encoding=None, has_bom=None,
                run_id="ingest", recorded_at=at)


def build_lake(spark, settings):
    """Four nights of police/population and health/residents, a rejected civil-affairs delivery on
    N4, nothing from social security — every table the measures read, written by hand."""
    from shuzhi.delta import rows_frame, write_to

    led, bronze, iq, cq, fnd, cons, gates = [], {"police_population": [], "health_residents": []}, [], [], [], [], []
    for i, n in enumerate(NIGHTS):
        for src, ent, table, d in (("police", "population", "police_population", POLICE),
                                   ("health", "residents", "health_residents", HEALTH)):
            rows, q_i, q_c = d["delivered"][i], d["ingest_q"][i], d["clean_q"][i]
            did = f"{src}/{n}/fp{i}"
            late = src == "health" and n == N4
            led.append(_ledger(did, src, n, "accepted", ent, rows, _local(n, 7 if late else 2), q_i))
            b = rows - q_i
            bronze[table] += [(src, ent, n, f"f{n}", r, did) for r in range(1, b + 1)]
            iq += [(src, ent, n, f"f{n}", 10_000 + r, "CSV_TOO_FEW_FIELDS") for r in range(q_i)]
            cq += [(src, ent, n, f"f{n}", r, "ID_EMPTY" if src == "police" else "ID_CHECK") for r in range(1, q_c + 1)]
            fnd += [(src, ent, n, f"f{n}", 1, "GMSFHM", "ID_EMPTY", "quarantine"),
                    (src, ent, n, f"f{n}", 1, "XM", "NAME_EMPTY", "quarantine")][:d["required_missing"][i]]
            fnd += [(src, ent, n, f"f{n}", 1 + r, "id_no", "ID_CHECK", "quarantine") for r in range(q_c)
                    if src == "health"]
            fnd += [(src, ent, n, f"f{n}", 50 + r, "LXDH", "PHONE_FORMAT", "correct") for r in range(d["corrected"][i])]
            fnd += [(src, ent, n, f"f{n}", 60 + r, "", "DUP_EXACT", "supersede") for r in range(d["superseded"][i])]
            sup = d["superseded"][i]
            cons.append(dict(batch_date=n, stage="clean", source=src, entity=ent, bronze_rows=b,
                             loaded=b - q_c - sup, unchanged=0, quarantined=q_c, superseded=sup, balanced=True,
                             run_id="clean", recorded_at=_local(n, 3)))
    # N4: police delivered twice (75 rows at 03:00, then 70 at 04:00: the latest counts); civil affairs rejected
    led.append(_ledger(f"police/{N4}/fp-early", "police", N4, "accepted", "population", 75, _local(N4, 3), 1))
    led[[r["delivery_id"] for r in led].index(f"police/{N4}/fp3")]["recorded_at"] = _local(N4, 4)
    led.append(_ledger(f"civil_affairs/{N4}/fp", "civil_affairs", N4, "rejected", None, None, _local(N4, 2)))
    # N4 gates: bronze police run twice (10 expectations, 3 then 1 failed), silver police 8/0, bronze health 6/0
    for run_id, table, n_exp, n_fail, hour in (("g1", "bronze.police_population", 10, 3, 2),
                                               ("g2", "bronze.police_population", 10, 1, 4),
                                               ("g3", "silver.police_population", 8, 0, 4),
                                               ("g4", "bronze.health_residents", 6, 0, 8),
                                               ("g5", "bronze.quarantine", 5, 5, 8)):
        gates += [dict(gate_run_id=run_id, suite=table, table=table, batch_date=N4, table_version=1, rows=1,
                       expectation=f"e{k}", column=None, kwargs=None, severity="critical", why=None,
                       success=k >= n_fail, unexpected_count=0, unexpected_percent=0.0, observed=None,
                       evaluated_at=_local(N4, hour), txn_id=f"{run_id}") for k in range(n_exp)]
    write_to(settings, "ops.deliveries", rows_frame(spark, "ops.deliveries", led))
    for table, rows in bronze.items():
        write_to(settings, f"bronze.{table}", spark.createDataFrame(
            rows, "_source string, _entity string, _batch_date date, _file string, _row long, _delivery_id string"))
    q_schema = "_source string, _entity string, _batch_date date, _file string, _row long, reason_code string"
    write_to(settings, "bronze.quarantine", spark.createDataFrame(iq, q_schema))
    write_to(settings, "silver.quarantine", spark.createDataFrame(cq, q_schema))
    write_to(settings, "silver.findings", spark.createDataFrame(fnd, (
        "_source string, _entity string, _batch_date date, _file string, _row long, field string, rule_id string, "
        "action string")))
    write_to(settings, "ops.conservation", rows_frame(spark, "ops.conservation", cons))
    write_to(settings, "ops.gate_results", rows_frame(spark, "ops.gate_results", gates))
    write_to(settings, "gold.conflicts", spark.createDataFrame([
        ("c1", "X_NAME_MISMATCH", ["health", "police"], N1, N4, "open", None),
        ("c2", "X_DUP_PERSON", ["police"], N2, N3, "resolved", N4),
        ("c3", "X_ABSENT_POLICE", ["police", "social_security"], N4, N4, "open", None),
    ], "conflict_id string, rule_id string, departments array<string>, first_seen date, last_seen date, "
       "status string, resolved_on date"), mode="snapshot")
    silver = "citizen_id__tok string, _batch_date date, record_id string"
    write_to(settings, "silver.police_population", spark.createDataFrame(
        [(t, N1, f"P{i}") for i, t in enumerate(["t1", "t2", "t3", "t4", "t5", "t6", None, "t1"])], silver))
    write_to(settings, "silver.health_residents", spark.createDataFrame(
        [(t, N1, f"H{i}") for i, t in enumerate(["t1", "t2", "t7", "t8", None])], silver))


def _rows(spark, settings, name, night):
    from shuzhi.delta import read_table

    return [r.asDict() for r in read_table(spark, settings.table_path("ops", name)).filter(f"night = DATE'{night}'")
            .collect()]


@pytest.mark.spark
def test_the_job_measures_scores_and_flags_a_hand_built_lake(spark, settings):
    from jobs import quality as job
    from shuzhi.delta import table_version
    from shuzhi.quality import quality_report

    build_lake(spark, settings)
    for n in (N1, N2, N3):
        res = job.run(spark, settings, n.isoformat())
        assert res.status == "computed" and res.anomalies == [], (n, res.anomalies)   # N3: 2 nights < min_history
    with pytest.raises(GateFailed, match="health/health_residents quarantine_share"):
        job.run(spark, settings, N4.isoformat())

    # ---- every metric of N4, by hand
    got = {(r["department"], r["table"], r["metric"]): r for r in _rows(spark, settings, "quality_metrics", N4)}
    pop = {  # police_population: 70 delivered (the later delivery), 1 ingest-quarantined → 69 loaded
        "ingest_quarantine_share": (1, 70, 1 / 70, lin_lower(1 / 70, 0.001, 0.05)),
        "correction_share": (5, 69 * FIELDS_POP, 5 / (69 * 17), 100.0),
        "gate_failure_share": (1, 10 + 8, 1 / 18, lin_lower(1 / 18, 0.0, 0.2)),   # g2 (not g1) + g3
        "required_completeness": (69 * 2 - 2, 69 * 2, 136 / 138, lin_higher(136 / 138, 0.999, 0.95)),
        "row_count": (70, None, 70, None),
        "clean_quarantine_share": (1, 69, 1 / 69, lin_lower(1 / 69, 0.001, 0.05)),
        "quarantine_share": (1 + 1, 70, 2 / 70, None),
        "duplicate_share": (3, 69, 3 / 69, lin_lower(3 / 69, 0.001, 0.05)),
    }
    res = {  # health_residents: 51 delivered, none ingest-quarantined, 8 stopped by clean
        "ingest_quarantine_share": (0, 51, 0.0, 100.0),
        "correction_share": (0, 51 * FIELDS_HEALTH, 0.0, 100.0),
        "gate_failure_share": (0, 6, 0.0, 100.0),
        "required_completeness": (102, 102, 1.0, 100.0),
        "row_count": (51, None, 51, None),
        "clean_quarantine_share": (8, 51, 8 / 51, 0.0),
        "quarantine_share": (8, 51, 8 / 51, None),
        "duplicate_share": (0, 51, 0.0, 100.0),
    }
    want = {}
    for dept, table, per in (("police", "police_population", pop), ("health", "health_residents", res)):
        for metric, v in per.items():
            want[(dept, table, metric)] = v
            want[(dept, ALL, metric)] = v                   # one table each: the pooled row is the table's
    want |= {
        # police: 2 deliveries (both accepted), first at 03:00 < due 05:30; open conflicts c1, c3 of 6 persons
        ("police", ALL, "rejected_delivery_share"): (0, 2, 0.0, 100.0),
        ("police", ALL, "delivery_missing"): (0, None, 0.0, 100.0),
        ("police", ALL, "delivery_lateness"): (0, None, 0.0, 100.0),
        ("police", ALL, "conflict_rate"): (2, 6, 2 / 6 * 1000, 0.0),
        # health: recorded at 07:00, 90 minutes after 05:30; c1 of 4 persons
        ("health", ALL, "rejected_delivery_share"): (0, 1, 0.0, 100.0),
        ("health", ALL, "delivery_missing"): (0, None, 0.0, 100.0),
        ("health", ALL, "delivery_lateness"): (90, None, 90.0, lin_lower(90, 0.0, 240.0)),
        ("health", ALL, "conflict_rate"): (1, 4, 250.0, 0.0),
        # civil affairs: one rejected delivery, none accepted; no silver table, no conflict
        ("civil_affairs", ALL, "rejected_delivery_share"): (1, 1, 1.0, 0.0),
        ("civil_affairs", ALL, "delivery_missing"): (1, None, 1.0, 0.0),
        ("civil_affairs", ALL, "delivery_lateness"): (None, None, None, None),
        ("civil_affairs", ALL, "conflict_rate"): (0, 0, None, None),
        # social security: nothing delivered; c3 names it, but it holds no person
        ("social_security", ALL, "rejected_delivery_share"): (0, 0, None, None),
        ("social_security", ALL, "delivery_missing"): (1, None, 1.0, 0.0),
        ("social_security", ALL, "delivery_lateness"): (None, None, None, None),
        ("social_security", ALL, "conflict_rate"): (1, 0, None, None),
    }
    assert set(got) == set(want)
    for k, (num, den, val, sc) in want.items():
        r = got[k]
        assert (r["numerator"], r["denominator"]) == (num, den), k
        assert r["value"] == (None if val is None else pytest.approx(val)), k
        assert r["score"] == (None if sc is None else pytest.approx(sc, abs=1e-3)), k
    assert {r["dimension"] for k, r in got.items() if k[2] == "conflict_rate"} == {"consistency"}

    # ---- the scorecards of N4 (weights 0.2, 0.2, 0.2, 0.15, 0.15, 0.1)
    scores = {(r["department"], r["dimension"]): r["score"] for r in _rows(spark, settings, "quality_scores", N4)}
    p_conf = (100 + lin_lower(1 / 70, 0.001, 0.05) + 100 + lin_lower(1 / 18, 0.0, 0.2)) / 4
    p = dict(conformity=p_conf, completeness=lin_higher(136 / 138, 0.999, 0.95),
             accuracy=lin_lower(1 / 69, 0.001, 0.05), consistency=0.0, timeliness=100.0,
             uniqueness=lin_lower(3 / 69, 0.001, 0.05))
    h = dict(conformity=100.0, completeness=100.0, accuracy=0.0, consistency=0.0, timeliness=(100 + 62.5) / 2,
             uniqueness=100.0)
    weights = dict(conformity=0.2, completeness=0.2, accuracy=0.2, consistency=0.15, timeliness=0.15, uniqueness=0.1)
    for dept, card in (("police", p), ("health", h)):
        for dim, s in card.items():
            assert scores[(dept, dim)] == pytest.approx(s, abs=1e-3), (dept, dim)
        assert scores[(dept, "overall")] == pytest.approx(sum(weights[d] * s for d, s in card.items()), abs=1e-3)
    assert scores[("health", "overall")] == pytest.approx(62.1875, abs=1e-3)
    # civil affairs: conformity 0 (rejected), timeliness 0 (missing); the rest unscored → overall 0 over 0.35
    assert [scores[("civil_affairs", d)] for d in ("conformity", "completeness", "timeliness", "overall")] == [
        0.0, None, 0.0, 0.0]

    # ---- the anomaly flags of N4: exactly the 30 % drop and the quarantine jump
    flags = {(r["department"], r["table"], r["metric"]): r for r in _rows(spark, settings, "quality_anomalies", N4)}
    assert set(flags) == {("police", "police_population", "row_count"),
                          ("health", "health_residents", "quarantine_share")}
    drop = flags[("police", "police_population", "row_count")]
    # history 100, 101, 100: prev 100, rate −0.3; median 100, MAD 0 → spread max(0, 2, 1) = 2; z −15
    assert (drop["value"], drop["previous"], drop["severity"], drop["history"]) == (70.0, 100.0, "warning", 3)
    assert drop["change_rate"] == pytest.approx(-0.3) and drop["statistic"] == pytest.approx(-15.0)
    assert (drop["expected_low"], drop["expected_high"]) == (pytest.approx(93.0), pytest.approx(107.0))
    jump = flags[("health", "health_residents", "quarantine_share")]
    # history 1/50, 1/50, 1/52: prev 1/52; median 0.02, MAD 0 → spread max(0, 0.001, 0.002) = 0.002
    assert jump["severity"] == "failure" and jump["previous"] == pytest.approx(1 / 52)
    assert jump["statistic"] == pytest.approx((8 / 51 - 0.02) / 0.002)
    assert (jump["expected_low"], jump["expected_high"]) == (pytest.approx(0.013), pytest.approx(0.027))
    assert _rows(spark, settings, "quality_anomalies", N3) == []

    # ---- re-running a night changes nothing: the same table versions
    before = {t: table_version(spark, settings.table_path("ops", t))
              for t in ("quality_metrics", "quality_scores", "quality_anomalies")}
    with pytest.raises(GateFailed):
        job.run(spark, settings, N4.isoformat())
    assert {t: table_version(spark, settings.table_path("ops", t)) for t in before} == before

    # ---- the cockpit's view of N4
    rep = quality_report(spark, settings, N4.isoformat())
    assert rep["previous_night"] == N3.isoformat()
    assert rep["scorecards"]["health"]["overall"]["score"] == pytest.approx(62.1875, abs=1e-3)
    n3 = {(r["department"], r["dimension"]): r["score"] for r in _rows(spark, settings, "quality_scores", N3)}
    assert rep["scorecards"]["health"]["overall"]["previous"] == n3[("health", "overall")]
    assert [n for n, _ in rep["trend"]["police"]["overall"]] == [n.isoformat() for n in NIGHTS]
    # a night's view is as of that night: N3's, asked after N4 ran, trends up to N3
    assert [n for n, _ in quality_report(spark, settings, N3.isoformat())["trend"]["police"]["overall"]] == [
        n.isoformat() for n in NIGHTS if n <= N3]
    assert {(a["department"], a["metric"], a["severity"]) for a in rep["anomalies"]} == {
        ("police", "row_count", "warning"), ("health", "quarantine_share", "failure")}


@pytest.mark.spark
def test_no_ledger_is_a_noop(spark, settings):
    from jobs import quality as job

    assert job.run(spark, settings, N1.isoformat()).status == "noop"
    assert not settings.table_path("ops", "quality_metrics").exists()
