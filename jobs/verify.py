"""Cross-verify: silver → gold. Link each person's records across departments by the identity-number
token, register every contradiction in the conflicts register, and rebuild the theme tables.

    spark-submit jobs/verify.py --batch-date 2026-11-27

Authority (conf/rules.yaml ``precedence``): the police population register for identity (name,
birth date, sex), civil affairs and health for death, social security for employment. The
detectors (``shuzhi.stages.conflicts``) are keyed by their rule ids in ``conf/rules.yaml``
(disabled rules do not run); the theme tables and their tags are ``shuzhi.stages.themes``. The
register (``gold.conflicts``) is maintained by ``MERGE`` on a stable conflict id: a contradiction
still present keeps its first-seen date; one no longer observed becomes ``resolved`` with the date.
The theme tables (专题库) are rebuilt from silver each night. Silver is read at its published
versions; the gold versions written here are read by no one until their gates publish them.
"""
from __future__ import annotations

import json
import logging
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date

from pyspark import StorageLevel
from pyspark.sql import functions as F

from shuzhi import ledgers, publish, registry
from shuzhi.access import read_all, read_if_exists
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring
from shuzhi.delta import merge_into, read_table, write_to
from shuzhi.jobmain import job_main
from shuzhi.rules import load_rules, load_tags, precedence
from shuzhi.stages import conflicts, themes
from shuzhi.stages.conflicts import ENTITY_OF

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


def run(spark, settings: Settings, batch_date: str, *, run_id: str | None = None,
        keyring: Keyring | None = None) -> VerifyResult:
    keyring = keyring or Keyring.load(settings.key_dir)
    run_id = run_id or uuid.uuid4().hex
    bd = date.fromisoformat(batch_date)
    res = VerifyResult(batch_date, "verified")
    with audited(spark, settings, stage="verify", source=None, batch_date=batch_date, run_id=run_id) as audit:
        last = publish.published_as_of(spark, settings, "gold", "person")
        if last is not None and last > bd:    # re-verifying an earlier night would roll gold back: nights go in order
            log.warning("verify %s: gold is already as of %s; nothing done", batch_date, last)
            res.status = audit.outcome = "noop"
            audit.detail = f"gold already as of {last}"
            return res
        fp = publish.inputs_fingerprint(spark, settings, [f"silver.{t}" for t in ENTITY_OF],
                                        ["silver.quarantine", "bronze.quarantine"])
        txn = f"verify:{batch_date}:{fp}"
        # a rejected gold version is not built on (shuzhi.publish); after a rejection the re-run writes again
        suffix = {n: publish.rebase(spark, settings, f"gold.{n}", batch_date, by="verify").txn_suffix(batch_date)
                  for n in GOLD}
        silver = read_all(spark, settings, ENTITY_OF, "verify")
        clean_q = read_if_exists(spark, settings, "silver", "quarantine")
        s = {k: v.persist(StorageLevel.MEMORY_AND_DISK) for k, v in conflicts.silver_inputs(silver, keyring).items()}
        params = conflicts.VerifyParams(load_rules(), precedence(), load_tags())
        cached = []
        try:
            pending = conflicts.pending_police_identities(s.get("pop"), clean_q, read_if_exists(
                spark, settings, "bronze", "quarantine"), keyring)
            stale = conflicts.stale_refs(clean_q, silver)
            cached = [df.persist() for df in (pending, stale) if df is not None]
            obs = conflicts.observed_conflicts(s, bd, pending, run_id, stale, params)
            cached.append(obs.persist(StorageLevel.MEMORY_AND_DISK))
            res.findings = {r["rule_id"]: r["n"] for r in obs.groupBy("rule_id").agg(F.count("*").alias("n")).collect()}
            merge_into(settings, "gold.conflicts", obs, txn=(txn + ":conflicts" + suffix["conflicts"], 0),
                       **conflicts.register_merge(batch_date))
            reg = read_table(spark, settings.table_path(*CONFLICTS))
            res.open_total, res.opened, res.resolved = conflicts.register_counts(reg, bd).collect()[0]
            person = themes.person_theme(s, reg, bd, params)
            cached.append(person.persist(StorageLevel.MEMORY_AND_DISK))
            for name, df in themes.theme_tables(s, person, bd).items():
                write_to(settings, f"gold.{name}", df, mode="snapshot", txn=(f"{txn}:{name}{suffix[name]}", 0))
                res.themes[name] = read_table(spark, settings.table_path("gold", name)).count()
            ledgers.record_verify_hits(spark, settings, batch_date, res.findings, txn)
        finally:
            for v in list(s.values()) + cached:
                v.unpersist()
        audit.rows_in = sum(res.findings.values())
        audit.rows_loaded = res.open_total
        audit.detail = json.dumps({"opened": res.opened, "resolved": res.resolved, "themes": res.themes})
    return res


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
