"""``feedsim`` command line: the department simulator, outside the product.

    feedsim generate --nights 3        # write department deliveries into shuzhi's landing zone
    feedsim score 2026-11-27 --truth var/truth   # a processed night against the ground truth
    feedsim demo                       # generate, run shuzhi's DAGs for every night, score each night

``feedsim`` imports ``shuzhi`` (its settings, its argument checks, its demo runner); ``shuzhi``
never imports ``feedsim``: the product cannot see the simulator's ground truth. Arguments are
checked the way ``shuzhi`` checks its own: one ``error:`` line, exit code 2, before Spark starts.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date
from pathlib import Path

from shuzhi.cli import run_cli
from shuzhi.commands import check_lake
from shuzhi.config import Settings
from shuzhi.errors import UsageError
from shuzhi.exports import parse_night

from . import generate
from .scoring import score_night


def check_truth(settings: Settings, truth: str, batch_date: str) -> None:
    folder = Path(truth)
    if not folder.is_dir():
        raise UsageError(f"--truth {truth}: no such folder (the generator's ground truth, e.g. {settings.truth})")
    if not (folder / batch_date / "truth.csv").is_file():
        nights = sorted(p.parent.name for p in folder.glob("*/truth.csv"))
        raise UsageError(f"--truth {truth} has no ground truth for {batch_date} ({batch_date}/truth.csv); "
                         f"nights: {', '.join(nights) or 'none'}")


def check_usage(settings: Settings, a) -> None:
    if getattr(a, "start", None) is not None:
        parse_night(a.start, "--start")
    for attr in ("residents", "nights"):
        if getattr(a, attr, 1) < 1:
            raise UsageError(f"--{attr} {getattr(a, attr)} must be at least 1")
    if a.cmd == "score":
        parse_night(a.batch_date, "batch date")
        check_truth(settings, a.truth, a.batch_date)
        check_lake(settings)


def _generate(settings: Settings, a):
    return generate(settings.landing, settings.truth, residents=a.residents, nights=a.nights,
                    start_date=date.fromisoformat(a.start), seed=a.seed)


def cmd_generate(settings: Settings, a) -> int:
    gen = _generate(settings, a)
    print(f"{len(gen.files)} files for nights {', '.join(gen.nights)} in {settings.landing}; "
          f"{gen.truth_rows} ground-truth rows in {settings.truth}")
    return 0


def cmd_score(settings: Settings, a) -> int:
    from shuzhi.spark import get_spark

    print(score_night(get_spark(settings), settings, Path(a.truth), a.batch_date).table())
    return 0


def cmd_demo(settings: Settings, a) -> int:
    """Generate the nights, run shuzhi's demo over them (Airflow, summary, exports) and score each
    night against the ground truth right after it ran (a later night changes what is open)."""
    from rich.console import Console

    from shuzhi.demo import run_demo
    from shuzhi.spark import get_spark

    # Airflow's task logs at INFO drown the summary; a `shuzhi airflow -- dags test …` keeps them.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    console = Console() if sys.stdout.isatty() else Console(width=160)
    console.print(f"[bold]feedsim[/bold]: {a.residents:,} residents, {a.nights} nights from {a.start}, "
                  f"seed {a.seed}")
    gen = _generate(settings, a)
    console.print(f"generated {len(gen.files)} files into {settings.landing} "
                  f"(ground truth: {gen.truth_rows:,} planted items in {settings.truth})")
    scores = {}

    def after_night(night: str) -> None:
        scores[night] = score_night(get_spark(settings), settings, settings.truth, night)

    res = run_demo(settings, gen.nights, console=console, after_night=after_night)
    console.print("[bold]clean + cross-verify against the generator's ground truth[/bold] "
                  "(per night: planted items found / missed / false findings; records unaccounted)")
    for night, sc in scores.items():
        console.print(f"  {night}: expected {sc.tp + sc.fn:,}  found {sc.tp:,}  missed {sc.fn:,}  false {sc.fp:,}  "
                      f"recall {sc.recall:.4f}  precision {sc.precision:.4f}  "
                      f"unaccounted {sc.delivered - sc.accounted} of {sc.delivered:,}")
    console.print(f"cockpit (the office's report of the last night; index.html beside it): {res['cockpit']}")
    return 1 if res["failed"] else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="feedsim", description="department simulator for shuzhi (deliveries "
                                                            "as shared/feeds/SPEC.md describes, with ground truth)")
    p.add_argument("--env", help="shuzhi environment in conf/environments.yaml (default: SHUZHI_ENV or local)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    def scale(q):
        q.add_argument("--residents", type=int, default=20_000)
        q.add_argument("--nights", type=int, default=3)
        q.add_argument("--start", default="2026-11-25", help="first batch date")
        q.add_argument("--seed", type=int, default=20261127)

    q = sub.add_parser("demo", help="main job: generate nights, run shuzhi's DAGs through Airflow, summarise, score")
    scale(q)
    q.set_defaults(fn=cmd_demo)
    q = sub.add_parser("generate", help="write department deliveries (and ground truth) for several nights")
    scale(q)
    q.set_defaults(fn=cmd_generate)
    q = sub.add_parser("score", help="score a processed night against the generator's ground truth")
    q.add_argument("batch_date")
    q.add_argument("--truth", required=True, help="the generator's truth folder")
    q.set_defaults(fn=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), check_usage, argv)


if __name__ == "__main__":
    sys.exit(main())
