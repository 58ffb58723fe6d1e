"""Lifecycle selection shared by the archive and destroy jobs (and the tiering job's months).

The retention policy (``conf/retention.yaml``) applied to the lake: each silver record's clock,
whether it is past an age (cold / archive / destroy) at an ``--as-of`` date, and the legal holds
that suspend archive and destruction — as pure DataFrame transforms plus one reader.

    >>> sel = select_records(spark, settings, date(2056, 12, 1), load_policy(), keyring, "destroy")  # doctest: +SKIP
    >>> sel.selected.columns                                                                   # doctest: +SKIP
    ['table', 'record_id', 'ref', 'tokens', 'month']
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from .config import Settings
from .crypto import Keyring, decrypt
from .delta import read_table, table_exists
from .retention import LOAD_DATE, Policy, RetentionClass, load_policy
from .schemas import Entity, catalog

ROW_KEY = ["_batch_date", "_file", "_row"]     # one delivered line (bronze, quarantines)


def read_if_exists(spark, settings: Settings, layer: str, name: str) -> DataFrame | None:
    p = settings.table_path(layer, name)
    return read_table(spark, p) if table_exists(spark, p) else None


def _as_array(df: DataFrame, col: str):
    if isinstance(df.schema[col].dataType, T.ArrayType):
        return F.coalesce(F.col(col), F.array().cast("array<string>"))
    return F.array(F.col(col))


def tokens_of(df: DataFrame):
    """Every person token a row names (subject, owner, involved), as one array without nulls."""
    cols = [c for c in df.columns if c.endswith("__tok")]
    if not cols:
        return F.array().cast("array<string>")
    return F.array_compact(F.flatten(F.array(*[_as_array(df, c) for c in cols])))


def clock_of(entity: Entity, cls: RetentionClass, keyring: Keyring):
    """The date a record's retention runs from (an encrypted clock is decrypted in memory)."""
    if cls.clock == LOAD_DATE:
        return F.col("_batch_date")
    f = entity.silver_field(cls.clock)
    c = decrypt(F.col(cls.clock), keyring) if f.is_encrypted else F.col(cls.clock)
    return F.to_date(c)


def month_of(df: DataFrame, layer: str, name: str, settings: Settings, keyring: Keyring | None = None):
    """``yyyy-MM`` of a row's lifecycle date: its entity's clock for a silver entity table (the
    partition unit of tiering), else the night it was delivered."""
    from .retention import load_policy

    entity = {e.table_name: e for e in catalog().entities()}.get(name)
    if layer in ("silver", "cold") and entity is not None:
        cls = load_policy().classes[entity.retention_class]
        return F.date_format(clock_of(entity, cls, keyring or Keyring.load(settings.key_dir)), "yyyy-MM")
    return F.date_format(F.col("_batch_date"), "yyyy-MM")


def entity_ref(entity: Entity, rid: str = "record_id"):
    """``source/entity/record_id``: how the conflicts register and the certificate name a record."""
    return F.concat(F.lit(f"{entity.source}/{entity.name}/"), F.col(rid))


def silver_refs(df: DataFrame, entity: Entity, cls: RetentionClass, as_of: date, keyring: Keyring,
                age: str = "destroy") -> DataFrame:
    """One row per silver record: ``table, record_id, ref, due, tokens, month`` (``due``: past
    ``age`` at ``as_of``; ``month``: of the lifecycle date, ``yyyy-MM``)."""
    clock = clock_of(entity, cls, keyring)
    return df.select(F.lit(entity.table_name).alias("table"), "record_id", entity_ref(entity).alias("ref"),
                     (clock.isNotNull() & (clock <= F.lit(cls.cutoff(as_of, age)))).alias("due"),
                     tokens_of(df).alias("tokens"), F.date_format(clock, "yyyy-MM").alias("month"))


def held_tokens(holds: list[tuple[object, DataFrame]]) -> DataFrame:
    """Tokens of every person some hold covers (``token``)."""
    parts = [df.filter(h.when).select(F.explode(F.array_compact(F.flatten(F.array(*[_as_array(df, c)
                                                                                    for c in h.persons]))))
                                      .alias("token"))
             for h, df in holds if h.persons]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()


def destroyed_records(refs: DataFrame, held_refs: DataFrame | None, held_tok: DataFrame | None) -> DataFrame:
    """Records due and not held, nor naming a held person: ``table, record_id, ref, tokens, month``."""
    due = refs.filter("due")
    if held_refs is not None:
        due = due.join(held_refs.select("ref"), "ref", "left_anti")
    if held_tok is not None:
        covered = (due.select("ref", F.explode("tokens").alias("token")).join(held_tok, "token")
                   .select("ref").distinct())
        due = due.join(covered, "ref", "left_anti")
    return due.select("table", "record_id", "ref", "tokens", "month")


@dataclass
class Selection:
    entities: dict[str, Entity]
    silver: dict[str, DataFrame]
    refs: DataFrame          # every record (silver hot and cold, and with_archive the archive zone's)
    selected: DataFrame      # past the age and under no hold: table, record_id, ref, tokens, month
    held_records: int        # past the age but held
    held: DataFrame | None   # every record a hold covers, whatever its age (``ref``)


def select_records(spark, settings: Settings, day: date, policy: Policy, keyring: Keyring, age: str, *,
                   with_archive: bool = False) -> Selection | None:
    """The records past ``age`` (``archive`` or ``destroy``) at ``day`` that no legal hold covers."""
    from .archive import read_archived

    entities = {e.table_name: e for e in catalog().entities()}
    from .access import Reader, read, unified

    silver = {t: df for t in entities
              if (df := read(spark, settings, f"silver.{t}", reader=Reader.pipeline(age))) is not None}
    refs = None
    for t, df in silver.items():
        e = entities[t]
        parts = [df]
        if with_archive and (arch := read_archived(spark, settings, f"silver.{t}")) is not None:
            parts.append(arch)
        for part in parts:
            r = silver_refs(part, e, policy.classes[e.retention_class], day, keyring, age)
            refs = r if refs is None else refs.unionByName(r)
    if refs is None:
        return None
    # cut the lineage: every later plan (the destroy job builds dozens on these) would otherwise
    # re-analyse the union of every table's read, which costs minutes of driver time per plan
    refs = refs.localCheckpoint(eager=True)
    holds, held_refs = [], None
    for h in policy.holds:
        layer, name = h.table.split(".", 1)
        # hot and cold: an open incident moved to the cold tier still holds (the retention gate caught it)
        df = unified(spark, settings, layer, name)
        if df is None:
            continue
        holds.append((h, df))
        if h.record and layer == "silver":
            hr = df.filter(h.when).select(entity_ref(entities[name]).alias("ref"))
            held_refs = hr if held_refs is None else held_refs.unionByName(hr)
    held_tok = held_tokens(holds)
    if held_refs is not None:
        held_refs = held_refs.localCheckpoint(eager=True)
    if held_tok is not None:
        held_tok = held_tok.localCheckpoint(eager=True)
    selected = destroyed_records(refs, held_refs, held_tok).dropDuplicates(["ref"]).localCheckpoint(eager=True)
    held = refs.filter("due").select("ref").distinct().count() - selected.count()
    covered = []
    if held_refs is not None:
        covered.append(refs.join(held_refs.select("ref").distinct(), "ref", "left_semi").select("ref"))
    if held_tok is not None:
        covered.append(refs.select("ref", F.explode("tokens").alias("token")).join(held_tok, "token").select("ref"))
    all_held = None
    for c in covered:
        all_held = c if all_held is None else all_held.unionByName(c)
    return Selection(entities, silver, refs, selected, held, None if all_held is None else all_held.distinct())


# ---------------------------------------------------------------- tiering and the retention status

def month_reads(spark, settings: Settings, table: str, as_of: date, window_days: int) -> dict[str, int]:
    """Reads by people (any role but the pipeline's) of each month of ``table`` in the window
    ``(as_of - window_days, as_of]``; a whole-table read (``*``) counts for every month."""
    from .access import ACCESS_LOG, PIPELINE_ROLE

    p = settings.table_path(*ACCESS_LOG)
    if not table_exists(spark, p):
        return {}
    start = datetime.combine(as_of - timedelta(days=window_days), time.max)
    end = datetime.combine(as_of, time.max)
    ev = (read_table(spark, p).filter((F.col("table") == table) & (F.col("role") != PIPELINE_ROLE)
                                      & (F.col("at") > F.lit(start)) & (F.col("at") <= F.lit(end)))
          .select(F.explode(F.split(F.coalesce("partition", F.lit("*")), ",")).alias("m")))
    counts = {r["m"]: r["n"] for r in ev.groupBy("m").agg(F.count("*").alias("n")).collect()}
    everything = counts.pop("*", 0)
    return {"*": everything, **{m: n + everything for m, n in counts.items()}}


def reads_of(reads: dict[str, int], month: str) -> int:
    return reads.get(month, reads.get("*", 0))


def cold_candidates(hot: DataFrame, entity: Entity, cls: RetentionClass, day: date, reads: dict[str, int],
                    keep_hot_reads: int, settings: Settings, keyring: Keyring) -> DataFrame:
    """Hot rows (with ``_month``) whose month is past ``cold_after`` and read less than
    ``keep_hot_reads`` times in the window: they belong in the cold tier."""
    if reads_of(reads, "*") >= keep_hot_reads:
        return hot.withColumn("_month", F.lit(None).cast("string")).limit(0)
    clock = clock_of(entity, cls, keyring)
    keep_hot = [m for m, n in reads.items() if m != "*" and n >= keep_hot_reads]
    out = (hot.withColumn("_month", month_of(hot, "silver", entity.table_name, settings, keyring))
           .filter(clock.isNotNull() & (clock <= F.lit(cls.cutoff(day, "cold")))))
    return out.filter(~F.col("_month").isin(keep_hot)) if keep_hot else out


STATUS = ("ops", "retention_status")


def held_count(spark, settings: Settings, policy: Policy, keyring: Keyring, day: date) -> int:
    """How many records (hot, cold or archived) legal holds cover now."""
    sel = select_records(spark, settings, day, policy, keyring, "destroy", with_archive=True)
    return 0 if sel is None or sel.held is None else sel.held.count()


def overdue_count(spark, settings: Settings, policy: Policy, keyring: Keyring, day: date, stage: str) -> int:
    """Records still where ``stage`` should have moved them at ``day``: hot rows of months that
    belong in the cold tier; live records past their archive age; records anywhere (live, cold,
    archive) past their destruction age — none of them under a hold."""
    if stage == "tier":
        n = 0
        for e in catalog().entities():
            hot = read_if_exists(spark, settings, "silver", e.table_name)
            if hot is None:
                continue
            reads = month_reads(spark, settings, f"silver.{e.table_name}", day, policy.tiering.window_days)
            n += cold_candidates(hot, e, policy.classes[e.retention_class], day, reads,
                                 policy.tiering.keep_hot_reads, settings, keyring).count()
        return n
    sel = select_records(spark, settings, day, policy, keyring, stage, with_archive=stage == "destroy")
    return 0 if sel is None else sel.selected.count()


def record_status(spark, settings: Settings, as_of: str, stage: str, *, held_before: int, verified: bool,
                  detail: str | None, policy: Policy, keyring: Keyring) -> dict:
    """One row of ``ops.retention_status`` for (as-of, stage): what is overdue after the stage, the
    records under hold before and after it, whether the stage was verified. Gated by its suite."""
    from .delta import write_table

    day = date.fromisoformat(as_of)
    row = dict(batch_date=day, stage=stage, overdue=overdue_count(spark, settings, policy, keyring, day, stage),
               held_before=held_before, held_after=held_count(spark, settings, policy, keyring, day),
               verified=verified, detail=(detail or "")[:2000], recorded_at=datetime.now())
    schema = T.StructType([T.StructField("batch_date", T.DateType(), False), T.StructField("stage", T.StringType()),
                           T.StructField("overdue", T.LongType()), T.StructField("held_before", T.LongType()),
                           T.StructField("held_after", T.LongType()), T.StructField("verified", T.BooleanType()),
                           T.StructField("detail", T.StringType()), T.StructField("recorded_at", T.TimestampType())])
    write_table(spark.createDataFrame([row], schema), settings.table_path(*STATUS), mode="replace",
                replace_where=f"batch_date = DATE'{as_of}' AND stage = '{stage}'",
                comment="retention stages: overdue records after each stage, records under hold before/after")
    return {k: v for k, v in row.items() if k not in ("batch_date", "recorded_at")}


def retention_task(spark, settings: Settings, stage: str, as_of: str, run, *, record: bool = True) -> dict:
    """A retention stage as the runner calls it: the records under legal hold counted before it,
    ``run(keyring, policy)`` (the stage's summary dict), then, unless ``record`` is false (destroy:
    its row comes after the proof), the stage's status row for the gate."""
    keyring, policy = Keyring.load(settings.key_dir), load_policy()
    held_before = held_count(spark, settings, policy, keyring, date.fromisoformat(as_of))
    out = run(keyring, policy)
    out["held_before"] = held_before
    if record:
        out["status_row"] = record_status(spark, settings, as_of, stage, held_before=held_before, verified=True,
                                          detail=json.dumps(out, default=str), policy=policy, keyring=keyring)
    return out
