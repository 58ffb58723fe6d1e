"""The lake's table registry: every table declared once, in ``schemas/tables.yaml``.

Layer, name, keys, partitioning, append-only, retention class, gate suite, Airflow Asset and
schema of each table; which columns Delta may keep statistics on is *derived* from the columns'
sensitivity levels (``schemas/`` for the entity tables, the yaml for the others), so the
invariant "no statistics on an L3/L4 value, a ciphertext, a token or a digest" is kept in one
place. ``docs/tables.md`` is generated from it::

    python -m shuzhi.registry --write-docs

    >>> from shuzhi.registry import table, stats_columns, asset_uri
    >>> table("silver.findings").partition_by
    ('_batch_date',)
    >>> asset_uri("bronze.police_population")
    'shuzhi://bronze/police_population'
    >>> stats_columns("silver.quarantine", ["record_id", "citizen_id_enc", "citizen_id__tok", "reason_code"])
    ['record_id', 'reason_code']

Pure Python (YAML only, no Spark), so DAG files may import it at parse time.
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from .config import EXPECTATIONS_DIR, REPO_ROOT, SCHEMAS_DIR, read_yaml
from .retention import load_policy
from .schemas import LEVELS, Entity, catalog

TABLES_YAML = SCHEMAS_DIR / "tables.yaml"
DOCS = REPO_ROOT / "docs" / "tables.md"
REGENERATE = "python -m shuzhi.registry --write-docs"

ENTITY = "<source>_<entity>"          # in a declared name: one table per SPEC entity of schemas/feeds.yaml
KINDS = ("value", "enc", "token", "digest")
OPEN_LEVELS = ("L1", "L2")            # Delta may keep statistics on these values (and only on kind `value`)
NEVER = frozenset({"raw_record_enc", "record_enc", "person_hint"})
NEVER_SUFFIXES = ("_enc", "__tok", "__mtok")
GATES = ("baseline", "hand", "none")
BASELINE_LAYERS = ("bronze", "silver")   # shuzhi.gates.suite_for: each entity's tables and the two quarantines
SPECIAL_RETENTION = ("entity", "records")
FIELD_MODES = ("delivered", "canonical")

TOP_KEYS = {"about", "layers", "zones", "tables"}
TABLE_KEYS = {"layer", "name", "description", "description_zh", "keys", "partition_by", "append_only", "retention",
              "gate", "batch_column", "written_by", "stats_columns", "schema", "notes"}
OPTIONAL_TABLE_KEYS = {"description_zh", "stats_columns", "notes"}
SCHEMA_KEYS = {"fields", "like", "columns"}
COLUMN_KEYS = {"name", "type", "level", "kind", "note", "nullable"}
ZONE_KEYS = {"name", "notes"}


class RegistryError(ValueError):
    """``schemas/tables.yaml`` is inconsistent (an unknown key, a column or file it names that
    does not exist, a sensitive column not declared as ciphertext, …)."""


@dataclass(frozen=True)
class Column:
    name: str                  # may hold one `*`: any field's column name (entity tables only)
    type: str
    level: str                 # L1..L4 of the value (of what a token or digest stands for)
    kind: str = "value"        # value | enc | token | digest
    note: str = ""
    nullable: bool = True      # false: the writers' schema (``shuzhi.delta.schema_of``) says NOT NULL

    @property
    def stats_allowed(self) -> bool:
        return self.level in OPEN_LEVELS and self.kind == "value" and not never_stats(self.name)


@dataclass(frozen=True)
class Table:
    layer: str
    name: str                  # concrete, or a pattern with `<batch>` left in it
    description: str
    description_zh: str
    keys: tuple[str, ...]
    partition_by: tuple[str, ...]
    append_only: bool
    retention: str             # a class of conf/retention.yaml, or `records`
    gate: str                  # baseline | hand | none
    batch_column: str | None
    written_by: tuple[str, ...]
    fields: str | None         # delivered | canonical: the entity's fields are columns; None: columns only
    columns: tuple[Column, ...]
    stats: tuple[str, ...] | None
    notes: str
    family: str                # the declared `<layer>.<name>` (e.g. ``bronze.<source>_<entity>``)
    like: str | None = None    # the family whose schema this one extends
    entity: Entity | None = None

    @property
    def key(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def pattern(self) -> bool:
        """True when part of the name is chosen at run time (a restored batch's id)."""
        return "<" in self.name

    @property
    def asset_uri(self) -> str:
        return f"shuzhi://{self.layer}/{self.name}"

    @property
    def published(self) -> bool:
        """Readers see only the versions its gate published (write–audit–publish, ``shuzhi.publish``):
        a gated table whose gate validates the whole table — a version of it is what is judged."""
        return self.gate != "none" and self.batch_column is None

    @property
    def suite(self) -> str | None:
        """Name of the GX suite that gates the table (= its key), or None."""
        return None if self.gate == "none" else self.key

    @property
    def suite_file(self) -> Path | None:
        """``expectations/<layer>_<name>.json`` if there is one (a baseline suite may have none)."""
        p = EXPECTATIONS_DIR / f"{self.layer}_{self.name}.json"
        return p if self.gate != "none" and p.is_file() else None

    def matches(self, key: str) -> bool:
        if not self.pattern:
            return key == self.key
        rx = "".join(".+" if part.startswith("<") else re.escape(part)
                     for part in re.split(r"(<\w+>)", self.key) if part)
        return re.fullmatch(rx, key) is not None

    def field_columns(self) -> list[Column]:
        """The entity's fields as columns (empty for a table declared column by column)."""
        if self.fields is None or self.entity is None:
            return []
        out = []
        for f in self.entity.fields:
            name = f.name if self.fields == "delivered" else f.silver_name
            typ = "binary" if f.is_encrypted else ("as delivered" if self.fields == "delivered" else f.element.type)
            out.append(Column(name, typ, f.sensitivity, "enc" if f.is_encrypted else "value",
                              f"{f.element.name_zh} ({f.element.name})"))
        return out

    def column(self, name: str) -> Column | None:
        """The declaration of column ``name`` (a field, a declared column, or a `*` pattern over
        a field's column name); None if the registry does not know it."""
        fields = self.field_columns()
        for c in fields:
            if c.name == name:
                return c
        for c in self.columns:
            if c.name == name:
                return c
        names = {c.name for c in fields}
        for c in self.columns:
            if "*" in c.name and fnmatch.fnmatchcase(name, c.name):
                prefix, _, suffix = c.name.partition("*")
                if name[len(prefix):len(name) - len(suffix)] in names:
                    return c
        return None

    def stats_columns(self, columns: Iterable[str]) -> list[str]:
        """Of ``columns``, those Delta may keep statistics on (see the module's ``stats_columns``)."""
        out = []
        for name in columns:
            c = self.column(name)
            if c is None or not c.stats_allowed:
                continue
            if self.stats is not None and name not in self.stats:
                continue
            out.append(name)
        return out


@dataclass(frozen=True)
class Zone:
    name: str
    notes: str


@dataclass(frozen=True)
class Registry:
    about: str
    layers: dict[str, str]
    zones: tuple[Zone, ...]
    tables: tuple[Table, ...]

    def find(self, key: str) -> Table:
        for t in self.tables:
            if not t.pattern and t.key == key:
                return t
        for t in self.tables:
            if t.pattern and t.matches(key):
                return t
        raise KeyError(f"no table {key!r} in schemas/tables.yaml")


def never_stats(name: str) -> bool:
    """Columns Delta never keeps statistics on, whatever the yaml says: ciphertexts, tokens and
    the digests that stand for a person."""
    return name in NEVER or name.endswith(NEVER_SUFFIXES)


# ------------------------------------------------------------------ loading and validation

def _fail(where: str, msg: str) -> RegistryError:
    return RegistryError(f"schemas/tables.yaml: {where}: {msg}")


def _check_keys(raw: Any, known: set[str], where: str, required: Iterable[str] = ()) -> dict:
    if not isinstance(raw, dict):
        raise _fail(where, f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    missing = [k for k in required if k not in raw]
    if missing:
        raise _fail(where, f"missing key(s) {', '.join(map(repr, missing))}")
    return raw


def _names(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(where, f"expected a list of column names, got {raw!r}")
    return tuple(raw)


def _column(raw: Any, where: str, entity_table: bool) -> Column:
    c = _check_keys(raw, COLUMN_KEYS, where, ("name", "type", "level"))
    col = Column(str(c["name"]), str(c["type"]), str(c["level"]), str(c.get("kind", "value")), str(c.get("note", "")),
                 c.get("nullable", True))
    where = f"{where} ({col.name})"
    if not isinstance(col.nullable, bool):
        raise _fail(where, f"nullable must be true or false, got {col.nullable!r}")
    if col.level not in LEVELS:
        raise _fail(where, f"level {col.level!r} not in {', '.join(LEVELS)}")
    if col.kind not in KINDS:
        raise _fail(where, f"kind {col.kind!r} not in {', '.join(KINDS)}")
    if "*" in col.name and (not entity_table or col.name.count("*") > 1):
        raise _fail(where, "a `*` pattern (one, over a field's column name) is for entity tables only")
    if col.name.endswith("_enc") and col.kind != "enc":
        raise _fail(where, "a column named *_enc is ciphertext: kind enc")
    if col.name.endswith(("__tok", "__mtok")) and col.kind != "token":
        raise _fail(where, "a column named *__tok is a join token: kind token")
    if col.kind == "enc" and col.level in OPEN_LEVELS:
        raise _fail(where, "ciphertext (kind enc) is of an L3/L4 value")
    if col.level not in OPEN_LEVELS and col.kind == "value":
        raise _fail(where, f"an {col.level} value is never plaintext at rest: declare it kind enc, token or digest")
    return col


def _schema_of(decls: dict[str, dict], family: str, where: str, seen: tuple[str, ...] = ()) -> tuple[str | None, list]:
    """(fields mode, raw columns) of a declared table, following ``like``."""
    if family in seen:
        raise _fail(where, f"schema `like` loops: {' → '.join(seen + (family,))}")
    if family not in decls:
        raise _fail(where, f"schema like {family!r}: no such table declared")
    s = decls[family]["schema"]
    fields, cols = s.get("fields"), list(s.get("columns") or [])
    if "like" in s:
        base_fields, base_cols = _schema_of(decls, s["like"], where, seen + (family,))
        fields, cols = fields or base_fields, base_cols + cols
    return fields, cols


def _expand(decl: dict, fields: str | None, columns: tuple[Column, ...], retention_classes: set[str],
            where: str) -> list[Table]:
    family = f"{decl['layer']}.{decl['name']}"
    common = dict(layer=decl["layer"], description=str(decl["description"]),
                  description_zh=str(decl.get("description_zh", "")), keys=_names(decl["keys"], f"{where}.keys"),
                  partition_by=_names(decl["partition_by"], f"{where}.partition_by"),
                  append_only=decl["append_only"], gate=decl["gate"], batch_column=decl["batch_column"],
                  written_by=_names(decl["written_by"], f"{where}.written_by"), fields=fields, columns=columns,
                  stats=None if decl.get("stats_columns") is None else _names(decl["stats_columns"],
                                                                             f"{where}.stats_columns"),
                  notes=str(decl.get("notes", "")).strip(), family=family, like=decl["schema"].get("like"))
    if not isinstance(decl["append_only"], bool):
        raise _fail(where, f"append_only must be true or false, got {decl['append_only']!r}")
    if decl["gate"] not in GATES:
        raise _fail(where, f"gate {decl['gate']!r} not in {', '.join(GATES)}")
    if decl["batch_column"] is not None and not isinstance(decl["batch_column"], str):
        raise _fail(where, f"batch_column must be a column name or null, got {decl['batch_column']!r}")
    retention = decl["retention"]
    if retention not in retention_classes and retention not in SPECIAL_RETENTION:
        raise _fail(where, f"retention {retention!r} is neither a class of conf/retention.yaml "
                           f"({', '.join(sorted(retention_classes))}) nor one of {', '.join(SPECIAL_RETENTION)}")
    if ENTITY not in decl["name"]:
        if retention == "entity" or fields is not None:
            raise _fail(where, "retention `entity` and schema `fields` are for the tables of a SPEC entity "
                               f"(a name with {ENTITY})")
        return [Table(name=decl["name"], retention=retention, **common)]
    if fields is None:
        raise _fail(where, f"a table per SPEC entity ({ENTITY}) takes its columns from schemas/: schema.fields")
    return [Table(name=decl["name"].replace(ENTITY, e.table_name),
                  retention=e.retention_class if retention == "entity" else retention, entity=e, **common)
            for e in catalog().entities()]


def _validate_table(t: Table, family_tables: list[Table], where: str) -> None:
    for what, cols in (("keys", t.keys), ("partition_by", t.partition_by),
                       ("batch_column", (t.batch_column,) if t.batch_column else ())):
        for c in cols:
            if t.column(c) is None:
                raise _fail(where, f"{what}: {t.key} has no column {c!r}")
    for c in t.stats or ():
        if all(other.column(c) is None for other in family_tables):
            raise _fail(where, f"stats_columns: no table of {t.family} has a column {c!r}")
    if t.gate == "hand" and not (EXPECTATIONS_DIR / f"{t.layer}_{t.name}.json").is_file() and not t.pattern:
        raise _fail(where, f"gate hand: expectations/{t.layer}_{t.name}.json does not exist")
    if t.gate != "none" and t.pattern:
        raise _fail(where, "a table whose name is chosen at run time cannot be gated")
    if t.gate == "baseline" and t.layer not in BASELINE_LAYERS:
        raise _fail(where, f"gate baseline: shuzhi.gates derives baselines for {' and '.join(BASELINE_LAYERS)} "
                           "tables only (use gate: hand)")


def load(path: Path = TABLES_YAML) -> Registry:
    """Read and cross-check a registry file (``schemas/tables.yaml``); raises ``RegistryError``."""
    raw = read_yaml(path)
    top = _check_keys(raw, TOP_KEYS, "top level", ("about", "layers", "tables"))
    layers = top["layers"]
    if not isinstance(layers, dict) or not layers:
        raise _fail("layers", "expected a mapping of layer → description")
    zones = []
    for i, z in enumerate(top.get("zones") or []):
        _check_keys(z, ZONE_KEYS, f"zones[{i}]", ("name", "notes"))
        zones.append(Zone(str(z["name"]), str(z["notes"]).strip()))
    policy = load_policy()
    decls: dict[str, dict] = {}
    for i, d in enumerate(top["tables"]):
        where = f"tables[{i}]"
        _check_keys(d, TABLE_KEYS, where, sorted(TABLE_KEYS - OPTIONAL_TABLE_KEYS))
        where = f"tables[{i}] ({d['layer']}.{d['name']})"
        if d["layer"] not in layers:
            raise _fail(where, f"layer {d['layer']!r} not in {', '.join(layers)}")
        _check_keys(d["schema"], SCHEMA_KEYS, f"{where}.schema")
        if d["schema"].get("fields") not in (None,) + FIELD_MODES:
            raise _fail(f"{where}.schema", f"fields {d['schema']['fields']!r} not in {', '.join(FIELD_MODES)}")
        key = f"{d['layer']}.{d['name']}"
        if key in decls:
            raise _fail(where, "declared twice")
        decls[key] = d
    tables: list[Table] = []
    for i, (family, d) in enumerate(decls.items()):
        where = f"tables[{i}] ({family})"
        fields, raw_cols = _schema_of(decls, family, where)
        columns = tuple(_column(c, f"{where}.schema.columns[{j}]", ENTITY in d["name"])
                        for j, c in enumerate(raw_cols))
        if len({c.name for c in columns}) != len(columns):
            raise _fail(where, "a column is declared twice")
        expanded = _expand(d, fields, columns, set(policy.classes), where)
        for t in expanded:
            _validate_table(t, expanded, where)
        tables += expanded
    keys = [t.key for t in tables]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise _fail("tables", f"declared twice: {', '.join(dup)}")
    reg = Registry(str(top["about"]).strip(), {str(k): str(v) for k, v in layers.items()}, tuple(zones),
                   tuple(tables))
    for p in sorted(EXPECTATIONS_DIR.glob("*.json")):
        key = p.stem.replace("_", ".", 1)
        try:
            t = reg.find(key)
        except KeyError:
            raise _fail("tables", f"expectations/{p.name} is the suite of {key}, which is not declared") from None
        if t.gate == "none":
            raise _fail("tables", f"expectations/{p.name} is the suite of {key}, declared gate: none")
    for key, cls in policy.tables.items():
        try:
            t = reg.find(key)
        except KeyError:
            raise _fail("tables", f"conf/retention.yaml names table {key}, which is not declared") from None
        if t.retention != cls:
            raise _fail("tables", f"{key}: retention {t.retention!r}, but conf/retention.yaml says {cls!r}")
    return reg


@lru_cache(maxsize=None)
def registry() -> Registry:
    """``schemas/tables.yaml``, loaded and checked once per process."""
    return load(TABLES_YAML)


# ------------------------------------------------------------------ the interface

def _key(layer_or_key: str, name: str | None = None) -> str:
    return layer_or_key if name is None else f"{layer_or_key}.{name}"


def tables() -> tuple[Table, ...]:
    """Every table, in the order of the yaml (tables per SPEC entity in schemas/ order)."""
    return registry().tables


def table(layer_or_key: str, name: str | None = None) -> Table:
    """``table("silver", "findings")`` or ``table("silver.findings")``; a restored batch table
    (``restored.2031-12-01__silver__police_incidents``) resolves to its declaration. KeyError if
    the registry does not know it."""
    return registry().find(_key(layer_or_key, name))


def layers() -> tuple[str, ...]:
    """The folders of the lake that hold Delta tables, in the yaml's order."""
    return tuple(registry().layers)


def gated_tables() -> list[str]:
    """``<layer>.<name>`` of every table a gate has a suite for, sorted."""
    return sorted(t.key for t in tables() if t.gate != "none")


def stage_gates(stage: str) -> list[str]:
    """The gated tables ``stage`` writes (``ingest``, ``clean``, ``verify``, …), in the yaml's order."""
    return [t.key for t in tables() if t.gate != "none" and stage in t.written_by]


def published_tables() -> list[str]:
    """``<layer>.<name>`` of the tables read at their published version (``Table.published``)."""
    return [t.key for t in tables() if t.published]


def asset_uri(layer_or_key: str, name: str | None = None) -> str:
    """The table's Airflow Asset URI, ``shuzhi://<layer>/<name>`` (KeyError if not registered)."""
    key = _key(layer_or_key, name)
    table(key)
    layer, _, rest = key.partition(".")
    return f"shuzhi://{layer}/{rest}"


def stats_columns(key: str, columns: Iterable[str]) -> list[str]:
    """Of a table's ``columns`` (in their order), those Delta may keep statistics on: a column the
    registry knows, of level L1/L2 and kind ``value`` — never an L3/L4 column (ciphertext or
    not), a token, a digest, a name ending ``_enc``/``__tok``, ``raw_record_enc``, ``record_enc`` or
    ``person_hint`` — and, when the table declares ``stats_columns``, one of those. Entity tables
    take their levels from ``schemas/``. An undeclared column gets none (fail closed)."""
    return table(key).stats_columns(columns)


def undeclared(key: str, columns: Iterable[str]) -> list[str]:
    """Of ``columns``, those the registry does not declare for the table (drift between a
    writer and ``schemas/tables.yaml``)."""
    t = table(key)
    return [c for c in columns if t.column(c) is None]


# ------------------------------------------------------------------ docs/tables.md

def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(f"`{n}`" for n in names) if names else "—"


def _level(c: Column) -> str:
    return c.level if c.kind == "value" else f"{c.level} · {c.kind}"


def _column_rows(cols: Iterable[Column]) -> list[str]:
    out = ["| column | type | level | meaning |", "| --- | --- | --- | --- |"]
    out += [f"| `{c.name}` | {_cell(c.type)}{'' if c.nullable else ' not null'} | {_level(c)} | {_cell(c.note)} |"
            for c in cols]
    return out


def _retention_text(t: Table) -> str:
    if t.entity is not None and t.retention == t.entity.retention_class:
        return "its entity's class (`retention_class` in `schemas/feeds.yaml`, classes in `conf/retention.yaml`)"
    if t.retention == "records":
        return "its rows go with the records and persons they are built from (destroyed with them)"
    return f"class `{t.retention}` (`conf/retention.yaml`)"


def _gate_text(t: Table) -> str:
    if t.gate == "none":
        return "none"
    parts = ["baseline derived from `schemas/` (`shuzhi.gates`)"] if t.gate == "baseline" else []
    file = f"expectations/{t.layer}_{t.name}.json"
    if t.entity is not None:
        file = f"expectations/{t.layer}_{ENTITY}.json"
        if t.gate == "hand" or (EXPECTATIONS_DIR / f"{t.layer}_{t.name}.json").is_file():
            parts.append(f"`{file}`")
    elif t.gate == "hand" or t.suite_file is not None:
        parts.append(f"`{file}`")
    scope = f"a night's slice by `{t.batch_column}`" if t.batch_column else "the whole table"
    return f"suite `{t.family}`: {' + '.join(parts)}; validates {scope}"


def _stats_text(t: Table) -> str:
    if t.stats is not None:
        return f"only {_code(t.stats)} (of those present; all L1/L2 values)"
    if t.fields is None:
        return _code(t.stats_columns([c.name for c in t.columns]))
    return "every L1/L2 value column: none of the L3/L4 fields, tokens or digests"


def _family_rows(family: list[Table]) -> list[str]:
    out = ["| table | entity | retention class | L3/L4 columns (ciphertext) |", "| --- | --- | --- | --- |"]
    for t in family:
        enc = [c.name for c in t.field_columns() if c.kind == "enc"]
        out.append(f"| `{t.key}` | {t.entity.source}/{t.entity.name} ({t.entity.name_zh}) | `{t.retention}` | "
                   f"{_code(enc)} |")
    return out


def render_markdown() -> str:
    """``docs/tables.md``: every table of the registry, with its columns and policies."""
    reg = registry()
    families: dict[str, list[Table]] = {}
    for t in reg.tables:
        families.setdefault(t.family, []).append(t)
    out = ["# Lake tables (湖表登记)", "",
           "<!-- Generated from schemas/tables.yaml by `python -m shuzhi.registry --write-docs`: edit the yaml, "
           "not this file (tests/test_registry.py fails when the two differ). -->", "", reg.about, "",
           "| table | description | keys | partitioned by | append-only | gate |",
           "| --- | --- | --- | --- | --- | --- |"]
    for fam, ts in families.items():
        t = ts[0]
        out.append(f"| `{fam}` | {_cell(t.description)} | {_code(t.keys)} | {_code(t.partition_by)} | "
                   f"{'yes' if t.append_only else 'no'} | {'`' + fam + '`' if t.gate != 'none' else '—'} |")
    for layer, about in reg.layers.items():
        out += ["", f"## {layer} — {about}"]
        for fam, ts in families.items():
            t = ts[0]
            if t.layer != layer:
                continue
            out += ["", f"### {fam} — {t.description}"]
            if t.description_zh:
                out += ["", t.description_zh]
            out += ["",
                    f"- keys: {_code(t.keys)}; partitioned by {_code(t.partition_by)}; "
                    f"append-only: {'yes' if t.append_only else 'no'}",
                    f"- retention: {_retention_text(t)}",
                    f"- gate: {_gate_text(t)}",
                    f"- written by: {', '.join(t.written_by)}",
                    f"- Airflow asset: `shuzhi://{fam.replace('.', '/', 1)}` (named `{fam}`)",
                    f"- Delta statistics on: {_stats_text(t)}"]
            cols = list(t.columns)
            if t.like is not None:
                base = families[t.like][0]
                cols = [c for c in cols if c not in base.columns]
                out += ["", f"One table per SPEC entity, as `{t.like}`. Columns: those of `{t.like}`"
                            + (", then:" if cols else ".")]
            elif t.entity is not None:
                how = ("as delivered" if t.fields == "delivered" else "under their canonical names (`as:`)")
                out += ["", "One table per SPEC entity of `schemas/feeds.yaml`:", ""] + _family_rows(ts)
                out += ["", f"Columns: derived from `schemas/` — the entity's fields {how}, each at its level "
                            "from `schemas/` (L3/L4 values are ciphertext); then (`*`: any field's column name):"]
            if cols:
                out += [""] + _column_rows(cols)
            if t.notes:
                out += ["", t.notes]
    if reg.zones:
        out += ["", "## Under the lake root, not Delta tables"]
        for z in reg.zones:
            out += ["", f"### {z.name}", "", z.notes]
    return "\n".join(out) + "\n"


def write_docs(path: Path = DOCS) -> Path:
    path.write_text(render_markdown(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shuzhi.registry", description="The lake's table registry "
                                "(schemas/tables.yaml).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(REPO_ROOT)}")
    g.add_argument("--check-docs", action="store_true", help=f"exit 1 if {DOCS.relative_to(REPO_ROOT)} is stale")
    a = p.parse_args(argv)
    if a.write_docs:
        print(f"wrote {write_docs()}")
        return 0
    if a.check_docs:
        stale = not DOCS.is_file() or DOCS.read_text(encoding="utf-8") != render_markdown()
        if stale:
            print(f"{DOCS.relative_to(REPO_ROOT)} is stale; run: {REGENERATE}", file=sys.stderr)
        return 1 if stale else 0
    for t in tables():
        print(f"{t.key}\t{t.asset_uri}\t{t.suite or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
