"""``shuzhi night``: a whole night without Airflow, with the nightly DAG's order and failure rules.

The control flow is tested with recording stand-ins for the stage functions (no Spark): which
steps run, in which order, and what a missing source, a rejected delivery, a failed critical gate
or a failed quality step does to the rest of the night and to the next night. One integration test
runs a real night from the command line on a hand-built police delivery."""
from types import SimpleNamespace

import deliveries as dl
import pytest

from shuzhi import night as nr
from shuzhi import registry
from shuzhi.cli import main as shuzhi_main
from shuzhi.cockpit_report import night_page
from shuzhi.delta import read_table
from shuzhi.errors import DeliveryRejected, GateFailed, UsageError

D1, D2, D3 = "2026-11-25", "2026-11-26", "2026-11-27"
SOURCES = ["police", "civil_affairs", "social_security", "health"]


class Recorder:
    """Stand-ins for the runner's tasks: each call is recorded as (stage, target, night); ``fail``
    maps (stage, target) to the exception that call raises; ``delivered`` holds (source, night)."""

    def __init__(self, delivered, fail=None, lake=None):
        self.calls: list[tuple[str, str, str]] = []
        self.delivered, self.fail = set(delivered), fail or {}
        self.lake = lake if lake is not None else registry.gated_tables()

    def _call(self, stage, target, night, result):
        self.calls.append((stage, target, night))
        if (stage, target) in self.fail:
            raise self.fail[(stage, target)]
        return result

    def steps(self) -> SimpleNamespace:
        return SimpleNamespace(
            manifest_present=lambda settings, source, night: (source, night) in self.delivered,
            lake_tables=lambda settings: self.lake,
            ingest=lambda s, n, settings: self._call("ingest", s, n, {"status": "loaded", "kind": "full", "files": [
                {"manifest_rows": 10, "quarantined_rows": 1}]}),
            gate=lambda t, n, settings: self._call("gate", t, n, {"status": "passed", "rows": 9}),
            clean=lambda n, settings: self._call("clean", "", n, {"entities": [
                {"bronze_rows": 9, "loaded": 8, "quarantined": 1}]}),
            verify=lambda n, settings: self._call("verify", "", n, {"status": "verified", "findings": {"X": 2}}),
            quality=lambda n, settings: self._call("quality", "", n, {"status": "computed", "metrics": 5}),
            report=lambda n, settings: self._call("report", "", n, {"page": f"/c/{n}.html"}))


def expected_calls(night: str, sources=SOURCES) -> list[tuple[str, str, str]]:
    """The nightly DAG's order, written out: ingests, bronze gates, clean, silver gates, verify,
    gold gates, quality, report."""
    gates = {stage: [("gate", t, night) for t in registry.stage_gates(stage)]
             for stage in ("ingest", "clean", "verify")}
    return ([("ingest", s, night) for s in sources] + gates["ingest"] + [("clean", "", night)] + gates["clean"]
            + [("verify", "", night)] + gates["verify"] + [("quality", "", night), ("report", "", night)])


@pytest.mark.unit
def test_the_gate_lists_are_the_dags():
    assert registry.stage_gates("ingest")[-1] == "bronze.quarantine"
    assert {"silver.quarantine", "silver.findings", "ops.conservation"} <= set(registry.stage_gates("clean"))
    assert registry.stage_gates("verify")[0] == "gold.conflicts"


@pytest.mark.unit
def test_a_whole_night_runs_every_stage_in_the_dags_order():
    rec = Recorder({(s, D1) for s in SOURCES})
    seen = []
    run = nr.run_night(None, D1, steps=rec.steps(), on_step=lambda st: seen.append((st.stage, st.target, st.status)))
    assert rec.calls == expected_calls(D1)
    assert run.exit_code == 0
    assert all(not s.failed for s in run.steps)
    # on_step: once when a step starts, once when it ends
    assert seen[:2] == [("ingest", "police", "running"), ("ingest", "police", "loaded")]
    assert len(seen) == 2 * len(rec.calls)
    ing = run.steps[0]
    assert (ing.records, ing.detail) == (10, "full 1 quarantined")
    cl = next(s for s in run.steps if s.stage == "clean")
    assert (cl.records, cl.detail) == (9, "8 loaded, 1 quarantined")
    assert list(run.stage_seconds()) == list(nr.STAGES)


@pytest.mark.unit
def test_a_missing_source_is_not_ingested_and_a_rejected_delivery_does_not_stop_the_night():
    rec = Recorder({("police", D1), ("health", D1), ("social_security", D1)},
                   fail={("ingest", "health"): DeliveryRejected("MANIFEST_ROWS", "health/2026-11-25: rows differ")})
    run = nr.run_night(None, D1, steps=rec.steps())
    assert rec.calls == expected_calls(D1, ["police", "social_security", "health"])
    status = {(s.stage, s.target): s.status for s in run.steps}
    assert status[("ingest", "civil_affairs")] == "missing"
    assert status[("ingest", "health")] == "rejected"
    assert status[("report", "")] == "done"
    assert run.exit_code == nr.EXIT_REJECTED == 3


@pytest.mark.unit
def test_a_failed_critical_gate_stops_what_follows_but_not_its_sibling_gates_nor_the_report():
    silver = registry.stage_gates("clean")
    rec = Recorder({(s, D1) for s in SOURCES}, fail={("gate", silver[0]): GateFailed(f"{silver[0]}: critical")})
    run = nr.run_night(None, D1, steps=rec.steps())
    upto = expected_calls(D1).index(("verify", "", D1))
    assert rec.calls == expected_calls(D1)[:upto] + [("report", "", D1)]
    skipped = [s.stage for s in run.steps if s.status == "skipped"]
    assert skipped == ["verify", "gate gold", "quality"]
    assert all("upstream failed: gate silver" in s.detail for s in run.steps if s.status == "skipped")
    assert run.exit_code == nr.EXIT_GATE_FAILED == 4


@pytest.mark.unit
def test_a_failed_quality_step_still_reports():
    rec = Recorder({(s, D1) for s in SOURCES}, fail={("quality", ""): GateFailed("share anomaly (failure)")})
    run = nr.run_night(None, D1, steps=rec.steps())
    assert rec.calls == expected_calls(D1)
    assert run.exit_code == 4


@pytest.mark.unit
def test_an_unexpected_error_names_its_step_then_propagates():
    rec = Recorder({(s, D1) for s in SOURCES}, fail={("clean", ""): OSError("disk full")})
    seen = []
    with pytest.raises(OSError, match="disk full"):
        nr.run_night(None, D1, steps=rec.steps(), on_step=lambda st: seen.append((st.stage, st.status, st.detail)))
    assert seen[-1] == ("clean", "error", "OSError: disk full")
    assert rec.calls[-1] == ("clean", "", D1)


@pytest.mark.unit
def test_a_gate_whose_table_the_lake_lacks_is_skipped():
    lake = [t for t in registry.gated_tables() if t != "bronze.health_residents"]
    rec = Recorder({(s, D1) for s in SOURCES if s != "health"}, lake=lake)
    run = nr.run_night(None, D1, steps=rec.steps())
    assert ("gate", "bronze.health_residents", D1) not in rec.calls
    assert [(s.target, s.status) for s in run.steps if s.status == "skipped"] == [("bronze.health_residents",
                                                                                 "skipped")]
    assert run.exit_code == 0


@pytest.mark.unit
def test_through_runs_each_delivered_night_and_a_failed_night_does_not_stop_the_next():
    rec = Recorder({(s, n) for s in SOURCES for n in (D1, D3)})
    bad = registry.stage_gates("ingest")[0]

    def gate(t, n, settings):
        rec.calls.append(("gate", t, n))
        if n == D1 and t == bad:
            raise GateFailed(f"{t}: critical")
        return {"status": "passed"}

    steps = rec.steps()
    steps.gate = gate
    runs = nr.run_nights(None, D1, D3, steps=steps)
    assert [r.night for r in runs] == [D1, D2, D3]
    assert [r.exit_code for r in runs] == [4, 0, 0]
    assert runs[1].steps[0].status == "missing" and len(runs[1].steps) == 1      # nothing delivered on D2
    assert ("clean", "", D1) not in rec.calls and ("report", "", D1) in rec.calls
    assert [c for c in rec.calls if c[2] == D3] == expected_calls(D3)


@pytest.mark.unit
def test_nights_between():
    assert nr.nights_between("2026-12-30", "2027-01-02") == ["2026-12-30", "2026-12-31", "2027-01-01",
                                                             "2027-01-02"]
    with pytest.raises(UsageError, match="--through 2026-11-24 is before the first night 2026-11-25"):
        nr.nights_between(D1, "2026-11-24")


@pytest.mark.integration
def test_shuzhi_night_from_the_command_line(spark, settings, monkeypatch, capsys):
    """A real night: police delivers two records, the other departments nothing. Every stage runs
    once in this process; the progress lines name each step with its records; the next night,
    with no delivery, is not run."""
    for k, v in settings.env_vars().items():
        if not k.startswith("AIRFLOW"):
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("SHUZHI_ROLE", raising=False)
    dl.police_population(settings.landing, D1, [
        dl.pop_row("P1", dl.identity_number(1), "张三", CSRQ="19810302", GXSJ=f"{D1} 08:00:00"),
        dl.pop_row("P2", dl.identity_number(2), "李四", CSRQ="19820302", GXSJ=f"{D1} 09:00:00", HH="H002")])
    code = shuzhi_main(["night", D1, "--through", D2])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    # progress on stderr: one line a step
    assert any(line.startswith(f"{D1}  ingest") and "police" in line and "2 rec" in line and "loaded" in line
               for line in err.splitlines()), err
    for source in ("civil_affairs", "social_security", "health"):
        assert any(f"ingest      {source}" in line and "missing" in line for line in err.splitlines()), err
    assert any(line.startswith(f"{D1}  clean") and "2 loaded, 0 quarantined" in line for line in err.splitlines())
    assert any(line.startswith(f"{D2}  ingest") and "not run" in line for line in err.splitlines())
    # the per-stage table on stdout
    lines = out.splitlines()
    assert [line[12:23].strip() for line in lines if line.startswith(D1)] == [*nr.STAGES, "whole night"]
    assert lines[-2].startswith(f"{D1}  whole night") and lines[-2].endswith(" ok")
    assert lines[-1] == f"{D2}  not run: no source delivered"
    # every stage ran once, audited, in the lake the settings name
    runs = read_table(spark, settings.table_path("ops", "job_runs")).filter(f"batch_date = '{D1}'")
    stages = {r["stage"]: r["count"] for r in runs.groupBy("stage").count().collect()}
    assert {stages.get(s) for s in ("ingest", "clean", "verify", "quality", "report")} == {1}, stages
    assert stages.get("gate:bronze.police_population") == 1 and stages.get("gate:gold.person") == 1, stages
    silver = read_table(spark, settings.table_path("silver", "police_population"))
    assert sorted(r[0] for r in silver.select("record_id").collect()) == ["P1", "P2"]
    assert night_page(settings, D1).is_file()
