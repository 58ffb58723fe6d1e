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
from pyspark.sql import functions as F

from jobs import ingest
from shuzhi.delta import read_table, table_exists
from shuzhi.generator import generate
from shuzhi.schemas import catalog

NIGHT = "2026-11-25"
pytestmark = pytest.mark.slow


def lake_state(spark, settings):
    out = {}
    for e in catalog().entities("police"):
        df = read_table(spark, settings.table_path("bronze", e.table_name))
        tok = [f.token_column for f in e.tokenised_fields if not f.element.separator]
        out[e.table_name] = sorted(map(tuple, df.select(e.record_id, "_file", "_row", "_delivery_id", *tok).collect()))
    q = read_table(spark, settings.table_path("bronze", "quarantine"))
    out["quarantine"] = sorted(map(tuple, q.select("_file", "_row", "reason_code", "_delivery_id").collect()))
    out["ledger"] = sorted(map(tuple, read_table(spark, settings.table_path("ops", "deliveries"))
                               .select("file", "manifest_rows", "bronze_rows", "quarantined_rows", "balanced").collect()))
    return out


def test_killed_ingest_rerun_ends_like_uninterrupted(spark, settings, keyring, tmp_path):
    generate(settings.landing, settings.truth, residents=3000, nights=1, start_date=date.fromisoformat(NIGHT), seed=5)
    reference = replace(settings, lake=tmp_path / "reference-lake")
    ingest.run(spark, reference, "police", NIGHT, keyring=keyring)
    want = lake_state(spark, reference)

    env = {**os.environ, **settings.env_vars()}
    rng = random.Random(20261127)
    killed_states = []
    for trial in range(3):
        lake = tmp_path / f"lake-{trial}"
        s = replace(settings, lake=lake)
        env["SHUZHI_HOME"] = str(settings.home)
        # the child reads Settings from the environment: point its lake at this trial's folder
        env["SHUZHI_LAKE"] = str(lake)
        proc = subprocess.Popen([sys.executable, "-m", "jobs.ingest", "--source", "police", "--batch-date", NIGHT],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        # wait until the job has started writing, then kill it at a random moment
        while time.monotonic() < deadline and not (lake / "bronze").exists() and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(rng.uniform(0.0, 6.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_states.append(proc.returncode)
        committed = [t for t in ("police_population", "police_houses", "police_incidents", "quarantine")
                     if table_exists(spark, lake / "bronze" / t)]
        print(f"trial {trial}: exit {proc.returncode}, tables committed before the kill: {committed}")
        res = ingest.run(spark, s, "police", NIGHT, keyring=keyring)   # the re-run completes it
        assert all(f.balanced for f in res.files)
        assert lake_state(spark, s) == want, f"trial {trial}: killed with {committed} committed"
    assert any(rc == -signal.SIGKILL for rc in killed_states), killed_states
