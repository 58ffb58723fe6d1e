"""Cross-verify, first stage: the conflicts register. Pure DataFrame → DataFrame functions of the
silver frames (decrypted in memory by ``silver_inputs``), the night's date and the rule catalogue's
values (``VerifyParams``: rules, source precedence, tags) — no reads, writes, clock or config here.

Each detector is keyed by its rule id in ``conf/rules.yaml`` (disabled rules do not run) and
returns the contradictions it sees, one row per (rule, subject) with its evidence; the register
keeps a stable conflict id, ``sha256(rule | subject)``.

    >>> from shuzhi.rules import rules_for
    >>> sorted(DETECTORS) == sorted(r.id for r in rules_for("verify"))
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from ..crypto import Keyring, decrypt, hmac_token
from ..frames import union_all
from ..rules import Rule, Tag
from ..schemas import catalog
from ..standards import citizen_id_lifted, citizen_id_stripped

# from schemas/: the table of each department's records about a person (its ``citizen_id`` field),
# and every silver table's ``source/entity`` (how the register names a record)
PERSON_SOURCES = {e.source: e.table_name for e in catalog().entities() if e.person_id_field is not None}
ENTITY_OF = {e.table_name: f"{e.source}/{e.name}" for e in catalog().entities()}


@dataclass(frozen=True)
class VerifyParams:
    """The catalogue's values cross-verify runs on (``conf/rules.yaml``): the rules by id, the
    source precedence per attribute, the theme tables' tags."""
    rules: dict[str, Rule]
    precedence: dict[str, tuple[str, ...]]
    tags: dict[str, dict[str, Tag]]


def conflicts_schema() -> T.StructType:
    s, d = T.StringType(), T.DateType()
    return T.StructType([T.StructField(n, t) for n, t in [
        ("conflict_id", s), ("rule_id", s), ("severity", s), ("departments", T.ArrayType(s)),
        ("record_refs", T.ArrayType(s)), ("subject", s), ("person_token", s), ("citizen_id_enc", T.BinaryType()),
        ("evidence", s), ("first_seen", d), ("last_seen", d), ("status", s), ("resolved_on", d), ("_run_id", s)]])


def ref(table: str, rid_col: str = "record_id") -> F.Column:
    return F.concat(F.lit(ENTITY_OF[table] + "/"), F.col(rid_col))


def silver_inputs(silver: dict[str, DataFrame], keyring: Keyring) -> dict[str, DataFrame]:
    """From the silver tables by name (those that exist), what the detectors need under short keys
    (``pop``, ``ca``, ``ss``, ``hl``, ``houses``, ``incidents``), with just the columns they use
    (L3 values decrypted in memory where a rule has to compare them)."""
    def t(name):
        return silver.get(name)

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


def pending_police_identities(pop: DataFrame | None, clean_quarantine: DataFrame | None,
                              ingest_quarantine: DataFrame | None, keyring: Keyring) -> DataFrame:
    """Tokens and name/birth hints of police population records that are not (yet) in silver —
    quarantined by the clean stage, or malformed lines at ingest (numbers found in the raw text).
    A person "absent from police" who matches one of these is pending, not absent."""
    parts = []
    live = pop.select("record_id") if pop is not None else None
    if clean_quarantine is not None:
        cq = clean_quarantine.filter((F.col("_source") == "police") & (F.col("_entity") == "population"))
        if live is not None:
            cq = cq.join(live, "record_id", "left_anti")
        parts.append(cq.select(F.col("citizen_id__tok").alias("tok"), F.col("person_hint").alias("hint")))
    if ingest_quarantine is not None:
        # each piece is stripped inside the explode: `s` is then the generator's output, which the
        # optimiser cannot substitute back. As a projection of its own, the filter below was pushed
        # through it with `s` written out at each of its ~100 uses in `tok` — a method over Java's
        # 64 KB limit, whole-stage code generation refused and the stage interpreted.
        pieces = F.split(decrypt(F.col("raw_record_enc"), keyring), ",")
        raw = (ingest_quarantine.filter((F.col("_source") == "police") & (F.col("_entity") == "population"))
               .select(F.explode(F.transform(pieces, lambda p: citizen_id_stripped(F.regexp_replace(p, '"', ""))))
                       .alias("s"))
               .select(citizen_id_lifted(F.col("s")).alias("n")))
        norm = F.col("n")
        parts.append(raw.select(F.when(norm.rlike(r"^\d{17}[\dX]$"), hmac_token(norm, keyring)).alias("tok"),
                                F.lit(None).cast("string").alias("hint")))
    if not parts:
        return None
    return union_all(parts).filter(F.col("tok").isNotNull() | F.col("hint").isNotNull())


def stale_refs(clean_quarantine: DataFrame | None, silver: dict[str, DataFrame]) -> DataFrame | None:
    """Records whose newest delivered version was quarantined: silver still holds an older one, so
    no contradiction is judged on it until a usable version arrives (the quarantine says why)."""
    if clean_quarantine is None:
        return None
    quar = clean_quarantine.select("_source", "_entity", "record_id", F.col("_batch_date").alias("__qd"))
    parts = []
    for table, ent in ENTITY_OF.items():
        if table not in silver:
            continue
        src, e = ent.split("/")
        sv = silver[table].select("record_id", F.col("_batch_date").alias("__sd"))
        j = (quar.filter((F.col("_source") == src) & (F.col("_entity") == e)).join(sv, "record_id")
             .filter(F.col("__qd") > F.col("__sd")))
        parts.append(j.select(F.concat(F.lit(ent + "/"), F.col("record_id")).alias("ref")))
    return union_all(parts).distinct() if parts else None


# ---------------------------------------------------------------- detectors (one per rule id)

def _finding(df: DataFrame, rule: str, subject, departments, refs, person_token, id_enc, evidence) -> DataFrame:
    return df.select(F.lit(rule).alias("rule_id"), subject.alias("subject"), departments.alias("departments"),
                     refs.alias("record_refs"), person_token.alias("person_token"), id_enc.alias("citizen_id_enc"),
                     evidence.alias("evidence"))


def deaths(s: dict[str, DataFrame], order: tuple[str, ...]) -> DataFrame | None:
    """Per person token: death date by source precedence, and the records that record the death."""
    parts = []
    if "pop" in s:
        parts.append(
            s["pop"]
            .filter(F.col("person_status") == "1")
            .select(
                "tok",
                F.lit("police").alias("src"),
                F.col("deregistration_date").alias("death"),
                ref("police_population").alias("ref"),
            )
        )
    if "ca" in s:
        parts.append(s["ca"].filter(F.col("death_date").isNotNull()).select(
            "tok", F.lit("civil_affairs").alias("src"), F.col("death_date").alias("death"),
            ref("civil_affairs_assistance").alias("ref")))
    if "hl" in s:
        parts.append(
            s["hl"]
            .filter(F.col("death_date").isNotNull())
            .select(
                "tok",
                F.lit("health").alias("src"),
                F.col("death_date").alias("death"),
                ref("health_residents").alias("ref"),
            )
        )
    if not parts:
        return None
    d = union_all(parts).toDF("tok", "src", "death", "ref").filter(F.col("tok").isNotNull())
    rank = F.coalesce(*[F.when(F.col("src") == src, F.lit(i)) for i, src in enumerate(order)], F.lit(99))
    agg = d.groupBy("tok").agg(
        F.sort_array(F.collect_list(F.struct(rank.alias("r"), F.col("death").alias("death"))))[0]["death"].alias(
            "death"
        ),
        F.sort_array(F.collect_set("ref")).alias("death_refs"),
        F.sort_array(F.collect_set("src")).alias("death_srcs"),
    )
    return agg.filter(F.col("death").isNotNull())


def x_deceased_paid(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
    d = deaths(s, p.precedence["death"])
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


def x_name_mismatch(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
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


def x_birth_mismatch(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
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


def x_id_birth_sex(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
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


def x_absent_police(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
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
    others = union_all(parts)
    known = s["pop"].select("tok").filter(F.col("tok").isNotNull()).distinct()
    absent = others.join(known, "tok", "left_anti")
    if pending is not None:
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


def x_vacant_occupied(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
    if "houses" not in s or "pop" not in s:
        return []
    h = s["houses"].filter(F.col("house_use") == "4").join(active_residents(s), "house_code")
    return [_finding(h, "X_VACANT_OCCUPIED", ref("police_houses"), F.array(F.lit("police")),
                     F.concat(F.array(ref("police_houses")), F.col("resident_refs")), F.col("owner_citizen_id__tok"),
                     F.col("owner_citizen_id"),
                     F.concat(F.lit("declared vacant (FWYTDM=4) with "), F.col("registered_residents").cast("string"),
                              F.lit(" active resident(s) registered at the house code")))]


def x_uscc_invalid(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
    if "ss" not in s:
        return []
    bad = s["ss"].filter(F.col("employer_uscc__valid") == F.lit(False))
    return [_finding(bad, "X_USCC_INVALID", ref("social_security_insurance"), F.array(F.lit("social_security")),
                     F.array(ref("social_security_insurance")), F.col("tok"), F.col("id_enc"),
                     F.concat(F.lit("employer code "), F.col("employer_uscc"),
                              F.lit(" fails its GB 32100 check character")))]


def x_dup_person(s, batch_date: date, p: VerifyParams, pending: DataFrame | None):
    keys = {"police/population": ("pop", "police_population", "police"),
            "health/residents": ("hl", "health_residents", "health")}
    out = []
    for ent in p.rules["X_DUP_PERSON"].entities:
        key, table, src = keys[ent]
        if key not in s:
            continue
        df = s[key].filter(F.col("tok").isNotNull())
        w = Window.partitionBy("tok").orderBy(F.col("updated_at").desc(), F.col("record_id").desc())
        ranked = (
            df.withColumn("__n", F.row_number().over(w))
            .withColumn("__primary", F.first(ref(table)).over(w))
            .withColumn("__count", F.count("*").over(Window.partitionBy("tok")))
        )
        dup = ranked.filter((F.col("__count") > 1) & (F.col("__n") > 1))
        out.append(_finding(dup, "X_DUP_PERSON", ref(table), F.array(F.lit(src)),
                            F.array(ref(table), F.col("__primary")), F.col("tok"), F.col("id_enc"),
                            F.concat(F.lit(f"the same identity number as {src} record "), F.col("__primary"),
                                     F.lit(" (this is the older record)"))))
    return out


DETECTORS = {"X_DECEASED_PAID": x_deceased_paid, "X_NAME_MISMATCH": x_name_mismatch,
             "X_BIRTH_MISMATCH": x_birth_mismatch, "X_ID_BIRTH_SEX": x_id_birth_sex,
             "X_ABSENT_POLICE": x_absent_police, "X_VACANT_OCCUPIED": x_vacant_occupied,
             "X_USCC_INVALID": x_uscc_invalid, "X_DUP_PERSON": x_dup_person}


def observed_conflicts(s: dict[str, DataFrame], batch_date: date, pending: DataFrame | None, run_id: str,
                       stale: DataFrame | None, p: VerifyParams) -> DataFrame:
    """Every contradiction present in tonight's silver, one row per (rule, subject); subjects whose
    newest version is in quarantine (``stale``) are not judged. Empty (the register's schema) when
    no rule runs or no silver table exists."""
    rules = p.rules
    parts = []
    for rid, rule in rules.items():
        if rule.stage != "verify" or not rule.enabled:
            continue
        if rid not in DETECTORS:
            raise KeyError(f"conf/rules.yaml rule {rid} has no detector in shuzhi.stages.conflicts")
        parts += DETECTORS[rid](s, batch_date, p, pending)
    if not parts:
        return SparkSession.getActiveSession().createDataFrame([], conflicts_schema())
    df = union_all(parts)
    if stale is not None:
        df = df.join(F.broadcast(stale), df["subject"] == stale["ref"], "left_anti")
    sev = F.create_map(*[x for r in rules.values() if r.stage == "verify" for x in (F.lit(r.id), F.lit(r.severity))])
    df = df.dropDuplicates(["rule_id", "subject"])
    return df.select(
        F.substring(F.sha2(F.concat_ws("|", "rule_id", "subject"), 256), 1, 24).alias("conflict_id"), "rule_id",
        sev[F.col("rule_id")].alias("severity"), "departments", "record_refs", "subject", "person_token",
        "citizen_id_enc", "evidence", F.lit(batch_date).alias("first_seen"), F.lit(batch_date).alias("last_seen"),
        F.lit("open").alias("status"), F.lit(None).cast("date").alias("resolved_on"), F.lit(run_id).alias("_run_id"))


def register_merge(batch_date: str) -> dict:
    """How tonight's observations (``observed_conflicts``) go into the register, as the keywords of
    ``shuzhi.delta.merge_table``: keyed on the stable conflict id; one observed again is open with
    tonight's evidence and keeps its first-seen date; one not observed tonight is resolved today."""
    return dict(keys=["conflict_id"],
                update_set={"last_seen": "s.last_seen", "status": "'open'", "resolved_on": "NULL",
                            "record_refs": "s.record_refs", "departments": "s.departments",
                            "evidence": "s.evidence", "citizen_id_enc": "s.citizen_id_enc", "_run_id": "s._run_id"},
                update_when="t.last_seen <= s.last_seen",
                when_not_matched_by_source=(f"t.status = 'open' AND t.last_seen < DATE'{batch_date}'",
                                            {"status": "'resolved'", "resolved_on": f"DATE'{batch_date}'"}))


def register_counts(register: DataFrame, batch_date: date) -> DataFrame:
    """One row: (open, opened tonight, resolved tonight) of the register after tonight's MERGE
    (zeros for an empty register), in one pass."""
    return register.agg(_count(F.col("status") == "open").alias("open_total"),
                        _count(F.col("first_seen") == F.lit(batch_date)).alias("opened"),
                        _count(F.col("resolved_on") == F.lit(batch_date)).alias("resolved"))


def _count(cond: F.Column) -> F.Column:
    return F.coalesce(F.sum(F.when(cond, 1).otherwise(0)), F.lit(0)).cast("long")
