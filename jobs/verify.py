"""Cross-verify: silver → gold. Link each person's records across departments by the identity-number
token, register every contradiction in the conflicts register, and rebuild the theme tables.

    spark-submit jobs/verify.py --batch-date 2026-11-27

Authority (conf/rules.yaml ``precedence``): the police population register for identity (name,
birth date, sex), civil affairs and health for death, social security for employment. The
detectors (``shuzhi.stages.conflicts``) are keyed by their rule ids in ``conf/rules.yaml``
(disabled rules do not run); the theme tables and their tags are ``shuzhi.stages.themes``. The
register (``gold.conflicts``) is maintained by ``MERGE`` on a stable conflict id: a contradiction
still present keeps its first-seen date; one no longer observed becomes ``resolved`` with the date.
Theme tables (专题库) ``gold.person``, ``gold.house``, ``gold.event``, ``gold.organisation`` are
rebuilt from silver each night with their dynamic tags. Silver is read at its published versions,
and the gold versions written here are read by no one until their gates publish them
(``shuzhi.publish``).
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
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from shuzhi import publish, registry
from shuzhi.access import Reader, read
from shuzhi.audit import audited, record_rule_hits
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import merge_table, read_table, table_exists, table_version, write_table
from shuzhi.jobmain import job_main
from shuzhi.rules import load_rules, load_tags, precedence
from shuzhi.stages.conflicts import (
    ENTITY_OF,
    VerifyParams,
    observed_conflicts,
    pending_police_identities,
    silver_inputs,
    stale_refs,
)
from shuzhi.stages.themes import event_theme, house_theme, organisation_theme, person_theme

log = logging.getLogger("shuzhi.verify")

CONFLICTS = ("gold", "conflicts")
GOLD = tuple(t.name for t in registry.tables() if t.layer == "gold" and "verify" in t.written_by)   # tables.yaml


@dataclass
class VerifyResult:
    batch_date: str
    status: str
    findings: dict[str, int] = field(default_factory=dict)     # rule → contradictions observed tonight
    opened: int = 0
    resolved: int = 0
    open_total: int = 0
    themes: dict[str, int] = field(default_factory=dict)


def load_silver(spark, settings: Settings) -> dict[str, DataFrame]:
    """Every silver entity table there is, hot and cold tiers together, the read logged."""
    return {t: df for t in ENTITY_OF
            if (df := read(spark, settings, f"silver.{t}", reader=Reader.pipeline("verify"))) is not None}


def read_if_exists(spark, settings: Settings, layer: str, name: str) -> DataFrame | None:
    p = settings.table_path(layer, name)
    return read_table(spark, p) if table_exists(spark, p) else None


# ---------------------------------------------------------------- I/O shell

def inputs_fingerprint(spark, settings: Settings) -> str:
    """Which silver versions (the published ones, as read) and quarantines tonight's verdicts are
    computed from."""
    parts = [f"silver.{t}={publish.read_version(spark, settings, 'silver', t)}" for t in ENTITY_OF]
    for layer, name in [("silver", "quarantine"), ("bronze", "quarantine")]:
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
        published_person = publish.read_published(spark, settings, "gold", "person")
        if published_person is not None:
            (last,) = published_person.agg(F.max("_as_of")).collect()[0]
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
        # a rejected gold version is not built on (shuzhi.publish); after a rejection the re-run writes again
        suffix = {n: publish.rebase(spark, settings, f"gold.{n}", batch_date, by="verify").txn_suffix(batch_date)
                  for n in GOLD}
        silver = load_silver(spark, settings)
        clean_q = read_if_exists(spark, settings, "silver", "quarantine")
        s = {k: v.persist(StorageLevel.MEMORY_AND_DISK) for k, v in silver_inputs(silver, keyring).items()}
        params = VerifyParams(load_rules(), precedence(), load_tags())
        try:
            pending = pending_police_identities(s.get("pop"), clean_q, read_if_exists(spark, settings, "bronze",
                                                                                        "quarantine"), keyring)
            pending = pending.persist() if pending is not None else None
            stale = stale_refs(clean_q, silver)
            stale = stale.persist() if stale is not None else None
            obs = observed_conflicts(s, bd, pending, run_id, stale, params).persist(StorageLevel.MEMORY_AND_DISK)
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
                        txn=(txn + ":conflicts" + suffix["conflicts"], 0), partition_by=[],
                        stats_columns=registry.stats_columns("gold.conflicts", obs.columns),
                        comment="conflicts register: cross-department contradictions, first/last seen, open/resolved")
            reg = read_table(spark, path)
            res.open_total = reg.filter(F.col("status") == "open").count()
            res.opened = reg.filter(F.col("first_seen") == F.lit(bd)).count()
            res.resolved = reg.filter(F.col("resolved_on") == F.lit(bd)).count()
            # theme tables
            person = person_theme(s, reg, bd, params).persist(StorageLevel.MEMORY_AND_DISK)
            themes = {"person": person}
            if "houses" in s:
                themes["house"] = house_theme(s, bd)
            if "incidents" in s:
                themes["event"] = event_theme(s, person, themes.get("house"), bd)
            if "ss" in s:
                themes["organisation"] = organisation_theme(s, bd)
            for name, df in themes.items():
                write_table(df, settings.table_path("gold", name), mode="snapshot",
                            txn=(f"{txn}:{name}{suffix[name]}", 0),
                            stats_columns=registry.stats_columns(f"gold.{name}", df.columns),
                            comment=f"theme table (专题库) {name}, rebuilt nightly from silver")
                res.themes[name] = read_table(spark, settings.table_path("gold", name)).count()
            person.unpersist()
            _record_hits(spark, settings, res, txn)
            for df in (obs, pending, stale):
                if df is not None:
                    df.unpersist()
        finally:
            for v in s.values():
                v.unpersist()
        audit.rows_in = sum(res.findings.values())
        audit.rows_loaded = res.open_total
        audit.detail = json.dumps({"opened": res.opened, "resolved": res.resolved, "themes": res.themes})
    return res


def _record_hits(spark, settings: Settings, res: VerifyResult, txn: str) -> None:
    bd = date.fromisoformat(res.batch_date)
    record_rule_hits(spark, settings, [dict(batch_date=bd, stage="verify", rule_id=r, source="all", entity="all",
                                            action="register", hits=n) for r, n in sorted(res.findings.items())],
                     replace_where=f"batch_date = DATE'{res.batch_date}' AND stage = 'verify'", txn=txn)


def summary(res: VerifyResult) -> dict:
    return {"stage": "verify", **asdict(res)}


def task(spark, settings: Settings, batch_date: str, run_id: str | None = None) -> dict:
    """The pipeline's verify (Airflow, the CLI): its gold tables are governed — read at their
    published versions only (``shuzhi.publish``)."""
    publish.govern(spark, settings, [f"gold.{n}" for n in GOLD], batch_date)
    return summary(run(spark, settings, batch_date, run_id=run_id))


def main(argv: list[str] | None = None) -> int:
    return job_main("verify", task, {"batch_date": "required: YYYY-MM-DD"}, argv)


if __name__ == "__main__":
    sys.exit(main())
