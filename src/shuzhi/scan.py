"""Scan every byte under a folder for plaintext personal values (identity numbers, names).

Two looks at every file: its raw bytes (UTF-8 and GB18030 forms), and — for Parquet files,
whose pages are compressed so a raw look could miss a value — every decoded string/binary
value. Delta's ``_delta_log`` JSON, checkpoints, CRC files, Data Docs: everything is read.

    >>> findings = scan_tree(settings.lake, ids={"150105198503021234"}, names={"张三"})  # doctest: +SKIP
    >>> findings                                                                     # doctest: +SKIP
    []
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
    import pyarrow as pa
    import pyarrow.parquet as pq

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
