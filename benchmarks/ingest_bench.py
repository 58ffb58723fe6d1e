"""Benchmark: the floor vs. the real ingest, on the same deliveries.

    .venv/bin/python benchmarks/ingest_bench.py [--residents 1000000] [--home var/bench]

(a) floor: one Spark pass that reads every raw delivery file of the night with Spark's reader
    and writes it once to Delta — no manifest, no quarantine, no encryption, no gates;
(b) ingest: the real thing for the same deliveries — manifest verification, quarantine,
    AES-GCM + HMAC tokens, idempotent writes, conservation check, then every bronze gate.
Prints both times, their ratio and the peak resident memory of the process tree (Python driver
+ JVM). A benchmark prints figures; it asserts nothing about speed.
"""
from __future__ import annotations

import argparse
import shutil
import threading
import time
from datetime import date
from pathlib import Path

import psutil


class PeakRSS:
    """Samples the RSS of this process and its children (the Spark JVM) every 0.2 s."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                rss = me.memory_info().rss + sum(c.memory_info().rss for c in me.children(recursive=True))
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def floor_pass(spark, settings, night: str) -> int:
    """Read every delivered file with Spark's own reader and write it once to Delta."""
    from shuzhi.manifest import delivery_dir
    from shuzhi.readers import read_schema
    from shuzhi.schemas import catalog

    rows = 0
    for e in catalog().entities():
        path = str(delivery_dir(settings.landing, e.source, night) / e.file_name(night))
        schema = read_schema(e)
        if e.format == "csv":
            df = spark.read.schema(schema).option("header", True).option("encoding", "GB18030").csv(path)
        elif e.format == "jsonl":
            df = spark.read.schema(schema).json(path)
        elif e.format == "xml":
            df = spark.read.format("xml").schema(schema).option("rowTag", e.row_tag).load(path)
        else:
            df = spark.read.parquet(path)
        out = settings.home / "floor" / e.table_name
        df.write.format("delta").mode("overwrite").save(str(out))
        rows += spark.read.format("delta").load(str(out)).count()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--residents", type=int, default=1_000_000)
    p.add_argument("--home", default="var/bench")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--keep-lake", action="store_true", help="do not wipe the bench lake first")
    a = p.parse_args(argv)

    from feedsim import generate
    from jobs import gate, ingest
    from shuzhi.config import Settings
    from shuzhi.crypto import Keyring
    from shuzhi.schemas import catalog
    from shuzhi.spark import get_spark

    home = Path(a.home).resolve()
    settings = Settings.load(home=home, key_dir=home / "keys")
    night = "2026-11-25"
    marker = settings.landing / f".generated-{a.residents}-{a.seed}"
    if not marker.exists():
        shutil.rmtree(settings.landing, ignore_errors=True)
        t = time.perf_counter()
        generate(settings.landing, settings.truth, residents=a.residents, nights=1,
                 start_date=date.fromisoformat(night), seed=a.seed)
        print(f"generate   {a.residents:>9,} residents: {time.perf_counter() - t:7.1f} s")
        marker.touch()
    if not a.keep_lake:
        shutil.rmtree(settings.lake, ignore_errors=True)
        shutil.rmtree(home / "floor", ignore_errors=True)
    keyring = Keyring.create(settings.key_dir)
    files = sorted(p for p in settings.landing.rglob("*") if p.is_file() and p.name != "manifest.json"
                   and not p.name.startswith("."))
    size = sum(p.stat().st_size for p in files)
    print(f"deliveries: {len(files)} files, {size / 2**20:,.0f} MiB")

    spark = get_spark(settings, "shuzhi-bench")
    spark.range(1).count()  # JVM warm-up outside the timings

    with PeakRSS() as mem_floor:
        t = time.perf_counter()
        rows = floor_pass(spark, settings, night)
        floor_s = time.perf_counter() - t
    print(f"(a) floor  read+write once        : {floor_s:7.1f} s  {rows:>10,} rows  "
          f"peak {mem_floor.peak / 2**30:.2f} GiB")

    with PeakRSS() as mem_ingest:
        t = time.perf_counter()
        loaded = quarantined = 0
        for src in catalog().sources:
            res = ingest.run(spark, settings, src, night, keyring=keyring)
            loaded += sum(f.bronze_rows for f in res.files)
            quarantined += sum(f.quarantined_rows for f in res.files)
        ingest_s = time.perf_counter() - t
        t = time.perf_counter()
        for e in catalog().entities():
            gate.run(spark, settings, f"bronze.{e.table_name}", night)
        gate.run(spark, settings, "bronze.quarantine", night)
        gate_s = time.perf_counter() - t
    total = ingest_s + gate_s
    print(f"(b) ingest manifest+quarantine+enc: {ingest_s:7.1f} s  {loaded:>10,} loaded, {quarantined:,} quarantined")
    print(f"    gates  (7 suites)             : {gate_s:7.1f} s")
    print(f"    ingest + gates                : {total:7.1f} s  peak {mem_ingest.peak / 2**30:.2f} GiB")
    print(f"ratio (b)/(a): ingest {ingest_s / floor_s:.2f}x, ingest+gates {total / floor_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
