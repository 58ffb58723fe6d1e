"""The per-format counting rules of ``shuzhi.filescan`` on bytes written by hand (no Spark): what a
manifest's ``rows`` is checked against. Each case runs with the normal chunk size and with 7-byte
chunks, so no rule depends on where a read happens to end."""
import doctest

import pytest

from shuzhi import filescan
from shuzhi.filescan import scan_file

pytestmark = pytest.mark.unit


@pytest.fixture(params=[filescan.CHUNK, 7], ids=["whole", "7-byte-chunks"])
def chunk(request, monkeypatch):
    monkeypatch.setattr(filescan, "CHUNK", request.param)


def _scan(tmp_path, data: bytes, fmt: str, **kw):
    p = tmp_path / f"f.{fmt}"
    p.write_bytes(data)
    return scan_file(p, fmt, **kw)


def test_doctests():
    assert doctest.testmod(filescan).failed == 0


def test_csv_blank_lines_are_not_records(tmp_path, chunk):
    s = _scan(tmp_path, b"A,B\r\n1,2\r\n\r\n  \r\n3,4\r\n\r\n", "csv")
    assert (s.records, s.blank_lines, s.multiline) == (2, 3, False)
    assert [s.line_of(1), s.line_of(2)] == [2, 5]


def test_csv_quoted_line_break_is_one_record(tmp_path, chunk):
    s = _scan(tmp_path, b'A,B\r\n1,"x\r\ny"\r\n2,"a""b"\r\n3,4', "csv")
    assert (s.records, s.multiline) == (3, True)
    assert [s.line_of(1), s.line_of(2), s.line_of(3)] == [2, 4, 5]


def test_csv_quote_inside_an_unquoted_field_opens_nothing(tmp_path, chunk):
    s = _scan(tmp_path, b'A,B\r\n1,2"3\r\n4,5\r\n', "csv")
    assert (s.records, s.multiline) == (2, False)


def test_csv_lone_cr_line_ends(tmp_path, chunk):
    s = _scan(tmp_path, b"A,B\r1,2\r3,4\r", "csv")
    assert (s.records, s.lone_cr_line, s.header) == (2, 2, b"A,B")


def test_csv_header_without_bom_and_empty_file(tmp_path, chunk):
    s = _scan(tmp_path, b"\xef\xbb\xbfA,B\r\n1,2\r\n", "csv")
    assert (s.header, s.has_bom, s.records) == (b"A,B", True, 1)
    assert _scan(tmp_path, b"", "csv").header is None


def test_csv_encodings(tmp_path, chunk):
    gb = "张三,李四\r\n".encode("gb18030")
    s = _scan(tmp_path, b"A,B\r\n" + gb, "csv", check_gb18030=True)
    assert (s.utf8_valid, s.gb18030_valid) == (False, True)
    s = _scan(tmp_path, "A,B\r\n张三,李四\r\n".encode("utf-8"), "csv", check_gb18030=True)
    assert s.looks_utf8
    s = _scan(tmp_path, "A,B\r\n".encode("utf-16"), "csv")
    assert s.nul_bytes


def test_jsonl_lines_blank_and_arrays(tmp_path, chunk):
    s = _scan(tmp_path, b'{"a": 1, "b": "x:"}\n\n   \n[{"a": 2}]\n{"a": 3', "jsonl")
    assert (s.records, s.blank_lines, s.array_line) == (3, 2, 4)
    assert s.names == {"a": 3, "b": 1}
    assert [s.line_of(1), s.line_of(2), s.line_of(3)] == [1, 4, 5]


def test_xml_counts_elements_outside_comments_and_cdata(tmp_path, chunk):
    data = (b'<?xml version="1.0"?>\n<residents>\n<!-- <resident><x/></resident> -->\n'
            b'<resident><record_id>1</record_id></resident>\n<![CDATA[<resident>]]>\n'
            b'<resident/>\n<resident a="1"/>\n<resident  /></residents>\n')
    s = _scan(tmp_path, data, "xml")
    assert (s.records, s.hidden, s.doctype) == (4, [2], False)
    assert s.names["record_id"] == 1 and "x" not in s.names


def test_xml_doctype_is_seen(tmp_path, chunk):
    s = _scan(tmp_path, b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY a "b">]>\n<residents/>\n', "xml")
    assert s.doctype and s.records == 0


def test_sha256_is_of_the_bytes(tmp_path, chunk):
    import hashlib

    data = b"A,B\r\n1,2\r\n" * 5
    assert _scan(tmp_path, data, "csv").sha256 == hashlib.sha256(data).hexdigest()
