"""Facts read straight from a Delta table's ``_delta_log`` files, without a Spark job: the latest
committed version (and a stamp of its commit file, for caches of a table's content), and the
version a transaction id last committed (its ``txn`` action), the data files a read of the table (or
of one partition) scans.

Delta answers the second through a snapshot's state reconstruction — a Spark job over the whole
log — and every idempotent write and gate asks it first: 0.24–0.32 s a call on a warm session
and a 12-commit table (7 ms from the files), a dozen calls a stage. The protocol makes both
cheap to read: commits are ``<version>.json`` files (written whole: the log store renames a
finished temporary file into place), and the state at a checkpoint is in its Parquet file, whose
``txn`` column holds every application's latest transaction version. Replaying the commits after
the latest checkpoint gives the answer Delta gives (``tests/test_deltalog.py`` compares the two
on a real table past two checkpoints).

Anything this module does not read — a v2 checkpoint, a checkpoint whose files are missing, a gap
in the commits — gives ``UNKNOWN``, and the caller asks Delta (``shuzhi.delta``).
"""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pyarrow.parquet as pq

UNKNOWN = object()           # the log holds something this reader does not read; ask Delta


def _commits(log: Path) -> dict[int, Path]:
    """Commit files by version (``00000000000000000012.json``; not checkpoints, CRCs or temporaries)."""
    return {int(p.name[:20]): p for p in log.glob("*.json") if len(p.name) == 25 and p.name[:20].isdigit()}


def latest_version(path: Path | str) -> int | None | object:
    """The table's latest committed version; None when it has no commit (no table)."""
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        return None
    commits = _commits(log)
    return max(commits) if commits else UNKNOWN


def latest_commit_stamp(path: Path | str) -> tuple[int, int, int] | None:
    """(version, mtime in ns, size) of the table's latest commit file: equal stamps, equal table
    (a committed version is never rewritten). None when there is no commit to read."""
    log = Path(path) / "_delta_log"
    commits = _commits(log) if log.is_dir() else {}
    if not commits:
        return None
    v = max(commits)
    try:
        st = commits[v].stat()
    except FileNotFoundError:                  # cleaned up between the listing and the stat
        return None
    return v, st.st_mtime_ns, st.st_size


def _checkpoint(log: Path) -> tuple[int, list[Path]] | object | None:
    """The latest checkpoint named by ``_last_checkpoint``: (version, its Parquet files); None when
    there is none; UNKNOWN for a kind this reader does not read (v2, or files missing)."""
    pointer = log / "_last_checkpoint"
    if not pointer.is_file():
        return UNKNOWN if any(log.glob("*.checkpoint*")) else None
    meta = json.loads(pointer.read_text(encoding="utf-8"))
    if "v2Checkpoint" in meta:
        return UNKNOWN
    v, parts = int(meta["version"]), meta.get("parts")
    files = ([log / f"{v:020d}.checkpoint.parquet"] if not parts else
             [log / f"{v:020d}.checkpoint.{i:010d}.{int(parts):010d}.parquet" for i in range(1, int(parts) + 1)])
    return (v, files) if all(f.is_file() for f in files) else UNKNOWN


def _replay(log: Path) -> tuple[list[Path], list[Path]] | object:
    """What to read for the table's current state: the latest checkpoint's Parquet files (none
    without a checkpoint) and the commit files after it, in order; UNKNOWN when the log has a kind
    or a gap this reader does not replay."""
    cp = _checkpoint(log)
    if cp is UNKNOWN:
        return UNKNOWN
    files, start = ([], 0) if cp is None else (cp[1], cp[0] + 1)
    commits = _commits(log)
    after = sorted(v for v in commits if v >= start)
    if after != list(range(start, start + len(after))) or (cp is None and 0 not in commits):
        return UNKNOWN               # a gap, or no checkpoint and no first commit: not ours to replay
    return files, [commits[v] for v in after]


def txn_version(path: Path | str, app_id: str) -> int | None | object:
    """The version ``app_id`` last committed to the table (Delta's ``SetTransaction``), None when it
    never did (or there is no table), UNKNOWN when this reader cannot tell."""
    log = Path(path) / "_delta_log"
    if not log.is_dir():
        return None
    replay = _replay(log)
    if replay is UNKNOWN:
        return UNKNOWN
    checkpoint, commits = replay
    found: int | None = None
    for f in checkpoint:
        for t in pq.read_table(f, columns=["txn"]).column("txn").to_pylist():
            if t is not None and t.get("appId") == app_id:
                found = int(t["version"])
    for c in commits:
        for line in c.read_text(encoding="utf-8").splitlines():
            if '"txn"' not in line:
                continue
            t = json.loads(line).get("txn")
            if t is not None and t.get("appId") == app_id:
                found = int(t["version"])
    return found


def active_files(path: Path | str, partition: dict[str, str] | None = None) -> list[str] | object:
    """The table's data files now (each ``add`` not since removed), as URIs (as Spark's ``inputFiles``
    names them; ``gates.relative_files`` turns either into paths), sorted;
    with ``partition`` (column → value as the log writes it, e.g. ``{"_batch_date":
    "2026-11-25"}``) only that partition's: what a read filtered on those partition columns scans
    (Spark's ``inputFiles``). A file a deletion vector changed keeps its path, as in
    ``inputFiles``. UNKNOWN when this reader cannot replay the log."""
    log = Path(path) / "_delta_log"
    replay = _replay(log) if log.is_dir() else UNKNOWN
    if replay is UNKNOWN:
        return UNKNOWN
    checkpoint, commits = replay
    live: dict[str, dict] = {}

    def values(pv) -> dict:                  # a map: a dict from JSON, (key, value) pairs from Parquet
        return dict(pv or {})

    for f in checkpoint:                     # a checkpoint's adds are the state; its removes are tombstones
        for a in pq.read_table(f, columns=["add"]).column("add").to_pylist():
            if a is not None:
                live[a["path"]] = values(a.get("partitionValues"))
    for c in commits:
        adds, removes = [], []
        for line in c.read_text(encoding="utf-8").splitlines():
            if '"add"' not in line and '"remove"' not in line:
                continue
            action = json.loads(line)
            if (a := action.get("add")) is not None:
                adds.append(a)
            elif (r := action.get("remove")) is not None:
                removes.append(r["path"])
        for r in removes:                    # a commit that puts a deletion vector on a file removes
            live.pop(r, None)                # and re-adds the same path: the add stands
        for a in adds:
            live[a["path"]] = values(a.get("partitionValues"))
    want = partition or {}
    root = Path(path).absolute()
    return sorted(p if ":" in p.split("/", 1)[0] else (root / unquote(p)).as_uri()
                  for p, pv in live.items() if all(pv.get(k) == v for k, v in want.items()))


def commit_info(path: Path | str, version: int) -> dict | object:
    """The ``commitInfo`` action of commit ``version`` (what ``DESCRIBE HISTORY`` shows for it:
    operation, operationMetrics, userMetadata, …), UNKNOWN when it is not there to read."""
    f = Path(path) / "_delta_log" / f"{int(version):020d}.json"
    try:
        lines = f.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return UNKNOWN
    for line in lines:
        if '"commitInfo"' in line and (info := json.loads(line).get("commitInfo")) is not None:
            return info
    return UNKNOWN


def operation_metrics(path: Path | str, version: int) -> dict[str, str] | object:
    """The ``operationMetrics`` of commit ``version``, UNKNOWN when its commitInfo is not there."""
    info = commit_info(path, version)
    return info if info is UNKNOWN else dict(info.get("operationMetrics") or {})
