"""The conflict workflow (issue 13, item 4): the office's ack / assign / resolve of the conflicts of
``gold.conflicts``, one row each in ``ops.conflict_events``, and the workflow state derived from the
register, the events and the delivery ledger (``shuzhi.workflow``, ``shuzhi.stages.workflow``).

Every expected state, hour and day count below is written by hand from the definitions in
``shuzhi.stages.workflow`` (hours from the morning after ``first_seen``, 00:00 Asia/Shanghai, the
session time zone; timestamps of the frames are Shanghai wall-clock times)."""
import doctest
import hashlib
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from frames import assert_frame_equal, frame

from shuzhi import workflow
from shuzhi.stages import workflow as pure
from shuzhi.stages.workflow import workflow_state

REGISTER = ("conflict_id string, rule_id string, severity string, departments array<string>, subject string, "
            "evidence string, first_seen date, last_seen date, status string, resolved_on date")
EVENTS = ("event_id string, conflict_id string, action string, department string, reason string, comment string, "
          "evidence_digest string, last_seen date, who string, role string, at timestamp")
DELIVERIES = "delivery_id string, source string, batch_date date, status string, recorded_at timestamp"
CHECKED = ["conflict_id", "state", "assigned_to", "resolution", "acknowledged_at", "resolved_at", "reopened",
           "reopen_reason", "hours_to_acknowledge", "hours_to_resolve", "age_days"]
EXPECTED = ("conflict_id string, state string, assigned_to string, resolution string, acknowledged_at timestamp, "
            "resolved_at timestamp, reopened boolean, reopen_reason string, hours_to_acknowledge double, "
            "hours_to_resolve double, age_days int")
N25, N26, N27 = date(2026, 11, 25), date(2026, 11, 26), date(2026, 11, 27)
SH = ZoneInfo("Asia/Shanghai")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reg_row(cid, evidence, *, departments=("health", "police"), last_seen=N27, status="open", resolved_on=None,
            first_seen=N25):
    deps = None if departments is None else list(departments)
    return (cid, "X_NAME_MISMATCH", "medium", deps, f"person:tok-{cid}", evidence, first_seen, last_seen, status,
            resolved_on)


def ev(n, cid, action, at, *, department=None, reason=None, digest=None, last_seen=N25):
    return (f"e{n:02d}", cid, action, department, reason, None, digest, last_seen, "li.wei", "governance_office", at)


# ---------------------------------------------------------------- workflow_state (unit)

@pytest.mark.unit
def test_every_reason_and_reopen_rule(tiny_spark):
    register = frame(tiny_spark, [
        reg_row("c_open", "E0"),
        reg_row("c_ack", "E1"),
        reg_row("c_assign", "E2"),
        reg_row("c_fp_same", "E3"),
        reg_row("c_fp_changed", "E4 new"),
        reg_row("c_exc_same", "E5"),
        reg_row("c_exc_changed", "E6 new"),
        reg_row("c_dup", "E7 new"),
        reg_row("c_fix_reopen", "E8"),
        reg_row("c_fix_waiting", "E9", departments=("civil_affairs",)),
        reg_row("c_reopened_acked", "E10 new"),
    ], REGISTER)
    events = frame(tiny_spark, [
        ev(1, "c_ack", "ack", "2026-11-26 10:00:00"),
        ev(2, "c_assign", "ack", "2026-11-26 09:30:00"),
        ev(3, "c_assign", "assign", "2026-11-26 12:00:00", department="police"),
        ev(4, "c_assign", "assign", "2026-11-26 15:00:00", department="health"),
        ev(5, "c_fp_same", "resolve", "2026-11-26 11:00:00", reason="false_positive", digest=sha("E3")),
        ev(6, "c_fp_changed", "resolve", "2026-11-26 11:00:00", reason="false_positive", digest=sha("E4 old")),
        ev(7, "c_exc_same", "resolve", "2026-11-26 11:00:00", reason="accepted_exception", digest=sha("E5")),
        ev(8, "c_exc_changed", "resolve", "2026-11-26 11:00:00", reason="accepted_exception", digest=sha("E6 old")),
        ev(9, "c_dup", "resolve", "2026-11-26 11:00:00", reason="duplicate", digest=sha("E7 old")),
        ev(10, "c_fix_reopen", "resolve", "2026-11-26 11:00:00", reason="confirmed_fixed_at_source",
           digest=sha("E8")),
        ev(11, "c_fix_waiting", "resolve", "2026-11-26 11:00:00", reason="confirmed_fixed_at_source",
           digest=sha("E9")),
        ev(12, "c_reopened_acked", "resolve", "2026-11-26 11:00:00", reason="false_positive", digest=sha("E10")),
        ev(13, "c_reopened_acked", "ack", "2026-11-27 09:00:00"),
        ev(14, "c_gone", "ack", "2026-11-26 08:00:00"),           # a conflict the register no longer holds
    ], EVENTS)
    deliveries = frame(tiny_spark, [
        ("d1", "police", N25, "accepted", "2026-11-26 01:40:00"),       # before the resolutions
        ("d2", "health", N26, "accepted", "2026-11-27 01:40:00"),       # c_fix_reopen's fix delivery
        ("d3", "police", N26, "accepted", "2026-11-27 01:45:00"),
        ("d4", "civil_affairs", N26, "rejected", "2026-11-27 01:40:00"),  # rejected: carries no fix
        ("d5", "civil_affairs", N25, "accepted", "2026-11-27 02:00:00"),  # an older night re-delivered
    ], DELIVERIES)
    got = workflow_state(register, events, deliveries)
    expected = frame(tiny_spark, [
        ("c_open", "open", None, None, None, None, False, None, None, None, 2),
        ("c_ack", "acknowledged", None, None, "2026-11-26 10:00:00", None, False, None, 10.0, None, 2),
        ("c_assign", "assigned", "health", None, "2026-11-26 09:30:00", None, False, None, 9.5, None, 2),
        ("c_fp_same", "resolved", None, "false_positive", "2026-11-26 11:00:00", "2026-11-26 11:00:00", False, None,
         11.0, 11.0, 1),
        ("c_fp_changed", "reopened", None, "false_positive", "2026-11-26 11:00:00", None, True,
         "evidence changed since it was resolved as false_positive (evidence of night 2026-11-25)", 11.0, None, 2),
        ("c_exc_same", "resolved", None, "accepted_exception", "2026-11-26 11:00:00", "2026-11-26 11:00:00", False,
         None, 11.0, 11.0, 1),
        ("c_exc_changed", "reopened", None, "accepted_exception", "2026-11-26 11:00:00", None, True,
         "evidence changed since it was resolved as accepted_exception (evidence of night 2026-11-25)", 11.0, None,
         2),
        ("c_dup", "resolved", None, "duplicate", "2026-11-26 11:00:00", "2026-11-26 11:00:00", False, None, 11.0,
         11.0, 1),
        ("c_fix_reopen", "reopened", None, "confirmed_fixed_at_source", "2026-11-26 11:00:00", None, True,
         "still observed on 2026-11-27, after the health delivery of 2026-11-26, the first since it was resolved "
         "as confirmed_fixed_at_source", 11.0, None, 2),
        ("c_fix_waiting", "resolved", None, "confirmed_fixed_at_source", "2026-11-26 11:00:00", "2026-11-26 11:00:00",
         False, None, 11.0, 11.0, 1),
        ("c_reopened_acked", "acknowledged", None, None, "2026-11-26 11:00:00", None, True,
         "resolved as false_positive on 2026-11-26, reopened, and acted on since", 11.0, None, 2),
    ], EXPECTED)
    assert_frame_equal(got, expected, columns=CHECKED)


@pytest.mark.unit
def test_fixed_at_source_holds_on_the_fix_night_itself_and_reopens_the_night_after(tiny_spark):
    """'still observed on a night *after* the batch date of the first delivery made after it'."""
    events = frame(tiny_spark, [ev(1, "c", "resolve", "2026-11-26 11:00:00", reason="confirmed_fixed_at_source",
                                   digest=sha("E"))], EVENTS)
    deliveries = frame(tiny_spark, [("d", "health", N26, "accepted", "2026-11-27 01:40:00")], DELIVERIES)
    on_fix_night = workflow_state(frame(tiny_spark, [reg_row("c", "E", last_seen=N26)], REGISTER), events, deliveries)
    assert [(r["state"], r["reopened"]) for r in on_fix_night.collect()] == [("resolved", False)]
    night_after = workflow_state(frame(tiny_spark, [reg_row("c", "E", last_seen=N27)], REGISTER), events, deliveries)
    assert [(r["state"], r["reopened"]) for r in night_after.collect()] == [("reopened", True)]
    # no delivery at all since the fix: it stays resolved, waiting for one
    waiting = workflow_state(frame(tiny_spark, [reg_row("c", "E", last_seen=N27)], REGISTER), events, None)
    assert [r["state"] for r in waiting.collect()] == ["resolved"]


@pytest.mark.unit
def test_the_machine_resolved_is_resolved_whatever_the_events(tiny_spark):
    register = frame(tiny_spark, [
        reg_row("m_none", "E", last_seen=N26, status="resolved", resolved_on=N27),
        reg_row("m_acked", "E", last_seen=N26, status="resolved", resolved_on=N27),
        # resolved by the office as a false positive, evidence changed since (would reopen), then not observed
        reg_row("m_changed", "E new", last_seen=N26, status="resolved", resolved_on=N27),
        # the office's resolution came first and still holds: it stays the resolution
        reg_row("m_human_first", "E", last_seen=N26, status="resolved", resolved_on=N27),
    ], REGISTER)
    events = frame(tiny_spark, [
        ev(1, "m_acked", "ack", "2026-11-26 10:00:00"),
        ev(2, "m_changed", "resolve", "2026-11-26 11:00:00", reason="false_positive", digest=sha("E old")),
        ev(3, "m_human_first", "resolve", "2026-11-26 11:00:00", reason="duplicate", digest=sha("E")),
    ], EVENTS)
    expected = frame(tiny_spark, [
        # machine resolution: the morning after resolved_on (11-28 00:00), 48 h after the morning of 11-26
        ("m_none", "resolved", None, "no_longer_observed", None, "2026-11-28 00:00:00", False, None, None, 48.0, 2),
        ("m_acked", "resolved", None, "no_longer_observed", "2026-11-26 10:00:00", "2026-11-28 00:00:00", False, None,
         10.0, 48.0, 2),
        ("m_changed", "resolved", None, "no_longer_observed", "2026-11-26 11:00:00", "2026-11-28 00:00:00", False,
         None, 11.0, 48.0, 2),
        ("m_human_first", "resolved", None, "duplicate", "2026-11-26 11:00:00", "2026-11-26 11:00:00", False, None,
         11.0, 11.0, 1),
    ], EXPECTED)
    assert_frame_equal(workflow_state(register, events, None), expected, columns=CHECKED)


@pytest.mark.unit
def test_null_and_empty_inputs(tiny_spark):
    # an empty register: no rows, the documented columns
    empty = workflow_state(frame(tiny_spark, [], REGISTER), None, None)
    assert empty.columns == list(pure.STATE_COLUMNS) and empty.collect() == []
    # no events table, an empty one, no ledger: a conflict with no action is open; ages to as_of
    register = frame(tiny_spark, [reg_row("c", None, departments=()), reg_row("d", "E", first_seen=N27)], REGISTER)
    for events in (None, frame(tiny_spark, [], EVENTS)):
        got = workflow_state(register, events, frame(tiny_spark, [], DELIVERIES), as_of=date(2026, 11, 30))
        assert sorted((r["conflict_id"], r["state"], r["age_days"], r["reopened"]) for r in got.collect()) == [
            ("c", "open", 5, False), ("d", "open", 3, False)]
    # null evidence resolved as a false positive with a null digest: nothing changed, it holds;
    # null departments find no fix delivery; an event with a null last_seen still counts
    register = frame(tiny_spark, [reg_row("c", None, departments=None)], REGISTER)
    events = frame(tiny_spark, [ev(1, "c", "resolve", "2026-11-26 11:00:00", reason="false_positive", digest=None,
                                   last_seen=None)], EVENTS)
    assert [(r["state"], r["resolution"]) for r in workflow_state(register, events, None).collect()] == [
        ("resolved", "false_positive")]


@pytest.mark.unit
def test_a_reason_no_rule_names_holds_only_while_the_evidence_is_unchanged(tiny_spark):
    register = frame(tiny_spark, [reg_row("c", "E new"), reg_row("d", "E")], REGISTER)
    events = frame(tiny_spark, [ev(1, "c", "resolve", "2026-11-26 11:00:00", reason="retired", digest=sha("E")),
                                ev(2, "d", "resolve", "2026-11-26 11:00:00", reason="retired", digest=sha("E"))],
                   EVENTS)
    got = {r["conflict_id"]: r["state"] for r in workflow_state(register, events, None, reopen={}).collect()}
    assert got == {"c": "reopened", "d": "resolved"}


# ---------------------------------------------------------------- conf, checks, refusals (unit)

@pytest.mark.unit
def test_conf_and_docstrings():
    assert doctest.testmod(workflow).failed == 0 and doctest.testmod(pure).failed == 0
    wf = workflow.load_workflow()
    assert wf.reopen == {"confirmed_fixed_at_source": "observed_after_fix", "false_positive": "evidence_changed",
                         "accepted_exception": "evidence_changed", "duplicate": "never"}
    assert wf.acting_roles == ("governance_office",) and wf.office_role == "governance_office"
    assert wf.transitions["resolved"] == () and wf.transitions["open"] == ("ack", "assign", "resolve")


@pytest.mark.unit
def test_refusals_name_the_conflict_and_the_rule():
    wf, cid = workflow.load_workflow(), "ab" * 12
    assert workflow.refusal(wf, cid, {"state": "acknowledged"}, "ack") == (
        f"conflict {cid} is acknowledged: conf/workflow.yaml transitions.acknowledged allows assign, resolve — not ack")
    assert workflow.refusal(wf, cid, {"state": "resolved", "resolution": "duplicate"}, "assign", "police") == (
        f"conflict {cid} is resolved (duplicate): conf/workflow.yaml transitions.resolved allows no action")
    assert workflow.refusal(wf, cid, {"state": "assigned", "assigned_to": "police"}, "assign", "police") == (
        f"conflict {cid} is already assigned to police (assigning it again would change nothing)")
    assert workflow.refusal(wf, cid, {"state": "assigned", "assigned_to": "police"}, "assign", "health") is None
    assert workflow.refusal(wf, cid, {"state": "reopened"}, "ack") is None
    assert workflow.refusal(wf, cid, {"state": "open"}, "resolve") is None


@pytest.mark.unit
def test_comments_are_scrubbed_of_numbers():
    assert workflow.scrub_comment("  王 13912345678, 11010119900307001X / 110101900307001 ok ") == (
        "王 139****5678, 110101********001X / 11***********01 ok")
    assert workflow.scrub_comment("order 123456789012 stays") == "order 123456789012 stays"
    assert workflow.scrub_comment(None) is None


# ---------------------------------------------------------------- the CLI's argument errors (unit)

CID = "0123456789abcdef01234567"
BAD = [
    (["conflicts", "ack", "xyz"],
     "error: conflict id 'xyz' is not a conflict id (24 hexadecimal characters, as `shuzhi conflicts list` shows)"),
    (["conflicts", "assign", CID, "--to", "polic"],
     "error: department 'polic' is not one of police, civil_affairs, social_security, health (schemas/feeds.yaml)"),
    (["conflicts", "resolve", CID, "--reason", "fixed", "--comment", "x"],
     "error: reason 'fixed' is not one of confirmed_fixed_at_source, false_positive, accepted_exception, duplicate "
     "(conf/workflow.yaml)"),
    (["conflicts", "resolve", CID, "--reason", "false_positive"],
     f"error: resolve {CID} --reason false_positive needs --comment (conf/workflow.yaml "
     "reasons.false_positive.comment: required)"),
    (["conflicts", "ack", CID, "--role", "data_engineer"],
     "error: role 'data_engineer' may not act on conflicts (conf/workflow.yaml acting_roles: governance_office)"),
    (["conflicts", "ack", CID, "--role", "mayor"],
     "error: role 'mayor' is not one of data_engineer, governance_office, scheduler (conf/roles.yaml)"),
    (["conflicts", "list", "--status", "closed"],
     "error: status 'closed' is not one of open, acknowledged, assigned, resolved, reopened"),
    (["conflicts", "list", "--department", "tax"],
     "error: department 'tax' is not one of police, civil_affairs, social_security, health (schemas/feeds.yaml)"),
    (["conflicts", "list", "--limit", "0"], "error: --limit 0 must be at least 1"),
]


@pytest.fixture
def no_lake(settings, monkeypatch):
    for k, v in settings.env_vars().items():
        if not k.startswith("AIRFLOW"):
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("SHUZHI_LAKE")
    monkeypatch.delenv("SHUZHI_ROLE", raising=False)
    return settings


@pytest.mark.unit
@pytest.mark.parametrize("argv, line", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_cli_argument_errors_are_one_line_exit_2(no_lake, capsys, argv, line):
    from shuzhi.cli import main

    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == line + "\n"
    assert not no_lake.lake.exists()


@pytest.mark.unit
def test_cli_on_a_missing_lake(no_lake, capsys):
    from shuzhi.cli import main

    assert main(["conflicts", "ack", CID]) == 2
    assert capsys.readouterr().err == (f"error: no lake at {no_lake.lake} (SHUZHI_HOME={no_lake.home}); run the "
                                       "demo or ingest first\n")
    assert not no_lake.lake.exists()


# ---------------------------------------------------------------- round trip on a small lake (spark)

ID1 = "150105198503021234"
C1, C2, C3 = "c1" * 12, "c2" * 12, "c3" * 12


def _register(spark, keyring, night, ev1):
    """The register as the verify job would leave it on ``night``: c1 (a person, evidence ``ev1``),
    c2 (an employer record), c3 (a person; its contradiction still observed every night)."""
    from pyspark.sql import functions as F

    from shuzhi.crypto import encrypt
    from shuzhi.stages.conflicts import conflicts_schema

    rows = [
        (C1, "X_NAME_MISMATCH", "medium", ["health", "police"], ["health/residents/H1", "police/population/P1"],
         "person:t1", "t1", ID1, ev1, N25, night, "open", None, "run"),
        (C2, "X_USCC_INVALID", "medium", ["social_security"], ["social_security/insurance/S2"],
         "social_security/insurance/S2", None, None, "employer code X fails its check", N25, night, "open", None,
         "run"),
        (C3, "X_BIRTH_MISMATCH", "medium", ["health", "police"], ["health/residents/H3", "police/population/P3"],
         "person:t3", "t3", "11010119900307001X", "birth date differs by 3 day(s)", N25, night, "open", None, "run"),
    ]
    schema = conflicts_schema()
    ddl = ", ".join(f"{f.name} {'string' if f.name == 'citizen_id_enc' else f.dataType.simpleString()}"
                    for f in schema.fields)
    return (spark.createDataFrame(rows, ddl)
            .withColumn("citizen_id_enc", encrypt(F.col("citizen_id_enc"), keyring)).select(*schema.names))


def _write_night(spark, settings, keyring, night, ev1, deliveries):
    from shuzhi.delta import rows_frame, write_to

    write_to(settings, "gold.conflicts", _register(spark, keyring, night, ev1), mode="snapshot")
    base = dict(kind="full", status="accepted", reason_code=None, message=None, file=None, entity=None,
                manifest_rows=1, bronze_rows=1, quarantined_rows=0, balanced=True, declared_encoding=None,
                actual_encoding=None, has_bom=None, run_id="run")
    rows = [dict(base, delivery_id=f"{src}/{bd}", source=src, batch_date=bd, recorded_at=at)
            for src, bd, at in deliveries]
    if rows:
        write_to(settings, "ops.deliveries", rows_frame(spark, "ops.deliveries", rows), mode="append",
                 txn=(f"test-deliveries:{night}", 0))


def _at(day, hh, mm=0):
    return datetime(2026, 11, day, hh, mm, tzinfo=SH)


@pytest.mark.spark
def test_round_trip_on_a_small_lake(spark, settings, keyring, monkeypatch, capsys):
    from shuzhi.access import Reader
    from shuzhi.cli import main
    from shuzhi.delta import read_table, rows_frame, write_to

    wf = workflow.load_workflow()
    office = Reader("li.wei", "governance_office")
    act = dict(who="li.wei", role="governance_office")

    def states():
        st = workflow.state_frame(spark, settings, wf, office)
        return {r["conflict_id"]: (r["state"], r["assigned_to"], r["resolution"]) for r in st.collect()}

    # night 11-25: three open conflicts; police and health delivered that night
    _write_night(spark, settings, keyring, N25, "name differs (E1)",
                 [("police", N25, _at(26, 1, 40)), ("health", N25, _at(26, 1, 40))])
    assert states() == {C1: ("open", None, None), C2: ("open", None, None), C3: ("open", None, None)}

    # ack → assign → resolve as a false positive; a re-run is refused and writes nothing (the other
    # refusals: test_refusals_name_the_conflict_and_the_rule; an unknown id: the command line below)
    assert workflow.act(spark, settings, wf, C1, "ack", comment="call 13812345678", now=_at(26, 10), **act)[
        "state"] == "acknowledged"
    with pytest.raises(workflow.WorkflowRefused, match=f"^conflict {C1} is acknowledged: conf/workflow.yaml "
                                                       "transitions.acknowledged allows assign, resolve — not ack$"):
        workflow.act(spark, settings, wf, C1, "ack", now=_at(26, 10, 5), **act)
    res = workflow.act(spark, settings, wf, C1, "assign", department="health", now=_at(26, 11), **act)
    assert (res["was"], res["state"], res["assigned_to"]) == ("acknowledged", "assigned", "health")
    res = workflow.act(spark, settings, wf, C1, "resolve", reason="false_positive", comment="same person, alias",
                       now=_at(26, 16), **act)
    assert (res["was"], res["state"], res["resolution"]) == ("assigned", "resolved", "false_positive")
    # c3: the department says it fixed the record at source
    workflow.act(spark, settings, wf, C3, "resolve", reason="confirmed_fixed_at_source", now=_at(26, 16, 30), **act)

    # night 11-26: the same evidence — c1 stays resolved; c3 is still observed on the night of health's
    # first delivery since the fix, which is not yet a night after it: resolved
    _write_night(spark, settings, keyring, N26, "name differs (E1)", [("health", N26, _at(27, 1, 40))])
    assert states() == {C1: ("resolved", "health", "false_positive"), C2: ("open", None, None),
                        C3: ("resolved", None, "confirmed_fixed_at_source")}
    summary = workflow.conflict_summary(spark, settings, "2026-11-26", reader=office)
    zero = dict.fromkeys(("open", "acknowledged", "assigned", "resolved", "reopened"), 0)
    assert summary == {
        "night": "2026-11-26",
        "counts": dict(zero, open=1, resolved=2),
        "by_rule": {"X_BIRTH_MISMATCH": dict(zero, resolved=1), "X_NAME_MISMATCH": dict(zero, resolved=1),
                    "X_USCC_INVALID": dict(zero, open=1)},
        "by_department": {"health": dict(zero, resolved=2), "police": dict(zero, resolved=2),
                          "social_security": dict(zero, open=1)},
        # c1 acknowledged 10 h after the morning of 11-26, c3 (its resolve) 16.5 h; resolved 16 h and 16.5 h
        "median_hours_to_acknowledge": 13.25, "median_hours_to_resolve": 16.25,
        "oldest_open": [{"conflict_id": C2, "rule_id": "X_USCC_INVALID", "severity": "medium",
                         "departments": ["social_security"], "subject_masked": "social_security/insurance/S2",
                         "state": "open", "assigned_to": None, "first_seen": "2026-11-25", "last_seen": "2026-11-26",
                         "age_days": 1}]}

    # night 11-27: c1's evidence changed → reopened; c3 still observed after the fix delivery → reopened
    _write_night(spark, settings, keyring, N27, "name differs (E1, second record)", [])
    st = {r["conflict_id"]: r for r in workflow.state_frame(spark, settings, wf, office).collect()}
    assert (st[C1]["state"], st[C1]["reopened"], st[C1]["reopen_reason"]) == (
        "reopened", True, "evidence changed since it was resolved as false_positive (evidence of night 2026-11-25)")
    assert (st[C3]["state"], st[C3]["reopen_reason"]) == (
        "reopened", "still observed on 2026-11-27, after the health delivery of 2026-11-26, the first since it was "
                    "resolved as confirmed_fixed_at_source")
    total, rows = workflow.list_conflicts(spark, settings, wf, office, status="reopened", department="police")
    assert total == 2 and [(r["conflict_id"], r["subject_masked"]) for r in rows] == [
        (C1, "150105********1234"), (C3, "110101********001X")]
    # a reopened conflict takes actions again
    assert workflow.act(spark, settings, wf, C1, "ack", now=_at(27, 9), **act)["state"] == "acknowledged"

    # every action is one row of ops.conflict_events; refusals wrote none; no plaintext number anywhere
    events = read_table(spark, settings.table_path("ops", "conflict_events")).orderBy("at").collect()
    assert [(e["conflict_id"], e["action"], e["department"], e["reason"]) for e in events] == [
        (C1, "ack", None, None), (C1, "assign", "health", None), (C1, "resolve", None, "false_positive"),
        (C3, "resolve", None, "confirmed_fixed_at_source"), (C1, "ack", None, None)]
    assert [e["evidence_digest"] for e in events] == [sha("name differs (E1)")] * 3 + [
        sha("birth date differs by 3 day(s)"), sha("name differs (E1, second record)")]
    assert [e["last_seen"] for e in events] == [N25, N25, N25, N25, N27]
    assert events[0]["comment"] == "call 138****5678" and {e["who"] for e in events} == {"li.wei"}
    assert all(ID1 not in str(e.asDict().values()) for e in events)
    # the same event written again (a retried write, a race of two identical commands): its txn id is
    # committed, so Delta skips it
    again = write_to(settings, "ops.conflict_events", rows_frame(spark, "ops.conflict_events", [events[0].asDict()]),
                     mode="append", txn=(f"conflict_event:{events[0]['event_id']}", 0))
    assert again.skipped and read_table(spark, settings.table_path("ops", "conflict_events")).count() == 5

    # the command line: ack c2, its re-run refused in one line, an unknown id, the list
    for k, v in settings.env_vars().items():
        if not k.startswith("AIRFLOW"):
            monkeypatch.setenv(k, v)
    monkeypatch.delenv("SHUZHI_ROLE", raising=False)
    capsys.readouterr()
    assert main(["conflicts", "ack", C2, "--by", "wang.fang"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"conflict {C2}: ack by wang.fang (governance_office) — open → acknowledged (event ")
    assert main(["conflicts", "ack", C2, "--by", "wang.fang"]) == 2
    assert capsys.readouterr().err == (f"error: conflict {C2} is acknowledged: conf/workflow.yaml "
                                       "transitions.acknowledged allows assign, resolve — not ack\n")
    assert main(["conflicts", "assign", "e" * 24, "--to", "police"]) == 2
    assert capsys.readouterr().err == (f"error: no conflict {'e' * 24} in gold.conflicts (see `shuzhi conflicts "
                                       "list`)\n")
    assert main(["conflicts", "list", "--status", "acknowledged"]) == 0
    out = capsys.readouterr().out
    assert C1 in out and C2 in out and C3 not in out and "150105********1234" in out and ID1 not in out
    assert read_table(spark, settings.table_path("ops", "conflict_events")).count() == 6
