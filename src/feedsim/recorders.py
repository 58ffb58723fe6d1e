"""Each department's records of the simulated district: one recorder per department.

A recorder keeps no state of its own. It builds and evolves its department's records on the
``World`` it is given — employers ``w.E``, civil affairs ``w.CV``, social security ``w.SS``,
police incidents ``w.I``; health's file is a set of columns of the person store ``w.P``
(``has_health``, ``chronic``, ``team``, ``visit``, ``h_*``) — and draws from the generator it is
handed: the world's own while the world is built, the night's in ``World.advance``. The world
decides when each recorder runs, so the order of the draws is the world's.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import reference as ref
from .ids import make_uscc
from .store import DAY, NAT_D, Store, age_on, group_by, times_on

if TYPE_CHECKING:
    from .population import World

PAYDAY = 15


def retire_age(sex: np.ndarray) -> np.ndarray:
    return np.where(sex == 1, 60, 55)


def last_payday(days: np.ndarray) -> np.ndarray:
    """The latest pension payday (the 15th) on or before each date."""
    d = days.astype("M8[D]")
    month = d.astype("M8[M]")
    this = month.astype("M8[D]") + np.timedelta64(PAYDAY - 1, "D")
    prev = (month - np.timedelta64(1, "M")).astype("M8[D]") + np.timedelta64(PAYDAY - 1, "D")
    return np.where(d >= this, this, prev)


def paydays_between(after: np.datetime64, upto: np.datetime64) -> list[np.datetime64]:
    """Paydays in (after, upto]."""
    out = []
    m = np.datetime64(after, "M")
    while True:
        p = m.astype("M8[D]") + np.timedelta64(PAYDAY - 1, "D")
        if p > upto:
            return out
        if p > after:
            out.append(p)
        m = m + np.timedelta64(1, "M")


class Recorder:
    """A department's recorder over the world's state."""

    def __init__(self, world: World) -> None:
        self.w = world


# ==================================================================== employers ====
class Employers(Recorder):
    """The organisations people work for (``w.E``: USCC, name, share of the workforce)."""

    def build(self) -> None:
        w = self.w
        rng = w.rng
        n = int(np.clip(len(w.P) // 120, 150, 800))
        kinds = [("9", "1", 0.70), ("9", "2", 0.08), ("9", "3", 0.03), ("1", "2", 0.08), ("1", "1", 0.03),
                 ("5", "2", 0.03), ("N", "2", 0.03), ("Y", "1", 0.02)]
        kw = np.array([k[2] for k in kinds])
        kind = rng.choice(len(kinds), n, p=kw / kw.sum())
        regions = np.array(["150105", "150105", "150105", "150102", "150103", "150104", "150100", "150000"],
                           dtype=object)
        uscc, names = [], []
        comps = w.pools.companies
        stems = w.pools.company_stems
        for i in range(n):
            a, c, _ = kinds[kind[i]]
            region = str(rng.choice(regions))
            letters = (a == "9" and rng.random() < 0.6) or a in "NY"
            uscc.append(make_uscc(a, c, region, rng, letters))
            s = str(stems[i % len(stems)])
            if a == "9" and c == "1":
                names.append(("内蒙古" if rng.random() < 0.5 else "呼和浩特市") + str(comps[i % len(comps)]))
            elif a == "9" and c == "2":
                names.append(f"赛罕区{s}{rng.choice(['便利店', '餐馆', '汽车修理部', '理发店', '五金店'])}")
            elif a == "9":
                names.append(f"呼和浩特市赛罕区{s}农民专业合作社")
            elif a == "1" and c == "2":
                names.append(f"呼和浩特市赛罕区第{i % 40 + 1}{rng.choice(['小学', '中学', '幼儿园'])}"
                             if rng.random() < 0.6 else f"赛罕区{s}社区卫生服务中心")
            elif a == "1":
                bureau = rng.choice(["民政局", "教育局", "卫生健康委员会", "城市管理局", "住房和城乡建设局"])
                names.append(f"呼和浩特市赛罕区{bureau}")
            elif a == "5":
                names.append(f"呼和浩特市{s}培训学校")
            elif a == "N":
                names.append(f"赛罕区{s}村股份经济合作社")
            else:
                names.append(f"呼和浩特市{s}商会")
        weight = 1.0 / np.arange(1, n + 1) ** 1.05
        w.E = Store(uscc=np.array(uscc, dtype=object), name=np.array(names, dtype=object),
                    weight=rng.permutation(weight / weight.sum()))


# ==================================================================== health 卫健 ====
class Health(Recorder):
    """Health files: kept as the ``has_health``/``chronic``/``disab``/``team``/``visit``/``h_*``
    columns of the person store."""

    def register(self, persons: np.ndarray, coverage: float = 0.93, rng=None, day=None) -> None:
        """Open a health file for about ``coverage`` of ``persons``."""
        w = self.w
        rng = w.rng if rng is None else rng
        day = w.today if day is None else day
        P = w.P
        has = rng.random(len(persons)) < coverage
        p = persons[has]
        P.has_health[p] = True
        age = age_on(P.birth[p], day)
        band = np.where(age < 40, 0, np.where(age < 60, 1, 2))
        chronic = np.full(len(p), "", dtype=object)
        for code, prev in ref.CHRONIC:
            m = rng.random(len(p)) < np.array(prev)[band]
            chronic[m] = chronic[m] + (";" + code)
        chronic = np.array([c[1:] if c else None for c in chronic], dtype=object)
        P.chronic[p] = chronic
        dis_p = np.array([0.012, 0.028, 0.06])[band]
        dis = rng.random(len(p)) < dis_p
        grade = rng.choice(np.array(["1", "2", "3", "4"], dtype=object), len(p), p=[0.15, 0.25, 0.3, 0.3])
        P.disab[p] = np.where(dis, grade, None)
        signed = rng.random(len(p)) < np.where((age >= 65) | (chronic != None), 0.9, 0.55)  # noqa: E711
        team = w.teams[np.clip(P.comm[p], 0, None) * 2 + rng.integers(0, 2, len(p))]
        P.team[p] = np.where(signed, team, None)
        visited = rng.random(len(p)) < 0.75
        visit = day - rng.integers(1, 540, len(p)).astype("m8[D]")
        visit = np.maximum(visit, P.birth[p])
        P.visit[p] = np.where(visited, visit, NAT_D)
        P.h_comm[p] = P.comm[p]
        created = day.astype("M8[s]") - rng.integers(2 * 86400, 2500 * 86400, len(p)).astype("m8[s]")
        last = np.where(visited, visit.astype("M8[s]") + rng.integers(8 * 3600, 18 * 3600, len(p)).astype("m8[s]"),
                        created)
        dead = P.status[p] == 1
        last = np.where(dead, P.death[p].astype("M8[s]") + np.timedelta64(2 * 86400 + 36000, "s"), last)
        P.h_upd[p] = np.minimum(np.maximum(last, created), np.datetime64(day, "D").astype("M8[s]")
                                + np.timedelta64(20 * 3600, "s"))

    def register_tonight(self, persons: np.ndarray, coverage: float, day, rng) -> None:
        """Newborns and newcomers: files opened tonight."""
        w = self.w
        P = w.P
        self.register(persons, coverage=coverage, rng=rng, day=day)
        hp = persons[P.has_health[persons]]
        P.h_upd[hp] = times_on(day, rng, len(hp))
        w.dirty.setdefault("health", set()).update(hp.tolist())

    def night(self, day, rng) -> None:
        """Visits, and now and then a new chronic condition for someone over 60."""
        w = self.w
        P = w.P
        hh_ = np.nonzero(P.has_health & (P.status == 0) & ~P.protect)[0]
        k = min(len(hh_), int(rng.poisson(len(hh_) * w.change_rate * 0.9)))
        if k:
            who = rng.choice(hh_, k, replace=False)
            P.visit[who] = day - rng.integers(0, 2, k).astype("m8[D]")
            old = age_on(P.birth[who], day) >= 60
            nc = who[old & (rng.random(k) < 0.05)]
            for p in nc:
                code = ref.CHRONIC[int(rng.integers(0, 6))][0]
                cur = P.chronic[p]
                if not cur or code not in cur.split(";"):
                    P.chronic[p] = code if not cur else f"{cur};{code}"
            w.touch("health", who, day, rng)


# ==================================================================== civil affairs 民政 ====
class CivilAffairs(Recorder):
    """Assistance cases (DIBAO, TEKUN, DISABILITY, ELDERLY) and death registrations (``w.CV``)."""

    def build(self) -> None:
        w = self.w
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        w.CV = Store(person=np.empty(0, np.int64), atype=o(), cents=np.empty(0, np.int64),
                     start=np.empty(0, "M8[D]"), end=np.empty(0, "M8[D]"), status=o(), hhid=o(),
                     comm=np.empty(0, np.int64),
                     death_reg=np.empty(0, "M8[D]"), upd=np.empty(0, "M8[s]"), name_over=o(),
                     birth_over=np.empty(0, "M8[D]"), sex_over=np.empty(0, np.int8),
                     keep_active=np.empty(0, bool), protect=np.empty(0, bool))
        CV = w.CV
        P, rng, day = w.P, w.rng, w.today
        age = age_on(P.birth, day)
        alive = P.status == 0
        # DIBAO: ~1.8% of households, applicant = head
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & alive)[0]
        dib = heads[rng.random(len(heads)) < 0.018]
        sizes = np.bincount(P.hh, minlength=len(w.HH))[P.hh[dib]]
        self.new_cases(dib, "DIBAO", (835 * 100 * sizes * rng.uniform(0.35, 1.0, len(dib))).astype(np.int64),
                       rng, day, past=True)
        # TEKUN: old people living alone
        alone = np.bincount(P.hh, minlength=len(w.HH))[P.hh] == 1
        tk = np.nonzero(alive & alone & (age >= 60) & (rng.random(len(P)) < 0.02))[0]
        self.new_cases(tk, "TEKUN", rng.integers(1100, 1500, len(tk)) * 100, rng, day, past=True)
        # DISABILITY: grade 1-2 in the health record
        dis = np.nonzero(alive & np.isin(P.disab, ["1", "2"]) & (rng.random(len(P)) < 0.6))[0]
        self.new_cases(dis, "DISABILITY", rng.integers(80, 161, len(dis)) * 100, rng, day, past=True)
        # ELDERLY: 80+
        old = np.nonzero(alive & (age >= 80) & (rng.random(len(P)) < 0.9))[0]
        amount = np.where(age[old] >= 100, 600, np.where(age[old] >= 90, 300, 100)) * 100
        self.new_cases(old, "ELDERLY", amount, rng, day, past=True)
        # some cases ended or suspended in the past
        k = len(CV)
        r = rng.random(k)
        ended = r < 0.05
        CV.status[ended] = "TERMINATED"
        CV.end[ended] = np.maximum(CV.start[ended] + DAY * 30,
                                   day - rng.integers(5, 300, ended.sum()).astype("m8[D]"))
        CV.end[ended] = np.minimum(CV.end[ended], day - DAY)
        susp = (r >= 0.05) & (r < 0.08)
        CV.status[susp] = "SUSPENDED"
        # deceased persons: death registration, and their old-age allowance ended
        dead = np.nonzero(P.status == 1)[0]
        dold = dead[(age[dead] >= 80) & (rng.random(len(dead)) < 0.9)]
        cases = self.new_cases(dold, "ELDERLY", np.full(len(dold), 10000), rng, day, past=True)
        CV.status[cases] = "TERMINATED"
        CV.end[cases] = np.minimum(P.death[dold] + rng.integers(1, 10, len(dold)).astype("m8[D]"), day - DAY)
        CV.start[cases] = np.minimum(CV.start[cases], P.death[dold] - DAY * 30)
        CV.upd[cases] = CV.end[cases].astype("M8[s]") + np.timedelta64(10 * 3600, "s")
        reg = dead[rng.random(len(dead)) < 0.85]
        self.death_registrations(reg, rng, day)

    def new_cases(self, persons: np.ndarray, atype: str, cents: np.ndarray, rng, day, past: bool = False) -> np.ndarray:
        n = len(persons)
        if n == 0:
            return np.zeros(0, np.int64)
        if past:
            start = day - rng.integers(30, 2500, n).astype("m8[D]")
            upd = start.astype("M8[s]") + rng.integers(9 * 3600, 17 * 3600, n).astype("m8[s]")
            upd = np.maximum(upd, day.astype("M8[s]") - rng.integers(3600, 400 * 86400, n).astype("m8[s]"))
        else:
            start = np.full(n, day, dtype="M8[D]")
            upd = times_on(day, rng, n)
        P = self.w.P
        return self.w.CV.append(person=persons, atype=np.full(n, atype, dtype=object), cents=cents.astype(np.int64),
                                start=start, status=np.full(n, "ACTIVE", dtype=object),
                                hhid=np.array([f"MZHH{h:09d}" for h in P.hh[persons]], dtype=object),
                                comm=P.comm[persons], upd=upd, sex_over=np.zeros(n, np.int8),
                                keep_active=np.zeros(n, bool),
                                protect=np.zeros(n, bool))

    def death_registrations(self, persons: np.ndarray, rng, day, nightly: bool = False) -> np.ndarray:
        n = len(persons)
        if n == 0:
            return np.zeros(0, np.int64)
        w = self.w
        P = w.P
        reg = np.minimum(P.death[persons] + rng.integers(0, 4, n).astype("m8[D]"), day)
        if nightly:  # registered since the last delivery
            reg = np.maximum(reg, np.minimum(w.prev_day + DAY, day))
            upd = times_on(day, rng, n)
        else:
            upd = np.minimum(reg.astype("M8[s]") + rng.integers(9 * 3600, 18 * 3600, n).astype("m8[s]"),
                             day.astype("M8[s]") + np.timedelta64(22 * 3600, "s"))
        return w.CV.append(person=persons, atype=np.full(n, None, dtype=object), cents=np.full(n, -1),
                           start=reg, end=reg, status=np.full(n, "TERMINATED", dtype=object),
                           hhid=np.array([f"MZHH{h:09d}" for h in P.hh[persons]], dtype=object),
                           comm=P.comm[persons], death_reg=reg, upd=upd, sex_over=np.zeros(n, np.int8),
                           keep_active=np.zeros(n, bool), protect=np.zeros(n, bool))

    def register_deaths_tonight(self, dying: np.ndarray, day, rng) -> None:
        """About 85% of tonight's deaths are registered with civil affairs by the delivery."""
        new = self.death_registrations(dying[rng.random(len(dying)) < 0.85], rng, day, nightly=True)
        self.w.dirty.setdefault("civil", set()).update(new.tolist())

    def open_cases(self, cases: np.ndarray) -> list:
        """Those of ``cases`` (one person's) that are assistance cases not yet terminated."""
        CV = self.w.CV
        return [k for k in cases if CV.atype[k] is not None and CV.status[k] != "TERMINATED"]

    def end_cases(self, cases: list, day, rng) -> None:
        """A death ends the person's open cases, except one planted to stay ACTIVE."""
        CV = self.w.CV
        for k in cases:
            if not CV.keep_active[k]:
                CV.status[k] = "TERMINATED"
                CV.end[k] = day
                self.w.touch("civil", np.array([k]), day, rng)

    def night(self, prev, day, rng) -> None:
        """Cases ended, suspended or re-assessed; new DIBAO cases; the old-age allowance at 80."""
        w = self.w
        P, CV = w.P, w.CV
        active_cases = np.nonzero((CV.status == "ACTIVE") & ~CV.protect & (CV.atype != None))[0]  # noqa: E711
        k = min(len(active_cases), int(rng.poisson(max(len(active_cases) * w.change_rate, 0.2))))
        if k:
            ch = rng.choice(active_cases, k, replace=False)
            r = rng.random(k)
            term = ch[r < 0.4]
            CV.status[term] = "TERMINATED"
            CV.end[term] = day
            susp = ch[(r >= 0.4) & (r < 0.55)]
            CV.status[susp] = "SUSPENDED"
            amt = ch[r >= 0.55]
            CV.cents[amt] = (CV.cents[amt] * rng.uniform(0.9, 1.15, len(amt))).astype(np.int64)
            w.touch("civil", ch, day, rng)
        # new DIBAO cases
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & (P.status == 0) & ~P.protect)[0]
        k = min(len(heads), int(rng.poisson(max(len(active_cases) * w.change_rate * 0.2, 0.2))))
        if k:
            who = rng.choice(heads, k, replace=False)
            sizes = np.bincount(P.hh, minlength=len(w.HH))[P.hh[who]]
            self.new_cases(who, "DIBAO", (835 * 100 * sizes * rng.uniform(0.35, 1.0, k)).astype(np.int64), rng, day)
            w.dirty.setdefault("civil", set()).update(range(len(w.CV) - k, len(w.CV)))
        # old-age allowance at 80
        a_now, a_prev = age_on(P.birth, day), age_on(P.birth, prev)
        turn = np.nonzero((P.status == 0) & (a_now >= 80) & (a_prev < 80))[0]
        if len(turn):
            n0 = len(w.CV)
            self.new_cases(turn, "ELDERLY", np.full(len(turn), 10000), rng, day)
            w.dirty.setdefault("civil", set()).update(range(n0, len(w.CV)))


# ==================================================================== social security 社保 ====
class SocialSecurity(Recorder):
    """Insurance enrolments — pension 110/120, unemployment 210, medical 310/390, injury 410 —
    their employer, status and monthly benefit (``w.SS``)."""

    def build(self) -> None:
        """The store, and everyone enrolled as of the first delivery."""
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        self.w.SS = Store(person=np.empty(0, np.int64), itype=o(), status=o(), emp=np.empty(0, np.int64),
                          cents=np.empty(0, np.int64), last_pay=np.empty(0, "M8[D]"),
                          upd=np.empty(0, "M8[s]"), name_over=o(), uscc_over=o(),
                          pay_after_death=np.empty(0, bool), protect=np.empty(0, bool))
        self.enrol(np.arange(len(self.w.P)))

    def enrol(self, persons: np.ndarray, rng=None, day=None) -> np.ndarray:
        """Employment and the enrolments that go with it (by age, sex, retirement); returns the new records."""
        w = self.w
        rng = w.rng if rng is None else rng
        day = w.today if day is None else day
        P = w.P
        p = persons
        age = age_on(P.birth[p], day)
        ra = retire_age(P.sex[p])
        working = (age >= 18) & (age < ra)
        retired = age >= ra
        emp_p = np.where(age < 23, 0.25, np.where(P.sex[p] == 1, 0.74, 0.64))
        employed = working & (rng.random(len(p)) < emp_p)
        P.emp[p[employed]] = rng.choice(len(w.E), employed.sum(), p=w.E.weight)
        rows: list[tuple[np.ndarray, str, np.ndarray, np.ndarray]] = []  # persons, type, status, cents

        def add(mask, itype, status="1", cents=None):
            idx = p[mask]
            cts = np.full(len(idx), -1, np.int64) if cents is None else cents
            rows.append((idx, itype, np.full(len(idx), status, dtype=object), cts))

        add(employed, "110")
        add(employed, "310")
        add(employed & (rng.random(len(p)) < 0.85), "210")
        add(employed & (rng.random(len(p)) < 0.8), "410")
        unemployed = working & ~employed & (age >= 23)
        was_emp = unemployed & (rng.random(len(p)) < 0.5)
        add(was_emp, "110", status="2")
        ub = unemployed & (rng.random(len(p)) < 0.05)
        add(ub, "210", cents=rng.integers(1650, 1950, ub.sum()) * 100)
        add(unemployed & ~was_emp & (rng.random(len(p)) < 0.45), "120")
        emp_pension = retired & (rng.random(len(p)) < 0.68)
        add(emp_pension, "110", cents=rng.integers(2600, 6800, emp_pension.sum()) * 100
            + rng.integers(0, 100, emp_pension.sum()))
        add(emp_pension, "310")
        res_pension = retired & ~emp_pension & (rng.random(len(p)) < 0.9)
        add(res_pension, "120", cents=rng.integers(180, 520, res_pension.sum()) * 100
            + rng.integers(0, 100, res_pension.sum()))
        add((retired & ~emp_pension) | (~working & ~retired) | (unemployed & ~was_emp),
            "390")
        idx = np.concatenate([r[0] for r in rows])
        itype = np.concatenate([np.full(len(r[0]), r[1], dtype=object) for r in rows])
        status = np.concatenate([r[2] for r in rows])
        cents = np.concatenate([r[3] for r in rows])
        coverage = (itype != "390") | (rng.random(len(idx)) < 0.93)
        idx, itype, status, cents = idx[coverage], itype[coverage], status[coverage], cents[coverage]
        order = np.lexsort((itype, idx))
        idx, itype, status, cents = idx[order], itype[order], status[order], cents[order]
        n = len(idx)
        emp = np.where(np.isin(itype, ["110", "310", "210", "410"]) & (status == "1") & (cents < 0),
                       P.emp[idx], -1)
        last_pay = np.where(cents >= 0, last_payday(np.full(n, day, dtype="M8[D]")), NAT_D)
        upd = np.datetime64(day, "D").astype("M8[s]") - rng.integers(3600, 1800 * 86400, n).astype("m8[s]")
        upd = np.where(cents >= 0, np.maximum(upd, last_pay.astype("M8[s]") + np.timedelta64(7 * 3600, "s")), upd)
        upd = np.minimum(upd, np.datetime64(day, "D").astype("M8[s]") + np.timedelta64(22 * 3600, "s"))
        new = w.SS.append(person=idx, itype=itype, status=status, emp=emp, cents=cents, last_pay=last_pay,
                          upd=upd, pay_after_death=np.zeros(n, bool), protect=np.zeros(n, bool))
        # the dead: everything terminated, no benefit after death
        dead = new[P.status[idx] == 1]
        if len(dead):
            self.terminate(dead, rng, day, initial=True)
        return new

    def enrol_tonight(self, persons: np.ndarray, day, rng) -> np.ndarray:
        """Newborns and newcomers: enrolled tonight; returns the new records."""
        SS = self.w.SS
        recs = self.enrol(persons, rng=rng, day=day)
        SS.last_pay[recs] = np.where(SS.cents[recs] >= 0, SS.last_pay[recs], NAT_D)
        self.w.touch("ss", recs, day, rng)
        return recs

    def terminate(self, recs: np.ndarray, rng, day, initial: bool = False) -> None:
        """Death: enrolments terminated, benefit stops, payments after death recovered."""
        w = self.w
        SS, P = w.SS, w.P
        death = P.death[SS.person[recs]]
        SS.status[recs] = "3"
        paid = SS.cents[recs] >= 0
        SS.last_pay[recs] = np.where(paid, np.minimum(SS.last_pay[recs], last_payday(death)), SS.last_pay[recs])
        SS.cents[recs] = -1
        SS.emp[recs] = -1
        if initial:
            SS.upd[recs] = death.astype("M8[s]") + rng.integers(86400, 20 * 86400, len(recs)).astype("m8[s]")
            SS.upd[recs] = np.minimum(SS.upd[recs], np.datetime64(day, "D").astype("M8[s]"))
        else:
            w.touch("ss", recs, day, rng)

    def paid_pensions(self, recs: np.ndarray) -> list:
        """Those of ``recs`` (one person's) that are pensions being paid."""
        SS = self.w.SS
        return [k for k in recs if SS.itype[k] in ("110", "120") and SS.cents[k] >= 0 and SS.status[k] == "1"]

    def terminate_after_death(self, recs: np.ndarray, day, rng) -> None:
        """A death tonight ends the person's enrolments ``recs``, except a pension planted to be paid on."""
        SS = self.w.SS
        recs = np.array([k for k in recs if not SS.pay_after_death[k] and SS.status[k] != "3"], dtype=np.int64)
        if len(recs):
            self.terminate(recs, rng, day)

    def night(self, prev, day, rng) -> None:
        """Retirements, job changes, contributions suspended or resumed, and benefits paid on payday."""
        w = self.w
        P, SS = w.P, w.SS
        alive = P.status != 1
        # retirements: birthdays crossing the retirement age
        age_now, age_prev = age_on(P.birth, day), age_on(P.birth, prev)
        ra = retire_age(P.sex)
        ret = np.nonzero(alive & (age_now >= ra) & (age_prev < ra) & ~P.protect)[0]
        by_ss = group_by(SS.person)
        for p in ret:
            recs = by_ss(p)
            for k in recs:
                if SS.protect[k]:
                    continue
                if SS.itype[k] == "110" and SS.status[k] in ("1", "2"):
                    SS.status[k] = "1"
                    SS.cents[k] = int(rng.integers(2600, 6800)) * 100
                    SS.emp[k] = -1
                elif SS.itype[k] in ("210", "410"):
                    SS.status[k] = "3"
                    SS.cents[k] = -1
                    SS.emp[k] = -1
                elif SS.itype[k] == "310":
                    SS.emp[k] = -1
                else:
                    continue
                w.touch("ss", np.array([k]), day, rng)
            P.emp[p] = -1
        # job changes
        emps = np.nonzero(alive & (P.emp >= 0) & ~P.protect)[0]
        k = min(len(emps), int(rng.poisson(len(emps) * w.change_rate * 0.5)))
        if k:
            who = rng.choice(emps, k, replace=False)
            P.emp[who] = rng.choice(len(w.E), k, p=w.E.weight)
            for p in who:
                recs = [r for r in by_ss(p) if SS.emp[r] >= 0 and not SS.protect[r]]
                SS.emp[recs] = P.emp[p]
                w.touch("ss", np.array(recs, dtype=np.int64), day, rng)
        # contributions suspended / resumed (arrears, leave, re-employment)
        cand = np.nonzero(np.isin(SS.status, ["1", "2"]) & (SS.cents < 0) & ~SS.protect
                          & (P.status[SS.person] == 0) & ~P.protect[SS.person])[0]
        k = min(len(cand), int(rng.poisson(len(cand) * w.change_rate * 0.3)))
        if k:
            flip = rng.choice(cand, k, replace=False)
            SS.status[flip] = np.where(SS.status[flip] == "1", "2", "1").astype(object)
            w.touch("ss", flip, day, rng)
        # benefit payments on payday
        for pay in paydays_between(prev, day):
            alive_or_planted = (P.status[SS.person] != 1) | SS.pay_after_death
            paid = np.nonzero((SS.cents >= 0) & (SS.status == "1") & alive_or_planted)[0]
            SS.last_pay[paid] = pay
            w.touch("ss", paid, day, rng)


# ==================================================================== police incidents ====
class Incidents(Recorder):
    """Police incident reports (``w.I``), each naming residents of one community. The police
    population and house registers are the world's own state (see ``population``)."""

    def build(self) -> None:
        """The last 60 days' incidents, the older ones mostly closed."""
        w = self.w
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        w.I = Store(jjbh=o(), bjsj=np.empty(0, "M8[s]"), cat=o(), addr=o(), comm=np.empty(0, np.int64),
                    ids=o(), status=o(), upd=np.empty(0, "M8[s]"))
        I = w.I  # noqa: E741
        rng, day = w.rng, w.today
        active = int(((w.P.status == 0) & ~w.P.hidden).sum())
        back = np.arange(60, -1, -1)
        counts = rng.poisson(active * 0.002, len(back))
        days = np.repeat(day - back.astype("m8[D]"), counts)
        new = self.report(days, rng)
        age_days = np.repeat(back, counts)
        closed = rng.random(len(new)) < np.clip(0.3 + age_days * 0.1, 0, 0.97)
        c = new[closed]
        I.status[c] = rng.choice(np.array(["2", "3"], dtype=object), len(c), p=[0.4, 0.6])
        I.upd[c] = np.minimum(I.bjsj[c] + rng.integers(3600, 6 * 86400, len(c)).astype("m8[s]"),
                              day.astype("M8[s]") + np.timedelta64(22 * 3600, "s"))

    def report(self, days: np.ndarray, rng) -> np.ndarray:
        """Incidents reported on the given days, each linked to residents of one community."""
        k = len(days)
        if k == 0:
            return np.zeros(0, np.int64)
        w = self.w
        P = w.P
        act = np.nonzero((P.status == 0) & ~P.hidden & ~P.protect & (P.house >= 0))[0]
        who = act[rng.integers(0, len(act), k)]
        comm = P.comm[who]
        cat = rng.choice(np.array(ref.INCIDENT_CATEGORIES, dtype=object), k, p=ref.INCIDENT_WEIGHTS)
        # others involved: residents of the same community
        order = np.argsort(P.comm[act], kind="stable")
        sc = P.comm[act][order]
        lo, hi = np.searchsorted(sc, comm), np.searchsorted(sc, comm, side="right")
        n_extra = np.where(np.isin(cat, ["01", "06", "05"]), rng.choice([0, 1, 1, 2], k), 0)
        picks = act[order[lo[:, None] + np.floor(rng.random((k, 2)) * (hi - lo)[:, None]).astype(np.int64)]]
        nobody = np.isin(cat, ["03", "04"]) & (rng.random(k) < 0.7)
        pid = P.id
        ids = []
        for reporter, e, pk, nb in zip(who.tolist(), n_extra.tolist(), picks.tolist(), nobody.tolist()):
            if nb:
                ids.append("")
                continue
            group = [pid[reporter]] + [pid[o] for o in pk[:e] if o != reporter]
            ids.append(";".join(dict.fromkeys(group)))
        home = w.H.addr[P.house[who]]
        addr = np.where(np.isin(cat, ["01", "06", "03"]), home,
                        np.array([a.split("号")[0] + "号" for a in home], dtype=object))
        base = np.asarray(days).astype("M8[D]").astype("M8[s]")
        bjsj = base + rng.integers(0, 86400, k).astype("m8[s]")
        seq0 = len(w.I)
        d8 = [str(d).replace("-", "") for d in np.asarray(days).astype("M8[D]")]
        jjbh = np.array([f"J{ref.DISTRICT}{d}{seq0 + i + 1:07d}" for i, d in enumerate(d8)], dtype=object)
        upd = np.minimum(bjsj + rng.integers(60, 3600, k).astype("m8[s]"), base + np.timedelta64(86399, "s"))
        return w.I.append(jjbh=jjbh, bjsj=bjsj, cat=cat, addr=addr, comm=comm,
                          ids=np.array(ids, dtype=object), status=np.full(k, "1", dtype=object), upd=upd)

    def night(self, day, rng) -> None:
        """About a third of the open incidents closed; tonight's new ones."""
        w = self.w
        I = w.I  # noqa: E741
        open_ = np.nonzero(I.status == "1")[0]
        close = open_[rng.random(len(open_)) < 0.35]
        I.status[close] = rng.choice(np.array(["2", "3"], dtype=object), len(close), p=[0.4, 0.6])
        w.touch("incident", close, day, rng)
        active = int(((w.P.status == 0) & ~w.P.hidden).sum())
        new = self.report(np.full(int(rng.poisson(active * 0.002)), day, dtype="M8[D]"), rng)
        w.dirty.setdefault("incident", set()).update(new.tolist())
