"""Scan every byte under a folder for plaintext personal values (identity numbers, names).

Two looks at every file: its raw bytes (UTF-8 and GB18030 forms), and — for Parquet files,
whose pages are compressed so a raw look could miss a value — every decoded string/binary
value. Delta's ``_delta_log`` JSON, checkpoints, CRC files, Data Docs: everything is read.

    >>> findings = scan_tree(settings.lake, ids={"150105198503021234"}, names={"张三"})  # doctest: +SKIP
    >>> findings                                                                     # doctest: +SKIP
    []
"""
from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ID_BYTES = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff·•.]{2,}")


@dataclass(frozen=True)
class Finding:
    file: str
    kind: str        # "id" | "name"
    where: str       # "bytes" | "parquet:<column>"
    value_hint: str  # masked: never print the full value back

    def __str__(self) -> str:
        return f"{self.file}: {self.kind} {self.value_hint} in {self.where}"


def _mask(v: str) -> str:
    return v[:6] + "…" if len(v) > 6 else v[:1] + "…"


def _scan_text(blob: bytes, ids: set[str], names: set[str], lengths: range, file: str, where: str) -> list[Finding]:
    """Identity numbers by pattern + set lookup; names by decoding the bytes (UTF-8, then GB18030)
    and looking up every 2..n-character window of each run of CJK characters: linear in the
    size of the blob, whatever the number of names."""
    out = []
    for m in ID_BYTES.finditer(blob):
        v = m.group().decode("ascii").upper()
        if v in ids:
            out.append(Finding(file, "id", where, _mask(v)))
    if names:
        seen = set()
        for enc in ("utf-8", "gb18030"):
            for run in CJK_RUN.findall(blob.decode(enc, errors="ignore")):
                for n in lengths:
                    for i in range(len(run) - n + 1):
                        w = run[i:i + n]
                        if w in names and w not in seen:
                            seen.add(w)
                            out.append(Finding(file, "name", f"{where} ({enc})", _mask(w)))
    return out


def _parquet_values(path: Path):

    table = pq.read_table(path)
    for col in table.column_names:
        arr = table.column(col)
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_binary(arr.type):
            values = [v for v in arr.to_pylist() if v]
            if values:
                joined = b"\x00".join(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values)
                yield col, joined
        elif pa.types.is_struct(arr.type) or pa.types.is_list(arr.type) or pa.types.is_map(arr.type):
            yield col, repr(arr.to_pylist()).encode("utf-8")  # checkpoints: nested stats, etc.


def scan_tree(root: Path, ids: set[str], names: set[str]) -> list[Finding]:
    """Every finding of a plaintext identity number or name under ``root`` (empty list = clean)."""
    ids = {i.upper() for i in ids}
    names = {n for n in names if n}
    lengths = range(min(map(len, names), default=2), max(map(len, names), default=1) + 1)
    findings: list[Finding] = []
    for path in sorted(Path(root).rglob("*")):
        if not path.is_file():
            continue
        rel = str(path.relative_to(root))
        blob = path.read_bytes()
        findings += _scan_text(blob, ids, names, lengths, rel, "bytes")
        if blob[:4] == b"PAR1":
            try:
                for col, joined in _parquet_values(path):
                    findings += _scan_text(joined, ids, names, lengths, rel, f"parquet:{col}")
            except Exception as exc:  # an unreadable parquet file is itself a finding to look at
                findings.append(Finding(rel, "unreadable", f"parquet ({type(exc).__name__})", ""))
    return findings


HEX64 = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


def _leaf_arrays(arr):
    """Every leaf array of a (possibly nested) Arrow column: lists, structs and maps flattened."""

    if isinstance(arr, pa.ChunkedArray):
        for chunk in arr.chunks:
            yield from _leaf_arrays(chunk)
        return
    t = arr.type
    if pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _leaf_arrays(arr.field(i))
    elif pa.types.is_map(t):
        yield from _leaf_arrays(arr.keys)
        yield from _leaf_arrays(arr.items)
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        yield from _leaf_arrays(arr.flatten())
    else:
        yield arr


# A tree smaller than this is scanned in this process: starting worker processes (each imports
# pyarrow) costs more than scanning it. Above it, one worker process per core (``workers``).
PARALLEL_MIN_BYTES = 64 << 20


@dataclass(frozen=True)
class Sought:
    """What a proof of destruction looks for (see ``scan_destroyed``)."""
    ids: frozenset[str]
    names: frozenset[str]
    strings: frozenset[str]
    blobs: frozenset[bytes]

    @cached_property
    def lengths(self) -> range:
        return range(min(map(len, self.names), default=2), max(map(len, self.names), default=1) + 1)

    @cached_property
    def str_set(self) -> pa.Array:
        return pa.array(sorted(self.ids | self.names | self.strings), pa.string())

    @cached_property
    def blob_set(self) -> pa.Array:
        return pa.array(sorted(self.blobs), pa.binary())


def scan_destroyed(root: Path, *, ids: set[str], names: set[str], strings: set[str],
                   blobs: set[bytes], workers: int | None = None) -> tuple[list[Finding], int]:
    """The proof of destruction: every file under ``root`` searched for the destroyed persons'
    identity numbers and names (plaintext), their join tokens and other keyed digests
    (``strings``, hex), and the ciphertexts the destroyed rows held (``blobs``).

    Raw bytes of every file: identity numbers by pattern, hex digests by pattern (``_delta_log``
    JSON, checkpoints, CRC files, reports); names by CJK windows in every non-Parquet file.
    Parquet files (data, checkpoints) are also decoded and every leaf value, however nested,
    is looked up exactly (vectorised ``is_in``); identity numbers inside longer strings too.

    The files are shared among ``workers`` processes (default: one per core; 1 = this process),
    largest first; a tree under ``PARALLEL_MIN_BYTES`` is scanned in this process. The findings
    are the same either way, in the order of the sorted file paths.
    Returns ``(findings, files scanned)``; no finding = proven."""
    sought = Sought(frozenset(i.upper() for i in ids), frozenset(n for n in names if n), frozenset(strings),
                    frozenset(blobs))
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    sizes = {p: p.stat().st_size for p in files}
    small = workers is None and sum(sizes.values()) < PARALLEL_MIN_BYTES
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(files) < 2 or small:
        found = {p: _scan_destroyed_file(p, root, sought) for p in files}
    else:
        order = sorted(files, key=sizes.__getitem__, reverse=True)      # the big ones first: balance
        ctx = multiprocessing.get_context("spawn")      # never fork a process that holds a JVM gateway
        with ProcessPoolExecutor(min(workers, len(files)), mp_context=ctx, initializer=_init_worker,
                                 initargs=(sought,)) as pool:
            # one file a task: chunks of the size-sorted list would hand the largest files to one worker
            found = dict(zip(order, pool.map(_scan_in_worker, order, [root] * len(order))))
    return [f for p in files for f in found[p]], len(files)


_SOUGHT: Sought | None = None       # a worker process's copy, sent once by its initializer


def _init_worker(sought: Sought) -> None:
    global _SOUGHT
    _SOUGHT = sought


def _scan_in_worker(path: Path, root: Path) -> list[Finding]:
    return _scan_destroyed_file(path, root, _SOUGHT)


def _scan_destroyed_file(path: Path, root: Path, sought: Sought) -> list[Finding]:
    """One file's findings (``scan_destroyed``'s rules)."""
    ids, names, strings, lengths = sought.ids, sought.names, sought.strings, sought.lengths
    str_set, blob_set = sought.str_set, sought.blob_set
    rel = str(path.relative_to(root))
    blob = path.read_bytes()
    is_parquet = blob[:4] == b"PAR1"
    findings = _scan_text(blob, ids, set() if is_parquet else names, lengths, rel, "bytes")
    for m in HEX64.finditer(blob):
        if m.group().decode("ascii") in strings:
            findings.append(Finding(rel, "token", "bytes", _mask(m.group().decode("ascii"))))
    if not is_parquet:
        return findings
    try:
        table = pq.read_table(path)
    except Exception as exc:  # an unreadable parquet file is itself a finding to look at
        findings.append(Finding(rel, "unreadable", f"parquet ({type(exc).__name__})", ""))
        return findings
    for col in table.column_names:
        for leaf in _leaf_arrays(table.column(col)):
            t = leaf.type
            if pa.types.is_large_string(t):
                leaf, t = leaf.cast(pa.string()), pa.string()
            if pa.types.is_large_binary(t):
                leaf, t = leaf.cast(pa.binary()), pa.binary()
            if pa.types.is_string(t):
                hit = pc.is_in(leaf, value_set=str_set)
                for v in leaf.filter(pc.fill_null(hit, False)).to_pylist():
                    kind = "id" if v.upper() in ids else "name" if v in names else "token"
                    findings.append(Finding(rel, kind, f"parquet:{col}", _mask(v)))
                inside = pc.fill_null(pc.match_substring_regex(leaf, r"[0-9]{17}[0-9Xx]"), False)
                for v in leaf.filter(inside).to_pylist():
                    for m in ID_BYTES.finditer(v.encode("utf-8")):
                        if m.group().decode("ascii").upper() in ids and v.upper() not in ids:
                            findings.append(Finding(rel, "id", f"parquet:{col} (inside a value)",
                                                    _mask(m.group().decode("ascii"))))
            elif pa.types.is_binary(t) and len(blob_set):
                hit = pc.is_in(leaf, value_set=blob_set)
                n = pc.sum(pc.cast(pc.fill_null(hit, False), pa.int64())).as_py() or 0
                if n:
                    findings.append(Finding(rel, "ciphertext", f"parquet:{col}", f"{n} value(s)"))
    return findings
