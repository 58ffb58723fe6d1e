"""The cockpit report (数据治理驾驶舱): the night's page under ``<lake>/reports/cockpit/``, the
index of nights and the catalogue page (``shuzhi.cockpit_report``; rendering ``shuzhi.cockpit``).

    spark-submit jobs/report.py --batch-date 2026-11-27

The last step of the nightly DAG; it runs whatever the quality step's outcome (a night whose
anomaly gate failed is the night the office most needs to read). Re-running rewrites the same files.
"""
from __future__ import annotations

import sys
from datetime import date

from shuzhi.audit import audited
from shuzhi.cockpit_report import cockpit_dir, write_report
from shuzhi.config import Settings
from shuzhi.jobmain import job_main


def task(spark, settings: Settings, batch_date: str, run_id: str | None = None) -> dict:
    with audited(spark, settings, stage="report", source=None, batch_date=batch_date, run_id=run_id) as audit:
        (page,) = write_report(spark, settings, [date.fromisoformat(batch_date)])
        audit.detail = str(page)
    return {"stage": "report", "batch_date": batch_date, "page": str(page),
            "index": str(cockpit_dir(settings) / "index.html")}


def main(argv: list[str] | None = None) -> int:
    return job_main("report", task, {"batch_date": "required: YYYY-MM-DD"}, argv)


if __name__ == "__main__":
    sys.exit(main())
