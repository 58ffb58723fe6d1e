"""The cockpit's shell: what one night's page shows, read from the lake's own tables, rendered by
``shuzhi.cockpit`` (pure) and written under ``<lake>/reports/cockpit/``:

    <night>.html      one self-contained page per night (no script, no request outside the file)
    index.html        every night with a page, newest first, with the departments' overall scores
    catalogue.html    the data catalogue (开放共享目录) as a page; catalogue.json beside it

    shuzhi report --night 2026-11-26            # the page of one night (and index, catalogue)
    shuzhi report                               # every night the delivery ledger knows

Each section reads only what it needs: the quality repository (``shuzhi.quality.quality_report``),
the conflict workflow (``shuzhi.workflow.conflict_summary``, as the office: masked subjects only),
both quarantines grouped by department, stage and reason (counts, never a value), the night's
gate outcomes with the link to each validation's Data Docs page, rejected deliveries, and the
retention status (overdue records, holds, the last destruction certificate) as of the night.
A section whose table does not exist yet says so; re-running a night rewrites the same page.
"""
from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from . import cockpit
from .access import read_if_exists
from .catalogue import catalogue_for, render_catalogue_html, write_catalogue, write_text_atomic
from .config import Settings
from .feedback import Texts
from .gates import data_docs_index, latest_runs
from .quality import quality_report
from .retention import load_policy
from .schemas import catalog
from .spark import get_spark
from .workflow import conflict_summary

SCORE_DIMENSION = "overall"


def cockpit_dir(settings: Settings) -> Path:
    return settings.reports_dir / "cockpit"


def night_page(settings: Settings, night: str) -> Path:
    return cockpit_dir(settings) / f"{night}.html"


# ---------------------------------------------------------------- the sections' readers

def quarantine_by_reason(spark, settings: Settings, night: date) -> list[dict]:
    """Both quarantines of the night: one row per department, stage (ingest | clean) and reason,
    with the reason's Chinese description and the count of records."""
    texts = Texts.load(catalog())
    rows = []
    for stage, layer in (("ingest", "bronze"), ("clean", "silver")):
        q = read_if_exists(spark, settings, layer, "quarantine")
        if q is None:
            continue
        zh = texts.ingest_zh if stage == "ingest" else texts.rules_zh
        for r in (q.filter(F.col("_batch_date") == F.lit(night)).groupBy("_source", "reason_code").count()
                  .collect()):
            rows.append({"department": r["_source"], "stage": stage, "reason_code": r["reason_code"],
                         "reason_zh": zh.get(r["reason_code"], ""), "records": int(r["count"])})
    return sorted(rows, key=lambda r: (r["department"], r["stage"] != "ingest", -r["records"], r["reason_code"]))


def _docs_page(settings: Settings, suite: str, night: str) -> str | None:
    """The newest Data Docs page of ``suite``'s validations named after ``night``, relative to the
    cockpit folder (None when there is none: a run from before runs were named by batch date)."""
    site = data_docs_index(settings).parent
    pages = sorted((site / "validations").glob(f"{suite.replace('.', '/')}/{night}/*/*.html"))
    if not pages:
        return None
    return "../" + pages[-1].relative_to(settings.reports_dir).as_posix()


def gate_outcomes(spark, settings: Settings, night: date) -> list[dict]:
    """The night's latest gate run of each table: passed | warned | failed, with the failed
    expectations counted by severity and a link to the validation's Data Docs page."""
    g = read_if_exists(spark, settings, "ops", "gate_results")
    if g is None:
        return []
    out = []
    for r in latest_runs(g.filter(F.col("batch_date") == F.lit(night))).collect():
        out.append({"table": r["table"], "outcome": r["outcome"], "expectations": int(r["expectations"]),
                    "failed_critical": int(r["critical"]), "failed_warning": int(r["warning"]),
                    "docs": _docs_page(settings, r["suite"], night.isoformat())})
    return sorted(out, key=lambda r: (r["outcome"] == "passed", r["table"]))


def rejected_deliveries(spark, settings: Settings, night: date) -> list[dict]:
    d = read_if_exists(spark, settings, "ops", "deliveries")
    if d is None:
        return []
    rows = (d.filter((F.col("batch_date") == F.lit(night)) & (F.col("status") == "rejected"))
            .select("source", "delivery_id", "file", "reason_code", "message").distinct().collect())
    return sorted((r.asDict() for r in rows), key=lambda r: (r["source"], r["delivery_id"] or ""))


def conflict_flow(spark, settings: Settings, night: date) -> dict[str, Any]:
    """Conflicts first seen on the night (new) and resolved on it (the contradiction no longer
    observed), by rule and by department — from the register's dates, not its current state."""
    out: dict[str, Any] = {"new": {}, "resolved": {}}
    c = read_if_exists(spark, settings, "gold", "conflicts")
    if c is None:
        return out
    for kind, cond in (("new", F.col("first_seen") == F.lit(night)),
                       ("resolved", F.col("resolved_on") == F.lit(night))):
        for r in (c.filter(cond).select("rule_id", F.explode("departments").alias("department"))
                  .groupBy("rule_id", "department").count().collect()):
            out[kind].setdefault(r["rule_id"], {})[r["department"]] = int(r["count"])
    return out


def retention_status(spark, settings: Settings, night: date) -> dict[str, Any]:
    """As of the night: the latest status row of each retention stage (overdue, held), the holds
    declared in ``conf/retention.yaml`` and the last completed destruction certificate."""
    out: dict[str, Any] = {"stages": [], "holds": [h.id for h in load_policy().holds], "certificate": None}
    st = read_if_exists(spark, settings, "ops", "retention_status")
    if st is not None:
        latest = st.filter(F.col("batch_date") <= F.lit(night)).groupBy("stage").agg(
            F.max_by(F.struct("batch_date", "overdue", "held_before", "held_after", "verified"),
                     "recorded_at").alias("s")).collect()
        out["stages"] = sorted(({"stage": r["stage"], "as_of": r["s"]["batch_date"].isoformat(),
                                 "overdue": r["s"]["overdue"], "held": r["s"]["held_after"],
                                 "verified": r["s"]["verified"]} for r in latest), key=lambda r: r["stage"])
    cert = read_if_exists(spark, settings, "ops", "destruction_certificates")
    if cert is not None:
        last = (cert.filter((F.col("phase") == "completed") & (F.col("as_of") <= F.lit(night)))
                .orderBy(F.col("ended_at").desc()).select("certificate_id", "as_of", "records", "persons",
                                                          "verification", "findings").limit(1).collect())
        if last:
            out["certificate"] = dict(last[0].asDict(), as_of=last[0]["as_of"].isoformat())
    return out


def night_data(spark, settings: Settings, night: date) -> dict[str, Any]:
    """Everything ``cockpit.render_night`` draws for one night (plain dicts, no L3/L4 value)."""
    conflicts = conflict_summary(spark, settings, night)
    conflicts["flow"] = conflict_flow(spark, settings, night)
    return {"night": night.isoformat(), "quality": quality_report(spark, settings, night),
            "quarantine": quarantine_by_reason(spark, settings, night), "conflicts": conflicts,
            "gates": gate_outcomes(spark, settings, night), "rejected": rejected_deliveries(spark, settings, night),
            "retention": retention_status(spark, settings, night), "catalogue": "catalogue.html"}


def known_nights(spark, settings: Settings) -> list[date]:
    d = read_if_exists(spark, settings, "ops", "deliveries")
    if d is None:
        return []
    return sorted(r[0] for r in d.select("batch_date").distinct().collect() if r[0] is not None)


def index_rows(spark, settings: Settings) -> list[dict]:
    """One row per night that has a page: the departments' overall scores that night."""
    nights = sorted(p.stem for p in cockpit_dir(settings).glob("????-??-??.html"))
    scores: dict[str, dict[str, float | None]] = {}
    qs = read_if_exists(spark, settings, "ops", "quality_scores")
    if qs is not None:
        for r in qs.filter(F.col("dimension") == SCORE_DIMENSION).select("night", "department", "score").collect():
            scores.setdefault(r["night"].isoformat(), {})[r["department"]] = r["score"]
    return [{"night": n, "scores": scores.get(n, {})} for n in nights]


# ---------------------------------------------------------------- writing the pages

def write_report(spark, settings: Settings, nights: list[date]) -> list[Path]:
    """The pages of ``nights``, then ``index.html`` and the catalogue page; returns the night pages."""
    out = []
    for n in nights:
        page = night_page(settings, n.isoformat())
        write_text_atomic(page, cockpit.render_night(night_data(spark, settings, n)) + "\n")
        out.append(page)
    folder = cockpit_dir(settings)
    cat = catalogue_for(settings, spark)
    write_catalogue(cat, folder / "catalogue.json")
    write_text_atomic(folder / "catalogue.html", cockpit.render_catalogue_page(render_catalogue_html(cat)) + "\n")
    write_text_atomic(folder / "index.html", cockpit.render_index(index_rows(spark, settings)) + "\n")
    return out


def cmd_report(settings: Settings, a: argparse.Namespace) -> int:
    """``shuzhi report [--night YYYY-MM-DD]``."""
    spark = get_spark(settings)
    nights = [date.fromisoformat(a.night)] if a.night else known_nights(spark, settings)
    if not nights:
        print("error: the lake has no delivery ledger (ops.deliveries): no night to report", file=sys.stderr)
        return 2
    for page in write_report(spark, settings, nights):
        print(f"cockpit {page.stem}: {page.resolve()}")
    print(f"index: {(cockpit_dir(settings) / 'index.html').resolve()}")
    return 0


def register(sub) -> None:
    """The ``report`` sub-command (called from ``shuzhi.commands.register``)."""
    p = sub.add_parser("report", help="the governance office's cockpit (数据治理驾驶舱): one HTML page per night "
                                      "under <lake>/reports/cockpit, an index and the catalogue page")
    p.add_argument("--night", metavar="D", help="the night (YYYY-MM-DD); default: every night delivered")
    p.set_defaults(fn=cmd_report)
