"""Delivery manifests (SPEC "Delivery layout"): the whole contract checked before Spark reads a byte.

In order, each failure rejecting the whole delivery with its own reason code
(``shuzhi.bronze.REJECTION_REASONS``) and a one-line message naming source, date, file and what was
found against what was expected:

1. the batch-date folder name is a real ``YYYY-MM-DD`` date, not after today;
2. nothing on the way is a symlink or a non-regular file, nothing resolves outside the landing root;
3. ``manifest.json`` parses and meets ``schemas/manifest.schema.json`` (types, ranges, plain file
   names), names its own folder's source and date, lists each file and entity once, with the SPEC's
   file name and an encoding the SPEC allows;
4. every file: present, sha256, bytes in an allowed encoding, the format's structure (CSV header /
   Parquet columns and types / required JSON keys and XML elements, no DOCTYPE, no JSON arrays) and
   its records counted as the reader will read them (``shuzhi.filescan``) against ``rows``.

What is not a fault but worth knowing (columns in another order, unlisted files, unknown keys,
blank lines) becomes a note in the delivery ledger::

    >>> d = verify_delivery(Path("var/landing"), "police", "2026-11-27")   # doctest: +SKIP
    >>> d.files[0].actual_encoding, d.notes                                # doctest: +SKIP
    ('GB18030', [])
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
from jsonschema import Draft202012Validator

from .config import SCHEMAS_DIR
from .errors import DeliveryRejected
from .filescan import FileScan, scan_file
from .schemas import Entity, catalog

MANIFEST_MAX_BYTES = 4 << 20
DATE_FOLDER = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
TIMEZONE = "Asia/Shanghai"
# Declared encodings the SPEC allows per format (compared upper-case without "-" and "_"). GBK and
# GB2312 are subsets of GB18030 and read as GB18030; UTF-8 may be declared for a police file.
ALLOWED_ENCODINGS = {"csv": {"GB18030", "GBK", "GB2312", "UTF8"}, "jsonl": {"UTF8"}, "xml": {"UTF8"},
                     "parquet": {"UTF8", "BINARY"}}
GB_FAMILY = {"GB18030", "GBK", "GB2312"}
_PARQUET_TYPES = {"string": "string", "date": "date32", "timestamp": "timestamp[ms|us, tz=UTC]",
                  "decimal(12,2)": "decimal128(12, 2)"}


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
    columns: tuple[str, ...] = ()          # CSV header order as delivered (= SPEC order, or reordered)
    multiline: bool = False                # CSV records with quoted line breaks: read with multiLine
    line_events: tuple[tuple[int, int], ...] = ()   # (record, extra lines before it) for locators
    lines_exact: bool = True               # False: too many events kept; locators say "record N"
    hidden: tuple[int, ...] = ()           # XML: <resident/> positions Spark's reader skips
    notes: tuple[str, ...] = ()

    @property
    def encoding_mismatch(self) -> bool:
        return _enc_key(self.declared_encoding) != _enc_key(self.actual_encoding)

    @property
    def reordered(self) -> bool:
        return bool(self.columns) and list(self.columns) != self.entity.field_names


@dataclass(frozen=True)
class Delivery:
    source: str
    batch_date: str
    kind: str
    files: tuple[DeliveryFile, ...]
    manifest_sha256: str
    path: Path
    notes: tuple[str, ...] = ()

    @property
    def delivery_id(self) -> str:
        """Stable id of this exact delivery (its manifest's bytes): re-runs of it are no-ops."""
        return f"{self.source}/{self.batch_date}/{self.manifest_sha256[:16]}"  # = manifest_fingerprint

    @property
    def label(self) -> str:
        return f"{self.source}/{self.batch_date}"


def _enc_key(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


def check_source(source: str) -> str:
    """An unknown source is the caller's mistake, never a ledger row (``Catalog.check_source``)."""
    return catalog().check_source(source)


def parse_batch_date(batch_date: str) -> date | None:
    """The date a batch-date folder name means, or None when it is not a real YYYY-MM-DD date."""
    if not isinstance(batch_date, str) or not DATE_FOLDER.match(batch_date):
        return None
    try:
        return date.fromisoformat(batch_date)
    except ValueError:
        return None


def delivery_dir(landing: Path, source: str, batch_date: str) -> Path:
    return Path(landing) / source / batch_date


def manifest_present(landing: Path, source: str, batch_date: str) -> bool:
    """A delivery is complete only when its manifest is present (it is written last)."""
    if source not in catalog().sources or parse_batch_date(batch_date) is None:
        return False
    return os.path.lexists(delivery_dir(landing, source, batch_date) / "manifest.json")


def manifest_fingerprint(landing: Path, source: str, batch_date: str) -> str:
    """Short sha256 of the manifest's bytes ("none" if absent or unsafe): identifies a delivery, even
    a rejected one. Never follows a symlink."""

    if parse_batch_date(batch_date) is None:
        return "none"
    mpath = delivery_dir(landing, source, batch_date) / "manifest.json"
    try:
        st = os.lstat(mpath)
    except OSError:
        return "none"
    if not stat.S_ISREG(st.st_mode) or st.st_size > MANIFEST_MAX_BYTES:
        return "unsafe"
    return hashlib.sha256(mpath.read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _validator():

    schema = json.loads((SCHEMAS_DIR / "manifest.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _regular(path: Path, landing: Path, label: str, what: str) -> os.stat_result:
    """lstat of a path that must be a regular file or folder inside the landing root, no symlink."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise
    if stat.S_ISLNK(st.st_mode):
        raise DeliveryRejected("UNSAFE_PATH", f"{label}: {what} {path.name} is a symlink "
                                              f"(to {os.readlink(path)}); nothing outside the landing tree is read")
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise DeliveryRejected("UNSAFE_PATH", f"{label}: {what} {path.name} is not a regular file")
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(Path(os.path.realpath(landing))):
        raise DeliveryRejected("UNSAFE_PATH", f"{label}: {what} {path} resolves to {real}, outside the landing root")
    return st


def _load_manifest(mpath: Path, label: str) -> tuple[dict, bytes]:
    if os.lstat(mpath).st_size > MANIFEST_MAX_BYTES:
        raise DeliveryRejected("MANIFEST_UNPARSABLE", f"{label}: manifest.json is larger than "
                                                      f"{MANIFEST_MAX_BYTES >> 20} MiB")
    raw = mpath.read_bytes()
    try:
        m = json.loads(raw.decode("utf-8-sig"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise DeliveryRejected(
            "MANIFEST_UNPARSABLE", f"{label}: manifest.json is not valid UTF-8 JSON ({why})"
        ) from None
    errors = sorted(_validator().iter_errors(m), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = errors[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path) or "(top level)"
        found = json.dumps(e.instance, ensure_ascii=False)[:80] if not isinstance(e.instance, (dict, list)) else \
            type(e.instance).__name__
        raise DeliveryRejected("MANIFEST_INVALID", f"{label}: manifest.json{where}: {e.message[:200]} "
                                                   f"(found {found}; schema: schemas/manifest.schema.json)")
    return m, raw


def verify_delivery(landing: Path, source: str, batch_date: str, *, today: date | None = None) -> Delivery:
    """Check a delivery against the contract; raise ``DeliveryRejected`` on any fault (see the module
    docstring) and ``UsageError`` for a source that does not exist."""
    check_source(source)
    label = f"delivery {source}/{batch_date}"
    bd = parse_batch_date(batch_date)
    if bd is None:
        raise DeliveryRejected("BATCH_DATE_INVALID", f"{label}: batch-date folder {batch_date!r} is not a real "
                                                     f"date written YYYY-MM-DD")
    today = today or datetime.now(ZoneInfo(TIMEZONE)).date()
    if bd > today:
        raise DeliveryRejected("BATCH_DATE_FUTURE", f"{label}: batch date {batch_date} is after today ({today})")
    landing = Path(landing)
    ddir = delivery_dir(landing, source, batch_date)
    mpath = ddir / "manifest.json"
    try:
        for path, what in ((landing / source, "source folder"), (ddir, "delivery folder"), (mpath, "manifest")):
            _regular(path, landing, label, what)
    except FileNotFoundError:
        raise DeliveryRejected("MANIFEST_MISSING", f"{label}: no manifest.json in {ddir}") from None
    m, raw = _load_manifest(mpath, label)
    if m["source"] != source or m["batch_date"] != batch_date:
        raise DeliveryRejected(
            "MANIFEST_MISMATCH",
            f"{label}: manifest names source={m['source']!r} "
            f"batch_date={m['batch_date']!r}, its folder is {source}/{batch_date}",
        )
    entries = m["files"]
    if not entries and m["kind"] == "full":
        raise DeliveryRejected("DELIVERY_EMPTY", f"{label}: a full delivery (a complete snapshot) lists no file")
    _check_listing(entries, source, batch_date, label)
    files = [_verify_file(ddir, landing, f, catalog().entity(source, f["entity"]), label) for f in entries]
    notes = []
    listed = {f["name"] for f in entries} | {"manifest.json"}
    extra = sorted(p.name for p in ddir.iterdir() if p.name not in listed)
    if extra:
        notes.append(f"files in the folder the manifest does not list (not read): {', '.join(extra[:20])}"
                     + (f" and {len(extra) - 20} more" if len(extra) > 20 else ""))

    return Delivery(source, batch_date, m["kind"], tuple(files), hashlib.sha256(raw).hexdigest(), ddir, tuple(notes))


def _check_listing(entries: list[dict], source: str, batch_date: str, label: str) -> None:
    entities = catalog().sources[source]
    seen_names, seen_entities = {}, {}
    for i, f in enumerate(entries):
        name, ent = f["name"], f["entity"]
        if name in seen_names:
            raise DeliveryRejected(
                "FILE_LISTED_TWICE", f"{label}: manifest lists {name} twice (files[{seen_names[name]}] and files[{i}])"
            )
        seen_names[name] = i
        if ent not in entities:
            raise DeliveryRejected("UNKNOWN_ENTITY", f"{label}: files[{i}] {name}: entity {ent!r} is not one of "
                                                     f"{source}'s entities ({', '.join(entities)})")
        if ent in seen_entities:
            raise DeliveryRejected("ENTITY_LISTED_TWICE", f"{label}: manifest lists two files for entity {ent}: "
                                                          f"{seen_entities[ent]} and {name} (SPEC: one file an entity)")
        seen_entities[ent] = name
        entity = entities[ent]
        want = entity.file_name(batch_date)
        if name != want:
            raise DeliveryRejected("FILE_NAME_INVALID", f"{label}: files[{i}] is named {name}; SPEC names the "
                                                        f"{ent} file of {batch_date} {want}")
        enc = f["encoding"]
        if _enc_key(enc) not in ALLOWED_ENCODINGS[entity.format]:
            allowed = "GB18030 or UTF-8" if entity.format == "csv" else "UTF-8"
            raise DeliveryRejected("ENCODING_INVALID", f"{label}: file {name}: declared encoding {enc!r} is not "
                                                       f"allowed for {entity.format} (SPEC: {allowed})")


def _verify_file(ddir: Path, landing: Path, f: dict, entity: Entity, label: str) -> DeliveryFile:
    name, rows, sha, enc = f["name"], f["rows"], f["sha256"].lower(), f["encoding"]
    path = ddir / name
    where = f"{label}: file {name}"
    try:
        _regular(path, landing, label, "file")
    except FileNotFoundError:
        raise DeliveryRejected("FILE_MISSING", f"{label}: manifest names {name}, which is not in {ddir}") from None
    if path.is_dir():
        raise DeliveryRejected("UNSAFE_PATH", f"{where} is a folder, not a file")
    try:
        scan = scan_file(path, entity.format, check_gb18030=entity.format == "csv")
    except Exception as exc:                     # pyarrow: not Parquet, corrupt footer, truncated
        if entity.format == "parquet":
            raise DeliveryRejected("PARQUET_UNREADABLE", f"{where}: not a readable Parquet file "
                                                         f"({type(exc).__name__}: {str(exc)[:160]})") from None
        raise
    if scan.sha256 != sha:
        raise DeliveryRejected("SHA256_MISMATCH", f"{where}: manifest sha256 {sha[:16]}…, file bytes hash to "
                                                  f"{scan.sha256[:16]}…")
    actual_enc = _actual_encoding(scan, entity, enc, where)
    notes: list[str] = []
    columns: tuple[str, ...] = ()
    if entity.format == "csv":
        columns = _check_csv(scan, entity, actual_enc, where, notes)
    elif entity.format == "jsonl":
        _check_jsonl(scan, entity, where, notes)
    elif entity.format == "xml":
        _check_xml(scan, entity, where, notes)
    else:
        _check_parquet(path, entity, where)
    if scan.records != rows:
        raise DeliveryRejected("ROW_COUNT_MISMATCH", f"{where}: manifest says {rows} rows, file has {scan.records}"
                                                     + _count_detail(scan))
    if scan.blank_lines:
        notes.append(f"{scan.blank_lines} blank line(s), not records")
    return DeliveryFile(name, entity, path, rows, scan.sha256, enc, actual_enc, scan.has_bom, columns,
                        scan.multiline, tuple(scan.events), not scan.events_truncated, tuple(scan.hidden), tuple(notes))


def _count_detail(scan: FileScan) -> str:
    if scan.fmt == "parquet":
        return " (Parquet footer)"
    if scan.fmt == "xml":
        return " <resident> elements (outside comments and CDATA)"
    bits = [f"{scan.lines} lines"]
    if scan.fmt == "csv":
        bits.append("1 header line")
    if scan.blank_lines:
        bits.append(f"{scan.blank_lines} blank, not records")
    if scan.multiline:
        bits.append("records with quoted line breaks count once")
    return " records (" + ", ".join(bits) + ")"


def _actual_encoding(scan: FileScan, entity: Entity, declared: str, where: str) -> str:
    """The encoding the bytes are really in. A police file really in UTF-8 (or with a BOM) is read as
    UTF-8 whatever the manifest says (SPEC lists it as a defect); anything else must decode strictly."""
    if entity.format == "parquet":
        return declared
    if scan.nul_bytes:
        raise DeliveryRejected("ENCODING_MISMATCH", f"{where}: the bytes hold NUL characters or a UTF-16 byte-order "
                                                    f"mark (UTF-16?); SPEC: {entity.encoding}")
    if scan.has_bom or scan.looks_utf8:
        return "UTF-8"
    if entity.format == "csv":
        if scan.utf8_valid and _enc_key(declared) == "UTF8":
            return "UTF-8"                                   # plain ASCII declared UTF-8
        if scan.gb18030_valid:
            return "GB18030"
        raise DeliveryRejected("ENCODING_MISMATCH", f"{where}: the bytes are neither valid GB18030 nor valid UTF-8")
    if not scan.utf8_valid:
        raise DeliveryRejected("ENCODING_MISMATCH", f"{where}: the bytes are not valid UTF-8 (SPEC: UTF-8)")
    return "UTF-8"


def _check_csv(scan: FileScan, entity: Entity, encoding: str, where: str, notes: list[str]) -> tuple[str, ...]:
    expected = entity.field_names
    if scan.header is None:
        raise DeliveryRejected("HEADER_MISMATCH", f"{where}: the file is empty (no header line); expected "
                                                  f"{','.join(expected)}")
    text = scan.header.decode("utf-8" if encoding == "UTF-8" else "gb18030", "replace")
    found = next(csv.reader([text]), [])
    if found != expected:
        missing = [c for c in expected if c not in found]
        unknown = [c for c in found if c not in expected]
        dup = sorted({c for c in found if found.count(c) > 1})
        if missing or unknown or dup:
            parts = (
                ([f"missing {','.join(missing)}"] if missing else [])
                + ([f"unknown {','.join(unknown)}"] if unknown else [])
                + ([f"repeated {','.join(dup)}"] if dup else [])
            )
            raise DeliveryRejected("HEADER_MISMATCH", f"{where}: header {'; '.join(parts)} — found "
                                                      f"{','.join(found)[:300]}; expected {','.join(expected)}")
        notes.append(f"columns in another order than SPEC's, read by name: {','.join(found)}")
    if scan.multiline and scan.lone_cr_line is not None:
        raise DeliveryRejected("LINE_END_INVALID", f"{where}: line {scan.lone_cr_line} ends in a lone CR while quoted "
                                                   f"fields span lines (SPEC: CRLF line ends)")
    return tuple(found)


def _required(entity: Entity) -> list[str]:
    return [f.name for f in entity.fields if f.required or not f.nullable]


def _check_jsonl(scan: FileScan, entity: Entity, where: str, notes: list[str]) -> None:
    if scan.array_line is not None:
        raise DeliveryRejected("JSON_NOT_LINES", f"{where}: line {scan.array_line} holds a JSON array; SPEC: "
                                                 f"JSON Lines, one object a line")
    _check_names(scan, entity, set(), where, notes, "key")


def _check_xml(scan: FileScan, entity: Entity, where: str, notes: list[str]) -> None:
    if scan.doctype:
        raise DeliveryRejected("XML_DOCTYPE", f"{where}: the file declares a DOCTYPE; SPEC's XML has none (entity "
                                              f"expansion and external entities are refused, nothing was parsed)")
    _check_names(scan, entity, {"residents", entity.row_tag or "resident"}, where, notes, "element")


def _check_names(scan: FileScan, entity: Entity, structural: set[str], where: str, notes: list[str], what: str):
    if scan.records == 0:
        return
    absent = [n for n in _required(entity) if scan.names.get(n, 0) == 0]
    if absent:
        raise DeliveryRejected("FIELD_MISSING", f"{where}: required {what} {', '.join(absent)} is in none of its "
                                                f"{scan.records} records (renamed?)")
    unknown = sorted(set(scan.names) - set(entity.field_names) - structural)
    if unknown:
        notes.append(f"unknown {what}s, not loaded: "
                     + ", ".join(f"{n} ×{scan.names[n]}" for n in unknown[:10]))


def _arrow_type_ok(t, want: str) -> bool:

    if want == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if want == "date":
        return pa.types.is_date32(t)
    if want == "timestamp":
        return (
            pa.types.is_timestamp(t) and t.unit in ("ms", "us") and (t.tz or "").upper() in ("UTC", "+00:00", "ETC/UTC")
        )
    if want == "decimal(12,2)":
        return pa.types.is_decimal(t) and (t.precision, t.scale) == (12, 2)
    return False


def _check_parquet(path: Path, entity: Entity, where: str) -> None:

    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise DeliveryRejected(
            "PARQUET_UNREADABLE", f"{where}: not a readable Parquet file ({str(exc)[:160]})"
        ) from None
    found = list(schema.names)
    expected = entity.field_names
    missing = [c for c in expected if c not in found]
    unknown = [c for c in found if c not in expected]
    if missing or unknown or len(set(found)) != len(found):
        parts = ([f"missing {','.join(missing)}"] if missing else []) + (
            [f"unknown {','.join(unknown)}"] if unknown else []
        )
        raise DeliveryRejected("HEADER_MISMATCH", f"{where}: Parquet columns {'; '.join(parts) or 'repeated'} — found "
                                                  f"{','.join(found)[:300]}; expected {','.join(expected)}")
    for f in entity.fields:
        t = schema.field(f.name).type
        if not _arrow_type_ok(t, f.parquet_type or "string"):
            raise DeliveryRejected("COLUMN_TYPE_MISMATCH", f"{where}: column {f.name} is {t}; SPEC: "
                                                           f"{_PARQUET_TYPES[f.parquet_type or 'string']}")
