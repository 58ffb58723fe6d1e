"""Benchmark: a whole night (ingest → clean → cross-verify, every gate on) against the floor pass,
then a 1 % incremental night on the same lake.

    .venv/bin/python benchmarks/night_bench.py [--residents 1000000] [--home var/bench-night]

Night 1 is a full delivery; night 2 an incremental one (the generator's ``change_rate``, 1 % of
records by default). Each stage is timed; the floor is benchmarks/ingest_bench.py's pass (Spark's
reader → one Delta write per file) over night 1's files. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import PeakRSS, floor_pass  # noqa: E402

SILVER_GATES = ["silver.quarantine", "silver.findings", "ops.conservation"]
GOLD_GATES = ["gold.conflicts", "gold.person", "gold.house", "gold.event", "gold.organisation"]


def run_night(spark, settings, keyring, night: str) -> dict[str, float]:
    from jobs import clean, gate, ingest, verify
    from shuzhi.schemas import catalog

    tables = [e.table_name for e in catalog().entities()]
    t = {}
    s = time.perf_counter()
    rows = 0
    for src in catalog().sources:
        res = ingest.run(spark, settings, src, night, keyring=keyring)
        rows += sum(f.manifest_rows for f in res.files)
    t["ingest"] = time.perf_counter() - s
    s = time.perf_counter()
    for tb in [f"bronze.{x}" for x in tables] + ["bronze.quarantine"]:
        gate.run(spark, settings, tb, night)
    t["gates bronze"] = time.perf_counter() - s
    s = time.perf_counter()
    res = clean.run(spark, settings, night, keyring=keyring)
    t["clean"] = time.perf_counter() - s
    s = time.perf_counter()
    for tb in [f"silver.{x}" for x in tables] + SILVER_GATES:
        gate.run(spark, settings, tb, night)
    t["gates silver"] = time.perf_counter() - s
    s = time.perf_counter()
    v = verify.run(spark, settings, night, keyring=keyring)
    t["cross-verify"] = time.perf_counter() - s
    s = time.perf_counter()
    for tb in GOLD_GATES:
        gate.run(spark, settings, tb, night)
    t["gates gold"] = time.perf_counter() - s
    t["_rows"] = rows
    t["_loaded"] = sum(r.loaded for r in res)
    t["_quarantined"] = sum(r.quarantined for r in res)
    t["_open_conflicts"] = v.open_total
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--residents", type=int, default=1_000_000)
    p.add_argument("--home", default="var/bench-night")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--change-rate", type=float, default=0.01)
    a = p.parse_args(argv)

    from feedsim import generate
    from shuzhi.config import Settings
    from shuzhi.crypto import Keyring
    from shuzhi.spark import get_spark

    home = Path(a.home).resolve()
    settings = Settings.load(home=home, key_dir=home / "keys")
    start = date(2026, 11, 25)
    nights = [start.isoformat(), (start + timedelta(days=1)).isoformat()]
    marker = settings.landing / f".generated-{a.residents}-{a.seed}-{a.change_rate}"
    if not marker.exists():
        shutil.rmtree(settings.landing, ignore_errors=True)
        shutil.rmtree(settings.truth, ignore_errors=True)
        t = time.perf_counter()
        generate(settings.landing, settings.truth, residents=a.residents, nights=2, start_date=start, seed=a.seed,
                 change_rate=a.change_rate)
        print(f"generate {a.residents:,} residents, 2 nights: {time.perf_counter() - t:.1f} s", flush=True)
        marker.touch()
    shutil.rmtree(settings.lake, ignore_errors=True)
    shutil.rmtree(home / "floor", ignore_errors=True)
    keyring = Keyring.create(settings.key_dir)
    spark = get_spark(settings, "shuzhi-bench-night")
    spark.range(1).count()

    with PeakRSS() as mem:
        s = time.perf_counter()
        floor_rows = floor_pass(spark, settings, nights[0])
        floor_s = time.perf_counter() - s
    print(f"floor (read + write once, night 1): {floor_s:7.1f} s  {floor_rows:,} rows  peak {mem.peak / 2**30:.2f} GiB",
          flush=True)
    for i, night in enumerate(nights):
        with PeakRSS() as mem:
            t = run_night(spark, settings, keyring, night)
        kind = "full" if i == 0 else f"incremental ({a.change_rate:.0%})"
        total = sum(v for k, v in t.items() if not k.startswith("_"))
        print(f"night {night} {kind}: {t['_rows']:,} records delivered, {t['_loaded']:,} loaded to silver, "
              f"{t['_quarantined']:,} quarantined by clean, {t['_open_conflicts']:,} open conflicts")
        for k, v in t.items():
            if not k.startswith("_"):
                print(f"    {k:<14} {v:7.1f} s  ({v / floor_s:5.2f}x floor)")
        print(f"    {'whole night':<14} {total:7.1f} s  ({total / floor_s:5.2f}x floor)  "
              f"peak {mem.peak / 2**30:.2f} GiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
