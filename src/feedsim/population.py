"""The simulated district: persons, households, houses, places, and how they change night by night.

``World`` holds the true state (who lives where, who died when: the police population and house
registers are cut from it) and each department's own records of it, which the recorders of
``recorders`` build and evolve (health, civil affairs, social security, police incidents,
employers) and the planter of ``contradictions`` makes disagree. ``World.advance(day)`` moves one
night on and remembers which records changed, so that an incremental delivery can be cut from it.
The world owns the state and the order of the draws: everything is drawn from numpy generators
seeded from the run's seed, the world's own while it is built and one per night in ``advance``.
"""
from __future__ import annotations

from math import ceil

import numpy as np

from . import reference as ref
from .contradictions import Contra, ContradictionPlanter
from .ids import make_id_numbers, make_mobiles
from .recorders import CivilAffairs, Employers, Health, Incidents, SocialSecurity
from .store import DAY, Store, age_on, group_by, times_on

TEMPLATES = (("H", 0.24), ("HS", 0.20), ("HC", 0.05), ("HP", 0.03), ("HSC", 0.22), ("HCC", 0.02),
             ("HSP", 0.03), ("HSO", 0.01), ("HSCC", 0.07), ("HSCP", 0.04), ("HSCCP", 0.02),
             ("HSCPP", 0.025), ("HSCCPP", 0.015))
ROLE_REL = {"H": ref.RELATION_HEAD, "S": ref.RELATION_SPOUSE, "C": ref.RELATION_CHILD,
            "P": ref.RELATION_PARENT, "O": ref.RELATION_OTHER}
UNIVERSITIES = ("内蒙古大学", "内蒙古农业大学", "内蒙古财经大学", "内蒙古师范大学", "内蒙古医科大学")


def annual_mortality(age: np.ndarray) -> np.ndarray:
    """A Gompertz-like mortality curve (per year), with infant mortality."""
    q = 0.00022 * np.exp(0.088 * (np.clip(age, 0, 110) - 20.0))
    return np.clip(np.where(age < 1, 0.004, q), 0.0, 0.45)


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


class World:
    """The true district and each department's records of it.

    Stores: persons ``P`` (with the health file's columns), households ``HH``, houses ``H``,
    compounds ``Cmp``, communities ``C``; employers ``E``, civil affairs cases ``CV``, insurance
    enrolments ``SS``, incidents ``I``; the planted duplicates ``PX`` (police) and ``HX`` (health).
    ``contras`` lists the planted contradictions; ``dirty`` the records changed tonight, per kind.
    """

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
        self.employers, self.health, self.civil = Employers(self), Health(self), CivilAffairs(self)
        self.ss, self.incidents = SocialSecurity(self), Incidents(self)
        self.planter = ContradictionPlanter(self)
        self._build_places()
        self._empty_places()
        self._build_people(residents)
        self._history()
        self.employers.build()
        self.health.register(np.arange(len(self.P)))
        self.civil.build()
        self.ss.build()
        self.planter.plant()
        self.incidents.build()  # after the plants: incidents involve only registered, unplanted persons
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
        phone = make_mobiles(n, rng)
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
            P.phone[who] = make_mobiles(k, rng)
            self.touch_person(who, day, rng)
        # --- the departments' own business: health visits, benefits and jobs, cases, incidents
        self.health.night(day, rng)
        self.ss.night(prev, day, rng)
        self.civil.night(prev, day, rng)
        self.incidents.night(day, rng)
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
        # civil affairs registers the death; the open cases and enrolments end — unless the
        # planter keeps a pension paid or a case ACTIVE (a contradiction to find)
        self.civil.register_deaths_tonight(dying, day, rng)
        by_cv, by_ss = group_by(self.CV.person), group_by(self.SS.person)
        plant = rng.random(len(dying)) < self.rates.contra_deceased_benefit
        for p, pl in zip(dying, plant):
            cases = self.civil.open_cases(by_cv(p))
            if pl:
                self.planter.benefit_at_death(p, self.ss.paid_pensions(by_ss(p)), cases, rng)
            self.civil.end_cases(cases, day, rng)
            self.ss.terminate_after_death(by_ss(p), day, rng)

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
        self.dirty.setdefault("pop", set()).update(new.tolist())
        self.health.register_tonight(new, health_cov, day, rng)
        recs = self.ss.enrol_tonight(new, day, rng)
        self.planter.uscc(recs, rng)
        self.planter.person_contras(new, rng, day)

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

