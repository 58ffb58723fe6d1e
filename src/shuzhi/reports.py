"""What the office and the engineers read at the end of a run (`shuzhi summary`, the demo's closing
tables): per night and department — delivered, quarantined at ingest and at clean, rejected
deliveries, conflicts open / new / resolved, the quality score — and, in a table of their own,
the gates per layer. Everything comes from the lake's own tables, never from a generator.

A department is a source of ``schemas/feeds.yaml`` (公安 police, 民政 civil_affairs, …): a
department's several entities (population, houses, incidents) are added up, and a gate table is
never a row of the department table.
"""
from __future__ import annotations

import sys
from collections import defaultdict

from pyspark.sql import functions as F
from rich.console import Console
from rich.table import Table

from .access import read_if_exists
from .cockpit import DEPARTMENTS
from .config import Settings
from .gates import data_docs_index, latest_runs

GATE_OUTCOMES = ("passed", "warned", "failed")


def _department() -> dict:
    return {"delivered": 0, "loaded": 0, "q_ingest": 0, "q_clean": 0, "rejected": [], "balanced": True,
            "encodings": set(), "open": 0, "new": 0, "resolved": 0, "score": None}


def night_summary(spark, settings: Settings) -> dict[str, dict]:
    """``{"departments": {night: {department: {...}}}, "gates": {night: {layer: {...}}}}``.

    Per department and night: ``delivered`` (manifest rows of the night's latest accepted
    delivery; a corrected re-delivery replaces the earlier one), ``loaded`` (rows that reached
    bronze), ``q_ingest`` / ``q_clean`` (records in ``bronze.quarantine`` / ``silver.quarantine``),
    ``rejected`` (reason codes of rejected deliveries), conflicts of ``gold.conflicts`` naming the
    department — ``new`` (first seen that night), ``resolved`` (no longer observed that night),
    ``open`` (at the end of that night: first seen on or before it and not resolved by it) —
    and the department's overall quality score (``ops.quality_scores``).
    Per layer and night: how many tables' latest gate run passed, warned or failed, and which
    did not pass."""
    deps: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(_department))
    led = read_if_exists(spark, settings, "ops", "deliveries")
    if led is not None:
        latest = (led.filter(F.col("status") == "accepted").groupBy("source", "batch_date")
                  .agg(F.max_by("delivery_id", "recorded_at").alias("delivery_id")))
        for r in led.join(latest, ["source", "batch_date", "delivery_id"]).collect():
            s = deps[r["batch_date"].isoformat()][r["source"]]
            s["delivered"] += r["manifest_rows"] or 0
            s["loaded"] += r["bronze_rows"] or 0
            s["balanced"] &= bool(r["balanced"])
            if r["actual_encoding"] and r["declared_encoding"] and r["actual_encoding"] != r["declared_encoding"]:
                s["encodings"].add(f"{r['file']}: {r['declared_encoding']}→{r['actual_encoding']}")
        for r in (led.filter(F.col("status") == "rejected").select("source", "batch_date", "delivery_id", "reason_code")
                  .distinct().orderBy("delivery_id").collect()):
            deps[r["batch_date"].isoformat()][r["source"]]["rejected"].append(r["reason_code"])
    for key, layer in (("q_ingest", "bronze"), ("q_clean", "silver")):
        q = read_if_exists(spark, settings, layer, "quarantine")
        if q is not None:
            for r in q.groupBy("_source", "_batch_date").count().collect():
                deps[r["_batch_date"].isoformat()][r["_source"]][key] += r["count"]
    nights = sorted(deps)
    c = read_if_exists(spark, settings, "gold", "conflicts")
    if c is not None and nights:
        per_dept = c.select("first_seen", "resolved_on", F.explode("departments").alias("department"))
        night = F.col("night")
        grid = per_dept.crossJoin(spark.createDataFrame([(n,) for n in nights], "night string")
                                  .select(night.cast("date").alias("night")))   # every night in one pass
        for r in grid.groupBy("night", "department").agg(
                F.sum((F.col("first_seen") == night).cast("int")).alias("new"),
                F.sum((F.col("resolved_on") == night).cast("int")).alias("resolved"),
                F.sum(((F.col("first_seen") <= night)
                       & (F.col("resolved_on").isNull() | (F.col("resolved_on") > night))).cast("int"))
                .alias("open")).collect():
            if not (r["new"] or r["resolved"] or r["open"]):
                continue                                   # a department the night's register does not name
            deps[r["night"].isoformat()][r["department"]].update(
                new=int(r["new"] or 0), resolved=int(r["resolved"] or 0), open=int(r["open"] or 0))
    qs = read_if_exists(spark, settings, "ops", "quality_scores")
    if qs is not None:
        for r in qs.filter(F.col("dimension") == "overall").select("night", "department", "score").collect():
            if r["night"].isoformat() in deps:
                deps[r["night"].isoformat()][r["department"]]["score"] = r["score"]
    return {"departments": {n: dict(sorted(v.items())) for n, v in sorted(deps.items())},
            "gates": gate_summary(spark, settings)}


def gate_summary(spark, settings: Settings) -> dict[str, dict[str, dict]]:
    """``{night: {layer: {"passed": n, "warned": n, "failed": n, "not_passed": ["x (warned)", …]}}}``
    from each table's latest gate run of the night (``ops.gate_results``)."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    g = read_if_exists(spark, settings, "ops", "gate_results")
    if g is None:
        return {}
    for r in sorted(latest_runs(g.filter(F.col("batch_date").isNotNull())).collect(), key=lambda r: r["table"]):
        outcome = r["outcome"]
        layer = r["table"].split(".", 1)[0]
        s = out[r["batch_date"].isoformat()].setdefault(layer, {**{o: 0 for o in GATE_OUTCOMES}, "not_passed": []})
        s[outcome] += 1
        if outcome != "passed":
            s["not_passed"].append(f"{r['table'].split('.', 1)[1]} ({outcome})")
    return {n: out[n] for n in sorted(out)}


def render_summary(summary: dict, settings: Settings, console=None) -> None:
    """The department table of each night, then the gates per layer, then where to look next."""
    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    for night, deps in summary["departments"].items():
        t = Table(title=f"batch {night} — 部门 departments", title_justify="left")
        for zh, en in (("部门", "department"), ("交付", "delivered"), ("入库隔离", "ingest q."),
                       ("清洗隔离", "clean q."), ("隔离合计", "quarantined"), ("拒收", "rejected"),
                       ("冲突 未决/新/解决", "open/new/resolved"),
                       ("质量分", "score"), ("备注", "notes")):
            t.add_column(f"{zh}\n{en}", justify="left" if zh in ("部门", "拒收", "备注") else "right",
                         no_wrap=zh == "部门")
        for dept, s in deps.items():
            q = s["q_ingest"] + s["q_clean"]
            share = f" ({q / s['delivered']:.1%})" if s["delivered"] else ""
            notes = "; ".join(sorted(s["encodings"])) + ("" if s["balanced"] else " UNBALANCED")
            score = "-" if s["score"] is None else f"{s['score']:.1f}"
            t.add_row(DEPARTMENTS.get(dept, dept), f"{s['delivered']:,}", f"{s['q_ingest']:,}", f"{s['q_clean']:,}",
                      f"{q:,}{share}", ", ".join(s["rejected"]) or "-", f"{s['open']:,}/{s['new']:,}/{s['resolved']:,}",
                      score, notes)
        console.print(t)
        gates = summary["gates"].get(night)
        if gates:
            g = Table(title=f"batch {night} — 质量门 gates (each table's latest run)", title_justify="left")
            for zh, en in (("层", "layer"), ("通过", "passed"), ("警告", "warned"), ("失败", "failed"),
                           ("未通过的表", "not passed")):
                g.add_column(f"{zh}\n{en}", justify="right" if en in GATE_OUTCOMES else "left")
            for layer, s in gates.items():
                g.add_row(layer, *(str(s[o]) for o in GATE_OUTCOMES), ", ".join(s["not_passed"]) or "-")
            console.print(g)
    console.print(f"lake:        {settings.lake}")
    console.print(f"data docs:   {data_docs_index(settings)}")
    console.print(f"audit:       {settings.table_path('ops', 'job_runs')}  (job runs)")
    console.print(f"             {settings.table_path('ops', 'deliveries')}  (delivery ledger, conservation)")
    console.print(f"             {settings.table_path('ops', 'gate_results')}  (gate results)")
