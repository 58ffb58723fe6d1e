"""Stage sub-commands of the ``shuzhi`` CLI (the same job functions Airflow tasks call).

Every argument is checked by ``check_usage`` before a command starts Spark: a bad one is one
``error:`` line on stderr and exit code 2 (``fail``), in well under Spark's start-up time.
"""
from __future__ import annotations

import getpass
import json
import os
import re
import sys
from pathlib import Path

from pyspark.errors import PySparkException
from rich import box
from rich.console import Console
from rich.table import Table

from . import catalogue, cockpit_report, exports, feedback, workflow
from . import night as night_cmd
from .access import Reader, check_role, check_table, check_table_name, lake_tables, read
from .archive import MANIFEST, ArchiveCorrupt, archive_root
from .demo import delivered_nights, run_demo
from .errors import DeliveryRejected, DestructionNotProven, GateFailed, ShuzhiError, UsageError
from .exports import check_filters, check_source, parse_night
from .gates import check_gate_table
from .reports import night_summary, render_summary
from .spark import get_spark
from .tasks import clean, gate, ingest, restore, retention_stage, verify

# Commands that need an existing lake: they read it (or, for the retention stages and the gate,
# act on what it holds) and must never create one at a mistyped SHUZHI_HOME.
NEEDS_LAKE = {"summary", "rules", "export", "query", "gate", "restore", "tier", "archive", "destroy", "conflicts",
              "report"}


def _spark(settings):
    return get_spark(settings)


# ---------------------------------------------------------------- argument checks (no Spark)

def check_usage(settings, a) -> None:
    """Raise ``UsageError`` (one line naming what was given and what is allowed) for an argument
    the command cannot use: dates (YYYY-MM-DD, a real date), sources, gated tables, lake tables,
    roles, months, archive batches — and a lake that does not exist, for the
    commands of ``NEEDS_LAKE``. Reads only files and ``conf/``; never starts Spark."""
    cmd = a.cmd
    if getattr(a, "start", None) is not None:
        parse_night(a.start, "--start")
    for attr in ("residents", "nights"):
        if getattr(a, attr, 1) < 1:
            raise UsageError(f"--{attr} {getattr(a, attr)} must be at least 1")
    if cmd == "ingest":
        check_source(a.source)
    if getattr(a, "batch_date", None) is not None:
        parse_night(a.batch_date, "batch date")
    if getattr(a, "through", None) is not None:
        parse_night(a.through, "--through")
        night_cmd.nights_between(a.batch_date, a.through)
    if getattr(a, "as_of", None) is not None:
        parse_night(a.as_of, "--as-of")
    if cmd == "gate":
        check_gate_table(a.table)
    if cmd == "query":
        check_table_name(a.table)
        Reader.from_env(a.who, a.role)                       # the role, also from $SHUZHI_ROLE
        for m in a.month or []:
            _check_month(m)
        if a.limit < 0:
            raise UsageError(f"--limit {a.limit} must be 0 or more")
    if cmd == "export":
        check_filters(a.what, night=a.night, status=getattr(a, "status", None), rule=a.rule,
                      source=getattr(a, "source", None))
        if a.what == "feedback":
            feedback.check_department(a.department)
        Reader.from_env(role=os.environ.get("SHUZHI_ROLE") or "governance_office")
    if cmd in ("rules", "report"):
        parse_night(a.night)
    if cmd == "conflicts":
        _check_conflicts(a)
    if cmd == "demo":
        for night in a.night or []:
            parse_night(night)
        if not (a.night or delivered_nights(settings)):
            raise UsageError(f"no deliveries in {settings.landing}; the department simulator writes some "
                             f"(`feedsim generate`; `make demo` generates and runs them)")
    if cmd not in NEEDS_LAKE:
        return
    check_lake(settings)
    if cmd == "gate":
        if a.table not in lake_tables(settings):
            raise UsageError(f"table {a.table} does not exist yet in the lake at {settings.lake} (the stage that "
                             f"writes it has not run); tables: {', '.join(lake_tables(settings))}")
    if cmd == "query":
        check_table(settings, a.table)
    if cmd == "restore":
        _check_batch(settings, a.batch_id)


def check_lake(settings) -> None:
    if settings.lake_exists():
        return
    if os.environ.get("SHUZHI_LAKE"):
        where = f"SHUZHI_LAKE={os.environ['SHUZHI_LAKE']}"
    elif os.environ.get("SHUZHI_HOME") is None:
        where = f"SHUZHI_HOME unset, default {settings.home}"
    else:
        where = f"SHUZHI_HOME={os.environ['SHUZHI_HOME'] or '(empty)'}"
    raise UsageError(f"no lake at {settings.lake} ({where}); run the demo or ingest first")


def _check_month(month: str) -> None:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise UsageError(f"--month {month!r} is not a month (expected YYYY-MM, e.g. 2026-10)")


def _check_conflicts(a) -> None:
    """``shuzhi conflicts …``: the id's form, department, reason, status, role and a required
    comment (``conf/workflow.yaml``); whether the conflict exists and may take the action is
    answered by ``workflow.act`` (it needs the register)."""
    wf = workflow.load_workflow()
    role = a.role or wf.office_role
    if a.wf_cmd == "list":
        check_role(role)
        if a.status is not None:
            workflow.check_status(a.status)
        if a.department is not None:
            workflow.check_department(a.department)
        if a.limit < 1:
            raise UsageError(f"--limit {a.limit} must be at least 1")
        return
    workflow.check_conflict_id(a.conflict_id)
    workflow.check_acting_role(wf, role)
    if a.wf_cmd == "assign":
        workflow.check_department(a.to)
    if a.wf_cmd == "resolve":
        workflow.check_reason(wf, a.reason)
    workflow.check_comment(wf, a.conflict_id, a.wf_cmd, getattr(a, "reason", None), a.comment)


def _check_batch(settings, batch_id: str) -> None:
    root = archive_root(settings)
    if not (root / batch_id / MANIFEST).is_file():
        batches = sorted(p.parent.name for p in root.glob(f"*/{MANIFEST}"))
        raise UsageError(f"no archive batch {batch_id!r} in {root}; batches: {', '.join(batches) or 'none'}")


# ---------------------------------------------------------------- commands

def tier_summary(res: dict) -> str:
    """``shuzhi tier``'s one screen: what moved, and per table with cold months how many and their
    span, the reads counted in the window. (``--json`` prints the whole result.)

    >>> print(tier_summary({"as_of": "2028-06-01", "status": "tiered", "held_before": 2,
    ...     "demoted": {"silver.police_incidents": 40}, "promoted": {},
    ...     "cold_months": {"silver.police_incidents": ["2026-01", "2026-02", "2026-03"]},
    ...     "reads": {"silver.police_incidents": {"2026-01": 1, "2026-04": 6}}, "status_row": {"detail": "{}"}}))
    tier as of 2028-06-01: tiered — 40 rows hot → cold, 0 cold → hot; 2 records under legal hold
      table                    hot→cold  cold→hot  cold months               reads in window
      silver.police_incidents        40         0  3 (2026-01 … 2026-03)                   7
    """
    tables = sorted(set(res.get("demoted", {})) | set(res.get("promoted", {})) | set(res.get("cold_months", {})))
    lines = [f"tier as of {res['as_of']}: {res['status']} — {sum(res.get('demoted', {}).values()):,} rows hot → cold, "
             f"{sum(res.get('promoted', {}).values()):,} cold → hot; {res.get('held_before', 0):,} records under "
             f"legal hold"]
    if tables:
        w = max(len("table"), *(len(t) for t in tables))
        lines.append(f"  {'table':<{w}}  hot→cold  cold→hot  {'cold months':<24}  reads in window")
        for t in tables:
            months = sorted(res.get("cold_months", {}).get(t, []))
            span = f"{len(months)} ({months[0]} … {months[-1]})" if months else "0"
            lines.append(f"  {t:<{w}}  {res.get('demoted', {}).get(t, 0):>8,}  {res.get('promoted', {}).get(t, 0):>8,}"
                         f"  {span:<24}  {sum(res.get('reads', {}).get(t, {}).values()):>15,}")
    return "\n".join(lines)


SUMMARIES = {"tier": tier_summary}


def _run_stage(label: str, fn, *args, render=None) -> int:
    """Run one stage with a progress display (on stderr); data faults print their message, not a
    trace. The result is printed by ``render`` (one screen) or as JSON."""
    with Console(stderr=True).status(f"{label} …"):
        try:
            res = fn(*args)
        except DeliveryRejected as rej:
            print(f"REJECTED {rej}")
            return 3
        except GateFailed as exc:
            print(f"GATE FAILED {exc}")
            return 4
    print(render(res) if render else json.dumps(res, ensure_ascii=False, indent=1))
    return 0


def cmd_demo(settings, a) -> int:
    # Airflow's task logs at INFO drown the summary; a `shuzhi airflow -- dags test …` keeps them.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    res = run_demo(settings, a.night or delivered_nights(settings))
    print(f"cockpit (the office's report of the last night; index.html beside it): {res['cockpit']}")
    return 1 if res["failed"] else 0


def cmd_ingest(settings, a) -> int:
    return _run_stage(f"ingesting {a.source}/{a.batch_date}", ingest, a.source, a.batch_date, settings)


def cmd_clean(settings, a) -> int:
    return _run_stage(f"cleaning {a.batch_date}", clean, a.batch_date, settings)


def cmd_verify(settings, a) -> int:
    return _run_stage(f"cross-verifying {a.batch_date}", verify, a.batch_date, settings)


def cmd_retention(settings, a) -> int:
    """``shuzhi tier|archive|destroy --as-of D``: one retention stage without Airflow."""
    try:
        return _run_stage(f"{a.cmd} as of {a.as_of}", retention_stage, a.cmd, a.as_of, settings,
                          render=None if a.json else SUMMARIES.get(a.cmd))
    except DestructionNotProven as exc:
        print(f"NOT PROVEN {exc}")
        return 5


def cmd_restore(settings, a) -> int:
    try:
        out = restore(settings, a.batch_id)
    except ArchiveCorrupt as exc:
        return fail(str(exc))
    print(json.dumps(out, ensure_ascii=False))
    return 0


def cmd_query(settings, a) -> int:
    """Read a table through the read interface (logged in ops.access_log) and print rows."""
    reader = Reader.from_env(a.who, a.role)
    try:
        df = read(_spark(settings), settings, a.table, reader=reader, months=a.month or None, where=a.where)
    except PySparkException as exc:          # a --where Spark cannot parse or resolve
        return fail(f"--where {a.where!r}: {str(exc).strip().splitlines()[0]}")
    if df is None:
        return fail(f"no table {a.table}")
    cols = [c for c, t in df.dtypes if t != "binary"]
    for r in df.select(*cols).limit(a.limit).collect():
        print(json.dumps(r.asDict(), ensure_ascii=False, default=str))
    return 0


def cmd_gate(settings, a) -> int:
    return _run_stage(f"gate {a.table} {a.batch_date}", gate, a.table, a.batch_date, settings)


def cmd_summary(settings, a) -> int:
    render_summary(night_summary(_spark(settings), settings), settings)
    return 0


def fail(msg) -> int:
    """A usage or data fault as one line on stderr; exit code 2."""
    print(f"error: {msg}", file=sys.stderr)
    return 2


def cmd_export(settings, a) -> int:
    out = Path(a.out)
    status, source = getattr(a, "status", None), getattr(a, "source", None)
    try:
        exports.check_filters(a.what, night=a.night, status=status, rule=a.rule, source=source)
        with Console(stderr=True).status(f"exporting {a.what} …"):
            spark = _spark(settings)
            if a.what == "conflicts":
                n = exports.export_conflicts(spark, settings, out, night=a.night, status=status, rule=a.rule)
            elif a.what == "feedback":
                n = feedback.export_feedback(spark, settings, out, department=a.department, night=a.night)
            else:
                n = exports.export_quarantine(spark, settings, out, night=a.night, source=source, rule=a.rule)
                s_out = exports.summary_path(out)
                m = exports.export_quarantine_summary(spark, settings, s_out, night=a.night, source=source,
                                                      rule=a.rule)
    except (ShuzhiError, OSError) as exc:
        return fail(exc)
    print(f"{a.what}: {n} rows → {out.resolve()}")
    if a.what == "quarantine":
        print(f"summary (by night, source, reason): {m} rows → {s_out.resolve()}")
    return 0


def cmd_rules(settings, a) -> int:
    try:
        exports.parse_night(a.night)
        with Console(stderr=True).status("counting rule hits …"):
            report = exports.rules_report(_spark(settings), settings, a.night)
        n = exports.export_rules(report, Path(a.csv)) if a.csv else None
    except (ShuzhiError, OSError) as exc:
        return fail(exc)
    console = Console() if sys.stdout.isatty() else Console(width=160)
    t = Table(title=f"rules — hits {'on ' + a.night if a.night else 'over all nights'}", title_justify="left")
    for col in ("id", "action", "severity", "hits", "description (zh)"):
        t.add_column(col, justify="right" if col == "hits" else "left")
    for r in report:
        t.add_row(r["id"], r["action"] + ("" if r["enabled"] else " (disabled)"), r["severity"], f"{r['hits']:,}",
                  r["zh"])
    console.print(t)
    if a.csv:
        print(f"rules: {n} rows → {Path(a.csv).resolve()}")
    return 0


def cmd_conflicts(settings, a) -> int:
    """``shuzhi conflicts ack|assign|resolve ID …`` (one event of ops.conflict_events) and
    ``shuzhi conflicts list`` (a one-screen table: masked identity, nothing L3/L4; why a conflict
    reopened is in ``workflow.state_frame`` / ``conflict_summary``)."""
    wf = workflow.load_workflow()
    who = a.by or os.environ.get("USER") or getpass.getuser()
    role = a.role or wf.office_role
    try:
        if a.wf_cmd == "list":
            with Console(stderr=True).status("reading the conflicts register …"):
                total, rows = workflow.list_conflicts(_spark(settings), settings, wf, Reader(who, role),
                                                      status=a.status, department=a.department, limit=a.limit)
            _print_conflicts(total, rows, a)
            return 0
        with Console(stderr=True).status(f"{a.wf_cmd} {a.conflict_id} …"):
            res = workflow.act(_spark(settings), settings, wf, a.conflict_id, a.wf_cmd, who=who, role=role,
                               department=getattr(a, "to", None), reason=getattr(a, "reason", None),
                               comment=a.comment)
    except ShuzhiError as exc:
        return fail(exc)
    ev = res["event"]
    extra = {"assign": f" to {ev['department']}", "resolve": f" as {ev['reason']}"}.get(ev["action"], "")
    print(f"conflict {ev['conflict_id']}: {ev['action']}{extra} by {ev['who']} ({ev['role']}) — "
          f"{res['was']} → {res['state']} (event {ev['event_id']})")
    return 0


def _print_conflicts(total: int, rows: list[dict], a) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=160)
    filters = ", ".join(f for f in (a.status, a.department) if f)
    t = Table(title=f"conflicts{' — ' + filters if filters else ''}: {total:,} (oldest first"
                    f"{f', first {len(rows)}' if total > len(rows) else ''})", title_justify="left",
              box=box.SIMPLE_HEAD)
    # the id, masked subject and state never wrap nor shorten; the rest folds to one screen's width
    for col, keep in (("conflict id", True), ("rule", False), ("sev", False), ("departments", False),
                      ("subject (masked)", True), ("state", True), ("assigned", False), ("first seen", True),
                      ("age", True), ("resolution", False)):
        t.add_column(col, justify="right" if col == "age" else "left", no_wrap=keep, overflow="fold")
    for r in rows:
        note = r["resolution"] or ""
        if r["reopened"] and r["state"] != "reopened":
            note = "reopened earlier"
        t.add_row(r["conflict_id"], r["rule_id"], r["severity"] or "", ",".join(r["departments"] or []),
                  r["subject_masked"] or "", r["state"], r["assigned_to"] or "", str(r["first_seen"] or ""),
                  str(r["age_days"] if r["age_days"] is not None else ""), note)
    console.print(t)


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the DAGs through Airflow for each night delivered in the landing zone, "
                                    "summarise (deliveries to try: `feedsim generate`, or `feedsim demo`)")
    p.add_argument("--night", action="append", metavar="D", help="only this night (repeatable; default: all)")
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("ingest", help="ingest one delivery without Airflow")
    p.add_argument("source")
    p.add_argument("batch_date")
    p.set_defaults(fn=cmd_ingest)
    p = sub.add_parser("clean", help="clean stage (bronze → silver) for a batch date without Airflow")
    p.add_argument("batch_date")
    p.set_defaults(fn=cmd_clean)
    p = sub.add_parser("verify", help="cross-verify stage (silver → gold) for a batch date without Airflow")
    p.add_argument("batch_date")
    p.set_defaults(fn=cmd_verify)
    for stage, help_ in (("tier", "place month partitions in the hot or cold tier by age and reads"),
                         ("archive", "move records past their archive age into the archive zone (manifest per batch)"),
                         ("destroy", "destroy what is past its retention, byte-scan the lake for it, certify it")):
        p = sub.add_parser(stage, help=f"{help_} (conf/retention.yaml)")
        p.add_argument("--as-of", required=True, help="the date ages are counted to (YYYY-MM-DD)")
        p.add_argument("--json", action="store_true", help="print the whole result as JSON")
        p.set_defaults(fn=cmd_retention)
    p = sub.add_parser("restore", help="verify an archive batch against its manifest and load it into restored/")
    p.add_argument("batch_id")
    p.set_defaults(fn=cmd_restore)
    p = sub.add_parser("query", help="read a table (hot and cold unified); the read is logged in ops.access_log")
    p.add_argument("table", help="<layer>.<name>, e.g. silver.police_incidents")
    p.add_argument("--month", action="append", help="month of the lifecycle date (YYYY-MM); repeatable")
    p.add_argument("--where", help="SQL filter")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--who", help="default: $SHUZHI_USER or the login name")
    p.add_argument("--role", help="a role of conf/roles.yaml (default: $SHUZHI_ROLE or data_engineer)")
    p.set_defaults(fn=cmd_query)
    p = sub.add_parser("gate", help="run one table's gate for a batch date without Airflow")
    p.add_argument("table", help="e.g. bronze.police_population")
    p.add_argument("batch_date", nargs="?")
    p.set_defaults(fn=cmd_gate)
    p = sub.add_parser("summary", help="per night and source: delivered / loaded / quarantined / gates")
    p.set_defaults(fn=cmd_summary)
    p = sub.add_parser("export", help="CSV for the office (UTF-8 with BOM): the conflicts register or the quarantine")
    kinds = p.add_subparsers(dest="what", required=True)
    for what, help_ in (
        ("conflicts", "the conflicts register (gold.conflicts), identity numbers masked"),
        ("quarantine", "ingest + clean quarantine, and <out stem>_summary.csv (by night, source, reason)"),
    ):
        k = kinds.add_parser(what, help=help_)
        k.add_argument("--out", required=True, metavar="FILE", help="CSV file to write (replaced atomically)")
        k.add_argument("--night", metavar="D", help="batch date YYYY-MM-DD" + (" (conflicts first seen by then)"
                                                                             if what == "conflicts" else ""))
        k.add_argument("--rule", metavar="R", help="rule id / reason code")
        if what == "conflicts":
            k.add_argument("--status", metavar="S", help="open | resolved")
        else:
            k.add_argument("--source", metavar="S", help="department, e.g. police")
        k.set_defaults(fn=cmd_export)
    k = kinds.add_parser("feedback", help="one department's records of a night that were quarantined, corrected "
                                          "or flagged by a rule, or named by an open conflict (数据回流)")
    k.add_argument("--department", required=True, metavar="S", help="department, e.g. police")
    k.add_argument("--night", required=True, metavar="D", help="batch date YYYY-MM-DD")
    k.add_argument("--out", required=True, metavar="FILE", help="CSV file to write (replaced atomically)")
    k.set_defaults(fn=cmd_export, rule=None)
    p = sub.add_parser("rules", help="the rule catalogue with its hit counts (ops.rule_hits)")
    p.add_argument("--night", metavar="D", help="hits of one batch date (default: all nights)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV (UTF-8 with BOM)")
    p.set_defaults(fn=cmd_rules)
    night_cmd.register(sub)
    catalogue.register(sub)
    cockpit_report.register(sub)
    p = sub.add_parser("conflicts", help="the office's conflict workflow: ack, assign, resolve, list "
                                         "(ops.conflict_events, conf/workflow.yaml)")
    acts = p.add_subparsers(dest="wf_cmd", required=True)
    for act, help_ in (("ack", "acknowledge a conflict"), ("assign", "assign a conflict to a department"),
                       ("resolve", "resolve a conflict with a reason"),
                       ("list", "the conflicts in their workflow state (masked identity)")):
        k = acts.add_parser(act, help=help_)
        if act != "list":
            k.add_argument("conflict_id", help="24 hex characters (`shuzhi conflicts list`)")
            k.add_argument("--comment", metavar="T")
        if act == "assign":
            k.add_argument("--to", required=True, metavar="DEPT", help="department, e.g. police")
        if act == "resolve":
            k.add_argument("--reason", required=True, metavar="R", help="a reason of conf/workflow.yaml")
        if act == "list":
            k.add_argument("--status", metavar="S", help="open | acknowledged | assigned | resolved | reopened")
            k.add_argument("--department", metavar="DEPT", help="involving or assigned to it")
            k.add_argument("--limit", type=int, default=20)
        k.add_argument("--by", help="who acts (default: $USER)")
        k.add_argument("--role", help="a role of conf/roles.yaml (default: conf/workflow.yaml office_role)")
        k.set_defaults(fn=cmd_conflicts)
