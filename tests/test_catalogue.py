"""The data catalogue (开放共享目录): every registry table and every field of schemas/ listed, sharing
classes as conf/sharing.yaml's rule gives them (written out by hand below), live facts passed
through, metadata only. Pure Python: no Spark."""
import doctest
import json
import re

import pytest
import yaml

from shuzhi import catalogue
from shuzhi.catalogue import build_catalogue, load_sharing, parse_sharing, render_catalogue_html
from shuzhi.config import CONF_DIR, SCHEMAS_DIR, load_yaml
from shuzhi.registry import Column, Table, tables
from shuzhi.schemas import catalog

pytestmark = pytest.mark.unit

ID = "150105198503021234"
FACTS = {
    "generated_at": "2026-11-28T06:00:00",
    "tables": {
        "silver.police_population": {"last_update": "2026-11-28T02:10:05", "rows": 20013, "version": 7,
                                     "sample": ID},            # not a fact the catalogue takes
        "ops.job_runs": {"last_update": "2026-11-28T02:30:00", "rows": 88},
        "restored.b1__silver__health_residents": {"last_update": "2026-11-20T10:00:00", "rows": 5},
        "restored.b2__silver__health_residents": {"last_update": "2026-11-21T10:00:00", "rows": 7},
    },
    "scores": {"police": {"night": "2026-11-27", "score": 87.5}},
}


def _yaml(path):
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _feeds():
    return _yaml(SCHEMAS_DIR / "feeds.yaml")["sources"]


def _elements():
    return _yaml(SCHEMAS_DIR / "elements.yaml")["elements"]


def _expected_tables() -> dict[str, dict]:
    """Every table of schemas/tables.yaml by key, `<source>_<entity>` expanded over schemas/feeds.yaml."""
    entities = [f"{s}_{e}" for s, src in _feeds().items() for e in src["entities"]]
    out = {}
    for d in _yaml(SCHEMAS_DIR / "tables.yaml")["tables"]:
        names = [d["name"].replace("<source>_<entity>", e) for e in entities] if "<source>_<entity>" in d["name"] \
            else [d["name"]]
        for n in names:
            out[f"{d['layer']}.{n}"] = d
    return out


@pytest.fixture(scope="module")
def cat():
    return build_catalogue(tables(), catalog(), load_sharing(), load_yaml("sources.yaml"), FACTS)


def by_id(cat):
    return {d["id"]: d for d in cat["datasets"]}


def field(cat, ds, name):
    return next(f for f in by_id(cat)[ds]["fields"] if f["name"] == name)


def test_doctests():
    assert doctest.testmod(catalogue).failed == 0


def test_every_registry_table_listed_once(cat):
    ids = [d["id"] for d in cat["datasets"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(_expected_tables())
    # a restored batch is listed as its pattern, once, never as the batches found in the lake
    assert "restored.<batch>__silver__health_residents" in ids
    assert not any(i.startswith(("restored.b1", "restored.b2")) for i in ids)


def test_every_field_of_schemas_listed(cat):
    ds = by_id(cat)
    missing = []
    for s, src in _feeds().items():
        for e, ent in src["entities"].items():
            for f in ent["fields"]:
                canonical = f.get("as", f["element"])
                for table, name in ((f"bronze.{s}_{e}", f["name"]), (f"silver.{s}_{e}", canonical),
                                    (f"cold.{s}_{e}", canonical)):
                    got = {x["name"]: x for x in ds[table]["fields"]}
                    if name not in got:
                        missing.append(f"{table}.{name}")
                    elif got[name]["element"] != f["element"]:
                        missing.append(f"{table}.{name} (element {got[name]['element']})")
    # every declared column of every table
    for key, d in _expected_tables().items():
        got = {x["name"] for x in ds[key]["fields"]}
        missing += [f"{key}.{c['name']}" for c in (d["schema"].get("columns") or []) if c["name"] not in got]
    assert missing == []


def test_field_metadata_from_schemas(cat):
    elements = _elements()
    sex = field(cat, "silver.police_population", "sex")
    assert (sex["element"], sex["element_zh"], sex["level"], sex["pii"], sex["delivered_as"]) == (
        "sex", "性别", "L2", "identity", "XBDM")
    assert sex["code_standard"] == {"standard": "GB/T 2261.1", "name": "sex", "codes": 4}
    gm = field(cat, "bronze.police_population", "GMSFHM")
    assert (gm["element_zh"], gm["level"], gm["kind"], gm["code_standard"]) == (
        "公民身份号码", "L3", "enc", {"standard": "GB 11643-1999"})
    # the per-field override of feeds.yaml wins over the element's level: a house address is L2
    assert elements["address"]["sensitivity"] == "L3"
    assert field(cat, "bronze.police_houses", "DZ")["level"] == "L2"
    # a declared column's element, from its name; an employer's name is no person's name
    assert field(cat, "silver.quarantine", "citizen_id_enc")["element"] == "citizen_id"
    assert field(cat, "gold.organisation", "name")["element"] is None
    assert field(cat, "gold.person", "name")["element"] == "person_name"


def test_sharing_classes_by_hand(cat):
    # fields: L1 无条件共享, L2 and L3 有条件共享, L4 不予共享 (conf/sharing.yaml `fields`)
    assert field(cat, "silver.police_population", "community_code")["sharing"] == "无条件共享"      # L1
    assert field(cat, "silver.police_population", "household_id")["sharing"] == "有条件共享"        # L2
    assert field(cat, "silver.police_population", "citizen_id")["sharing"] == "有条件共享"          # L3
    assert field(cat, "silver.health_residents", "disability_grade")["sharing"] == "不予共享"       # L4
    assert field(cat, "bronze.police_houses", "DZ")["sharing"] == "有条件共享"                       # L2 override
    ds = by_id(cat)
    # datasets: the most restrictive field, never below the layer floor
    assert ds["silver.health_residents"]["sharing"]["class"] == "不予共享"       # chronic_conditions, L4
    assert ds["cold.health_residents"]["sharing"]["class"] == "不予共享"
    assert ds["silver.police_population"]["sharing"]["class"] == "有条件共享"    # L3 at most
    assert ds["gold.organisation"]["sharing"]["class"] == "有条件共享"           # L1 and L2 columns
    assert ds["ops.rule_hits"]["sharing"]["class"] == "不予共享"                 # all L2, but ops' floor
    assert "layer floor" in ds["ops.rule_hits"]["sharing"]["why"]
    assert ds["bronze.police_houses"]["sharing"]["class"] == "有条件共享"


def _table(layer, name, *cols):
    return Table(layer=layer, name=name, description="demo", description_zh="演示", keys=(), partition_by=(),
                 append_only=False, retention="records", gate="none", batch_column=None, written_by=("verify",),
                 fields=None, columns=tuple(Column(n, "string", lv) for n, lv in cols), stats=None, notes="",
                 family=f"{layer}.{name}")


def test_sharing_of_hand_built_datasets():
    rule = load_sharing()
    ts = [_table("gold", "open_codes", ("uscc", "L1"), ("community_code", "L1")),
          _table("ops", "open_codes", ("uscc", "L1")),
          _table("gold", "mixed", ("uscc", "L1"), ("x", "L2"))]
    got = {d["id"]: d["sharing"]["class"] for d in build_catalogue(ts, catalog(), rule, {}, {})["datasets"]}
    assert got == {"gold.open_codes": "无条件共享", "ops.open_codes": "不予共享", "gold.mixed": "有条件共享"}


def test_owner_frequency_and_live_facts(cat):
    ds = by_id(cat)
    assert ds["silver.social_security_insurance"]["owner"] == {"code": "social_security", "name_zh": "人社"}
    assert ds["bronze.health_residents"]["owner"]["name_zh"] == "卫健"
    assert ds["gold.conflicts"]["owner"]["name_zh"] == "数据治理办"
    sources = _yaml(CONF_DIR / "sources.yaml")["sources"]
    assert ds["bronze.police_population"]["update_frequency"]["schedule"] == sources["police"]["schedule"]
    assert ds["bronze.police_population"]["update_frequency"]["schedule"] == "30 1 * * *"
    assert "01:30" in ds["silver.police_population"]["update_frequency"]["zh"]
    assert ds["ops.retention_status"]["update_frequency"]["en"] == "per retention run"
    assert ds["ops.job_runs"]["update_frequency"]["en"] == "nightly"
    pop = ds["silver.police_population"]
    assert (pop["exists"], pop["rows"], pop["last_update"], pop["quality_score"], pop["quality_night"]) == (
        True, 20013, "2026-11-28T02:10:05", 87.5, "2026-11-27")
    hl = ds["silver.health_residents"]
    assert (hl["exists"], hl["rows"], hl["last_update"], hl["quality_score"]) == (False, None, None, None)
    restored = ds["restored.<batch>__silver__health_residents"]
    assert restored["pattern"] is True
    assert (restored["rows"], restored["last_update"], restored["instances"]) == (
        12, "2026-11-21T10:00:00", ["restored.b1__silver__health_residents", "restored.b2__silver__health_residents"])
    assert ds["gold.conflicts"]["quality_score"] is None          # no score of the office's own
    assert cat["generated_at"] == "2026-11-28T06:00:00"
    assert sum(cat["sharing_counts"].values()) == len(cat["datasets"])


def test_metadata_only(cat):
    text = json.dumps(cat, ensure_ascii=False)
    assert ID not in text
    assert not re.search(r"(?<!\d)\d{17}[\dXx](?!\d)", text)          # no identity number
    assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text)           # no mobile number
    allowed = {"name", "delivered_as", "element", "element_zh", "type", "level", "kind", "pii", "code_standard",
               "sharing", "sharing_condition", "nullable", "note"}
    for d in cat["datasets"]:
        assert "sample" not in d
        for f in d["fields"]:
            assert set(f) == allowed, (d["id"], f["name"])


def test_no_lake_no_facts():
    cat = build_catalogue(tables(), catalog(), load_sharing(), load_yaml("sources.yaml"), {})
    assert all(d["rows"] is None and d["last_update"] is None and d["quality_score"] is None
               for d in cat["datasets"])


def test_html_fragment(cat):
    h = render_catalogue_html(cat)
    assert h.startswith('<section class="shuzhi-catalogue">') and h.rstrip().endswith("</section>")
    for external in ("<script", "http://", "https://", " src=", "<link", "@import"):
        assert external not in h
    assert "silver.police_population" in h and "不予共享" in h and "公安实有人口（标准层）" in h
    assert "restored.&lt;batch&gt;__silver__health_residents" in h          # escaped
    assert ID not in h


def test_sharing_rule_checked():
    raw = _yaml(CONF_DIR / "sharing.yaml")
    del raw["fields"]["L4"]
    with pytest.raises(catalogue.SharingRuleError, match="no class for level"):
        parse_sharing(raw)
    raw = _yaml(CONF_DIR / "sharing.yaml")
    raw["layer_floor"]["ops"] = "保密"
    with pytest.raises(catalogue.SharingRuleError, match="layer_floor.ops"):
        parse_sharing(raw)
