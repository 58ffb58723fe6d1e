"""Gate: validate one table's batch against its GX suite (see shuzhi.gates).

    spark-submit jobs/gate.py --table bronze.police_population --batch-date 2026-11-27
"""
from __future__ import annotations

import argparse
import sys

from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.gates import GateOutcome, run_gate


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
        audit.detail = f"{outcome.evaluated} expectations; warnings: {', '.join(outcome.failed_warning) or 'none'}"[:4000]
        return outcome


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--table", required=True)
    p.add_argument("--batch-date")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line (for spark-submit callers)")
    a = p.parse_args(argv)
    from shuzhi.spark import get_spark

    settings = Settings.load()
    out = run(get_spark(settings, f"gate-{a.table}"), settings, a.table, a.batch_date or None)
    if a.json:
        import json

        from shuzhi.tasks import gate_summary

        print(json.dumps(gate_summary(out), ensure_ascii=False))
    else:
        print(f"{out.suite} {a.batch_date}: {out.status} ({out.rows} rows, {out.evaluated} expectations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
