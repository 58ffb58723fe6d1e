"""Benchmark: a whole night (``shuzhi night``: ingest → clean → cross-verify → quality → report,
every gate on) against the floor pass, then a 1 % incremental night on the same lake.

    .venv/bin/python benchmarks/night_bench.py [--residents 1000000] [--home var/bench-night]

Night 1 is a full delivery; night 2 an incremental one (the generator's ``change_rate``, 1 % of
records by default). Each stage is timed; the floor is benchmarks/ingest_bench.py's pass (Spark's
reader → one Delta write per file) over night 1's files. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import PeakRSS, floor_pass  # noqa: E402


def run_night(settings, night: str) -> dict[str, float]:
    """``shuzhi night``'s runner (every stage, every gate, quality and the report, in this process),
    timed per stage by the runner itself."""
    from shuzhi.night import run_night as night_run

    def on_step(st):
        if st.status != "running":
            line = f"      {st.stage:<11} {st.target:<33} {st.seconds:7.1f} s  {st.status} {st.detail}"
            print(line[:160], flush=True)

    run = night_run(settings, night, on_step=on_step)
    if run.exit_code:
        failed = [f"{s.stage} {s.target}: {s.detail}" for s in run.steps if s.failed]
        print(f"night {night} did not pass: {failed}", flush=True)
    t = dict(run.stage_seconds())
    t["_rows"] = sum(r["manifest_rows"] or 0 for res in run.results("ingest") for r in res["files"])
    t["_loaded"] = sum(e["loaded"] for res in run.results("clean") for e in res["entities"])
    t["_quarantined"] = sum(e["quarantined"] for res in run.results("clean") for e in res["entities"])
    t["_open_conflicts"] = sum(res.get("open_total", 0) for res in run.results("verify"))
    return t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--residents", type=int, default=1_000_000)
    p.add_argument("--home", default="var/bench-night")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--change-rate", type=float, default=0.01)
    p.add_argument("--driver-memory", help="the driver JVM's heap (default: conf/environments.yaml's)")
    a = p.parse_args(argv)

    from feedsim import generate
    from shuzhi.config import Settings
    from shuzhi.crypto import Keyring
    from shuzhi.spark import get_spark

    home = Path(a.home).resolve()
    settings = Settings.load(home=home, key_dir=home / "keys")
    if a.driver_memory:
        settings = replace(settings, spark=replace(settings.spark, driver_memory=a.driver_memory))
    start = date(2026, 11, 25)
    nights = [start.isoformat(), (start + timedelta(days=1)).isoformat()]
    marker = settings.landing / f".generated-{a.residents}-{a.seed}-{a.change_rate}"
    if not marker.exists():
        shutil.rmtree(settings.landing, ignore_errors=True)
        shutil.rmtree(settings.truth, ignore_errors=True)
        t = time.perf_counter()
        # in a process of its own: the simulator's world must not count in this process's peak RSS
        kwargs = dict(residents=a.residents, nights=2, start_date=start, seed=a.seed, change_rate=a.change_rate)
        gen = multiprocessing.get_context("spawn").Process(target=generate, args=(settings.landing, settings.truth),
                                                           kwargs=kwargs)
        gen.start()
        gen.join()
        if gen.exitcode:
            raise SystemExit(f"the generator exited {gen.exitcode}")
        print(f"generate {a.residents:,} residents, 2 nights: {time.perf_counter() - t:.1f} s", flush=True)
        marker.touch()
    shutil.rmtree(settings.lake, ignore_errors=True)
    shutil.rmtree(home / "floor", ignore_errors=True)
    Keyring.create(settings.key_dir)
    spark = get_spark(settings, "shuzhi-bench-night")
    spark.range(1).count()

    with PeakRSS() as mem:
        s = time.perf_counter()
        floor_rows = floor_pass(spark, settings, nights[0])
        floor_s = time.perf_counter() - s
    print(f"driver memory {settings.spark.driver_memory}, master {settings.spark.master}, "
          f"{settings.spark.shuffle_partitions} shuffle partitions", flush=True)
    print(f"floor (read + write once, night 1): {floor_s:7.1f} s  {floor_rows:,} rows  peak {mem.peak / 2**30:.2f} GiB",
          flush=True)
    for i, night in enumerate(nights):
        with PeakRSS() as mem:
            t = run_night(settings, night)
        kind = "full" if i == 0 else f"incremental ({a.change_rate:.0%})"
        total = sum(v for k, v in t.items() if not k.startswith("_"))
        print(f"night {night} {kind}: {t['_rows']:,} records delivered, {t['_loaded']:,} loaded to silver, "
              f"{t['_quarantined']:,} quarantined by clean, {t['_open_conflicts']:,} open conflicts")
        for k, v in t.items():
            if not k.startswith("_"):
                print(f"    {k:<14} {v:7.1f} s  ({v / floor_s:5.2f}x floor)")
        gates = sum(v for k, v in t.items() if k.startswith("gate"))
        print(f"    {'whole night':<14} {total:7.1f} s  ({total / floor_s:5.2f}x floor)  "
              f"gates {gates / total:.0%} of it  peak {mem.peak / 2**30:.2f} GiB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
