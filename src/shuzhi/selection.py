"""What the retention stages (tier, archive, destroy) read from the lake and record in it: the
records past an age that no legal hold covers (``select_records``), the reads of each month
(``month_reads_of``), the retention status row of each stage (``record_status``), and the runner's
wrapper of a retention job (``retention_task``). The transforms themselves are in
``shuzhi.stages.retention``.

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

from .access import ACCESS_LOG, PIPELINE_ROLE, read_all, read_if_exists, unified
from .archive import read_archived
from .config import Settings
from .crypto import Keyring
from .delta import read_table, rows_frame, table_exists, write_table
from .frames import union_all
from .retention import Policy, load_policy
from .schemas import Entity, catalog
from .stages.retention import (
    cold_candidates,
    delivered_versions,
    destroyed_records,
    entity_ref,
    held_tokens,
    silver_refs,
)


@dataclass
class Selection:
    entities: dict[str, Entity]
    silver: dict[str, DataFrame]
    refs: DataFrame          # every record (silver hot and cold, and with_archive the archive zone's)
    selected: DataFrame      # past the age and under no hold: table, record_id, ref, tokens, month
    held_records: int        # past the age but held
    held: DataFrame | None   # every record a hold covers, whatever its age (``ref``)


@dataclass
class Holds:
    """Every record with its age's verdict at ``day`` (``refs``) and what the legal holds cover:
    built once per lake state and reused by whatever asks the same question of it (the held count
    before destroy and destroy's selection; the status row's overdue and held counts)."""
    entities: dict[str, Entity]
    silver: dict[str, DataFrame]
    refs: DataFrame
    held_refs: DataFrame | None     # records a record-level hold covers (``ref``)
    held_tok: DataFrame | None      # tokens a token-level hold covers (``token``)
    asked: tuple = ()               # (day, age, with_archive) it answers for

    def covered(self) -> DataFrame | None:
        """Every record of ``refs`` some hold covers, whatever its age (``ref``, distinct)."""
        covered = []
        if self.held_refs is not None:
            covered.append(self.refs.join(self.held_refs.select("ref").distinct(), "ref", "left_semi").select("ref"))
        if self.held_tok is not None:
            covered.append(self.refs.select("ref", F.explode("tokens").alias("token")).join(self.held_tok, "token")
                           .select("ref"))
        all_held = union_all(covered)
        return None if all_held is None else all_held.distinct()


def holds_at(spark, settings: Settings, day: date, policy: Policy, keyring: Keyring, age: str = "destroy", *,
             with_archive: bool = True) -> Holds | None:
    """Read the lake's records (silver hot and cold, ``with_archive`` the archive zone's too) and
    the holds on them, as of ``day`` for ``age``; None when there is no silver table."""
    entities = {e.table_name: e for e in catalog().entities()}
    silver = read_all(spark, settings, entities, age)
    parts = []
    for t, df in silver.items():
        parts.append((t, df))
        if with_archive and (arch := read_archived(spark, settings, f"silver.{t}")) is not None:
            parts.append((t, arch))
    refs = union_all(silver_refs(df, entities[t], policy.classes[entities[t].retention_class], day, keyring, age)
                     for t, df in parts)
    if refs is None:
        return None
    # cut the lineage: every later plan (the destroy job builds dozens on these) would otherwise
    # re-analyse the union of every table's read, which costs minutes of driver time per plan
    refs = refs.localCheckpoint(eager=True)
    holds, held_parts = [], []
    for h in policy.holds:
        layer, name = h.table.split(".", 1)
        # hot and cold: an open incident moved to the cold tier still holds (the retention gate caught it)
        df = unified(spark, settings, layer, name)
        if df is None:
            continue
        holds.append((h, df))
        if h.record and layer == "silver":
            held_parts.append(df.filter(h.when).select(entity_ref(entities[name]).alias("ref")))
    held_refs = union_all(held_parts)
    held_tok = held_tokens(holds)
    if held_refs is not None:
        held_refs = held_refs.localCheckpoint(eager=True)
    if held_tok is not None:
        held_tok = held_tok.localCheckpoint(eager=True)
    return Holds(entities, silver, refs, held_refs, held_tok, (day, age, with_archive))


def _reuse(h: Holds | None | object, day: date, age: str, with_archive: bool) -> Holds | None | object:
    """``h`` if it was built for this very question, else ``ASK`` (build it)."""
    if h is ASK or h is None or h.asked == (day, age, with_archive):
        return h
    raise ValueError(f"holds built for {h.asked} reused for {(day, age, with_archive)}")


ASK = object()          # (the default of ``holds``) not given: read the lake


def select_records(spark, settings: Settings, day: date, policy: Policy, keyring: Keyring, age: str, *,
                   with_archive: bool = False, holds: Holds | None | object = ASK) -> Selection | None:
    """The records past ``age`` (``archive`` or ``destroy``) at ``day`` that no legal hold covers
    (from ``holds`` when the caller has just built them for the same question)."""
    h = _reuse(holds, day, age, with_archive)
    if h is ASK:
        h = holds_at(spark, settings, day, policy, keyring, age, with_archive=with_archive)
    if h is None:
        return None
    selected = destroyed_records(h.refs, h.held_refs, h.held_tok).dropDuplicates(["ref"]).localCheckpoint(eager=True)
    held = h.refs.filter("due").select("ref").distinct().count() - selected.count()
    return Selection(h.entities, h.silver, h.refs, selected, held, h.covered())


def archive_tables(spark, settings: Settings, sel: Selection) -> dict[str, tuple]:
    """What an archive batch holds for a selection: per ``layer.table``, (rows, count, months of the
    lifecycle date) — each selected silver record, and every delivered bronze version of it."""
    tables = {}
    for t, df in sel.silver.items():
        chosen = sel.selected.filter(F.col("table") == t)
        rows = df.join(chosen.select("record_id"), "record_id", "left_semi")
        if not (n := rows.count()):
            continue
        months = sorted(r[0] for r in chosen.select("month").distinct().collect() if r[0])
        tables[f"silver.{t}"] = (rows, n, months)
        if (b := read_if_exists(spark, settings, "bronze", t)) is not None:
            versions = delivered_versions(b, sel.entities[t], chosen)
            tables[f"bronze.{t}"] = (versions, versions.count(), months)
    return tables

# ---------------------------------------------------------------- tiering and the retention status

def month_reads_of(spark, settings: Settings, tables: list[str], as_of: date,
                   window_days: int) -> dict[str, dict[str, int]]:
    """Reads by people (any role but the pipeline's) of each month of each of ``tables`` in the
    window ``(as_of - window_days, as_of]`` (table → month → reads), from one pass over the log;
    a whole-table read (``*``) counts for every month."""
    p = settings.table_path(*ACCESS_LOG)
    if not table_exists(spark, p):
        return {t: {} for t in tables}
    start = datetime.combine(as_of - timedelta(days=window_days), time.max)
    end = datetime.combine(as_of, time.max)
    ev = (read_table(spark, p).filter(F.col("table").isin(list(tables)) & (F.col("role") != PIPELINE_ROLE)
                                      & (F.col("at") > F.lit(start)) & (F.col("at") <= F.lit(end)))
          .select("table", F.explode(F.split(F.coalesce("partition", F.lit("*")), ",")).alias("m")))
    counts: dict[str, dict[str, int]] = {t: {} for t in tables}
    for r in ev.groupBy("table", "m").agg(F.count("*").alias("n")).collect():
        counts[r["table"]][r["m"]] = r["n"]
    out = {}
    for t, c in counts.items():
        everything = c.pop("*", 0)
        out[t] = {"*": everything, **{m: n + everything for m, n in c.items()}}
    return out


STATUS = ("ops", "retention_status")


def held_count(spark, settings: Settings, policy: Policy, keyring: Keyring, day: date, *,
               holds: Holds | None | object = ASK) -> int:
    """How many records (hot, cold or archived) legal holds cover now (``holds``: built for
    ``holds_at``'s defaults, the same question, just before)."""
    h = _reuse(holds, day, "destroy", True)
    if h is ASK:
        h = holds_at(spark, settings, day, policy, keyring)
    covered = None if h is None else h.covered()
    return 0 if covered is None else covered.count()


def overdue_count(spark, settings: Settings, policy: Policy, keyring: Keyring, day: date, stage: str, *,
                  holds: Holds | None | object = ASK) -> int:
    """Records still where ``stage`` should have moved them at ``day``: hot rows of months that
    belong in the cold tier; live records past their archive age; records anywhere (live, cold,
    archive) past their destruction age — none of them under a hold."""
    if stage == "tier":
        n = 0
        entities = catalog().entities()
        reads = month_reads_of(spark, settings, [f"silver.{e.table_name}" for e in entities], day,
                               policy.tiering.window_days)
        for e in entities:
            hot = read_if_exists(spark, settings, "silver", e.table_name)
            if hot is None:
                continue
            n += cold_candidates(hot, e, policy.classes[e.retention_class], day, reads[f"silver.{e.table_name}"],
                                 policy.tiering.keep_hot_reads, keyring).count()
        return n
    sel = select_records(spark, settings, day, policy, keyring, stage, with_archive=stage == "destroy", holds=holds)
    return 0 if sel is None else sel.selected.count()


def record_status(spark, settings: Settings, as_of: str, stage: str, *, held_before: int, verified: bool,
                  detail: str | None, policy: Policy, keyring: Keyring) -> dict:
    """One row of ``ops.retention_status`` for (as-of, stage): what is overdue after the stage, the
    records under hold before and after it, whether the stage was verified. Gated by its suite."""
    day = date.fromisoformat(as_of)
    # after destroy both counts ask the same question of the lake (destruction age, archive too)
    h = holds_at(spark, settings, day, policy, keyring) if stage == "destroy" else ASK
    row = dict(batch_date=day, stage=stage,
               overdue=overdue_count(spark, settings, policy, keyring, day, stage, holds=h),
               held_before=held_before, held_after=held_count(spark, settings, policy, keyring, day, holds=h),
               verified=verified, detail=(detail or "")[:2000], recorded_at=datetime.now())
    write_table(rows_frame(spark, "ops.retention_status", [row]), settings.table_path(*STATUS), mode="replace",
                replace_where=f"batch_date = DATE'{as_of}' AND stage = '{stage}'",
                comment="retention stages: overdue records after each stage, records under hold before/after")
    return {k: v for k, v in row.items() if k not in ("batch_date", "recorded_at")}


def retention_task(spark, settings: Settings, stage: str, as_of: str, run, *, record: bool = True) -> dict:
    """A retention stage as the runner calls it: the records under legal hold counted before it,
    ``run(keyring, policy, holds)`` (the stage's summary dict; ``holds``, what the count was made
    from, answers destroy's own selection), then, unless ``record`` is false (destroy: its row
    comes after the proof), the stage's status row for the gate."""
    keyring, policy = Keyring.load(settings.key_dir), load_policy()
    day = date.fromisoformat(as_of)
    holds = holds_at(spark, settings, day, policy, keyring)
    held_before = held_count(spark, settings, policy, keyring, day, holds=holds)
    out = run(keyring, policy, holds)
    out["held_before"] = held_before
    if record:
        out["status_row"] = record_status(spark, settings, as_of, stage, held_before=held_before, verified=True,
                                          detail=json.dumps(out, default=str), policy=policy, keyring=keyring)
    return out
