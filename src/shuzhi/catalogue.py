"""The data catalogue (开放共享目录): every dataset of the lake, generated from ``schemas/`` (the
departments' feeds and the data-element standards, ``shuzhi.schemas.catalog()``) and the table
registry (``shuzhi.registry.tables()``), with each dataset's and field's sharing class derived from
the sensitivity levels by the rule of ``conf/sharing.yaml``, and the live facts of the lake (last
update, rows, quality score)::

    shuzhi catalog [--out var/reports/catalog.json] [--html catalog.html]

    >>> cat = build_catalogue(tables(), catalog(), load_sharing(), load_yaml("sources.yaml"), {})
    >>> ds = next(d for d in cat["datasets"] if d["id"] == "silver.health_residents")
    >>> ds["owner"]["name_zh"], ds["sharing"]["class"], ds["max_level"]
    ('卫健', '不予共享', 'L4')
    >>> next(f for f in ds["fields"] if f["name"] == "community_code")["sharing"]
    '无条件共享'

Metadata only: no value of any record is read into it (the shell counts rows and reads Delta
history and ``ops.quality_scores``). ``build_catalogue`` is pure (registry + schemas + rule + a dict
of live facts → dict); ``gather_facts`` is the shell that asks the lake; ``render_catalogue_html``
gives a self-contained HTML fragment (no external assets) for the cockpit report.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from .access import lake_tables, read_if_exists
from .config import CONF_DIR, SCHEMAS_DIR, Settings, load_yaml
from .publish import read_published
from .registry import Table, tables
from .schemas import LEVELS, Catalog, Element, catalog
from .spark import get_spark

SHARING_YAML = "sharing.yaml"
LAYER_ZH = {"bronze": "原始层", "silver": "标准层", "gold": "专题与冲突层", "ops": "运行记录", "cold": "冷存储层",
            "restored": "归档恢复"}
RETENTION_STAGES = frozenset({"tier", "archive", "destroy"})
SOURCES = ("schemas/feeds.yaml", "schemas/elements.yaml", "schemas/code_lists.yaml", "schemas/tables.yaml",
           "conf/sharing.yaml", "conf/sources.yaml")
# a declared column's name → its data element: the name with one of these endings cut (ciphertext,
# tokens, check flags), or (ending → element) what the identity number encodes; an element name or
# a canonical field name (`as:` in schemas/feeds.yaml) of one element
_CUT = ("_enc", "__tok", "__mtok", "__valid")
_DERIVED = {"__birth": "birth_date", "__sex": "sex"}


class SharingRuleError(ValueError):
    """``conf/sharing.yaml`` is inconsistent (a level without a class, an unknown class, …)."""


@dataclass(frozen=True)
class SharingRule:
    ranks: dict[str, int]                 # class → rank (higher restricts more)
    class_en: dict[str, str]
    fields: dict[str, tuple[str, str]]     # level → (class, condition)
    layer_floor: dict[str, str]
    steward: dict[str, str]

    def field_class(self, level: str) -> str:
        return self.fields[level][0]

    def most_restrictive(self, classes: Iterable[str]) -> str | None:
        classes = list(classes)
        return max(classes, key=self.ranks.__getitem__) if classes else None


def parse_sharing(raw: Mapping[str, Any]) -> SharingRule:
    """``conf/sharing.yaml`` (parsed) → a SharingRule; raises SharingRuleError naming what is wrong.

    >>> parse_sharing({"classes": {"甲": {"rank": 0, "en": "a"}}, "fields": {"L1": {"class": "乙"}},
    ...                "dataset_rule": "most_restrictive"})
    Traceback (most recent call last):
    ...
    shuzhi.catalogue.SharingRuleError: conf/sharing.yaml: fields.L1: class '乙' is not one of 甲
    """
    classes = raw.get("classes") or {}
    ranks = {str(c): int(v["rank"]) for c, v in classes.items()}
    if raw.get("dataset_rule") != "most_restrictive":
        raise SharingRuleError(f"conf/sharing.yaml: dataset_rule {raw.get('dataset_rule')!r}: only most_restrictive")
    fields = {}
    for level, v in (raw.get("fields") or {}).items():
        if v.get("class") not in ranks:
            raise SharingRuleError(f"conf/sharing.yaml: fields.{level}: class {v.get('class')!r} is not one of "
                                   f"{', '.join(ranks)}")
        fields[str(level)] = (str(v["class"]), str(v.get("condition", "")))
    missing = [lv for lv in LEVELS if lv not in fields]
    if missing:
        raise SharingRuleError(f"conf/sharing.yaml: fields: no class for level(s) {', '.join(missing)}")
    floor = {str(k): str(v) for k, v in (raw.get("layer_floor") or {}).items()}
    for layer, c in floor.items():
        if c not in ranks:
            raise SharingRuleError(f"conf/sharing.yaml: layer_floor.{layer}: class {c!r} is not one of "
                                   f"{', '.join(ranks)}")
    return SharingRule(ranks, {str(c): str(v.get("en", "")) for c, v in classes.items()}, fields, floor,
                       {k: str(v) for k, v in (raw.get("steward") or {}).items()})


def load_sharing(folder: Path = CONF_DIR) -> SharingRule:
    return parse_sharing(load_yaml(SHARING_YAML, folder))


# ---------------------------------------------------------------- pure: registry + schemas + facts → dict

def schedule_zh(cron: str | None) -> str:
    """A cron expression as the catalogue says it.

    >>> schedule_zh("30 1 * * *"), schedule_zh("0 */6 * * *")
    ('每日 01:30', '按计划 0 */6 * * *（cron）')
    """
    m = re.fullmatch(r"(\d{1,2}) (\d{1,2}) \* \* \*", (cron or "").strip())
    if m:
        return f"每日 {int(m.group(2)):02d}:{int(m.group(1)):02d}"
    return f"按计划 {cron}（cron）" if cron else "不定期"


def update_frequency(t: Table, sources_conf: Mapping[str, Any]) -> dict:
    """How often a table changes: an entity's bronze and silver tables with its source's delivery
    schedule (``conf/sources.yaml``), the retention stages' tables per retention run, a restored
    batch on restore, everything else nightly (the lifecycle DAG)."""
    written = set(t.written_by)
    tz = sources_conf.get("timezone", "")
    if t.entity is not None and written & {"ingest", "clean"}:
        cron = (sources_conf.get("sources") or {}).get(t.entity.source, {}).get("schedule")
        return {"en": "nightly, with the source's delivery", "zh": f"{schedule_zh(cron)}（{tz}，随部门夜间交付）",
                "schedule": cron}
    if written and written <= RETENTION_STAGES:
        return {"en": "per retention run", "zh": "每次留存作业（分层/归档/销毁）", "schedule": None}
    if written == {"restore"}:
        return {"en": "on restore", "zh": "按需（归档恢复时）", "schedule": None}
    return {"en": "nightly", "zh": "每日（夜间批处理）", "schedule": None}


def _element_of_column(name: str, level: str, cat: Catalog) -> Element | None:
    """The data element a declared column holds, from its name — only when the element's level is
    the column's (an employer's L1 ``name`` is no person's name)."""
    el = _element_by_name(name, cat)
    return el if el is not None and el.sensitivity == level else None


def _element_by_name(name: str, cat: Catalog) -> Element | None:
    canonical: dict[str, set[str]] = {}
    for e in cat.entities():
        for f in e.fields:
            canonical.setdefault(f.silver_name, set()).add(f.element.name)
    for end, el in _DERIVED.items():
        if name.endswith(end):
            return cat.elements.get(el)
    base = name
    for end in _CUT:
        if base.endswith(end):
            base = base[: -len(end)]
            break
    if base in cat.elements:
        return cat.elements[base]
    els = canonical.get(base, set())
    return cat.elements[next(iter(els))] if len(els) == 1 else None


def _code_table(el: Element | None, cat: Catalog) -> dict | None:
    if el is None or not (el.code_list or el.standard):
        return None
    out: dict[str, Any] = {"standard": el.standard}
    if el.code_list:
        out.update(name=el.code_list, codes=len(cat.code_list(el.code_list).codes))
    return out


def _field(name: str, typ: str, level: str, kind: str, el: Element | None, rule: SharingRule, cat: Catalog, *,
           delivered_as: str | None = None, note: str = "", nullable: bool = True) -> dict:
    cls, cond = rule.fields[level]
    return {"name": name, "delivered_as": delivered_as, "element": el.name if el else None,
            "element_zh": el.name_zh if el else None, "type": typ, "level": level, "kind": kind,
            "pii": el.pii if el else None, "code_standard": _code_table(el, cat), "sharing": cls,
            "sharing_condition": cond, "nullable": nullable, "note": note}


def dataset_fields(t: Table, cat: Catalog, rule: SharingRule) -> list[dict]:
    """Every field of a table: an entity's fields (delivered names in bronze, canonical in silver and
    after) with their element, then the declared columns (element inferred from the name)."""
    out = []
    if t.entity is not None and t.fields is not None:
        for f in t.entity.fields:
            delivered = t.fields == "delivered"
            out.append(_field(f.name if delivered else f.silver_name,
                              "binary (ciphertext)" if f.is_encrypted else ("as delivered" if delivered
                                                                            else f.element.type),
                              f.sensitivity, "enc" if f.is_encrypted else "value", f.element, rule, cat,
                              delivered_as=None if delivered else f.name, nullable=f.nullable,
                              note=f"{f.element.name_zh}（{f.element.name}）"))
    for c in t.columns:
        el = None if "*" in c.name else _element_of_column(c.name, c.level, cat)
        out.append(_field(c.name, c.type, c.level, c.kind, el, rule, cat, note=c.note, nullable=c.nullable))
    return out


def _name_zh(t: Table, source_zh: Mapping[str, str]) -> str:
    if t.entity is not None:
        src = source_zh.get(t.entity.source, t.entity.source)
        return f"{src}{t.entity.name_zh}（{LAYER_ZH.get(t.layer, t.layer)}）"
    return t.description_zh or t.description


def _owner(t: Table, source_zh: Mapping[str, str], rule: SharingRule) -> dict:
    if t.entity is not None:
        return {"code": t.entity.source, "name_zh": source_zh.get(t.entity.source, t.entity.source)}
    return {"code": rule.steward.get("code", "governance_office"), "name_zh": rule.steward.get("name_zh", "数据治理办")}


def _sharing(t: Table, fields: list[dict], rule: SharingRule) -> dict:
    by_fields = rule.most_restrictive(f["sharing"] for f in fields)
    floor = rule.layer_floor.get(t.layer)
    cls = rule.most_restrictive([c for c in (by_fields, floor) if c])
    if floor and (by_fields is None or rule.ranks[floor] > rule.ranks[by_fields]):
        why = f"layer floor of {t.layer} (conf/sharing.yaml layer_floor)"
    else:
        top = [f["name"] for f in fields if f["sharing"] == cls]
        why = f"most restrictive of its fields: {', '.join(top[:5])}{' …' if len(top) > 5 else ''}"
    return {"class": cls, "en": rule.class_en.get(cls, ""), "why": why}


def _live(t: Table, facts: Mapping[str, Any]) -> dict:
    """The lake's facts of a table; a pattern table sums its instances (the restored batches)."""
    known = facts.get("tables") or {}
    if not t.pattern:
        f = known.get(t.key) or {}
        return {"exists": t.key in known, "last_update": f.get("last_update"), "rows": f.get("rows")}
    inst = sorted(k for k in known if t.matches(k))
    rows = [known[k].get("rows") for k in inst]
    stamps = [known[k].get("last_update") for k in inst if known[k].get("last_update")]
    return {"exists": bool(inst), "instances": inst, "last_update": max(stamps) if stamps else None,
            "rows": sum(r for r in rows if r is not None) if inst else None}


def build_catalogue(registry_tables: Iterable[Table], cat: Catalog, rule: SharingRule,
                    sources_conf: Mapping[str, Any], facts: Mapping[str, Any],
                    source_zh: Mapping[str, str] | None = None) -> dict:
    """The catalogue as a dict (JSON-ready): every registry table (a pattern table once, as its
    pattern), with description, owner, fields, sharing class, update frequency and the live
    ``facts``: ``{"tables": {"<layer>.<name>": {"last_update": iso, "rows": n}}, "scores":
    {"<department>": {"night": iso, "score": x}}, "generated_at": iso}`` (any part may be absent)."""
    if source_zh is None:
        source_zh = {s: str(v.get("name_zh", s)) for s, v in load_yaml("feeds.yaml", SCHEMAS_DIR)["sources"].items()}
    scores = facts.get("scores") or {}
    datasets = []
    for t in registry_tables:
        fields = dataset_fields(t, cat, rule)
        owner = _owner(t, source_zh, rule)
        q = scores.get(owner["code"]) or {}
        levels = [f["level"] for f in fields]
        datasets.append({
            "id": t.key, "layer": t.layer, "layer_zh": LAYER_ZH.get(t.layer, t.layer), "pattern": t.pattern,
            "name_zh": _name_zh(t, source_zh), "description_zh": t.description_zh, "description_en": t.description,
            "entity": f"{t.entity.source}/{t.entity.name}" if t.entity is not None else None,
            "owner": owner, "keys": list(t.keys), "partition_by": list(t.partition_by),
            "retention_class": t.retention, "max_level": max(levels) if levels else None,
            "pii_categories": sorted({f["pii"] for f in fields if f["pii"] and f["pii"] != "none"}),
            "sharing": _sharing(t, fields, rule), "update_frequency": update_frequency(t, sources_conf),
            **_live(t, facts),
            "quality_score": q.get("score"), "quality_night": q.get("night"),
            "fields": fields,
        })
    counts: dict[str, int] = {c: 0 for c in sorted(rule.ranks, key=rule.ranks.__getitem__)}
    for d in datasets:
        counts[d["sharing"]["class"]] += 1
    return {
        "title": "数治数据资源目录（开放共享目录）", "title_en": "shuzhi data catalogue (open sharing catalogue)",
        "generated_at": facts.get("generated_at"), "generated_from": list(SOURCES),
        "timezone": sources_conf.get("timezone"),
        "sharing_rule": {"classes": {c: {"rank": r, "en": rule.class_en.get(c, "")} for c, r in rule.ranks.items()},
                         "fields": {lv: {"class": c, "condition": cond} for lv, (c, cond) in rule.fields.items()},
                         "dataset_rule": "most_restrictive", "layer_floor": dict(rule.layer_floor)},
        "sharing_counts": counts, "datasets": datasets,
    }


# ---------------------------------------------------------------- HTML fragment

_CSS = """
.shuzhi-catalogue{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;font-size:13px;color:#1f2933}
.shuzhi-catalogue table{border-collapse:collapse;width:100%;margin:4px 0 10px}
.shuzhi-catalogue th,.shuzhi-catalogue td{border:1px solid #d0d7de;padding:3px 6px;text-align:left;vertical-align:top}
.shuzhi-catalogue th{background:#f3f4f6}
.shuzhi-catalogue td.n{text-align:right;font-variant-numeric:tabular-nums}
.shuzhi-catalogue .c0{background:#e6f4ea}.shuzhi-catalogue .c1{background:#fff4e0}
.shuzhi-catalogue .c2{background:#fde8e8}
.shuzhi-catalogue details{margin:2px 0}.shuzhi-catalogue summary{cursor:pointer}
"""


def _e(v: Any) -> str:
    return "—" if v is None or v == "" else html.escape(str(v))


def render_catalogue_html(cat: Mapping[str, Any]) -> str:
    """The catalogue as one self-contained HTML fragment (a ``<section>`` with its own ``<style>``,
    no script, no external asset) for the cockpit report to embed."""
    ranks = {c: v["rank"] for c, v in cat["sharing_rule"]["classes"].items()}
    out = [f'<section class="shuzhi-catalogue"><style>{_CSS}</style>', f"<h2>{_e(cat['title'])}</h2>",
           f"<p>生成时间 generated: {_e(cat.get('generated_at'))}；"
           f"来源 from: {_e(', '.join(cat['generated_from']))}</p>",
           "<p>共享属性 sharing: " + "；".join(f'<span class="c{ranks[c]}">{_e(c)}</span> {n}'
                                              for c, n in cat["sharing_counts"].items()) + "</p>",
           "<table><thead><tr><th>数据集 dataset</th><th>名称</th><th>责任部门</th><th>共享属性</th><th>最高级别</th>"
           "<th>个人信息类别</th><th>更新频率</th><th>最近更新</th><th>行数</th><th>质量得分</th></tr></thead><tbody>"]
    for d in cat["datasets"]:
        c = d["sharing"]["class"]
        out.append(
            f"<tr><td><code>{_e(d['id'])}</code>{'（模式）' if d['pattern'] else ''}</td><td>{_e(d['name_zh'])}</td>"
            f"<td>{_e(d['owner']['name_zh'])}</td><td class=\"c{ranks[c]}\">{_e(c)}</td><td>{_e(d['max_level'])}</td>"
            f"<td>{_e('、'.join(d['pii_categories']))}</td><td>{_e(d['update_frequency']['zh'])}</td>"
            f"<td>{_e(d['last_update'])}</td><td class=\"n\">{_e(d['rows'])}</td>"
            f"<td class=\"n\">{_e(d['quality_score'])}</td></tr>")
    out.append("</tbody></table>")
    for d in cat["datasets"]:
        out.append(f"<details><summary><code>{_e(d['id'])}</code> {_e(d['name_zh'])} — {_e(d['description_en'])}"
                   f"</summary><p>{_e(d['description_zh'])}；共享属性 {_e(d['sharing']['class'])}"
                   f"（{_e(d['sharing']['why'])}）</p><table><thead><tr><th>字段 field</th><th>数据元</th>"
                   "<th>类型</th><th>级别</th><th>形式</th><th>个人信息</th><th>代码标准</th><th>共享</th></tr></thead><tbody>")
        for f in d["fields"]:
            cs = f["code_standard"] or {}
            std = " ".join(str(x) for x in (cs.get("standard"), cs.get("name") and f"代码表 {cs['name']}",
                                            cs.get("codes") and f"{cs['codes']}项") if x)
            out.append(f"<tr><td><code>{_e(f['name'])}</code></td><td>{_e(f['element_zh'])}</td><td>{_e(f['type'])}"
                       f"</td><td>{_e(f['level'])}</td><td>{_e(f['kind'])}</td><td>{_e(f['pii'])}</td><td>{_e(std)}"
                       f"</td><td class=\"c{ranks[f['sharing']]}\">{_e(f['sharing'])}</td></tr>")
        out.append("</tbody></table></details>")
    out.append("</section>")
    return "\n".join(out)


# ---------------------------------------------------------------- the shell

def gather_facts(spark, settings: Settings) -> dict:
    """The lake's facts per table (last commit time, rows readers see) and the latest overall
    quality score per department (``ops.quality_scores``; none while that table does not exist)."""
    known: dict[str, dict] = {}
    for key in lake_tables(settings):
        layer, name = key.split(".", 1)
        path = settings.table_path(layer, name)
        h = DeltaTable.forPath(spark, str(path)).history(1).select("version", "timestamp").collect()[0]
        df = read_published(spark, settings, layer, name)
        known[key] = {"last_update": h["timestamp"].isoformat(timespec="seconds"), "version": int(h["version"]),
                      "rows": None if df is None else int(df.count())}
    scores: dict[str, dict] = {}
    qs = read_if_exists(spark, settings, "ops", "quality_scores")
    if qs is not None and {"night", "department", "dimension", "score"} <= set(qs.columns):
        latest = (qs.filter(F.col("dimension") == "overall").groupBy("department")
                  .agg(F.max(F.struct("night", "score")).alias("m")).collect())
        for r in latest:
            night, score = r["m"]["night"], r["m"]["score"]
            scores[r["department"]] = {"night": night.isoformat() if hasattr(night, "isoformat") else night,
                                       "score": None if score is None else round(float(score), 2)}
    return {"tables": known, "scores": scores}


def catalogue_for(settings: Settings, spark=None) -> dict:
    """The catalogue of this lake (no lake: the registry's datasets with no live facts, no Spark)."""
    facts: dict[str, Any] = {}
    if settings.lake_exists():
        if spark is None:
            spark = get_spark(settings)
        facts = gather_facts(spark, settings)
    facts["generated_at"] = datetime.now().isoformat(timespec="seconds")
    return build_catalogue(tables(), catalog(), load_sharing(), load_yaml("sources.yaml"), facts)


def write_text_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)                 # a report to read, not a secret (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_catalogue(cat: Mapping[str, Any], out: Path, html_out: Path | None = None) -> None:
    """JSON (UTF-8, Chinese as is) to ``out``; the HTML fragment to ``html_out`` if given."""
    write_text_atomic(Path(out), json.dumps(cat, ensure_ascii=False, indent=1) + "\n")
    if html_out is not None:
        write_text_atomic(Path(html_out), render_catalogue_html(cat) + "\n")


def default_out(settings: Settings) -> Path:
    return settings.home / "reports" / "catalog.json"


def cmd_catalog(settings: Settings, a: argparse.Namespace) -> int:
    """``shuzhi catalog [--out FILE] [--html FILE]``."""
    out = Path(a.out) if a.out else default_out(settings)
    try:
        cat = catalogue_for(settings)
        write_catalogue(cat, out, Path(a.html) if a.html else None)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"catalog: {len(cat['datasets'])} datasets → {out.resolve()}")
    if a.html:
        print(f"html: → {Path(a.html).resolve()}")
    return 0


def register(sub) -> None:
    """The ``catalog`` sub-command (called from ``shuzhi.commands.register``)."""
    p = sub.add_parser("catalog", help="the data catalogue (开放共享目录) as JSON: datasets, fields, sharing classes, "
                                       "update frequency, last update, rows, quality score")
    p.add_argument("--out", metavar="FILE", help="JSON file (default: $SHUZHI_HOME/reports/catalog.json)")
    p.add_argument("--html", metavar="FILE", help="also write the HTML fragment the cockpit report embeds")
    p.set_defaults(fn=cmd_catalog)
