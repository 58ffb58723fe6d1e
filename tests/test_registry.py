"""The table registry (schemas/tables.yaml, shuzhi.registry): every lake table declared once, its
Delta statistics derived from sensitivity levels, docs/tables.md generated from it.

Unit: the docs are not stale; statistics never on an L3/L4 column, a ciphertext, a token or a
digest, and never laxer than the writers' hand lists of today; the gated tables are those of
expectations/ and schemas/; the declared columns are the writers' schemas; the yaml refuses
unknown keys. Integration: a real lake (the shared lifecycle lake of tests/conftest.py; then a copy
of it gated, tiered, archived and restored) holds only registered tables, every column of each
declared, and no statistics on anything sensitive — read from the Delta logs themselves."""
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from shuzhi import registry
from shuzhi.config import EXPECTATIONS_DIR, read_yaml
from shuzhi.schemas import catalog
from shuzhi.stages.bronze import LINEAGE_COLS

ENTITIES = catalog().entities()
SENSITIVE_NAMES = {"raw_record_enc", "record_enc", "person_hint"}


def sensitive(name: str) -> bool:
    return name in SENSITIVE_NAMES or name.endswith(("_enc", "__tok", "__mtok"))


def bronze_columns(e) -> list[str]:
    return e.field_names + [f.token_column for f in e.tokenised_fields] + LINEAGE_COLS


def silver_columns(e) -> list[str]:
    return e.silver_columns()


def encrypted(e, layer_of_fields: str) -> set[str]:
    """The entity's L3/L4 columns, straight from schemas/ (not through the registry)."""
    return {f.name if layer_of_fields == "bronze" else f.silver_name for f in e.fields if f.sensitivity in ("L3", "L4")}


def columns_of(t: registry.Table) -> list[str]:
    """What the writers put in the table: the code's own column lists for entity tables, the
    declared columns for the others."""
    if t.entity is None:
        return [c.name for c in t.columns]
    like = t.like or t.family
    if like.startswith("bronze."):
        return bronze_columns(t.entity)
    return silver_columns(t.entity) + (["_month"] if t.layer == "cold" else [])


def entity_encrypted(t: registry.Table) -> set[str]:
    if t.entity is None:
        return set()
    return encrypted(t.entity, "bronze" if (t.like or t.family).startswith("bronze.") else "silver")


# Today's hand-written lists (copied from the writers' write_table/merge_table calls), as
# functions of a table's columns. Tables not here get Delta's default: statistics on every column.
def _hand_lists():
    from shuzhi.stages.bronze import stats_columns_for

    themes_hidden = ("citizen_id", "name", "ethnicity", "person_token", "owner_token", "name__mtok", "person_tokens")
    restore_key = ["_batch_date", "_file", "_row", "record_id"]     # ROW_KEY + ["record_id"]
    hand = {
        # jobs/ingest.py: shuzhi.stages.bronze.stats_columns_for (called, not copied)
        "bronze.<source>_<entity>": lambda t, cols: stats_columns_for(t.entity, SimpleNamespace(columns=cols)),
        # jobs/ingest.py: the ingest quarantine
        "bronze.quarantine": lambda t, cols: [c for c in cols if c != "raw_record_enc"],
        # jobs/clean.py: the clean quarantine
        "silver.quarantine": lambda t, cols: [c for c in cols if c not in ("citizen_id_enc", "citizen_id__tok",
                                                                           "person_hint", "record_enc")],
        # jobs/clean.py: the MERGE into silver
        "silver.<source>_<entity>": lambda t, cols: [c for c in cols if c in (
            "record_id", "updated_at", "_batch_date", "_source", "_delivery_id", "_row", "_file")],
        # jobs/tier.py: the move to the cold tier
        "cold.<source>_<entity>": lambda t, cols: [c for c in cols if c in (
            "record_id", "updated_at", "_batch_date", "_source", "_row", "_file")],
        # jobs/archive.py: restore
        "restored.<batch>__silver__<source>_<entity>": lambda t, cols: [c for c in cols if c in restore_key],
        "restored.<batch>__bronze__<source>_<entity>": lambda t, cols: [c for c in cols if c in restore_key],
        # jobs/verify.py: the conflicts register MERGE
        "gold.conflicts": lambda t, cols: ["conflict_id", "rule_id", "severity", "status", "first_seen", "last_seen",
                                           "resolved_on"],
    }
    for theme in ("person", "house", "event", "organisation"):       # jobs/verify.py: the theme tables
        hand[f"gold.{theme}"] = lambda t, cols: [c for c in cols if c not in themes_hidden]
    return hand


# ------------------------------------------------------------------ unit

@pytest.mark.unit
def test_docs_tables_md_is_generated_from_the_registry():
    assert registry.DOCS.is_file(), f"docs/tables.md is missing; run: {registry.REGENERATE}"
    assert registry.DOCS.read_text(encoding="utf-8") == registry.render_markdown(), (
        f"docs/tables.md is stale (schemas/tables.yaml or schemas/ changed); regenerate it: {registry.REGENERATE}")


@pytest.mark.unit
def test_stats_never_on_l3_l4_ciphertext_tokens_or_digests():
    for t in registry.tables():
        cols = columns_of(t)
        assert registry.undeclared(t.key, cols) == [], f"{t.key}: columns the registry does not declare"
        stats = registry.stats_columns(t.key, cols)
        assert set(stats) <= set(cols) and stats == [c for c in cols if c in stats]     # a subset, in order
        bad = [c for c in stats if sensitive(c) or c in entity_encrypted(t)]
        assert bad == [], f"{t.key}: statistics allowed on sensitive columns {bad}"
        for c in stats:
            col = t.column(c)
            assert col.level in ("L1", "L2") and col.kind == "value", (t.key, c, col)
        hidden = set(cols) - set(stats)
        assert entity_encrypted(t) <= hidden and {c for c in cols if sensitive(c)} <= hidden


@pytest.mark.unit
def test_stats_at_least_as_strict_as_todays_hand_lists():
    hand = _hand_lists()
    compared = set()
    for t in registry.tables():
        if t.family not in hand:
            continue
        cols = columns_of(t)
        ours, theirs = registry.stats_columns(t.key, cols), hand[t.family](t, cols)
        laxer = sorted(set(ours) - set(theirs))
        assert not laxer, f"{t.key}: the registry allows statistics on {laxer}, which the writer does not"
        assert set(ours) == set(theirs) & set(cols), f"{t.key}: registry {ours} vs writer {theirs}"
        compared.add(t.family)
    assert compared == set(hand)


# The writers that still state their schema as a StructType: (module, function) → table. The ops
# tables' writers build their rows with the registry's own schema (shuzhi.delta.schema_of).
WRITER_SCHEMAS = {
    "gold.conflicts": ("stages.conflicts", "conflicts_schema"),
}
SCHEMA_FROM_REGISTRY = ("ops.deliveries", "ops.conservation", "ops.rule_hits", "ops.job_runs", "ops.access_log",
                        "ops.gate_results", "ops.destruction_certificates", "ops.published", "ops.retention_status")


@pytest.mark.unit
def test_declared_columns_are_the_writers_schemas():
    import importlib

    from shuzhi.delta import schema_of

    for key, (module, fn) in WRITER_SCHEMAS.items():
        module = f"shuzhi.{module}" if module.startswith("stages.") else module
        schema = getattr(importlib.import_module(module), fn)()
        written = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        declared = [(c.name, c.type.replace("long", "bigint")) for c in registry.table(key).columns]
        assert declared == written, f"{key}: schemas/tables.yaml declares {declared}, {module}.{fn} writes {written}"
    # the derived schema says what the yaml says: names, types (Spark's spelling) and NOT NULL
    for key in SCHEMA_FROM_REGISTRY:
        got = [(f.name, f.dataType.simpleString(), f.nullable) for f in schema_of(key).fields]
        declared = [(c.name, c.type.replace("long", "bigint"), c.nullable) for c in registry.table(key).columns]
        assert got == declared, key
    assert [f.name for f in schema_of("ops.published").fields if not f.nullable] == ["table", "version", "status",
                                                                                     "at"]
    # and nobody restates one of those schemas by hand: no module but shuzhi.delta builds a StructType
    # whose first columns are an ops table's
    root = Path(__file__).resolve().parents[1]
    sources = [p for p in [*(root / "src" / "shuzhi").rglob("*.py"), *(root / "jobs").glob("*.py")]
               if p.name != "delta.py"]
    for key in SCHEMA_FROM_REGISTRY:
        first = registry.table(key).columns[0].name
        for p in sources:
            text = p.read_text(encoding="utf-8")
            assert f'StructField("{first}"' not in text and f'("{first}", s)' not in text, (
                f"{p.relative_to(root)} states {key}'s schema by hand; use shuzhi.delta.rows_frame({key!r}, rows)")


@pytest.mark.unit
def test_a_column_type_of_the_yaml_parses_and_a_bad_one_is_named():
    from shuzhi.delta import spark_type

    assert spark_type("array<struct<table:string,rows_deleted:long,state:string,log_entries_until:date>>"
                      ).simpleString() == "array<struct<table:string,rows_deleted:bigint,state:string," \
                                          "log_entries_until:date>>"
    with pytest.raises(ValueError, match="decimal"):
        spark_type("decimal(10,2)")


@pytest.mark.unit
def test_an_undeclared_column_gets_no_statistics_and_the_name_rules_hold_whatever_the_level():
    assert registry.stats_columns("silver.police_population", ["record_id", "brand_new_column"]) == ["record_id"]
    assert registry.stats_columns("ops.deliveries", ["source", "nobody_declared_me"]) == ["source"]
    assert registry.stats_columns("bronze.police_population", ["RECORD_ID", "GMSFHM", "GMSFHM__tok", "XBDM"]) == [
        "RECORD_ID", "XBDM"]
    assert registry.undeclared("bronze.police_population", ["RECORD_ID", "NOT_A_FIELD__tok"]) == ["NOT_A_FIELD__tok"]
    for name in ("raw_record_enc", "record_enc", "person_hint", "x_enc", "y__tok", "name__mtok"):
        assert registry.never_stats(name)


@pytest.mark.unit
def test_gated_tables_are_the_suites_of_expectations_and_schemas():
    # today's rule (shuzhi.gates.gate_tables before the registry): a baseline for each entity's bronze
    # and silver table and both quarantines, plus every expectations/<layer>_<table>.json
    names = [e.table_name for e in ENTITIES]
    derived = {f"{layer}.{t}" for layer in ("bronze", "silver") for t in names + ["quarantine"]}
    hand = {p.stem.replace("_", ".", 1) for p in EXPECTATIONS_DIR.glob("*.json")}
    assert registry.gated_tables() == sorted(derived | hand)
    from shuzhi.gates import gate_tables

    assert gate_tables() == registry.gated_tables()
    for key in registry.gated_tables():
        t = registry.table(key)
        assert t.suite == key
        assert t.gate == ("baseline" if key in derived else "hand")
        assert (t.suite_file is not None) == (key in hand)


@pytest.mark.unit
def test_dag_gate_lists_and_assets_are_what_they_were():
    names = [e.table_name for e in ENTITIES]
    assert registry.stage_gates("ingest") == [f"bronze.{t}" for t in names + ["quarantine"]]
    assert registry.stage_gates("clean") == [f"silver.{t}" for t in names] + [
        "silver.quarantine", "silver.findings", "ops.conservation"]
    assert registry.stage_gates("verify") == ["gold.conflicts", "gold.person", "gold.house", "gold.event",
                                              "gold.organisation"]
    for t in names:
        assert registry.asset_uri("bronze", t) == registry.asset_uri(f"bronze.{t}") == f"shuzhi://bronze/{t}"
        assert registry.asset_uri(f"silver.{t}") == f"shuzhi://silver/{t}"
    assert registry.asset_uri("gold.conflicts") == "shuzhi://gold/conflicts"
    assert all(t.asset_uri == f"shuzhi://{t.layer}/{t.name}" for t in registry.tables())
    with pytest.raises(KeyError, match="bronze.police_populaton"):
        registry.asset_uri("bronze.police_populaton")


@pytest.mark.unit
def test_lookup_by_key_or_layer_and_name_and_restored_batches():
    assert registry.table("silver", "findings") is registry.table("silver.findings")
    t = registry.table("restored.2031-12-01__silver__police_incidents")
    assert t.family == "restored.<batch>__silver__<source>_<entity>" and t.entity.table_name == "police_incidents"
    assert registry.table("restored.2031-12-01__bronze__health_residents").keys == ("_batch_date", "_file", "_row")
    with pytest.raises(KeyError):
        registry.table("restored.2031-12-01__gold__person")
    assert registry.table("cold.police_population").retention == "person_register"     # the entity's class
    assert registry.table("silver.findings").retention == "quarantine"                  # conf/retention.yaml
    assert registry.layers() == ("bronze", "silver", "gold", "ops", "cold", "restored")


def _load_with(tmp_path: Path, edit) -> registry.Registry:
    import yaml

    raw = read_yaml(registry.TABLES_YAML)
    edit(raw)
    p = tmp_path / "tables.yaml"
    p.write_text(yaml.dump(raw, Dumper=yaml.CSafeDumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return registry.load(p)


def _decl(raw, key):
    return next(d for d in raw["tables"] if f"{d['layer']}.{d['name']}" == key)


@pytest.mark.unit
def test_the_yaml_is_checked(tmp_path):
    assert len(_load_with(tmp_path, lambda raw: None).tables) == len(registry.tables())
    cases = [
        (lambda raw: raw.update(owner="x"), "unknown key.*'owner'"),
        (lambda raw: _decl(raw, "ops.deliveries").update(retention_days=30), "unknown key.*'retention_days'"),
        (lambda raw: _decl(raw, "ops.deliveries")["schema"]["columns"][0].update(pii="none"), "unknown key.*'pii'"),
        (lambda raw: _decl(raw, "ops.deliveries")["schema"]["columns"][0].update(level="L5"), "level 'L5'"),
        (lambda raw: _decl(raw, "gold.person")["schema"]["columns"][1].update(kind="value"),
         "never plaintext at rest"),
        (lambda raw: _decl(raw, "ops.deliveries").update(keys=["delivery_id", "nope"]), "no column 'nope'"),
        (lambda raw: _decl(raw, "ops.deliveries").update(retention="forever"), "retention 'forever'"),
        (lambda raw: _decl(raw, "silver.findings").update(gate="none"), "silver_findings.json .*gate: none"),
        (lambda raw: _decl(raw, "silver.findings").update(retention="operational"), "conf/retention.yaml says"),
        (lambda raw: _decl(raw, "gold.person").update(gate="baseline"), "gate baseline"),
        (lambda raw: raw["tables"].append(dict(_decl(raw, "ops.deliveries"))), "declared twice"),
    ]
    for edit, message in cases:
        with pytest.raises(registry.RegistryError, match=message):
            _load_with(tmp_path, edit)


# ------------------------------------------------------------------ integration

def delta_log(table_dir: Path) -> tuple[list[str], dict, set[str]]:
    """From a table's ``_delta_log`` JSON commits alone: its columns (latest schema), its
    configuration, and every column any data file has min/max statistics on."""
    schema, conf, valued = None, {}, set()
    for commit in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "metaData" in action:
                schema = json.loads(action["metaData"]["schemaString"])
                conf = action["metaData"].get("configuration") or {}
            stats = (action.get("add") or {}).get("stats")
            if stats:
                s = json.loads(stats)
                valued |= set(s.get("minValues") or {}) | set(s.get("maxValues") or {})
    return [f["name"] for f in schema["fields"]], conf, valued


def check_lake(lake) -> set[str]:
    """Every Delta table under the lake root is registered, every column of it declared, and no
    data file has min/max statistics on a column the registry withholds them from (nor on an
    L3/L4 column, ciphertext, token or digest, checked from schemas/ and the names directly).
    Returns the registry families the lake holds."""
    from shuzhi.retention import lake_tables

    families = set()
    for layer, name in lake_tables(lake.lake):
        key = f"{layer}.{name}"
        t = registry.table(key)                          # KeyError: a table the registry does not know
        families.add(t.family)
        columns, conf, valued = delta_log(lake.table_path(layer, name))
        assert registry.undeclared(key, columns) == [], f"{key}: columns not declared in schemas/tables.yaml"
        assert list(t.partition_by) == [c for c in columns if c in t.partition_by], key
        allowed = set(registry.stats_columns(key, columns))
        withheld = {c for c in columns if sensitive(c)} | entity_encrypted(t) | {
            c for c in columns if t.column(c).level in ("L3", "L4") or t.column(c).kind != "value"}
        prop = conf.get("delta.dataSkippingStatsColumns")
        if prop is not None:
            kept = set(prop.split(",")) - {"_none_"}
            assert kept <= allowed, f"{key}: delta.dataSkippingStatsColumns names {sorted(kept - allowed)}"
            assert not kept & withheld, f"{key}: statistics configured on {sorted(kept & withheld)}"
        assert valued <= allowed, f"{key}: min/max statistics on {sorted(valued - allowed)}"
        assert not valued & withheld, f"{key}: min/max statistics on sensitive {sorted(valued & withheld)}"
        assert conf.get("delta.appendOnly") == ("true" if t.append_only else None), key
    return families


@pytest.mark.integration
def test_the_shared_lake_holds_only_registered_tables_and_no_sensitive_statistics(built):
    """The lifecycle lake of tests/conftest.py (two nights ingested, cleaned, cross-verified), as
    is: read from its Delta logs, nothing written."""
    families = check_lake(built)
    assert families >= {"bronze.<source>_<entity>", "bronze.quarantine", "silver.<source>_<entity>",
                        "silver.quarantine", "silver.findings", "gold.conflicts", "gold.person", "gold.house",
                        "gold.event", "gold.organisation", "ops.deliveries", "ops.job_runs", "ops.conservation",
                        "ops.rule_hits", "ops.access_log"}, families


@pytest.mark.integration
def test_the_other_writers_keep_to_the_registry_too(spark, lake):
    """A copy of that lake, gated, tiered, archived and restored: the gate results, the cold tier
    and the restored batch tables (whose writers state their own statistics lists) keep to it."""
    from conftest import LIFECYCLE_START as START

    from jobs import archive, gate, tier
    from shuzhi.crypto import Keyring
    from shuzhi.retention import load_policy

    kr, pol = Keyring.load(lake.key_dir), load_policy()
    gate.run(spark, lake, "ops.conservation", START.isoformat())
    tier.run(spark, lake, (START + timedelta(days=400)).isoformat(), keyring=kr)
    arch_day = (START + timedelta(days=pol.classes["incident"].archive_after + 400)).isoformat()
    archive.run(spark, lake, arch_day, keyring=kr)
    archive.restore(spark, lake, arch_day)
    families = check_lake(lake)
    assert families >= {"ops.gate_results", "cold.<source>_<entity>", "restored.<batch>__silver__<source>_<entity>",
                        "restored.<batch>__bronze__<source>_<entity>"}, families
