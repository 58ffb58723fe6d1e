"""Spark jobs, one module per stage: pure DataFrame → DataFrame transforms plus a thin I/O
shell (``run``) and a ``main`` for spark-submit. Airflow tasks and the CLI call ``run``."""
