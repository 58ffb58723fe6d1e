"""The one entry point of every job as its own process (``spark-submit jobs/<job>.py …``).

A job module declares its arguments and a ``task(spark, settings, **args) -> dict``; this parses
them, runs the task in a SparkSession and prints its dict as one JSON line on stdout. A data fault
(rejected delivery, failed critical gate, unproven destruction, unusable argument) is one line on
stderr and its own exit code (``errors.EXIT_CODES``), so the runner raises the same exception as
in-process.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from .config import Settings
from .errors import EXIT_CODES, ShuzhiError
from .spark import get_spark


def job_main(name: str, task: Callable[..., dict], args: dict[str, str], argv: list[str] | None = None) -> int:
    """``args``: option name (``batch_date`` → ``--batch-date``) → help; every option is a string
    and optional unless its help starts with ``required:``."""
    p = argparse.ArgumentParser(prog=f"jobs/{name}.py", description=f"the {name} job (prints one JSON line)")
    for opt, help_ in args.items():
        p.add_argument(f"--{opt.replace('_', '-')}", dest=opt, help=help_, required=help_.startswith("required:"))
    p.add_argument("--run-id")
    p.add_argument("--json", action="store_true", help="accepted for compatibility: the output is always JSON")
    a = vars(p.parse_args(argv))
    a.pop("json")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.load()
    try:
        out = task(get_spark(settings, f"shuzhi-{name}"), settings, **a)
    except ShuzhiError as exc:
        code = next((c for t, c in EXIT_CODES.items() if isinstance(exc, t)), 1)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return code
    print(json.dumps(out, ensure_ascii=False, default=str))
    return 0
