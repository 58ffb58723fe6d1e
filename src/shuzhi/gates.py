"""The one gate runner: validate a stage's output against its Great Expectations suite.

A suite = the baseline derived from ``schemas/`` (structure, lineage, encryption, code lists)
+ the hand-written expectations in ``expectations/<suite>.json``. Every expectation carries
``meta.severity``: a failing ``critical`` one fails the gate (``GateFailed``: the Airflow task
fails and downstream stops); a failing ``warning`` one is recorded and the run goes on.
Results are appended to ``ops.gate_results`` and rendered in GX Data Docs under
``<lake>/reports/gx``. The validated frame is cached once, not re-read per expectation.

    >>> outcome = run_gate(spark, settings, "bronze", "police_population", "2026-11-27")  # doctest: +SKIP
    >>> outcome.status                                                                  # doctest: +SKIP
    'warned'
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark import StorageLevel
from pyspark.sql import functions as F

from . import deltalog, publish, registry
from .config import EXPECTATIONS_DIR, Settings
from .delta import committed_txn_version, read_table, rows_frame, table_exists, table_version, write_table
from .docs_offline import make_offline
from .errors import GateFailed, UsageError
from .rules import rules_for
from .schemas import Entity, catalog
from .stages.bronze import INGEST_CODES, LINEAGE_COLS

log = logging.getLogger("shuzhi.gates")
GATE_RESULTS = ("ops", "gate_results")
# GX computes a gate in two passes: every expectation's verdict first (BOOLEAN_ONLY: the unexpected
# counts of a suite are bundled into a few Spark jobs), then the failed expectations' counts and
# examples (DETAIL_FORMAT: one Spark job more per expectation), so a passing suite costs 11 Spark
# jobs instead of 37 (24 expectations over silver.police_population, /work/probe/gx_probe.py).
VERDICT_FORMAT = "BOOLEAN_ONLY"
DETAIL_FORMAT = "SUMMARY"
SEVERITIES = ("critical", "warning")


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: dict
    severity: str = "critical"
    why: str = ""

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"expectation {self.type}: severity {self.severity!r} not in {SEVERITIES}")


@dataclass
class GateOutcome:
    suite: str
    table: str
    batch_date: str | None
    rows: int
    status: str                       # passed | warned | failed
    failed_critical: list[str] = field(default_factory=list)
    failed_warning: list[str] = field(default_factory=list)
    evaluated: int = 0
    skipped_write: bool = False


def _e(expectation: str, severity: str, why: str, **kwargs) -> Expectation:
    return Expectation(expectation, kwargs, severity, why)


def bronze_baseline(entity: Entity) -> list[Expectation]:
    """Expectations every bronze table must meet, derived from its data-element declarations."""
    cat = catalog()
    tokens = [f.token_column for f in entity.tokenised_fields]
    ex = [_e("expect_table_columns_to_match_set", "critical", "bronze keeps the delivered fields + tokens + lineage",
             column_set=entity.field_names + tokens + LINEAGE_COLS, exact_match=True)]
    ex += [_e("expect_column_values_to_not_be_null", "critical", "lineage is complete", column=c)
           for c in ("_source", "_batch_date", "_file", "_row", "_delivery_id", "_run_id", "_key_id")]
    ex.append(_e("expect_compound_columns_to_be_unique", "critical", "one bronze row per delivered record",
                 column_list=["_file", "_row"]))
    for f in entity.fields:
        if f.is_encrypted:
            ex.append(_e("expect_column_values_to_be_of_type", "critical",
                         f"{f.name} is {f.sensitivity}: ciphertext only, never plaintext at rest",
                         column=f.name, type_="BinaryType"))
        if f.is_tokenised and not f.element.separator:
            ex.append(_e("expect_column_values_to_match_regex", "critical", "join token is an HMAC-SHA256",
                         column=f.token_column, regex=r"^[0-9a-f]{64}$"))
        if not f.nullable:
            ex.append(_e("expect_column_values_to_not_be_null", "critical", f"{f.name} is mandatory", column=f.name))
        if f.is_encrypted:
            continue
        el = f.element
        if el.code_list:
            ex.append(_e("expect_column_values_to_be_in_set", "warning",
                         f"{f.name} uses code list {el.code_list} (labels are corrected in the clean stage)",
                         column=f.name, value_set=sorted(cat.code_list(el.code_list).codes)))
        if el.pattern:
            ex.append(
                _e(
                    "expect_column_values_to_match_regex",
                    "warning",
                    f"{f.name} follows {el.standard or el.pattern}",
                    column=f.name,
                    regex=el.pattern,
                )
            )
    ex.append(_e("expect_column_values_to_be_unique", "warning", "a record id once per delivery (duplicates are "
                 "resolved by the clean stage)", column=entity.record_id))
    return ex


def quarantine_baseline() -> list[Expectation]:
    return [
        _e(
            "expect_column_values_to_be_in_set",
            "critical",
            "every quarantined record has a known reason code",
            column="reason_code",
            value_set=sorted(INGEST_CODES),
        ),
        _e("expect_column_values_to_not_be_null", "critical", "the raw record is kept", column="raw_record_enc"),
        _e(
            "expect_column_values_to_be_of_type",
            "critical",
            "raw text is encrypted",
            column="raw_record_enc",
            type_="BinaryType",
        ),
        _e(
            "expect_column_values_to_not_be_null",
            "critical",
            "each quarantined record names its place",
            column="locator",
        ),
        _e(
            "expect_compound_columns_to_be_unique",
            "critical",
            "one row per malformed record",
            column_list=["_source", "_file", "_row"],
        ),
    ]


def load_hand_written(suite: str, folder: Path = EXPECTATIONS_DIR) -> list[Expectation]:
    path = folder / f"{suite}.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    return [Expectation(e["type"], e.get("kwargs", {}), e.get("severity", "critical"), e.get("why", ""))
            for e in data["expectations"]]


def silver_baseline(entity: Entity) -> list[Expectation]:
    """What every silver table must hold, derived from the same declarations as its clean stage."""
    cat = catalog()
    ex = [_e("expect_table_columns_to_match_set", "critical", "silver has the canonical columns of schemas/",
             column_set=entity.silver_columns(), exact_match=True),
          _e("expect_column_values_to_not_be_null", "critical", "every record has its id", column="record_id"),
          _e("expect_column_values_to_be_unique", "critical", "one row per record id (latest version wins)",
             column="record_id"),
          _e("expect_column_values_to_not_be_null", "critical", "the update time decides versions",
             column="updated_at")]
    ex += [_e("expect_column_values_to_not_be_null", "critical", "lineage is complete", column=c)
           for c in ("_batch_date", "_file", "_row", "_delivery_id", "_key_id")]
    for f in entity.fields:
        col = f.silver_name
        if f.is_encrypted:
            ex.append(_e("expect_column_values_to_be_of_type", "critical",
                         f"{col} is {f.sensitivity}: ciphertext only", column=col, type_="BinaryType"))
            continue
        if f.element.code_list:
            ex.append(_e("expect_column_values_to_be_in_set", "warning",
                         f"{col} uses code list {f.element.code_list} (unknown codes are flagged, kept)",
                         column=col, value_set=sorted(cat.code_list(f.element.code_list).codes)))
        if f.element.pattern:
            ex.append(_e("expect_column_values_to_match_regex", "warning", f"{col} follows {f.element.standard}",
                         column=col, regex=f.element.pattern))
        if f.element.name == "citizen_id":
            ex.append(_e("expect_column_values_to_match_regex", "critical", "join token is an HMAC-SHA256",
                         column=f"{col}__tok", regex=r"^[0-9a-f]{64}$"))
        if f.required:
            ex.append(_e("expect_column_values_to_not_be_null", "critical", f"{col} is mandatory (empty ones are "
                         "quarantined)", column=col))
    pid = entity.person_id_field
    if pid is not None and pid.required:
        ex.append(_e("expect_column_values_to_not_be_null", "critical", "a usable identity number has a token",
                     column="citizen_id__tok"))
    return ex


def clean_quarantine_baseline() -> list[Expectation]:

    return [
        _e("expect_column_values_to_be_in_set", "critical", "every quarantined record names a clean rule",
           column="reason_code", value_set=sorted(r.id for r in rules_for("clean") if r.action == "quarantine")),
        _e("expect_column_values_to_be_of_type", "critical", "the record is encrypted", column="record_enc",
           type_="BinaryType"),
        _e("expect_compound_columns_to_be_unique", "critical", "one row per quarantined record",
           column_list=["_source", "_file", "_row"]),
    ]


def batch_column(layer: str, table: str) -> str | None:
    """Which column scopes a night's slice of a table (None: the gate validates the whole table);
    declared per table in ``schemas/tables.yaml``."""
    return registry.table(layer, table).batch_column


def augment(spark, settings: Settings, layer: str, table: str, df):
    """Derived columns some suites check: references between theme tables, conservation ratios."""


    def known(df, col, other, other_col, name):
        p = settings.table_path("gold", other)
        if not table_exists(spark, p):
            return df.withColumn(name, F.lit(None).cast("boolean"))
        keys = read_table(spark, p).select(F.col(other_col).alias("__k")).distinct().withColumn(name, F.lit(True))
        return (df.join(keys, df[col] == keys["__k"], "left").drop("__k")
                .withColumn(name, F.when(F.col(col).isNotNull(), F.coalesce(F.col(name), F.lit(False)))))

    if (layer, table) == ("gold", "event"):
        return known(df, "house_code", "house", "house_code", "house_known")
    if (layer, table) == ("gold", "person"):
        return known(df, "house_code", "house", "house_code", "house_known")
    if (layer, table) == ("ops", "retention_status"):
        return df.withColumn("held_lost", F.col("held_before") - F.col("held_after"))
    if (layer, table) == ("ops", "conservation"):
        return df.withColumn("quarantine_ratio", F.col("quarantined") / F.greatest(F.col("bronze_rows"), F.lit(1)))
    return df


def suite_for(layer: str, table: str) -> tuple[str, list[Expectation]]:
    """Suite name (= the table's name) and its expectations."""
    name = f"{layer}.{table}"
    entities = {e.table_name: e for e in catalog().entities()}
    if layer == "bronze" and table == "quarantine":
        base = quarantine_baseline()
    elif layer == "bronze":
        base = bronze_baseline(entities[table])
    elif layer == "silver" and table == "quarantine":
        base = clean_quarantine_baseline()
    elif layer == "silver" and table in entities:
        base = silver_baseline(entities[table])
    else:
        base = []
    return name, base + load_hand_written(f"{layer}_{table}")


def gate_tables() -> list[str]:
    """Every ``<layer>.<table>`` a gate has a suite for, sorted: the tables ``schemas/tables.yaml``
    declares with ``gate: baseline`` (derived from ``schemas/``: each entity's bronze and silver
    table, both quarantines) or ``gate: hand`` (``expectations/<layer>_<table>.json``); the
    registry refuses an expectations file of a table it does not gate. The one list the CLI and
    the tasks check a gate's table against (the DAGs gate it stage by stage)."""
    return registry.gated_tables()


def check_gate_table(table: str) -> tuple[str, str]:
    """``<layer>.<table>`` → (layer, table) if a gate has a suite for it; else a one-line UsageError
    listing the gated tables."""

    known = gate_tables()
    if table not in known:
        hint = "" if "." in table else " (name it <layer>.<table>)"
        raise UsageError(f"no gate for table {table!r}{hint}; gated tables: {', '.join(known)}")
    layer, name = table.split(".", 1)
    return layer, name


# ------------------------------------------------------------------------- GX plumbing

@lru_cache(maxsize=4)
def _context(reports_dir: str):
    import great_expectations as gx  # lazy: GX takes seconds to import; DAG files and the CLI import this module
    from great_expectations.data_context.types.base import ProgressBarsConfig

    Path(reports_dir).mkdir(parents=True, exist_ok=True)
    ctx = gx.get_context(mode="file", project_root_dir=reports_dir)
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)  # no tqdm in logs
    return ctx


def _gx_suite(name: str, expectations: list[Expectation]):
    import great_expectations as gx  # lazy: GX takes seconds to import; DAG files and the CLI import this module
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite = gx.ExpectationSuite(name=name)
    for e in expectations:
        suite.add_expectation_configuration(ExpectationConfiguration(
            type=e.type, kwargs=e.kwargs, severity=e.severity, meta={"severity": e.severity, "why": e.why}))
    return suite


# (reports dir, asset, suite, suite fingerprint) → (batch definition, checkpoint) of this process.
# Storing the data source, suite, validation definition and checkpoint is ~0.3 s a gate (four
# JSON stores written and read back); a checkpoint stays valid while its suite is unchanged, and GX
# checks at each run that what it holds is what is stored (else the objects are stored again).
_CHECKPOINTS: dict[tuple, tuple] = {}


def _checkpoint(ctx, key: tuple, expectations: list[Expectation]):
    import great_expectations as gx  # lazy: GX takes seconds to import; DAG files and the CLI import this module

    if key in _CHECKPOINTS:
        return _CHECKPOINTS[key]
    _, asset, suite_name, _ = key
    ds = ctx.data_sources.add_or_update_spark(name="shuzhi_spark")
    try:
        da = ds.get_asset(asset)
    except LookupError:
        da = ds.add_dataframe_asset(name=asset)
    try:
        bd = da.get_batch_definition("whole")
    except (KeyError, LookupError, ValueError):
        bd = da.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add_or_update(_gx_suite(suite_name, expectations))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite_name, data=bd, suite=suite))
    cp = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"gate:{suite_name}", validation_definitions=[vd], actions=[],
        result_format={"result_format": VERDICT_FORMAT}))
    _CHECKPOINTS[key] = bd, cp
    return bd, cp


def validate(df, settings: Settings, suite_name: str, expectations: list[Expectation], asset: str,
             run_name: str = "whole-table"):
    """Run a suite over a (cached) DataFrame through a GX checkpoint, then write its Data Docs page.

    The run is named ``run_name`` (the batch date), so the page sits under
    ``validations/<suite>/<batch date>/``. The result's ``success`` is the project's verdict
    (no *critical* expectation failed) before the page is rendered: GX counts any failure, and a
    gate that only warned would otherwise read as "Failed" to the office."""
    # lazy: GX takes seconds to import; DAG files and the CLI import this module
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions import ResourceFreshnessAggregateError

    ctx = _context(str(settings.reports_dir))
    cached = (str(settings.reports_dir), asset, suite_name, suite_fingerprint(expectations))
    t0 = time.perf_counter()
    for attempt in (1, 2):
        bd, cp = _checkpoint(ctx, cached, expectations)
        try:
            # run_time given: without it GX derives one from a date-like run name, and a second run
            # of the same night would overwrite the first one's page
            result = cp.run(batch_parameters={"dataframe": df},
                            run_id=RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc)))
            break
        except ResourceFreshnessAggregateError:   # the stored objects changed under the cached ones
            _CHECKPOINTS.pop(cached, None)
            if attempt == 2:
                raise
    ((key, vres),) = result.run_results.items()
    failed = {_config_key(r.expectation_config) for r in vres.results if not r.success}
    if failed and VERDICT_FORMAT != DETAIL_FORMAT:
        # the failed expectations again, with their counts and examples, for the page and ops.gate_results
        # (a batch validated outside the checkpoint: nothing of this pass is stored on its own)
        detail = bd.get_batch(batch_parameters={"dataframe": df}).validate(
            _gx_suite(f"{suite_name}:detail", [e for e in expectations if _config_key(e) in failed]),
            result_format={"result_format": DETAIL_FORMAT})
        by_config = {_config_key(r.expectation_config): r for r in detail.results}
        vres.results = [by_config.get(_config_key(r.expectation_config), r) for r in vres.results]
    vres.success = not any(not r.success and (r.expectation_config.meta or {}).get("severity", "critical") == "critical"
                           for r in vres.results)
    ctx.validation_results_store.set(key, vres)
    built = time.time() - 1                        # mtime granularity: a page written this second counts
    t1 = time.perf_counter()
    ctx.build_data_docs(resource_identifiers=[key])
    make_offline(data_docs_index(settings).parent, settings.jars_dir, since=built)
    log.info("gate %s %s: %d expectations validated in %.1f s, Data Docs in %.1f s", suite_name, run_name,
             len(expectations), t1 - t0, time.perf_counter() - t1)
    return vres


def _config_key(cfg) -> str:
    return json.dumps([cfg.type, {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}], sort_keys=True,
                      default=str)


def suite_fingerprint(expectations: list[Expectation]) -> str:

    blob = json.dumps([(e.type, e.kwargs, e.severity) for e in expectations], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def data_fingerprint(df, root: Path | str, partition: dict[str, str] | None = None) -> str:
    """Identity of the data a (partition-pruned) Delta read sees: its data files, named relative
    to the table's folder ``root`` — so a lake copied or restored to another folder is the same
    data. Delta never rewrites a file in place, so the same files mean the same rows — whatever
    other batches did. ``partition`` (column → value; every column a partition column of the
    table, the read's filter) lets the files be read from the log (``deltalog.active_files``: no
    query to plan, 1–1.4 s of ``inputFiles`` a gate); without it, or when the log is not ours to
    replay, Spark lists them."""

    files = deltalog.active_files(root, partition) if partition is not None else deltalog.UNKNOWN
    if files is deltalog.UNKNOWN:
        files = df.inputFiles()
    return hashlib.sha256("\n".join(sorted(relative_files(files, root))).encode()).hexdigest()[:16]


def relative_files(uris, root: Path | str) -> list[str]:
    """Data-file URIs (``file:///…/table/part-….parquet``) as paths relative to the table folder.

    >>> relative_files(["file:///lake/bronze/t/_batch_date=2026-11-27/part-0.parquet"], "/lake/bronze/t")
    ['_batch_date=2026-11-27/part-0.parquet']
    """

    base = os.path.abspath(str(root))
    out = []
    for u in uris:
        p = unquote(urlparse(u).path) if "://" in u or u.startswith("file:") else u
        rel = os.path.relpath(p, base)
        out.append(p if rel.startswith("..") else rel)
    return out


def _outcome_from(rows: list, suite: str, table: str, batch_date: str | None) -> GateOutcome:
    out = GateOutcome(suite, table, batch_date, rows[0]["rows"] if rows else 0, "passed", evaluated=len(rows),
                      skipped_write=True)
    for r in rows:
        if not r["success"]:
            label = f"{r['expectation']}({r['column']})"
            (out.failed_critical if r["severity"] == "critical" else out.failed_warning).append(label)
    out.status = "failed" if out.failed_critical else "warned" if out.failed_warning else "passed"
    return out


def _raise_or_return(out: GateOutcome, settings: Settings, raise_on_critical: bool) -> GateOutcome:
    for lab in out.failed_warning:
        log.warning("gate %s %s: warning expectation failed: %s", out.suite, out.batch_date, lab)
    if out.failed_critical and raise_on_critical:
        raise GateFailed(f"gate {out.suite} for {out.batch_date}: {len(out.failed_critical)} critical expectation(s) "
                         f"failed: {', '.join(out.failed_critical)}; see ops.gate_results and Data Docs at "
                         f"{data_docs_index(settings)}")
    return out


def run_gate(spark, settings: Settings, layer: str, table: str, batch_date: str | None, *,
             raise_on_critical: bool = True) -> GateOutcome:
    """Validate ``<layer>.<table>`` (the batch's partition) and record the results.

    The same suite over the same table version gives the same verdict: if that pair was already
    evaluated, its recorded results are returned (and nothing is re-read or re-written)."""


    path = settings.table_path(layer, table)
    version = table_version(spark, path)
    suite_name, expectations = suite_for(layer, table)
    df = read_table(spark, path)
    bcol = batch_column(layer, table)
    if batch_date and bcol:
        df = df.filter(F.col(bcol) == F.lit(date.fromisoformat(batch_date)))
    # the read's slice, when it is a partition's (or the whole table): its files are in the log
    pruned = {} if not (batch_date and bcol) else \
        {bcol: batch_date} if bcol in registry.table(layer, table).partition_by else None
    txn_id = (f"gate:{suite_name}:{batch_date}:{data_fingerprint(df, path, pruned)}:"
              f"{suite_fingerprint(expectations)}")
    results_path = settings.table_path(*GATE_RESULTS)
    if table_exists(spark, results_path) and committed_txn_version(spark, results_path, txn_id) is not None:
        prior = (read_table(spark, results_path).filter((F.col("txn_id") == txn_id)).collect())
        out = _outcome_from(prior, suite_name, f"{layer}.{table}", batch_date)
        _publish(spark, settings, out, version)
        return _raise_or_return(out, settings, raise_on_critical)
    verdicts = publish.verdicts(spark, settings, f"{layer}.{table}")
    if batch_date and not bcol and table_exists(spark, results_path) \
            and not (verdicts.governed and not verdicts.judged(version)):
        # A whole-table gate (silver, gold) re-run for a night it judged before later nights
        # moved the table on, so the verdict recorded for that night stands (re-judging today's
        # table under an old batch date would answer a different question). Not so when a
        # governed table has a version no gate has judged (a night re-run after its version was
        # rejected): that version is judged, or it could never be published.
        fp = suite_fingerprint(expectations)
        prior = (read_table(spark, results_path)
                 .filter((F.col("suite") == suite_name) & (F.col("batch_date") == F.lit(date.fromisoformat(batch_date)))
                         & F.col("txn_id").endswith(f":{fp}")))
        later = (
            read_table(spark, results_path)
            .filter((F.col("suite") == suite_name) & (F.col("batch_date") > F.lit(date.fromisoformat(batch_date))))
            .limit(1)
            .count()
        )
        latest = prior.agg(F.max("evaluated_at")).collect()[0][0] if later else None
        if latest is not None:
            rows = prior.filter(F.col("evaluated_at") == latest).collect()
            return _raise_or_return(_outcome_from(rows, suite_name, f"{layer}.{table}", batch_date), settings,
                                    raise_on_critical)
    df = augment(spark, settings, layer, table, df).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = df.count()
        vres = validate(df, settings, suite_name, expectations, asset=f"{layer}.{table}",
                        run_name=batch_date or "whole-table")
    finally:
        df.unpersist()
    now = datetime.now()
    gate_run_id = uuid.uuid4().hex
    out = GateOutcome(suite_name, f"{layer}.{table}", batch_date, rows, "passed", evaluated=len(vres.results))
    records = []
    for r in vres.results:
        cfg = r.expectation_config
        sev = (cfg.meta or {}).get("severity", "critical")
        res = r.result or {}
        label = f"{cfg.type}({cfg.kwargs.get('column') or cfg.kwargs.get('column_list') or ''})"
        if not r.success:
            (out.failed_critical if sev == "critical" else out.failed_warning).append(label)
        observed = res.get("observed_value")
        records.append(dict(
            gate_run_id=gate_run_id, suite=suite_name, table=f"{layer}.{table}",
            batch_date=date.fromisoformat(batch_date) if batch_date else None, table_version=version, rows=rows,
            expectation=cfg.type, column=str(cfg.kwargs.get("column") or cfg.kwargs.get("column_list") or ""),
            kwargs=json.dumps({k: v for k, v in cfg.kwargs.items() if k not in ("batch_id",)}, ensure_ascii=False,
                              default=str)[:2000],
            severity=sev, why=(cfg.meta or {}).get("why"), success=bool(r.success),
            unexpected_count=res.get("unexpected_count"),
            unexpected_percent=float(res["unexpected_percent"]) if res.get("unexpected_percent") is not None else None,
            observed=None if observed is None else json.dumps(observed, ensure_ascii=False, default=str)[:500],
            evaluated_at=now, txn_id=txn_id))
    out.status = "failed" if out.failed_critical else "warned" if out.failed_warning else "passed"
    w = write_table(rows_frame(spark, "ops.gate_results", records), results_path,
                    mode="append", append_only=True, partition_by=["suite"],
                    txn=(txn_id, 0), comment="GX gate results, one row per expectation")
    out.skipped_write = w.skipped
    _publish(spark, settings, out, version)
    return _raise_or_return(out, settings, raise_on_critical)


def _publish(spark, settings: Settings, out: GateOutcome, version: int) -> None:
    """The verdict on the version just judged: published unless a critical expectation failed
    (``shuzhi.publish``; only tables whose gate validates the whole table have versions to publish)."""
    publish.record_verdict(spark, settings, out.table, version, out.batch_date, not out.failed_critical,
                           f"gate:{out.suite}")


def latest_runs(results):
    """Each (table, batch date)'s latest gate run in ``ops.gate_results``: one row with its suite,
    how many expectations it evaluated and how many failed, by severity (``critical``,
    ``warning``), and its ``outcome`` (failed | warned | passed) — what the cockpit and the closing
    tables report."""
    latest = results.groupBy("table", "batch_date").agg(F.max_by("gate_run_id", "evaluated_at").alias("gate_run_id"))
    failed = ~F.col("success")
    return (results.join(latest, ["table", "batch_date", "gate_run_id"]).groupBy("table", "batch_date", "suite")
            .agg(F.count(F.lit(1)).alias("expectations"),
                 F.sum(F.when(failed & (F.col("severity") == "critical"), 1).otherwise(0)).alias("critical"),
                 F.sum(F.when(failed & (F.col("severity") != "critical"), 1).otherwise(0)).alias("warning"))
            .withColumn("outcome", F.when(F.col("critical") > 0, "failed").when(F.col("warning") > 0, "warned")
                        .otherwise("passed")))


def data_docs_index(settings: Settings) -> Path:
    return settings.reports_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
