"""Write–audit–publish: a stage's new version of a silver or gold table is gated before anyone reads it.

A stage writes a new Delta version (the table's *head*); the table's gate validates that version;
only a passing gate records it as *published* in ``ops.published``. ``shuzhi.access.read`` — and so
every downstream stage and every person — reads a governed table at its latest published version
(Delta time travel), never at its head. A failed critical gate records the version *rejected* and
leaves the published version where it was; the next write to the table first restores it to that
version (*rebased*), so the next successful run continues from it.

Which tables: those whose gate validates the whole table (``registry.Table.published``: the silver
entity tables and gold). A version of a night-partitioned table (bronze, the quarantines) is not
what its gate judges — a night's slice is — so those are read at their head and a failed gate
stops the stages downstream of it.

When a table is governed: from the first pipeline run that writes it (``govern``, called by the
clean and verify tasks, records ``governed``; a table that already held data is adopted as
published as it stands), or from its first gate verdict. A table nobody governs — a job run as a
library call with no gate, as the Spark tests do — is read at its head.

Three traps this module exists for:

- Delta's transaction ids survive ``RESTORE``: a stage re-run after its version was rejected and
  rolled back would find its txn id committed and skip the write. ``attempt`` counts the
  rejections of a table for a night; writers put it in their txn ids (``txn_suffix``), so a
  re-run after a rejection writes again and a re-run after a success does not.
- Retention stages (tier, archive, destroy) delete rows from silver and gold; their proof is the
  retention status and the destruction certificate, not the table's suite, and destroy VACUUMs
  the files of older versions. They publish their own versions (``retention_writes``): before
  they write, a rejected head is rolled back and a version still awaiting its gate stops them
  (``PendingGate``: they would publish it ungated); their commits carry a ``shuzhi:retention:``
  tag, so the re-run of a killed retention stage adopts its own unpublished versions.
- A rejected version is never read and never built on; the restore that discards it is itself a
  commit, recorded ``rebased``.

    >>> Verdicts("silver.t", ((3, None, "published"), (4, "2026-11-26", "rejected"))).needs_rebase
    True
    >>> Verdicts("silver.t", ((3, None, "published"), (4, "2026-11-26", "rejected"))).attempt("2026-11-26")
    1
"""
from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from . import deltalog, registry
from .config import Settings
from .delta import read_table, rows_frame, table_exists, table_version, write_table
from .errors import ShuzhiError

log = logging.getLogger("shuzhi.publish")
PUBLISHED = ("ops", "published")
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
RETENTION_TAG = "shuzhi:retention:"
STATUSES = ("governed", "published", "rejected", "rebased")


class PendingGate(ShuzhiError):
    """A table's head is a version its gate has not judged yet; publishing on top of it would
    publish it ungated."""


@dataclass(frozen=True)
class Verdicts:
    """What ``ops.published`` says of one table: ``(version, batch_date, status)`` rows."""

    key: str
    rows: tuple[tuple[int, str | None, str], ...]

    @property
    def governed(self) -> bool:
        return bool(self.rows)

    def _max(self, *statuses: str) -> int | None:
        vs = [v for v, _, s in self.rows if s in statuses]
        return max(vs) if vs else None

    @property
    def published(self) -> int | None:
        """The version readers see (None: none has passed its gate yet)."""
        return self._max("published")

    @property
    def base(self) -> int:
        """The version the next write continues from: the last published or rebased one (0, the
        empty table Delta creates, when none is)."""
        b = self._max("published", "rebased")
        return 0 if b is None else b

    @property
    def needs_rebase(self) -> bool:
        """A version after the base was rejected: the head is not to be built on."""
        return any(s == "rejected" and v > self.base for v, _, s in self.rows)

    def judged(self, version: int) -> bool:
        return any(v == version and s in ("published", "rejected") for v, _, s in self.rows)

    def attempt(self, batch_date: str | None) -> int:
        """How many times a version written for ``batch_date`` was rejected."""
        return sum(1 for _, b, s in self.rows if s == "rejected" and b == batch_date)

    def txn_suffix(self, batch_date: str | None) -> str:
        """What a writer appends to its txn ids for ``batch_date``: empty until a version for that
        night was rejected (so ids, and lakes, written before stay the same), then ``#<n>``.

        >>> Verdicts("gold.person", ()).txn_suffix("2026-11-26")
        ''
        >>> Verdicts("gold.person", ((5, "2026-11-26", "rejected"),)).txn_suffix("2026-11-26")
        '#1'
        """
        n = self.attempt(batch_date)
        return f"#{n}" if n else ""


def is_published_table(key: str) -> bool:
    return key in registry.published_tables()


# ops.published as last read, per lake: its latest commit (version, mtime, size) → table → rows.
# A Delta version never changes once committed, so while the latest commit is the same file the
# rows are the same; every gate, writer and read of a governed table asks (a retention stage
# about 40 times), and each Spark read of the table costs about half a second.
_SEEN: dict[str, tuple[tuple, dict[str, tuple]]] = {}


def _all_verdicts(spark, path) -> dict[str, tuple]:
    stamp = deltalog.latest_commit_stamp(path)
    if stamp is not None and (hit := _SEEN.get(str(path))) is not None and hit[0] == stamp:
        return hit[1]
    by_table: dict[str, list] = {}
    for r in read_table(spark, path).select("table", "version", "batch_date", "status").collect():
        by_table.setdefault(r[0], []).append((int(r[1]), r[2].isoformat() if r[2] else None, r[3]))
    out = {k: tuple(sorted(v)) for k, v in by_table.items()}
    if stamp is not None:
        if len(_SEEN) >= 8:
            _SEEN.clear()
        _SEEN[str(path)] = (stamp, out)
    return out


def verdicts(spark, settings: Settings, key: str) -> Verdicts:
    p = settings.table_path(*PUBLISHED)
    if not table_exists(spark, p):
        return Verdicts(key, ())
    return Verdicts(key, _all_verdicts(spark, p).get(key, ()))


def _row(key: str, version: int, status: str, batch_date: str | None, by: str) -> dict:
    assert status in STATUSES, status
    return dict(table=key, version=int(version), batch_date=date.fromisoformat(batch_date) if batch_date else None,
                status=status, by=by, at=datetime.now())


def _append(spark, settings: Settings, rows: list[dict]) -> None:
    if not rows:
        return
    txn = "publish:" + ";".join(f"{r['table']}:{r['version']}:{r['status']}" for r in rows)
    write_table(rows_frame(spark, "ops.published", rows), settings.table_path(*PUBLISHED), mode="append",
                append_only=True, txn=(txn, 0),
                comment="write–audit–publish: the gate's verdict on each version of a silver or gold table")
    for r in rows:
        log.info("%s version %d %s (%s)", r["table"], r["version"], r["status"], r["by"])


def _record(spark, settings: Settings, key: str, version: int, status: str, batch_date: str | None,
            by: str) -> None:
    _append(spark, settings, [_row(key, version, status, batch_date, by)])


def govern(spark, settings: Settings, keys: list[str], batch_date: str | None = None) -> None:
    """From now on readers see only published versions of ``keys`` (the pipeline writes them).
    A table that already holds data is adopted as published at its head: it predates the gates."""
    p = settings.table_path(*PUBLISHED)
    known = ({r[0] for r in read_table(spark, p).select("table").distinct().collect()}
             if table_exists(spark, p) else set())
    rows = []
    for key in keys:
        if not is_published_table(key) or key in known:
            continue
        path = settings.table_path(*key.split(".", 1))
        if table_exists(spark, path):
            rows.append(_row(key, table_version(spark, path), "published", batch_date, "adopted"))
        else:
            rows.append(_row(key, -1, "governed", batch_date, "pipeline"))
    _append(spark, settings, rows)


def record_verdict(spark, settings: Settings, key: str, version: int, batch_date: str | None, passed: bool,
                   by: str) -> None:
    """The gate's verdict on ``version`` (once per version)."""
    if is_published_table(key) and not verdicts(spark, settings, key).judged(version):
        _record(spark, settings, key, version, "published" if passed else "rejected", batch_date, by)


def read_published(spark, settings: Settings, layer: str, name: str):
    """The table as readers may see it: its latest published version if it is governed (empty, with
    its schema, if none is yet), else its head. None if it does not exist."""
    path = settings.table_path(layer, name)
    if not table_exists(spark, path):
        return None
    head = read_table(spark, path)
    key = f"{layer}.{name}"
    if not is_published_table(key):
        return head
    v = verdicts(spark, settings, key)
    if not v.governed:
        return head
    if v.published is None:
        return head.limit(0)
    if v.published == table_version(spark, path):
        return head
    return spark.read.format("delta").option("versionAsOf", v.published).load(str(path))



def published_as_of(spark, settings: Settings, layer: str, name: str, column: str = "_as_of"):
    """The latest ``column`` date in a table's published version: the night it reflects (None
    before the first)."""
    df = read_published(spark, settings, layer, name)
    return None if df is None else df.agg(F.max(column)).collect()[0][0]

def read_version(spark, settings: Settings, layer: str, name: str) -> int:
    """The version ``read_published`` reads (-1: no table, or nothing published yet)."""
    path = settings.table_path(layer, name)
    if not table_exists(spark, path):
        return -1
    key = f"{layer}.{name}"
    v = verdicts(spark, settings, key) if is_published_table(key) else Verdicts(key, ())
    if not v.governed:
        return table_version(spark, path)
    return -1 if v.published is None else v.published


def rebase(spark, settings: Settings, key: str, batch_date: str | None = None, *, by: str = "") -> Verdicts:
    """Before a write: if a version after the base was rejected, restore the table to its published
    version (the empty version 0 when none is) and record ``rebased``. Returns the verdicts the
    write's txn ids are to be built from."""
    v = verdicts(spark, settings, key)
    path = settings.table_path(*key.split(".", 1))
    if not v.needs_rebase or not table_exists(spark, path):
        return v
    to = v.published if v.published is not None else 0
    with commit_tag(spark, f"shuzhi:rebase:{by}"):
        DeltaTable.forPath(spark, str(path)).restoreToVersion(to)
    head = table_version(spark, path)
    log.warning("%s: head held a rejected version; restored to published version %d (now version %d) before %s",
                key, to, head, by or "the next write")
    _record(spark, settings, key, head, "rebased", batch_date, by or "rebase")
    return verdicts(spark, settings, key)


@contextmanager
def commit_tag(spark, tag: str):
    """Every Delta commit inside the block carries ``tag`` as its ``userMetadata``."""
    spark.conf.set(USER_METADATA, tag)
    try:
        yield
    finally:
        spark.conf.unset(USER_METADATA)


def _unpublished_commits(spark, path, after: int) -> list[tuple[int, str | None]]:
    """(version, userMetadata) of each commit after ``after``, newest first (as Delta's history
    lists them): from the commit files (no Spark job), else from that history."""
    versions = range(table_version(spark, path), after, -1)
    infos = [deltalog.commit_info(path, v) for v in versions]
    if all(i is not deltalog.UNKNOWN for i in infos):
        return [(v, i.get("userMetadata")) for v, i in zip(versions, infos)]
    hist = DeltaTable.forPath(spark, str(path)).history().filter(F.col("version") > after)
    return [(int(r[0]), r[1]) for r in hist.select("version", "userMetadata").collect()]


def publish_heads(spark, settings: Settings, keys: list[str], as_of: str, stage: str) -> None:
    """A retention stage publishes the versions its own deletions made (of the governed tables
    among ``keys``), in one append to ``ops.published``."""
    rows = []
    for key in keys:
        path = settings.table_path(*key.split(".", 1))
        v = verdicts(spark, settings, key)
        if v.governed and table_exists(spark, path):
            head = table_version(spark, path)
            if head > v.base:
                rows.append(_row(key, head, "published", as_of, f"retention:{stage}"))
    _append(spark, settings, rows)


@contextmanager
def retention_writes(spark, settings: Settings, stage: str, as_of: str):
    """The block of a retention stage: governed silver and gold tables are made safe to delete from
    (a rejected head rolled back; a head awaiting its gate refused with ``PendingGate``; the stage's
    own unpublished versions from a killed run adopted), every commit is tagged
    ``shuzhi:retention:<stage>``, and on success each table it changed is published at its head."""
    keys = [k for k in registry.published_tables() if table_exists(spark, settings.table_path(*k.split(".", 1)))]
    for key in keys:
        v = rebase(spark, settings, key, as_of, by=stage)
        if not v.governed:
            continue
        pending = [(ver, tag) for ver, tag in _unpublished_commits(spark, settings.table_path(*key.split(".", 1)),
                                                                   v.base)
                   if not (tag or "").startswith(RETENTION_TAG)]
        if pending:
            raise PendingGate(
                f"{stage} {as_of}: {key} version {pending[-1][0]} has not been judged by its gate yet (the "
                f"lifecycle run that wrote it did not finish); finish that run (or run `shuzhi gate {key} "
                f"<night>`) before {stage}")
    with commit_tag(spark, RETENTION_TAG + stage):
        yield
    publish_heads(spark, settings, keys, as_of, stage)


def inputs_fingerprint(spark, settings: Settings, published: list[str], heads: list[str]) -> str:
    """Which versions a stage's output is computed from: the ``published`` tables at the version
    readers see, the others (``heads``) at their head (-1 for a table that does not exist)."""
    parts = [f"{k}={read_version(spark, settings, *k.split('.', 1))}" for k in published]
    for k in heads:
        p = settings.table_path(*k.split(".", 1))
        parts.append(f"{k}={table_version(spark, p) if table_exists(spark, p) else -1}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
