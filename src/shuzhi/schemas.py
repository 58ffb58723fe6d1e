"""The data-element standards of ``schemas/`` as typed objects.

Every other module asks this one what a field is — its element, type, code list,
sensitivity, PII category — instead of restating it::

    >>> from shuzhi.schemas import catalog
    >>> pop = catalog().entity("police", "population")
    >>> pop.field("GMSFHM").element.name, pop.field("GMSFHM").sensitivity
    ('citizen_id', 'L3')
    >>> pop.file_name("2026-11-27")
    'population_20261127.csv'

Pure Python (no Spark), so DAG files may import it at parse time.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import SCHEMAS_DIR, load_yaml
from .errors import UsageError

# lineage columns of every silver entity table
SILVER_LINEAGE = ["_source", "_entity", "_batch_date", "_file", "_row", "_delivery_id", "_run_id", "_loaded_at",
                  "_key_id"]

LEVELS = ("L1", "L2", "L3", "L4")


@dataclass(frozen=True)
class CodeList:
    name: str
    codes: dict[str, str]
    labels: dict[str, str]


@dataclass(frozen=True)
class Element:
    name: str
    name_zh: str
    type: str
    sensitivity: str
    pii: str
    retention: str
    standard: str | None = None
    code_list: str | None = None
    pattern: str | None = None
    tokenise: bool = False
    separator: str | None = None


@dataclass(frozen=True)
class Field:
    name: str
    element: Element
    sensitivity: str
    nullable: bool = True
    form: str | None = None
    parquet_type: str | None = None
    silver_name: str = ""          # canonical column name in silver (feeds.yaml `as`)
    required: bool = False         # empty value → quarantined by the clean stage

    @property
    def is_encrypted(self) -> bool:
        return self.sensitivity in encrypt_levels()

    @property
    def is_tokenised(self) -> bool:
        return self.element.tokenise

    @property
    def token_column(self) -> str:
        return f"{self.name}__tok"


@dataclass(frozen=True)
class Entity:
    source: str
    name: str
    name_zh: str
    format: str
    encoding: str
    file_pattern: str
    record_id: str
    updated: str
    retention_class: str
    fields: tuple[Field, ...]
    row_tag: str | None = None

    @property
    def table_name(self) -> str:
        """Name of the entity's bronze (and later silver) table."""
        return f"{self.source}_{self.name}"

    def file_name(self, batch_date: str) -> str:
        return self.file_pattern.format(yyyymmdd=batch_date.replace("-", ""))

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.source}.{self.name} has no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def encrypted_fields(self) -> list[Field]:
        return [f for f in self.fields if f.is_encrypted]

    @property
    def tokenised_fields(self) -> list[Field]:
        return [f for f in self.fields if f.is_tokenised]

    @property
    def person_id_field(self) -> Field | None:
        """The field holding the identity number of the person the record is about (not an owner's)."""
        return next((f for f in self.fields if f.silver_name == "citizen_id"), None)

    def silver_columns(self) -> list[str]:
        """Silver's columns: canonical fields, tokens and ID-derived facts, lineage."""
        cols = ["record_id"] + [f.silver_name for f in self.fields if f.silver_name != "record_id"]
        for f in self.fields:
            if f.element.name == "citizen_id":
                cols += [f"{f.silver_name}__tok", f"{f.silver_name}__valid"]
                if f.silver_name == "citizen_id":
                    cols += ["citizen_id__birth", "citizen_id__sex"]
            elif f.element.name == "citizen_id_list":
                cols.append(f"{f.silver_name}__tok")
            elif f.element.name == "person_name":
                cols.append(f"{f.silver_name}__mtok")
            elif f.element.name == "uscc":
                cols.append(f"{f.silver_name}__valid")
        if self.person_id_field is not None and any(f.silver_name == "name" for f in self.fields):
            cols.append("person_hint")
        return cols + ["_content_hmac"] + SILVER_LINEAGE

    def silver_field(self, silver_name: str) -> Field:
        for f in self.fields:
            if f.silver_name == silver_name:
                return f
        raise KeyError(f"{self.source}.{self.name} has no silver column {silver_name!r}")


@dataclass(frozen=True)
class Catalog:
    elements: dict[str, Element]
    code_lists: dict[str, CodeList]
    sources: dict[str, dict[str, Entity]]

    def entity(self, source: str, entity: str) -> Entity:
        try:
            return self.sources[source][entity]
        except KeyError:
            raise KeyError(f"unknown source/entity {source}/{entity}; SPEC knows "
                           f"{[f'{s}/{e}' for s in self.sources for e in self.sources[s]]}") from None

    def check_source(self, source: str) -> str:
        """A department of ``feeds.yaml``; anything else is the caller's mistake (``UsageError``,
        never a ledger row), named with the sources there are."""
        if source not in self.sources:

            raise UsageError(f"source {source!r} is not one of {', '.join(self.sources)}")
        return source

    def entities(self, source: str | None = None) -> list[Entity]:
        srcs = [source] if source else list(self.sources)
        return [e for s in srcs for e in self.sources[s].values()]

    def entity_for_table(self, table_name: str) -> Entity | None:
        """The entity whose bronze/silver tables are named ``table_name`` (e.g. ``police_population``)."""
        return next((e for e in self.entities() if e.table_name == table_name), None)

    def code_list(self, name: str) -> CodeList:
        return self.code_lists[name]


@lru_cache(maxsize=None)
def encrypt_levels() -> frozenset[str]:
    return frozenset(load_yaml("security.yaml")["encrypt_levels"])


@lru_cache(maxsize=None)
def catalog(folder: Path = SCHEMAS_DIR) -> Catalog:
    """Load and cross-check ``schemas/``; an inconsistency raises with the field named."""
    raw_el = load_yaml("elements.yaml", folder)["elements"]
    raw_cl = load_yaml("code_lists.yaml", folder)
    code_lists = {n: CodeList(n, {str(k): v for k, v in c["codes"].items()},
                              {str(k): str(v) for k, v in (c.get("labels") or {}).items()})
                  for n, c in raw_cl.items()}
    elements = {}
    for name, e in raw_el.items():
        el = Element(name=name, **e)
        if el.sensitivity not in LEVELS:
            raise ValueError(f"schemas/elements.yaml: {name}: sensitivity {el.sensitivity!r} not in {LEVELS}")
        if el.code_list and el.code_list not in code_lists:
            raise ValueError(f"schemas/elements.yaml: {name}: code list {el.code_list!r} not in code_lists.yaml")
        elements[name] = el
    sources: dict[str, dict[str, Entity]] = {}
    for sname, s in load_yaml("feeds.yaml", folder)["sources"].items():
        sources[sname] = {}
        for ename, e in s["entities"].items():
            fields = []
            for f in e["fields"]:
                if f["element"] not in elements:
                    raise ValueError(
                        f"schemas/feeds.yaml: {sname}.{ename}.{f['name']}: unknown element {f['element']!r}"
                    )
                el = elements[f["element"]]
                fields.append(Field(name=f["name"], element=el, sensitivity=f.get("sensitivity", el.sensitivity),
                                    nullable=f.get("nullable", True), form=f.get("form"),
                                    parquet_type=f.get("parquet_type"), silver_name=f.get("as", el.name),
                                    required=bool(f.get("required", False))))
            sources[sname][ename] = Entity(
                source=sname, name=ename, name_zh=e["name_zh"], format=s["format"], encoding=s["encoding"],
                file_pattern=e["file"], record_id=e["record_id"], updated=e["updated"],
                retention_class=e["retention_class"], fields=tuple(fields), row_tag=s.get("row_tag"))
            for key in (e["record_id"], e["updated"]):
                sources[sname][ename].field(key)  # raises if the declared key is not a field
    return Catalog(elements, code_lists, sources)
