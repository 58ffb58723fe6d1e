"""The clean stage (bronze → silver): every delivered field → its data-element standard, with the
rule hits that say what was done; then duplicates, versions against silver, and the quarantine
rows. Pure Column/DataFrame functions of the rule catalogue's values (``rules``), the entity
declarations and a keyring; the job (read → transform → write) is ``jobs/clean.py``.

Each element has a standardiser that returns the canonical value and the conditions under which
each rule of ``conf/rules.yaml`` fires. The rule catalogue decides the action (correct, flag,
quarantine) and whether the rule runs at all; the code only detects. Findings never carry the
plaintext of an L3/L4 field: ``before``/``after`` are kept for L1/L2 fields only.

    >>> cleaned = standardise(bronze_df, catalog().entity("police", "population"), keyring,
    ...                       "2026-11-27", regions_df, load_rules())                 # doctest: +SKIP
    >>> cleaned.select("record_id", "citizen_id__tok", "_findings", "_quarantine")    # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..crypto import Keyring, decrypt, encrypt, hmac_token
from ..refdata import FIRST_ISSUE_YEAR, regions, traditional_to_simplified
from ..rules import Rule
from ..schemas import Entity, Field, catalog
from ..standards import citizen_id_lifted, citizen_id_normalised, citizen_id_stripped, id_check_char
from .bronze import line_of

ID_SEPARATORS = r"[\s\u3000\-\.·]"
NAME_SPACES = r"[\s\u3000]"
NAME_DOTS, MIDDLE_DOT = ".•・‧∙", "·"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"   # GB 32100: no I, O, Z, S, V
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

FINDING = T.StructType([T.StructField(n, T.StringType()) for n in
                        ("rule_id", "field", "action", "change", "before", "after")])


@dataclass
class Std:
    """A field's standardised value, its rule hits (rule id, condition, change) and extra columns.
    ``pre``: intermediate columns, materialised in order before value/hits/extra are evaluated —
    they refer to them by name, so no sub-expression (decrypt, regex) is copied into many places."""
    value: Column
    hits: list[tuple[str, Column, str]] = field(default_factory=list)
    extra: dict[str, Column] = field(default_factory=dict)
    pre: list[tuple[str, Column]] = field(default_factory=list)


def _tmp(f: Field, key: str) -> str:
    return f"__{f.name}_{key}"


def _blank_to_null(c: Column) -> Column:
    t = F.trim(c)
    return F.when(t == "", F.lit(None)).otherwise(t)


def _strict_date(text: Column, pattern: str) -> Column:
    """Date from text in ``pattern``, null when impossible (e.g. 30 February) — no exceptions."""
    d = F.try_to_timestamp(text, F.lit(pattern)).cast("date")
    return F.when(F.date_format(d, pattern) == text, d)


# ------------------------------------------------------------------ identity numbers

def region_table(spark) -> DataFrame:
    """GB/T 2260 codes with their validity years (python-stdnum's table), one row per code."""
    rows = [(c, s, e) for c, s, e in regions()]
    df = spark.createDataFrame(rows, "code string, start int, end int")
    return df.groupBy("code").agg(F.collect_list(F.struct("start", "end")).alias("spans"))


def with_region_check(df: DataFrame, f: Field, norm_col: str, regions_df: DataFrame, as_of_year: int) -> DataFrame:
    """Add ``__<field>_region_ok``: the number's address code is a GB/T 2260 code that was in force
    at some time the number can have been assigned — between max(encoded birth year, 1984) and
    ``as_of_year`` (the batch date's year); the same reading as ``refdata.valid_region``.

    GB 11643 makes the address code the county of the household registration when the number was
    assigned (first issue 1984–1985), not the county of the birth year: a holder born in 1943 who
    registered in a county created in 1983 carries its code, and keeps it when the county is later
    renamed or merged. Unknown codes, codes abolished before the holder could have a number and
    codes created after ``as_of_year`` are not valid.

        >>> df = with_region_check(df, f, "__GMSFHM_n", region_table(spark), 2026)      # doctest: +SKIP
        >>> # 150105 (from 1983) born 1943 → true; 152621 (until 1996) born 2001 → false; 990105 → false
    """
    key, year, rc, rs = (_tmp(f, k) for k in ("rk", "ry", "rc", "rs"))
    df = df.withColumn(key, F.substring(F.col(norm_col), 1, 6)).withColumn(
        year, F.substring(F.col(norm_col), 7, 4).try_cast("int"))
    r = regions_df.select(F.col("code").alias(rc), F.col("spans").alias(rs))
    df = df.join(F.broadcast(r), F.col(key) == F.col(rc), "left")
    first, last = F.greatest(F.col(year), F.lit(FIRST_ISSUE_YEAR)), F.lit(as_of_year)
    ok = (first <= last) & F.exists(F.col(rs), lambda s: (s["start"].isNull() | (s["start"] <= last))
                                    & (s["end"].isNull() | (s["end"] >= first)))
    return df.withColumn(_tmp(f, "region_ok"), F.coalesce(ok, F.lit(False))).drop(key, year, rc, rs)


def id_pre(f: Field, raw: Column) -> list[tuple[str, Column]]:
    s = _tmp(f, "s")
    return [(s, citizen_id_stripped(raw)), (_tmp(f, "n"), citizen_id_lifted(F.col(s)))]


def std_citizen_id(f: Field, raw: Column, batch_date: date, keyring: Keyring) -> Std:
    n, s, ok, chk, birth = (F.col(_tmp(f, k)) for k in ("n", "s", "region_ok", "chk", "birth"))
    pre = [(_tmp(f, "chk"), id_check_char(F.substring(n, 1, 17))),
           (_tmp(f, "birth"), _strict_date(F.substring(n, 7, 8), "yyyyMMdd"))]
    empty = n.isNull()
    fmt_bad = ~empty & ~n.rlike(r"^\d{17}[\dX]$")
    check_bad = ~empty & ~fmt_bad & (F.substring(n, 18, 1) != chk)
    birth_bad = ~empty & ~fmt_bad & ~check_bad & (birth.isNull() | (birth > F.lit(batch_date)))
    region_bad = ~empty & ~fmt_bad & ~check_bad & ~birth_bad & ~ok
    pre.append((_tmp(f, "valid"), ~empty & ~fmt_bad & ~check_bad & ~birth_bad & ~region_bad))
    pre.append((_tmp(f, "bad"), F.when(empty, "empty").when(fmt_bad, "format").when(check_bad, "check")
                .when(birth_bad, "birth").when(region_bad, "region")))
    valid, bad = F.col(_tmp(f, "valid")), F.col(_tmp(f, "bad"))
    hits = [("ID_FULLWIDTH", raw.rlike("[０-９Ｘｘ]"), "full-width characters → ASCII"),
            ("ID_SEPARATOR", raw.rlike(ID_SEPARATORS), "separators removed"),
            ("ID_LOWER_X", raw.rlike("[xｘ]"), "x → X"),
            ("ID_LEGACY_15", s.rlike(r"^\d{15}$"), "15 digits → 18 (century 19 + check character)"),
            ("ID_FORMAT", bad == "format", "not 17 digits + check character"),
            ("ID_CHECK", bad == "check", "check character does not match"),
            ("ID_BIRTH", bad == "birth", "encoded birth date impossible or in the future"),
            ("ID_REGION", bad == "region", "address code not a GB/T 2260 code in force between max(birth year, "
             "1984) and the batch year")]
    if f.required:
        hits.append(("ID_EMPTY", bad == "empty", "empty"))
    sn = f.silver_name
    return Std(n, hits, {f"{sn}__tok": F.when(valid, hmac_token(n, keyring)), f"{sn}__valid": valid,
                         f"{sn}__birth": F.when(valid, birth),
                         f"{sn}__sex": F.when(valid, F.when(F.substring(n, 17, 1).try_cast("int") % 2 == 1, "1")
                                              .otherwise("2"))}, pre)


def std_citizen_id_list(f: Field, raw: Column, keyring: Keyring) -> Std:
    """``;``-separated numbers: normalised; invalid ones flagged and not tokenised (no region join)."""
    parts_c = _tmp(f, "parts")
    pre = [(parts_c, F.filter(F.transform(F.split(F.coalesce(raw, F.lit("")), ";"), lambda p: citizen_id_normalised(p)),
                              lambda p: p.isNotNull()))]
    parts = F.col(parts_c)
    ok = lambda p: p.rlike(r"^\d{17}[\dX]$") & (F.substring(p, 18, 1) == id_check_char(F.substring(p, 1, 17)))  # noqa: E731
    value = F.when(F.size(parts) > 0, F.concat_ws(";", parts))
    hits = [("ID_FULLWIDTH", raw.rlike("[０-９Ｘｘ]"), "full-width characters → ASCII"),
            ("ID_LOWER_X", raw.rlike("[xｘ]"), "x → X"),
            ("ID_LIST_INVALID", F.exists(parts, lambda p: ~ok(p)), "invalid number(s) not linked")]
    toks = F.transform(F.filter(parts, ok), lambda p: hmac_token(p, keyring))
    return Std(value, hits, {f"{f.silver_name}__tok": toks}, pre)


# ------------------------------------------------------------------ names, codes, dates ...

def simplified(c: Column) -> Column:
    trad, simp = traditional_to_simplified()
    return F.translate(c, trad, simp)


def std_name(f: Field, raw: Column, keyring: Keyring) -> Std:
    v0 = F.translate(F.regexp_replace(raw, NAME_SPACES, ""), NAME_DOTS, MIDDLE_DOT * len(NAME_DOTS))
    pre = [(_tmp(f, "v"), F.when(v0 == "", F.lit(None)).otherwise(v0))]
    v = F.col(_tmp(f, "v"))
    pre.append((_tmp(f, "cmp"), simplified(v)))
    hits = [("NAME_SPACE", raw.rlike(NAME_SPACES), "spaces removed"),
            ("NAME_DOT", raw.rlike("[" + NAME_DOTS + "]"), "middle dot unified to ·")]
    if f.required:
        hits.append(("NAME_EMPTY", v.isNull(), "empty"))
    # comparison form: traditional → simplified (the delivered form is what is kept)
    cmp = F.col(_tmp(f, "cmp"))
    return Std(v, hits, {f"{f.silver_name}__mtok": hmac_token(cmp, keyring), f"{f.silver_name}__cmp": cmp}, pre)


def std_code(f: Field, raw: Column) -> Std:
    cl = catalog().code_list(f.element.code_list)
    codes = list(cl.codes)
    mapping = {**cl.labels, **{lab: code for code, lab in cl.codes.items()}}
    pre = [(_tmp(f, "v"), _blank_to_null(raw))]
    v = F.col(_tmp(f, "v"))
    pre.append((_tmp(f, "m"), F.create_map(*[F.lit(x) for kv in mapping.items() for x in kv])[v]
                if mapping else F.lit(None).cast("string")))
    mapped = F.col(_tmp(f, "m"))
    is_code = v.isin(codes)
    native = v.isin(list(cl.codes.values())) if f.form == "label" else F.lit(False)
    value = F.when(is_code, v).when(mapped.isNotNull(), mapped).otherwise(v)
    if f.form == "label":   # delivered as labels (男/女): a code or a foreign label is the defect
        label_hit = v.isNotNull() & (is_code | (mapped.isNotNull() & ~native))
        change = "code or foreign label → code (field is delivered as labels)"
    else:
        label_hit = v.isNotNull() & ~is_code & mapped.isNotNull()
        change = "label → code"
    hits = [("CODE_UNKNOWN", v.isNotNull() & ~is_code & mapped.isNull(), f"not in code list {cl.name}")]
    if cl.labels:
        hits.append(("CODE_LABEL", label_hit, change))
    return Std(value, hits, {}, pre)


def std_date(f: Field, raw: Column, batch_date: date) -> Std:
    sc = _tmp(f, "s")
    pre = [(sc, _blank_to_null(raw.cast("string")))]
    s = F.col(sc)
    pre.append((_tmp(f, "c"), F.regexp_extract(s, r"^(\d{4})(\d{2})(\d{2})$", 0) != ""))
    compact = F.col(_tmp(f, "c"))
    y = F.when(compact, F.substring(s, 1, 4)).otherwise(
        F.regexp_extract(s, r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$", 1)
    )
    m = F.when(compact, F.substring(s, 5, 2)).otherwise(
        F.regexp_extract(s, r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$", 2)
    )
    d = F.when(compact, F.substring(s, 7, 2)).otherwise(
        F.regexp_extract(s, r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$", 3)
    )
    pre.append((_tmp(f, "canon"), F.when(y != "", F.concat(y, F.lit("-"), F.lpad(m, 2, "0"), F.lit("-"),
                                                             F.lpad(d, 2, "0")))))
    pre.append((_tmp(f, "d"), _strict_date(F.col(_tmp(f, "canon")), "yyyy-MM-dd")))
    value = F.col(_tmp(f, "d"))
    hits = [("DATE_INVALID", s.isNotNull() & value.isNull(), "impossible or unreadable date")]
    if f.form:
        hits.append(("DATE_LAYOUT", value.isNotNull() & (s != F.date_format(value, f.form)),
                     f"layout converted to {f.form}"))
    hits.append(("DATE_FUTURE", value > F.lit(batch_date), "after the batch date"))
    return Std(value, hits, {}, pre)


def std_timestamp(f: Field, raw: Column, dtype: T.DataType) -> Std:
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return Std(raw.cast("timestamp"))
    s = _blank_to_null(raw.cast("string"))
    pre = [(_tmp(f, "t"), F.try_to_timestamp(s, F.lit(f.form or "yyyy-MM-dd HH:mm:ss")))]
    value = F.col(_tmp(f, "t"))
    return Std(
        value,
        [("TIME_INVALID", raw.isNotNull() & (F.trim(raw) != "") & value.isNull(), "unreadable timestamp")],
        {},
        pre,
    )


def std_phone(f: Field, raw: Column) -> Std:
    pre = [(_tmp(f, "s"), _blank_to_null(raw))]
    s = F.col(_tmp(f, "s"))
    pre.append((_tmp(f, "dg"), F.regexp_replace(s, r"[\s\u3000\-()]", "")))
    digits = F.col(_tmp(f, "dg"))
    pre.append((_tmp(f, "mob"), F.regexp_extract(digits, r"^(?:\+?86)?(1[3-9]\d{9})$", 1)))
    mobile = F.col(_tmp(f, "mob"))
    is_mobile = mobile != ""
    landline = ~is_mobile & digits.rlike(r"^0\d{9,11}$")
    value = F.when(is_mobile, mobile).otherwise(s)
    return Std(value, [("PHONE_FORMAT", is_mobile & (s != mobile), "+86 / spaces / dashes removed"),
                       ("PHONE_LANDLINE", landline, "landline kept as a landline"),
                       ("PHONE_INVALID", s.isNotNull() & ~is_mobile & ~landline, "not a valid mobile number")], {}, pre)


def std_money(f: Field, raw: Column) -> Std:
    pre = [(_tmp(f, "s"), _blank_to_null(raw.cast("string")))]
    s = F.col(_tmp(f, "s"))
    pre.append((_tmp(f, "num"), F.regexp_replace(s, r"[元￥¥,\s\u3000]", "")))
    num = F.col(_tmp(f, "num"))
    pre.append((_tmp(f, "v"), num.try_cast(T.DecimalType(12, 2))))
    value = F.col(_tmp(f, "v"))
    return Std(value, [("MONEY_TEXT", value.isNotNull() & (num != s), "amount text parsed"),
                       ("MONEY_INVALID", s.isNotNull() & value.isNull(), "cannot be parsed"),
                       ("MONEY_NEGATIVE", value < 0, "negative")], {}, pre)


def uscc_valid(c: Column) -> Column:
    """GB 32100-2015: 18 characters of its alphabet, check character = (31 − Σ wᵢ·vᵢ mod 31) mod 31.
    Pass a column reference: ``c`` is used 19 times."""
    alphabet = F.array(*[F.lit(ch) for ch in USCC_ALPHABET])
    total = sum((F.array_position(alphabet, F.substring(c, i + 1, 1)) - 1) * w for i, w in enumerate(USCC_WEIGHTS))
    check = F.try_element_at(alphabet, ((F.lit(31) - total % 31) % 31 + 1).cast("int"))
    return c.rlike(r"^[0-9A-HJ-NPQRTUWXY]{18}$") & (F.substring(c, 18, 1) == check)


def std_uscc(f: Field, raw: Column) -> Std:
    pre = [(_tmp(f, "v"), F.upper(_blank_to_null(raw)))]
    v = F.col(_tmp(f, "v"))
    pre.append((_tmp(f, "ok"), F.when(v.isNotNull(), uscc_valid(v))))
    ok = F.col(_tmp(f, "ok"))
    return Std(v, [("USCC_CHECK", v.isNotNull() & ~ok, "fails GB 32100 character set or check")],
               {f"{f.silver_name}__valid": ok}, pre)


def std_int(f: Field, raw: Column) -> Std:
    s = _blank_to_null(raw.cast("string"))
    pre = [(_tmp(f, "v"), s.try_cast("int"))]
    value = F.col(_tmp(f, "v"))
    return Std(F.when(value >= 0, value), [("NUMBER_INVALID", raw.isNotNull() & (F.trim(raw) != "")
                                            & (value.isNull() | (value < 0)), "not a non-negative integer")], {}, pre)


def std_list(f: Field, raw: Column) -> Std:
    parts = F.filter(F.transform(F.split(F.coalesce(raw, F.lit("")), f.element.separator or ";"), F.trim),
                     lambda p: p != "")
    pre = [(_tmp(f, "parts"), parts)]
    p = F.col(_tmp(f, "parts"))
    return Std(F.when(F.size(p) > 0, F.concat_ws(";", p)), [], {}, pre)


def std_text(f: Field, raw: Column) -> Std:
    return Std(_blank_to_null(raw.cast("string")))


def standardiser(f: Field, raw: Column, dtype: T.DataType, batch_date: date, keyring: Keyring) -> Std:
    el = f.element
    if el.name == "citizen_id":
        return std_citizen_id(f, raw, batch_date, keyring)
    if el.name == "citizen_id_list":
        return std_citizen_id_list(f, raw, keyring)
    if el.name == "person_name":
        return std_name(f, raw, keyring)
    if el.code_list:
        return std_code(f, raw)
    if el.type == "date":
        return std_date(f, raw, batch_date)
    if el.type == "timestamp":
        return std_timestamp(f, raw, dtype)
    if el.name == "phone":
        return std_phone(f, raw)
    if el.name == "money_yuan":
        return std_money(f, raw)
    if el.name == "uscc":
        return std_uscc(f, raw)
    if el.type == "int":
        return std_int(f, raw)
    if el.type.startswith("array"):
        return std_list(f, raw)
    return std_text(f, raw)


# ------------------------------------------------------------------ the engine

def _applies(rules: dict[str, Rule], rule_id: str, f: Field) -> bool:
    r = rules.get(rule_id)
    if r is None:
        raise KeyError(f"detector {rule_id} has no entry in conf/rules.yaml")
    return r.enabled and (not r.elements or f.element.name in r.elements) and (f.required or not r.required_only)


def _stage(df: DataFrame, cols: list[tuple[str, Column]]) -> DataFrame:
    """Add columns in one projection (each stage is a separate projection, so later stages refer
    to earlier ones by name instead of copying their expressions)."""
    return df.select("*", *[c.alias(n) for n, c in cols]) if cols else df


def standardise(df: DataFrame, entity: Entity, keyring: Keyring, batch_date: str, regions_df: DataFrame,
                rules: dict[str, Rule]) -> DataFrame:
    """Bronze rows of one entity → standardised columns (silver names, plaintext, in memory only),
    ``_findings`` (array of rule hits), ``_quarantine`` (the first quarantine hit or null) and
    ``_content_hmac`` (keyed digest of the standardised record, to recognise exact duplicates)."""
    bd = date.fromisoformat(batch_date)
    dtypes = {f.name: df.schema[f.name].dataType for f in entity.fields}
    timestamp = lambda f: isinstance(dtypes[f.name], (T.TimestampType, T.TimestampNTZType))  # noqa: E731
    # stage 1: plaintext of every field, once (decrypt is the expensive part)
    df = _stage(df, [(_tmp(f, "raw"), (decrypt(F.col(f.name), keyring) if f.is_encrypted else F.col(f.name))
                      if timestamp(f) else (decrypt(F.col(f.name), keyring) if f.is_encrypted
                                            else F.col(f.name)).cast("string")) for f in entity.fields])
    raw = {f.name: F.col(_tmp(f, "raw")) for f in entity.fields}
    # stage 2: identity numbers normalised, then the region join
    ids = [f for f in entity.fields if f.element.name == "citizen_id"]
    for step in (0, 1):
        df = _stage(df, [id_pre(f, raw[f.name])[step] for f in ids])
    for f in ids:
        df = with_region_check(df, f, _tmp(f, "n"), regions_df, bd.year)
    stds = {f.name: standardiser(f, raw[f.name], dtypes[f.name], bd, keyring) for f in entity.fields}
    # stage 3..: each standardiser's intermediates, level by level
    depth = max((len(s.pre) for s in stds.values()), default=0)
    for level in range(depth):
        df = _stage(df, [s.pre[level] for s in stds.values() if len(s.pre) > level])
    outs: dict[str, Column] = {}
    hits: list[Column] = []
    for f in entity.fields:
        std = stds[f.name]
        outs[f.silver_name] = std.value
        outs.update(std.extra)
        secret = f.is_encrypted
        for rule_id, cond, change in std.hits:
            if not _applies(rules, rule_id, f):
                continue
            before = F.lit(None).cast("string") if secret else raw[f.name].cast("string")
            after = F.lit(None).cast("string") if secret else std.value.cast("string")
            hits.append(F.when(F.coalesce(cond, F.lit(False)), F.struct(
                F.lit(rule_id).alias("rule_id"), F.lit(f.name).alias("field"),
                F.lit(rules[rule_id].action).alias("action"), F.lit(change).alias("change"),
                before.alias("before"), after.alias("after"))))
    findings = F.filter(F.array(*hits), lambda h: h.isNotNull()) if hits else F.array().cast(T.ArrayType(FINDING))
    keep = [c for c in df.columns if c.startswith("_") and not c.startswith("__")]
    out = df.select(*[F.col(c) for c in keep], *[v.alias(k) for k, v in outs.items()], findings.alias("_findings"))
    out = out.withColumn("_quarantine", F.try_element_at(F.filter("_findings", lambda h: h["action"] == "quarantine"),
                                                         F.lit(1)))
    values = [F.coalesce(F.col(f.silver_name).cast("string"), F.lit("\u0000")) for f in entity.fields]
    return out.withColumn("_content_hmac", hmac_token(F.concat_ws("\u0001", *values), keyring))


def person_hint(name_cmp: Column, birth: Column, keyring: Keyring) -> Column:
    """Keyed digest of (simplified name, birth date): links a record whose identity number is
    unusable to the same person elsewhere, without storing either value."""
    return F.when(name_cmp.isNotNull() & birth.isNotNull(),
                  hmac_token(F.concat_ws("|", name_cmp, birth.cast("string")), keyring))


def protect(df: DataFrame, entity: Entity, keyring: Keyring) -> DataFrame:
    """Encrypt every L3/L4 silver column (its standardised string form) before anything is written."""
    for f in entity.encrypted_fields:
        df = df.withColumn(f.silver_name, encrypt(F.col(f.silver_name).cast("string"), keyring))
    return df


# ------------------------------------------------------------------ records: duplicates, versions, quarantine

def with_person_hint(df: DataFrame, entity: Entity, keyring: Keyring) -> DataFrame:
    if entity.person_id_field is None or not any(f.silver_name == "name" for f in entity.fields):
        return df
    birth = F.col("birth_date") if "birth_date" in df.columns else F.lit(None).cast("date")
    return df.withColumn("person_hint", person_hint(F.col("name__cmp"), F.coalesce(birth, F.col("citizen_id__birth")),
                                                    keyring))


def silver_rows(bronze: DataFrame, entity: Entity, keyring: Keyring, batch_date: str, regions_df: DataFrame,
                rules: dict[str, Rule], run_id: str, loaded_at: datetime) -> DataFrame:
    """One night's bronze rows of an entity as the clean stage writes them: standardised
    (``standardise``), with the person hint and the run's lineage, L3/L4 encrypted (``protect``);
    ``_findings`` and ``_quarantine`` still attached."""
    std = with_person_hint(standardise(bronze, entity, keyring, batch_date, regions_df, rules), entity, keyring)
    std = std.withColumn("_run_id", F.lit(run_id)).withColumn("_loaded_at", F.lit(loaded_at))
    return protect(std, entity, keyring)


def findings_rows(std: DataFrame, run_id: str) -> DataFrame:
    """One row per rule hit of the standardisation."""
    return (std.select("_source", "_entity", "_batch_date", "_file", "_row", "record_id",
                       F.explode("_findings").alias("h"))
            .select("_source", "_entity", "_batch_date", "_file", "_row", "record_id", "h.field", "h.rule_id",
                    "h.action", "h.change", "h.before", "h.after", F.lit(run_id).alias("_run_id")))


def dedupe(ok: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(survivors, superseded) among one night's usable records: exact duplicates collapse onto the
    first line; of the versions of a record id the latest update time wins, then the later line."""
    cols = ["_source", "_entity", "_batch_date", "_file", "_row", "record_id"]
    ranked = ok.withColumn(
        "__exact", F.row_number().over(Window.partitionBy("record_id", "_content_hmac").orderBy("_row"))
    )
    firsts = ranked.filter(F.col("__exact") == 1).drop("__exact")
    firsts = firsts.withColumn("__ver", F.row_number().over(Window.partitionBy("record_id").orderBy(
        F.col("updated_at").desc_nulls_last(), F.col("_row").desc())))
    survivors = firsts.filter(F.col("__ver") == 1).drop("__ver")
    exact = ranked.filter(F.col("__exact") > 1).select(*cols, F.lit("DUP_EXACT").alias("rule_id"),
                                                      F.lit("exact duplicate of an earlier line").alias("change"))
    older = firsts.filter(F.col("__ver") > 1).select(*cols, F.lit("DUP_VERSION").alias("rule_id"),
                                                    F.lit("older version of the record id in the same delivery")
                                                    .alias("change"))
    return survivors, exact.unionByName(older)


def classify_against_silver(survivors: DataFrame, current: DataFrame | None) -> DataFrame:
    """``__state`` of each survivor against what silver holds: new | newer | ours (this delivery,
    already merged by an earlier attempt) | unchanged | stale."""
    if current is None:
        return survivors.withColumn("__state", F.lit("new"))
    cur = current.select(F.col("record_id").alias("__rid"), F.col("updated_at").alias("__cur_upd"),
                         F.col("_content_hmac").alias("__cur_h"), F.col("_delivery_id").alias("__cur_d"),
                         F.col("_row").alias("__cur_row"))
    j = survivors.join(cur, survivors["record_id"] == cur["__rid"], "left")
    state = (
        F.when(F.col("__rid").isNull(), "new")
        .when((F.col("__cur_d") == F.col("_delivery_id")) & (F.col("__cur_row") == F.col("_row")), "ours")
        .when(F.col("updated_at") > F.col("__cur_upd"), "newer")
        .when((F.col("updated_at") == F.col("__cur_upd")) & (F.col("_content_hmac") == F.col("__cur_h")), "unchanged")
        .otherwise("stale")
    )
    return j.withColumn("__state", state).drop("__rid", "__cur_upd", "__cur_h", "__cur_d", "__cur_row")


def superseded_rows(dup: DataFrame, states: DataFrame, run_id: str) -> DataFrame:
    """The findings rows of the lines that do not reach silver although nothing is wrong with them:
    the night's duplicates and older versions (``dedupe``) and the versions older than (or tied
    with) the one silver holds (``classify_against_silver``'s ``stale``)."""
    stale = states.filter(F.col("__state") == "stale").select(
        "_source", "_entity", "_batch_date", "_file", "_row", "record_id", F.lit("DUP_VERSION").alias("rule_id"),
        F.lit("older than (or tied with) the version already in silver").alias("change"))
    return dup.unionByName(stale).select(
        "_source", "_entity", "_batch_date", "_file", "_row", "record_id", F.lit("").alias("field"), "rule_id",
        F.lit("supersede").alias("action"), "change", F.lit(None).cast("string").alias("before"),
        F.lit(None).cast("string").alias("after"), F.lit(run_id).alias("_run_id"))


def quarantine_rows(std_q: DataFrame, bronze: DataFrame, entity: Entity, keyring: Keyring) -> DataFrame:
    """Quarantined records with their reason, the person's identifiers (encrypted/tokenised) and
    the whole bronze row as encrypted JSON."""
    raw = bronze.select("_file", "_row", F.to_json(F.struct(*entity.field_names)).alias("__json"))
    q = std_q.join(raw, ["_file", "_row"], "left")
    has_id = entity.person_id_field is not None
    return q.select(
        "_source", "_entity", "_batch_date", "_file", "_row", "record_id",
        line_of(entity.format, F.col("_row")).alias("locator"), F.lit("clean").alias("stage"),
        F.col("_quarantine.rule_id").alias("reason_code"),
        F.concat_ws(": ", F.col("_quarantine.field"), F.col("_quarantine.change")).alias("rule_detail"),
        F.col("_quarantine.field").alias("field"),
        # protect() has already replaced citizen_id by the ciphertext of the normalised number
        (F.col("citizen_id") if has_id else F.lit(None).cast("binary")).alias("citizen_id_enc"),
        (F.col("citizen_id__tok") if has_id else F.lit(None).cast("string")).alias("citizen_id__tok"),
        (F.col("person_hint") if "person_hint" in q.columns else F.lit(None).cast("string")).alias("person_hint"),
        encrypt(F.col("__json"), keyring).alias("record_enc"),
        "_delivery_id", "_run_id", "_loaded_at", "_key_id")
