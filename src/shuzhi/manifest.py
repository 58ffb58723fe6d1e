"""Delivery manifests (SPEC "Delivery layout"): verify before anything is read into Spark.

One pass over each file's bytes computes its sha256, counts its records the way SPEC counts
them, and sniffs its real encoding (a police file that is really UTF-8 while the manifest says
GB18030 must be read as UTF-8, not turned into mojibake)::

    >>> d = verify_delivery(Path("var/landing"), "police", "2026-11-27")   # doctest: +SKIP
    >>> d.files[0].actual_encoding                                        # doctest: +SKIP
    'GB18030'

Any fault rejects the whole delivery with ``DeliveryRejected(code, message)``.
"""
from __future__ import annotations

import codecs
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DeliveryRejected
from .schemas import Entity, catalog

CHUNK = 8 << 20
BOM = b"\xef\xbb\xbf"
XML_ROW = re.compile(rb"<resident[\s>/]")


@dataclass(frozen=True)
class DeliveryFile:
    name: str
    entity: Entity
    path: Path
    rows: int
    sha256: str
    declared_encoding: str
    actual_encoding: str
    has_bom: bool

    @property
    def encoding_mismatch(self) -> bool:
        return self.declared_encoding.upper().replace("-", "") != self.actual_encoding.upper().replace("-", "")


@dataclass(frozen=True)
class Delivery:
    source: str
    batch_date: str
    kind: str
    files: tuple[DeliveryFile, ...]
    manifest_sha256: str
    path: Path

    @property
    def delivery_id(self) -> str:
        """Stable id of this exact delivery (its manifest's bytes): re-runs of it are no-ops."""
        return f"{self.source}/{self.batch_date}/{self.manifest_sha256[:16]}"  # = manifest_fingerprint

    @property
    def label(self) -> str:
        return f"{self.source}/{self.batch_date}"


def delivery_dir(landing: Path, source: str, batch_date: str) -> Path:
    return Path(landing) / source / batch_date


def manifest_present(landing: Path, source: str, batch_date: str) -> bool:
    """A delivery is complete only when its manifest is present (it is written last)."""
    return (delivery_dir(landing, source, batch_date) / "manifest.json").is_file()


def manifest_fingerprint(landing: Path, source: str, batch_date: str) -> str:
    """Short sha256 of the manifest's bytes ("none" if absent): identifies a delivery, even a rejected one."""
    mpath = delivery_dir(landing, source, batch_date) / "manifest.json"
    return hashlib.sha256(mpath.read_bytes()).hexdigest()[:16] if mpath.is_file() else "none"


def scan_file(path: Path, fmt: str) -> tuple[str, int, bool, bool]:
    """One pass: (sha256, records as SPEC counts them, starts with a UTF-8 BOM, bytes are valid UTF-8
    with non-ASCII content)."""
    h = hashlib.sha256()
    dec = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok, non_ascii = True, False
    newlines, xml_rows, first, last_byte, tail = 0, 0, True, b"", b""
    has_bom = False
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            if first:
                has_bom = chunk.startswith(BOM)
                first = False
            if fmt == "parquet":
                continue
            if utf8_ok:
                try:
                    dec.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
                if not non_ascii and not chunk.isascii():
                    non_ascii = True
            if fmt == "xml":
                buf = tail + chunk
                xml_rows += len(XML_ROW.findall(buf)) - len(XML_ROW.findall(tail))
                tail = buf[-16:]
            else:
                newlines += chunk.count(b"\n")
            last_byte = chunk[-1:]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
    elif fmt == "xml":
        rows = xml_rows
    else:
        lines = newlines + (1 if last_byte not in (b"", b"\n") else 0)
        rows = lines - 1 if fmt == "csv" else lines
        rows = max(rows, 0)
    if utf8_ok:
        try:
            dec.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    return h.hexdigest(), rows, has_bom, utf8_ok and (non_ascii or has_bom)


def verify_delivery(landing: Path, source: str, batch_date: str) -> Delivery:
    """Check a delivery against its manifest; raise ``DeliveryRejected`` on any fault."""
    ddir = delivery_dir(landing, source, batch_date)
    label = f"delivery {source}/{batch_date}"
    mpath = ddir / "manifest.json"
    if not mpath.is_file():
        raise DeliveryRejected("MANIFEST_MISSING", f"{label}: no manifest.json in {ddir}")
    raw = mpath.read_bytes()
    try:
        m = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeliveryRejected("MANIFEST_UNPARSABLE", f"{label}: manifest.json is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(m, dict) or not isinstance(m.get("files"), list):
        raise DeliveryRejected("MANIFEST_INVALID", f"{label}: manifest.json has no 'files' list")
    if m.get("source") != source or m.get("batch_date") != batch_date:
        raise DeliveryRejected("MANIFEST_INVALID", f"{label}: manifest names source={m.get('source')!r} "
                                                   f"batch_date={m.get('batch_date')!r}")
    if m.get("kind") not in ("full", "incremental"):
        raise DeliveryRejected("MANIFEST_INVALID", f"{label}: kind {m.get('kind')!r} is not 'full' or 'incremental'")
    cat = catalog()
    files = []
    for i, f in enumerate(m["files"]):
        try:
            name, ent_name, rows, sha, enc = f["name"], f["entity"], int(f["rows"]), str(f["sha256"]).lower(), f["encoding"]
        except (KeyError, TypeError, ValueError) as exc:
            raise DeliveryRejected("MANIFEST_INVALID", f"{label}: files[{i}] lacks or mistypes {exc}") from None
        if "/" in name or "\\" in name or name.startswith("."):
            raise DeliveryRejected("MANIFEST_INVALID", f"{label}: file name {name!r} is not a plain file name")
        try:
            entity = cat.entity(source, ent_name)
        except KeyError:
            raise DeliveryRejected("MANIFEST_INVALID", f"{label}: file {name}: unknown entity {ent_name!r}") from None
        path = ddir / name
        if not path.is_file():
            raise DeliveryRejected("FILE_MISSING", f"{label}: manifest names {name}, which is not in {ddir}")
        actual_sha, actual_rows, has_bom, looks_utf8 = scan_file(path, entity.format)
        if actual_sha != sha:
            raise DeliveryRejected("SHA256_MISMATCH", f"{label}: file {name}: manifest sha256 {sha[:16]}…, "
                                                      f"file bytes hash to {actual_sha[:16]}…")
        if actual_rows != rows:
            raise DeliveryRejected("ROW_COUNT_MISMATCH", f"{label}: manifest says {rows} rows, "
                                                         f"file {name} has {actual_rows}")
        actual_enc = enc
        if entity.format != "parquet" and (has_bom or looks_utf8):
            actual_enc = "UTF-8"
        files.append(DeliveryFile(name, entity, path, rows, actual_sha, enc, actual_enc, has_bom))
    return Delivery(source, batch_date, m["kind"], tuple(files), hashlib.sha256(raw).hexdigest(), ddir)
