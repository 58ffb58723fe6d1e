"""A whole night without Airflow: ``shuzhi night DATE [--through DATE2]`` (and the benchmark).

The same tasks, in the same order and with the same failure rules, as the two DAG families:

    ingest every source whose manifest is present → gate bronze (every table + quarantine)
    → clean → gate silver → cross-verify → gate gold → quality → report

- A source with no manifest is *missing*: nothing is ingested for it (Airflow's sensor would wait);
  a rejected delivery is recorded by ingest in ``ops.deliveries`` and the night goes on, as the
  nightly DAG does when it is triggered for that date.
- A failed critical gate stops the stages after it (the other gates of its stage still run, as the
  DAG's parallel gate tasks do); a failure-severity quality flag fails quality. The report runs
  whatever happened before it (the DAG's ``all_done``), so the office sees the night either way.
- A gate whose table the lake does not hold yet (a department that has never delivered) is skipped.
- With ``--through``, nights run oldest first and a failed night does not stop the next one: the
  scheduler would run it too, and write–audit–publish makes it continue from the last published
  version (``shuzhi.publish``).

In the default environment every stage runs in this one process and one SparkSession (``tasks``'s
dispatcher; with ``submit`` each stage is its own spark-submit). ``on_step`` is called before and
after each step, which is how the CLI prints progress and the benchmark takes its times.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import SimpleNamespace

from rich.console import Console

from . import registry, tasks
from .access import lake_tables
from .config import Settings
from .errors import DeliveryRejected, GateFailed, UsageError
from .manifest import manifest_present
from .schemas import catalog

# exit codes of ``shuzhi night``, the same as a single stage's (``commands._run_stage``)
EXIT_REJECTED = 3
EXIT_GATE_FAILED = 4

# the night's stages in order; a gate stage's name is "gate <layer>"
STAGES = ("ingest", "gate bronze", "clean", "gate silver", "verify", "gate gold", "quality", "report")
GATES = {"gate bronze": "ingest", "gate silver": "clean", "gate gold": "verify"}    # → registry.stage_gates


def default_steps() -> SimpleNamespace:
    """The functions a night calls: the runner's tasks (replaceable in tests of the control flow)."""
    return SimpleNamespace(ingest=tasks.ingest, gate=tasks.gate, clean=tasks.clean, verify=tasks.verify,
                           quality=tasks.quality, report=tasks.report,
                           manifest_present=lambda settings, source, night: manifest_present(
                               settings.landing, source, night),
                           lake_tables=lake_tables)


@dataclass
class Step:
    night: str
    stage: str                      # one of STAGES
    target: str                     # the source, the gated table, or "" for a whole-night stage
    status: str = "running"         # the task's own status, or missing | rejected | failed | skipped | error
    seconds: float = 0.0
    records: int | None = None      # records the step read (delivered, gated, cleaned); None: not a count
    detail: str = ""
    result: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status in ("rejected", "failed")

    @property
    def rate(self) -> float | None:
        return self.records / self.seconds if self.records and self.seconds > 0 else None


@dataclass
class NightRun:
    night: str
    steps: list[Step] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def ran(self) -> bool:
        """False for a night ``run_nights`` did not run (no source delivered)."""
        return any(s.stage != "ingest" for s in self.steps)

    @property
    def exit_code(self) -> int:
        """0, or 4 if a critical gate (or quality) failed, or 3 if only a delivery was rejected."""
        if any(s.status == "failed" for s in self.steps):
            return EXIT_GATE_FAILED
        return EXIT_REJECTED if any(s.status == "rejected" for s in self.steps) else 0

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage (a gate stage summed over its tables), in ``STAGES`` order."""
        out = {s: 0.0 for s in STAGES}
        for st in self.steps:
            out[st.stage] += st.seconds
        return {k: v for k, v in out.items() if any(st.stage == k for st in self.steps)}

    def results(self, stage: str) -> list[dict]:
        return [s.result for s in self.steps if s.stage == stage and s.result]


def nights_between(first: str, last: str | None = None) -> list[str]:
    """``first`` through ``last`` (inclusive), one a day; ``last`` before ``first`` is a usage error.

    >>> nights_between("2026-11-30", "2026-12-02")
    ['2026-11-30', '2026-12-01', '2026-12-02']
    >>> nights_between("2026-11-30")
    ['2026-11-30']
    """
    a = date.fromisoformat(first)
    b = date.fromisoformat(last) if last else a
    if b < a:
        raise UsageError(f"--through {last} is before the first night {first}")
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def _records(stage: str, res: dict) -> tuple[int | None, str]:
    """What a step's task dict says it processed: (records, one-line detail)."""
    if stage == "ingest":
        files = res.get("files", [])
        quarantined = sum(f.get("quarantined_rows") or 0 for f in files)
        return sum(f.get("manifest_rows") or 0 for f in files), f"{res.get('kind', '')} {quarantined:,} quarantined"
    if stage.startswith("gate"):
        warn = res.get("failed_warning") or []
        return res.get("rows"), f"{len(warn)} warning(s) failed" if warn else ""
    if stage == "clean":
        ents = res.get("entities", [])
        loaded = sum(e.get("loaded", 0) for e in ents)
        quarantined = sum(e.get("quarantined", 0) for e in ents)
        return sum(e.get("bronze_rows", 0) for e in ents), f"{loaded:,} loaded, {quarantined:,} quarantined"
    if stage == "verify":
        return None, (f"{sum(res.get('findings', {}).values()):,} findings, {res.get('opened', 0):,} opened, "
                      f"{res.get('resolved', 0):,} resolved, {res.get('open_total', 0):,} open")
    if stage == "quality":
        anomalies = res.get("anomalies") or []
        return None, f"{res.get('metrics', 0):,} metrics, {len(anomalies)} anomaly flag(s)"
    if stage == "report":
        return None, str(res.get("page", ""))
    return None, ""


def run_night(settings: Settings, night: str, *, on_step: Callable[[Step], None] | None = None,
              steps: SimpleNamespace | None = None) -> NightRun:
    """Every stage of one night, in order (the module's docstring gives the rules)."""
    fn = steps or default_steps()
    run = NightRun(night)

    def step(stage: str, target: str, call: Callable[[], dict]) -> Step:
        st = Step(night, stage, target)
        run.steps.append(st)
        if on_step:
            on_step(st)
        t = time.perf_counter()
        try:
            st.result = call() or {}
            st.status = str(st.result.get("status") or "done")
            st.records, st.detail = _records(stage, st.result)
        except DeliveryRejected as exc:
            st.status, st.detail = "rejected", str(exc)
        except GateFailed as exc:
            st.status, st.detail = "failed", str(exc)
        except Exception as exc:     # not a data fault: the step is named on the progress line, then raised
            st.status, st.detail = "error", f"{type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            st.seconds = time.perf_counter() - t
            if on_step:
                on_step(st)
        return st

    def skipped(stage: str, target: str, status: str, detail: str) -> None:
        st = Step(night, stage, target, status=status, detail=detail)
        run.steps.append(st)
        if on_step:
            on_step(st)

    for source in catalog().sources:
        if fn.manifest_present(settings, source, night):
            step("ingest", source, lambda s=source: fn.ingest(s, night, settings))
        else:
            skipped("ingest", source, "missing", f"no manifest in the landing zone for {source}/{night}")

    def gates(stage: str) -> bool:
        held = set(fn.lake_tables(settings))
        ok = True
        for table in registry.stage_gates(GATES[stage]):
            if table not in held:
                skipped(stage, table, "skipped", "not in the lake yet")
                continue
            ok &= not step(stage, table, lambda t=table: fn.gate(t, night, settings)).failed
        return ok

    stages: Iterable[tuple[str, Callable[[], bool]]] = (
        ("gate bronze", lambda: gates("gate bronze")),
        ("clean", lambda: not step("clean", "", lambda: fn.clean(night, settings)).failed),
        ("gate silver", lambda: gates("gate silver")),
        ("verify", lambda: not step("verify", "", lambda: fn.verify(night, settings)).failed),
        ("gate gold", lambda: gates("gate gold")),
        ("quality", lambda: not step("quality", "", lambda: fn.quality(night, settings)).failed),
    )
    stopped_by = None
    for name, go in stages:
        if stopped_by:
            skipped(name, "", "skipped", f"upstream failed: {stopped_by}")
        elif not go():
            stopped_by = name
    step("report", "", lambda: fn.report(night, settings))
    return run


def run_nights(settings: Settings, first: str, last: str | None = None, *,
               on_step: Callable[[Step], None] | None = None, steps: SimpleNamespace | None = None) -> list[NightRun]:
    """``run_night`` for each night from ``first`` through ``last``; a night with no manifest of any
    source is not run (nothing was delivered; its report would be empty)."""
    fn = steps or default_steps()
    runs = []
    for night in nights_between(first, last):
        if not any(fn.manifest_present(settings, s, night) for s in catalog().sources):
            runs.append(NightRun(night, [Step(night, "ingest", "", status="missing",
                                              detail="no source delivered this night; not run")]))
            if on_step:
                on_step(runs[-1].steps[0])
            continue
        runs.append(run_night(settings, night, on_step=on_step, steps=fn))
    return runs


# ---------------------------------------------------------------- the command line

def _fmt_step(st: Step, t0: float) -> str:
    colour = {"missing": "yellow", "skipped": "yellow", "rejected": "red", "failed": "red",
              "error": "red"}.get(st.status, "green")
    recs = f"{st.records:>11,} rec" if st.records is not None else " " * 15
    rate = (f"{st.rate:>9,.0f} rec/s" if st.rate >= 10 else f"{st.rate:>9.2f} rec/s") if st.rate else " " * 15
    secs = f"{st.seconds:7.1f} s" if st.status not in ("missing", "skipped") else " " * 9
    return (f"{st.night}  {st.stage:<11} {st.target:<33} {recs} {secs} {rate}  "
            f"+{time.perf_counter() - t0:6.0f} s  [{colour}]{st.status}[/{colour}] {st.detail}")


def render(runs: list[NightRun]) -> str:
    """One line a night and stage: seconds, and the night's outcome."""
    lines = [f"{'night':<10}  {'stage':<11} {'s':>8}"]
    for r in runs:
        if not r.ran:
            lines.append(f"{r.night:<10}  not run: no source delivered")
            continue
        for stage, s in r.stage_seconds().items():
            lines.append(f"{r.night:<10}  {stage:<11} {s:8.1f}")
        failed = [f"{s.stage} {s.target}".strip() for s in r.steps if s.failed]
        outcome = "ok" if not failed else ("FAILED: " + ", ".join(failed))
        lines.append(f"{r.night:<10}  {'whole night':<11} {r.seconds:8.1f}  {outcome}")
    return "\n".join(lines)


def cmd_night(settings: Settings, a) -> int:
    """``shuzhi night DATE [--through DATE2]``: progress on stderr (one line a step, with records/s
    and the time since start), the per-stage seconds (or ``--json``: every step) on stdout."""
    console = Console(stderr=True, highlight=False)
    t0 = time.perf_counter()
    status = console.status("starting …")

    def on_step(st: Step) -> None:
        if st.status == "running":
            status.update(f"{st.night} {st.stage} {st.target} …")
        else:
            console.print(_fmt_step(st, t0), soft_wrap=True)       # one line a step, however long

    with status:
        runs = run_nights(settings, a.batch_date, a.through, on_step=on_step)
    if a.json:
        print(json.dumps([{"night": r.night, "exit_code": r.exit_code, "seconds": round(r.seconds, 2),
                           "steps": [vars(s) for s in r.steps]} for r in runs],
                         ensure_ascii=False, default=str))
    else:
        print(render(runs))
    return max((r.exit_code for r in runs), default=0)


def register(sub) -> None:
    p = sub.add_parser("night", help="a whole night without Airflow, in one process: ingest every source, gates, "
                                     "clean, verify, quality, report (the backfill path; what `make bench` times)")
    p.add_argument("batch_date", help="the first night (YYYY-MM-DD)")
    p.add_argument("--through", metavar="D", help="the last night (inclusive; default: only the first)")
    p.add_argument("--json", action="store_true", help="print every step as JSON instead of the per-stage table")
    p.set_defaults(fn=cmd_night)
