"""Stage sub-commands of the ``shuzhi`` CLI (the same job functions Airflow tasks call)."""
from __future__ import annotations

import json


def _spark(settings):
    from .spark import get_spark

    return get_spark(settings)


def cmd_demo(settings, a) -> int:
    import os

    # Airflow's task logs at INFO drown the summary; a `shuzhi airflow -- dags test …` keeps them.
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    from .demo import run_demo

    res = run_demo(settings, residents=a.residents, nights=a.nights, start=a.start, seed=a.seed)
    return 1 if res["failed"] else 0


def cmd_generate(settings, a) -> int:
    from datetime import date

    from .generator import generate

    gen = generate(settings.landing, settings.truth, residents=a.residents, nights=a.nights,
                   start_date=date.fromisoformat(a.start), seed=a.seed)
    print(f"{len(gen.files)} files for nights {', '.join(gen.nights)} in {settings.landing}; "
          f"{gen.truth_rows} ground-truth rows in {settings.truth}")
    return 0


def _run_stage(label: str, fn, *args) -> int:
    """Run one stage with a progress display; data faults print their message, not a trace."""
    from rich.console import Console

    from .errors import DeliveryRejected, GateFailed

    with Console().status(f"{label} …"):
        try:
            res = fn(*args)
        except DeliveryRejected as rej:
            print(f"REJECTED {rej}")
            return 3
        except GateFailed as exc:
            print(f"GATE FAILED {exc}")
            return 4
    print(json.dumps(res, ensure_ascii=False, indent=1))
    return 0


def cmd_ingest(settings, a) -> int:
    from .tasks import ingest

    return _run_stage(f"ingesting {a.source}/{a.batch_date}", ingest, a.source, a.batch_date, settings)


def cmd_gate(settings, a) -> int:
    from .tasks import gate

    return _run_stage(f"gate {a.table} {a.batch_date}", gate, a.table, a.batch_date, settings)


def cmd_summary(settings, a) -> int:
    from .reports import night_summary, render_summary

    render_summary(night_summary(_spark(settings), settings), settings)
    return 0


def register(sub) -> None:
    def scale(p):
        p.add_argument("--residents", type=int, default=20_000)
        p.add_argument("--nights", type=int, default=3)
        p.add_argument("--start", default="2026-11-25", help="first batch date")
        p.add_argument("--seed", type=int, default=20261127)

    p = sub.add_parser("demo", help="main job: generate nights, run the DAGs through Airflow, summarise")
    scale(p)
    p.set_defaults(fn=cmd_demo)
    p = sub.add_parser("generate", help="write department deliveries (and ground truth) for several nights")
    scale(p)
    p.set_defaults(fn=cmd_generate)
    p = sub.add_parser("ingest", help="ingest one delivery without Airflow")
    p.add_argument("source")
    p.add_argument("batch_date")
    p.set_defaults(fn=cmd_ingest)
    p = sub.add_parser("gate", help="run one table's gate for a batch date without Airflow")
    p.add_argument("table", help="e.g. bronze.police_population")
    p.add_argument("batch_date", nargs="?")
    p.set_defaults(fn=cmd_gate)
    p = sub.add_parser("summary", help="per night and source: delivered / loaded / quarantined / gates")
    p.set_defaults(fn=cmd_summary)
