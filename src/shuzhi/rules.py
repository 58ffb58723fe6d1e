"""The rule engine's catalogue: ``conf/rules.yaml`` as typed objects.

Detectors live in code (``shuzhi.cleaning`` for the clean stage, ``jobs/verify.py`` for
cross-verification), keyed by rule id; this catalogue decides whether a rule runs, what it does
and how severe it is, and carries its published descriptions::

    >>> r = load_rules()["ID_CHECK"]
    >>> r.stage, r.action, r.severity
    ('clean', 'quarantine', 'high')
    >>> load_rules()["X_DECEASED_PAID"].action
    'register'

Pure Python (no Spark).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .config import load_yaml

ACTIONS = {"clean": ("correct", "flag", "quarantine", "supersede"), "verify": ("register",)}
SEVERITIES = ("high", "medium", "low")


@dataclass(frozen=True)
class Rule:
    id: str
    stage: str
    action: str
    severity: str
    zh: str
    en: str
    elements: tuple[str, ...] = ()
    required_only: bool = False
    enabled: bool = True
    entities: tuple[str, ...] = ()


@lru_cache(maxsize=None)
def load_rules() -> dict[str, Rule]:
    """All rules by id; raises naming the rule if one is malformed."""
    raw = load_yaml("rules.yaml")
    out: dict[str, Rule] = {}
    for stage in ("clean", "verify"):
        for rid, r in (raw.get(stage) or {}).items():
            rule = Rule(id=rid, stage=stage, action=r["action"], severity=r["severity"], zh=r["zh"], en=r["en"],
                        elements=tuple(r.get("elements") or ()), required_only=bool(r.get("required_only", False)),
                        enabled=bool(r.get("enabled", True)), entities=tuple(r.get("entities") or ()))
            if rule.action not in ACTIONS[stage]:
                raise ValueError(f"conf/rules.yaml: {rid}: action {rule.action!r} not in {ACTIONS[stage]}")
            if rule.severity not in SEVERITIES:
                raise ValueError(f"conf/rules.yaml: {rid}: severity {rule.severity!r} not in {SEVERITIES}")
            if rid in out:
                raise ValueError(f"conf/rules.yaml: rule {rid} declared twice")
            out[rid] = rule
    return out


@lru_cache(maxsize=None)
def precedence() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in load_yaml("rules.yaml")["precedence"].items()}


def rules_for(stage: str) -> list[Rule]:
    return [r for r in load_rules().values() if r.stage == stage]
