"""The proof-of-destruction byte scan (``shuzhi.scan.scan_destroyed``) on a hand-made tree: every
kind of place a destroyed value can hide is found, nothing else is, and the scan shared among
worker processes finds exactly what one process finds, in the same order."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shuzhi.scan import scan_destroyed

pytestmark = pytest.mark.unit

GONE_ID = "15010519850302123X"
KEPT_ID = "150105199001011234"
GONE_NAME = "张三丰"
TOKEN = "ab" * 32
BLOB = b"\x01\x02ciphertext-of-a-destroyed-row"


@pytest.fixture
def tree(tmp_path):
    """A lake-like tree: each file hides (or does not hide) one destroyed value in its own way."""
    root = tmp_path / "lake"
    (root / "silver" / "t" / "_delta_log").mkdir(parents=True)
    (root / "silver" / "t" / "_delta_log" / "00000000000000000001.json").write_text(
        json.dumps({"add": {"path": "x.parquet", "stats": f'{{"minValues": {{"token": "{TOKEN}"}}}}'}}))
    (root / "reports").mkdir()
    (root / "reports" / "page.html").write_bytes(f"<td>{GONE_NAME}</td><td>{KEPT_ID}</td>".encode("gb18030"))
    (root / "reports" / "clean.txt").write_text(f"kept {KEPT_ID} and 李四\n", encoding="utf-8")
    (root / "exports").mkdir()
    (root / "exports" / "lower.csv").write_bytes(f"id\n{GONE_ID.lower()}\n".encode())
    pq.write_table(pa.table({"name": ["李四", GONE_NAME, None], "note": ["", f"号码{GONE_ID}附", "x"],
                             "cipher": pa.array([b"other", BLOB, None], pa.binary())}),
                   root / "silver" / "t" / "part-0.parquet", compression="zstd")
    pq.write_table(pa.table({"add": [{"stats": {"ids": [KEPT_ID, GONE_ID]}}]}),
                   root / "silver" / "t" / "_delta_log" / "00000000000000000010.checkpoint.parquet")
    for i in range(6):          # clean filler files, so the files are shared among the workers
        (root / "ops" / f"f{i}").mkdir(parents=True)
        pq.write_table(pa.table({"v": [f"row {j}" for j in range(50)]}), root / "ops" / f"f{i}" / "p.parquet")
    return root


# what a reader of the tree above finds, written out file by file (paths sorted)
EXPECTED = [
    ("exports/lower.csv", "id", "bytes"),
    ("reports/page.html", "name", "bytes (gb18030)"),
    ("silver/t/_delta_log/00000000000000000001.json", "token", "bytes"),
    ("silver/t/_delta_log/00000000000000000010.checkpoint.parquet", "id", "parquet:add"),
    ("silver/t/part-0.parquet", "name", "parquet:name"),
    ("silver/t/part-0.parquet", "id", "parquet:note (inside a value)"),
    ("silver/t/part-0.parquet", "ciphertext", "parquet:cipher"),
]


def _scan(root, workers):
    return scan_destroyed(root, ids={GONE_ID}, names={GONE_NAME}, strings={TOKEN}, blobs={BLOB}, workers=workers)


def test_every_hiding_place_is_found_and_nothing_else(tree):
    findings, files = _scan(tree, workers=1)
    assert files == 12
    # a Parquet file's raw bytes may show the id too (column statistics, uncompressed pages: the
    # writer decides); its decoded values are what must be found
    raw_parquet = [f for f in findings if f.file.endswith(".parquet") and f.where == "bytes"]
    assert [(f.file, f.kind, f.where) for f in findings if f not in raw_parquet] == EXPECTED
    assert {(f.file, f.kind) for f in raw_parquet} <= {(e[0], "id") for e in EXPECTED if e[0].endswith(".parquet")}
    assert all(GONE_ID not in str(f) and GONE_NAME not in str(f) for f in findings)     # masked in the report


def test_workers_find_the_same_in_the_same_order(tree):
    assert _scan(tree, workers=2) == _scan(tree, workers=1)


def test_a_clean_tree_is_proven(tree):
    findings, files = scan_destroyed(tree, ids={"110101190001011237"}, names={"王二麻"}, strings={"cd" * 32},
                                     blobs={b"nowhere"}, workers=1)
    assert (findings, files) == ([], 12)
