"""Cut each department's clean records out of the world, as column tables ready to write.

A ``Table`` holds one delivery file's records as columns (object arrays of strings for the
text formats; typed numpy arrays for Parquet), plus per-row bookkeeping used by the defect
planter and the ground truth: record id, person, world key, update time, protection.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import reference as ref
from .population import World
from .store import iso_offset_ts, local_ts, ymd

POLICE_POPULATION = ("RECORD_ID", "GMSFHM", "XM", "XBDM", "CSRQ", "MZDM", "HJDZ_XZQHDM", "HJDZ", "XZZ", "SQDM",
                     "FWBM", "HH", "YHZGXDM", "LXDH", "RYZTDM", "ZXRQ", "GXSJ")
POLICE_HOUSES = ("RECORD_ID", "FWBM", "DZ", "SQDM", "FZGMSFHM", "FWYTDM", "JZRS", "GXSJ")
POLICE_INCIDENTS = ("RECORD_ID", "JJBH", "BJSJ", "AJLBDM", "FSDZ", "SQDM", "SJRGMSFHM", "CLZTDM", "GXSJ")
CIVIL_ASSISTANCE = ("record_id", "id_number", "name", "gender", "birth_date", "assistance_type",
                    "monthly_amount_yuan", "start_date", "end_date", "status", "household_id", "community_code",
                    "death_registered_date", "updated_at")
SS_INSURANCE = ("record_id", "sfzh", "xm", "insurance_type", "enrolment_status", "employer_uscc", "employer_name",
                "monthly_benefit", "last_payment_date", "updated_at")
HEALTH_RESIDENTS = ("record_id", "id_no", "name", "sex_code", "birth_date", "community_code", "chronic_conditions",
                    "disability_grade", "family_doctor_team", "last_visit_date", "death_date", "updated_at")

# source -> [(entity, file stem, extension, format, declared encoding)]
DELIVERIES = {
    "police": [("population", "population", "csv", "csv", "GB18030"),
               ("houses", "houses", "csv", "csv", "GB18030"),
               ("incidents", "incidents", "csv", "csv", "GB18030")],
    "civil_affairs": [("assistance", "assistance", "jsonl", "jsonl", "UTF-8")],
    "social_security": [("insurance", "insurance", "parquet", "parquet", "UTF-8")],
    "health": [("residents", "residents", "xml", "xml", "UTF-8")],
}
FIELDS = {("police", "population"): POLICE_POPULATION, ("police", "houses"): POLICE_HOUSES,
          ("police", "incidents"): POLICE_INCIDENTS, ("civil_affairs", "assistance"): CIVIL_ASSISTANCE,
          ("social_security", "insurance"): SS_INSURANCE, ("health", "residents"): HEALTH_RESIDENTS}
RID_PREFIX = {("police", "population"): ("RK", 10), ("police", "houses"): ("FW", 10),
              ("police", "incidents"): ("JQ", 10), ("civil_affairs", "assistance"): ("MZ", 10),
              ("social_security", "insurance"): ("SB", 10), ("health", "residents"): ("H", 7)}
EXTRA_SEQ = {("police", "population"): 900_000_001, ("health", "residents"): 8_000_001}
SEX_LABEL = {1: "男", 2: "女"}
NULL_SUFFIX = ":null"


def record_id(source: str, entity: str, seq) -> str:
    prefix, width = RID_PREFIX[(source, entity)]
    return f"{prefix}{int(seq):0{width}d}"


def record_ids(source: str, entity: str, seqs: np.ndarray) -> np.ndarray:
    prefix, width = RID_PREFIX[(source, entity)]
    return np.array([f"{prefix}{s:0{width}d}" for s in np.asarray(seqs).tolist()], dtype=object)


@dataclass
class Table:
    """One delivery file's records: columns plus per-row bookkeeping."""
    source: str
    entity: str
    fmt: str
    fields: tuple[str, ...]
    cols: dict[str, np.ndarray]
    rseq: np.ndarray      # numeric part of the record id (int64)
    version: np.ndarray   # update time, seconds since epoch (local time)
    person: np.ndarray    # person index in the world (-1 none)
    key: np.ndarray       # record key in the world's store (extras: -1-k)
    protect: np.ndarray   # carries a persistent plant: no format defects on it
    order: np.ndarray | None = None                 # physical row order (indices into cols)
    raw: dict[int, str] = field(default_factory=dict)  # row index -> literal text (broken records)

    def __len__(self) -> int:
        return len(self.rseq)

    @property
    def n_rows(self) -> int:
        return len(self.order) if self.order is not None else len(self)

    def take_rows(self, idx: np.ndarray) -> np.ndarray:
        """Append copies of rows ``idx``; returns the new rows' indices."""
        idx = np.asarray(idx, dtype=np.int64)
        start = len(self)
        for k, v in self.cols.items():
            self.cols[k] = np.concatenate([v, v[idx]])
        for name in ("rseq", "version", "person", "key", "protect"):
            v = getattr(self, name)
            setattr(self, name, np.concatenate([v, v[idx]]))
        return np.arange(start, start + len(idx))


def _o(values) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _str(a: np.ndarray) -> np.ndarray:
    return np.array([str(v) for v in a.tolist()], dtype=object)


def _epoch(ts: np.ndarray) -> np.ndarray:
    return ts.astype("M8[s]").astype(np.int64)


# ---------------------------------------------------------------- police ----
def police_population(w: World, persons: np.ndarray, extras: np.ndarray) -> Table:
    """Population register rows for ``persons`` (hidden persons left out) and stale duplicate
    registrations ``extras`` (indices into ``w.PX``)."""
    P, H = w.P, w.H
    persons = np.sort(persons[~P.hidden[persons]])
    px = w.PX
    who = np.concatenate([persons, px.person[extras]])
    house = np.concatenate([P.house[persons], px.house[extras]])
    hh = np.concatenate([P.hh[persons], px.hh[extras]])
    n, k = len(persons), len(extras)
    sex = np.where(P.sex_over_pol[who] > 0, P.sex_over_pol[who], P.sex[who])
    has_house = house >= 0
    hidx = np.clip(house, 0, None)
    xzz = np.where(has_house, H.addr[hidx] if len(H) else None, P.addr_alt[who])
    fwbm = np.where(has_house, H.fwbm[hidx] if len(H) else None, "")
    status = np.concatenate([P.status[persons], np.zeros(k, np.int8)])
    zx = np.concatenate([P.zx[persons], np.full(k, np.datetime64("NaT"), "M8[D]")])
    upd = np.concatenate([P.pol_upd[persons], px.upd[extras]])
    rseq = np.concatenate([persons + 1, EXTRA_SEQ[("police", "population")] + extras]).astype(np.int64)
    cols = {
        "RECORD_ID": record_ids("police", "population", rseq),
        "GMSFHM": P.id[who], "XM": P.name[who], "XBDM": _str(sex),
        "CSRQ": ymd(P.birth[who], ""), "MZDM": P.eth[who], "HJDZ_XZQHDM": P.hk_code[who],
        "HJDZ": P.hk_addr[who], "XZZ": xzz, "SQDM": w.C.code[P.comm[who]] if n + k else _o([]),
        "FWBM": fwbm, "HH": w.HH.hhno[hh],
        "YHZGXDM": np.concatenate([P.rel[persons], px.rel[extras]]),
        "LXDH": np.concatenate([P.phone[persons], px.phone[extras]]),
        "RYZTDM": _str(status), "ZXRQ": ymd(zx, ""), "GXSJ": local_ts(upd),
    }
    # the stale registration sits at its old house's community
    if k:
        cols["SQDM"][n:] = w.C.code[H.comm[px.house[extras]]]
    key = np.concatenate([persons, -1 - extras]).astype(np.int64)
    return Table("police", "population", "csv", POLICE_POPULATION, cols, rseq, _epoch(upd), who.astype(np.int64),
                 key, P.protect[who].copy())


def police_houses(w: World, houses: np.ndarray) -> Table:
    H, P = w.H, w.P
    houses = np.sort(houses)
    counts = w.resident_counts()[houses]
    owner = H.owner[houses]
    owner_id = np.where(owner >= 0, P.id[np.clip(owner, 0, None)], "")
    rseq = (houses + 1).astype(np.int64)
    cols = {"RECORD_ID": record_ids("police", "houses", rseq), "FWBM": H.fwbm[houses], "DZ": H.addr[houses],
            "SQDM": w.C.code[H.comm[houses]], "FZGMSFHM": owner_id, "FWYTDM": H.use[houses].copy(),
            "JZRS": _str(counts), "GXSJ": local_ts(H.upd[houses])}
    return Table("police", "houses", "csv", POLICE_HOUSES, cols, rseq, _epoch(H.upd[houses]), owner.astype(np.int64),
                 houses.astype(np.int64), H.protect[houses].copy())


def police_incidents(w: World, incs: np.ndarray) -> Table:
    I = w.I  # noqa: E741
    incs = np.sort(incs)
    rseq = (incs + 1).astype(np.int64)
    cols = {"RECORD_ID": record_ids("police", "incidents", rseq), "JJBH": I.jjbh[incs], "BJSJ": local_ts(I.bjsj[incs]),
            "AJLBDM": I.cat[incs], "FSDZ": I.addr[incs], "SQDM": w.C.code[I.comm[incs]], "SJRGMSFHM": I.ids[incs],
            "CLZTDM": I.status[incs].copy(), "GXSJ": local_ts(I.upd[incs])}
    return Table("police", "incidents", "csv", POLICE_INCIDENTS, cols, rseq, _epoch(I.upd[incs]),
                 np.full(len(incs), -1, np.int64), incs.astype(np.int64), np.zeros(len(incs), bool))


# ---------------------------------------------------------------- civil affairs ----
def civil_assistance(w: World, cases: np.ndarray) -> Table:
    CV, P = w.CV, w.P
    cases = np.sort(cases)
    p = CV.person[cases]
    name = np.where(CV.name_over[cases] != None, CV.name_over[cases], P.name[p])  # noqa: E711
    sex = np.where(CV.sex_over[cases] > 0, CV.sex_over[cases], P.sex[p])
    birth = np.where(np.isnat(CV.birth_over[cases]), P.birth[p], CV.birth_over[cases])
    cents = CV.cents[cases]
    money = _o([c if c >= 0 else None for c in cents.tolist()])

    def iso_or_none(d):
        s = ymd(d)
        s[s == ""] = None
        return s
    rseq = (cases + 1).astype(np.int64)
    cols = {"record_id": record_ids("civil_affairs", "assistance", rseq), "id_number": P.id[p], "name": name,
            "gender": _o([SEX_LABEL[int(s)] for s in sex]), "birth_date": ymd(birth),
            "assistance_type": CV.atype[cases].copy(), "monthly_amount_yuan": money,
            "start_date": iso_or_none(CV.start[cases]), "end_date": iso_or_none(CV.end[cases]),
            "status": CV.status[cases].copy(), "household_id": CV.hhid[cases],
            "community_code": w.C.code[CV.comm[cases]], "death_registered_date": iso_or_none(CV.death_reg[cases]),
            "updated_at": iso_offset_ts(CV.upd[cases])}
    return Table("civil_affairs", "assistance", "jsonl", CIVIL_ASSISTANCE, cols, rseq, _epoch(CV.upd[cases]),
                 p.astype(np.int64), cases.astype(np.int64), CV.protect[cases] | P.protect[p])


# ---------------------------------------------------------------- social security ----
def ss_insurance(w: World, recs: np.ndarray) -> Table:
    SS, P, E = w.SS, w.P, w.E
    recs = np.sort(recs)
    p = SS.person[recs]
    emp = SS.emp[recs]
    has_emp = emp >= 0
    eidx = np.clip(emp, 0, None)
    uscc = np.where(has_emp, E.uscc[eidx], None)
    over = SS.uscc_over[recs]
    uscc = np.where(has_emp & (over != None), over, uscc)  # noqa: E711
    ename = np.where(has_emp, E.name[eidx], None)
    name = np.where(SS.name_over[recs] != None, SS.name_over[recs], P.name[p])  # noqa: E711
    cents = SS.cents[recs]
    rseq = (recs + 1).astype(np.int64)
    utc = (SS.upd[recs].astype("M8[ms]") - np.timedelta64(8, "h"))
    cols = {"record_id": record_ids("social_security", "insurance", rseq), "sfzh": P.id[p], "xm": name,
            "insurance_type": SS.itype[recs].copy(), "enrolment_status": SS.status[recs].copy(),
            "employer_uscc": uscc, "employer_name": ename,
            "monthly_benefit": np.where(cents >= 0, cents, 0).astype(np.int64),
            "monthly_benefit" + NULL_SUFFIX: cents < 0,
            "last_payment_date": SS.last_pay[recs].copy(), "updated_at": utc}
    return Table("social_security", "insurance", "parquet", SS_INSURANCE, cols, rseq, _epoch(SS.upd[recs]),
                 p.astype(np.int64), recs.astype(np.int64), SS.protect[recs] | P.protect[p])


# ---------------------------------------------------------------- health ----
def health_residents(w: World, persons: np.ndarray, extras: np.ndarray) -> Table:
    P, HX = w.P, w.HX
    persons = np.sort(persons[P.has_health[persons]])
    who = np.concatenate([persons, HX.person[extras]])
    n, k = len(persons), len(extras)
    name = P.name[who].copy()
    name[:n] = np.where(P.h_name[persons] != None, P.h_name[persons], name[:n])  # noqa: E711
    sex = P.sex[who].copy()
    sex[:n] = np.where(P.h_sex[persons] > 0, P.h_sex[persons], sex[:n])
    birth = P.birth[who].copy()
    birth[:n] = np.where(np.isnat(P.h_birth[persons]), birth[:n], P.h_birth[persons])
    comm = np.concatenate([P.h_comm[persons], HX.comm[extras]])
    team = np.concatenate([P.team[persons], HX.team[extras]])
    chronic = np.concatenate([P.chronic[persons], HX.chronic[extras]])
    visit = np.concatenate([P.visit[persons], HX.visit[extras]])
    death = np.concatenate([np.where(P.status[persons] == 1, P.death[persons], np.datetime64("NaT", "D")),
                            np.full(k, np.datetime64("NaT"), "M8[D]")])
    disab = np.concatenate([P.disab[persons], P.disab[HX.person[extras]]])
    upd = np.concatenate([P.h_upd[persons], HX.upd[extras]])
    rseq = np.concatenate([persons + 1, EXTRA_SEQ[("health", "residents")] + extras]).astype(np.int64)

    def none_empty(a):
        a = a.copy()
        a[a == None] = ""  # noqa: E711
        return a
    cols = {"record_id": record_ids("health", "residents", rseq), "id_no": P.id[who], "name": name,
            "sex_code": _str(sex), "birth_date": ymd(birth), "community_code": w.C.code[comm] if n + k else _o([]),
            "chronic_conditions": none_empty(chronic), "disability_grade": none_empty(disab),
            "family_doctor_team": none_empty(team), "last_visit_date": ymd(visit), "death_date": ymd(death),
            "updated_at": local_ts(upd)}
    key = np.concatenate([persons, -1 - extras]).astype(np.int64)
    return Table("health", "residents", "xml", HEALTH_RESIDENTS, cols, rseq, _epoch(upd), who.astype(np.int64), key,
                 P.protect[who].copy())


def tables_for_night(w: World, full: bool) -> dict[tuple[str, str], Table]:
    """Every file's clean records for tonight: everything (full) or what changed (incremental)."""
    d = w.dirty
    if full:
        pop = np.arange(len(w.P))
        px = np.arange(len(w.PX))
        hx = np.arange(len(w.HX))
        houses, incs = np.arange(len(w.H)), np.arange(len(w.I))
        cases, recs = np.arange(len(w.CV)), np.arange(len(w.SS))
        hp = pop
    else:
        arr = lambda k: np.array(sorted(d.get(k, ())), dtype=np.int64)  # noqa: E731
        pop, houses, incs, cases, recs, hp = arr("pop"), arr("house"), arr("incident"), arr("civil"), arr("ss"), \
            arr("health")
        px = hx = np.zeros(0, np.int64)
    return {
        ("police", "population"): police_population(w, pop, px),
        ("police", "houses"): police_houses(w, houses),
        ("police", "incidents"): police_incidents(w, incs),
        ("civil_affairs", "assistance"): civil_assistance(w, cases),
        ("social_security", "insurance"): ss_insurance(w, recs),
        ("health", "residents"): health_residents(w, hp, hx),
    }


__all__ = ["Table", "tables_for_night", "DELIVERIES", "FIELDS", "record_id", "ref"]
