"""Data-quality metrics (数据质量度量), after GB/T 36344-2018: measures from the lake's own tables →
metrics → department scorecards → anomaly flags on each metric's history. Pure functions.

- ``night_measures``: DataFrame in, DataFrame out — the named measures (``MEASURES``) of one night,
  counted from the ledgers, quarantines, corrections log, gate results, conflicts register and
  entity tables the shell read. Never from the simulator's ground truth.
- ``compute_metrics``, ``scorecards``, ``detect_anomalies``, ``report``: plain Python over those
  few rows (a night has a few dozen measures per department, however large the lake): exact,
  cheap, and testable without Spark.
- ``anomaly_gate``: raises ``GateFailed`` for a failure-severity flag, logs the warnings.

Every definition is data (``conf/quality.yaml``, loaded once by ``shuzhi.quality.load_quality``
into the dataclasses below); the functions take it as plain values.

    >>> m = Metric("share", "占比", "a share", "accuracy", ("n",), "d", 1.0, "lower", 0.01, 0.05)
    >>> score(0.03, m)
    50.0
    >>> med, spread, z = robust_z(130.0, [100.0, 102.0, 98.0, 100.0], min_spread_rel=0.0, min_spread_abs=1.0)
    >>> med, spread, round(z, 2)          # MAD 1: spread 1.4826
    (100.0, 1.4826, 20.23)
"""
from __future__ import annotations

import logging
import math
import statistics
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..errors import GateFailed

log = logging.getLogger("shuzhi.quality")

ALL = "all"     # the `table` of a department-level row (pooled over its tables, or about the department)

DIMENSIONS = ("conformity", "completeness", "accuracy", "consistency", "timeliness", "uniqueness")

# The named measures: (level, where it is counted, what it is). `table` measures are per entity
# table of a department and night; `department` measures per department and night.
MEASURES: dict[str, tuple[str, str]] = {
    "delivered_records": ("table", "ops.deliveries: manifest rows of the night's latest accepted delivery's file"),
    "bronze_rows": ("table", "bronze.<table>: rows of the night's partition (the records loaded)"),
    "ingest_quarantined": ("table", "bronze.quarantine: the night's lines of the entity the ingest could not load"),
    "clean_quarantined": ("table", "silver.quarantine: the night's records of the entity the clean stage stopped"),
    "superseded": ("table", "ops.conservation (stage clean): the night's exact duplicates and older versions"),
    "fields_delivered": ("table", "bronze_rows × the entity's delivered fields (schemas/feeds.yaml)"),
    "fields_corrected": ("table", "silver.findings: the night's hits of rules with action `correct`"),
    "required_values": ("table", "bronze_rows × the entity's required fields (schemas/feeds.yaml `required`)"),
    "required_missing": ("table", "silver.findings: the night's hits of the `required_only` rules (an empty "
                                  "required field: ID_EMPTY, NAME_EMPTY)"),
    "required_present": ("table", "required_values − required_missing"),
    "gate_expectations": ("table", "ops.gate_results: expectations evaluated by the night's latest run of the "
                                   "table's bronze and silver gates"),
    "gate_failed": ("table", "ops.gate_results: of those, the failed ones (any severity)"),
    "deliveries_received": ("department", "ops.deliveries: the night's deliveries (distinct delivery ids, "
                                          "accepted or rejected)"),
    "deliveries_rejected": ("department", "ops.deliveries: the night's rejected deliveries"),
    "delivery_missing": ("department", "1 when the night has no accepted delivery, else 0"),
    "lateness_minutes": ("department", "minutes the night's first accepted delivery was recorded after it was due "
                                       "(the source's schedule + manifest timeout, conf/sources.yaml); 0 when on "
                                       "time, null with no accepted delivery"),
    "conflicts_open": ("department", "gold.conflicts: conflicts naming the department open as of the night "
                                     "(first seen by then, not resolved by then)"),
    "persons": ("department", "silver.<table> (the tables about a person): distinct identity tokens of the "
                              "versions held from the night or before"),
}
TABLE_MEASURES = tuple(k for k, (lvl, _) in MEASURES.items() if lvl == "table")
DEPARTMENT_MEASURES = tuple(k for k, (lvl, _) in MEASURES.items() if lvl == "department")


# ---------------------------------------------------------------- the configuration, as values

@dataclass(frozen=True)
class Metric:
    id: str
    name_zh: str
    name_en: str
    dimension: str
    numerator: tuple[str, ...]        # measures, summed
    denominator: str | None           # a measure, or None: value = numerator × scale
    scale: float
    direction: str                    # lower | higher (is better)
    target: float | None              # score 100 at or beyond the target ...
    floor: float | None               # ... 0 at or beyond the floor, linear between; None: not scored
    weight: float = 1.0               # within its dimension
    unit: str = ""
    level: str = "table"              # its measures' (MEASURES): table (a row per entity table and a pooled
                                      # `all` row per department) | department (an `all` row)

    @property
    def scored(self) -> bool:
        return self.target is not None


@dataclass(frozen=True)
class Dimension:
    id: str
    name_zh: str
    name_en: str
    weight: float


@dataclass(frozen=True)
class Level:
    severity: str                     # warning | failure
    max_rate: float                   # |relative change vs the previous night| above this ...
    max_z: float                      # ... and |robust z over the history| above this: flagged


@dataclass(frozen=True)
class Check:
    metric: str
    at: str                           # table | department: which rows of the metric are checked
    side: str                         # both | up | down: which direction is an anomaly
    levels: tuple[Level, ...]         # least severe first
    min_change: float = 0.0           # an absolute change smaller than this is never flagged
    min_spread_rel: float = 0.0       # the robust spread is at least this share of the median ...
    min_spread_abs: float = 1e-9      # ... and at least this (a steady history has MAD 0)
    min_denominator: float = 0.0      # a share over fewer than this many (tonight) is not judged


@dataclass(frozen=True)
class AnomalyConfig:
    lookback_nights: int
    min_history: int
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class QualityConfig:
    dimensions: tuple[Dimension, ...]
    metrics: tuple[Metric, ...]
    anomalies: AnomalyConfig

    def metric(self, metric_id: str) -> Metric:
        return next(m for m in self.metrics if m.id == metric_id)


@dataclass(frozen=True)
class TableShape:
    department: str
    fields: int                       # delivered fields of the entity
    required: int                     # of which required


@dataclass(frozen=True)
class MeasureParams:
    """What the measures need to know besides the lake: plain values derived at the edge."""
    tables: dict[str, TableShape]                  # entity table (``police_population``) → its shape
    departments: tuple[str, ...]
    required_rules: tuple[str, ...]                # rule ids whose hit is an empty required field
    due_epoch: dict[str, int]                      # department → epoch seconds the night's delivery is due by


@dataclass
class LakeFrames:
    """The lake's tables as the shell read them (None: the table does not exist yet)."""
    deliveries: DataFrame
    bronze: dict[str, DataFrame] = field(default_factory=dict)     # entity table → bronze table
    silver: dict[str, DataFrame] = field(default_factory=dict)     # entity table (about a person) → silver table
    ingest_quarantine: DataFrame | None = None
    clean_quarantine: DataFrame | None = None
    findings: DataFrame | None = None
    conservation: DataFrame | None = None
    gate_results: DataFrame | None = None
    conflicts: DataFrame | None = None


# ---------------------------------------------------------------- measures (DataFrame → DataFrame)

MEASURE_SCHEMA = "department string, table string, measure string, amount double"


def _long(df: DataFrame, measures: dict[str, object]) -> DataFrame:
    """Rows ``department, table, measure, amount`` from a frame with ``department`` and ``table``:
    one row per measure name → Column (or column name) of ``measures``."""
    pairs = [F.struct(F.lit(name).alias("measure"), F.col(c).cast("double").alias("amount") if isinstance(c, str)
                      else c.cast("double").alias("amount")) for name, c in measures.items()]
    return (df.select("department", "table", F.explode(F.array(*pairs)).alias("m"))
            .select("department", "table", "m.measure", "m.amount"))


def _per_entity(df: DataFrame | None, night: date, name: str, cond=None, also: dict | None = None
                ) -> DataFrame | None:
    """The night's rows of a lake table with ``_source, _entity, _batch_date`` per (department,
    table), as measure ``name`` (and ``also``: other measures' contributions, Columns of ``n``)."""
    if df is None:
        return None
    df = df.filter(F.col("_batch_date") == F.lit(night))
    if cond is not None:
        df = df.filter(cond)
    agg = (df.groupBy(F.col("_source").alias("department"),
                      F.concat_ws("_", F.col("_source"), F.col("_entity")).alias("table"))
           .agg(F.count(F.lit(1)).alias("n")))
    return _long(agg, {name: "n", **(also or {})})


def _gate_counts(gate_results: DataFrame, night: date, tables: dict[str, TableShape]) -> DataFrame:
    """Expectations and failures of the night's latest run of each bronze/silver entity table's gate."""
    owner = F.create_map(*[x for t, s in tables.items() for layer in ("bronze", "silver")
                           for x in (F.lit(f"{layer}.{t}"), F.lit(t))])
    g = gate_results.filter(F.col("batch_date") == F.lit(night)).withColumn("entity_table", owner[F.col("table")])
    g = g.filter(F.col("entity_table").isNotNull())
    latest = g.groupBy("table").agg(F.max_by("gate_run_id", "evaluated_at").alias("gate_run_id"))
    dept = F.create_map(*[x for t, s in tables.items() for x in (F.lit(t), F.lit(s.department))])
    agg = (g.join(latest, ["table", "gate_run_id"]).groupBy(F.col("entity_table").alias("table"))
           .agg(F.count(F.lit(1)).alias("n"), F.sum(F.when(~F.col("success"), 1).otherwise(0)).alias("failed"))
           .withColumn("department", dept[F.col("table")]))
    return _long(agg, {"gate_expectations": "n", "gate_failed": "failed"})


def _filled(keys: DataFrame, names: tuple[str, ...], counts: list[DataFrame], available: set[str],
            defaults: dict[str, float] | None = None) -> DataFrame:
    """Every measure of ``names`` for every key (department, table): the sum of its rows in
    ``counts``, or where a key has none its default (0, or ``defaults``) when the measure is
    available, else null."""
    spark = keys.sparkSession
    grid = keys.crossJoin(spark.createDataFrame([(n,) for n in names], "measure string"))
    got = counts[0]
    for df in counts[1:]:
        got = got.unionByName(df)
    default = F.lit(None).cast("double")
    for n in names:
        if n in available:
            default = F.when(F.col("measure") == n, F.lit(float((defaults or {}).get(n, 0.0)))).otherwise(default)
    got = got.groupBy("department", "table", "measure").agg(F.sum("amount").alias("amount"))
    return (grid.join(got, ["department", "table", "measure"], "left")
            .select("department", "table", "measure", F.coalesce(F.col("amount"), default).alias("amount")))


def night_measures(night: date, f: LakeFrames, p: MeasureParams) -> DataFrame:
    """The named measures of one night (``MEASURES``), long: ``department, table, measure, amount``.
    Table measures for each entity table of the night's latest accepted delivery of each department;
    department measures (``table`` = ``all``) for every department of ``p``. A measure whose table
    does not exist yet is null (not available), one with no rows tonight 0. One union of
    aggregates, filled by one join."""
    spark = f.deliveries.sparkSession
    d = f.deliveries.filter(F.col("batch_date") == F.lit(night))
    acc = d.filter(F.col("status") == "accepted")
    latest = acc.groupBy("source").agg(F.max_by("delivery_id", "recorded_at").alias("delivery_id"))
    files = (acc.join(latest, ["source", "delivery_id"]).filter(F.col("file").isNotNull())
             .groupBy(F.col("source").alias("department"),
                      F.concat_ws("_", F.col("source"), F.col("entity")).alias("table"))
             .agg(F.sum("manifest_rows").alias("delivered")))
    counts = [_long(files, {"delivered_records": "delivered"})]
    available = {"delivered_records"}
    for name, df in sorted(f.bronze.items()):
        if name not in p.tables:
            continue
        shape = p.tables[name]
        n = df.filter(F.col("_batch_date") == F.lit(night)).agg(F.count(F.lit(1)).alias("n")).select(
            F.lit(shape.department).alias("department"), F.lit(name).alias("table"), "n")
        counts.append(_long(n, {"bronze_rows": "n", "fields_delivered": F.col("n") * shape.fields,
                                "required_values": F.col("n") * shape.required,
                                "required_present": F.col("n") * shape.required}))    # − required_missing below
        available |= {"bronze_rows", "fields_delivered", "required_values"}
    parts = [("ingest_quarantined", f.ingest_quarantine, None, None),
             ("clean_quarantined", f.clean_quarantine, None, None),
             ("fields_corrected", f.findings, F.col("action") == "correct", None),
             ("required_missing", f.findings, F.col("rule_id").isin(list(p.required_rules)),
              {"required_present": -F.col("n")})]
    for name, df, cond, also in parts:
        if df is not None:
            counts.append(_per_entity(df, night, name, cond, also))
            available.add(name)
    if {"required_values", "required_missing"} <= available:
        available.add("required_present")
    if f.conservation is not None:
        cons = (f.conservation.filter((F.col("batch_date") == F.lit(night)) & (F.col("stage") == "clean"))
                .groupBy(F.col("source").alias("department"), F.concat_ws("_", "source", "entity").alias("table"))
                .agg(F.sum("superseded").alias("n")))
        counts.append(_long(cons, {"superseded": "n"}))
        available.add("superseded")
    if f.gate_results is not None:
        counts.append(_gate_counts(f.gate_results, night, p.tables))
        available |= {"gate_expectations", "gate_failed"}
    per_table = _filled(files.select("department", "table"), TABLE_MEASURES, counts, available)

    depts = spark.createDataFrame([(s, ALL) for s in p.departments], "department string, table string")
    due = F.create_map(*[x for s, e in p.due_epoch.items() for x in (F.lit(s), F.lit(e))])
    by_dept = d.groupBy(F.col("source").alias("department")).agg(
        F.countDistinct("delivery_id").alias("received"),
        F.countDistinct(F.when(F.col("status") == "rejected", F.col("delivery_id"))).alias("rejected"),
        F.min(F.when(F.col("status") == "accepted", F.unix_timestamp("recorded_at"))).alias("first"))
    by_dept = by_dept.withColumn("table", F.lit(ALL))
    dcounts = [_long(by_dept, {"deliveries_received": "received", "deliveries_rejected": "rejected"}),
               _long(by_dept.filter(F.col("first").isNotNull()),
                     {"delivery_missing": F.lit(0.0),
                      "lateness_minutes": F.greatest(F.lit(0.0), (F.col("first") - due[F.col("department")])
                                                     .cast("double") / 60.0)})]
    davail = {"deliveries_received", "deliveries_rejected", "delivery_missing"}
    if f.conflicts is not None:
        c = (f.conflicts.filter((F.col("first_seen") <= F.lit(night))
                                & (F.col("resolved_on").isNull() | (F.col("resolved_on") > F.lit(night))))
             .select(F.explode("departments").alias("department"), "conflict_id")
             .groupBy("department").agg(F.countDistinct("conflict_id").alias("n")).withColumn("table", F.lit(ALL)))
        dcounts.append(_long(c, {"conflicts_open": "n"}))
        davail.add("conflicts_open")
    toks = [df.filter((F.col("_batch_date") <= F.lit(night)) & F.col("citizen_id__tok").isNotNull())
            .select(F.lit(p.tables[name].department).alias("department"), F.col("citizen_id__tok").alias("tok"))
            for name, df in sorted(f.silver.items()) if name in p.tables]
    if toks:
        u = toks[0]
        for df in toks[1:]:
            u = u.unionByName(df)
        dcounts.append(_long(u.groupBy("department").agg(F.countDistinct("tok").alias("n"))
                             .withColumn("table", F.lit(ALL)), {"persons": "n"}))
        davail.add("persons")
    per_dept = _filled(depts, DEPARTMENT_MEASURES, dcounts, davail, {"delivery_missing": 1.0})
    return per_table.unionByName(per_dept)


# ---------------------------------------------------------------- metrics and scores (plain Python)

@dataclass(frozen=True)
class MetricValue:
    department: str
    table: str
    dimension: str
    metric: str
    numerator: float | None
    denominator: float | None
    value: float | None
    score: float | None


def score(value: float | None, m: Metric) -> float | None:
    """0–100 (4 decimals): 100 at or beyond the target, 0 at or beyond the floor, linear between; None for an
    unscored metric or a value that cannot be computed.

    >>> m = Metric("c", "完整", "complete", "completeness", ("n",), "d", 1.0, "higher", 0.99, 0.9)
    >>> [score(v, m) for v in (1.0, 0.99, 0.945, 0.9, 0.5, None)]
    [100.0, 100.0, 50.0, 0.0, 0.0, None]
    """
    if value is None or not m.scored:
        return None
    good, bad = (m.target, m.floor) if m.direction == "higher" else (-m.target, -m.floor)
    v = value if m.direction == "higher" else -value
    if v >= good:
        return 100.0
    if v <= bad:
        return 0.0
    return round(100.0 * (v - bad) / (good - bad), 4)


def _value(num: float | None, den: float | None, m: Metric) -> float | None:
    if num is None:
        return None
    if m.denominator is None:
        return num * m.scale
    if den is None or den == 0:
        return None
    return num / den * m.scale


def _row(dept: str, table: str, m: Metric, num: float | None, den: float | None) -> MetricValue:
    v = _value(num, den, m)
    return MetricValue(dept, table, m.dimension, m.id, num, den, v, score(v, m))


def _parts(m: Metric, vals: dict[str, float | None]) -> tuple[float | None, float | None]:
    """A metric's numerator (its measures summed; None if one is not available) and denominator."""
    nums = [vals.get(n) for n in m.numerator]
    num = None if any(x is None for x in nums) else float(sum(nums))
    return num, (None if m.denominator is None else vals.get(m.denominator))


def compute_metrics(measures: list[tuple[str, str, str, float | None]], metrics: tuple[Metric, ...]
                    ) -> list[MetricValue]:
    """Each metric's rows from the night's measures (``(department, table, measure, amount)``):
    a table metric one row per entity table and one pooled ``all`` row per department (Σ numerator
    / Σ denominator over its tables with both known); a department metric one ``all`` row."""
    by_key: dict[tuple[str, str], dict[str, float | None]] = {}
    for dept, table, name, amount in measures:
        by_key.setdefault((dept, table), {})[name] = amount
    out: list[MetricValue] = []
    for m in metrics:
        pooled: dict[str, list[tuple[float | None, float | None]]] = {}
        for (dept, table), vals in sorted(by_key.items()):
            if (table == ALL) != (m.level == "department"):
                continue
            num, den = _parts(m, vals)
            out.append(_row(dept, table, m, num, den))
            if table != ALL:
                pooled.setdefault(dept, []).append((num, den))
        for dept, pairs in sorted(pooled.items()):
            known = [(n, d) for n, d in pairs if n is not None and (m.denominator is None or d is not None)]
            num = float(sum(n for n, _ in known)) if known else None
            den = None if m.denominator is None or not known else float(sum(d for _, d in known))
            out.append(_row(dept, ALL, m, num, den))
    return out


@dataclass(frozen=True)
class DimensionScore:
    department: str
    dimension: str                    # one of DIMENSIONS, or ``overall``
    score: float | None
    weight: float                     # the dimension's weight; for overall, the weights that had a score
    metrics: int                      # scored metric rows it averages (overall: dimensions)


def scorecards(values: list[MetricValue], config: QualityConfig) -> list[DimensionScore]:
    """Per department: each dimension's score, the weighted mean (metric weights) of its scored
    metrics' department rows (``all``); ``overall``, the mean of the dimension scores weighted by
    the dimensions' weights, over the dimensions that have a score (their weights renormalised)."""
    weight = {m.id: m.weight for m in config.metrics}
    out: list[DimensionScore] = []
    for dept in sorted({v.department for v in values}):
        total = wsum = 0.0
        scored_dims = 0
        for dim in config.dimensions:
            rows = [v for v in values if v.department == dept and v.table == ALL and v.dimension == dim.id
                    and v.score is not None]
            w = sum(weight[v.metric] for v in rows)
            s = sum(weight[v.metric] * v.score for v in rows) / w if rows and w > 0 else None
            out.append(DimensionScore(dept, dim.id, s, dim.weight, len(rows)))
            if s is not None:
                total += dim.weight * s
                wsum += dim.weight
                scored_dims += 1
        out.append(DimensionScore(dept, "overall", total / wsum if wsum > 0 else None, wsum, scored_dims))
    return out


# ---------------------------------------------------------------- anomalies on history

MAD_TO_SIGMA = 1.4826     # MAD × this estimates σ for normal data


def robust_z(value: float, history: list[float], *, min_spread_rel: float, min_spread_abs: float
             ) -> tuple[float, float, float]:
    """``(median, spread, z)``: z = (value − median) / spread, spread = 1.4826 × MAD of the
    history, at least ``min_spread_rel`` × |median| and ``min_spread_abs`` (a steady history has
    MAD 0: every change would be infinitely far).

    >>> robust_z(70.0, [100.0, 101.0, 100.0], min_spread_rel=0.02, min_spread_abs=1.0)
    (100.0, 2.0, -15.0)
    """
    med = statistics.median(history)
    mad = statistics.median([abs(x - med) for x in history])
    spread = max(MAD_TO_SIGMA * mad, min_spread_rel * abs(med), min_spread_abs)
    return med, spread, (value - med) / spread


def change_rate(value: float, previous: float) -> float:
    """Relative change vs the previous night (inf from 0 to anything else, 0 from 0 to 0)."""
    if previous == 0:
        return 0.0 if value == 0 else math.copysign(math.inf, value)
    return (value - previous) / abs(previous)


@dataclass(frozen=True)
class Flag:
    night: date
    department: str
    table: str
    metric: str
    value: float
    previous: float
    change_rate: float | None         # None: from 0 (infinite)
    expected_low: float
    expected_high: float
    history: int                      # nights of history judged against
    method: str
    statistic: float                  # the robust z
    severity: str

    def describe(self) -> str:
        rate = "from 0" if self.change_rate is None else f"{self.change_rate:+.1%}"
        return (f"{self.night} {self.department}/{self.table} {self.metric}: value {self.value:.6g} outside the "
                f"expected range {self.expected_low:.6g}–{self.expected_high:.6g} (previous night {self.previous:.6g}, "
                f"change {rate}, robust z {self.statistic:.1f} over {self.history} nights) [{self.severity}]")


METHOD = "rate_of_change_and_robust_z"


def _exceeds(rate: float, z: float, level: Level, side: str) -> bool:
    if side == "up":
        return rate > level.max_rate and z > level.max_z
    if side == "down":
        return -rate > level.max_rate and -z > level.max_z
    return abs(rate) > level.max_rate and abs(z) > level.max_z


def detect_anomalies(night: date, values: list[MetricValue], history: list[tuple[date, str, str, str, float | None]],
                     config: AnomalyConfig) -> list[Flag]:
    """Flag tonight's value of each checked metric that leaves the range its own history predicts:
    its relative change vs the previous night with a value exceeds a level's ``max_rate`` AND its
    robust z over the last ``lookback_nights`` such nights exceeds that level's ``max_z`` (in the
    check's direction, by at least ``min_change``); the most severe level so exceeded is the
    flag's severity. A value whose denominator tonight is under the check's ``min_denominator``
    is not judged. ``history``: ``(night, department, table, metric, value)`` of earlier nights;
    a key with fewer than ``min_history`` of them is not judged. The expected range is the median
    ± the least severe level's ``max_z`` spreads (low end at 0 at least: the metrics are counts,
    shares and rates)."""
    past: dict[tuple[str, str, str], list[tuple[date, float]]] = {}
    for n, dept, table, metric, v in history:
        if n < night and v is not None:
            past.setdefault((dept, table, metric), []).append((n, float(v)))
    out: list[Flag] = []
    for chk in config.checks:
        for v in values:
            if v.metric != chk.metric or v.value is None or (v.table == ALL) != (chk.at == "department"):
                continue
            if chk.min_denominator and (v.denominator is None or v.denominator < chk.min_denominator):
                continue                                   # one record of four is 25 %: noise, not news
            h = [x for _, x in sorted(past.get((v.department, v.table, v.metric), []))][-config.lookback_nights:]
            if len(h) < config.min_history:
                continue
            prev = h[-1]
            if abs(v.value - prev) < chk.min_change:
                continue
            rate = change_rate(v.value, prev)
            med, spread, z = robust_z(v.value, h, min_spread_rel=chk.min_spread_rel, min_spread_abs=chk.min_spread_abs)
            hit = [lv for lv in chk.levels if _exceeds(rate, z, lv, chk.side)]
            if not hit:
                continue
            width = chk.levels[0].max_z * spread
            out.append(Flag(night, v.department, v.table, v.metric, v.value, prev,
                            None if math.isinf(rate) else rate, max(0.0, med - width), med + width, len(h), METHOD,
                            z, hit[-1].severity))
    return out


def anomaly_gate(flags: list[Flag]) -> None:
    """Log each warning flag; raise ``GateFailed`` naming every failure-severity flag (night,
    department, table, metric, value and expected range)."""
    for fl in flags:
        if fl.severity != "failure":
            log.warning("quality anomaly %s", fl.describe())
    failed = [fl for fl in flags if fl.severity == "failure"]
    if failed:
        raise GateFailed(f"quality anomalies ({len(failed)} failure): " + "; ".join(fl.describe() for fl in failed))


# ---------------------------------------------------------------- the cockpit's view

def report(night: date, metrics: list[dict], scores: list[dict], anomalies: list[dict]) -> dict:
    """The cockpit's quality section from the repository's rows (``ops.quality_metrics``,
    ``ops.quality_scores``, ``ops.quality_anomalies``, every night; dicts of their columns):
    the night's scorecards with the change vs the previous night that has scores, the night's
    metrics with their previous value, the trend of every score over all nights, and the night's
    anomaly flags."""
    nights = sorted({r["night"] for r in scores} | {r["night"] for r in metrics})
    before = [n for n in nights if n < night]
    prev = before[-1] if before else None

    def by(rows, n, *key):
        return {tuple(r[k] for k in key): r for r in rows if r["night"] == n}

    now_s, prev_s = by(scores, night, "department", "dimension"), by(scores, prev, "department", "dimension")
    cards: dict[str, dict[str, dict]] = {}
    for (dept, dim), r in sorted(now_s.items()):
        p = prev_s.get((dept, dim))
        before_score = None if p is None else p["score"]
        change = None if r["score"] is None or before_score is None else r["score"] - before_score
        cards.setdefault(dept, {})[dim] = {"score": r["score"], "weight": r["weight"], "previous": before_score,
                                           "change": change}
    now_m, prev_m = (by(metrics, night, "department", "table", "metric"),
                     by(metrics, prev, "department", "table", "metric"))
    rows = []
    for k, r in sorted(now_m.items()):
        p = prev_m.get(k)
        rows.append({c: r[c] for c in ("department", "table", "dimension", "metric", "numerator", "denominator",
                                       "value", "score")} | {"previous_value": None if p is None else p["value"]})
    trend: dict[str, dict[str, list]] = {}
    for r in sorted(scores, key=lambda r: (r["department"], r["dimension"], r["night"])):
        trend.setdefault(r["department"], {}).setdefault(r["dimension"], []).append(
            [r["night"].isoformat(), r["score"]])
    tonight = sorted((r for r in anomalies if r["night"] == night),
                     key=lambda r: (r["department"], r["table"], r["metric"]))
    flags = [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()
              if k not in ("computed_at", "run_id")} for r in tonight]
    return {"night": night.isoformat(), "previous_night": None if prev is None else prev.isoformat(),
            "scorecards": cards, "metrics": rows, "trend": trend, "anomalies": flags}
