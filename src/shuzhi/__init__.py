"""数治 shuzhi — batch data-governance lakehouse.

One importable package shared by the Spark jobs (``jobs/``), the Airflow DAGs (``dags/``),
the CLI and the tests. Importing it is cheap: Spark, GX and Airflow are imported lazily by
the modules that need them, so DAG files can import ``shuzhi.config`` at parse time.
"""
__version__ = "0.1.0"
