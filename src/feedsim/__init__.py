"""Department feed generator: deliveries exactly as ``shared/feeds/SPEC.md`` describes, night by night.

Deterministic: for a seed, identical bytes. Writes ``<landing>/<source>/<batch_date>/`` data files
then ``manifest.json`` (last, atomically), and the ground truth of every planted defect under a
separate truth root (never inside the landing tree)::

    >>> from pathlib import Path
    >>> import tempfile
    >>> from feedsim import generate, DefectRates
    >>> tmp = Path(tempfile.mkdtemp())
    >>> s = generate(tmp / "landing", tmp / "truth", residents=500, nights=2)  # doctest: +SKIP
    >>> s.nights                                                               # doctest: +SKIP
    ['2026-11-25', '2026-11-26']

CLI: ``python -m feedsim --landing L --truth T --residents 20000 --nights 3``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from .defects import ACTIONS, DefectRates, plant_records
from .population import World
from .tables import DELIVERIES, tables_for_night
from .truth import persistent_truth, record_truth, write_deliveries, write_population, write_truth_csv
from .writers import csv_chunks, jsonl_chunks, parquet_bytes, write_bytes, write_manifest, write_text, xml_chunks

__all__ = ["DefectRates", "GenerationSummary", "generate", "main", "DEFECT_CLASSES", "ACTIONS"]

DEFECT_CLASSES = tuple(ACTIONS)


@dataclass(frozen=True)
class GenerationSummary:
    nights: list[str]                  # batch dates written, ISO
    files: list[dict]                  # {source, batch_date, kind, name, entity, rows}
    truth_rows: int


def _is_full(night: int, full_resync_every: int) -> bool:
    return night == 1 or (full_resync_every > 0 and (night - 1) % full_resync_every == 0)


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def generate(landing_root: Path, truth_root: Path, *, residents: int = 20_000, nights: int = 3,
             start_date: date = date(2026, 11, 25), seed: int = 20261127,
             rates: DefectRates | None = None, change_rate: float = 0.01,
             full_resync_every: int = 7) -> GenerationSummary:
    """Write ``nights`` nights of deliveries for all four departments, and their ground truth.

    Night 1 is ``full`` for every source; later nights are ``incremental`` (records created or
    changed since the previous delivery) with a ``full`` re-sync every ``full_resync_every``
    nights (0 = never). ``rates`` default to realistic defect rates; ``DefectRates.none()`` gives
    clean deliveries (and an empty truth).
    """
    landing_root, truth_root = Path(landing_root), Path(truth_root)
    if _inside(truth_root, landing_root) or _inside(landing_root, truth_root):
        raise ValueError(f"truth root {truth_root} and landing root {landing_root} must not contain each other: "
                         "the ground truth must stay outside the landing tree")
    if nights < 1:
        raise ValueError(f"nights must be at least 1, got {nights}")
    if not 0.0 <= change_rate <= 0.5:
        raise ValueError(f"change_rate must be in [0, 0.5], got {change_rate}")
    rates = DefectRates() if rates is None else rates
    world = World(residents, np.datetime64(start_date.isoformat(), "D"), seed, rates, change_rate)
    summary_files: list[dict] = []
    written: list[str] = []
    truth_total = 0
    for night in range(1, nights + 1):
        day = start_date + timedelta(days=night - 1)
        batch = day.isoformat()
        if night > 1:
            world.advance(np.datetime64(batch, "D"))
        full = _is_full(night, full_resync_every)
        kind = "full" if full else "incremental"
        tables = tables_for_night(world, full)
        names = {se: f"{DELIVERIES[se[0]][[e[0] for e in DELIVERIES[se[0]]].index(se[1])][1]}_"
                     f"{batch.replace('-', '')}.{DELIVERIES[se[0]][[e[0] for e in DELIVERIES[se[0]]].index(se[1])][2]}"
                 for se in tables}
        truth: list[dict] = []
        for se, t in tables.items():
            planted = plant_records(t, rates, seed, batch)
            truth += record_truth(t, planted, batch, names[se], world)
        truth += persistent_truth(world, tables, names, batch)
        deliveries: dict = {}
        for source, entities in DELIVERIES.items():
            folder = landing_root / source / batch
            folder.mkdir(parents=True, exist_ok=True)
            stale = folder / "manifest.json"
            if stale.exists():  # a re-run: the old delivery is incomplete until the new manifest lands
                stale.unlink()
            files, info = [], []
            for entity, _stem, _ext, fmt, declared in entities:
                t = tables[(source, entity)]
                name = names[(source, entity)]
                rng = np.random.default_rng([seed, 7, night, sum(name.encode()) % 100_000])
                u_enc, u_bom = rng.random(), rng.random()
                actual, bom = declared, False
                path = folder / name
                if fmt == "csv":
                    if u_enc < rates.encoding_utf8_as_gb18030:
                        actual = "UTF-8"
                        bom = u_bom < rates.bom
                    sha, size = write_text(path, csv_chunks(t), "gb18030" if actual == "GB18030" else "utf-8", bom)
                elif fmt == "jsonl":
                    bom = u_bom < rates.bom
                    sha, size = write_text(path, jsonl_chunks(t), "utf-8", bom)
                elif fmt == "xml":
                    bom = u_bom < rates.bom
                    sha, size = write_text(path, xml_chunks(t, batch), "utf-8", bom)
                else:
                    sha, size = write_bytes(path, parquet_bytes(t))
                files.append({"name": name, "entity": entity, "rows": t.n_rows, "sha256": sha,
                              "encoding": declared})
                info.append({"name": name, "entity": entity, "rows": t.n_rows, "sha256": sha,
                             "encoding_declared": declared, "encoding_actual": actual, "bom": bom,
                             "bytes": size})
                if actual != declared:
                    truth.append(_file_truth(source, entity, batch, name, "encoding_utf8_as_gb18030",
                                             f"file is UTF-8 while the manifest says {declared}"))
                if bom:
                    truth.append(_file_truth(source, entity, batch, name, "bom",
                                             "UTF-8 byte-order mark at the start of the file"))
                summary_files.append({"source": source, "batch_date": batch, "kind": kind, "name": name,
                                      "entity": entity, "rows": t.n_rows})
            write_manifest(folder, {"source": source, "batch_date": batch, "kind": kind, "files": files})
            deliveries[source] = {"kind": kind, "files": info}
        write_truth_csv(truth_root / batch / "truth.csv", truth)
        write_deliveries(truth_root / batch / "deliveries.json", {"batch_date": batch, "sources": deliveries})
        write_population(truth_root / batch, world)
        truth_total += len(truth)
        written.append(batch)
    write_population(truth_root, world)
    return GenerationSummary(nights=written, files=summary_files, truth_rows=truth_total)


def _file_truth(source: str, entity: str, batch: str, name: str, cls: str, detail: str) -> dict:
    from .truth import truth_row
    return truth_row(source=source, entity=entity, batch_date=batch, file=name, defect_class=cls, detail=detail)


def main(argv: list[str] | None = None) -> int:
    """CLI: generate deliveries and ground truth."""
    ap = argparse.ArgumentParser(prog="python -m feedsim",
                                 description="Write department deliveries (SPEC.md) and their ground truth.")
    ap.add_argument("--landing", type=Path, required=True, help="landing root (deliveries go here)")
    ap.add_argument("--truth", type=Path, required=True, help="ground-truth root (outside the landing tree)")
    ap.add_argument("--residents", type=int, default=20_000)
    ap.add_argument("--nights", type=int, default=3)
    ap.add_argument("--start-date", type=date.fromisoformat, default=date(2026, 11, 25))
    ap.add_argument("--seed", type=int, default=20261127)
    ap.add_argument("--change-rate", type=float, default=0.01)
    ap.add_argument("--full-resync-every", type=int, default=7)
    ap.add_argument("--clean", action="store_true", help="no defects at all (every rate 0)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    try:
        s = generate(args.landing, args.truth, residents=args.residents, nights=args.nights,
                     start_date=args.start_date, seed=args.seed,
                     rates=DefectRates.none() if args.clean else None, change_rate=args.change_rate,
                     full_resync_every=args.full_resync_every)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for f in s.files:
        print(f"{f['source']:16} {f['batch_date']} {f['kind']:11} {f['name']:32} {f['rows']:>10,} rows")
    print(f"{len(s.nights)} night(s), {s.truth_rows:,} truth rows, {time.perf_counter() - t0:.1f} s")
    return 0
