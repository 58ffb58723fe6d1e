"""Ground truth: what was planted in each night's deliveries, and the true person facts.

Written under the truth root, never inside the landing tree:

- ``<truth>/<batch_date>/truth.csv``: one row per planted instance
- ``<truth>/<batch_date>/deliveries.json``: files written, kind, rows, encoding actually used, BOM
- ``<truth>/<batch_date>/population.parquet`` and ``<truth>/population.parquet`` (latest):
  canonical person facts (person_id, name, sex, birth_date, status, death_date, ...)
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .defects import ACTIONS, Planted
from .population import World
from .store import group_by
from .tables import EXTRA_SEQ, Table, record_id, record_ids

TRUTH_COLUMNS = ("source", "entity", "batch_date", "file", "row", "record_id", "related_record_ids", "person_id",
                 "field", "defect_class", "expected_action", "detail")


def truth_row(**kw) -> dict:
    row = {c: "" for c in TRUTH_COLUMNS}
    row.update({k: ("" if v is None else v) for k, v in kw.items()})
    row["expected_action"] = ACTIONS[row["defect_class"]]
    return row


def positions(t: Table) -> np.ndarray:
    """1-based physical row number of each table row."""
    inv = np.empty(len(t), np.int64)
    inv[t.order] = np.arange(1, len(t.order) + 1)
    return inv


def record_truth(t: Table, planted: list[Planted], batch_date: str, file_name: str, w: World) -> list[dict]:
    pos = positions(t)
    rid_col = t.fields[0]
    out = []
    for p in planted:
        person = int(t.person[p.row])  # houses: the owner
        pid = w.P.id[person] if person >= 0 else ""
        detail = p.detail.replace("{orig}", str(int(pos[p.orig]))) if p.orig >= 0 else p.detail
        out.append(truth_row(source=t.source, entity=t.entity, batch_date=batch_date, file=file_name,
                             row=int(pos[p.row]), record_id=t.cols[rid_col][p.row], person_id=pid, field=p.field,
                             defect_class=p.cls, detail=detail))
    return out


class _Locator:
    """Where a world record sits in tonight's files."""

    def __init__(self, tables: dict[tuple[str, str], Table], names: dict[tuple[str, str], str]) -> None:
        self.tables, self.names = tables, names
        self._cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def _index(self, se):
        if se not in self._cache:
            t = self.tables[se]
            keys = t.key  # a duplicate's copy sorts after its original (stable), so the original is found
            order = np.argsort(keys, kind="stable")
            self._cache[se] = (keys[order], order, positions(t))
        return self._cache[se]

    def find(self, source: str, entity: str, key: int) -> tuple[str, int | str]:
        se = (source, entity)
        keys, order, pos = self._index(se)
        k = np.searchsorted(keys, key)
        if k < len(keys) and keys[k] == key:
            return self.names[se], int(pos[order[k]])
        return "", ""


def persistent_truth(w: World, tables: dict[tuple[str, str], Table], names: dict[tuple[str, str], str],
                     batch_date: str) -> list[dict]:
    """Rows for cross-department contradictions and duplicate persons that show in tonight's files
    (the flagged record, or another record of the same person, was delivered tonight)."""
    P = w.P
    loc = _Locator(tables, names)
    tonight = np.unique(np.concatenate([t.person for (s, e), t in tables.items() if e != "houses"]))
    tonight = tonight[tonight >= 0]
    by_cv = group_by(w.CV.person)
    by_ss = group_by(w.SS.person)
    counts = None
    out: list[dict] = []

    def in_tonight(p: int) -> bool:
        k = np.searchsorted(tonight, p)
        return bool(k < len(tonight) and tonight[k] == p)

    def police_rid(p: int) -> str:
        return "" if P.hidden[p] else record_id("police", "population", p + 1)

    def health_rid(p: int) -> str:
        return record_id("health", "residents", p + 1) if P.has_health[p] else ""

    def join(*ids) -> str:
        flat: list[str] = []
        for x in ids:
            flat += list(x) if isinstance(x, (list, np.ndarray)) else [x]
        return ";".join(str(x) for x in flat if x)

    for c in w.contras:
        p = c.person
        if c.cls == "contra_vacant_house_residents":
            if counts is None:
                counts = w.resident_counts()
            if w.H.use[c.key] != "4" or counts[c.key] == 0:
                continue
            res = np.nonzero((P.house == c.key) & (P.status == 0) & ~P.hidden)[0]
            resx = np.nonzero(w.PX.house == c.key)[0]
            f, row = loc.find("police", "houses", c.key)
            if not f and not any(in_tonight(int(r)) for r in res):
                continue
            rids = [record_id("police", "population", r + 1) for r in res] + \
                   [record_id("police", "population", EXTRA_SEQ[("police", "population")] + j) for j in resx]
            out.append(truth_row(source="police", entity="houses", batch_date=batch_date, file=f, row=row,
                                 record_id=record_id("police", "houses", c.key + 1), related_record_ids=join(rids),
                                 field="FWYTDM", defect_class=c.cls, detail=c.detail))
            continue
        # holds tonight?
        if c.cls == "contra_deceased_benefit":
            if P.status[p] != 1:
                continue
            if c.source == "social_security":
                k = c.key
                if not (w.SS.status[k] == "1" and w.SS.cents[k] >= 0 and w.SS.last_pay[k] > P.death[p]):
                    continue
                detail = (f"died {P.death[p]}, pension {w.SS.cents[k] / 100:.2f} still paid, last payment "
                          f"{w.SS.last_pay[k]}")
            else:
                if w.CV.status[c.key] != "ACTIVE":
                    continue
                detail = f"died {P.death[p]}, {w.CV.atype[c.key]} case still ACTIVE"
        elif c.cls == "contra_uscc_bad_check":
            if w.SS.emp[c.key] < 0:
                continue
            detail = c.detail
        else:
            detail = c.detail
        f, row = loc.find(c.source, c.entity, c.key)
        if not f and not in_tonight(p):
            continue
        pid = P.id[p]
        if c.source == "health":
            rid = health_rid(p)
        elif c.source == "police":
            rid = police_rid(p)
        elif c.source == "civil_affairs":
            rid = record_id("civil_affairs", "assistance", c.key + 1)
        else:
            rid = record_id("social_security", "insurance", c.key + 1)
        cv_rids = record_ids("civil_affairs", "assistance", by_cv(p) + 1)
        ss_rids = record_ids("social_security", "insurance", by_ss(p) + 1)
        if c.cls == "contra_absent_from_police":
            related = join(cv_rids, ss_rids)
        elif c.cls == "contra_deceased_benefit":
            deaths = [r for k, r in zip(by_cv(p), cv_rids) if w.CV.death_reg[k] == w.CV.death_reg[k]]
            related = join(police_rid(p), health_rid(p), deaths)
        elif c.cls == "contra_uscc_bad_check":
            related = ""
        elif c.cls == "contra_id_birth_sex" and c.extra.get("all_records"):
            # every department agrees on the birth date; the number encodes another one
            recs = [("police", "population", p, police_rid(p), "CSRQ"),
                    ("health", "residents", p, health_rid(p), "birth_date")] + \
                   [("civil_affairs", "assistance", int(k), r, "birth_date") for k, r in zip(by_cv(p), cv_rids)]
            for src, ent, key, r, fld in recs:
                if not r:
                    continue
                f2, row2 = loc.find(src, ent, key)
                if not f2:
                    continue
                others = [x[3] for x in recs if x[3] and x[3] != r]
                out.append(truth_row(source=src, entity=ent, batch_date=batch_date, file=f2, row=row2,
                                     record_id=r, related_record_ids=join(others), person_id=pid, field=fld,
                                     defect_class=c.cls, detail=detail))
            continue
        else:  # the same person's record where the other department says otherwise
            related = police_rid(p) if c.source != "police" else health_rid(p)
        out.append(truth_row(source=c.source, entity=c.entity, batch_date=batch_date, file=f, row=row,
                             record_id=rid, related_record_ids=related, person_id=pid, field=c.field,
                             defect_class=c.cls, detail=detail))
    # the same person under two record ids
    for (src, ent, store, fld) in (("police", "population", w.PX, "GMSFHM"), ("health", "residents", w.HX, "id_no")):
        for j, p in enumerate(store.person.tolist()):
            f, row = loc.find(src, ent, -1 - j)
            if not f and not in_tonight(p):
                continue
            if src == "police" and P.hidden[p]:
                continue
            main = police_rid(p) if src == "police" else health_rid(p)
            out.append(truth_row(source=src, entity=ent, batch_date=batch_date, file=f, row=row,
                                 record_id=record_id(src, ent, EXTRA_SEQ[(src, ent)] + j), related_record_ids=main,
                                 person_id=P.id[p], field=fld, defect_class="dup_person_two_ids",
                                 detail="second record id for the same person (same identity number)"))
    return out


def write_truth_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = lambda r: (r["source"], r["entity"], r["file"], r["row"] if r["row"] != "" else 0,  # noqa: E731
                     r["defect_class"], r["record_id"])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(sorted(rows, key=key))


def write_deliveries(path: Path, deliveries: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(deliveries, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def population_facts(w: World) -> pa.Table:
    P = w.P
    n = len(P)
    pol = record_ids("police", "population", np.arange(1, n + 1))
    hl = record_ids("health", "residents", np.arange(1, n + 1))
    status = np.array(["active", "deceased", "moved_out"], dtype=object)[P.status]

    def d(a):
        return pa.array(a.astype("M8[D]"), type=pa.date32(), mask=np.isnat(a))
    return pa.table({
        "person_id": pa.array(P.id.tolist(), pa.string()),
        "name": pa.array(P.name.tolist(), pa.string()),
        "sex": pa.array(P.sex.astype(str).tolist(), pa.string()),
        "birth_date": d(P.birth),
        "status": pa.array(status.tolist(), pa.string()),
        "death_date": d(np.where(P.status == 1, P.death, np.datetime64("NaT", "D"))),
        "deregistration_date": d(P.zx),
        "in_police_register": pa.array(~P.hidden),
        "police_record_id": pa.array(np.where(P.hidden, None, pol).tolist(), pa.string()),
        "health_record_id": pa.array(np.where(P.has_health, hl, None).tolist(), pa.string()),
        "community_code": pa.array(w.C.code[np.clip(P.comm, 0, None)].tolist(), pa.string()),
    })


def write_population(folder: Path, w: World) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(population_facts(w), folder / "population.parquet", compression="snappy")
