"""The conflict workflow's state — pure DataFrame → DataFrame, no reads, writes, clock or config.

A conflict of the register (``gold.conflicts``) is *observed* by the machine (its ``status``:
open while the nightly cross-verify still sees the contradiction, resolved once it does not);
the office *acts* on it (``ops.conflict_events``: ack, assign to a department, resolve with a
reason). ``workflow_state`` derives, per conflict, the state the office works with from the two,
and from the delivery ledger (``ops.deliveries``) for the reopen rule that waits for a fix:

- ``resolved``: the machine resolved it (whatever the events), or the office's last resolution
  still holds: ``never`` (duplicate) always; ``evidence_changed`` (false positive, accepted
  exception) while the sha256 of the register's evidence is the one resolved; ``observed_after_fix``
  (confirmed fixed at source) unless the register last saw the contradiction on a night after the
  batch date of the first accepted delivery, by one of the conflict's departments, made after the
  resolution (recorded after it, for a night after the one resolved: a re-delivered older night
  carries no fix).
- ``reopened``: the last resolution no longer holds, and nobody has acted since.
- ``assigned`` / ``acknowledged``: an assign (an ack) since the last resolution (all events when
  there is none); an assign wins over an ack.
- ``open``: none of these.

Times: a night's register is there on the morning after it, so hours are counted from
``first_seen + 1 day`` 00:00 (session time zone) to the first action of any kind (an assign or a
resolve acknowledges too) and to the resolution; a machine resolution is at ``resolved_on + 1
day`` 00:00. ``age_days``: from ``first_seen`` to the resolution's date, or to ``as_of`` (default:
the register's latest night) while unresolved.

    >>> sorted(DEFAULT_REOPEN) == sorted(REASONS)
    True
"""
from __future__ import annotations

from datetime import date
from typing import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

ACTIONS = ("ack", "assign", "resolve")
STATES = ("open", "acknowledged", "assigned", "resolved", "reopened")
REOPEN_RULES = ("evidence_changed", "observed_after_fix", "never")
REASONS = ("confirmed_fixed_at_source", "false_positive", "accepted_exception", "duplicate")
# issue 13's semantics; conf/workflow.yaml (`reasons.<r>.reopen`) is what the CLI passes in
DEFAULT_REOPEN = {"confirmed_fixed_at_source": "observed_after_fix", "false_positive": "evidence_changed",
                  "accepted_exception": "evidence_changed", "duplicate": "never"}
UNKNOWN_REASON_RULE = "evidence_changed"      # a reason no rule names: it holds only while nothing changed
MACHINE_RESOLUTION = "no_longer_observed"     # `resolution` of a conflict the machine resolved

EVENT_COLUMNS = ("event_id string, conflict_id string, action string, department string, reason string, "
                 "comment string, evidence_digest string, last_seen date, who string, role string, at timestamp")
DELIVERY_COLUMNS = "source string, batch_date date, status string, recorded_at timestamp"
STATE_COLUMNS = ("conflict_id", "rule_id", "severity", "departments", "first_seen", "last_seen", "status", "state",
                 "assigned_to", "resolution", "acknowledged_at", "resolved_at", "reopened", "reopen_reason",
                 "hours_to_acknowledge", "hours_to_resolve", "age_days")


def evidence_digest(col: Column) -> Column:
    """sha256 (hex) of the evidence text (UTF-8): what an event stores instead of the text."""
    return F.sha2(col, 256)


def _empty(spark, ddl: str) -> DataFrame:
    return spark.createDataFrame([], ddl)


def _night_morning(col: Column) -> Column:
    """00:00 of the day after night ``col`` (a date), a timestamp in the session time zone."""
    return F.date_add(col, 1).cast("timestamp")


def _hours(since: Column, until: Column) -> Column:
    return F.round((F.unix_timestamp(until) - F.unix_timestamp(since)) / F.lit(3600.0), 2)


def _reopen_rule(reason: Column, reopen: Mapping[str, str]) -> Column:
    if not reopen:
        return F.lit(UNKNOWN_REASON_RULE)
    m = F.create_map(*[x for k, v in sorted(reopen.items()) for x in (F.lit(k), F.lit(v))])
    return F.coalesce(m[reason], F.lit(UNKNOWN_REASON_RULE))


def _text(col: Column) -> Column:
    return F.coalesce(col.cast("string"), F.lit("?"))


def workflow_state(register_df: DataFrame, events_df: DataFrame | None, deliveries_df: DataFrame | None, *,
                   reopen: Mapping[str, str] | None = None, as_of: date | None = None) -> DataFrame:
    """Per conflict of ``register_df`` (``gold.conflicts``): its workflow state from the office's
    events (``ops.conflict_events``; None: none) and the delivery ledger (``ops.deliveries``; None:
    none), with ``STATE_COLUMNS``. ``reopen``: reason → reopen rule (``REOPEN_RULES``; default
    ``DEFAULT_REOPEN``); ``as_of``: the night ages are counted to (default: the register's latest).
    Events of a conflict the register does not hold, and actions other than ``ACTIONS``, are ignored.
    """
    spark = register_df.sparkSession
    reopen = DEFAULT_REOPEN if reopen is None else reopen
    events_df = events_df if events_df is not None else _empty(spark, EVENT_COLUMNS)
    deliveries_df = deliveries_df if deliveries_df is not None else _empty(spark, DELIVERY_COLUMNS)

    reg = register_df.select("conflict_id", "rule_id", "severity", "departments", "evidence", "first_seen",
                             "last_seen", "status", "resolved_on")
    ev = (events_df.filter(F.col("action").isin(*ACTIONS))
          .select("conflict_id", "event_id", "action", "department", "reason", "evidence_digest",
                  F.col("last_seen").alias("ev_last_seen"), "at")
          .join(reg.select("conflict_id"), "conflict_id", "left_semi"))

    # the conflict's last resolution (latest `at`, then event id), and what came after it
    last_resolve = (ev.filter(F.col("action") == "resolve").groupBy("conflict_id")
                    .agg(F.max(F.struct("at", "event_id", "reason", "evidence_digest", "ev_last_seen")).alias("r")))
    ev = ev.join(last_resolve, "conflict_id", "left")
    since = F.col("r").isNull() | (F.col("at") > F.col("r.at")) | (
        (F.col("at") == F.col("r.at")) & (F.col("event_id") > F.col("r.event_id")))
    per = ev.groupBy("conflict_id").agg(
        F.max("r").alias("r"),
        F.min("at").alias("acknowledged_at"),
        F.max(F.when(F.col("action") == "assign", F.struct("at", "event_id", "department"))).alias("last_assign"),
        F.max(F.when(since & F.col("r").isNotNull(), True)).alias("acted_since"),
        F.max(F.when(since & (F.col("action") == "assign"), True)).alias("assigned_since"),
        F.max(F.when(since & (F.col("action") == "ack"), True)).alias("acked_since"))

    # confirmed fixed at source: the first accepted delivery of a department after the resolution
    waiting = per.filter(F.col("r").isNotNull()
                         & (_reopen_rule(F.col("r.reason"), reopen) == "observed_after_fix"))
    deliveries = (deliveries_df.filter(F.col("status") == "accepted")
                  .select("source", "batch_date", "recorded_at").distinct())
    fix = (reg.select("conflict_id", F.explode("departments").alias("source"))
           .join(waiting.select("conflict_id", "r"), "conflict_id")
           .join(deliveries, "source")
           .filter((F.col("recorded_at") > F.col("r.at"))
                   & (F.col("r.ev_last_seen").isNull() | (F.col("batch_date") > F.col("r.ev_last_seen"))))
           .groupBy("conflict_id").agg(F.min(F.struct("batch_date", "source")).alias("fix")))

    df = reg.join(per, "conflict_id", "left").join(fix, "conflict_id", "left")
    if as_of is not None:
        df = df.withColumn("__as_of", F.lit(as_of).cast("date"))
    else:                                          # the register's latest night, one row
        df = df.crossJoin(F.broadcast(reg.agg(F.max(F.greatest("last_seen", "resolved_on")).alias("__as_of"))))

    rule = _reopen_rule(F.col("r.reason"), reopen)
    observed_after_fix = F.coalesce(F.col("fix").isNotNull() & (F.col("last_seen") > F.col("fix.batch_date")),
                                    F.lit(False))
    unchanged = evidence_digest(F.col("evidence")).eqNullSafe(F.col("r.evidence_digest"))
    holds = (F.when(rule == "never", True)
             .when(rule == "evidence_changed", unchanged)
             .otherwise(~observed_after_fix))
    has_r = F.col("r").isNotNull()
    acted_since = F.coalesce(F.col("acted_since"), F.lit(False))
    human_resolved = has_r & ~acted_since & holds
    reopened_now = has_r & ~acted_since & ~holds
    machine = F.col("status") == "resolved"
    df = (df.withColumn("__human", F.coalesce(human_resolved, F.lit(False)))
            .withColumn("__reopened_now", F.coalesce(reopened_now, F.lit(False)))
            .withColumn("__machine", F.coalesce(machine, F.lit(False)))
            .withColumn("__rule", rule))
    human, now_reopened, by_machine = F.col("__human"), F.col("__reopened_now"), F.col("__machine")
    state = (F.when(by_machine | human, "resolved").when(now_reopened, "reopened")
             .when(F.coalesce(F.col("assigned_since"), F.lit(False)), "assigned")
             .when(F.coalesce(F.col("acked_since"), F.lit(False)), "acknowledged")
             .otherwise("open"))
    df = df.withColumn("state", state)
    resolved = F.col("state") == "resolved"
    resolved_at = (F.when(human, F.col("r.at"))
                   .when(by_machine, _night_morning(F.col("resolved_on"))))
    reason_text = _text(F.col("r.reason"))
    why = (F.when(now_reopened & (F.col("__rule") == "evidence_changed"),
                  F.concat(F.lit("evidence changed since it was resolved as "), reason_text,
                           F.lit(" (evidence of night "), _text(F.col("r.ev_last_seen")), F.lit(")")))
           .when(now_reopened,
                 F.concat(F.lit("still observed on "), _text(F.col("last_seen")), F.lit(", after the "),
                          _text(F.col("fix.source")), F.lit(" delivery of "), _text(F.col("fix.batch_date")),
                          F.lit(", the first since it was resolved as "), reason_text))
           .otherwise(F.concat(F.lit("resolved as "), reason_text, F.lit(" on "), _text(F.to_date(F.col("r.at"))),
                               F.lit(", reopened, and acted on since"))))
    reopened = ~resolved & has_r
    origin = _night_morning(F.col("first_seen"))
    end = F.when(resolved, F.when(human, F.to_date(F.col("r.at"))).otherwise(F.col("resolved_on"))) \
        .otherwise(F.col("__as_of"))
    return df.select(
        "conflict_id", "rule_id", "severity", "departments", "first_seen", "last_seen", "status", "state",
        F.col("last_assign.department").alias("assigned_to"),
        F.when(human, F.col("r.reason")).when(by_machine, F.lit(MACHINE_RESOLUTION))
         .when(now_reopened, F.col("r.reason")).alias("resolution"),
        "acknowledged_at",
        F.when(resolved, resolved_at).alias("resolved_at"),
        reopened.alias("reopened"),
        F.when(reopened, why).alias("reopen_reason"),
        _hours(origin, F.col("acknowledged_at")).alias("hours_to_acknowledge"),
        F.when(resolved, _hours(origin, resolved_at)).alias("hours_to_resolve"),
        F.datediff(end, F.col("first_seen")).alias("age_days"))

