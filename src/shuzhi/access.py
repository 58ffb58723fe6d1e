"""The project's read interface: every read of the lake by a person or a job goes through ``read``,
which sees one unified view over the hot and cold tiers and appends an access event (who, role,
table, partition or key range, time) to ``ops.access_log`` (append-only). The tiering job counts
these events per month partition to decide what stays hot.

    >>> df = read(spark, settings, "silver.police_population", reader=Reader("li.wei", "governance_office"),
    ...           months=["2024-03"])                                              # doctest: +SKIP

Roles are those of ``conf/roles.yaml``; the pipeline reads as ``scheduler`` (its reads are logged
but do not count as use when tiering).
"""
from __future__ import annotations

import getpass
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import functions as F

from . import publish, registry
from .config import Settings, load_yaml
from .crypto import Keyring
from .delta import read_table, rows_frame, table_exists, write_table
from .errors import UsageError
from .retention import load_policy
from .schemas import catalog
from .stages.retention import month_of

ACCESS_LOG = ("ops", "access_log")
COLD = "cold"
LAYERS = registry.layers()      # folders of the lake holding Delta tables (schemas/tables.yaml)
PIPELINE_ROLE = "scheduler"


def check_role(role: str) -> str:
    """A role of ``conf/roles.yaml``; else a one-line UsageError listing them."""

    roles = load_yaml("roles.yaml")["roles"]
    if role not in roles:
        raise UsageError(f"role {role!r} is not one of {', '.join(sorted(roles))} (conf/roles.yaml)")
    return role


def lake_tables(settings: Settings) -> list[str]:
    """``<layer>.<name>`` of every Delta table under the lake root (hot, cold and restored), from
    the folders alone — no Spark."""
    root = settings.lake
    if not root.is_dir():
        return []
    return sorted(f"{p.parent.parent.name}.{p.parent.name}" for p in root.glob("*/*/_delta_log") if p.is_dir())


def check_table_name(table: str) -> tuple[str, str]:
    """``<layer>.<name>`` with a layer of the lake; else a one-line UsageError."""

    layer, dot, name = table.partition(".")
    if not dot or not name or layer not in LAYERS:
        raise UsageError(f"table {table!r} is not <layer>.<name> (e.g. silver.police_incidents); layers: "
                         f"{', '.join(LAYERS)}")
    return layer, name


def check_table(settings: Settings, table: str) -> tuple[str, str]:
    """``<layer>.<name>`` of a table ``read`` can see (its hot table or, for silver, its cold tier);
    else a one-line UsageError listing the lake's tables."""

    layer, name = check_table_name(table)
    tables = lake_tables(settings)
    if table not in tables and not (layer == "silver" and f"{COLD}.{name}" in tables):
        raise UsageError(f"no table {table!r} in the lake at {settings.lake}; tables: {', '.join(tables) or 'none'}")
    return layer, name


@dataclass(frozen=True)
class Reader:
    who: str
    role: str

    def __post_init__(self):
        check_role(self.role)

    @classmethod
    def from_env(cls, who: str | None = None, role: str | None = None) -> "Reader":
        return cls(who or os.environ.get("SHUZHI_USER") or getpass.getuser(),
                   role or os.environ.get("SHUZHI_ROLE") or "data_engineer")

    @classmethod
    def pipeline(cls, job: str) -> "Reader":
        return cls(f"job:{job}", PIPELINE_ROLE)


def log_access(spark, settings: Settings, reader: Reader, table: str, *, partition: str | None = None,
               key_range: str | None = None, at: datetime | None = None) -> None:
    """Append one access event (``partition``: months read, ``*`` for all; ``key_range``: the filter)."""
    log_accesses(spark, settings, reader, [table], partition=partition, key_range=key_range, at=at)


def log_accesses(spark, settings: Settings, reader: Reader, tables: list[str], *, partition: str | None = None,
                 key_range: str | None = None, at: datetime | None = None) -> None:
    """One access event per table of ``tables``, in one append (a commit costs about a second;
    a stage reading every silver table would otherwise make one commit a table)."""
    if not tables:
        return
    at = at or datetime.now()
    rows = [dict(event_id=uuid.uuid4().hex, at=at, who=reader.who, role=reader.role, table=t, partition=partition,
                 key_range=key_range) for t in tables]
    write_table(rows_frame(spark, "ops.access_log", rows), settings.table_path(*ACCESS_LOG), mode="append",
                append_only=True, partition_by=[], comment="every read through shuzhi.access.read (append-only)")


def read_if_exists(spark, settings: Settings, layer: str, name: str):
    """A table at its head, unlogged, None if it does not exist: for the pipeline's own bookkeeping
    of a table no gate publishes (bronze, the quarantines, findings) and for the retention stages,
    which must see every row the lake holds. Everyone else reads through ``read``."""
    p = settings.table_path(layer, name)
    return read_table(spark, p) if table_exists(spark, p) else None



def night_delivery(spark, settings: Settings, table: str, batch_date: str):
    """``bronze.<table>``'s rows of one night and that night's delivery id (the latest, if a
    night was delivered twice); ``(None, None)`` when nothing was delivered that night."""
    bronze = read_if_exists(spark, settings, "bronze", table)
    if bronze is None:
        return None, None
    bronze = bronze.filter(F.col("_batch_date") == F.lit(date.fromisoformat(batch_date)))
    ids = sorted(r[0] for r in bronze.select("_delivery_id").distinct().collect())
    return (bronze, ids[-1]) if ids else (None, None)

def unified(spark, settings: Settings, layer: str, name: str):
    """One view over the hot table and its cold tier (silver tables only have one): a record in
    both (a newer version arrived after it went cold) is read from hot. None if neither exists.
    The hot table is read at its published version (``shuzhi.publish``), never an ungated head."""
    hot = publish.read_published(spark, settings, layer, name)      # a governed table: its published version
    cold_p = settings.table_path(COLD, name)
    if layer != "silver" or not table_exists(spark, cold_p):
        return hot
    cold = read_table(spark, cold_p).drop("_month")
    if hot is None:
        return cold
    return hot.unionByName(cold.join(hot.select("record_id"), "record_id", "left_anti"))


def lifecycle_month(settings: Settings, layer: str, name: str):
    """The ``yyyy-MM`` column of a table's lifecycle date (see ``stages.retention.month_of``), with
    the policy and keyring this lake's settings name."""
    entity = catalog().entity_for_table(name)
    if entity is None or layer not in ("silver", COLD):
        return month_of(layer, None, None, None)
    return month_of(layer, entity, load_policy().classes[entity.retention_class], Keyring.load(settings.key_dir))


def read(spark, settings: Settings, table: str, *, reader: Reader, months: list[str] | None = None,
         where: str | None = None, describe: str | None = None):
    """Read ``<layer>.<name>`` (hot and cold, unified), optionally only some months of its
    lifecycle date and rows matching ``where``, and log the access (``describe``: the key range to
    log when the caller filters afterwards). None if the table does not exist."""
    layer, name = table.split(".", 1)
    df = unified(spark, settings, layer, name)
    if df is None:
        return None
    if months:
        df = df.filter(lifecycle_month(settings, layer, name).isin(list(months)))
    if where:
        df = df.filter(where)
    log_access(spark, settings, reader, table, partition=",".join(sorted(months)) if months else "*",
               key_range=describe or where)
    return df


def read_each(spark, settings: Settings, tables, *, reader: Reader) -> dict:
    """``read`` of each whole ``<layer>.<name>`` of ``tables`` that exists: name → DataFrame (hot and
    cold unified), the reads logged in one append."""
    out = {t: df for t in tables if (df := unified(spark, settings, *t.split(".", 1))) is not None}
    log_accesses(spark, settings, reader, list(out), partition="*")
    return out


def read_all(spark, settings: Settings, tables, stage: str) -> dict:
    """``read`` of each ``silver.<name>`` of ``tables`` that exists, by the pipeline's ``stage``:
    name → DataFrame (hot and cold tiers together, the reads logged)."""
    got = read_each(spark, settings, [f"silver.{t}" for t in tables], reader=Reader.pipeline(stage))
    return {k.split(".", 1)[1]: df for k, df in got.items()}
