"""One pass over a delivered file's bytes: its sha256, its encoding, and its records counted the way
the reader will read them — one counting rule per format (SPEC "Delivery layout": ``rows`` counts
data records), so a manifest's row count is checked against what the load will really hold:

- **CSV** (police): the first line is the header. A record is an RFC 4180 record: a line break
  inside a double-quoted field belongs to its record (the file is then read with Spark's
  ``multiLine``). Line ends are CRLF, LF or a lone CR (Spark's line reader splits on all three).
  A blank line (empty, or only spaces/tabs) is not a record; Spark skips it. In a file with
  quoted line breaks, a line of only spaces is a record (Spark's multi-line parser reads it as
  one) and a lone CR outside quotes is refused (that parser would not split there).
- **JSON Lines** (civil affairs): a record is a non-blank line; blank lines are not records. A line
  holding a JSON array is refused (Spark would read each element as a record of its own).
- **XML** (health): a record is a ``<resident>`` element — start tag or self-closing — outside
  comments, CDATA sections and processing instructions. (Spark's reader skips ``<resident/>``
  written without a space; the ingest job quarantines those from their positions found here.)
  A DOCTYPE declaration is refused before any XML parser sees the file (no entity expansion, no
  external entity fetched).
- **Parquet** (social security): the row count of the file's footer.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_bytes(b'A,B\\r\\n1,"two\\r\\nlines"\\r\\n\\r\\n3,4\\r\\n')
    >>> s = scan_file(p, "csv")
    >>> (s.records, s.multiline, s.blank_lines, s.line_of(2))
    (2, True, 1, 5)
"""
from __future__ import annotations

import codecs
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

CHUNK = 8 << 20
BOM = b"\xef\xbb\xbf"
MAX_EVENTS = 10_000            # line-number corrections kept per file for locators (beyond: "record N")
_LINE = re.compile(rb"(\r\n|\n|\r)")
_BLANK = bytes(range(33))      # what Spark's line reader trims before it skips an empty line
_CLOSE = re.compile(rb'(?:[^"]++|"")*+"')          # rest of a quoted field up to its closing quote
_JSON_KEY = re.compile(rb'"((?:[^"\\]++|\\.)*+)"\s*+:')
_XML_TOKEN = re.compile(rb"(<!--.*?(?:-->|\Z)|<!\[CDATA\[.*?(?:\]\]>|\Z)|<\?.*?(?:\?>|\Z))"
                        rb"|<!(DOCTYPE)|<([A-Za-z_][\w.\-]*+)(/>)?", re.S | re.I)
_CLOSERS = (b"-->", b"]]>", b"?>")
_XML_NAME = re.compile(rb"<([A-Za-z_][\w.\-]*+)")


@dataclass
class FileScan:
    """What one pass over a file found. ``records`` is the count the reader will produce."""
    fmt: str
    sha256: str = ""
    size: int = 0
    has_bom: bool = False
    utf8_valid: bool = True
    non_ascii: bool = False
    gb18030_valid: bool = True
    nul_bytes: bool = False
    records: int = 0
    lines: int = 0
    blank_lines: int = 0
    multiline: bool = False              # CSV: some record has a quoted line break → read with multiLine
    lone_cr_line: int | None = None      # first physical line ended by a lone CR outside quotes
    header: bytes | None = None          # CSV: the header line's bytes (BOM removed)
    array_line: int | None = None        # JSON Lines: first line holding a JSON array
    doctype: bool = False                # XML: a DOCTYPE declaration is present
    names: Counter = field(default_factory=Counter)   # JSON keys / XML element names, with counts
    hidden: list[int] = field(default_factory=list)   # XML: <resident/> positions the reader skips
    events: list[tuple[int, int]] = field(default_factory=list)  # (record, extra lines before it)
    events_truncated: bool = False

    @property
    def looks_utf8(self) -> bool:
        """Valid UTF-8 with non-ASCII content, or a BOM: read as UTF-8 whatever the manifest says."""
        return self.utf8_valid and (self.non_ascii or self.has_bom)

    def line_of(self, record: int) -> int | None:
        """Physical line on which record ``record`` (1-based) starts (CSV counts the header line)."""
        if self.events_truncated:
            return None
        return record + (1 if self.fmt == "csv" else 0) + sum(n for r, n in self.events if r <= record)


class _Lines:
    """Per-physical-line state machine for CSV and JSON Lines (see the module docstring)."""

    def __init__(self, scan: FileScan):
        self.s = scan
        self.in_quote = False
        self.pending = 0              # extra lines since the last record start (line mode)
        self.pending_ml = 0           # the same, for the multi-line reading
        self.events_ml: list[tuple[int, int]] = []
        self.line_records = 0         # records if read line by line
        self.ml_records = 0           # records if read as RFC 4180 multi-line records
        self.continuations = 0

    def _event(self, events, record, n):
        if n:
            if len(events) >= MAX_EVENTS:
                self.s.events_truncated = True
            else:
                events.append((record, n))

    def line(self, raw: bytes, term: bytes) -> None:
        s = self.s
        s.lines += 1
        if s.lines == 1 and s.fmt == "csv":
            s.header = raw[3:] if raw.startswith(BOM) else raw
            return
        blank = not raw.strip(_BLANK)
        if s.fmt == "csv":
            if self.in_quote:                          # continuation of a quoted field
                self.continuations += 1
                self.pending_ml += 1
                self.in_quote = _open_after(raw, True)
                if not blank:
                    self._line_record()
                else:
                    self.pending += 1
                return
            if term == b"\r" and s.lone_cr_line is None:
                s.lone_cr_line = s.lines
            if blank:
                s.blank_lines += 1
                self.pending += 1
                if raw == b"":
                    self.pending_ml += 1
                    return
                self._ml_record()                      # spaces only: a record to the multi-line parser
                return
            self._line_record()
            self._ml_record()
            if b'"' in raw:
                self.in_quote = _open_after(raw, False)
                s.multiline = s.multiline or self.in_quote
            return
        # JSON Lines
        if blank:
            s.blank_lines += 1
            self.pending += 1
            return
        if s.array_line is None and raw.lstrip(_BLANK)[:1] == b"[":
            s.array_line = s.lines
        self._line_record()

    def _line_record(self):
        self.line_records += 1
        self._event(self.s.events, self.line_records, self.pending)
        self.pending = 0

    def _ml_record(self):
        self.ml_records += 1
        self._event(self.events_ml, self.ml_records, self.pending_ml)
        self.pending_ml = 0

    def finish(self) -> None:
        s = self.s
        if s.fmt == "csv" and s.multiline:
            s.records, s.events = self.ml_records, self.events_ml
        else:
            s.records = self.line_records


def _open_after(line: bytes, in_quote: bool) -> bool:
    """Whether a CSV line ends inside a double-quoted field (RFC 4180: a quote opens a field only at
    its start; ``""`` inside is an escaped quote). ``in_quote``: the line goes on a quoted field."""
    pos, n = 0, len(line)
    while True:
        if in_quote or (pos < n and line[pos] == 0x22):
            m = _CLOSE.match(line, pos if in_quote else pos + 1)
            if not m:
                return True
            pos, in_quote = m.end(), False
        c = line.find(b",", pos)
        if c < 0:
            return False
        pos = c + 1


_LEAD = re.compile(rb"\n[\x00-\x20]")      # a line led by a byte Spark may trim: a candidate blank line


def _irregular(buf: bytes) -> bool:
    """Whether a run of lines may hold a blank line, a lone CR or a line led by a space or control
    byte (the regex starts with a literal, so it runs at C speed)."""
    return buf[0] <= 32 or buf.count(b"\r") != buf.count(b"\r\n") or _LEAD.search(buf) is not None


def _plain_lines(buf: bytes, state: _Lines) -> bool:
    """Count a run of complete lines at C speed when nothing in it needs the line-by-line rules (no
    blank line, lone CR, quoted line break or JSON array, no correction pending); else False."""
    s = state.s
    if not buf or s.lines == 0 or state.in_quote or state.pending or state.pending_ml or _irregular(buf):
        return False
    if s.fmt == "jsonl" and s.array_line is None and (buf[:1] == b"[" or b"\n[" in buf):
        return False
    if s.fmt == "csv":
        pos = buf.find(b'"')
        while pos >= 0:                                   # only the lines that hold a quote
            start, end = buf.rfind(b"\n", 0, pos) + 1, buf.find(b"\n", pos)
            if _open_after(buf[start:end], False):
                return False
            pos = buf.find(b'"', end)
    n = buf.count(b"\n")
    s.lines += n
    state.line_records += n
    state.ml_records += n
    return True


def _split_lines(buf: bytes, state: _Lines) -> None:
    if _plain_lines(buf, state):
        return
    parts = _LINE.split(buf)
    for i in range(0, len(parts) - 1, 2):
        state.line(parts[i], parts[i + 1])


def _xml_tokens(buf: bytes, scan: FileScan, final: bool) -> int:
    """Count element names in ``buf``; return where unprocessed bytes start: a comment, CDATA
    section or name that may go on in the next chunk is carried, never half-counted."""
    n = len(buf)
    if b"<!" not in buf and b"<?" not in buf and b"<resident/>" not in buf:   # plain elements only: count in C
        cut = n if final else buf.rfind(b"<")
        cut = n if cut < 0 else cut
        names = Counter(_XML_NAME.findall(buf, 0, cut))
        for name, k in names.items():
            scan.names[name.decode("ascii", "replace")] += k
        scan.records += names.get(b"resident", 0)
        return cut
    end = 0
    for m in _XML_TOKEN.finditer(buf):
        if not final and (m.end() >= n - 2 or (m.group(1) and not m.group(1).endswith(_CLOSERS))):
            return m.start()
        if m.group(2):
            scan.doctype = True
        elif m.group(3):
            name = m.group(3).decode("ascii", "replace")
            scan.names[name] += 1
            if name == "resident":
                scan.records += 1
                if m.group(4):                                   # "<resident/>" exactly
                    scan.hidden.append(scan.records)
        end = m.end()
    if final:
        return n
    lt = buf.rfind(b"<", end)
    return lt if lt >= 0 else n


def scan_file(path: Path, fmt: str, *, check_gb18030: bool = False) -> FileScan:
    """Hash, sniff and count one file in one pass (see the module docstring for the counting rules)."""
    scan = FileScan(fmt)
    h = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    gb = codecs.getincrementaldecoder("gb18030")("strict") if check_gb18030 else None
    lines = _Lines(scan) if fmt in ("csv", "jsonl") else None
    carry, first = b"", True
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            final = not chunk
            if chunk:
                h.update(chunk)
                scan.size += len(chunk)
            if fmt == "parquet":
                if final:
                    break
                continue
            if first and chunk:
                first = False
                scan.has_bom = chunk.startswith(BOM)
                head = chunk[:4096]
                scan.nul_bytes = b"\x00" in head or head[:2] in (b"\xff\xfe", b"\xfe\xff")
            if chunk:
                if scan.utf8_valid:
                    try:
                        utf8.decode(chunk)
                    except UnicodeDecodeError:
                        scan.utf8_valid = False
                    if not scan.non_ascii and not chunk.isascii():
                        scan.non_ascii = True
                if gb is not None and scan.gb18030_valid:
                    try:
                        gb.decode(chunk)
                    except UnicodeDecodeError:
                        scan.gb18030_valid = False
            buf = carry + chunk
            if lines is not None:
                if final:
                    if buf:
                        _split_lines(buf + b"\n", lines)
                        if fmt == "jsonl":
                            scan.names.update(k.decode("utf-8", "replace") for k in _JSON_KEY.findall(buf))
                    break
                j = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
                if j == len(buf) - 1 and buf[j] == 0x0D:       # a CR that may be half of a CRLF
                    j = max(buf.rfind(b"\n", 0, j), buf.rfind(b"\r", 0, j))
                cut = j + 1
                if cut <= 0:
                    carry = buf
                    continue
                _split_lines(buf[:cut], lines)
                if fmt == "jsonl":
                    scan.names.update(k.decode("utf-8", "replace") for k in _JSON_KEY.findall(buf, 0, cut))
                carry = buf[cut:]
            else:
                if final:
                    _xml_tokens(buf, scan, True)
                    break
                carry = buf[_xml_tokens(buf, scan, False):]
    for dec, attr in ((utf8, "utf8_valid"), (gb, "gb18030_valid")):
        if dec is not None and getattr(scan, attr):
            try:
                dec.decode(b"", final=True)
            except UnicodeDecodeError:
                setattr(scan, attr, False)
    if lines is not None:
        lines.finish()
    elif fmt == "parquet":

        scan.records = pq.ParquetFile(path).metadata.num_rows
    scan.sha256 = h.hexdigest()
    return scan
