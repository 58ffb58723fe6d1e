"""Destroy: remove every record past its destruction age (and not under a legal hold) from every
place the lake holds it, prove it with a byte scan of the whole lake, and certify it.

    spark-submit jobs/destroy.py --as-of 2056-12-01

Policy: ``conf/retention.yaml`` (classes, clocks, holds). What goes with a record, and the
phases — plan, fingerprints, certificate started, logical erasure (silver last), purge and
VACUUM, byte scan, certificate completed — are ``shuzhi.erasure``; this shell runs them in order.
A finding fails the job (``DestructionNotProven``). Crash safety: silver, from which the plan is
computed, is deleted last, and the fingerprints are kept outside the lake until the certificate
is complete, so a re-run completes the destruction; after completion it finds nothing due: no
write, no certificate.
"""
from __future__ import annotations

import json
import sys
import uuid
from dataclasses import asdict
from datetime import date, datetime

from pyspark.sql import functions as F

from shuzhi import erasure, publish
from shuzhi.audit import audited
from shuzhi.config import Settings
from shuzhi.crypto import Keyring, certificate_key
from shuzhi.delta import read_table, table_exists
from shuzhi.erasure import CERTIFICATES, DestroyResult
from shuzhi.errors import DestructionNotProven
from shuzhi.jobmain import job_main
from shuzhi.retention import Policy, load_policy
from shuzhi.selection import ASK, Holds, record_status, retention_task, select_records


def run(spark, settings: Settings, as_of: str, *, run_id: str | None = None, keyring: Keyring | None = None,
        policy: Policy | None = None, holds: Holds | None | object = ASK) -> DestroyResult:
    """Destroy what is past its destruction age at ``as_of`` and under no hold (``holds``: the
    lake's records and holds at ``as_of``, when the caller has just read them: ``holds_at``)."""
    keyring = keyring or Keyring.load(settings.key_dir)
    policy = policy or load_policy()
    run_id = run_id or uuid.uuid4().hex
    day = date.fromisoformat(as_of)
    res = DestroyResult(as_of, "destroyed")
    cert_key = certificate_key(settings.key_dir)
    work = erasure.Workfile(settings, cert_key, as_of)
    with audited(spark, settings, stage="destroy", source=None, batch_date=as_of, run_id=run_id) as audit, \
            publish.retention_writes(spark, settings, "destroy", as_of):
        sel = select_records(spark, settings, day, policy, keyring, "destroy", with_archive=True, holds=holds)
        if sel is None:
            res.status, audit.outcome, audit.detail = "noop", "noop", "no silver tables"
            return res
        res.held_records = sel.held_records
        res.lap("select")
        plan = erasure.plan(spark, settings, sel, policy, day)
        res.records, res.persons, saved = plan.records, plan.n_persons, work.load()
        res.lap("plan")
        if plan.empty and saved["certificate_id"] is None:
            res.status, audit.outcome = "noop", "noop"
            audit.detail = f"nothing past its destruction age at {as_of} (held: {res.held_records})"
            return res
        started = datetime.now()
        fp = erasure.fingerprints(spark, settings, plan, keyring, cert_key, saved, as_of)
        work.save(fp.saved())                       # before the first delete
        res.certificate_id = fp.certificate_id
        res.lap("fingerprints")
        erasure.start_certificate(spark, settings, plan, fp, policy, day, run_id, started)
        res.rows_deleted = erasure.erase(spark, settings, plan, as_of)
        res.lap("erase")
        res.tables_vacuumed = erasure.purge(spark, settings, fp.touched, policy, as_of)
        res.lap("purge_vacuum")
        findings, res.files_scanned, again = erasure.prove(spark, settings, fp, res.tables_vacuumed, policy, as_of)
        res.tables_vacuumed += again
        res.findings = [str(f) for f in findings[:200]]
        res.lap("scan")
        erasure.complete_certificate(spark, settings, plan, fp, policy, day, run_id, started, res, findings)
        audit.rows_in = sum(res.records.values())
        audit.detail = json.dumps({"certificate": fp.certificate_id, "persons": res.persons,
                                   "rows_deleted": res.rows_deleted}, ensure_ascii=False)[:4000]
        if findings:
            res.status = "failed"
            raise DestructionNotProven(
                f"destruction as of {as_of} (certificate {fp.certificate_id}) not proven: {len(findings)} findings "
                f"under {settings.lake}: " + "; ".join(res.findings[:10]))
        work.remove()
    return res


def summary(res: DestroyResult) -> dict:
    return {"stage": "destroy", **asdict(res)}


def verify(spark, settings: Settings, as_of: str, held_before: int, policy: Policy, keyring: Keyring) -> dict:
    """After destroy: the certificate of ``as_of`` (if anything was destroyed) must be complete with
    its byte scan passed; records the destroy stage's status row for the gate."""
    path = settings.table_path(*CERTIFICATES)
    certs = (read_table(spark, path).filter(F.col("as_of") == F.lit(date.fromisoformat(as_of)))
             .select("certificate_id", "phase", "verification").collect() if table_exists(spark, path) else [])
    started = {r["certificate_id"] for r in certs if r["phase"] == "started"}
    done = {r["certificate_id"] for r in certs if r["phase"] == "completed"}
    detail = "; ".join(f"{r['certificate_id']}: {r['verification']}" for r in certs if r["phase"] != "started") \
        or "nothing destroyed"
    return record_status(spark, settings, as_of, "destroy", held_before=held_before, verified=started <= done,
                         detail=detail, policy=policy, keyring=keyring)


def task(spark, settings: Settings, as_of: str, verify_held_before: str | int | None = None,
         run_id: str | None = None) -> dict:
    """Destroy as of a date (its status row is recorded by the verify step), or, given
    ``verify_held_before``, verify that destruction and record the status row."""
    if verify_held_before is not None:
        return verify(spark, settings, as_of, int(verify_held_before), load_policy(), Keyring.load(settings.key_dir))
    return retention_task(spark, settings, "destroy", as_of,
                          lambda keyring, policy, holds: summary(run(spark, settings, as_of, run_id=run_id,
                                                                     keyring=keyring, policy=policy, holds=holds)),
                          record=False)


def main(argv: list[str] | None = None) -> int:
    return job_main("destroy", task, {"as_of": "required: the date ages are counted to (YYYY-MM-DD)",
                                      "verify_held_before": "verify the destruction of as_of instead; records "
                                                            "under hold before it"}, argv)


if __name__ == "__main__":
    sys.exit(main())
