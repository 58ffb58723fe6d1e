"""Defect classes, their rates, and planting them into a delivery file's records.

Record-level defects are drawn per record *version*: a keyed hash of (seed, file kind, record
id, update time) decides whether and how a record version is damaged, so the same version
is delivered identically in an incremental and in a later full re-sync. At most one defect is
planted per record, and never on a record that carries a persistent plant (a cross-department
contradiction or a duplicate person), so each truth row is unambiguous.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from . import reference as ref
from .ids import legacy_15, with_bad_check
from .tables import NULL_SUFFIX, Table
from .writers import csv_line, json_line, row_values, xml_element

CORRECTED, QUARANTINED, FLAGGED, TOLERATED = "corrected", "quarantined", "flagged", "tolerated"

ACTIONS = {
    "id_lowercase_x": CORRECTED, "id_fullwidth": CORRECTED, "id_separators": CORRECTED, "id_15_digit": CORRECTED,
    "id_bad_check": QUARANTINED, "id_bad_birthdate": QUARANTINED, "id_bad_region": QUARANTINED,
    "id_empty": QUARANTINED,
    "name_spaces": CORRECTED, "name_middle_dot": CORRECTED, "name_traditional": TOLERATED, "name_empty": QUARANTINED,
    "code_as_label": CORRECTED, "code_unknown": FLAGGED, "date_layout": CORRECTED, "date_impossible": QUARANTINED,
    "date_future": QUARANTINED,
    "phone_format": CORRECTED, "phone_landline": FLAGGED, "phone_short": FLAGGED,
    "money_text": CORRECTED, "money_negative": QUARANTINED,
    "dup_exact": CORRECTED, "dup_version": CORRECTED, "dup_person_two_ids": FLAGGED,
    "broken_csv_short": QUARANTINED, "broken_csv_long": QUARANTINED, "broken_json": QUARANTINED,
    "broken_xml": QUARANTINED,
    "bom": CORRECTED, "encoding_utf8_as_gb18030": CORRECTED,
    "contra_deceased_benefit": FLAGGED, "contra_name_mismatch": FLAGGED, "contra_birthdate_mismatch": FLAGGED,
    "contra_id_birth_sex": FLAGGED, "contra_absent_from_police": FLAGGED, "contra_vacant_house_residents": FLAGGED,
    "contra_uscc_bad_check": FLAGGED,
}
FILE_LEVEL = ("bom", "encoding_utf8_as_gb18030")
PERSISTENT = ("dup_person_two_ids", "contra_deceased_benefit", "contra_name_mismatch", "contra_birthdate_mismatch",
              "contra_id_birth_sex", "contra_absent_from_police", "contra_vacant_house_residents",
              "contra_uscc_bad_check")


@dataclass(frozen=True)
class DefectRates:
    """Probability of each defect class per eligible record (per file for ``bom`` and
    ``encoding_utf8_as_gb18030``; per eligible person/house/enrolment for the persistent
    ``dup_person_two_ids`` and ``contra_*``). Defaults are realistic (0.2 %–2 %).

    >>> DefectRates().id_bad_check, DefectRates.none().id_bad_check
    (0.003, 0.0)
    """
    id_lowercase_x: float = 0.02        # eligible: numbers ending in X
    id_fullwidth: float = 0.003
    id_separators: float = 0.004
    id_15_digit: float = 0.004          # eligible: born 1900-1999
    id_bad_check: float = 0.003
    id_bad_birthdate: float = 0.002
    id_bad_region: float = 0.002
    id_empty: float = 0.003
    name_spaces: float = 0.006
    name_middle_dot: float = 0.02       # eligible: names with a middle dot
    name_traditional: float = 0.01      # eligible: names with a traditional variant; not police
    name_empty: float = 0.002
    code_as_label: float = 0.005
    code_unknown: float = 0.003
    date_layout: float = 0.006
    date_impossible: float = 0.002
    date_future: float = 0.002
    phone_format: float = 0.01
    phone_landline: float = 0.005
    phone_short: float = 0.003
    money_text: float = 0.01
    money_negative: float = 0.002
    dup_exact: float = 0.003
    dup_version: float = 0.004
    dup_person_two_ids: float = 0.003
    broken_csv_short: float = 0.002
    broken_csv_long: float = 0.002
    broken_json: float = 0.002
    broken_xml: float = 0.002
    bom: float = 0.02
    encoding_utf8_as_gb18030: float = 0.02
    contra_deceased_benefit: float = 0.02
    contra_name_mismatch: float = 0.003
    contra_birthdate_mismatch: float = 0.002
    contra_id_birth_sex: float = 0.002
    contra_absent_from_police: float = 0.003
    contra_vacant_house_residents: float = 0.005
    contra_uscc_bad_check: float = 0.005

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"DefectRates.{f.name} must be a probability in [0, 1], got {v!r}")

    @classmethod
    def none(cls) -> "DefectRates":
        """All rates zero: a clean delivery."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def scaled(cls, factor: float) -> "DefectRates":
        """Every default rate times ``factor`` (capped at 1)."""
        base = cls()
        return cls(**{f.name: min(1.0, getattr(base, f.name) * factor) for f in fields(cls)})


@dataclass(frozen=True)
class Spec:
    """Where each kind of defect can go in one entity's records."""
    id: str | None = None
    id_empty_ok: bool = True
    name: str | None = None
    traditional: bool = False
    sex: str | None = None
    sex_labels: tuple[tuple[str, ...], tuple[str, ...]] = (("男", "M"), ("女", "F"))
    codes: tuple[tuple[str, str], ...] = ()
    birth: str | None = None
    dates: tuple[str, ...] = ()
    compact_dates: bool = False
    phone: str | None = None
    money: str | None = None
    money_text: bool = False
    broken: tuple[str, ...] = ()
    ts: str = "updated_at"
    stale: str = ""
    address: str | None = None


SPECS = {
    ("police", "population"): Spec(id="GMSFHM", name="XM", sex="XBDM", birth="CSRQ", dates=("CSRQ", "ZXRQ"),
                                   compact_dates=True, phone="LXDH",
                                   codes=(("XBDM", "sex"), ("MZDM", "ethnicity"), ("YHZGXDM", "relation"),
                                          ("RYZTDM", "person_status")),
                                   broken=("broken_csv_short", "broken_csv_long"), ts="GXSJ", stale="phone",
                                   address="XZZ"),
    ("police", "houses"): Spec(id="FZGMSFHM", id_empty_ok=False, codes=(("FWYTDM", "house_use"),),
                               broken=("broken_csv_short", "broken_csv_long"), ts="GXSJ", stale="jzrs", address="DZ"),
    ("police", "incidents"): Spec(codes=(("AJLBDM", "incident_category"), ("CLZTDM", "handling_status")),
                                  broken=("broken_csv_short", "broken_csv_long"), ts="GXSJ", stale="incident",
                                  address="FSDZ"),
    ("civil_affairs", "assistance"): Spec(id="id_number", name="name", traditional=True, sex="gender",
                                          sex_labels=(("M", "1"), ("F", "2")),
                                          codes=(("assistance_type", "assistance_type"), ("status", "case_status")),
                                          birth="birth_date", dates=("birth_date", "start_date"),
                                          money="monthly_amount_yuan", money_text=True, broken=("broken_json",),
                                          stale="amount"),
    ("social_security", "insurance"): Spec(id="sfzh", name="xm", traditional=True,
                                           codes=(("insurance_type", "insurance_type"),
                                                  ("enrolment_status", "enrolment_status")),
                                           money="monthly_benefit", stale="enrolment"),
    ("health", "residents"): Spec(id="id_no", name="name", traditional=True, sex="sex_code",
                                  codes=(("sex_code", "sex"),), birth="birth_date",
                                  dates=("birth_date", "last_visit_date"), broken=("broken_xml",), stale="visit"),
}

ID_CLASSES = ("id_lowercase_x", "id_fullwidth", "id_separators", "id_15_digit", "id_bad_check", "id_bad_birthdate",
              "id_bad_region", "id_empty")
NAME_CLASSES = ("name_spaces", "name_middle_dot", "name_traditional", "name_empty")


def classes_for(spec: Spec) -> tuple[str, ...]:
    out: list[str] = []
    if spec.id:
        out += [c for c in ID_CLASSES if c != "id_empty" or spec.id_empty_ok]
    if spec.name:
        out += [c for c in NAME_CLASSES if c != "name_traditional" or spec.traditional]
    if spec.sex:
        out.append("code_as_label")
    if spec.codes:
        out.append("code_unknown")
    if spec.dates and spec.birth:
        out += ["date_layout", "date_impossible", "date_future"]
    if spec.phone:
        out += ["phone_format", "phone_landline", "phone_short"]
    if spec.money:
        out += (["money_text"] if spec.money_text else []) + ["money_negative"]
    out += ["dup_exact", "dup_version"]
    out += list(spec.broken)
    return tuple(out)


# ---------------------------------------------------------------- keyed hashing ----
_M1, _M2, _G = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + _G
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _salt(text: str) -> np.uint64:
    h = 1469598103934665603
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) % (1 << 64)
    return np.uint64(h)


def record_hash(seed: int, what: str, rseq: np.ndarray, version: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = _mix(np.full(len(rseq), np.uint64(seed % (1 << 64))) ^ _salt(what))
        x = _mix(x ^ rseq.astype(np.uint64))
        return _mix(x ^ version.astype(np.int64).astype(np.uint64))


def uniform(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


# ---------------------------------------------------------------- value transforms ----
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")  # digits only, as SPEC says
IMPOSSIBLE_MD = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31), (13, 1), (0, 10), (5, 0), (12, 32))


def _date_parts(s: str) -> tuple[int, int, int]:
    s = s.replace("-", "")
    return int(s[:4]), int(s[4:6]), int(s[6:8])


def _fmt_date(y: int, m: int, d: int, compact: bool) -> str:
    return f"{y:04d}{m:02d}{d:02d}" if compact else f"{y:04d}-{m:02d}-{d:02d}"


def date_layouts(value: str, compact: bool) -> list[str]:
    """Other layouts of the same date (none equal to the expected layout)."""
    y, m, d = _date_parts(value)
    if compact:
        out = [f"{y:04d}-{m:02d}-{d:02d}", f"{y:04d}/{m:02d}/{d:02d}", f"{y}-{m}-{d}"]
    else:
        out = [f"{y:04d}/{m:02d}/{d:02d}", f"{y:04d}{m:02d}{d:02d}", f"{y}.{m:02d}.{d:02d}"]
        if m < 10 or d < 10:
            out.append(f"{y}-{m}-{d}")
    expected = _fmt_date(y, m, d, compact)
    return [v for v in dict.fromkeys(out) if v != expected]


def impossible_date(value: str, k: int, compact: bool) -> str:
    y, _, _ = _date_parts(value)
    m, d = IMPOSSIBLE_MD[k % len(IMPOSSIBLE_MD)]
    return _fmt_date(y, m, d, compact)


def id_with_bad_birthdate(id18: str, k: int) -> str:
    from .ids import id_check_char
    m, d = IMPOSSIBLE_MD[k % len(IMPOSSIBLE_MD)]
    first17 = id18[:10] + f"{m:02d}{d:02d}" + id18[14:17]
    return first17 + id_check_char(first17)


def id_with_bad_region(id18: str, k: int) -> str:
    """The number with an address code no number encoding its birth date can carry (GB 11643: the
    county's code when the number was assigned, 1984 at the earliest): a prefix that is no GB/T 2260
    code, or a code abolished before max(birth year, 1984). The check character is recomputed.

    >>> id_with_bad_region("150105200103070013", 9)[:6], id_with_bad_region("150105195003070013", 9)[:6]
    ('152621', '990105')

    (152621 武川县 ended in 1996: wrong for a number of 2001, fine for one of 1950, so that one gets another.)
    """
    from .ids import id_check_char
    options = ref.BAD_REGIONS + ref.abolished_before(int(id18[6:10]))
    first17 = options[k % len(options)] + id18[6:17]
    return first17 + id_check_char(first17)


# ---------------------------------------------------------------- planting ----
@dataclass
class Planted:
    row: int            # index into the table's columns
    cls: str
    field: str
    detail: str
    orig: int = -1      # for duplicates: the row it duplicates


def plant_records(t: Table, rates: DefectRates, seed: int, batch_date: str) -> list[Planted]:
    """Plant record-level defects into ``t`` (in place: values, extra rows, broken rows, order)."""
    spec = SPECS[(t.source, t.entity)]
    n = len(t)
    classes = [c for c in classes_for(spec) if getattr(rates, c) > 0]
    total = sum(getattr(rates, c) for c in classes)
    if total > 1.0:
        raise ValueError(f"{t.source}/{t.entity}: record-level defect rates add up to {total:.3f} > 1")
    h = record_hash(seed, f"{t.source}/{t.entity}", t.rseq, t.version)
    u = uniform(h)
    var = _mix(h ^ np.uint64(0x5DEECE66D))
    planted: list[Planted] = []
    dups: list[tuple[int, str, int]] = []
    lo = 0.0
    text = t.fmt != "parquet"
    for cls in classes:
        r = getattr(rates, cls)
        idx = np.nonzero((u >= lo) & (u < lo + r) & ~t.protect)[0]
        lo += r
        for i in idx.tolist():
            v = int(var[i])
            if cls in ("dup_exact", "dup_version"):
                dups.append((i, cls, v))
                continue
            p = _apply(t, spec, cls, i, v, batch_date, text)
            if p is not None:
                planted.append(p)
    # duplicates: extra rows placed near their original
    keys = np.arange(n, dtype=np.float64)
    extra_keys = []
    copies = t.take_rows(np.array([d[0] for d in dups], dtype=np.int64)).tolist() if dups else []
    for j, ((i, cls, v), new) in enumerate(zip(dups, copies)):
        off = 0 if (v >> 8) % 3 else int((v >> 12) % 30)
        if cls == "dup_exact":
            extra_keys.append(min(i + off, n - 1) + 0.5 + j * 1e-9)
            planted.append(Planted(new, cls, "", "exact duplicate of the line at row {orig}", orig=i))
        else:
            field, delta = _make_stale(t, spec, new, v)
            before = (v >> 20) % 2 == 0
            extra_keys.append((i - 0.5 if before else min(i + off, n - 1) + 0.5) + j * 1e-9)
            planted.append(Planted(new, cls, field, f"older version ({delta // 3600} h earlier) of the record at "
                                   "row {orig}; the later one wins", orig=i))
    t.order = np.argsort(np.concatenate([keys, np.array(extra_keys, dtype=np.float64)]), kind="stable")
    return planted


def _set(t: Table, f: str, i: int, value) -> None:
    t.cols[f][i] = value


def _apply(t: Table, spec: Spec, cls: str, i: int, v: int, batch_date: str, text: bool) -> Planted | None:
    c = t.cols
    if cls.startswith("id_"):
        f = spec.id
        val = c[f][i]
        if not val or len(val) != 18:
            return None
        if cls == "id_lowercase_x":
            if not val.endswith("X"):
                return None
            new = val[:-1] + "x"
        elif cls == "id_fullwidth":
            new = val.translate(FULLWIDTH)
        elif cls == "id_separators":
            sep = " -"[v % 2]
            new = f"{val[:6]}{sep}{val[6:14]}{sep}{val[14:]}" if (v >> 3) % 2 else f"{val[:6]}{sep}{val[6:]}"
        elif cls == "id_15_digit":
            if val[6:8] != "19":
                return None
            new = legacy_15(val)
        elif cls == "id_bad_check":
            new = with_bad_check(val, v >> 4)
        elif cls == "id_bad_birthdate":
            new = id_with_bad_birthdate(val, v >> 4)
        elif cls == "id_bad_region":
            new = id_with_bad_region(val, v >> 4)
        else:  # id_empty
            new = None if (t.fmt in ("jsonl", "parquet") and (v >> 4) % 2) else ""
        _set(t, f, i, new)
        return Planted(i, cls, f, f"{f} delivered as {new!r}")
    if cls.startswith("name_"):
        f = spec.name
        val = c[f][i]
        if not val:
            return None
        if cls == "name_spaces":
            opts = [" " + val, val + " ", "\u3000" + val, val + "\u3000", val + "  "]
            if "·" not in val and len(val) >= 2:
                opts.append(val[0] + "\u3000" + val[1:])
            new = opts[v % len(opts)]
        elif cls == "name_middle_dot":
            if "·" not in val:
                return None
            new = val.replace("·", ".•"[v % 2])
        elif cls == "name_traditional":
            new = ref.to_traditional(val)
            if new == val:
                return None
        else:
            new = None if (t.fmt in ("jsonl", "parquet") and (v >> 4) % 2) else ""
        _set(t, f, i, new)
        return Planted(i, cls, f, f"{f} delivered as {new!r}")
    if cls == "code_as_label":
        f = spec.sex
        val = c[f][i]
        if val not in ("1", "2", "男", "女"):
            return None
        male = val in ("1", "男")
        labels = spec.sex_labels[0 if male else 1]
        new = labels[v % len(labels)]
        _set(t, f, i, new)
        return Planted(i, cls, f, f"label {new!r} where a code is expected")
    if cls == "code_unknown":
        f, code_list = spec.codes[v % len(spec.codes)]
        opts = ref.UNKNOWN_CODES[code_list]
        new = opts[(v >> 5) % len(opts)]
        _set(t, f, i, new)
        return Planted(i, cls, f, f"{new!r} is not in code list {code_list}")
    if cls == "date_layout":
        cand = [f for f in spec.dates if c[f][i]]
        if not cand:
            return None
        f = cand[v % len(cand)]
        opts = date_layouts(c[f][i], spec.compact_dates)
        new = opts[(v >> 4) % len(opts)]
        _set(t, f, i, new)
        return Planted(i, cls, f, f"date {new!r} in another layout")
    if cls in ("date_impossible", "date_future"):
        f = spec.birth
        val = c[f][i]
        if not val:
            return None
        if cls == "date_impossible":
            new = impossible_date(val, v >> 4, spec.compact_dates)
        else:
            d = np.datetime64(batch_date) + np.timedelta64(30 + (v >> 4) % 3000, "D")
            y, m, dd = str(d).split("-")
            new = _fmt_date(int(y), int(m), int(dd), spec.compact_dates)
        _set(t, f, i, new)
        return Planted(i, cls, f, f"{f} {new!r}")
    if cls.startswith("phone_"):
        f = spec.phone
        val = c[f][i]
        if not val or len(val) != 11:
            return None
        if cls == "phone_format":
            opts = ["+86 " + val, "+86" + val, f"{val[:3]} {val[3:7]} {val[7:]}", f"{val[:3]}-{val[3:7]}-{val[7:]}",
                    "86-" + val]
            new = opts[v % len(opts)]
        elif cls == "phone_landline":
            local = f"{6000000 + (v >> 8) % 3999999:07d}"
            new = ("0471-" + local) if v % 2 else ("0471" + local)
        else:
            new = val[: 11 - (1 + v % 4)]
        _set(t, f, i, new)
        return Planted(i, cls, f, f"phone {new!r}")
    if cls == "money_text":
        f = spec.money
        val = c[f][i]
        if not isinstance(val, int) or val < 0:
            return None
        yuan = f"{val // 100}.{val % 100:02d}"
        new = [f"{yuan}元", f"￥{yuan}", f"{yuan} 元"][v % 3]
        _set(t, f, i, new)
        return Planted(i, cls, f, f"amount as text {new!r}")
    if cls == "money_negative":
        f = spec.money
        if t.fmt == "parquet":
            if c[f + NULL_SUFFIX][i] or c[f][i] <= 0:
                return None
            c[f][i] = -c[f][i]
            return Planted(i, cls, f, f"negative amount {c[f][i] / 100:.2f}")
        val = c[f][i]
        if not isinstance(val, int) or val <= 0:
            return None
        _set(t, f, i, -val)
        return Planted(i, cls, f, f"negative amount -{val / 100:.2f}")
    if cls in ("broken_csv_short", "broken_csv_long"):
        vals = [str(x) for x in row_values(t, i)]
        nf = len(vals)
        if cls == "broken_csv_short":
            k = 1 + v % 3
            raw = csv_line(vals[: nf - k])
            detail = f"{nf - k} fields instead of {nf}"
        else:
            a = t.fields.index(spec.address) if spec.address else -1
            addr = vals[a] if a >= 0 else ""
            if a >= 0 and "号" in addr[:-1] and v % 4:
                cut = addr.index("号") + 1
                vals = vals[:a] + [addr[:cut], addr[cut:]] + vals[a + 1:]
                detail = f"unquoted comma in {spec.address}: {nf + 1} fields instead of {nf}"
            else:
                vals = vals + [""]
                detail = f"trailing separator: {nf + 1} fields instead of {nf}"
            raw = csv_line(vals)
        t.raw[i] = raw
        return Planted(i, cls, "", detail)
    if cls == "broken_json":
        line = json_line(t, i)
        cut = max(2, int(len(line) * (0.3 + (v % 50) / 100)))
        t.raw[i] = line[:cut]
        return Planted(i, cls, "", f"line truncated after {cut} characters")
    if cls == "broken_xml":
        el = xml_element(t, i)
        tags = ["name", "birth_date", "community_code", "updated_at", "sex_code"]
        tag = tags[v % len(tags)]
        if (v >> 4) % 2:
            el = el.replace(f"</{tag}>", f"</{tag[:-1]}>", 1)
            detail = f"mismatched closing tag </{tag[:-1]}> for <{tag}>"
        else:
            el = el.replace(f"</{tag}>", "", 1)
            detail = f"<{tag}> not closed"
        t.raw[i] = el
        return Planted(i, cls, "", detail)
    raise ValueError(f"unknown defect class {cls}")


def _make_stale(t: Table, spec: Spec, i: int, v: int) -> tuple[str, int]:
    """Turn extra row ``i`` into an older version of its record; returns (field changed, age s)."""
    from .store import iso_offset_ts, local_ts
    c = t.cols
    delta = 3600 * (1 + (v >> 24) % (24 * 60))
    t.version[i] = t.version[i] - delta
    ts = np.array([t.version[i]], dtype="M8[s]")
    if t.fmt == "parquet":
        c[spec.ts][i] = (ts.astype("M8[ms]") - np.timedelta64(8, "h"))[0]
    elif t.source == "civil_affairs":
        c[spec.ts][i] = iso_offset_ts(ts)[0]
    else:
        c[spec.ts][i] = local_ts(ts)[0]
    k = spec.stale
    if k == "phone":
        p = c["LXDH"][i]
        old = (int(p[3:]) + 1 + (v >> 8) % 9999999) % 10 ** 8 if len(p) == 11 else 0
        c["LXDH"][i] = p[:3] + f"{old:08d}" if len(p) == 11 else "13900000000"
        return "LXDH", delta
    if k == "jzrs":
        c["JZRS"][i] = str(int(c["JZRS"][i]) + 1)
        return "JZRS", delta
    if k == "incident":
        if c["CLZTDM"][i] != "1":
            c["CLZTDM"][i] = "1"
            return "CLZTDM", delta
        c["AJLBDM"][i] = "99" if c["AJLBDM"][i] != "99" else "01"
        return "AJLBDM", delta
    if k == "amount":
        val = c["monthly_amount_yuan"][i]
        if isinstance(val, int) and val > 0:
            c["monthly_amount_yuan"][i] = int(val * 0.9)
            return "monthly_amount_yuan", delta
        c["status"][i] = "ACTIVE" if c["status"][i] != "ACTIVE" else "SUSPENDED"
        return "status", delta
    if k == "enrolment":
        c["enrolment_status"][i] = "2" if c["enrolment_status"][i] != "2" else "1"
        return "enrolment_status", delta
    if k == "visit":
        lv = c["last_visit_date"][i]
        if lv:
            d = np.datetime64(lv) - np.timedelta64(30 + (v >> 8) % 300, "D")
            c["last_visit_date"][i] = str(d)
        else:
            c["family_doctor_team"][i] = "" if c["family_doctor_team"][i] else "T001"
            return "family_doctor_team", delta
        return "last_visit_date", delta
    raise ValueError(f"no stale rule {k!r}")
