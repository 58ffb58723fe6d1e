"""The rule engine's catalogue: ``conf/rules.yaml`` as typed objects.

Detectors live in code (``shuzhi.stages.silver`` for the clean stage, ``shuzhi.stages.conflicts``
for cross-verification; the theme tables' tags in ``shuzhi.stages.themes``), keyed by rule id;
this catalogue decides whether a rule runs, what it does and how severe it is, and carries its published descriptions::

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
REQUIRED_KEYS = ("action", "severity", "zh", "en")
OPTIONAL_KEYS = ("elements", "required_only", "enabled", "entities")


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
    """All rules of ``conf/rules.yaml`` by id (``parse_rules``)."""
    return parse_rules(load_yaml("rules.yaml"))


def parse_rules(raw: dict) -> dict[str, Rule]:
    """Rules by id from the parsed catalogue; raises naming the rule if one is malformed.

    A rule has exactly the keys the ``Rule`` fields name: an unknown key is an error, which also
    catches a description cut short — in a YAML flow mapping an unquoted value ends at the first
    ``,`` and the rest of the text becomes a stray key (``en: has spaces, hyphens`` is
    ``{en: has spaces, hyphens: null}``). Descriptions must be non-empty strings.

        >>> parse_rules({"clean": {"R": {"action": "flag", "severity": "low", "zh": "甲", "en": "a, b"}}})["R"].en
        'a, b'
        >>> parse_rules({"clean": {"R": {"action": "flag", "severity": "low", "zh": "甲", "en": "a",
        ...                              " b": None}}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: conf/rules.yaml: R: unknown key(s) [' b'] (a description with an unquoted comma? quote it); ...
    """
    stray = sorted(map(str, set(raw) - {"ingest", "clean", "verify", "precedence", "tags"}))
    if stray:
        raise ValueError(f"conf/rules.yaml: unknown section(s) {stray}")
    out: dict[str, Rule] = {}
    for stage in ("clean", "verify"):
        for rid, r in (raw.get(stage) or {}).items():
            if not isinstance(r, dict):
                raise ValueError(f"conf/rules.yaml: {rid}: expected a mapping, got {r!r}")
            unknown = sorted(map(str, set(r) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS)))
            if unknown:
                raise ValueError(f"conf/rules.yaml: {rid}: unknown key(s) {unknown} (a description with an unquoted "
                                 f"comma? quote it); allowed: {REQUIRED_KEYS + OPTIONAL_KEYS}")
            missing = [k for k in REQUIRED_KEYS if k not in r]
            if missing:
                raise ValueError(f"conf/rules.yaml: {rid}: missing key(s) {missing}")
            for k in ("zh", "en"):
                if not isinstance(r[k], str) or not r[k].strip():
                    raise ValueError(f"conf/rules.yaml: {rid}: {k} must be a non-empty string, got {r[k]!r}")
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


@dataclass(frozen=True)
class Reason:
    """A quarantine reason code of the ingest stage, with its published descriptions."""
    code: str
    zh: str
    en: str


@lru_cache(maxsize=None)
def ingest_reasons() -> dict[str, Reason]:
    """The ingest stage's reason codes (``conf/rules.yaml`` ``ingest``), by code.

        >>> ingest_reasons()["RECORD_ID_MISSING"].zh
        '记录格式正确但缺少记录标识'
    """
    out = {}
    for code, r in (load_yaml("rules.yaml").get("ingest") or {}).items():
        if not isinstance(r, dict) or set(r) != {"zh", "en"} or not all(isinstance(v, str) and v.strip()
                                                                         for v in r.values()):
            raise ValueError(f"conf/rules.yaml: ingest.{code}: needs exactly non-empty zh and en, got {r!r}")
        out[code] = Reason(code, r["zh"], r["en"])
    return out


@dataclass(frozen=True)
class Tag:
    """A dynamic tag of a theme table: its descriptions and, where it has them, its thresholds."""
    theme: str
    name: str
    zh: str
    en: str
    params: tuple[tuple[str, int], ...] = ()

    def param(self, key: str) -> int:
        return dict(self.params)[key]


def parse_tags(raw: dict) -> dict[str, dict[str, Tag]]:
    """Tags by theme and name from the ``tags`` section; raises naming a malformed tag.

        >>> t = parse_tags({"person": {"elderly_alone": {"zh": "独居老人", "en": "alone", "min_age": 60}}})
        >>> t["person"]["elderly_alone"].param("min_age")
        60
        >>> parse_tags({"person": {"x": {"zh": "甲", "en": "a", "min_age": "sixty"}}})
        Traceback (most recent call last):
        ...
        ValueError: conf/rules.yaml: tags.person.x: min_age must be an integer, got 'sixty'
    """
    out: dict[str, dict[str, Tag]] = {}
    for theme, tags in (raw or {}).items():
        out[theme] = {}
        for name, t in (tags or {}).items():
            where = f"conf/rules.yaml: tags.{theme}.{name}"
            if not isinstance(t, dict) or not all(isinstance(t.get(k), str) and t[k].strip() for k in ("zh", "en")):
                raise ValueError(f"{where}: needs non-empty zh and en descriptions")
            params = {k: v for k, v in t.items() if k not in ("zh", "en")}
            for k, v in params.items():
                if not isinstance(v, int) or isinstance(v, bool):
                    raise ValueError(f"{where}: {k} must be an integer, got {v!r}")
            out[theme][name] = Tag(theme, name, t["zh"], t["en"], tuple(sorted(params.items())))
    return out


@lru_cache(maxsize=None)
def load_tags() -> dict[str, dict[str, Tag]]:
    """The theme tables' tags of ``conf/rules.yaml`` (``parse_tags``)."""
    return parse_tags(load_yaml("rules.yaml").get("tags"))


def rules_for(stage: str) -> list[Rule]:
    return [r for r in load_rules().values() if r.stage == stage]
