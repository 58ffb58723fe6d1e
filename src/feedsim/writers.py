"""Byte-exact writers for the four delivery formats, and the manifest (written last).

- police: CSV, RFC 4180 quoting (csv module), one header line, CRLF, GB18030
- civil_affairs: JSON Lines, UTF-8
- social_security: Parquet with string / date32 / timestamp[ms, UTC] / decimal128(12,2) columns
- health: XML, UTF-8, ``<residents batch_date="...">`` with one ``<resident>`` element per record
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .tables import NULL_SUFFIX, Table

BOM = b"\xef\xbb\xbf"

SS_SCHEMA = pa.schema([
    ("record_id", pa.string()), ("sfzh", pa.string()), ("xm", pa.string()), ("insurance_type", pa.string()),
    ("enrolment_status", pa.string()), ("employer_uscc", pa.string()), ("employer_name", pa.string()),
    ("monthly_benefit", pa.decimal128(12, 2)), ("last_payment_date", pa.date32()),
    ("updated_at", pa.timestamp("ms", tz="UTC")),
])


# ---------------------------------------------------------------- CSV ----
def csv_line(values: list[str]) -> str:
    """One record as the csv module writes it (minimal quoting), without the line end."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(values)
    return buf.getvalue()[:-2]


def row_values(t: Table, i: int) -> list:
    return [t.cols[f][i] for f in t.fields]


CHUNK = 50_000


def csv_chunks(t: Table):
    """The CSV file's text in chunks: header, then records in file order (broken lines verbatim)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(t.fields)
    inv = np.empty(len(t), np.int64)
    inv[t.order] = np.arange(len(t.order))
    raw_at = {int(inv[i]): text for i, text in t.raw.items()}
    for start in range(0, len(t.order), CHUNK):
        part = t.order[start:start + CHUNK]
        rows = list(zip(*[t.cols[f][part].tolist() for f in t.fields]))
        cuts = sorted(p - start for p in raw_at if start <= p < start + CHUNK)
        lo = 0
        for c in cuts:
            w.writerows(rows[lo:c])
            buf.write(raw_at[start + c] + "\r\n")
            lo = c + 1
        w.writerows(rows[lo:])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()
    yield buf.getvalue()


# ---------------------------------------------------------------- JSON Lines ----
def _js(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, str):
        if '"' in v or "\\" in v or any(ord(c) < 32 for c in v):
            return json.dumps(v, ensure_ascii=False)
        return '"' + v + '"'
    if isinstance(v, (int, np.integer)):  # money in cents → yuan with 2 decimals
        v = int(v)
        sign = "-" if v < 0 else ""
        v = abs(v)
        return f"{sign}{v // 100}.{v % 100:02d}"
    raise TypeError(f"cannot write {type(v).__name__} {v!r} to JSON")


def json_line(t: Table, i: int) -> str:
    return "{" + ",".join(f'"{f}":{_js(t.cols[f][i])}' for f in t.fields) + "}"


def jsonl_chunks(t: Table):
    cols = [t.cols[f] for f in t.fields]
    keys = [f'"{f}":' for f in t.fields]
    raw = t.raw
    order = t.order.tolist()
    for start in range(0, len(order), CHUNK):
        out = []
        for i in order[start:start + CHUNK]:
            if i in raw:
                out.append(raw[i] + "\n")
            else:
                out.append("{" + ",".join(k + _js(c[i]) for k, c in zip(keys, cols)) + "}\n")
        yield "".join(out)


# ---------------------------------------------------------------- XML ----
def _x(v: str) -> str:
    if "&" in v or "<" in v or ">" in v:
        v = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return v


def xml_template(fields: tuple[str, ...]) -> str:
    return "  <resident>\n" + "".join(f"    <{f}>%s</{f}>\n" for f in fields) + "  </resident>\n"


def xml_element(t: Table, i: int) -> str:
    return xml_template(t.fields) % tuple(_x(t.cols[f][i]) for f in t.fields)


def xml_chunks(t: Table, batch_date: str):
    tpl = xml_template(t.fields)
    cols = [t.cols[f] for f in t.fields]
    raw = t.raw
    order = t.order.tolist()
    yield f'<residents batch_date="{batch_date}">\n'
    for start in range(0, len(order), CHUNK):
        out = []
        for i in order[start:start + CHUNK]:
            out.append(raw[i] if i in raw else tpl % tuple(_x(c[i]) for c in cols))
        yield "".join(out)
    yield "</residents>\n"


# ---------------------------------------------------------------- Parquet ----
def _decimal_array(cents: np.ndarray, null: np.ndarray) -> pa.Array:
    """decimal128(12,2) from integer cents, exactly (two's complement 128-bit little endian)."""
    n = len(cents)
    data = np.zeros((n, 2), dtype=np.int64)
    data[:, 0] = cents
    data[:, 1] = np.where(cents < 0, -1, 0)
    valid = np.packbits(~null, bitorder="little")
    return pa.Array.from_buffers(pa.decimal128(12, 2), n, [pa.py_buffer(valid.tobytes()),
                                                          pa.py_buffer(data.tobytes())], null_count=int(null.sum()))


def parquet_table(t: Table) -> pa.Table:
    o = t.order
    c = t.cols
    arrays = []
    for f in t.fields:
        typ = SS_SCHEMA.field(f).type
        if f == "monthly_benefit":
            arrays.append(_decimal_array(c[f][o], c[f + NULL_SUFFIX][o]))
        elif typ == pa.date32():
            v = c[f][o].astype("M8[D]")
            arrays.append(pa.array(v, type=pa.date32(), mask=np.isnat(v)))
        elif pa.types.is_timestamp(typ):
            v = c[f][o].astype("M8[ms]")
            arrays.append(pa.array(v.astype(np.int64), type=pa.int64()).cast(typ))
        else:
            arrays.append(pa.array(c[f][o].tolist(), type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=SS_SCHEMA)


def parquet_bytes(t: Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(parquet_table(t), sink, compression="snappy")
    return sink.getvalue().to_pybytes()


# ---------------------------------------------------------------- files ----
def write_text(path: Path, chunks, encoding: str, bom: bool) -> tuple[str, int]:
    """Write text chunks in ``encoding`` (optionally after a UTF-8 BOM); returns (sha256 hex, bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(path, "wb") as fh:
        for data in _encoded(chunks, encoding, bom):
            fh.write(data)
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def _encoded(chunks, encoding: str, bom: bool):
    if bom:
        yield BOM
    for chunk in chunks:
        yield chunk.encode(encoding)


def write_bytes(path: Path, data: bytes) -> tuple[str, int]:
    """Write a file; returns (sha256 hex, bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest(), len(data)


def write_manifest(folder: Path, manifest: dict) -> Path:
    """Write manifest.json last, atomically (temp file + rename)."""
    path = folder / "manifest.json"
    tmp = folder / ".manifest.json.tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path
