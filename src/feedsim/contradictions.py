"""The contradiction planter: cross-department contradictions and duplicate persons, with their truth.

A department's record is made to disagree with the police register (or with the world's true
state) in a way the product's cross-verification must find: a name, birth date or sex another
department has wrong, an identity number encoding another birth date, a person the police do not
know, the same person under two record ids, a vacant house with residents, a pension paid or an
assistance case kept open after the death, an employer code failing its check character.

Each planted item is kept as a ``Contra`` in ``World.contras`` (``truth.persistent_truth`` turns
them into ground-truth rows), and the persons and records it involves are marked ``protect`` so
that no later change or format defect hides or undoes it. The planter keeps no state of its own
and draws from the generator it is handed, like the recorders (``recorders``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import reference as ref
from .ids import make_id_numbers, make_mobiles, uscc_with_bad_check
from .recorders import last_payday
from .store import DAY, NAT_D, Store, age_on, group_by

if TYPE_CHECKING:
    from .population import World


@dataclass
class Contra:
    """A planted cross-department contradiction: which record carries it, and about whom."""
    cls: str
    source: str
    entity: str
    key: int            # record key in that source's store (person index, case, enrolment, house)
    field: str
    person: int         # person index (-1 for house-only items)
    detail: str
    extra: dict = field(default_factory=dict)


class ContradictionPlanter:
    """Plants contradictions into the world's department records (``plant`` once the records are
    built; ``person_contras``, ``uscc`` and ``benefit_at_death`` as people arrive and die)."""

    def __init__(self, world: World) -> None:
        self.w = world

    def plant(self) -> None:
        """Persistent cross-department contradictions and duplicate persons (ground truth kept)."""
        w = self.w
        P, rng, r, day = w.P, w.rng, w.rates, w.today
        n = len(P)
        age = age_on(P.birth, day)
        free = lambda: ~P.protect  # noqa: E731
        # absent from police: a non-head member known to health
        m = free() & (P.status == 0) & (P.rel != ref.RELATION_HEAD) & P.has_health
        hid = np.nonzero(m & (rng.random(n) < r.contra_absent_from_police))[0]
        P.hidden[hid] = True
        P.protect[hid] = True
        for p in hid:
            w.contras.append(Contra("contra_absent_from_police", "health", "residents", int(p), "id_no", int(p),
                                    "known to health (and others) but not in the police population register"))
        # the same person under two record ids (police: stale registration; health: second file)
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        w.PX = Store(person=np.empty(0, np.int64), house=np.empty(0, np.int64), hh=np.empty(0, np.int64),
                     rel=o(), phone=o(), upd=np.empty(0, "M8[s]"))
        w.HX = Store(person=np.empty(0, np.int64), comm=np.empty(0, np.int64), team=o(), chronic=o(),
                     visit=np.empty(0, "M8[D]"), upd=np.empty(0, "M8[s]"))
        m = free() & (P.status == 0) & (P.rel != ref.RELATION_HEAD) & (P.house >= 0) & (age >= 16)
        d2 = np.nonzero(m & (rng.random(n) < r.dup_person_two_ids))[0]
        P.protect[d2] = True
        w.PX.append(person=d2, house=P.house[d2], hh=P.hh[d2], rel=P.rel[d2], phone=make_mobiles(len(d2), rng),
                    upd=P.pol_upd[d2] - rng.integers(400, 3000, len(d2)).astype("m8[D]"))
        m = free() & P.has_health
        d2h = np.nonzero(m & (rng.random(n) < r.dup_person_two_ids))[0]
        P.protect[d2h] = True
        w.HX.append(person=d2h, comm=rng.integers(0, len(w.C), len(d2h)), team=P.team[d2h],
                    chronic=P.chronic[d2h], visit=np.full(len(d2h), NAT_D),
                    upd=P.h_upd[d2h] - rng.integers(200, 2000, len(d2h)).astype("m8[D]"))
        # name / birth-date / id-vs-birth-or-sex contradictions
        self.person_contras(np.arange(n), rng, day)
        # deceased but still paid
        self.benefit_after_death(np.nonzero(P.status == 1)[0], rng)
        # vacant house with registered residents
        counts = w.resident_counts()
        hs = np.nonzero((counts > 0) & np.isin(w.H.use, ["1", "2"]) & ~w.H.protect)[0]
        vac = hs[rng.random(len(hs)) < r.contra_vacant_house_residents]
        w.H.use[vac] = "4"
        w.H.protect[vac] = True
        # its residents' records stay free of format defects (so the contradiction stays visible)
        P.protect[np.isin(P.house, vac) & (P.status == 0)] = True
        for h in vac:
            w.contras.append(Contra("contra_vacant_house_residents", "police", "houses", int(h), "FWYTDM", -1,
                                    "house declared vacant (FWYTDM=4) while active residents are registered at it"))
        # employer code failing its check character
        self.uscc(np.arange(len(w.SS)), rng)

    # ---------------------------------------------------------------- person contradictions ----
    def person_contras(self, persons: np.ndarray, rng, day) -> None:
        """Among ``persons`` not yet involved in a planted item: a name or birth date another
        department has wrong, or an identity number disagreeing with the birth date or sex."""
        w = self.w
        P, r = w.P, w.rates
        cand = persons[~P.protect[persons] & ~P.hidden[persons]]
        u = rng.random(len(cand))
        a = r.contra_name_mismatch
        b = a + r.contra_birthdate_mismatch
        c = b + r.contra_id_birth_sex
        by_person_cv = group_by(w.CV.person)
        by_person_ss = group_by(w.SS.person)
        self._name_mismatch(cand[u < a], rng, by_person_cv, by_person_ss)
        self._birthdate_mismatch(cand[(u >= a) & (u < b)], rng, day, by_person_cv)
        self._id_birth_sex(cand[(u >= b) & (u < c)], rng, day, by_person_cv)

    def _name_mismatch(self, persons: np.ndarray, rng, by_person_cv, by_person_ss) -> None:
        w = self.w
        P = w.P
        for p in persons:
            opts = [s for s in ("health", "civil_affairs", "social_security")
                    if (s == "health" and P.has_health[p]) or (s == "civil_affairs" and len(by_person_cv(p)))
                    or (s == "social_security" and len(by_person_ss(p)))]
            if not opts:
                continue
            src = opts[int(rng.integers(len(opts)))]
            other = self.other_name(P.name[p], P.sex[p], rng)
            P.protect[p] = True
            if src == "health":
                P.h_name[p] = other
                w.contras.append(Contra("contra_name_mismatch", "health", "residents", int(p), "name", int(p),
                                        f"name differs from the police register ({other})"))
            elif src == "civil_affairs":
                k = int(by_person_cv(p)[0])
                w.CV.name_over[k] = other
                w.CV.protect[k] = True
                w.contras.append(Contra("contra_name_mismatch", "civil_affairs", "assistance", k, "name", int(p),
                                        f"name differs from the police register ({other})"))
            else:
                k = int(by_person_ss(p)[0])
                w.SS.name_over[k] = other
                w.SS.protect[k] = True
                w.contras.append(Contra("contra_name_mismatch", "social_security", "insurance", k, "xm", int(p),
                                        f"name differs from the police register ({other})"))

    def _birthdate_mismatch(self, persons: np.ndarray, rng, day, by_person_cv) -> None:
        w = self.w
        P = w.P
        for p in persons:
            opts = [s for s in ("health", "civil_affairs")
                    if (s == "health" and P.has_health[p]) or (s == "civil_affairs" and len(by_person_cv(p)))]
            if not opts:
                continue
            src = opts[int(rng.integers(len(opts)))]
            shift = int(rng.choice([-1, 1])) * int(rng.integers(1, 400))
            other = min(P.birth[p] + DAY * shift, day - DAY)
            if other == P.birth[p]:
                other = P.birth[p] - DAY
            P.protect[p] = True
            if src == "health":
                P.h_birth[p] = other
                w.contras.append(Contra("contra_birthdate_mismatch", "health", "residents", int(p), "birth_date",
                                        int(p), f"birth date {other} differs from the police register"))
            else:
                k = int(by_person_cv(p)[0])
                w.CV.birth_over[k] = other
                w.CV.protect[k] = True
                w.contras.append(Contra("contra_birthdate_mismatch", "civil_affairs", "assistance", k,
                                        "birth_date", int(p),
                                        f"birth date {other} differs from the police register"))

    def _id_birth_sex(self, persons: np.ndarray, rng, day, by_person_cv) -> None:
        w = self.w
        P = w.P
        for p in persons:
            P.protect[p] = True
            if rng.random() < 0.5:
                # the number itself encodes another birth date; every department agrees on the true one.
                # It keeps its address code, which must still be one a number encoding that date can
                # carry: in force at some time from max(encoded year, first issue) to this year
                region = P.id[p][:6]
                this_year = int(day.astype("M8[Y]").astype(np.int64)) + 1970
                enc = None
                for _ in range(20):
                    shift = int(rng.choice([-1, 1])) * int(rng.integers(1, 200))
                    cand = P.birth[p] + DAY * shift
                    y = int(cand.astype("M8[Y]").astype(np.int64)) + 1970
                    if cand < day and ref.in_force(region, np.arange(max(y, ref.FIRST_ISSUE_YEAR),
                                                                     this_year + 1)).any():
                        enc = cand
                        break
                if enc is None:
                    P.protect[p] = False
                    continue
                w.taken_ids.discard(P.id[p])
                P.id[p] = make_id_numbers(np.array([region], dtype=object), np.array([enc]), P.sex[p:p + 1], rng,
                                          w.taken_ids)[0]
                P.id_birth[p] = enc
                w.contras.append(Contra("contra_id_birth_sex", "police", "population", int(p), "CSRQ", int(p),
                                        f"identity number encodes birth date {enc}, records say {P.birth[p]}",
                                        extra={"all_records": True}))
            else:
                opts = ["police"] + (["health"] if P.has_health[p] else []) + (
                    ["civil_affairs"] if len(by_person_cv(p)) else [])
                src = opts[int(rng.integers(len(opts)))]
                wrong = 3 - int(P.sex[p])
                if src == "police":
                    P.sex_over_pol[p] = wrong
                    w.contras.append(Contra("contra_id_birth_sex", "police", "population", int(p), "XBDM", int(p),
                                            "sex code disagrees with the identity number"))
                elif src == "health":
                    P.h_sex[p] = wrong
                    w.contras.append(Contra("contra_id_birth_sex", "health", "residents", int(p), "sex_code",
                                            int(p), "sex code disagrees with the identity number"))
                else:
                    k = int(by_person_cv(p)[0])
                    w.CV.sex_over[k] = wrong
                    w.CV.protect[k] = True
                    w.contras.append(Contra("contra_id_birth_sex", "civil_affairs", "assistance", k, "gender",
                                            int(p), "gender disagrees with the identity number"))

    def other_name(self, name: str, sex: int, rng) -> str:
        """A plausible other name (another given name or surname), different even in traditional script."""
        pools = self.w.pools
        given = pools.male_given if sex == 1 else pools.female_given
        for _ in range(20):
            if "·" in name or len(name) < 2:
                cand = str(rng.choice(pools.surnames)) + str(rng.choice(given))
            elif rng.random() < 0.5:
                cand = name[0] + str(rng.choice(given))
            else:
                cand = str(rng.choice(pools.surnames)) + name[1:]
            if cand != name and ref.to_traditional(cand) != ref.to_traditional(name):
                return cand
        return name + "明"

    # ---------------------------------------------------------------- benefits after death ----
    def benefit_after_death(self, dead: np.ndarray, rng) -> None:
        """Deceased persons whose pension keeps being paid or whose assistance case stays ACTIVE."""
        w = self.w
        P, r = w.P, w.rates
        # only where health holds the death certificate date, so "paid after the death date" is decidable
        dead = dead[~P.protect[dead] & P.has_health[dead]]
        if len(dead) == 0:
            return
        by_ss = group_by(w.SS.person)
        by_cv = group_by(w.CV.person)
        pick = dead[rng.random(len(dead)) < r.contra_deceased_benefit]
        for p in pick:
            pens = [k for k in by_ss(p) if w.SS.itype[k] in ("110", "120") and not np.isnat(w.SS.last_pay[k])]
            cases = [k for k in by_cv(p) if w.CV.atype[k] is not None]
            if pens and (not cases or rng.random() < 0.7):
                k = int(pens[0])
                if w.SS.cents[k] < 0:  # restore the benefit the initial build terminated
                    w.SS.cents[k] = int(rng.integers(1800, 5000)) * 100
                w.SS.status[k] = "1"
                w.SS.last_pay[k] = last_payday(np.array([w.today]))[0]
                w.SS.upd[k] = w.SS.last_pay[k].astype("M8[s]") + np.timedelta64(9 * 3600, "s")
                w.SS.pay_after_death[k] = True
                w.SS.protect[k] = True
                P.protect[p] = True
                w.contras.append(Contra("contra_deceased_benefit", "social_security", "insurance", k,
                                        "monthly_benefit", int(p), "pension still paid after the death date"))
            elif cases:
                k = int(cases[0])
                w.CV.status[k] = "ACTIVE"
                w.CV.end[k] = NAT_D
                w.CV.keep_active[k] = True
                w.CV.protect[k] = True
                P.protect[p] = True
                w.contras.append(Contra("contra_deceased_benefit", "civil_affairs", "assistance", k, "status",
                                        int(p), "assistance case still ACTIVE after the death"))

    def benefit_at_death(self, p: int, pens: list, cases: list, rng) -> None:
        """Someone dying tonight (picked at the planting rate): a pension being paid goes on being
        paid, or an open assistance case stays ACTIVE — only where health holds the death date and
        the person is in no other planted item. The death's other records end as usual."""
        w = self.w
        P = w.P
        if P.protect[p] or not P.has_health[p] or not (pens or cases):
            return
        P.protect[p] = True
        if pens and (not cases or rng.random() < 0.7):
            k = int(pens[0])
            w.SS.pay_after_death[k] = True
            w.SS.protect[k] = True
            w.contras.append(Contra("contra_deceased_benefit", "social_security", "insurance", k,
                                    "monthly_benefit", int(p), "pension still paid after the death date"))
        else:
            k = int(cases[0])
            w.CV.keep_active[k] = True
            w.CV.protect[k] = True
            w.contras.append(Contra("contra_deceased_benefit", "civil_affairs", "assistance", k, "status",
                                    int(p), "assistance case still ACTIVE after the death"))

    # ---------------------------------------------------------------- employer codes ----
    def uscc(self, recs: np.ndarray, rng) -> None:
        """Enrolments ``recs`` whose employer code is delivered failing its check character."""
        w = self.w
        SS = w.SS
        recs = recs[(SS.emp[recs] >= 0) & ~SS.protect[recs] & ~w.P.protect[SS.person[recs]]]
        bad = recs[rng.random(len(recs)) < w.rates.contra_uscc_bad_check]
        for k in bad:
            code = uscc_with_bad_check(w.E.uscc[SS.emp[k]], int(rng.integers(0, 30)))
            SS.uscc_over[k] = code
            SS.protect[k] = True
            w.contras.append(Contra("contra_uscc_bad_check", "social_security", "insurance", int(k),
                                    "employer_uscc", int(SS.person[k]),
                                    f"employer code {code} fails its GB 32100 check character"))
