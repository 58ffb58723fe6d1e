"""Cross-verify: silver → gold. Link each person's records across departments by the identity-number
token, register every contradiction in the conflicts register, and rebuild the theme tables.

    spark-submit jobs/verify.py --batch-date 2026-11-27

Authority (conf/rules.yaml ``precedence``): the police population register for identity (name,
birth date, sex), civil affairs and health for death, social security for employment. Each
detector below is keyed by its rule id in ``conf/rules.yaml`` (disabled rules do not run). The
register (``gold.conflicts``) is maintained by ``MERGE`` on a stable conflict id: a contradiction
still present keeps its first-seen date; one no longer observed becomes ``resolved`` with the date.
Theme tables (专题库) ``gold.person``, ``gold.house``, ``gold.event``, ``gold.organisation`` are
rebuilt from silver each night with their dynamic tags.
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from shuzhi.access import Reader, read
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, decrypt, hmac_token
from shuzhi.delta import merge_table, read_table, table_exists, table_version, write_table
from shuzhi.rules import load_rules, precedence
from shuzhi.schemas import catalog
from shuzhi.standards import citizen_id_lifted, citizen_id_stripped
from shuzhi.jobmain import job_main

log = logging.getLogger("shuzhi.verify")

CONFLICTS = ("gold", "conflicts")
THEMES = ("person", "house", "event", "organisation")
# from schemas/: the table of each department's records about a person (its ``citizen_id`` field),
# and every silver table's ``source/entity`` (how the register names a record)
PERSON_SOURCES = {e.source: e.table_name for e in catalog().entities() if e.person_id_field is not None}
ENTITY_OF = {e.table_name: f"{e.source}/{e.name}" for e in catalog().entities()}


@dataclass
class VerifyResult:
    batch_date: str
    status: str
    findings: dict[str, int] = field(default_factory=dict)     # rule → contradictions observed tonight
    opened: int = 0
    resolved: int = 0
    open_total: int = 0
    themes: dict[str, int] = field(default_factory=dict)


def conflicts_schema() -> T.StructType:
    s, d = T.StringType(), T.DateType()
    return T.StructType([T.StructField(n, t) for n, t in [
        ("conflict_id", s), ("rule_id", s), ("severity", s), ("departments", T.ArrayType(s)),
        ("record_refs", T.ArrayType(s)), ("subject", s), ("person_token", s), ("citizen_id_enc", T.BinaryType()),
        ("evidence", s), ("first_seen", d), ("last_seen", d), ("status", s), ("resolved_on", d), ("_run_id", s)]])


# ---------------------------------------------------------------- inputs

def ref(table: str, rid_col: str = "record_id") -> F.Column:
    return F.concat(F.lit(ENTITY_OF[table] + "/"), F.col(rid_col))


def load_silver(spark, settings: Settings, keyring: Keyring) -> dict[str, DataFrame]:
    """The silver tables the detectors need, with just the columns they use (L3 values decrypted
    in memory where a rule has to compare them)."""
    def t(name):   # hot and cold tiers together, the read logged (shuzhi.access)
        return read(spark, settings, f"silver.{name}", reader=Reader.pipeline("verify"))

    out = {}
    pop = t("police_population")
    if pop is not None:
        out["pop"] = pop.select("record_id", F.col("citizen_id__tok").alias("tok"), F.col("citizen_id").alias("id_enc"),
                                "name", "name__mtok", "birth_date", "sex", "citizen_id__birth", "citizen_id__sex",
                                "person_status", "deregistration_date", "house_code", "household_id", "community_code",
                                "ethnicity", "updated_at", "person_hint")
    ca = t("civil_affairs_assistance")
    if ca is not None:
        out["ca"] = ca.select("record_id", F.col("citizen_id__tok").alias("tok"), F.col("citizen_id").alias("id_enc"),
                              "name", "name__mtok", "birth_date", "sex", "citizen_id__birth", "citizen_id__sex",
                              decrypt(F.col("assistance_type"), keyring).alias("assistance_type"),
                              "case_status", "household_id", "community_code",
                              decrypt(F.col("death_date"), keyring).cast("date").alias("death_date"),
                              "updated_at", "person_hint")
    ss = t("social_security_insurance")
    if ss is not None:
        out["ss"] = ss.select("record_id", F.col("citizen_id__tok").alias("tok"), F.col("citizen_id").alias("id_enc"),
                              "name", "name__mtok", "citizen_id__birth", "insurance_type", "enrolment_status",
                              "employer_uscc", "employer_uscc__valid", "employer_name",
                              decrypt(F.col("monthly_benefit"), keyring).cast("decimal(12,2)").alias("monthly_benefit"),
                              decrypt(F.col("last_payment_date"), keyring).cast("date").alias("last_payment_date"),
                              "updated_at", "person_hint")
    hl = t("health_residents")
    if hl is not None:
        out["hl"] = hl.select("record_id", F.col("citizen_id__tok").alias("tok"), F.col("citizen_id").alias("id_enc"),
                              "name", "name__mtok", "birth_date", "sex", "citizen_id__birth", "citizen_id__sex",
                              "community_code", F.col("chronic_conditions").isNotNull().alias("has_chronic"),
                              F.col("disability_grade").isNotNull().alias("has_disability"),
                              decrypt(F.col("death_date"), keyring).cast("date").alias("death_date"),
                              "updated_at", "person_hint")
    for name, key in (("houses", "police_houses"), ("incidents", "police_incidents")):
        df = t(key)
        if df is not None:
            out[name] = df
    return out


def pending_police_identities(spark, settings: Settings, keyring: Keyring, pop: DataFrame | None) -> DataFrame:
    """Tokens and name/birth hints of police population records that are not (yet) in silver —
    quarantined by the clean stage, or malformed lines at ingest (numbers found in the raw text).
    A person "absent from police" who matches one of these is pending, not absent."""
    parts = []
    q = settings.table_path("silver", "quarantine")
    live = pop.select("record_id") if pop is not None else None
    if table_exists(spark, q):
        cq = read_table(spark, q).filter((F.col("_source") == "police") & (F.col("_entity") == "population"))
        if live is not None:
            cq = cq.join(live, "record_id", "left_anti")
        parts.append(cq.select(F.col("citizen_id__tok").alias("tok"), F.col("person_hint").alias("hint")))
    iq = settings.table_path("bronze", "quarantine")
    if table_exists(spark, iq):
        raw = (read_table(spark, iq).filter((F.col("_source") == "police") & (F.col("_entity") == "population"))
               .select(F.explode(F.split(decrypt(F.col("raw_record_enc"), keyring), ",")).alias("piece"))
               .select(citizen_id_stripped(F.regexp_replace(F.col("piece"), '"', "")).alias("s"))
               .select(citizen_id_lifted(F.col("s")).alias("n")))
        norm = F.col("n")
        parts.append(raw.select(F.when(norm.rlike(r"^\d{17}[\dX]$"), hmac_token(norm, keyring)).alias("tok"),
                                F.lit(None).cast("string").alias("hint")))
    if not parts:
        return spark.createDataFrame([], "tok string, hint string")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.filter(F.col("tok").isNotNull() | F.col("hint").isNotNull())


def stale_refs(spark, settings: Settings) -> DataFrame:
    """Records whose newest delivered version was quarantined: silver still holds an older one, so
    no contradiction is judged on it until a usable version arrives (the quarantine says why)."""
    q = settings.table_path("silver", "quarantine")
    if not table_exists(spark, q):
        return spark.createDataFrame([], "ref string")
    quar = read_table(spark, q).select("_source", "_entity", "record_id", F.col("_batch_date").alias("__qd"))
    parts = []
    for table, ent in ENTITY_OF.items():
        p = settings.table_path("silver", table)
        if not table_exists(spark, p):
            continue
        src, e = ent.split("/")
        sv = read_table(spark, p).select("record_id", F.col("_batch_date").alias("__sd"))
        j = (quar.filter((F.col("_source") == src) & (F.col("_entity") == e)).join(sv, "record_id")
             .filter(F.col("__qd") > F.col("__sd")))
        parts.append(j.select(F.concat(F.lit(ent + "/"), F.col("record_id")).alias("ref")))
    if not parts:
        return spark.createDataFrame([], "ref string")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()


# ---------------------------------------------------------------- detectors (one per rule id)

def _finding(df: DataFrame, rule: str, subject, departments, refs, person_token, id_enc, evidence) -> DataFrame:
    return df.select(F.lit(rule).alias("rule_id"), subject.alias("subject"), departments.alias("departments"),
                     refs.alias("record_refs"), person_token.alias("person_token"), id_enc.alias("citizen_id_enc"),
                     evidence.alias("evidence"))


def deaths(s: dict[str, DataFrame]) -> DataFrame:
    """Per person token: death date by source precedence, and the records that record the death."""
    parts = []
    if "pop" in s:
        parts.append(s["pop"].filter(F.col("person_status") == "1").select(
            "tok", F.lit("police").alias("src"), F.col("deregistration_date").alias("death"), ref("police_population").alias("ref")))
    if "ca" in s:
        parts.append(s["ca"].filter(F.col("death_date").isNotNull()).select(
            "tok", F.lit("civil_affairs").alias("src"), F.col("death_date").alias("death"),
            ref("civil_affairs_assistance").alias("ref")))
    if "hl" in s:
        parts.append(s["hl"].filter(F.col("death_date").isNotNull()).select(
            "tok", F.lit("health").alias("src"), F.col("death_date").alias("death"), ref("health_residents").alias("ref")))
    if not parts:
        return None
    d = parts[0]
    for p in parts[1:]:
        d = d.unionByName(p)
    d = d.toDF("tok", "src", "death", "ref").filter(F.col("tok").isNotNull())
    order = precedence()["death"]
    rank = F.coalesce(*[F.when(F.col("src") == src, F.lit(i)) for i, src in enumerate(order)], F.lit(99))
    agg = d.groupBy("tok").agg(
        F.sort_array(F.collect_list(F.struct(rank.alias("r"), F.col("death").alias("death"))))[0]["death"].alias("death"),
        F.sort_array(F.collect_set("ref")).alias("death_refs"), F.sort_array(F.collect_set("src")).alias("death_srcs"))
    return agg.filter(F.col("death").isNotNull())


def x_deceased_paid(s, batch_date: date):
    d = deaths(s)
    if d is None:
        return []
    out = []
    if "ss" in s:
        paid = s["ss"].join(d, "tok").filter(F.col("monthly_benefit").isNotNull()
                                             & (F.col("last_payment_date") > F.col("death")))
        out.append(_finding(paid, "X_DECEASED_PAID", ref("social_security_insurance"),
                            F.array_distinct(F.concat(F.array(F.lit("social_security")), F.col("death_srcs"))),
                            F.concat(F.array(ref("social_security_insurance")), F.col("death_refs")), F.col("tok"),
                            F.col("id_enc"),
                            F.concat(F.lit("benefit (scheme "), F.col("insurance_type"),
                                     F.lit(") paid after the death date recorded by "),
                                     F.array_join(F.col("death_srcs"), ", "))))
    if "ca" in s:
        act = s["ca"].join(d, "tok").filter((F.col("case_status") == "ACTIVE") & F.col("assistance_type").isNotNull()
                                            & (F.col("death") <= F.lit(batch_date)))
        out.append(_finding(act, "X_DECEASED_PAID", ref("civil_affairs_assistance"),
                            F.array_distinct(F.concat(F.array(F.lit("civil_affairs")), F.col("death_srcs"))),
                            F.array_distinct(F.concat(F.array(ref("civil_affairs_assistance")), F.col("death_refs"))),
                            F.col("tok"), F.col("id_enc"),
                            F.concat(F.lit("assistance case still ACTIVE after the death recorded by "),
                                     F.array_join(F.col("death_srcs"), ", "))))
    return out


def _police_identity(s) -> DataFrame:
    return s["pop"].filter(F.col("tok").isNotNull()).groupBy("tok").agg(
        F.collect_set("name__mtok").alias("p_names"), F.collect_set("birth_date").alias("p_births"),
        F.sort_array(F.collect_set(ref("police_population"))).alias("p_refs"))


def x_name_mismatch(s, batch_date):
    if "pop" not in s:
        return []
    pid = _police_identity(s)
    out = []
    for key, table, src in (("hl", "health_residents", "health"), ("ca", "civil_affairs_assistance", "civil_affairs"),
                            ("ss", "social_security_insurance", "social_security")):
        if key not in s:
            continue
        j = s[key].join(pid, "tok").filter(F.col("name__mtok").isNotNull()
                                            & ~F.array_contains(F.col("p_names"), F.col("name__mtok")))
        out.append(_finding(j, "X_NAME_MISMATCH", ref(table), F.array(F.lit(src), F.lit("police")),
                            F.concat(F.array(ref(table)), F.col("p_refs")), F.col("tok"), F.col("id_enc"),
                            F.lit(f"name in {src} differs from the police register (traditional/simplified variants "
                                  "compared as equal)")))
    return out


def x_birth_mismatch(s, batch_date):
    if "pop" not in s:
        return []
    pid = _police_identity(s)
    out = []
    for key, table, src in (("hl", "health_residents", "health"), ("ca", "civil_affairs_assistance", "civil_affairs")):
        if key not in s:
            continue
        j = s[key].join(pid, "tok").filter(F.col("birth_date").isNotNull() & (F.size("p_births") > 0)
                                            & ~F.array_contains(F.col("p_births"), F.col("birth_date")))
        out.append(_finding(j, "X_BIRTH_MISMATCH", ref(table), F.array(F.lit(src), F.lit("police")),
                            F.concat(F.array(ref(table)), F.col("p_refs")), F.col("tok"), F.col("id_enc"),
                            F.concat(F.lit(f"birth date in {src} differs from the police register by "),
                                     _days_apart(F.col("birth_date"), F.col("p_births")), F.lit(" day(s)"))))
    return out


def _days_apart(birth, others) -> F.Column:
    """Days between a birth date and the nearest of ``others`` (an array of dates), as text. The
    evidence names no birth date: the exported register masks exactly the 8 birth-date digits of
    the identity number, and a date beside it would give them back."""
    return F.array_min(F.transform(others, lambda o: F.abs(F.datediff(birth, o)))).cast("string")


def x_id_birth_sex(s, batch_date):
    """A record's birth date or sex against what its own number encodes. The most specific finding
    wins: a birth date that already differs from the police register is X_BIRTH_MISMATCH (the
    register is the reference), so here a birth date counts only where the register agrees with
    the record (or has no record of the person)."""
    out = []
    pid = _police_identity(s).select("tok", "p_births") if "pop" in s else None
    for key, table, src in (("pop", "police_population", "police"), ("hl", "health_residents", "health"),
                            ("ca", "civil_affairs_assistance", "civil_affairs")):
        if key not in s:
            continue
        df = s[key].filter(F.col("tok").isNotNull())
        if key != "pop" and pid is not None:
            df = df.join(pid, "tok", "left")
            agrees = F.col("p_births").isNull() | F.array_contains(F.col("p_births"), F.col("birth_date"))
        else:
            agrees = F.lit(True)
        bad_birth = F.col("birth_date").isNotNull() & (F.col("birth_date") != F.col("citizen_id__birth")) & agrees
        bad_sex = F.col("sex").isin("1", "2") & (F.col("sex") != F.col("citizen_id__sex"))
        j = df.filter(bad_birth | bad_sex)
        ev = F.concat_ws("; ", F.when(bad_birth, F.concat(
                             F.lit("birth date differs from the one the number encodes by "),
                             _days_apart(F.col("birth_date"), F.array(F.col("citizen_id__birth"))), F.lit(" day(s)"))),
                         F.when(bad_sex, F.concat(F.lit("sex code "), F.col("sex"), F.lit(" but the number encodes "),
                                                  F.col("citizen_id__sex"))))
        out.append(_finding(j, "X_ID_BIRTH_SEX", ref(table), F.array(F.lit(src)), F.array(ref(table)), F.col("tok"),
                            F.col("id_enc"), ev))
    return out


def x_absent_police(s, batch_date, pending: DataFrame):
    if "pop" not in s:
        return []
    parts = []
    for key, table, src in (("hl", "health_residents", "health"), ("ca", "civil_affairs_assistance", "civil_affairs"),
                            ("ss", "social_security_insurance", "social_security")):
        if key in s:
            hint = F.col("person_hint") if "person_hint" in s[key].columns else F.lit(None).cast("string")
            parts.append(s[key].filter(F.col("tok").isNotNull()).select(
                "tok", "id_enc", hint.alias("hint"), F.lit(src).alias("src"), ref(table).alias("ref")))
    if not parts:
        return []
    others = parts[0]
    for p in parts[1:]:
        others = others.unionByName(p)
    known = s["pop"].select("tok").filter(F.col("tok").isNotNull()).distinct()
    absent = others.join(known, "tok", "left_anti")
    ptok = pending.select("tok").filter(F.col("tok").isNotNull()).distinct()
    phint = pending.select(F.col("hint")).filter(F.col("hint").isNotNull()).distinct()
    absent = absent.join(ptok, "tok", "left_anti")
    absent = absent.join(phint, "hint", "left_anti")
    g = absent.groupBy("tok").agg(F.first("id_enc").alias("id_enc"), F.sort_array(F.collect_set("src")).alias("srcs"),
                                  F.sort_array(F.collect_set("ref")).alias("refs"))
    return [_finding(g, "X_ABSENT_POLICE", F.concat(F.lit("person:"), F.col("tok")), F.col("srcs"), F.col("refs"),
                     F.col("tok"), F.col("id_enc"),
                     F.concat(F.lit("known to "), F.array_join(F.col("srcs"), ", "),
                              F.lit(" but not in the police population register")))]


def active_residents(s) -> DataFrame:
    return (s["pop"].filter((F.col("person_status") == "0") & F.col("house_code").isNotNull())
            .groupBy("house_code").agg(F.count("*").alias("registered_residents"),
                                       F.sort_array(F.collect_list(ref("police_population"))).alias("resident_refs")))


def x_vacant_occupied(s, batch_date):
    if "houses" not in s or "pop" not in s:
        return []
    h = s["houses"].filter(F.col("house_use") == "4").join(active_residents(s), "house_code")
    return [_finding(h, "X_VACANT_OCCUPIED", ref("police_houses"), F.array(F.lit("police")),
                     F.concat(F.array(ref("police_houses")), F.col("resident_refs")), F.col("owner_citizen_id__tok"),
                     F.col("owner_citizen_id"),
                     F.concat(F.lit("declared vacant (FWYTDM=4) with "), F.col("registered_residents").cast("string"),
                              F.lit(" active resident(s) registered at the house code")))]


def x_uscc_invalid(s, batch_date):
    if "ss" not in s:
        return []
    bad = s["ss"].filter(F.col("employer_uscc__valid") == F.lit(False))
    return [_finding(bad, "X_USCC_INVALID", ref("social_security_insurance"), F.array(F.lit("social_security")),
                     F.array(ref("social_security_insurance")), F.col("tok"), F.col("id_enc"),
                     F.concat(F.lit("employer code "), F.col("employer_uscc"),
                              F.lit(" fails its GB 32100 check character")))]


def x_dup_person(s, batch_date):
    keys = {"police/population": ("pop", "police_population", "police"),
            "health/residents": ("hl", "health_residents", "health")}
    out = []
    for ent in load_rules()["X_DUP_PERSON"].entities:
        key, table, src = keys[ent]
        if key not in s:
            continue
        df = s[key].filter(F.col("tok").isNotNull())
        w = Window.partitionBy("tok").orderBy(F.col("updated_at").desc(), F.col("record_id").desc())
        ranked = df.withColumn("__n", F.row_number().over(w)).withColumn(
            "__primary", F.first(ref(table)).over(w)).withColumn("__count", F.count("*").over(Window.partitionBy("tok")))
        dup = ranked.filter((F.col("__count") > 1) & (F.col("__n") > 1))
        out.append(_finding(dup, "X_DUP_PERSON", ref(table), F.array(F.lit(src)),
                            F.array(ref(table), F.col("__primary")), F.col("tok"), F.col("id_enc"),
                            F.concat(F.lit(f"the same identity number as {src} record "), F.col("__primary"),
                                     F.lit(" (this is the older record)"))))
    return out


DETECTORS = {"X_DECEASED_PAID": x_deceased_paid, "X_NAME_MISMATCH": x_name_mismatch,
             "X_BIRTH_MISMATCH": x_birth_mismatch, "X_ID_BIRTH_SEX": x_id_birth_sex,
             "X_VACANT_OCCUPIED": x_vacant_occupied, "X_USCC_INVALID": x_uscc_invalid, "X_DUP_PERSON": x_dup_person}


def observed_conflicts(spark, s: dict[str, DataFrame], batch_date: date, pending: DataFrame, run_id: str,
                       stale: DataFrame) -> DataFrame:
    """Every contradiction present in tonight's silver, one row per (rule, subject); subjects whose
    newest version is in quarantine (``stale``) are not judged."""
    rules = load_rules()
    parts = []
    for rid, rule in rules.items():
        if rule.stage != "verify" or not rule.enabled:
            continue
        if rid == "X_ABSENT_POLICE":
            parts += x_absent_police(s, batch_date, pending)
        elif rid in DETECTORS:
            parts += DETECTORS[rid](s, batch_date)
        else:
            raise KeyError(f"conf/rules.yaml rule {rid} has no detector in jobs/verify.py")
    if not parts:
        return spark.createDataFrame([], conflicts_schema())
    df = parts[0]
    for p in parts[1:]:
        df = df.unionByName(p)
    df = df.join(F.broadcast(stale), df["subject"] == stale["ref"], "left_anti")
    sev = F.create_map(*[x for r in rules.values() if r.stage == "verify" for x in (F.lit(r.id), F.lit(r.severity))])
    df = df.dropDuplicates(["rule_id", "subject"])
    return df.select(
        F.substring(F.sha2(F.concat_ws("|", "rule_id", "subject"), 256), 1, 24).alias("conflict_id"), "rule_id",
        sev[F.col("rule_id")].alias("severity"), "departments", "record_refs", "subject", "person_token",
        "citizen_id_enc", "evidence", F.lit(batch_date).alias("first_seen"), F.lit(batch_date).alias("last_seen"),
        F.lit("open").alias("status"), F.lit(None).cast("date").alias("resolved_on"), F.lit(run_id).alias("_run_id"))


# ---------------------------------------------------------------- theme tables

def person_theme(s, conflicts: DataFrame, batch_date: date) -> DataFrame:
    """One golden record per person token, identity by source precedence, with dynamic tags."""
    order = precedence()["identity"]
    key_of = {"police": "pop", "health": "hl", "civil_affairs": "ca", "social_security": "ss"}
    parts = []
    for src in order:
        k = key_of[src]
        if k not in s:
            continue
        df = s[k].filter(F.col("tok").isNotNull())
        parts.append(df.select(
            "tok", F.lit(src).alias("src"), F.lit(order.index(src)).alias("rank"), "updated_at",
            F.struct(F.col("id_enc"), F.col("name"), F.col("name__mtok"),
                     (F.col("birth_date") if "birth_date" in df.columns else F.col("citizen_id__birth")).alias("birth_date"),
                     (F.col("sex") if "sex" in df.columns else F.lit(None).cast("string")).alias("sex")).alias("ident"),
            ref(PERSON_SOURCES[src]).alias("ref")))
    allrec = parts[0]
    for p in parts[1:]:
        allrec = allrec.unionByName(p)
    w = Window.partitionBy("tok").orderBy("rank", F.col("updated_at").desc())
    best = allrec.withColumn("__n", F.row_number().over(w)).filter(F.col("__n") == 1).select("tok", "ident")
    srcs = allrec.groupBy("tok").agg(F.sort_array(F.collect_set("src")).alias("sources"),
                                     F.sort_array(F.collect_set("ref")).alias("record_refs"))
    p = best.join(srcs, "tok")
    if "pop" in s:
        wpop = Window.partitionBy("tok").orderBy(F.col("updated_at").desc(), F.col("record_id").desc())
        pol = (s["pop"].filter(F.col("tok").isNotNull()).withColumn("__n", F.row_number().over(wpop))
               .filter(F.col("__n") == 1)
               .select("tok", "person_status", "house_code", "household_id", "community_code", "ethnicity"))
        res = active_residents(s).select("house_code", "registered_residents")
        pol = pol.join(res, "house_code", "left")
        p = p.join(pol, "tok", "left")
    else:
        for c, t in (("person_status", "string"), ("house_code", "string"), ("household_id", "string"),
                     ("community_code", "string"), ("ethnicity", "binary"), ("registered_residents", "long")):
            p = p.withColumn(c, F.lit(None).cast(t))
    d = deaths(s)
    p = p.join(d.select("tok", F.col("death").alias("death_date")), "tok", "left") if d is not None \
        else p.withColumn("death_date", F.lit(None).cast("date"))
    if "ca" in s:
        ca = s["ca"]
        active = ca.filter(F.col("case_status") == "ACTIVE")
        dibao_hh = active.filter(F.col("assistance_type") == "DIBAO").select("household_id").distinct()
        dibao = (ca.join(dibao_hh, "household_id").select("tok").union(
            active.filter(F.col("assistance_type") == "DIBAO").select("tok")).distinct()
            .withColumn("dibao", F.lit(True)))
        disab = active.filter(F.col("assistance_type") == "DISABILITY").select("tok").distinct() \
            .withColumn("ca_disability", F.lit(True))
        p = p.join(dibao, "tok", "left").join(disab, "tok", "left")
    else:
        p = p.withColumn("dibao", F.lit(None).cast("boolean")).withColumn("ca_disability", F.lit(None).cast("boolean"))
    if "hl" in s:
        h = s["hl"].filter(F.col("tok").isNotNull()).groupBy("tok").agg(
            F.max(F.col("has_chronic").cast("int")).cast("boolean").alias("chronic"),
            F.max(F.col("has_disability").cast("int")).cast("boolean").alias("h_disability"))
        p = p.join(h, "tok", "left")
    else:
        p = p.withColumn("chronic", F.lit(None).cast("boolean")).withColumn("h_disability", F.lit(None).cast("boolean"))
    oc = conflicts.filter((F.col("status") == "open") & F.col("person_token").isNotNull()).groupBy(
        F.col("person_token").alias("tok")).agg(F.count("*").alias("open_conflicts"))
    p = p.join(oc, "tok", "left")
    birth = F.col("ident.birth_date")
    age = F.floor(F.months_between(F.lit(batch_date), birth) / 12)
    deceased = F.col("death_date").isNotNull() | (F.col("person_status") == "1")
    tags = F.filter(F.array(
        F.when((age >= 60) & (F.col("person_status") == "0") & (F.col("registered_residents") == 1), "elderly_alone"),
        F.when(F.col("dibao"), "dibao_household"), F.when(F.col("chronic"), "chronic_condition"),
        F.when(F.col("h_disability") | F.col("ca_disability"), "disability"), F.when(deceased, "deceased"),
        F.when(F.col("person_status") == "2", "moved_out"),
        F.when(F.coalesce(F.col("open_conflicts"), F.lit(0)) > 0, "has_open_conflicts")), lambda x: x.isNotNull())
    return p.select(
        F.col("tok").alias("person_token"), F.col("ident.id_enc").alias("citizen_id"), F.col("ident.name").alias("name"),
        F.col("ident.name__mtok").alias("name__mtok"), F.col("ident.sex").alias("sex"), birth.alias("birth_date"),
        F.col("ethnicity"), F.col("person_status"), deceased.alias("deceased"),
        (F.col("person_status") == "2").alias("moved_out"), "house_code", "household_id", "community_code", "sources",
        "record_refs", F.coalesce(F.col("open_conflicts"), F.lit(0)).alias("open_conflicts"), tags.alias("tags"),
        F.lit(batch_date).alias("_as_of"))


def house_theme(s, batch_date: date) -> DataFrame:
    h = s["houses"]
    w = Window.partitionBy("house_code").orderBy(F.col("updated_at").desc(), F.col("record_id").desc())
    h = h.filter(F.col("house_code").isNotNull()).withColumn("__n", F.row_number().over(w)).filter(F.col("__n") == 1)
    if "pop" in s:
        h = h.join(active_residents(s).select("house_code", "registered_residents"), "house_code", "left")
    else:
        h = h.withColumn("registered_residents", F.lit(None).cast("long"))
    regd = F.coalesce(F.col("registered_residents"), F.lit(0))
    tags = F.filter(F.array(F.when((F.col("house_use") == "4") & (regd > 0), "vacant_with_residents"),
                            F.when(F.col("house_use") == "2", "rented"),
                            F.when(F.col("declared_residents") != regd, "declared_differs_from_registered")),
                    lambda x: x.isNotNull())
    return h.select("house_code", "record_id", "address", "community_code",
                    F.col("owner_citizen_id__tok").alias("owner_token"), "house_use", "declared_residents",
                    regd.alias("registered_residents"), tags.alias("tags"), F.lit(batch_date).alias("_as_of"))


def event_theme(s, person: DataFrame, house: DataFrame | None, batch_date: date) -> DataFrame:
    e = s["incidents"]
    toks = e.select("record_id", F.explode_outer("involved_citizen_ids__tok").alias("tok"))
    linked = toks.join(person.select(F.col("person_token").alias("tok")).withColumn("__hit", F.lit(1)), "tok", "left")
    lk = linked.groupBy("record_id").agg(
        F.filter(F.collect_list("tok"), lambda x: x.isNotNull()).alias("person_tokens"),
        F.sum(F.coalesce(F.col("__hit"), F.lit(0))).alias("persons_linked"))
    e = e.join(lk, "record_id", "left")
    if house is not None:
        hs = house.select(F.col("address").alias("__addr"), F.col("house_code")).dropDuplicates(["__addr"])
        e = e.join(hs, e["address"] == hs["__addr"], "left")
    else:
        e = e.withColumn("house_code", F.lit(None).cast("string"))
    tags = F.filter(F.array(F.when(F.col("handling_status") == "1", "open_case"),
                            F.when(F.col("incident_category") == "06", "domestic")), lambda x: x.isNotNull())
    return e.select("record_id", "incident_number", "report_time", "incident_category", "handling_status",
                    "community_code", "address", "house_code", F.coalesce("person_tokens", F.array().cast("array<string>"))
                    .alias("person_tokens"), F.coalesce("persons_linked", F.lit(0)).cast("long").alias("persons_linked"),
                    tags.alias("tags"), F.lit(batch_date).alias("_as_of"))


def organisation_theme(s, batch_date: date) -> DataFrame:
    ss = s["ss"].filter(F.col("employer_uscc").isNotNull())
    g = ss.groupBy(F.col("employer_uscc").alias("uscc")).agg(
        F.first("employer_name", ignorenulls=True).alias("name"),
        F.min(F.col("employer_uscc__valid").cast("int")).cast("boolean").alias("uscc_valid"),
        F.countDistinct(F.when(F.col("enrolment_status") == "1", F.col("tok"))).alias("contributing_persons"),
        F.countDistinct("tok").alias("enrolled_persons"))
    tags = F.filter(F.array(F.when(~F.col("uscc_valid"), "invalid_uscc")), lambda x: x.isNotNull())
    return g.select("uscc", "name", "uscc_valid", "enrolled_persons", "contributing_persons", tags.alias("tags"),
                    F.lit(batch_date).alias("_as_of"))


# ---------------------------------------------------------------- I/O shell

def inputs_fingerprint(spark, settings: Settings) -> str:
    """Which silver versions (and quarantines) tonight's verdicts are computed from."""
    parts = []
    for layer, name in [("silver", t) for t in ENTITY_OF] + [("silver", "quarantine"), ("bronze", "quarantine")]:
        p = settings.table_path(layer, name)
        parts.append(f"{layer}.{name}={table_version(spark, p) if table_exists(spark, p) else -1}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def run(spark, settings: Settings, batch_date: str, *, run_id: str | None = None,
        keyring: Keyring | None = None) -> VerifyResult:
    keyring = keyring or Keyring.load(settings.key_dir)
    run_id = run_id or uuid.uuid4().hex
    bd = date.fromisoformat(batch_date)
    res = VerifyResult(batch_date, "verified")
    with audited(spark, settings, stage="verify", source=None, batch_date=batch_date, run_id=run_id) as audit:
        person_path = settings.table_path("gold", "person")
        if table_exists(spark, person_path):
            (last,) = read_table(spark, person_path).agg(F.max("_as_of")).collect()[0]
            if last is not None and last > bd:
                # gold already reflects a later night; re-verifying an earlier one would roll the
                # register and the theme tables back. The nights are verified in order.
                log.warning("verify %s: gold is already as of %s; nothing done", batch_date, last)
                res.status = "noop"
                audit.outcome = "noop"
                audit.detail = f"gold already as of {last}"
                return res
        fp = inputs_fingerprint(spark, settings)
        txn = f"verify:{batch_date}:{fp}"
        s = load_silver(spark, settings, keyring)
        s = {k: v.persist(StorageLevel.MEMORY_AND_DISK) for k, v in s.items()}
        try:
            pending = pending_police_identities(spark, settings, keyring, s.get("pop")).persist()
            stale = stale_refs(spark, settings).persist()
            obs = observed_conflicts(spark, s, bd, pending, run_id, stale).persist(StorageLevel.MEMORY_AND_DISK)
            res.findings = {r["rule_id"]: r["n"] for r in obs.groupBy("rule_id").agg(F.count("*").alias("n")).collect()}
            path = settings.table_path(*CONFLICTS)
            merge_table(obs, path, keys=["conflict_id"],
                        update_set={"last_seen": "s.last_seen", "status": "'open'", "resolved_on": "NULL",
                                    "record_refs": "s.record_refs", "departments": "s.departments",
                                    "evidence": "s.evidence", "citizen_id_enc": "s.citizen_id_enc",
                                    "_run_id": "s._run_id"},
                        update_when="t.last_seen <= s.last_seen",
                        when_not_matched_by_source=("t.status = 'open' AND t.last_seen < DATE'%s'" % batch_date,
                                                    {"status": "'resolved'", "resolved_on": f"DATE'{batch_date}'"}),
                        txn=(txn + ":conflicts", 0), partition_by=[],
                        stats_columns=["conflict_id", "rule_id", "severity", "status", "first_seen", "last_seen",
                                       "resolved_on"],
                        comment="conflicts register: cross-department contradictions, first/last seen, open/resolved")
            reg = read_table(spark, path)
            res.open_total = reg.filter(F.col("status") == "open").count()
            res.opened = reg.filter(F.col("first_seen") == F.lit(bd)).count()
            res.resolved = reg.filter(F.col("resolved_on") == F.lit(bd)).count()
            # theme tables
            person = person_theme(s, reg, bd).persist(StorageLevel.MEMORY_AND_DISK)
            themes = {"person": person}
            if "houses" in s:
                themes["house"] = house_theme(s, bd)
            if "incidents" in s:
                themes["event"] = event_theme(s, person, themes.get("house"), bd)
            if "ss" in s:
                themes["organisation"] = organisation_theme(s, bd)
            for name, df in themes.items():
                write_table(df, settings.table_path("gold", name), mode="snapshot", txn=(f"{txn}:{name}", 0),
                            stats_columns=[c for c in df.columns if c not in ("citizen_id", "name", "ethnicity",
                                                                              "person_token", "owner_token",
                                                                              "name__mtok", "person_tokens")],
                            comment=f"theme table (专题库) {name}, rebuilt nightly from silver")
                res.themes[name] = read_table(spark, settings.table_path("gold", name)).count()
            person.unpersist()
            _record_hits(spark, settings, res, txn)
            obs.unpersist()
            pending.unpersist()
            stale.unpersist()
        finally:
            for v in s.values():
                v.unpersist()
        audit.rows_in = sum(res.findings.values())
        audit.rows_loaded = res.open_total
        audit.detail = json.dumps({"opened": res.opened, "resolved": res.resolved, "themes": res.themes})
    return res


def _record_hits(spark, settings: Settings, res: VerifyResult, txn: str) -> None:
    from jobs.clean import RULE_HITS, rule_hits_schema

    bd = date.fromisoformat(res.batch_date)
    rows = [dict(batch_date=bd, stage="verify", rule_id=r, source="all", entity="all", action="register", hits=n)
            for r, n in sorted(res.findings.items())]
    write_table(spark.createDataFrame(rows, rule_hits_schema()), settings.table_path(*RULE_HITS), mode="replace",
                replace_where=f"batch_date = DATE'{res.batch_date}' AND stage = 'verify'", partition_by=["batch_date"],
                txn=(txn + ":rule_hits", 0), comment="nightly hit count of every rule")


def summary(res: VerifyResult) -> dict:
    return {"stage": "verify", **asdict(res)}


def task(spark, settings: Settings, batch_date: str, run_id: str | None = None) -> dict:
    return summary(run(spark, settings, batch_date, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("verify", task, {"batch_date": "required: YYYY-MM-DD"}, argv)


if __name__ == "__main__":
    sys.exit(main())
