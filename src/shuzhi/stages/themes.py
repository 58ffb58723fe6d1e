"""Cross-verify, second stage: the theme tables (专题库) ``gold.person``, ``gold.house``,
``gold.event``, ``gold.organisation`` — one golden record per person (identity by source
precedence), house, incident and employer, with the dynamic tags of ``conf/rules.yaml`` (``tags``).
Pure DataFrame → DataFrame functions of the silver frames (``conflicts.silver_inputs``), the
conflicts register, the night's date and ``VerifyParams``.
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..frames import union_all
from .conflicts import PERSON_SOURCES, VerifyParams, active_residents, deaths, ref


def person_theme(s, conflicts: DataFrame, batch_date: date, p: VerifyParams) -> DataFrame:
    """One golden record per person token, identity by source precedence, with dynamic tags
    (``conf/rules.yaml`` ``tags.person``)."""
    order = p.precedence["identity"]
    key_of = {"police": "pop", "health": "hl", "civil_affairs": "ca", "social_security": "ss"}
    parts = []
    for src in order:
        k = key_of[src]
        if k not in s:
            continue
        df = s[k].filter(F.col("tok").isNotNull())
        parts.append(
            df.select(
                "tok",
                F.lit(src).alias("src"),
                F.lit(order.index(src)).alias("rank"),
                "updated_at",
                F.struct(
                    F.col("id_enc"),
                    F.col("name"),
                    F.col("name__mtok"),
                    (F.col("birth_date") if "birth_date" in df.columns else F.col("citizen_id__birth")).alias(
                        "birth_date"
                    ),
                    (F.col("sex") if "sex" in df.columns else F.lit(None).cast("string")).alias("sex"),
                ).alias("ident"),
                ref(PERSON_SOURCES[src]).alias("ref"),
            )
        )
    allrec = union_all(parts)
    w = Window.partitionBy("tok").orderBy("rank", F.col("updated_at").desc())
    best = allrec.withColumn("__n", F.row_number().over(w)).filter(F.col("__n") == 1).select("tok", "ident")
    srcs = allrec.groupBy("tok").agg(F.sort_array(F.collect_set("src")).alias("sources"),
                                     F.sort_array(F.collect_set("ref")).alias("record_refs"))
    g = best.join(srcs, "tok")
    if "pop" in s:
        wpop = Window.partitionBy("tok").orderBy(F.col("updated_at").desc(), F.col("record_id").desc())
        pol = (s["pop"].filter(F.col("tok").isNotNull()).withColumn("__n", F.row_number().over(wpop))
               .filter(F.col("__n") == 1)
               .select("tok", "person_status", "house_code", "household_id", "community_code", "ethnicity"))
        res = active_residents(s).select("house_code", "registered_residents")
        pol = pol.join(res, "house_code", "left")
        g = g.join(pol, "tok", "left")
    else:
        for c, t in (("person_status", "string"), ("house_code", "string"), ("household_id", "string"),
                     ("community_code", "string"), ("ethnicity", "binary"), ("registered_residents", "long")):
            g = g.withColumn(c, F.lit(None).cast(t))
    d = deaths(s, p.precedence["death"])
    g = g.join(d.select("tok", F.col("death").alias("death_date")), "tok", "left") if d is not None \
        else g.withColumn("death_date", F.lit(None).cast("date"))
    if "ca" in s:
        ca = s["ca"]
        active = ca.filter(F.col("case_status") == "ACTIVE")
        dibao_hh = active.filter(F.col("assistance_type") == "DIBAO").select("household_id").distinct()
        dibao = (ca.join(dibao_hh, "household_id").select("tok").union(
            active.filter(F.col("assistance_type") == "DIBAO").select("tok")).distinct()
            .withColumn("dibao", F.lit(True)))
        disab = active.filter(F.col("assistance_type") == "DISABILITY").select("tok").distinct() \
            .withColumn("ca_disability", F.lit(True))
        g = g.join(dibao, "tok", "left").join(disab, "tok", "left")
    else:
        g = g.withColumn("dibao", F.lit(None).cast("boolean")).withColumn("ca_disability", F.lit(None).cast("boolean"))
    if "hl" in s:
        h = s["hl"].filter(F.col("tok").isNotNull()).groupBy("tok").agg(
            F.max(F.col("has_chronic").cast("int")).cast("boolean").alias("chronic"),
            F.max(F.col("has_disability").cast("int")).cast("boolean").alias("h_disability"))
        g = g.join(h, "tok", "left")
    else:
        g = g.withColumn("chronic", F.lit(None).cast("boolean")).withColumn("h_disability", F.lit(None).cast("boolean"))
    oc = conflicts.filter((F.col("status") == "open") & F.col("person_token").isNotNull()).groupBy(
        F.col("person_token").alias("tok")).agg(F.count("*").alias("open_conflicts"))
    g = g.join(oc, "tok", "left")
    birth = F.col("ident.birth_date")
    age = F.floor(F.months_between(F.lit(batch_date), birth) / 12)
    deceased = F.col("death_date").isNotNull() | (F.col("person_status") == "1")
    alone = p.tags["person"]["elderly_alone"]
    tags = F.filter(F.array(
        F.when((age >= alone.param("min_age")) & (F.col("person_status") == "0")
               & (F.col("registered_residents") == alone.param("registered_residents")), "elderly_alone"),
        F.when(F.col("dibao"), "dibao_household"), F.when(F.col("chronic"), "chronic_condition"),
        F.when(F.col("h_disability") | F.col("ca_disability"), "disability"), F.when(deceased, "deceased"),
        F.when(F.col("person_status") == "2", "moved_out"),
        F.when(F.coalesce(F.col("open_conflicts"), F.lit(0)) > 0, "has_open_conflicts")), lambda x: x.isNotNull())
    return g.select(
        F.col("tok").alias("person_token"),
        F.col("ident.id_enc").alias("citizen_id"),
        F.col("ident.name").alias("name"),
        F.col("ident.name__mtok").alias("name__mtok"),
        F.col("ident.sex").alias("sex"),
        birth.alias("birth_date"),
        F.col("ethnicity"),
        F.col("person_status"),
        deceased.alias("deceased"),
        (F.col("person_status") == "2").alias("moved_out"),
        "house_code",
        "household_id",
        "community_code",
        "sources",
        "record_refs",
        F.coalesce(F.col("open_conflicts"), F.lit(0)).alias("open_conflicts"),
        tags.alias("tags"),
        F.lit(batch_date).alias("_as_of"),
    )


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
    return e.select(
        "record_id",
        "incident_number",
        "report_time",
        "incident_category",
        "handling_status",
        "community_code",
        "address",
        "house_code",
        F.coalesce("person_tokens", F.array().cast("array<string>")).alias("person_tokens"),
        F.coalesce("persons_linked", F.lit(0)).cast("long").alias("persons_linked"),
        tags.alias("tags"),
        F.lit(batch_date).alias("_as_of"),
    )


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


def theme_tables(s: dict[str, DataFrame], person: DataFrame, batch_date: date) -> dict[str, DataFrame]:
    """The theme tables tonight, from the silver inputs there are and the person theme
    (``person_theme``, which the event theme links to): person, house, event, organisation."""
    out = {"person": person}
    if "houses" in s:
        out["house"] = house_theme(s, batch_date)
    if "incidents" in s:
        out["event"] = event_theme(s, person, out.get("house"), batch_date)
    if "ss" in s:
        out["organisation"] = organisation_theme(s, batch_date)
    return out
