"""The edge of the quality metrics: ``conf/quality.yaml`` loaded once and checked into a
``QualityConfig``, the measures' plain parameters derived from ``schemas/feeds.yaml``,
``conf/rules.yaml`` and ``conf/sources.yaml``, and ``quality_report`` — what the cockpit report
reads of the repository (``ops.quality_metrics``, ``ops.quality_scores``, ``ops.quality_anomalies``).

    >>> cfg = load_quality()
    >>> cfg.metric("conflict_rate").scale, cfg.metric("conflict_rate").dimension
    (1000.0, 'consistency')
    >>> due_epoch("30 1 * * *", 240, "Asia/Shanghai", date(2026, 11, 25))    # 2026-11-26 05:30 +08:00
    1795642200
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from pyspark.sql import functions as F

from .access import Reader, read, read_all, read_if_exists
from .config import CONF_DIR, Settings, load_yaml, read_yaml
from .delta import read_table, rows_frame, table_exists, table_version, write_to
from .rules import load_rules
from .schemas import catalog
from .stages.quality import (
    DIMENSIONS,
    MEASURES,
    AnomalyConfig,
    Check,
    Dimension,
    LakeFrames,
    Level,
    MeasureParams,
    Metric,
    QualityConfig,
    TableShape,
    report,
)

QUALITY_YAML = CONF_DIR / "quality.yaml"
SEVERITIES = ("warning", "failure")
SIDES = ("both", "up", "down")
METRIC_KEYS = {"id", "zh", "en", "dimension", "numerator", "denominator", "scale", "unit", "direction", "score",
               "weight"}
CHECK_KEYS = {"metric", "at", "side", "min_change", "min_spread", "min_denominator", "levels"}


class QualityConfigError(ValueError):
    """``conf/quality.yaml`` is inconsistent: the message names the entry and what is wrong."""


def _fail(where: str, msg: str) -> QualityConfigError:
    return QualityConfigError(f"conf/quality.yaml: {where}: {msg}")


def _num(raw: Any, where: str, *, positive: bool = False) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise _fail(where, f"expected a number, got {raw!r}")
    if raw < 0 or (positive and raw == 0):
        raise _fail(where, f"expected a {'positive' if positive else 'non-negative'} number, got {raw!r}")
    return float(raw)


def _metric(raw: Any, i: int, dims: set[str]) -> Metric:
    where = f"metrics[{i}]"
    if not isinstance(raw, dict):
        raise _fail(where, f"expected a mapping, got {raw!r}")
    where = f"metrics[{i}] ({raw.get('id')})"
    unknown, missing = set(raw) - METRIC_KEYS, METRIC_KEYS - {"unit", "weight"} - set(raw)
    if unknown or missing:
        raise _fail(where, f"unknown key(s) {sorted(unknown)}, missing key(s) {sorted(missing)}")
    num = raw["numerator"]
    num = (num,) if isinstance(num, str) else tuple(num or ())
    den = raw["denominator"]
    for m in num + ((den,) if den is not None else ()):
        if m not in MEASURES:
            raise _fail(where, f"measure {m!r} is not one of {', '.join(MEASURES)} (shuzhi.stages.quality.MEASURES)")
    if not num:
        raise _fail(where, "numerator names no measure")
    levels = {MEASURES[m][0] for m in num + ((den,) if den is not None else ())}
    if len(levels) != 1:
        raise _fail(where, "numerator and denominator mix table and department measures")
    if raw["dimension"] not in dims:
        raise _fail(where, f"dimension {raw['dimension']!r} is not one of {', '.join(sorted(dims))}")
    if raw["direction"] not in ("lower", "higher"):
        raise _fail(where, f"direction {raw['direction']!r} is not lower or higher")
    sc = raw["score"]
    target = floor = None
    if sc is not None:
        if not isinstance(sc, dict) or set(sc) != {"target", "floor"}:
            raise _fail(where, f"score must be {{target, floor}} or null, got {sc!r}")
        target, floor = _num(sc["target"], f"{where}.score.target"), _num(sc["floor"], f"{where}.score.floor")
        if (raw["direction"] == "lower" and not target < floor) or (raw["direction"] == "higher"
                                                                    and not target > floor):
            raise _fail(where, f"direction {raw['direction']}: the target ({target}) must be better than the floor "
                               f"({floor})")
    for k in ("zh", "en"):
        if not isinstance(raw[k], str) or not raw[k].strip():
            raise _fail(where, f"{k} must be a non-empty string")
    return Metric(str(raw["id"]), raw["zh"], raw["en"], raw["dimension"], num, den,
                  _num(raw["scale"], f"{where}.scale", positive=True), raw["direction"], target, floor,
                  _num(raw.get("weight", 1), f"{where}.weight"), str(raw.get("unit", "")), levels.pop())


def _check(raw: Any, i: int, metrics: dict[str, Metric]) -> Check:
    where = f"anomalies.checks[{i}]"
    if not isinstance(raw, dict) or set(raw) - CHECK_KEYS or {"metric", "levels"} - set(raw):
        raise _fail(where, f"expected a mapping of {sorted(CHECK_KEYS)} with metric and levels, got {raw!r}")
    m = metrics.get(raw["metric"])
    if m is None:
        raise _fail(where, f"metric {raw['metric']!r} is not one of the metrics")
    at = raw.get("at", m.level)
    if at not in ("table", "department"):
        raise _fail(where, f"at {at!r} is not table or department")
    if m.level == "department" and at == "table":
        raise _fail(where, f"at table: {m.id} has rows at department level only")
    side = raw.get("side", "both")
    if side not in SIDES:
        raise _fail(where, f"side {side!r} is not one of {', '.join(SIDES)}")
    lv = raw["levels"]
    if not isinstance(lv, dict) or not lv or set(lv) - set(SEVERITIES):
        raise _fail(where, f"levels must map {' and/or '.join(SEVERITIES)} to {{max_rate, max_z}}, got {lv!r}")
    levels = []
    for sev in SEVERITIES:       # least severe first, whatever the file's order
        if sev in lv:
            if not isinstance(lv[sev], dict) or set(lv[sev]) != {"max_rate", "max_z"}:
                raise _fail(f"{where}.levels.{sev}", f"expected {{max_rate, max_z}}, got {lv[sev]!r}")
            levels.append(Level(sev, _num(lv[sev]["max_rate"], f"{where}.levels.{sev}.max_rate"),
                                _num(lv[sev]["max_z"], f"{where}.levels.{sev}.max_z")))
    spread = raw.get("min_spread") or {}
    if set(spread) - {"relative", "absolute"}:
        raise _fail(where, f"min_spread takes relative and absolute, got {spread!r}")
    return Check(m.id, at, side, tuple(levels), _num(raw.get("min_change", 0), f"{where}.min_change"),
                 _num(spread.get("relative", 0), f"{where}.min_spread.relative"),
                 _num(spread.get("absolute", 1e-9), f"{where}.min_spread.absolute", positive=True),
                 _num(raw.get("min_denominator", 0), f"{where}.min_denominator"))


def parse_quality(raw: Any) -> QualityConfig:
    """A ``QualityConfig`` from the parsed YAML; raises ``QualityConfigError`` naming the entry."""
    if not isinstance(raw, dict) or set(raw) != {"dimensions", "metrics", "anomalies"}:
        raise _fail("top level", "expected exactly dimensions, metrics, anomalies")
    dr = raw["dimensions"]
    if not isinstance(dr, dict) or list(dr) != list(DIMENSIONS):
        raise _fail("dimensions", f"expected the six dimensions {', '.join(DIMENSIONS)} in that order, got "
                                  f"{list(dr) if isinstance(dr, dict) else dr!r}")
    dims = []
    for k, d in dr.items():
        if not isinstance(d, dict) or set(d) != {"zh", "en", "weight"}:
            raise _fail(f"dimensions.{k}", f"expected {{zh, en, weight}}, got {d!r}")
        dims.append(Dimension(k, d["zh"], d["en"], _num(d["weight"], f"dimensions.{k}.weight")))
    if sum(d.weight for d in dims) <= 0:
        raise _fail("dimensions", "the weights sum to 0")
    metrics = tuple(_metric(m, i, set(dr)) for i, m in enumerate(raw["metrics"] or []))
    ids = [m.id for m in metrics]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise _fail("metrics", f"declared twice: {', '.join(dup)}")
    an = raw["anomalies"]
    if not isinstance(an, dict) or set(an) != {"lookback_nights", "min_history", "checks"}:
        raise _fail("anomalies", "expected lookback_nights, min_history, checks")
    look, least = an["lookback_nights"], an["min_history"]
    if not isinstance(look, int) or not isinstance(least, int) or not 1 <= least <= look:
        raise _fail("anomalies", f"need 1 <= min_history ({least!r}) <= lookback_nights ({look!r}), integers")
    by_id = {m.id: m for m in metrics}
    checks = tuple(_check(c, i, by_id) for i, c in enumerate(an["checks"] or []))
    return QualityConfig(tuple(dims), metrics, AnomalyConfig(look, least, checks))


def load_quality(path: Path = QUALITY_YAML) -> QualityConfig:
    """``conf/quality.yaml`` (or ``path``), parsed and checked."""
    return parse_quality(read_yaml(path))


def due_epoch(schedule: str, timeout_minutes: int, tz: str, night: date) -> int:
    """When the night's delivery is due (epoch seconds): the source's first scheduled run after
    the night ends (local time), plus the time its ingest waits for the manifest."""
    start = datetime.combine(night + timedelta(days=1), time(0, 0), ZoneInfo(tz)) - timedelta(seconds=1)
    run = croniter(schedule, start).get_next(datetime)
    return int((run + timedelta(minutes=timeout_minutes)).timestamp())


@lru_cache(maxsize=None)
def _shapes() -> tuple[tuple[str, TableShape], ...]:
    return tuple((e.table_name, TableShape(e.source, len(e.fields), sum(1 for f in e.fields if f.required)))
                 for e in catalog().entities())


def measure_params(night: date) -> MeasureParams:
    """The measures' parameters for one night: each entity's shape (``schemas/feeds.yaml``), the
    departments, the rules that stop an empty required field (``required_only`` in
    ``conf/rules.yaml``) and when each department's delivery was due (``conf/sources.yaml``)."""
    src = load_yaml("sources.yaml")
    due = {s: due_epoch(c["schedule"], int(c["manifest_timeout_minutes"]), src["timezone"], night)
           for s, c in src["sources"].items()}
    return MeasureParams(dict(_shapes()), tuple(catalog().sources), tuple(sorted(
        r.id for r in load_rules().values() if r.required_only and r.enabled)), due)


def person_tables() -> list[str]:
    """The entity tables whose records are about a person (their silver rows carry ``citizen_id__tok``)."""
    return [e.table_name for e in catalog().entities() if e.person_id_field is not None]


REPOSITORY = ("ops.quality_metrics", "ops.quality_scores", "ops.quality_anomalies")


def quality_report(spark, settings, night: str | date) -> dict:
    """The cockpit report's quality section for ``night`` (``shuzhi.stages.quality.report``):
    the departments' scorecards this night with the change vs the previous night, the night's
    metrics, every score's trend over the nights up to it, the night's anomaly flags. Empty sections when
    the quality job has not run yet."""
    night = night if isinstance(night, date) else date.fromisoformat(night)
    frames = {}
    for key in REPOSITORY:
        p = settings.table_path(*key.split("."))
        frames[key] = read_table(spark, p) if table_exists(spark, p) else None
    sc = frames["ops.quality_scores"]
    # up to the night: its page is the record as of that night, the same when re-rendered later
    scores = [] if sc is None else [r.asDict() for r in sc.filter(F.col("night") <= F.lit(night)).collect()]
    metrics, flags = [], []
    if frames["ops.quality_metrics"] is not None:      # the night's and the previous night's only
        m = frames["ops.quality_metrics"]
        prev = m.filter(F.col("night") < F.lit(night)).agg(F.max("night")).collect()[0][0]
        metrics = [r.asDict() for r in m.filter(F.col("night").isin([n for n in (night, prev) if n])).collect()]
    if frames["ops.quality_anomalies"] is not None:
        flags = [r.asDict() for r in frames["ops.quality_anomalies"].filter(F.col("night") == F.lit(night)).collect()]
    return report(night, metrics, scores, flags)


# ---------------------------------------------------------------- the job's reads and writes

STAMP = ("night", "computed_at", "run_id")       # not content: a re-run with the same content writes nothing


def lake_frames(spark, settings: Settings) -> LakeFrames | None:
    """The tables the measures are counted from (None when no delivery was ever recorded)."""
    deliveries = read_if_exists(spark, settings, "ops", "deliveries")
    if deliveries is None:
        return None
    bronze = {e.table_name: df for e in catalog().entities()
              if (df := read_if_exists(spark, settings, "bronze", e.table_name)) is not None}
    silver = {t: df.select("citizen_id__tok", "_batch_date")
              for t, df in read_all(spark, settings, person_tables(), "quality").items()}
    return LakeFrames(
        deliveries=deliveries, bronze=bronze, silver=silver,
        ingest_quarantine=read_if_exists(spark, settings, "bronze", "quarantine"),
        clean_quarantine=read_if_exists(spark, settings, "silver", "quarantine"),
        findings=read_if_exists(spark, settings, "silver", "findings"),
        conservation=read_if_exists(spark, settings, "ops", "conservation"),
        gate_results=read_if_exists(spark, settings, "ops", "gate_results"),
        conflicts=read(spark, settings, "gold.conflicts", reader=Reader.pipeline("quality")))


def history(spark, settings: Settings, night: date, lookback: int) -> list[tuple]:
    """``(night, department, table, metric, value)`` of the last ``lookback`` nights before ``night``."""
    m = read_if_exists(spark, settings, "ops", "quality_metrics")
    if m is None:
        return []
    earlier = m.filter(F.col("night") < F.lit(night))
    nights = [r[0] for r in earlier.select("night").distinct().orderBy(F.col("night").desc()).limit(lookback).collect()]
    if not nights:
        return []
    return [tuple(r) for r in earlier.filter(F.col("night").isin(nights))
            .select("night", "department", "table", "metric", "value").collect()]


def _content(rows: list[dict]) -> list[tuple]:
    return sorted((tuple((k, r[k]) for k in sorted(r) if k not in STAMP) for r in rows), key=repr)


def replace_night(spark, settings: Settings, key: str, night: date, rows: list[dict], run_id: str,
                  now: datetime) -> bool:
    """Replace the night's slice of ``key`` with ``rows`` under a txn id — unless the table already
    holds exactly these rows for the night (then nothing is written: no new version). True when written."""
    layer, name = key.split(".")
    path = settings.table_path(layer, name)
    if table_exists(spark, path):
        held = [r.asDict() for r in read_if_exists(spark, settings, layer, name)
                .filter(F.col("night") == F.lit(night)).collect()]
        if _content(held) == _content(rows):
            return False
        before = table_version(spark, path)
    else:
        before = -1
    digest = hashlib.sha256(repr(_content(rows)).encode()).hexdigest()[:16]
    df = rows_frame(spark, key, [dict(r, night=night, computed_at=now, run_id=run_id) for r in rows])
    res = write_to(settings, key, df, mode="replace", replace_where=f"night = DATE'{night.isoformat()}'",
                   txn=(f"quality:{key}:{night.isoformat()}:{digest}:{before}", 0))
    return not res.skipped
