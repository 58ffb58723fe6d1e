"""The simulated district: persons, households, houses, and each department's records of them.

``World`` holds the true state (who lives where, who died when) plus each department's own
records (which may carry planted contradictions). ``World.advance(day)`` moves one night on and
remembers which records changed, so that an incremental delivery can be cut from it.
Everything is drawn from numpy generators seeded from the run's seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

import numpy as np

from . import reference as ref
from .ids import make_id_numbers, make_uscc, uscc_with_bad_check
from .store import NAT_D, Store, age_on, times_on

DAY = np.timedelta64(1, "D")

TEMPLATES = (("H", 0.24), ("HS", 0.20), ("HC", 0.05), ("HP", 0.03), ("HSC", 0.22), ("HCC", 0.02),
             ("HSP", 0.03), ("HSO", 0.01), ("HSCC", 0.07), ("HSCP", 0.04), ("HSCCP", 0.02),
             ("HSCPP", 0.025), ("HSCCPP", 0.015))
ROLE_REL = {"H": ref.RELATION_HEAD, "S": ref.RELATION_SPOUSE, "C": ref.RELATION_CHILD,
            "P": ref.RELATION_PARENT, "O": ref.RELATION_OTHER}
UNIVERSITIES = ("内蒙古大学", "内蒙古农业大学", "内蒙古财经大学", "内蒙古师范大学", "内蒙古医科大学")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "147", "150", "151", "152",
                   "153", "155", "156", "157", "158", "159", "166", "173", "176", "177", "178", "180", "181",
                   "182", "183", "185", "186", "187", "188", "189", "191", "198", "199")
PAYDAY = 15


def retire_age(sex: np.ndarray) -> np.ndarray:
    return np.where(sex == 1, 60, 55)


def annual_mortality(age: np.ndarray) -> np.ndarray:
    """A Gompertz-like mortality curve (per year), with infant mortality."""
    q = 0.00022 * np.exp(0.088 * (np.clip(age, 0, 110) - 20.0))
    return np.clip(np.where(age < 1, 0.004, q), 0.0, 0.45)


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


def _cumcount(keys: np.ndarray) -> np.ndarray:
    """0,1,2,... within each run of equal keys, in array order (keys need not be sorted)."""
    n = len(keys)
    if n == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    start = np.ones(n, bool)
    start[1:] = sk[1:] != sk[:-1]
    pos = np.arange(n)
    first = np.maximum.accumulate(np.where(start, pos, 0))
    out = np.empty(n, np.int64)
    out[order] = pos - first
    return out


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


class World:
    """The true district and each department's records of it."""

    def __init__(self, residents: int, start: np.datetime64, seed: int, rates, change_rate: float) -> None:
        if residents < 50:
            raise ValueError(f"residents must be at least 50, got {residents}")
        self.seed, self.rates, self.change_rate = seed, rates, change_rate
        self.pools = ref.build_pools(seed)
        self.rng = np.random.default_rng([seed, 1])
        self.today = np.datetime64(start, "D")
        self.prev_day = self.today - DAY
        self.night = 1
        self.taken_ids: set[str] = set()
        self.contras: list[Contra] = []
        self.dirty: dict[str, set[int]] = {}
        self._build_places()
        self._empty_places()
        self._build_people(residents)
        self._history()
        self._build_employers()
        self._build_health(np.arange(len(self.P)))
        self._build_civil()
        self._build_ss(np.arange(len(self.P)))
        self._plant_contradictions()
        self._build_incidents()  # after the plants: incidents involve only registered, unplanted persons
        self.refresh_house_use(np.arange(len(self.H)), initial=True)

    # ================================================================ places ====
    def _build_places(self) -> None:
        rng = self.rng
        codes, streets = [], []
        for s in range(1, len(ref.STREET_NAMES) - 1):
            for c in range(1, int(rng.integers(5, 16)) + 1):
                codes.append(f"{ref.DISTRICT}{s:03d}{c:03d}")
                streets.append(s - 1)
        n = len(codes)
        self.C = Store(code=np.array(codes, dtype=object), street=np.array(streets),
                       weight=rng.dirichlet(np.full(n, 3.0)))
        self.teams = np.array([f"T{k:03d}" for k in range(1, 2 * n + 1)], dtype=object)

    # ================================================================ people ====
    def _empty_people(self) -> Store:
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        return Store(id=o(), name=o(), sex=np.empty(0, np.int8), birth=np.empty(0, "M8[D]"),
                     id_birth=np.empty(0, "M8[D]"), eth=o(), hk_code=o(), hk_addr=o(),
                     hh=np.empty(0, np.int64), rel=o(), house=np.empty(0, np.int64), addr_alt=o(),
                     comm=np.empty(0, np.int64), phone=o(), status=np.empty(0, np.int8),
                     death=np.empty(0, "M8[D]"), zx=np.empty(0, "M8[D]"), pol_upd=np.empty(0, "M8[s]"),
                     emp=np.empty(0, np.int64), hidden=np.empty(0, bool), protect=np.empty(0, bool),
                     sex_over_pol=np.empty(0, np.int8),
                     has_health=np.empty(0, bool), chronic=o(), disab=o(), team=o(),
                     visit=np.empty(0, "M8[D]"), h_upd=np.empty(0, "M8[s]"), h_name=o(),
                     h_birth=np.empty(0, "M8[D]"), h_sex=np.empty(0, np.int8), h_comm=np.empty(0, np.int64))

    def _build_people(self, residents: int) -> None:
        self.P = self._empty_people()
        self.HH = Store(hhno=np.empty(0, dtype=object), house=np.empty(0, np.int64),
                        comm=np.empty(0, np.int64), local=np.empty(0, bool))
        mean_size = sum(len(t) * w for t, w in TEMPLATES) / sum(w for _, w in TEMPLATES)
        n_hh = int(residents / mean_size * 1.05) + 5
        self._make_people(n_hh, self.today, self.rng, limit=residents, local_share=0.78)

    def _make_people(self, n_hh: int, day: np.datetime64, rng: np.random.Generator, limit: int | None = None,
                     local_share: float = 0.78, collective: bool = True, into_vacant: bool = False) -> np.ndarray:
        """Create n_hh households (members, ages, names, ids, hukou); returns new person indices.
        Houses are not assigned here (``_house_households``)."""
        names_t = [t for t, _ in TEMPLATES]
        w = np.array([w for _, w in TEMPLATES])
        tpl = rng.choice(len(names_t), n_hh, p=w / w.sum())
        sizes = np.array([len(names_t[t]) for t in tpl])
        if limit is not None:
            cum = np.cumsum(sizes)
            keep = int(np.searchsorted(cum, limit)) + 1
            tpl, sizes = tpl[:keep], sizes[:keep]
            over = int(sizes.sum()) - limit
            if over > 0:
                sizes[-1] -= over
        n_hh = len(tpl)
        roles = np.array(list("".join(names_t[t][:s] for t, s in zip(tpl, sizes))))
        hh_local = np.repeat(np.arange(n_hh), sizes)
        n = len(roles)
        # --- head ages by template kind
        tnames = np.array(names_t, dtype=object)[tpl]
        has_c = np.array(["C" in t for t in tnames])
        has_p = np.array(["P" in t for t in tnames])
        single = sizes == 1
        head_age = np.clip(rng.normal(52, 15, n_hh), 22, 95)
        young = rng.random(n_hh) < 0.5
        head_age = np.where(single, np.where(young, np.clip(rng.normal(30, 7, n_hh), 18, 50),
                                             np.clip(rng.normal(71, 10, n_hh), 50, 99)), head_age)
        head_age = np.where(has_c, np.clip(rng.normal(43, 9, n_hh), 27, 72), head_age)
        head_age = np.where(has_p & ~has_c, np.clip(rng.normal(38, 8, n_hh), 22, 62), head_age)
        head_age = np.where(has_p & has_c, np.clip(head_age, 27, 62), head_age)
        head_age = head_age.astype(np.int64)
        ha = head_age[hh_local]
        age = np.empty(n, dtype=np.int64)
        age[roles == "H"] = ha[roles == "H"]
        m = roles == "S"
        age[m] = np.clip(ha[m] + np.round(rng.normal(-1.5, 3, m.sum())), 20, 100)
        m = roles == "P"
        age[m] = np.clip(ha[m] + rng.integers(22, 36, m.sum()), 0, 99)
        m = roles == "O"
        age[m] = rng.integers(5, 80, m.sum())
        # children: first = head - gap, next ones younger
        m = roles == "C"
        cidx = np.nonzero(m)[0]
        first = np.ones(len(cidx), bool)
        first[1:] = hh_local[cidx[1:]] != hh_local[cidx[:-1]]
        gap = rng.integers(22, 37, len(cidx))
        cage = ha[cidx] - gap
        cage = np.where(cage < 0, rng.integers(0, 4, len(cidx)), cage)
        step = rng.integers(1, 9, len(cidx))
        step[first] = 0
        cs = np.cumsum(step)
        head_k = np.maximum.accumulate(np.where(first, np.arange(len(cidx)), 0))
        cage = np.maximum(0, cage[head_k] - (cs - cs[head_k]))  # each younger sibling 1-8 years apart
        age[cidx] = cage
        # --- sex
        head_male = np.where(single, rng.random(n_hh) < 0.5, rng.random(n_hh) < 0.68)
        sex = np.where(rng.random(n) < 0.515, 1, 2).astype(np.int8)
        hm = head_male[hh_local]
        sex[roles == "H"] = np.where(hm[roles == "H"], 1, 2)
        sex[roles == "S"] = np.where(hm[roles == "S"], 2, 1)
        pidx = np.nonzero(roles == "P")[0]
        if len(pidx):
            pfirst = np.ones(len(pidx), bool)
            pfirst[1:] = hh_local[pidx[1:]] != hh_local[pidx[:-1]]
            two = np.zeros(len(pidx), bool)
            two[:-1] = ~pfirst[1:]  # first of a pair
            psex = np.where(rng.random(len(pidx)) < 0.3, 1, 2)
            psex = np.where(two, 1, np.where(~pfirst, 2, psex))
            sex[pidx] = psex
        # --- birth dates (age completed on ``day``)
        days = np.floor(age * 365.2425 + rng.random(n) * 364).astype(np.int64) + 1
        birth = np.datetime64(day, "D") - days.astype("m8[D]")
        # --- ethnicity per household (spouses occasionally differ)
        eth_codes = np.array(list(ref.ETHNICITY_WEIGHTS), dtype=object)
        ew = np.array(list(ref.ETHNICITY_WEIGHTS.values()))
        eth_hh = rng.choice(eth_codes, n_hh, p=ew / ew.sum())
        eth = eth_hh[hh_local].copy()
        m = (roles == "S") & (rng.random(n) < 0.12)
        eth[m] = rng.choice(eth_codes, m.sum(), p=ew / ew.sum())
        names = self._names(sex, eth, roles, hh_local, n_hh, rng)
        # --- households: local hukou or elsewhere (a place of ref.ORIGINS, registered under its current code)
        local_hh = rng.random(n_hh) < local_share
        places = [ref.HOME] + [p for p, _ in ref.ORIGINS]
        pw = np.array([w for _, w in ref.ORIGINS])
        place_hh = np.zeros(n_hh, dtype=np.int64)
        place_hh[~local_hh] = 1 + rng.choice(len(ref.ORIGINS), (~local_hh).sum(), p=pw / pw.sum())
        this_year = int(np.datetime64(day, "Y").astype(np.int64)) + 1970
        current = np.array([ref.place_codes(p, np.array([this_year]))[0] for p in places], dtype=object)
        hk_code_hh = current[place_hh]
        hk_code = hk_code_hh[hh_local]
        # ID prefixes (GB 11643): the code the place of registration had when the number was assigned
        # — some locals got theirs elsewhere before moving their registration here
        place = place_hh[hh_local].copy()
        born_elsewhere = (place == 0) & (rng.random(n) < 0.18)
        place[born_elsewhere] = 1 + rng.choice(len(ref.ORIGINS), born_elsewhere.sum(), p=pw / pw.sum())
        by = birth.astype("M8[Y]").astype(np.int64) + 1970
        assigned = ref.assignment_years(by, this_year, rng)
        prefix = np.empty(n, dtype=object)
        for k in np.unique(place):
            m = place == k
            prefix[m] = ref.place_codes(places[k], assigned[m])
        ids = make_id_numbers(prefix, birth, sex, rng, self.taken_ids)
        # hukou address for non-local households (local ones get their house address later)
        hk_addr_hh = np.full(n_hh, None, dtype=object)
        nl = np.nonzero(~local_hh)[0]
        if len(nl):
            streets = rng.choice(self.pools.faker_streets, len(nl))
            nums = rng.integers(1, 300, len(nl))
            table = ref.region_table()
            hk_addr_hh[nl] = [f"{table[c][0]}{table[c][1]}{s}{k}号" for c, s, k in
                              zip(hk_code_hh[nl], streets, nums)]
        # --- append households and persons
        hh_base = len(self.HH)
        hhno = np.array([f"{k:09d}" for k in range(hh_base + 1, hh_base + n_hh + 1)], dtype=object)
        self.HH.append(hhno=hhno, house=np.full(n_hh, -1), comm=np.full(n_hh, -1), local=local_hh)
        rel = np.array([ROLE_REL[r] for r in roles], dtype=object)
        phone = self._mobiles(n, rng)
        heads = np.nonzero(roles == "H")[0]
        head_of = heads[np.searchsorted(heads, np.arange(n), side="right") - 1]
        minor = age < 16
        phone[minor] = phone[head_of[minor]]
        new = self.P.append(id=ids, name=names, sex=sex, birth=birth, id_birth=birth, eth=eth,
                            hk_code=hk_code, hk_addr=hk_addr_hh[hh_local], hh=hh_base + hh_local, rel=rel,
                            house=np.full(n, -1), comm=np.full(n, -1), phone=phone,
                            status=np.zeros(n, np.int8), emp=np.full(n, -1), hidden=np.zeros(n, bool),
                            protect=np.zeros(n, bool), sex_over_pol=np.zeros(n, np.int8),
                            has_health=np.zeros(n, bool), h_sex=np.zeros(n, np.int8),
                            h_comm=np.full(n, -1),
                            pol_upd=np.datetime64(day, "D").astype("M8[s]") - rng.integers(
                                0, 1500 * 86400, n).astype("m8[s]") + np.timedelta64(86399, "s"))
        self._house_households(np.arange(hh_base, hh_base + n_hh), rng, collective=collective,
                               into_vacant=into_vacant)
        return new

    def _names(self, sex, eth, roles, hh_local, n_hh, rng) -> np.ndarray:
        pools = self.pools
        n = len(sex)
        fam = rng.choice(pools.surnames, n_hh, p=pools.surname_weights)[hh_local]
        own = rng.choice(pools.surnames, n, p=pools.surname_weights)
        line = (roles == "C") | (sex == 1) & np.isin(roles, ["H", "S", "P"])
        surname = np.where(line, fam, own)
        given_m = rng.choice(pools.male_given, n)
        given_f = rng.choice(pools.female_given, n)
        given = np.where(sex == 1, given_m, given_f)
        names = np.array([s + g for s, g in zip(surname, given)], dtype=object)
        mongol = np.nonzero(eth == "02")[0]
        if len(mongol):
            style = rng.random(len(mongol))
            mg = rng.choice(np.array(ref.MONGOL_GIVEN, dtype=object), len(mongol))
            ms = rng.choice(np.array(ref.MONGOL_SURNAMES, dtype=object), len(mongol))
            mc = rng.choice(np.array(ref.MONGOL_CLANS + ref.MONGOL_GIVEN[:8], dtype=object), len(mongol))
            out = names[mongol].copy()
            a = (style >= 0.40) & (style < 0.72)
            out[a] = mg[a]
            b = (style >= 0.72) & (style < 0.88)
            out[b] = ms[b] + mg[b]
            c = style >= 0.88
            out[c] = mc[c] + "·" + mg[c]
            names[mongol] = out
        uy = np.nonzero(eth == "05")[0]
        if len(uy):
            g = np.array(ref.UYGHUR_GIVEN, dtype=object)
            names[uy] = rng.choice(g, len(uy)) + "·" + rng.choice(g, len(uy))
        return names

    @staticmethod
    def _mobiles(n: int, rng: np.random.Generator) -> np.ndarray:
        pre = rng.choice(np.array(MOBILE_PREFIXES, dtype=object), n)
        rest = rng.integers(0, 10 ** 8, n)
        return np.array([p + f"{r:08d}" for p, r in zip(pre, rest)], dtype=object)

    # ================================================================ houses ====
    def _empty_places(self) -> None:
        """Empty house and compound stores (filled as households are housed)."""
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        self.H = Store(fwbm=o(), addr=o(), comm=np.empty(0, np.int64), owner=np.empty(0, np.int64),
                       use=o(), upd=np.empty(0, "M8[s]"), protect=np.empty(0, bool))
        self.Cmp = Store(comm=np.empty(0, np.int64), road=o(), no=np.empty(0, np.int64), name=o(),
                         used=np.empty(0, np.int64), shops=np.empty(0, np.int64))
        self.comm_houses = np.zeros(len(self.C), np.int64)

    def _new_compounds(self, comm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        k = len(comm)
        roads = np.concatenate([np.array(ref.ROAD_NAMES, dtype=object), self.pools.faker_streets[:40]])
        stems = rng.choice(np.array(ref.COMPOUND_STEMS, dtype=object), k)
        suf = rng.choice(np.array(ref.COMPOUND_SUFFIXES, dtype=object), k)
        return self.Cmp.append(comm=comm, road=rng.choice(roads, k), no=rng.integers(1, 400, k),
                               name=stems + suf, used=np.zeros(k, np.int64), shops=np.zeros(k, np.int64))

    def _new_houses(self, comm: np.ndarray, rng: np.random.Generator, commercial: np.ndarray | None = None,
                    day: np.datetime64 | None = None) -> np.ndarray:
        """Create houses in the given communities (addresses unique, FWBM per community)."""
        comm = np.asarray(comm, dtype=np.int64)
        n = len(comm)
        commercial = np.zeros(n, bool) if commercial is None else commercial
        # make sure every community has compounds with room (≈250 homes each)
        need = np.bincount(comm, minlength=len(self.C))
        have = np.bincount(self.Cmp.comm, minlength=len(self.C)) if len(self.Cmp) else np.zeros(len(self.C), int)
        for c in np.nonzero(need)[0]:
            target = max(2, ceil((need[c] + self.comm_houses[c]) / 250))
            if target > have[c]:
                self._new_compounds(np.full(target - have[c], c), rng)
        order = np.argsort(self.Cmp.comm, kind="stable")
        cc = self.Cmp.comm[order]
        lo, hi = np.searchsorted(cc, comm), np.searchsorted(cc, comm, side="right")
        cmp = order[lo + np.floor(rng.random(n) * (hi - lo)).astype(np.int64)]
        # rank of each new home within its compound / shop within its compound / house within community
        rank = np.zeros(n, np.int64)
        for mask, counter in ((~commercial, self.Cmp.used), (commercial, self.Cmp.shops)):
            idx = np.nonzero(mask)[0]
            rank[idx] = counter[cmp[idx]] + _cumcount(cmp[idx])
            np.add.at(counter, cmp[idx], 1)
        seq = self.comm_houses[comm] + _cumcount(comm) + 1
        np.add.at(self.comm_houses, comm, 1)
        road, no, name = self.Cmp.road[cmp].tolist(), self.Cmp.no[cmp].tolist(), self.Cmp.name[cmp].tolist()
        pre = ref.DISTRICT_PREFIX
        addr = np.array(
            [
                f"{pre}{rd}{nb}号{nm}底商{r + 1}号"
                if shop
                else f"{pre}{rd}{nb}号{nm}{r // 24 + 1}号楼{(r % 24) // 12 + 1}单元{(r % 12) // 2 + 1}0{r % 2 + 1}室"
                for rd, nb, nm, r, shop in zip(road, no, name, rank.tolist(), commercial.tolist())
            ],
            dtype=object,
        )
        codes = self.C.code[comm].tolist()
        fwbm = np.array([f"{c}{q:06d}" for c, q in zip(codes, seq.tolist())], dtype=object)
        day = self.today if day is None else day
        upd = np.datetime64(day, "D").astype("M8[s]") - rng.integers(86400, 2000 * 86400, n).astype("m8[s]")
        return self.H.append(fwbm=fwbm, addr=addr, comm=comm, owner=np.full(n, -1),
                             use=np.where(commercial, "3", "4").astype(object), upd=upd,
                             protect=np.zeros(n, bool))

    def _house_households(self, hhs: np.ndarray, rng: np.random.Generator, collective: bool = True,
                          into_vacant: bool = False) -> None:
        """Give each household a community and a house (or a collective dorm address)."""
        P, HH = self.P, self.HH
        hhs = np.asarray(hhs, dtype=np.int64)
        n = len(hhs)
        lookup = np.full(len(HH), -1, np.int64)
        lookup[hhs] = np.arange(n)
        persons = np.nonzero(lookup[P.hh] >= 0)[0]
        k_of = lookup[P.hh[persons]]
        _, first = np.unique(k_of, return_index=True)
        heads = persons[first]  # members are created head first
        sizes = np.bincount(k_of, minlength=n)
        comm = rng.choice(len(self.C), n, p=self.C.weight)
        dorm = np.zeros(n, bool)
        if collective:
            dorm = (sizes == 1) & (age_on(P.birth[heads], self.today) < 25) & (rng.random(n) < 0.45)
        houses = np.full(n, -1, np.int64)
        if into_vacant:
            vac = np.nonzero((self.H.use == "4") & ~self.H.protect & (self.resident_counts() == 0))[0]
            rng.shuffle(vac)
            take = min(len(vac), int((~dorm).sum()))
            idx = np.nonzero(~dorm)[0][:take]
            houses[idx] = vac[:take]
            comm[idx] = self.H.comm[vac[:take]]
        need = np.nonzero((~dorm) & (houses < 0))[0]
        if len(need):
            houses[need] = self._new_houses(comm[need], rng)
        HH.house[hhs] = houses
        HH.comm[hhs] = comm
        # tenure: owner-occupied (owner = head) or rented (owner = another household's head / org)
        owned = rng.random(n) < 0.76
        hs = houses >= 0
        self.H.use[houses[hs & owned]] = "1"
        self.H.use[houses[hs & ~owned]] = "2"
        self.H.owner[houses[hs & owned]] = heads[hs & owned]
        landlords = self._random_heads(int((hs & ~owned).sum()), rng)
        landlords[rng.random(len(landlords)) < 0.1] = -1
        self.H.owner[houses[hs & ~owned]] = landlords
        P.house[persons] = houses[k_of]
        P.comm[persons] = comm[k_of]
        dk = np.nonzero(dorm)[0]
        if len(dk):
            unis = rng.choice(np.array(UNIVERSITIES, dtype=object), len(dk))
            blocks = rng.integers(1, 20, len(dk))
            dorm_addr = np.full(n, None, dtype=object)
            dorm_addr[dk] = [f"{ref.DISTRICT_PREFIX}{u}学生公寓{b}号楼" for u, b in zip(unis, blocks)]
            P.addr_alt[persons] = dorm_addr[k_of]
        # local hukou: registered at the current address
        here = np.where(houses >= 0, self.H.addr[np.clip(houses, 0, None)] if len(self.H) else None, None)
        if len(dk):
            here[dk] = dorm_addr[dk]
        loc = HH.local[hhs][k_of]
        P.hk_addr[persons[loc]] = here[k_of[loc]]

    def _random_heads(self, k: int, rng: np.random.Generator) -> np.ndarray:
        heads = np.nonzero((self.P.rel == ref.RELATION_HEAD) & (self.P.status == 0) & ~self.P.hidden)[0]
        if len(heads) == 0 or k == 0:
            return np.full(k, -1, np.int64)
        return heads[rng.integers(0, len(heads), k)]

    def _members(self, hhs: np.ndarray) -> list[np.ndarray]:
        """Person indices of each household (head first at creation)."""
        order = np.argsort(self.P.hh, kind="stable")
        sorted_hh = self.P.hh[order]
        lo = np.searchsorted(sorted_hh, hhs)
        hi = np.searchsorted(sorted_hh, hhs, side="right")
        return [order[a:b] for a, b in zip(lo, hi)]

    # ================================================================ history ====
    def _history(self) -> None:
        """Deaths and moves out in the three years before the first delivery."""
        P, rng, day = self.P, self.rng, self.today
        n = len(P)
        age = age_on(P.birth, day)
        # a few extra vacant and commercial houses
        n_hh = len(self.HH)
        extra = self._new_houses(rng.choice(len(self.C), int(n_hh * 0.07) + 1, p=self.C.weight), rng)
        self.H.owner[extra] = self._random_heads(len(extra), rng)
        shops = self._new_houses(rng.choice(len(self.C), int(n_hh * 0.04) + 1, p=self.C.weight), rng,
                                 commercial=np.ones(int(n_hh * 0.04) + 1, bool))
        sh_owner = self._random_heads(len(shops), rng)
        sh_owner[rng.random(len(shops)) < 0.5] = -1
        self.H.owner[shops] = sh_owner
        died = rng.random(n) < 3 * annual_mortality(age)
        died &= age >= 1
        death = day - rng.integers(20, 1095, n).astype("m8[D]")
        P.status[died] = 1
        P.death[died] = death[died]
        zx = death + rng.integers(1, 16, n).astype("m8[D]")
        P.zx[died] = np.minimum(zx[died], day - DAY)
        # whole households and some young adults moved out
        gone_hh = np.nonzero(rng.random(n_hh) < 0.015)[0]
        mv = np.isin(P.hh, gone_hh) | ((age >= 18) & (age <= 35) & (P.rel != ref.RELATION_HEAD)
                                        & (rng.random(n) < 0.03))
        mv &= P.status == 0
        P.status[mv] = 2
        hh_zx = day - rng.integers(1, 1095, n_hh).astype("m8[D]")
        P.zx[mv] = hh_zx[P.hh[mv]]
        gone = P.status != 0
        P.pol_upd[gone] = P.zx[gone].astype("M8[s]") + rng.integers(8 * 3600, 20 * 3600, gone.sum()).astype("m8[s]")
        self.fix_households(np.unique(P.hh[gone]), day, rng, initial=True)

    # ================================================================ households ====
    def fix_households(self, hhs: np.ndarray, day: np.datetime64, rng: np.random.Generator,
                       initial: bool = False) -> None:
        """Each household with active members keeps exactly one active head (spouse first,
        else the oldest), other members' relation codes re-expressed relative to the new head."""
        P = self.P
        for m in self._members(np.asarray(hhs)):
            act = m[(P.status[m] == 0)]
            if len(act) == 0:
                continue
            if (P.rel[act] == ref.RELATION_HEAD).sum() == 1:
                continue
            vis = act[~P.hidden[act] & ~P.protect[act]]
            pool = vis if len(vis) else act
            sp = pool[P.rel[pool] == ref.RELATION_SPOUSE]
            new_head = sp[0] if len(sp) else pool[np.argmin(P.birth[pool])]
            old_rel = P.rel[new_head]
            for p in act:
                if p == new_head:
                    P.rel[p] = ref.RELATION_HEAD
                elif old_rel == ref.RELATION_SPOUSE:
                    P.rel[p] = P.rel[p] if P.rel[p] == ref.RELATION_CHILD else ref.RELATION_OTHER
                elif old_rel == ref.RELATION_CHILD and P.rel[p] == ref.RELATION_SPOUSE:
                    P.rel[p] = ref.RELATION_PARENT
                else:
                    P.rel[p] = ref.RELATION_OTHER
                if not initial:
                    self.touch_person(np.array([p]), day, rng)

    def resident_counts(self) -> np.ndarray:
        """Active residents registered at each house in the police register (incl. stale duplicates)."""
        P = self.P
        m = (P.status == 0) & ~P.hidden & (P.house >= 0)
        counts = np.bincount(P.house[m], minlength=len(self.H))
        if hasattr(self, "PX") and len(self.PX):
            counts += np.bincount(self.PX.house[self.PX.house >= 0], minlength=len(self.H))
        return counts

    def refresh_house_use(self, houses: np.ndarray, initial: bool = False, day=None, rng=None) -> None:
        """A dwelling without active residents becomes vacant (4); one with residents leaves 4."""
        houses = np.asarray(houses, dtype=np.int64)
        counts = self.resident_counts()[houses]
        H = self.H
        use = H.use[houses]
        ok = ~H.protect[houses] & (use != "3")
        to_vacant = houses[ok & (counts == 0) & (use != "4")]
        to_let = houses[ok & (counts > 0) & (use == "4")]
        H.use[to_vacant] = "4"
        H.use[to_let] = "2"
        if not initial:
            self.touch("house", np.concatenate([to_vacant, to_let]), day, rng)

    # ================================================================ employers ====
    def _build_employers(self) -> None:
        rng = self.rng
        n = int(np.clip(len(self.P) // 120, 150, 800))
        kinds = [("9", "1", 0.70), ("9", "2", 0.08), ("9", "3", 0.03), ("1", "2", 0.08), ("1", "1", 0.03),
                 ("5", "2", 0.03), ("N", "2", 0.03), ("Y", "1", 0.02)]
        kw = np.array([k[2] for k in kinds])
        kind = rng.choice(len(kinds), n, p=kw / kw.sum())
        regions = np.array(["150105", "150105", "150105", "150102", "150103", "150104", "150100", "150000"],
                           dtype=object)
        uscc, names = [], []
        comps = self.pools.companies
        stems = self.pools.company_stems
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
        self.E = Store(uscc=np.array(uscc, dtype=object), name=np.array(names, dtype=object),
                       weight=rng.permutation(weight / weight.sum()))

    # ================================================================ health ====
    def _build_health(self, persons: np.ndarray, coverage: float = 0.93, rng=None, day=None) -> None:
        rng = self.rng if rng is None else rng
        day = self.today if day is None else day
        P = self.P
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
        team = self.teams[np.clip(P.comm[p], 0, None) * 2 + rng.integers(0, 2, len(p))]
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

    # ================================================================ civil affairs ====
    def _build_civil(self) -> None:
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        self.CV = Store(person=np.empty(0, np.int64), atype=o(), cents=np.empty(0, np.int64),
                        start=np.empty(0, "M8[D]"), end=np.empty(0, "M8[D]"), status=o(), hhid=o(),
                        comm=np.empty(0, np.int64),
                        death_reg=np.empty(0, "M8[D]"), upd=np.empty(0, "M8[s]"), name_over=o(),
                        birth_over=np.empty(0, "M8[D]"), sex_over=np.empty(0, np.int8),
                        keep_active=np.empty(0, bool), protect=np.empty(0, bool))
        P, rng, day = self.P, self.rng, self.today
        age = age_on(P.birth, day)
        alive = P.status == 0
        # DIBAO: ~1.8% of households, applicant = head
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & alive)[0]
        dib = heads[rng.random(len(heads)) < 0.018]
        sizes = np.bincount(P.hh, minlength=len(self.HH))[P.hh[dib]]
        self.new_cases(dib, "DIBAO", (835 * 100 * sizes * rng.uniform(0.35, 1.0, len(dib))).astype(np.int64),
                       rng, day, past=True)
        # TEKUN: old people living alone
        alone = np.bincount(P.hh, minlength=len(self.HH))[P.hh] == 1
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
        k = len(self.CV)
        r = rng.random(k)
        ended = r < 0.05
        self.CV.status[ended] = "TERMINATED"
        self.CV.end[ended] = np.maximum(self.CV.start[ended] + DAY * 30,
                                        day - rng.integers(5, 300, ended.sum()).astype("m8[D]"))
        self.CV.end[ended] = np.minimum(self.CV.end[ended], day - DAY)
        susp = (r >= 0.05) & (r < 0.08)
        self.CV.status[susp] = "SUSPENDED"
        # deceased persons: death registration, and their old-age allowance ended
        dead = np.nonzero(P.status == 1)[0]
        dold = dead[(age[dead] >= 80) & (rng.random(len(dead)) < 0.9)]
        cases = self.new_cases(dold, "ELDERLY", np.full(len(dold), 10000), rng, day, past=True)
        self.CV.status[cases] = "TERMINATED"
        self.CV.end[cases] = np.minimum(P.death[dold] + rng.integers(1, 10, len(dold)).astype("m8[D]"), day - DAY)
        self.CV.start[cases] = np.minimum(self.CV.start[cases], P.death[dold] - DAY * 30)
        self.CV.upd[cases] = self.CV.end[cases].astype("M8[s]") + np.timedelta64(10 * 3600, "s")
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
        P = self.P
        return self.CV.append(person=persons, atype=np.full(n, atype, dtype=object), cents=cents.astype(np.int64),
                              start=start, status=np.full(n, "ACTIVE", dtype=object),
                              hhid=np.array([f"MZHH{h:09d}" for h in P.hh[persons]], dtype=object),
                              comm=P.comm[persons], upd=upd, sex_over=np.zeros(n, np.int8),
                              keep_active=np.zeros(n, bool),
                              protect=np.zeros(n, bool))

    def death_registrations(self, persons: np.ndarray, rng, day, nightly: bool = False) -> np.ndarray:
        n = len(persons)
        if n == 0:
            return np.zeros(0, np.int64)
        P = self.P
        reg = np.minimum(P.death[persons] + rng.integers(0, 4, n).astype("m8[D]"), day)
        if nightly:  # registered since the last delivery
            reg = np.maximum(reg, np.minimum(self.prev_day + DAY, day))
            upd = times_on(day, rng, n)
        else:
            upd = np.minimum(reg.astype("M8[s]") + rng.integers(9 * 3600, 18 * 3600, n).astype("m8[s]"),
                             day.astype("M8[s]") + np.timedelta64(22 * 3600, "s"))
        return self.CV.append(person=persons, atype=np.full(n, None, dtype=object), cents=np.full(n, -1),
                              start=reg, end=reg, status=np.full(n, "TERMINATED", dtype=object),
                              hhid=np.array([f"MZHH{h:09d}" for h in P.hh[persons]], dtype=object),
                              comm=P.comm[persons], death_reg=reg, upd=upd, sex_over=np.zeros(n, np.int8),
                              keep_active=np.zeros(n, bool), protect=np.zeros(n, bool))

    # ================================================================ social security ====
    def _build_ss(self, persons: np.ndarray, rng=None, day=None) -> np.ndarray:
        rng = self.rng if rng is None else rng
        day = self.today if day is None else day
        if not hasattr(self, "SS"):
            o = lambda: np.empty(0, dtype=object)  # noqa: E731
            self.SS = Store(person=np.empty(0, np.int64), itype=o(), status=o(), emp=np.empty(0, np.int64),
                            cents=np.empty(0, np.int64), last_pay=np.empty(0, "M8[D]"),
                            upd=np.empty(0, "M8[s]"), name_over=o(), uscc_over=o(),
                            pay_after_death=np.empty(0, bool), protect=np.empty(0, bool))
        P = self.P
        p = persons
        age = age_on(P.birth[p], day)
        ra = retire_age(P.sex[p])
        working = (age >= 18) & (age < ra)
        retired = age >= ra
        emp_p = np.where(age < 23, 0.25, np.where(P.sex[p] == 1, 0.74, 0.64))
        employed = working & (rng.random(len(p)) < emp_p)
        P.emp[p[employed]] = rng.choice(len(self.E), employed.sum(), p=self.E.weight)
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
        new = self.SS.append(person=idx, itype=itype, status=status, emp=emp, cents=cents, last_pay=last_pay,
                             upd=upd, pay_after_death=np.zeros(n, bool), protect=np.zeros(n, bool))
        # the dead: everything terminated, no benefit after death
        dead = new[P.status[idx] == 1]
        if len(dead):
            self.terminate_ss(dead, rng, day, initial=True)
        return new

    def terminate_ss(self, recs: np.ndarray, rng, day, initial: bool = False) -> None:
        """Death: enrolments terminated, benefit stops, payments after death recovered."""
        SS, P = self.SS, self.P
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
            self.touch("ss", recs, day, rng)

    # ================================================================ incidents ====
    def _build_incidents(self) -> None:
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        self.I = Store(jjbh=o(), bjsj=np.empty(0, "M8[s]"), cat=o(), addr=o(), comm=np.empty(0, np.int64),
                       ids=o(), status=o(), upd=np.empty(0, "M8[s]"))
        rng, day = self.rng, self.today
        active = int(((self.P.status == 0) & ~self.P.hidden).sum())
        back = np.arange(60, -1, -1)
        counts = rng.poisson(active * 0.002, len(back))
        days = np.repeat(day - back.astype("m8[D]"), counts)
        new = self.new_incidents(days, rng)
        age_days = np.repeat(back, counts)
        closed = rng.random(len(new)) < np.clip(0.3 + age_days * 0.1, 0, 0.97)
        c = new[closed]
        self.I.status[c] = rng.choice(np.array(["2", "3"], dtype=object), len(c), p=[0.4, 0.6])
        self.I.upd[c] = np.minimum(self.I.bjsj[c] + rng.integers(3600, 6 * 86400, len(c)).astype("m8[s]"),
                                   day.astype("M8[s]") + np.timedelta64(22 * 3600, "s"))

    def new_incidents(self, days: np.ndarray, rng) -> np.ndarray:
        """Incidents reported on the given days, each linked to residents of one community."""
        k = len(days)
        if k == 0:
            return np.zeros(0, np.int64)
        P = self.P
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
        for w, e, pk, nb in zip(who.tolist(), n_extra.tolist(), picks.tolist(), nobody.tolist()):
            if nb:
                ids.append("")
                continue
            group = [pid[w]] + [pid[o] for o in pk[:e] if o != w]
            ids.append(";".join(dict.fromkeys(group)))
        home = self.H.addr[P.house[who]]
        addr = np.where(np.isin(cat, ["01", "06", "03"]), home,
                        np.array([a.split("号")[0] + "号" for a in home], dtype=object))
        base = np.asarray(days).astype("M8[D]").astype("M8[s]")
        bjsj = base + rng.integers(0, 86400, k).astype("m8[s]")
        seq0 = len(self.I)
        d8 = [str(d).replace("-", "") for d in np.asarray(days).astype("M8[D]")]
        jjbh = np.array([f"J{ref.DISTRICT}{d}{seq0 + i + 1:07d}" for i, d in enumerate(d8)], dtype=object)
        upd = np.minimum(bjsj + rng.integers(60, 3600, k).astype("m8[s]"), base + np.timedelta64(86399, "s"))
        return self.I.append(jjbh=jjbh, bjsj=bjsj, cat=cat, addr=addr, comm=comm,
                             ids=np.array(ids, dtype=object), status=np.full(k, "1", dtype=object), upd=upd)

    # ================================================================ contradictions ====
    def _plant_contradictions(self) -> None:
        """Persistent cross-department contradictions and duplicate persons (ground truth kept)."""
        P, rng, r, day = self.P, self.rng, self.rates, self.today
        n = len(P)
        age = age_on(P.birth, day)
        free = lambda: ~P.protect  # noqa: E731
        # absent from police: a non-head member known to health
        m = free() & (P.status == 0) & (P.rel != ref.RELATION_HEAD) & P.has_health
        hid = np.nonzero(m & (rng.random(n) < r.contra_absent_from_police))[0]
        P.hidden[hid] = True
        P.protect[hid] = True
        for p in hid:
            self.contras.append(Contra("contra_absent_from_police", "health", "residents", int(p), "id_no", int(p),
                                       "known to health (and others) but not in the police population register"))
        # the same person under two record ids (police: stale registration; health: second file)
        o = lambda: np.empty(0, dtype=object)  # noqa: E731
        self.PX = Store(person=np.empty(0, np.int64), house=np.empty(0, np.int64), hh=np.empty(0, np.int64),
                        rel=o(), phone=o(), upd=np.empty(0, "M8[s]"))
        self.HX = Store(person=np.empty(0, np.int64), comm=np.empty(0, np.int64), team=o(), chronic=o(),
                        visit=np.empty(0, "M8[D]"), upd=np.empty(0, "M8[s]"))
        m = free() & (P.status == 0) & (P.rel != ref.RELATION_HEAD) & (P.house >= 0) & (age >= 16)
        d2 = np.nonzero(m & (rng.random(n) < r.dup_person_two_ids))[0]
        P.protect[d2] = True
        self.PX.append(person=d2, house=P.house[d2], hh=P.hh[d2], rel=P.rel[d2], phone=self._mobiles(len(d2), rng),
                       upd=P.pol_upd[d2] - rng.integers(400, 3000, len(d2)).astype("m8[D]"))
        m = free() & P.has_health
        d2h = np.nonzero(m & (rng.random(n) < r.dup_person_two_ids))[0]
        P.protect[d2h] = True
        self.HX.append(person=d2h, comm=rng.integers(0, len(self.C), len(d2h)), team=P.team[d2h],
                       chronic=P.chronic[d2h], visit=np.full(len(d2h), NAT_D),
                       upd=P.h_upd[d2h] - rng.integers(200, 2000, len(d2h)).astype("m8[D]"))
        # name / birth-date / id-vs-birth-or-sex contradictions
        self._plant_person_contras(np.arange(n), rng, day)
        # deceased but still paid
        self._plant_benefit_after_death(np.nonzero(P.status == 1)[0], rng)
        # vacant house with registered residents
        counts = self.resident_counts()
        hs = np.nonzero((counts > 0) & np.isin(self.H.use, ["1", "2"]) & ~self.H.protect)[0]
        vac = hs[rng.random(len(hs)) < r.contra_vacant_house_residents]
        self.H.use[vac] = "4"
        self.H.protect[vac] = True
        # its residents' records stay free of format defects (so the contradiction stays visible)
        P.protect[np.isin(P.house, vac) & (P.status == 0)] = True
        for h in vac:
            self.contras.append(Contra("contra_vacant_house_residents", "police", "houses", int(h), "FWYTDM", -1,
                                       "house declared vacant (FWYTDM=4) while active residents are registered at it"))
        # employer code failing its check character
        self._plant_uscc(np.arange(len(self.SS)), rng)

    def _plant_person_contras(self, persons: np.ndarray, rng, day) -> None:
        P, r = self.P, self.rates
        cand = persons[~P.protect[persons] & ~P.hidden[persons]]
        u = rng.random(len(cand))
        a = r.contra_name_mismatch
        b = a + r.contra_birthdate_mismatch
        c = b + r.contra_id_birth_sex
        name_p = cand[u < a]
        birth_p = cand[(u >= a) & (u < b)]
        idbs_p = cand[(u >= b) & (u < c)]
        by_person_cv = self.group_by(self.CV.person, len(P))
        by_person_ss = self.group_by(self.SS.person, len(P))
        for p in name_p:
            opts = [s for s in ("health", "civil_affairs", "social_security")
                    if (s == "health" and P.has_health[p]) or (s == "civil_affairs" and len(by_person_cv(p)))
                    or (s == "social_security" and len(by_person_ss(p)))]
            if not opts:
                continue
            src = opts[int(rng.integers(len(opts)))]
            other = self._other_name(P.name[p], P.sex[p], rng)
            P.protect[p] = True
            if src == "health":
                P.h_name[p] = other
                self.contras.append(Contra("contra_name_mismatch", "health", "residents", int(p), "name", int(p),
                                           f"name differs from the police register ({other})"))
            elif src == "civil_affairs":
                k = int(by_person_cv(p)[0])
                self.CV.name_over[k] = other
                self.CV.protect[k] = True
                self.contras.append(Contra("contra_name_mismatch", "civil_affairs", "assistance", k, "name", int(p),
                                           f"name differs from the police register ({other})"))
            else:
                k = int(by_person_ss(p)[0])
                self.SS.name_over[k] = other
                self.SS.protect[k] = True
                self.contras.append(Contra("contra_name_mismatch", "social_security", "insurance", k, "xm", int(p),
                                           f"name differs from the police register ({other})"))
        for p in birth_p:
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
                self.contras.append(Contra("contra_birthdate_mismatch", "health", "residents", int(p), "birth_date",
                                           int(p), f"birth date {other} differs from the police register"))
            else:
                k = int(by_person_cv(p)[0])
                self.CV.birth_over[k] = other
                self.CV.protect[k] = True
                self.contras.append(Contra("contra_birthdate_mismatch", "civil_affairs", "assistance", k,
                                           "birth_date", int(p),
                                           f"birth date {other} differs from the police register"))
        for p in idbs_p:
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
                self.taken_ids.discard(P.id[p])
                P.id[p] = make_id_numbers(np.array([region], dtype=object), np.array([enc]), P.sex[p:p + 1], rng,
                                          self.taken_ids)[0]
                P.id_birth[p] = enc
                self.contras.append(Contra("contra_id_birth_sex", "police", "population", int(p), "CSRQ", int(p),
                                           f"identity number encodes birth date {enc}, records say {P.birth[p]}",
                                           extra={"all_records": True}))
            else:
                opts = ["police"] + (["health"] if P.has_health[p] else []) + (
                    ["civil_affairs"] if len(by_person_cv(p)) else [])
                src = opts[int(rng.integers(len(opts)))]
                wrong = 3 - int(P.sex[p])
                if src == "police":
                    P.sex_over_pol[p] = wrong
                    self.contras.append(Contra("contra_id_birth_sex", "police", "population", int(p), "XBDM", int(p),
                                               "sex code disagrees with the identity number"))
                elif src == "health":
                    P.h_sex[p] = wrong
                    self.contras.append(Contra("contra_id_birth_sex", "health", "residents", int(p), "sex_code",
                                               int(p), "sex code disagrees with the identity number"))
                else:
                    k = int(by_person_cv(p)[0])
                    self.CV.sex_over[k] = wrong
                    self.CV.protect[k] = True
                    self.contras.append(Contra("contra_id_birth_sex", "civil_affairs", "assistance", k, "gender",
                                               int(p), "gender disagrees with the identity number"))

    def _other_name(self, name: str, sex: int, rng) -> str:
        pools = self.pools
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

    def _plant_benefit_after_death(self, dead: np.ndarray, rng) -> None:
        """Deceased persons whose pension keeps being paid or whose assistance case stays ACTIVE."""
        P, r = self.P, self.rates
        # only where health holds the death certificate date, so "paid after the death date" is decidable
        dead = dead[~P.protect[dead] & P.has_health[dead]]
        if len(dead) == 0:
            return
        by_ss = self.group_by(self.SS.person, len(P))
        by_cv = self.group_by(self.CV.person, len(P))
        pick = dead[rng.random(len(dead)) < r.contra_deceased_benefit]
        for p in pick:
            pens = [k for k in by_ss(p) if self.SS.itype[k] in ("110", "120") and not np.isnat(self.SS.last_pay[k])]
            cases = [k for k in by_cv(p) if self.CV.atype[k] is not None]
            if pens and (not cases or rng.random() < 0.7):
                k = int(pens[0])
                if self.SS.cents[k] < 0:  # restore the benefit the initial build terminated
                    self.SS.cents[k] = int(rng.integers(1800, 5000)) * 100
                self.SS.status[k] = "1"
                self.SS.last_pay[k] = last_payday(np.array([self.today]))[0]
                self.SS.upd[k] = self.SS.last_pay[k].astype("M8[s]") + np.timedelta64(9 * 3600, "s")
                self.SS.pay_after_death[k] = True
                self.SS.protect[k] = True
                P.protect[p] = True
                self.contras.append(Contra("contra_deceased_benefit", "social_security", "insurance", k,
                                           "monthly_benefit", int(p), "pension still paid after the death date"))
            elif cases:
                k = int(cases[0])
                self.CV.status[k] = "ACTIVE"
                self.CV.end[k] = NAT_D
                self.CV.keep_active[k] = True
                self.CV.protect[k] = True
                P.protect[p] = True
                self.contras.append(Contra("contra_deceased_benefit", "civil_affairs", "assistance", k, "status",
                                           int(p), "assistance case still ACTIVE after the death"))

    def _plant_uscc(self, recs: np.ndarray, rng) -> None:
        SS = self.SS
        recs = recs[(SS.emp[recs] >= 0) & ~SS.protect[recs] & ~self.P.protect[SS.person[recs]]]
        bad = recs[rng.random(len(recs)) < self.rates.contra_uscc_bad_check]
        for k in bad:
            code = uscc_with_bad_check(self.E.uscc[SS.emp[k]], int(rng.integers(0, 30)))
            SS.uscc_over[k] = code
            SS.protect[k] = True
            self.contras.append(Contra("contra_uscc_bad_check", "social_security", "insurance", int(k),
                                       "employer_uscc", int(SS.person[k]),
                                       f"employer code {code} fails its GB 32100 check character"))

    @staticmethod
    def group_by(keys: np.ndarray, n: int):
        order = np.argsort(keys, kind="stable")
        sk = keys[order]

        def members(p: int) -> np.ndarray:
            lo, hi = np.searchsorted(sk, p), np.searchsorted(sk, p, side="right")
            return order[lo:hi]
        return members

    # ================================================================ nights ====
    def touch(self, kind: str, idx: np.ndarray, day, rng) -> None:
        """Mark records changed tonight with a fresh update time on ``day``."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return
        ts = times_on(day, rng, len(idx))
        if kind == "house":
            self.H.upd[idx] = np.maximum(self.H.upd[idx], ts)
        elif kind == "ss":
            self.SS.upd[idx] = np.maximum(self.SS.upd[idx], ts)
        elif kind == "civil":
            self.CV.upd[idx] = np.maximum(self.CV.upd[idx], ts)
        elif kind == "incident":
            self.I.upd[idx] = np.maximum(self.I.upd[idx], ts)
        elif kind == "health":
            self.P.h_upd[idx] = np.maximum(self.P.h_upd[idx], ts)
        else:
            raise ValueError(kind)
        self.dirty.setdefault(kind, set()).update(idx.tolist())

    def touch_person(self, idx: np.ndarray, day, rng) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == 0:
            return
        self.P.pol_upd[idx] = np.maximum(self.P.pol_upd[idx], times_on(day, rng, len(idx)))
        self.dirty.setdefault("pop", set()).update(idx.tolist())

    def advance(self, day: np.datetime64) -> None:
        """Move the world to ``day``: births, deaths, moves, changes, benefits, incidents."""
        day = np.datetime64(day, "D")
        if day <= self.today:
            raise ValueError(f"advance: {day} is not after {self.today}")
        prev = self.today
        self.prev_day, self.today = prev, day
        self.night += 1
        self.dirty = {}
        rng = np.random.default_rng([self.seed, 100, self.night])
        f = self.change_rate / 0.01
        nd = int((day - prev) / DAY)
        counts_before = self.resident_counts()
        P = self.P
        active = np.nonzero((P.status == 0))[0]
        n_act = len(active)
        touched_hh: set[int] = set()
        # --- deaths
        q = annual_mortality(age_on(P.birth[active], day)) / 365.0 * nd
        dying = active[rng.random(n_act) < q]
        if len(dying):
            self._deaths(dying, day, rng)
            touched_hh.update(P.hh[dying].tolist())
        # --- births
        k = int(rng.poisson(n_act * 0.0075 / 365 * nd))
        if k:
            self._births(k, day, rng)
        # --- move-ins (new households)
        k = int(rng.poisson(max(n_act * self.change_rate * 0.03, 0.3) / 2.6))
        if k:
            new = self._make_people(k, day, rng, local_share=0.35, collective=False, into_vacant=True)
            self._settle_newcomers(new, day, rng)
        # --- moves out: whole households and single adults
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & (P.status == 0) & ~P.protect)[0]
        k = min(len(heads), int(rng.poisson(len(heads) * self.change_rate * 0.01)))
        gone_hh = P.hh[rng.choice(heads, k, replace=False)] if k else np.zeros(0, np.int64)
        mv = np.nonzero(np.isin(P.hh, gone_hh) & (P.status == 0) & ~P.protect)[0]
        ad = np.nonzero((P.status == 0) & ~P.protect & (P.rel != ref.RELATION_HEAD)
                        & (age_on(P.birth, day) >= 18))[0]
        k = min(len(ad), int(rng.poisson(len(ad) * self.change_rate * 0.008)))
        if k:
            mv = np.union1d(mv, rng.choice(ad, k, replace=False))
        if len(mv):
            P.status[mv] = 2
            P.zx[mv] = day
            self.touch_person(mv, day, rng)
            touched_hh.update(P.hh[mv].tolist())
        # --- relocations within the district
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & (P.status == 0) & ~P.protect & (P.house >= 0))[0]
        k = min(len(heads), int(rng.poisson(len(heads) * self.change_rate * 0.03)))
        if k:
            self._relocate(P.hh[rng.choice(heads, k, replace=False)], day, rng)
        # --- phone changes
        ad = np.nonzero((P.status == 0) & ~P.protect & (age_on(P.birth, day) >= 16))[0]
        k = min(len(ad), int(rng.poisson(len(ad) * self.change_rate * 0.8)))
        if k:
            who = rng.choice(ad, k, replace=False)
            P.phone[who] = self._mobiles(k, rng)
            self.touch_person(who, day, rng)
        # --- health visits
        hh_ = np.nonzero(P.has_health & (P.status == 0) & ~P.protect)[0]
        k = min(len(hh_), int(rng.poisson(len(hh_) * self.change_rate * 0.9)))
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
            self.touch("health", who, day, rng)
        self._ss_night(prev, day, rng, f)
        self._civil_night(prev, day, rng, f)
        self._incident_night(day, rng)
        self.fix_households(np.array(sorted(touched_hh), dtype=np.int64), day, rng)
        counts_after = self.resident_counts()
        if len(counts_before) < len(counts_after):
            counts_before = np.concatenate([counts_before, np.zeros(len(counts_after) - len(counts_before), int)])
        changed = np.nonzero(counts_before != counts_after)[0]
        self.refresh_house_use(changed, day=day, rng=rng)
        self.touch("house", changed, day, rng)

    def _deaths(self, dying: np.ndarray, day, rng) -> None:
        P = self.P
        back = rng.integers(0, 5, len(dying)).astype("m8[D]")
        P.death[dying] = np.maximum(day - back, self.prev_day + DAY - np.timedelta64(4, "D"))
        P.status[dying] = 1
        P.zx[dying] = day
        self.touch_person(dying, day, rng)
        self.touch("health", dying[P.has_health[dying]], day, rng)
        # civil affairs: death registration; open cases end (unless planted)
        new = self.death_registrations(dying[rng.random(len(dying)) < 0.85], rng, day, nightly=True)
        self.dirty.setdefault("civil", set()).update(new.tolist())
        by_cv = self.group_by(self.CV.person, len(P))
        by_ss = self.group_by(self.SS.person, len(P))
        plant = rng.random(len(dying)) < self.rates.contra_deceased_benefit
        for p, pl in zip(dying, plant):
            cases = [k for k in by_cv(p) if self.CV.atype[k] is not None and self.CV.status[k] != "TERMINATED"]
            pens = [k for k in by_ss(p) if self.SS.itype[k] in ("110", "120") and self.SS.cents[k] >= 0
                    and self.SS.status[k] == "1"]
            if pl and not P.protect[p] and P.has_health[p] and (pens or cases):
                P.protect[p] = True
                if pens and (not cases or rng.random() < 0.7):
                    k = int(pens[0])
                    self.SS.pay_after_death[k] = True
                    self.SS.protect[k] = True
                    self.contras.append(Contra("contra_deceased_benefit", "social_security", "insurance", k,
                                               "monthly_benefit", int(p), "pension still paid after the death date"))
                    pens = pens[1:]
                else:
                    k = int(cases[0])
                    self.CV.keep_active[k] = True
                    self.CV.protect[k] = True
                    self.contras.append(Contra("contra_deceased_benefit", "civil_affairs", "assistance", k, "status",
                                               int(p), "assistance case still ACTIVE after the death"))
                    cases = cases[1:]
            for k in cases:
                if not self.CV.keep_active[k]:
                    self.CV.status[k] = "TERMINATED"
                    self.CV.end[k] = day
                    self.touch("civil", np.array([k]), day, rng)
            recs = np.array([k for k in by_ss(p) if not self.SS.pay_after_death[k] and self.SS.status[k] != "3"],
                            dtype=np.int64)
            if len(recs):
                self.terminate_ss(recs, rng, day)

    def _births(self, k: int, day, rng) -> None:
        P = self.P
        age = age_on(P.birth, day)
        mothers = np.nonzero((P.status == 0) & (P.sex == 2) & (age >= 22) & (age <= 42) & ~P.hidden & ~P.protect
                             & np.isin(P.rel, [ref.RELATION_HEAD, ref.RELATION_SPOUSE]) & (P.house >= 0))[0]
        if len(mothers) == 0:
            return
        mom = mothers[rng.integers(0, len(mothers), k)]
        mom = np.unique(mom)
        k = len(mom)
        sex = np.where(rng.random(k) < 0.515, 1, 2).astype(np.int8)
        birth = day - rng.integers(1, 25, k).astype("m8[D]")
        heads = np.array([m[P.rel[m] == ref.RELATION_HEAD][0] if (P.rel[m] == ref.RELATION_HEAD).any() else m[0]
                          for m in self._members(P.hh[mom])])
        fam = np.array([P.name[h][0] if "·" not in P.name[h] and P.sex[h] == 1 else P.name[mo][0]
                        for h, mo in zip(heads, mom)], dtype=object)
        given = np.where(sex == 1, rng.choice(self.pools.male_given, k), rng.choice(self.pools.female_given, k))
        names = fam + given
        region = np.full(k, ref.DISTRICT, dtype=object)
        ids = make_id_numbers(region, birth, sex, rng, self.taken_ids)
        new = P.append(id=ids, name=names, sex=sex, birth=birth, id_birth=birth, eth=P.eth[mom],
                       hk_code=P.hk_code[mom], hk_addr=P.hk_addr[mom], hh=P.hh[mom],
                       rel=np.full(k, ref.RELATION_CHILD, dtype=object), house=P.house[mom], comm=P.comm[mom],
                       phone=P.phone[heads], status=np.zeros(k, np.int8), emp=np.full(k, -1),
                       hidden=np.zeros(k, bool), protect=np.zeros(k, bool), sex_over_pol=np.zeros(k, np.int8),
                       has_health=np.zeros(k, bool), h_sex=np.zeros(k, np.int8), h_comm=np.full(k, -1),
                       pol_upd=times_on(day, rng, k))
        self._settle_new_records(new, day, rng, health_cov=1.0)

    def _settle_newcomers(self, new: np.ndarray, day, rng) -> None:
        P = self.P
        P.pol_upd[new] = times_on(day, rng, len(new))
        self._settle_new_records(new, day, rng, health_cov=0.85)
        hs = np.unique(P.house[new][P.house[new] >= 0])
        self.touch("house", hs, day, rng)

    def _settle_new_records(self, new: np.ndarray, day, rng, health_cov: float) -> None:
        P = self.P
        self.dirty.setdefault("pop", set()).update(new.tolist())
        self._build_health(new, coverage=health_cov, rng=rng, day=day)
        hp = new[P.has_health[new]]
        P.h_upd[hp] = times_on(day, rng, len(hp))
        self.dirty.setdefault("health", set()).update(hp.tolist())
        recs = self._build_ss(new, rng=rng, day=day)
        self.SS.last_pay[recs] = np.where(self.SS.cents[recs] >= 0, self.SS.last_pay[recs], NAT_D)
        self.touch("ss", recs, day, rng)
        self._plant_uscc(recs, rng)
        self._plant_person_contras(new, rng, day)

    def _relocate(self, hhs: np.ndarray, day, rng) -> None:
        P, H = self.P, self.H
        counts = self.resident_counts()
        vac = np.nonzero((H.use == "4") & ~H.protect & (counts == 0))[0]
        rng.shuffle(vac)
        members = self._members(hhs)
        take = min(len(vac), len(hhs))
        for k in range(take):
            m = members[k]
            m = m[P.status[m] == 0]
            if len(m) == 0:
                continue
            old, new = P.house[m[0]], vac[k]
            P.house[m] = new
            P.comm[m] = H.comm[new]
            self.HH.house[hhs[k]] = new
            self.HH.comm[hhs[k]] = H.comm[new]
            if rng.random() < 0.4:
                H.use[new] = "1"
                H.owner[new] = m[P.rel[m] == ref.RELATION_HEAD][0] if (P.rel[m] == ref.RELATION_HEAD).any() else m[0]
            else:
                H.use[new] = "2"
            self.touch("house", np.array([new, old]), day, rng)
            self.touch_person(m, day, rng)
            hm = m[P.has_health[m]]
            P.h_comm[hm] = H.comm[new]
            self.touch("health", hm, day, rng)

    def _ss_night(self, prev, day, rng, f) -> None:
        P, SS = self.P, self.SS
        alive = P.status != 1
        # retirements: birthdays crossing the retirement age
        age_now, age_prev = age_on(P.birth, day), age_on(P.birth, prev)
        ra = retire_age(P.sex)
        ret = np.nonzero(alive & (age_now >= ra) & (age_prev < ra) & ~P.protect)[0]
        by_ss = self.group_by(SS.person, len(P))
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
                self.touch("ss", np.array([k]), day, rng)
            P.emp[p] = -1
        # job changes
        emps = np.nonzero(alive & (P.emp >= 0) & ~P.protect)[0]
        k = min(len(emps), int(rng.poisson(len(emps) * self.change_rate * 0.5)))
        if k:
            who = rng.choice(emps, k, replace=False)
            P.emp[who] = rng.choice(len(self.E), k, p=self.E.weight)
            for p in who:
                recs = [r for r in by_ss(p) if SS.emp[r] >= 0 and not SS.protect[r]]
                SS.emp[recs] = P.emp[p]
                self.touch("ss", np.array(recs, dtype=np.int64), day, rng)
        # contributions suspended / resumed (arrears, leave, re-employment)
        cand = np.nonzero(np.isin(SS.status, ["1", "2"]) & (SS.cents < 0) & ~SS.protect
                          & (P.status[SS.person] == 0) & ~P.protect[SS.person])[0]
        k = min(len(cand), int(rng.poisson(len(cand) * self.change_rate * 0.3)))
        if k:
            flip = rng.choice(cand, k, replace=False)
            SS.status[flip] = np.where(SS.status[flip] == "1", "2", "1").astype(object)
            self.touch("ss", flip, day, rng)
        # benefit payments on payday
        for pay in paydays_between(prev, day):
            alive_or_planted = (P.status[SS.person] != 1) | SS.pay_after_death
            paid = np.nonzero((SS.cents >= 0) & (SS.status == "1") & alive_or_planted)[0]
            SS.last_pay[paid] = pay
            self.touch("ss", paid, day, rng)

    def _civil_night(self, prev, day, rng, f) -> None:
        P, CV = self.P, self.CV
        active_cases = np.nonzero((CV.status == "ACTIVE") & ~CV.protect & (CV.atype != None))[0]  # noqa: E711
        k = min(len(active_cases), int(rng.poisson(max(len(active_cases) * self.change_rate, 0.2))))
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
            self.touch("civil", ch, day, rng)
        # new DIBAO cases
        heads = np.nonzero((P.rel == ref.RELATION_HEAD) & (P.status == 0) & ~P.protect)[0]
        k = min(len(heads), int(rng.poisson(max(len(active_cases) * self.change_rate * 0.2, 0.2))))
        if k:
            who = rng.choice(heads, k, replace=False)
            sizes = np.bincount(P.hh, minlength=len(self.HH))[P.hh[who]]
            self.new_cases(who, "DIBAO", (835 * 100 * sizes * rng.uniform(0.35, 1.0, k)).astype(np.int64), rng, day)
            self.dirty.setdefault("civil", set()).update(range(len(CV) - k, len(CV)))
        # old-age allowance at 80
        a_now, a_prev = age_on(P.birth, day), age_on(P.birth, prev)
        turn = np.nonzero((P.status == 0) & (a_now >= 80) & (a_prev < 80))[0]
        if len(turn):
            n0 = len(self.CV)
            self.new_cases(turn, "ELDERLY", np.full(len(turn), 10000), rng, day)
            self.dirty.setdefault("civil", set()).update(range(n0, len(self.CV)))

    def _incident_night(self, day, rng) -> None:
        I = self.I  # noqa: E741
        open_ = np.nonzero(I.status == "1")[0]
        close = open_[rng.random(len(open_)) < 0.35]
        I.status[close] = rng.choice(np.array(["2", "3"], dtype=object), len(close), p=[0.4, 0.6])
        self.touch("incident", close, day, rng)
        active = int(((self.P.status == 0) & ~self.P.hidden).sum())
        new = self.new_incidents(np.full(int(rng.poisson(active * 0.002)), day, dtype="M8[D]"), rng)
        self.dirty.setdefault("incident", set()).update(new.tolist())
