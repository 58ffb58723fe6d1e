"""Gate: validate one table's batch against its GX suite (see shuzhi.gates).

    spark-submit jobs/gate.py --table bronze.police_population --batch-date 2026-11-27
"""
from __future__ import annotations

import sys

from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.gates import GateOutcome, run_gate
from shuzhi.jobmain import job_main


def run(spark, settings: Settings, table: str, batch_date: str | None, *, run_id: str | None = None) -> GateOutcome:
    """Gate ``layer.table`` for a batch date; audited; raises ``GateFailed`` on a critical failure."""
    layer, name = table.split(".", 1)
    with audited(spark, settings, stage=f"gate:{table}", source=None, batch_date=batch_date, run_id=run_id) as audit:
        try:
            outcome = run_gate(spark, settings, layer, name, batch_date)
        except Exception:
            audit.gate_outcome = "failed"
            raise
        audit.gate_outcome = outcome.status
        audit.rows_in = outcome.rows
        audit.detail = f"{outcome.evaluated} expectations; warnings: {', '.join(outcome.failed_warning) or 'none'}"[
            :4000
        ]
        return outcome


def summary(out: GateOutcome) -> dict:
    return {"suite": out.suite, "table": out.table, "batch_date": out.batch_date, "rows": out.rows,
            "status": out.status, "failed_warning": out.failed_warning, "failed_critical": out.failed_critical}


def task(spark, settings: Settings, table: str, batch_date: str | None = None, run_id: str | None = None) -> dict:
    return summary(run(spark, settings, table, batch_date or None, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("gate", task, {"table": "required: layer.table, e.g. bronze.police_population",
                                   "batch_date": "YYYY-MM-DD (default: the whole table)"}, argv)


if __name__ == "__main__":
    sys.exit(main())
