"""The retention policy of ``conf/retention.yaml`` as typed objects, and the lake's table inventory.

    >>> from shuzhi.retention import load_policy
    >>> p = load_policy()
    >>> p.classes["incident"].clock, p.classes["incident"].destroy_after
    ('report_time', 3650)
    >>> [h.id for h in p.holds]
    ['H_OPEN_INCIDENT', 'H_OPEN_CONFLICT']

Pure Python (no Spark): the DAGs and the catalogue read it too.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from .config import load_yaml
from .schemas import catalog

LOAD_DATE = "load_date"     # clock name meaning "the night the held version was delivered"


@dataclass(frozen=True)
class RetentionClass:
    name: str
    clock: str
    cold_after: int
    archive_after: int
    destroy_after: int

    def destroy_cutoff(self, as_of: date) -> date:
        """A record whose clock is on or before this date is past its destruction age at ``as_of``."""
        return self.cutoff(as_of, "destroy")

    def cutoff(self, as_of: date, age: str) -> date:
        """The latest clock date past ``age`` (``cold``, ``archive`` or ``destroy``) at ``as_of``."""
        return as_of - timedelta(days=getattr(self, f"{age}_after"))


@dataclass(frozen=True)
class Hold:
    id: str
    description_zh: str
    description_en: str
    table: str              # "<layer>.<name>"
    when: str               # SQL condition on that table
    record: bool            # the matching row's record itself is held
    persons: tuple[str, ...]  # token columns (string or array) naming the persons held


@dataclass(frozen=True)
class Tiering:
    window_days: int = 90
    keep_hot_reads: int = 3
    promote_reads: int = 3
    cold_codec: str = "zstd"


@dataclass(frozen=True)
class Policy:
    classes: dict[str, RetentionClass]
    tables: dict[str, str]          # "<layer>.<name>" → class, for tables that are not one entity
    holds: tuple[Hold, ...]
    vacuum_retain_hours: int
    log_retention: str
    tiering: Tiering

    def table_class(self, table: str) -> RetentionClass:
        return self.classes[self.tables[table]]


@lru_cache(maxsize=None)
def load_policy(folder: Path | None = None) -> Policy:
    """Load and cross-check ``conf/retention.yaml``: every class an entity or table names must exist."""

    raw = load_yaml("retention.yaml") if folder is None else load_yaml("retention.yaml", folder)
    classes = {n: RetentionClass(n, **c) for n, c in raw["classes"].items()}
    for n, c in classes.items():
        if not c.cold_after <= c.archive_after <= c.destroy_after:
            raise ValueError(f"conf/retention.yaml: class {n}: cold_after ≤ archive_after ≤ destroy_after must hold")
    tables = dict(raw.get("tables") or {})
    for e in catalog().entities():
        if e.retention_class not in classes:
            raise ValueError(f"schemas/feeds.yaml: {e.source}.{e.name}: retention class {e.retention_class!r} "
                             "is not in conf/retention.yaml")
        cls = classes[e.retention_class]
        if cls.clock != LOAD_DATE:
            e.silver_field(cls.clock)   # raises if the entity has no such column
    for t, c in tables.items():
        if c not in classes:
            raise ValueError(f"conf/retention.yaml: table {t}: unknown class {c!r}")
    holds = tuple(Hold(h["id"], h["description_zh"], h["description_en"], h["table"], h["when"],
                       bool(h.get("record", False)), tuple(h.get("persons") or ())) for h in raw.get("holds") or ())
    d = raw.get("destroy") or {}
    return Policy(classes, tables, holds, int(d.get("vacuum_retain_hours", 0)),
                  str(d.get("log_retention", "interval 30 days")), Tiering(**(raw.get("tiering") or {})))


def lake_tables(lake: Path) -> list[tuple[str, str]]:
    """Every Delta table under the lake root as ``(layer, name)``, in a stable order."""
    out = []
    for log in sorted(Path(lake).glob("*/*/_delta_log")):
        out.append((log.parent.parent.name, log.parent.name))
    return out
