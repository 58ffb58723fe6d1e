"""A job killed mid-way leaves the lake consistent; the re-run completes it. The ingest job runs
as its own process (the spark-submit entry point), is SIGKILLed at several points, then re-run;
the lake must equal that of an uninterrupted run."""
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date

import pytest

from feedsim import generate
from jobs import ingest
from shuzhi.delta import read_table
from shuzhi.schemas import catalog

NIGHT = "2026-11-25"
pytestmark = pytest.mark.crash


def lake_state(spark, settings):
    out = {}
    for e in catalog().entities("police"):
        df = read_table(spark, settings.table_path("bronze", e.table_name))
        tok = [f.token_column for f in e.tokenised_fields if not f.element.separator]
        out[e.table_name] = sorted(map(tuple, df.select(e.record_id, "_file", "_row", "_delivery_id", *tok).collect()))
    q = read_table(spark, settings.table_path("bronze", "quarantine"))
    out["quarantine"] = sorted(map(tuple, q.select("_file", "_row", "reason_code", "_delivery_id").collect()))
    ledger = read_table(spark, settings.table_path("ops", "deliveries"))
    out["ledger"] = sorted(map(tuple, ledger.select("file", "manifest_rows", "bronze_rows", "quarantined_rows",
                                                    "balanced").collect()))
    return out


def test_killed_ingest_rerun_ends_like_uninterrupted(spark, settings, keyring, tmp_path):
    generate(settings.landing, settings.truth, residents=3000, nights=1, start_date=date.fromisoformat(NIGHT), seed=5)
    reference = replace(settings, lake=tmp_path / "reference-lake")
    ingest.run(spark, reference, "police", NIGHT, keyring=keyring)
    want = lake_state(spark, reference)

    env = {**os.environ, **settings.env_vars()}
    rng = random.Random(20261127)
    killed_states = []
    # kill as each next table of the job appears: during the population write, between tables
    # (quarantine), during houses, during incidents — every stage of the job is interrupted once
    milestones = ["bronze/police_population", "bronze/quarantine", "bronze/police_houses", "bronze/police_incidents"]
    for trial, milestone in enumerate(milestones):
        lake = tmp_path / f"lake-{trial}"
        s = replace(settings, lake=lake)
        env["SHUZHI_LAKE"] = str(lake)      # the child reads Settings from the environment
        proc = subprocess.Popen([sys.executable, "-m", "jobs.ingest", "--source", "police", "--batch-date", NIGHT],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (lake / milestone).exists() and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_states.append(proc.returncode)
        committed = {t: len(list((lake / "bronze" / t / "_delta_log").glob("*.json")))
                     for t in ("police_population", "police_houses", "police_incidents", "quarantine")
                     if (lake / "bronze" / t / "_delta_log").exists()}
        print(f"trial {trial}: exit {proc.returncode} at {milestone}; commits per table before the kill: {committed}")
        res = ingest.run(spark, s, "police", NIGHT, keyring=keyring)   # the re-run completes it
        assert all(f.balanced for f in res.files)
        assert lake_state(spark, s) == want, f"trial {trial}: killed with {committed} committed"
    assert sum(rc == -signal.SIGKILL for rc in killed_states) >= 3, killed_states
