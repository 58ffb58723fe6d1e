"""Hand-built, tiny deliveries in the SPEC formats, for precise unit tests of the readers.
(The department simulator, feedsim, makes realistic ones; these pin single cases.)"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shuzhi.schemas import catalog


def _ymd(batch_date: str) -> str:
    return batch_date.replace("-", "")


def csv_bytes(header: list[str], rows: list[list[str] | str], encoding="gb18030", bom=False) -> bytes:
    """rows: a list of fields, or a raw line (for broken lines)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    for r in rows:
        if isinstance(r, str):
            buf.write(r + "\r\n")
        else:
            w.writerow(r)
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def write_delivery(landing: Path, source: str, batch_date: str, files: dict[str, tuple[bytes, int, str]],
                   kind="full") -> Path:
    """files: entity -> (bytes, rows, declared encoding). Writes data files, then the manifest."""
    d = landing / source / batch_date
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    for ent, (data, rows, enc) in files.items():
        name = catalog().entity(source, ent).file_name(batch_date)
        (d / name).write_bytes(data)
        entries.append({"name": name, "entity": ent, "rows": rows, "sha256": hashlib.sha256(data).hexdigest(),
                        "encoding": enc})
    (d / "manifest.json").write_text(json.dumps({"source": source, "batch_date": batch_date, "kind": kind,
                                                 "files": entries}, ensure_ascii=False), encoding="utf-8")
    return d


def identity_number(n: int) -> str:
    """A valid identity number (GB 11643 check digit) for person ``n`` (born 19(80+n)-03-02)."""
    body = f"15010519{80 + n:02d}0302{100 + n:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]            # ISO 7064 MOD 11-2
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


POP_HEADER = catalog().entity("police", "population").field_names


def pop_row(rid: str, gmsfhm: str, xm: str, **kw) -> list[str]:
    base = dict(RECORD_ID=rid, GMSFHM=gmsfhm, XM=xm, XBDM="1", CSRQ="19850302", MZDM="01", HJDZ_XZQHDM="150105",
                HJDZ="内蒙古呼和浩特市赛罕区大学东街1号", XZZ="赛罕区敕勒川大街2号", SQDM="150105001001",
                FWBM="F0001", HH="H001", YHZGXDM="02", LXDH="13800138000", RYZTDM="0", ZXRQ="",
                GXSJ="2026-11-27 08:00:00")
    base.update(kw)
    return [base[h] for h in POP_HEADER]


def police_population(landing: Path, batch_date: str, rows, encoding="gb18030", bom=False, declared="GB18030",
                      manifest_rows: int | None = None) -> Path:
    data = csv_bytes(POP_HEADER, rows, encoding, bom)
    n = len(rows) if manifest_rows is None else manifest_rows
    return write_delivery(landing, "police", batch_date, {"population": (data, n, declared)})


def civil_affairs(landing: Path, batch_date: str, lines: list[dict | str], bom=False) -> Path:
    text = "\n".join(ln if isinstance(ln, str) else json.dumps(ln, ensure_ascii=False) for ln in lines) + "\n"
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    return write_delivery(landing, "civil_affairs", batch_date, {"assistance": (data, len(lines), "UTF-8")})


def health(landing: Path, batch_date: str, elements: list[dict | str]) -> Path:
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n<residents batch_date="{batch_date}">']
    for e in elements:
        if isinstance(e, str):
            parts.append(e)
        else:
            parts.append("  <resident>" + "".join(f"<{k}>{v}</{k}>" if v is not None else f"<{k}/>"
                                                  for k, v in e.items()) + "</resident>")
    parts.append("</residents>\n")
    data = "\n".join(parts).encode("utf-8")
    return write_delivery(landing, "health", batch_date, {"residents": (data, len(elements), "UTF-8")})


def social_security(landing: Path, batch_date: str, rows: list[dict]) -> Path:
    schema = pa.schema([("record_id", pa.string()), ("sfzh", pa.string()), ("xm", pa.string()),
                        ("insurance_type", pa.string()), ("enrolment_status", pa.string()),
                        ("employer_uscc", pa.string()), ("employer_name", pa.string()),
                        ("monthly_benefit", pa.decimal128(12, 2)), ("last_payment_date", pa.date32()),
                        ("updated_at", pa.timestamp("ms", tz="UTC"))])
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    data = sink.getvalue().to_pybytes()
    return write_delivery(landing, "social_security", batch_date, {"insurance": (data, len(rows), "UTF-8")})
