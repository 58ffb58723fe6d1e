"""What the office and the engineers read: per night and source — delivered, loaded,
quarantined by reason, rejected deliveries, gate outcomes — from the lake's own tables."""
from __future__ import annotations

import sys
from collections import defaultdict

from pyspark.sql import functions as F
from rich.console import Console
from rich.table import Table

from .config import Settings
from .delta import read_table, table_exists
from .gates import data_docs_index
from .schemas import catalog


def night_summary(spark, settings: Settings) -> dict[str, dict[str, dict]]:
    """``{batch_date: {source: {...}}}`` built from ops.deliveries, bronze.quarantine and ops.gate_results."""


    out: dict[str, dict[str, dict]] = defaultdict(lambda: defaultdict(lambda: {
        "kind": None, "delivered": 0, "loaded": 0, "quarantined": 0, "reasons": {}, "rejected": [],
        "gates": {"passed": 0, "warned": 0, "failed": 0}, "balanced": True, "encodings": set()}))
    led_path = settings.table_path("ops", "deliveries")
    if table_exists(spark, led_path):
        led = read_table(spark, led_path)
        # the latest accepted delivery per source and date (a corrected re-delivery replaces the earlier one)
        latest = (led.filter(F.col("status") == "accepted").groupBy("source", "batch_date")
                  .agg(F.max_by("delivery_id", "recorded_at").alias("delivery_id")))
        for r in led.join(latest, ["source", "batch_date", "delivery_id"]).collect():
            s = out[r["batch_date"].isoformat()][r["source"]]
            s["kind"] = r["kind"]
            s["delivered"] += r["manifest_rows"] or 0
            s["loaded"] += r["bronze_rows"] or 0
            s["quarantined"] += r["quarantined_rows"] or 0
            s["balanced"] &= bool(r["balanced"])
            if r["actual_encoding"] and r["declared_encoding"] and r["actual_encoding"] != r["declared_encoding"]:
                s["encodings"].add(f"{r['file']}: {r['declared_encoding']}→{r['actual_encoding']}")
        for r in (
            led.filter(F.col("status") == "rejected").select("source", "batch_date", "reason_code").distinct().collect()
        ):
            out[r["batch_date"].isoformat()][r["source"]]["rejected"].append(r["reason_code"])
    q_path = settings.table_path("bronze", "quarantine")
    if table_exists(spark, q_path):
        for r in read_table(spark, q_path).groupBy("_source", "_batch_date", "reason_code").count().collect():
            out[r["_batch_date"].isoformat()][r["_source"]]["reasons"][r["reason_code"]] = r["count"]
    g_path = settings.table_path("ops", "gate_results")
    if table_exists(spark, g_path):
        g = read_table(spark, g_path)
        latest = g.groupBy("table", "batch_date").agg(F.max_by("gate_run_id", "evaluated_at").alias("gate_run_id"))
        per_run = (
            g.join(latest, ["table", "batch_date", "gate_run_id"])
            .groupBy("table", "batch_date")
            .agg(
                F.sum(F.when(~F.col("success") & (F.col("severity") == "critical"), 1).otherwise(0)).alias("crit"),
                F.sum(F.when(~F.col("success") & (F.col("severity") == "warning"), 1).otherwise(0)).alias("warn"),
            )
        )

        source_of = {f"bronze.{e.table_name}": e.source for e in catalog().entities()}
        for r in per_run.collect():
            if r["batch_date"] is None:
                continue
            src = source_of.get(r["table"], r["table"].split(".")[-1])  # bronze.quarantine: all sources
            status = "failed" if r["crit"] else "warned" if r["warn"] else "passed"
            out[r["batch_date"].isoformat()][src]["gates"][status] += 1
    return {d: dict(v) for d, v in sorted(out.items())}


def render_summary(summary: dict, settings: Settings, console=None) -> None:



    console = console or (Console() if sys.stdout.isatty() else Console(width=160))
    for night, sources in summary.items():
        t = Table(title=f"batch {night}", title_justify="left")
        for col in (
            "source",
            "kind",
            "delivered",
            "loaded",
            "quarantined (by reason)",
            "rejected",
            "gates p/w/f",
            "notes",
        ):
            t.add_column(col, justify="right" if col in ("delivered", "loaded") else "left")
        for src, s in sorted(sources.items()):
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["reasons"].items())) or "0"
            g = s["gates"]
            notes = "; ".join(sorted(s["encodings"])) + ("" if s["balanced"] else " UNBALANCED")
            t.add_row(src, s["kind"] or "-", f"{s['delivered']:,}", f"{s['loaded']:,}",
                      f"{s['quarantined']:,}" + (f" ({reasons})" if s["quarantined"] else ""),
                      ", ".join(s["rejected"]) or "-", f"{g['passed']}/{g['warned']}/{g['failed']}", notes)
        console.print(t)
    console.print(f"lake:        {settings.lake}")
    console.print(f"data docs:   {data_docs_index(settings)}")
    console.print(f"audit:       {settings.table_path('ops', 'job_runs')}  (job runs)")
    console.print(f"             {settings.table_path('ops', 'deliveries')}  (delivery ledger, conservation)")
    console.print(f"             {settings.table_path('ops', 'gate_results')}  (gate results)")
    console.print(f"quarantine:  {settings.table_path('bronze', 'quarantine')}")
