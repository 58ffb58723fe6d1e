"""Quality metrics: after a night is ingested, cleaned and cross-verified, measure it from the
lake's own tables, score the departments and flag anomalies on each metric's history.

    spark-submit jobs/quality.py --batch-date 2026-11-27

The measures, metrics, scores and anomaly checks are ``shuzhi.stages.quality`` (pure), their
definitions ``conf/quality.yaml`` (``shuzhi.quality.load_quality``). Written: the night's slice of
``ops.quality_metrics`` (one row per department, table, metric), ``ops.quality_scores`` (one row
per department and dimension, and ``overall``) and ``ops.quality_anomalies`` (the night's flags),
each replaced under a txn id and only when its content differs from what the table holds for the
night — a re-run of the same night adds no version. A failure-severity anomaly fails the job
(``GateFailed``) after the rows are written; warnings are logged.
"""
from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.jobmain import job_main
from shuzhi.quality import history, lake_frames, load_quality, measure_params, replace_night
from shuzhi.stages import quality
from shuzhi.stages.quality import QualityConfig

log = logging.getLogger("shuzhi.quality")

METRICS, SCORES, ANOMALIES = "ops.quality_metrics", "ops.quality_scores", "ops.quality_anomalies"


@dataclass
class QualityResult:
    batch_date: str
    status: str                                                 # computed | noop
    metrics: int = 0
    overall: dict[str, float | None] = field(default_factory=dict)     # department → overall score
    anomalies: list[str] = field(default_factory=list)
    written: dict[str, bool] = field(default_factory=dict)             # table → a new version was written


def run(spark, settings: Settings, batch_date: str, *, run_id: str | None = None,
        config: QualityConfig | None = None) -> QualityResult:
    config = config or load_quality()
    run_id = run_id or uuid.uuid4().hex
    night = date.fromisoformat(batch_date)
    res = QualityResult(batch_date, "computed")
    with audited(spark, settings, stage="quality", source=None, batch_date=batch_date, run_id=run_id) as audit:
        frames = lake_frames(spark, settings)
        if frames is None:
            log.warning("quality %s: no delivery ledger in the lake; nothing to measure", batch_date)
            res.status = audit.outcome = "noop"
            return res
        measures = [tuple(r) for r in quality.night_measures(night, frames, measure_params(night)).collect()]
        values = quality.compute_metrics(measures, config.metrics)
        scores = quality.scorecards(values, config)
        flags = quality.detect_anomalies(night, values, history(spark, settings, night,
                                                                config.anomalies.lookback_nights), config.anomalies)
        now = datetime.now()
        for key, rows in ((METRICS, [asdict(v) for v in values]), (SCORES, [asdict(s) for s in scores]),
                          (ANOMALIES, [{k: v for k, v in asdict(f).items() if k != "night"} for f in flags])):
            res.written[key] = replace_night(spark, settings, key, night, rows, run_id, now)
        res.metrics = len(values)
        res.overall = {s.department: s.score for s in scores if s.dimension == "overall"}
        res.anomalies = [f.describe() for f in flags]
        audit.rows_in = len(measures)
        audit.rows_loaded = len(values)
        audit.gate_outcome = ("failed" if any(f.severity == "failure" for f in flags) else
                              "warned" if flags else "passed")
        audit.detail = json.dumps({"overall": res.overall, "anomalies": len(flags), "written": res.written})
        quality.anomaly_gate(flags)
    return res


def summary(res: QualityResult) -> dict:
    return {"stage": "quality", **asdict(res)}


def task(spark, settings: Settings, batch_date: str, run_id: str | None = None) -> dict:
    """The pipeline's quality step (Airflow, the CLI): after verify; a failure-severity anomaly
    raises ``GateFailed`` (exit code 4 from ``jobs/quality.py``)."""
    return summary(run(spark, settings, batch_date, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("quality", task, {"batch_date": "required: YYYY-MM-DD"}, argv)


if __name__ == "__main__":
    sys.exit(main())
