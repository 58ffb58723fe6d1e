"""The retention stages' transforms (tier, archive, destroy): pure DataFrame → DataFrame functions
of the retention policy's values (``conf/retention.yaml`` read by ``shuzhi.retention``), the
entity declarations and a keyring — no reads, writes, clock or settings here; the jobs in
``jobs/`` and ``shuzhi.selection`` bring the tables and the as-of date.

A record's clock is the date its retention runs from; it is past an age at a date when the clock
is on or before the age's cutoff; a legal hold keeps a record, and every record naming a held
person, where it is.

    >>> reads_of({"*": 2, "2026-10": 5}, "2026-10"), reads_of({"*": 2}, "2026-09"), reads_of({}, "2026-09")
    (5, 2, 0)
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..crypto import Keyring, decrypt
from ..frames import union_all
from ..retention import LOAD_DATE, Hold, RetentionClass
from ..schemas import Entity

ROW_KEY = ["_batch_date", "_file", "_row"]     # one delivered line (bronze, quarantines)


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


def month_of(layer: str, entity: Entity | None, cls: RetentionClass | None, keyring: Keyring | None):
    """``yyyy-MM`` of a row's lifecycle date: its entity's clock (``cls``) for a silver or cold
    entity table (the partition unit of tiering), else the night it was delivered."""
    if layer in ("silver", "cold") and entity is not None:
        return F.date_format(clock_of(entity, cls, keyring), "yyyy-MM")
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


def held_tokens(holds: list[tuple[Hold, DataFrame]]) -> DataFrame | None:
    """Tokens of every person some hold covers (``token``)."""
    parts = [df.filter(h.when).select(F.explode(F.array_compact(F.flatten(F.array(*[_as_array(df, c)
                                                                                    for c in h.persons]))))
                                      .alias("token"))
             for h, df in holds if h.persons]
    return None if not parts else union_all(parts).distinct()


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


def reads_of(reads: dict[str, int], month: str) -> int:
    return reads.get(month, reads.get("*", 0))


def cold_candidates(hot: DataFrame, entity: Entity, cls: RetentionClass, day: date, reads: dict[str, int],
                    keep_hot_reads: int, keyring: Keyring) -> DataFrame:
    """Hot rows (with ``_month``) whose month is past ``cold_after`` and read less than
    ``keep_hot_reads`` times in the window: they belong in the cold tier."""
    if reads_of(reads, "*") >= keep_hot_reads:
        return hot.withColumn("_month", F.lit(None).cast("string")).limit(0)
    clock = clock_of(entity, cls, keyring)
    keep_hot = [m for m, n in reads.items() if m != "*" and n >= keep_hot_reads]
    out = (hot.withColumn("_month", month_of("silver", entity, cls, keyring))
           .filter(clock.isNotNull() & (clock <= F.lit(cls.cutoff(day, "cold")))))
    return out.filter(~F.col("_month").isin(keep_hot)) if keep_hot else out


# ---------------------------------------------------------------- destruction: what each table loses

def doomed_delivered(bronze_refs: DataFrame, doomed_refs: DataFrame, live: DataFrame, cutoff: date) -> DataFrame:
    """Delivered rows (bronze, with ``__ref``) that go: every version of a destroyed record, and
    rows of nights on or before ``cutoff`` whose record no longer lives (``live``: ``ref``)."""
    live_refs = live.select(F.col("ref").alias("__ref"))
    return (bronze_refs.join(doomed_refs.withColumnRenamed("ref", "__ref"), "__ref", "left_semi")
            .unionByName(bronze_refs.filter(F.col("_batch_date") <= F.lit(cutoff)).join(live_refs, "__ref",
                                                                                         "left_anti")))


def _source_ref(df: DataFrame) -> DataFrame:
    return df.withColumn("__ref", F.concat_ws("/", "_source", "_entity", "record_id"))


def doomed_quarantined(quarantine: DataFrame, doomed_refs: DataFrame, cutoff: date) -> DataFrame:
    """Clean-stage quarantine rows that go: those of nights on or before ``cutoff``, and every
    quarantined version of a destroyed record."""
    q = _source_ref(quarantine)
    return (q.filter(F.col("_batch_date") <= F.lit(cutoff))
            .unionByName(q.join(doomed_refs.withColumnRenamed("ref", "__ref"), "__ref", "left_semi")))


def doomed_findings(findings: DataFrame, doomed_refs: DataFrame, live: DataFrame, cutoff: date) -> DataFrame:
    """Findings of a destroyed record, and those of nights on or before ``cutoff`` whose record no
    longer lives."""
    f = _source_ref(findings)
    live_refs = live.select(F.col("ref").alias("__ref"))
    return (f.join(doomed_refs.withColumnRenamed("ref", "__ref"), "__ref", "left_semi")
            .unionByName(f.filter(F.col("_batch_date") <= F.lit(cutoff)).join(live_refs, "__ref", "left_anti")))


def destroyed_persons(doomed: DataFrame, surviving_tokens: DataFrame | None) -> DataFrame:
    """Tokens (``token``) of the persons no surviving row names any more: the persons destroyed."""
    named = doomed.select(F.explode("tokens").alias("token")).distinct()
    if surviving_tokens is None:
        return named
    return named.join(surviving_tokens.filter("token IS NOT NULL").distinct(), "token", "left_anti")


GOLD_KEYS = {"conflicts": ["conflict_id"], "person": ["person_token"], "house": ["record_id"], "event": ["record_id"]}


def doomed_gold(name: str, gold: DataFrame, doomed: DataFrame, persons: DataFrame) -> DataFrame:
    """Rows of a gold table (``GOLD_KEYS``) that go with the destroyed records and persons.

    conflicts: those about a destroyed person, and those citing a destroyed record — except an open
    conflict about a person, which holds that person. person: every golden record that drew on a
    destroyed record (the person's surviving records rebuild it next night). house / event: the
    destroyed records themselves, and the houses owned by / incidents naming a destroyed person."""
    tok = persons.select(F.col("token").alias("__t"))
    if name == "conflicts":
        refs_arr = doomed.select("ref").agg(F.collect_set("ref").alias("__refs"))
        return (gold.join(tok, gold["person_token"] == tok["__t"], "left_semi")
                .unionByName(gold.crossJoin(refs_arr).filter(F.arrays_overlap("record_refs", "__refs"))
                             .filter(~((F.col("status") == "open") & F.col("person_token").isNotNull()))
                             .drop("__refs")))
    if name == "person":
        named = doomed.select(F.explode("tokens").alias("__t")).distinct()
        return gold.join(named, gold["person_token"] == named["__t"], "left_semi")
    table = {"house": "police_houses", "event": "police_incidents"}[name]
    ids = doomed.filter(F.col("table") == table).select(F.col("record_id").alias("__rid"))
    gone = gold.join(ids, gold["record_id"] == ids["__rid"], "left_semi")
    if name == "house":
        return gone.unionByName(gold.join(tok, gold["owner_token"] == tok["__t"], "left_semi"))
    t_arr = persons.agg(F.collect_set("token").alias("__ts"))
    return gone.unionByName(gold.crossJoin(t_arr).filter(F.arrays_overlap("person_tokens", "__ts")).drop("__ts"))


def delivered_versions(bronze: DataFrame, entity: Entity, chosen: DataFrame) -> DataFrame:
    """Every bronze version (delivered line) of the records ``chosen`` (``ref``) — what goes to
    the archive with them."""
    return (bronze.withColumn("__ref", entity_ref(entity, entity.record_id))
            .join(chosen.select(F.col("ref").alias("__ref")), "__ref", "left_semi").drop("__ref"))
