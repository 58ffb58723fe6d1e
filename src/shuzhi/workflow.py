"""The conflict workflow (issue 13): the governance office acknowledges, assigns (to a department)
and resolves the conflicts of the register ``gold.conflicts`` — what OpenMetadata's incident
manager does for test failures. Each action is one row of ``ops.conflict_events`` (append-only);
the state of a conflict is derived, never stored, by the pure ``workflow_state`` (in
``shuzhi.stages.workflow``, re-exported here) from the register, the events and the delivery
ledger. Reasons, reopen rules, transitions and the roles that may act: ``conf/workflow.yaml``.

    >>> wf = load_workflow()
    >>> wf.office_role, wf.transitions["acknowledged"]
    ('governance_office', ('assign', 'resolve'))
    >>> check_conflict_id("0123456789abcdef01234567")
    '0123456789abcdef01234567'
    >>> scrub_comment("called 13812345678 about 150105198503021234")
    'called 138****5678 about 150105********1234'
    >>> act(spark, settings, wf, "0123456789abcdef01234567", "ack", who="li.wei",
    ...     role="governance_office")["state"]                                      # doctest: +SKIP
    'acknowledged'

The shell here reads (the register through ``shuzhi.access.read``, a logged read; the ledgers at
their head), checks an action against the state and ``conf/workflow.yaml`` and appends its event;
``conflict_summary`` is what the cockpit report shows.

Re-running an action is *refused*, not silently repeated: the event log is the office's record
of who did what, so a second ``ack`` (or an ``assign`` to the department already holding it, or
a ``resolve`` of a resolved conflict) is a transition ``conf/workflow.yaml`` forbids, answered
with one ``error:`` line. A write retried after a crash (or a race of two identical commands)
is idempotent: the event id is ``sha256(conflict_id | n | action)`` with ``n`` the events the
conflict had, and it is the Delta txn id of the append, so the same event is committed once.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from .access import Reader, read, read_if_exists
from .config import CONF_DIR, Settings, load_yaml
from .crypto import Keyring, decrypt
from .delta import rows_frame, write_to
from .errors import UsageError
from .exports import mask_citizen_id, mask_citizen_id_col
from .schemas import catalog
from .stages.workflow import ACTIONS, REOPEN_RULES, STATES, evidence_digest, workflow_state

__all__ = ["Workflow", "WorkflowRefused", "load_workflow", "workflow_state", "act", "state_frame", "list_conflicts",
           "conflict_summary", "check_conflict_id", "check_department", "check_reason", "check_status",
           "check_acting_role", "check_comment", "scrub_comment", "refusal", "event_id_for"]

REGISTER = "gold.conflicts"
EVENTS = "ops.conflict_events"
WORKFLOW_YAML = "workflow.yaml"
_CONFLICT_ID = re.compile(r"[0-9a-f]{24}")
_ID_RUN = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[0-9Xx]|\d{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
COMMENT_MAX = 500


class WorkflowRefused(UsageError):
    """An action the workflow does not allow (unknown conflict, a transition conf/workflow.yaml
    forbids): one ``error:`` line, exit code 2."""


# ---------------------------------------------------------------- conf/workflow.yaml

@dataclass(frozen=True)
class Workflow:
    """``conf/workflow.yaml`` as plain values."""
    acting_roles: tuple[str, ...]
    office_role: str
    actions: tuple[str, ...]
    reopen: dict[str, str]                       # reason → reopen rule
    reason_zh: dict[str, str]
    comment_required: frozenset[str]             # actions and reasons that need a comment
    transitions: dict[str, tuple[str, ...]]      # state → actions allowed

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(self.reopen)


def load_workflow(folder: Path = CONF_DIR) -> Workflow:
    """Read and check ``conf/workflow.yaml`` (roles against ``conf/roles.yaml``, rules, states)."""
    raw = load_yaml(WORKFLOW_YAML, folder)
    roles = load_yaml("roles.yaml", folder)["roles"]
    where = f"conf/{WORKFLOW_YAML}"
    acting = tuple(raw["acting_roles"])
    for r in acting + (raw["office_role"],):
        if r not in roles:
            raise UsageError(f"{where}: role {r!r} is not one of {', '.join(sorted(roles))} (conf/roles.yaml)")
    if raw["office_role"] not in acting:
        raise UsageError(f"{where}: office_role {raw['office_role']!r} is not one of acting_roles")
    actions = tuple(raw["actions"])
    if set(actions) != set(ACTIONS):
        raise UsageError(f"{where}: actions {', '.join(actions)}; expected {', '.join(ACTIONS)}")
    reopen, zh, needs_comment = {}, {}, set()
    for reason, spec in raw["reasons"].items():
        if spec.get("reopen") not in REOPEN_RULES:
            raise UsageError(f"{where}: reasons.{reason}.reopen {spec.get('reopen')!r} is not one of "
                             f"{', '.join(REOPEN_RULES)}")
        reopen[reason], zh[reason] = spec["reopen"], spec.get("zh", "")
        if spec.get("comment", "optional") == "required":
            needs_comment.add(reason)
    needs_comment |= {a for a, spec in raw["actions"].items() if (spec or {}).get("comment") == "required"}
    transitions = {s: tuple(v or ()) for s, v in raw["transitions"].items()}
    if set(transitions) != set(STATES):
        raise UsageError(f"{where}: transitions name the states {', '.join(transitions)}; expected "
                         f"{', '.join(STATES)}")
    for s, allowed in transitions.items():
        if set(allowed) - set(actions):
            raise UsageError(f"{where}: transitions.{s}: {', '.join(sorted(set(allowed) - set(actions)))} is no action")
    return Workflow(acting, raw["office_role"], actions, reopen, zh, frozenset(needs_comment), transitions)


# ---------------------------------------------------------------- argument checks (no Spark)

def check_conflict_id(conflict_id: str) -> str:
    if not _CONFLICT_ID.fullmatch(conflict_id or ""):
        raise UsageError(f"conflict id {conflict_id!r} is not a conflict id (24 hexadecimal characters, as "
                         "`shuzhi conflicts list` shows)")
    return conflict_id


def check_department(department: str) -> str:
    sources = list(catalog().sources)
    if department not in sources:
        raise UsageError(f"department {department!r} is not one of {', '.join(sources)} (schemas/feeds.yaml)")
    return department


def check_reason(wf: Workflow, reason: str) -> str:
    if reason not in wf.reopen:
        raise UsageError(f"reason {reason!r} is not one of {', '.join(wf.reasons)} (conf/{WORKFLOW_YAML})")
    return reason


def check_status(status: str) -> str:
    if status not in STATES:
        raise UsageError(f"status {status!r} is not one of {', '.join(STATES)}")
    return status


def check_acting_role(wf: Workflow, role: str) -> str:
    """A role of ``conf/roles.yaml`` that ``conf/workflow.yaml`` lets act on conflicts."""
    roles = load_yaml("roles.yaml")["roles"]
    if role not in roles:
        raise UsageError(f"role {role!r} is not one of {', '.join(sorted(roles))} (conf/roles.yaml)")
    if role not in wf.acting_roles:
        raise UsageError(f"role {role!r} may not act on conflicts (conf/{WORKFLOW_YAML} acting_roles: "
                         f"{', '.join(wf.acting_roles)})")
    return role


def check_comment(wf: Workflow, conflict_id: str, action: str, reason: str | None, comment: str | None) -> None:
    if comment is not None and len(comment) > COMMENT_MAX:
        raise UsageError(f"--comment has {len(comment)} characters; at most {COMMENT_MAX}")
    if comment and comment.strip():
        return
    if action in wf.comment_required:
        raise UsageError(f"{action} {conflict_id} needs --comment (conf/{WORKFLOW_YAML} actions.{action}.comment: "
                         "required)")
    if action == "resolve" and reason in wf.comment_required:
        raise UsageError(f"resolve {conflict_id} --reason {reason} needs --comment (conf/{WORKFLOW_YAML} "
                         f"reasons.{reason}.comment: required)")


def scrub_comment(text: str | None) -> str | None:
    """A comment as it is stored: identity-number-like runs masked as the exports mask them, and
    mobile numbers as ``138****5678`` (a comment is free text; it is no place for an L3/L4 value)."""
    if text is None:
        return None
    text = _ID_RUN.sub(lambda m: mask_citizen_id(m.group(0)), text.strip())
    return _MOBILE.sub(lambda m: m.group(0)[:3] + "****" + m.group(0)[-4:], text)


def refusal(wf: Workflow, conflict_id: str, state: dict[str, Any], action: str,
            department: str | None = None) -> str | None:
    """Why ``action`` may not be taken on a conflict in ``state`` (a row of ``workflow_state``), or
    None. Pure: the transitions of ``conf/workflow.yaml``, and an assign to the department that
    already holds the conflict.

    >>> print(refusal(load_workflow(), "c" * 24, {"state": "acknowledged"}, "ack"))
    conflict cccccccccccccccccccccccc is acknowledged: conf/workflow.yaml transitions.acknowledged allows assign, \
resolve — not ack
    """
    st = state["state"]
    allowed = wf.transitions.get(st, ())
    if action not in allowed:
        what = f"{st} ({state['resolution']})" if st == "resolved" and state.get("resolution") else st
        rule = f"allows {', '.join(allowed)} — not {action}" if allowed else "allows no action"
        return f"conflict {conflict_id} is {what}: conf/{WORKFLOW_YAML} transitions.{st} {rule}"
    if action == "assign" and st == "assigned" and state.get("assigned_to") == department:
        return (f"conflict {conflict_id} is already assigned to {department} (assigning it again would change "
                "nothing)")
    return None


def event_id_for(conflict_id: str, n_before: int, action: str) -> str:
    """The event id (and txn id) of the conflict's event number ``n_before`` (0-based).

    >>> event_id_for("c" * 24, 0, "ack") == hashlib.sha256(b"cccccccccccccccccccccccc|0|ack").hexdigest()[:24]
    True
    """
    return hashlib.sha256(f"{conflict_id}|{n_before}|{action}".encode()).hexdigest()[:24]


# ---------------------------------------------------------------- reads

def read_register(spark, settings: Settings, reader: Reader):
    """The register at its published version (a logged read); None if there is none."""
    return read(spark, settings, REGISTER, reader=reader)


def read_events(spark, settings: Settings):
    return read_if_exists(spark, settings, "ops", "conflict_events")


def read_deliveries(spark, settings: Settings):
    return read_if_exists(spark, settings, "ops", "deliveries")


def state_frame(spark, settings: Settings, wf: Workflow, reader: Reader, *, as_of: date | None = None,
                register=None):
    """``workflow_state`` over the lake's register, events and delivery ledger, with the register's
    ``subject`` and ``citizen_id_enc`` joined back (for masking); None without a register."""
    register = read_register(spark, settings, reader) if register is None else register
    if register is None:
        return None
    st = workflow_state(register, read_events(spark, settings), read_deliveries(spark, settings),
                        reopen=wf.reopen, as_of=as_of)
    return st.join(register.select("conflict_id", "subject", "citizen_id_enc"), "conflict_id", "left")


# ---------------------------------------------------------------- the actions

def act(spark, settings: Settings, wf: Workflow, conflict_id: str, action: str, *, who: str, role: str,
        department: str | None = None, reason: str | None = None, comment: str | None = None,
        now: datetime | None = None) -> dict[str, Any]:
    """Take ``action`` (ack | assign | resolve) on a conflict: check it against its state and
    ``conf/workflow.yaml`` (``WorkflowRefused`` otherwise), append its event to
    ``ops.conflict_events`` and return ``{"event": row, "was": state before, "state": state after}``."""
    check_conflict_id(conflict_id)
    check_acting_role(wf, role)
    if action not in ACTIONS:
        raise UsageError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if action == "assign":
        check_department(department)
    if action == "resolve":
        check_reason(wf, reason)
    check_comment(wf, conflict_id, action, reason, comment)
    register = read_register(spark, settings, Reader(who, role))
    one = None if register is None else register.filter(F.col("conflict_id") == conflict_id)
    found = [] if one is None else one.select(evidence_digest(F.col("evidence")).alias("d"), "last_seen").collect()
    if not found:
        raise WorkflowRefused(f"no conflict {conflict_id} in {REGISTER} (see `shuzhi conflicts list`)")
    events = read_events(spark, settings)
    mine = None if events is None else events.filter(F.col("conflict_id") == conflict_id)
    deliveries = read_deliveries(spark, settings)
    before = workflow_state(one, mine, deliveries, reopen=wf.reopen).collect()[0].asDict()
    why = refusal(wf, conflict_id, before, action, department)
    if why:
        raise WorkflowRefused(why)
    n = 0 if mine is None else mine.count()
    eid = event_id_for(conflict_id, n, action)
    row = dict(event_id=eid, conflict_id=conflict_id, action=action,
               department=department if action == "assign" else None,
               reason=reason if action == "resolve" else None, comment=scrub_comment(comment) or None,
               evidence_digest=found[0]["d"], last_seen=found[0]["last_seen"], who=who, role=role,
               at=now or datetime.now(timezone.utc))
    new = rows_frame(spark, EVENTS, [row])
    write_to(settings, EVENTS, new, mode="append", txn=(f"conflict_event:{eid}", 0))
    after_events = new if mine is None else mine.unionByName(new)
    after = workflow_state(one, after_events, deliveries, reopen=wf.reopen).collect()[0].asDict()
    return {"event": row, "was": before["state"], "state": after["state"], "assigned_to": after["assigned_to"],
            "resolution": after["resolution"]}


# ---------------------------------------------------------------- what the office reads

def _can_unmask(role: str) -> bool:
    return load_yaml("roles.yaml")["roles"][role].get("decrypt") not in (False, None, "false")


def masked_subject(keyring: Keyring | None):
    """What a list shows of a conflict's subject: the masked identity number when the register
    holds one (and the reader's role may see it masked), a record reference as it is (it is the
    ``source/entity/record_id`` of ``record_refs``), never a token."""
    masked = (mask_citizen_id_col(decrypt(F.col("citizen_id_enc"), keyring)) if keyring is not None
              else F.lit(None).cast("string"))
    return (F.when(F.col("citizen_id_enc").isNotNull() & masked.isNotNull(), masked)
            .when(F.col("subject").startswith("person:"), F.lit("person:******"))
            .when(F.col("subject").isNotNull() & ~F.col("subject").contains(":"), F.col("subject"))
            .otherwise(F.lit("******")))


def list_conflicts(spark, settings: Settings, wf: Workflow, reader: Reader, *, status: str | None = None,
                   department: str | None = None, limit: int = 20) -> tuple[int, list[dict[str, Any]]]:
    """(how many match, the first ``limit`` oldest first) of the conflicts in workflow state
    ``status`` that involve or are assigned to ``department``; L1/L2 columns and a masked subject."""
    st = state_frame(spark, settings, wf, reader)
    if st is None:
        return 0, []
    if status is not None:
        st = st.filter(F.col("state") == status)
    if department is not None:
        st = st.filter(F.array_contains("departments", department) | (F.col("assigned_to") == department))
    keyring = Keyring.load(settings.key_dir) if _can_unmask(reader.role) else None
    st = st.withColumn("subject_masked", masked_subject(keyring)).drop("subject", "citizen_id_enc").cache()
    try:
        total = st.count()
        rows = [r.asDict() for r in st.orderBy("first_seen", "conflict_id").limit(limit).collect()]
    finally:
        st.unpersist()
    return total, rows


def _median(df, col: str) -> float | None:
    v = df.filter(F.col(col).isNotNull()).agg(F.median(col).alias("m")).collect()[0]["m"]
    return None if v is None else round(float(v), 2)


def conflict_summary(spark, settings: Settings, night: str | date, *, reader: Reader | None = None,
                     wf: Workflow | None = None) -> dict[str, Any]:
    """For the cockpit report: the register's conflicts first seen by ``night``, in their workflow
    state now (ages counted to ``night``): counts per state, per rule and per department (a conflict
    counts under each department it involves), median hours to acknowledge and to resolve, and the
    10 oldest unresolved conflicts with a masked subject. Reads as the office (``$SHUZHI_ROLE``
    or the office role) unless ``reader`` is given.

        >>> conflict_summary(spark, settings, "2026-11-26")["counts"]              # doctest: +SKIP
        {'open': 3, 'acknowledged': 1, 'assigned': 0, 'resolved': 2, 'reopened': 0}
    """
    wf = wf or load_workflow()
    n = night if isinstance(night, date) else date.fromisoformat(str(night))
    reader = reader or Reader.from_env(role=os.environ.get("SHUZHI_ROLE") or wf.office_role)
    zero = {s: 0 for s in STATES}
    out: dict[str, Any] = {"night": n.isoformat(), "counts": dict(zero), "by_rule": {}, "by_department": {},
                           "median_hours_to_acknowledge": None, "median_hours_to_resolve": None, "oldest_open": []}
    register = read_register(spark, settings, reader)
    if register is None:
        return out
    st = state_frame(spark, settings, wf, reader, as_of=n, register=register.filter(F.col("first_seen") <= F.lit(n)))
    st = st.cache()
    try:
        for r in st.groupBy("rule_id", "state").count().collect():
            out["counts"][r["state"]] += r["count"]
            out["by_rule"].setdefault(r["rule_id"], dict(zero))[r["state"]] += r["count"]
        for r in st.select(F.explode("departments").alias("d"), "state").groupBy("d", "state").count().collect():
            out["by_department"].setdefault(r["d"], dict(zero))[r["state"]] += r["count"]
        out["by_rule"] = dict(sorted(out["by_rule"].items()))
        out["by_department"] = dict(sorted(out["by_department"].items()))
        out["median_hours_to_acknowledge"] = _median(st, "hours_to_acknowledge")
        out["median_hours_to_resolve"] = _median(st, "hours_to_resolve")
        keyring = Keyring.load(settings.key_dir) if _can_unmask(reader.role) else None
        oldest = (st.filter(F.col("state") != "resolved").withColumn("subject_masked", masked_subject(keyring))
                  .orderBy("first_seen", "conflict_id").limit(10)
                  .select("conflict_id", "rule_id", "severity", "departments", "subject_masked", "state",
                          "assigned_to", "first_seen", "last_seen", "age_days").collect())
        out["oldest_open"] = [dict(r.asDict(), first_seen=r["first_seen"].isoformat(),
                                   last_seen=r["last_seen"].isoformat() if r["last_seen"] else None) for r in oldest]
    finally:
        st.unpersist()
    return out
