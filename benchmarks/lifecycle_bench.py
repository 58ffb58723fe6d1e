"""Benchmark: the retention stages (tier, archive, destroy with its byte scan) on the lake that
benchmarks/night_bench.py built, each against the floor pass, then each re-run (a no-op).

    .venv/bin/python benchmarks/lifecycle_bench.py [--home var/bench-night]

Run night_bench.py first (it leaves a 1,000,000-resident lake of two nights in ``--home``).
The as-of dates simulate years: tiering half a year on, archive five and a half years on,
destruction ten years on (incidents, quarantined records, ended assistance cases). Prints
figures; asserts nothing. The lake is changed (copy it first to keep it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import PeakRSS, floor_pass  # noqa: E402

NIGHT = "2026-11-25"
STAGES = [("tier", "2027-06-01"), ("archive", "2032-06-01"), ("destroy", "2037-01-01")]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", default="var/bench-night")
    p.add_argument("--skip-floor", type=float, help="reuse a floor time measured before (seconds)")
    p.add_argument("--driver-memory", help="the driver JVM's heap (default: conf/environments.yaml's)")
    a = p.parse_args(argv)

    from jobs import archive, destroy, tier
    from shuzhi.config import Settings
    from shuzhi.crypto import Keyring
    from shuzhi.spark import get_spark

    home = Path(a.home).resolve()
    settings = Settings.load(home=home, key_dir=home / "keys")
    if a.driver_memory:
        settings = replace(settings, spark=replace(settings.spark, driver_memory=a.driver_memory))
    print(f"driver memory {settings.spark.driver_memory}, {os.cpu_count()} cores (the byte scan's workers)", flush=True)
    if not (settings.lake / "silver").is_dir():
        print(f"no lake in {settings.lake}: run benchmarks/night_bench.py --home {a.home} first", file=sys.stderr)
        return 2
    keyring = Keyring.load(settings.key_dir)
    spark = get_spark(settings, "shuzhi-bench-lifecycle")
    spark.range(1).count()
    if a.skip_floor:
        floor_s = a.skip_floor
        print(f"floor (read + write once, night 1): {floor_s:7.1f} s (measured before)")
    else:
        import shutil

        shutil.rmtree(home / "floor", ignore_errors=True)
        s = time.perf_counter()
        rows = floor_pass(spark, settings, NIGHT)
        floor_s = time.perf_counter() - s
        print(f"floor (read + write once, night 1): {floor_s:7.1f} s  {rows:,} rows", flush=True)
    size = sum(f.stat().st_size for f in settings.lake.rglob("*") if f.is_file())
    print(f"lake: {size / 2**30:.2f} GiB under {settings.lake}")
    jobs = {"tier": tier, "archive": archive, "destroy": destroy}
    for stage, as_of in STAGES:
        for attempt in ("run", "re-run"):
            with PeakRSS() as mem:
                s = time.perf_counter()
                res = jobs[stage].run(spark, settings, as_of, keyring=keyring)
                took = time.perf_counter() - s
            what = {"tier": lambda r: f"demoted {sum(r.demoted.values()):,} rows, "
                                      f"promoted {sum(r.promoted.values()):,}",
                    "archive": lambda r: f"archived {sum(r.archived.values()):,} rows, removed from live "
                                         f"{sum(r.removed.values()):,}",
                    "destroy": lambda r: f"{sum(r.records.values()):,} records, {r.persons:,} persons, "
                                         f"{sum(r.rows_deleted.values()):,} rows deleted, {len(r.tables_vacuumed)} "
                                         f"tables vacuumed, {r.files_scanned:,} files scanned, "
                                         f"{len(r.findings)} findings; phases (s) {r.seconds}"}[stage](res)
            print(f"{stage:<8} {attempt:<7} as of {as_of}: {took:7.1f} s ({took / floor_s:5.2f}x floor)  "
                  f"peak {mem.peak / 2**30:.2f} GiB  [{res.status}] {what}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
