"""The governance office's cockpit (数据治理驾驶舱): one self-contained HTML page per night, an
``index.html`` listing the nights and the catalogue page (written by ``shuzhi.cockpit_report``).

Pure rendering: every function takes the plain dicts the lake's readers return
(``shuzhi.quality.quality_report``, ``shuzhi.workflow.conflict_summary``, the quarantine counts,
gate outcomes, rejected deliveries and retention status of ``shuzhi.cockpit_report``)
and returns HTML text. Charts are inline SVG drawn here: no JavaScript, no CDN, no request outside
the file, so the page renders on an isolated network. Chinese labels first, English second; it
never receives an L3/L4 value (callers pass masked subjects only).

    >>> trend = {"police": {"overall": [["2026-11-25", 85.5], ["2026-11-26", 82.5]]}}
    >>> page = render_night({"night": "2026-11-26", "quality": {"scorecards": {}, "trend": trend}})
    >>> "<svg" in page and "http" not in page
    True
    >>> "&lt;b&gt;" in render_night({"night": "2026-11-26", "rejected": [{"message": "<b>"}]})
    True
"""
from __future__ import annotations

import html
from typing import Any, Iterable, Mapping

from .config import SCHEMAS_DIR, load_yaml

DIMENSIONS = {"overall": "总分 overall", "conformity": "规范性 conformity", "completeness": "完整性 completeness",
              "accuracy": "准确性 accuracy", "consistency": "一致性 consistency", "timeliness": "时效性 timeliness",
              "uniqueness": "唯一性 uniqueness"}
# the departments' names as schemas/feeds.yaml declares them (中文 first), not a second list here
DEPARTMENTS = {s: f"{v.get('name_zh', s)} {s.replace('_', ' ')}"
               for s, v in load_yaml("feeds.yaml", SCHEMAS_DIR)["sources"].items()}
STATES = {"open": "未处理 open", "acknowledged": "已确认 acknowledged", "assigned": "已分派 assigned",
          "resolved": "已解决 resolved", "reopened": "重新打开 reopened"}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")

CSS = """body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;font-size:13px}
th{background:#f4f4f4}td.n{text-align:right}.up{color:#2ca02c}.down{color:#d62728}.muted{color:#888}
.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-size:13px}"""


def _e(v: Any) -> str:
    return "—" if v is None else html.escape(str(v))


def _num(v: Any, digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else _e(v)


def _dept(code: Any) -> str:
    return _e(DEPARTMENTS.get(code, code))


def _change(v: float | None) -> str:
    if v is None:
        return '<span class="muted">—</span>'
    cls = "up" if v > 0 else "down" if v < 0 else "muted"
    return f'<span class="{cls}">{v:+.1f}</span>'


def table(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def svg_lines(series: Mapping[str, list], *, width: int = 420, height: int = 200, y_max: float = 100.0,
              title: str = "") -> str:
    """A line chart as inline SVG: ``{label: [[x_label, y], …]}`` with a shared, ordered x axis
    (nights); y from 0 to ``y_max``. A series with one point is drawn as a dot."""
    xs = sorted({p[0] for pts in series.values() for p in pts})
    left, right, top, bottom = 36, 110, 10, 28
    w, h = width - left - right, height - top - bottom
    def x(i: int) -> float:
        return left + (w * i / (len(xs) - 1) if len(xs) > 1 else w / 2)
    def y(v: float) -> float:
        return top + h - h * max(0.0, min(v, y_max)) / y_max
    parts = [f'<svg role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><title>{_e(title)}</title>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#ccc"/>']
    for t in (0, y_max / 2, y_max):
        parts.append(f'<text x="{left - 4}" y="{y(t) + 4:.1f}" font-size="10" text-anchor="end">{t:g}</text>')
    for i, xl in enumerate(xs):
        parts.append(f'<text x="{x(i):.1f}" y="{height - 10}" font-size="10" text-anchor="middle">{_e(xl[5:])}</text>')
    for k, (label, pts) in enumerate(sorted(series.items())):
        colour = PALETTE[k % len(PALETTE)]
        coords = [(x(xs.index(p[0])), y(p[1])) for p in pts if p[1] is not None]
        if len(coords) > 1:
            d = " ".join(f"{'M' if j == 0 else 'L'}{cx:.1f},{cy:.1f}" for j, (cx, cy) in enumerate(coords))
            parts.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for cx, cy in coords:
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<text x="{left + w + 6}" y="{top + 12 + 14 * k}" font-size="11" fill="{colour}">'
                     f'{_e(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def scorecards(quality: Mapping[str, Any]) -> str:
    """Department scorecards this night: each dimension's score and its change vs last night."""
    cards = quality.get("scorecards") or {}
    dims = [d for d in DIMENSIONS if any(d in c for c in cards.values())]
    rows = [[_dept(dept)] + [f'{_num(c.get(d, {}).get("score"))} {_change(c.get(d, {}).get("change"))}' for d in dims]
            for dept, c in sorted(cards.items())]
    if not rows:
        return "<p>尚无评分 (no scores yet)</p>"
    return table(["部门 department"] + [DIMENSIONS[d] for d in dims], rows)


def trend_charts(quality: Mapping[str, Any]) -> str:
    """One chart per department: every dimension's score over all nights."""
    figs = []
    for dept, dims in sorted((quality.get("trend") or {}).items()):
        name = DEPARTMENTS.get(dept, dept)
        chart = svg_lines({DIMENSIONS.get(d, d): pts for d, pts in dims.items()}, title=f"{name} 质量趋势")
        figs.append(f"<figure>{chart}<figcaption>{_e(name)} 质量趋势 quality trend</figcaption></figure>")
    return f'<div class="charts">{"".join(figs)}</div>' if figs else "<p>尚无趋势 (no history yet)</p>"


def anomalies_section(quality: Mapping[str, Any]) -> str:
    flags = quality.get("anomalies") or []
    if not flags:
        return "<p>无异常 (no anomaly flags tonight)</p>"
    return table(["部门 department", "表 table", "指标 metric", "值 value", "上一夜 previous", "预期 expected",
                  "级别 severity"],
                 [[_dept(f.get("department")), _e(f.get("table")), _e(f.get("metric")), _num(f.get("value"), 3),
                   _num(f.get("previous"), 3), f'{_num(f.get("expected_low"), 3)} – {_num(f.get("expected_high"), 3)}',
                   _e(SEVERITY.get(f.get("severity"), f.get("severity")))] for f in flags])


SEVERITY = {"warning": "警告 warning", "failure": "失败 failure"}
OUTCOMES = {"passed": "通过 passed", "warned": "警告 warned", "failed": "未通过 failed"}
STAGES = {"ingest": "入湖 ingest", "clean": "清洗 clean"}


def svg_bars(values: Mapping[str, Mapping[str, float]], *, width: int = 420, title: str = "") -> str:
    """A horizontal stacked bar chart as inline SVG: ``{bar label: {part label: value}}``, one
    colour per part (the same part the same colour in every bar), a legend under the bars."""
    parts = sorted({k for v in values.values() for k in v})
    top = max((sum(v.values()) for v in values.values()), default=0) or 1
    left, bar, gap = 130, 18, 6
    w = width - left - 60
    height = 10 + len(values) * (bar + gap) + 18 * ((len(parts) + 2) // 3) + 10
    out = [f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
           f"<title>{_e(title)}</title>"]
    for i, (label, v) in enumerate(values.items()):
        y0, x0 = 10 + i * (bar + gap), float(left)
        out.append(f'<text x="{left - 6}" y="{y0 + 13}" font-size="11" text-anchor="end">{_e(label)}</text>')
        for k in parts:
            n = v.get(k, 0)
            if n:
                dx = w * n / top
                out.append(f'<rect x="{x0:.1f}" y="{y0}" width="{max(dx, 1):.1f}" height="{bar}" '
                           f'fill="{PALETTE[parts.index(k) % len(PALETTE)]}"><title>{_e(k)}: {n:g}</title></rect>')
                x0 += dx
        out.append(f'<text x="{x0 + 4:.1f}" y="{y0 + 13}" font-size="11">{sum(v.values()):g}</text>')
    ly = 10 + len(values) * (bar + gap) + 6
    for j, k in enumerate(parts):
        x, y = 10 + (j % 3) * (width // 3), ly + 18 * (j // 3)
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{x + 14}" y="{y + 9}" font-size="10">{_e(k)}</text>')
    out.append("</svg>")
    return "".join(out)


def quarantine_section(rows: list[Mapping[str, Any]]) -> str:
    """The night's quarantined records by department, stage and reason: a chart and the table."""
    if not rows:
        return "<p>今夜无隔离记录 (nothing quarantined tonight)</p>"
    bars: dict[str, dict[str, float]] = {}
    for r in rows:
        part = bars.setdefault(DEPARTMENTS.get(r["department"], r["department"]), {})
        part[r["reason_code"]] = part.get(r["reason_code"], 0) + r["records"]
    chart = svg_bars(bars, title="隔离记录 按部门与原因 quarantined by department and reason")
    return (f'<div class="charts"><figure>{chart}<figcaption>隔离记录（入湖与清洗合计）quarantined records, '
            f"ingest and clean together</figcaption></figure></div>" +
            table(["部门 department", "阶段 stage", "原因代码 reason", "说明 description", "记录数 records"],
                  [[_dept(r["department"]), _e(STAGES.get(r["stage"], r["stage"])), _e(r["reason_code"]),
                    _e(r.get("reason_zh")), f'{r["records"]:,}'] for r in rows]))


def _by_rule_and_department(counts: Mapping[str, Mapping[str, int]]) -> str:
    depts = sorted({d for v in counts.values() for d in v})
    return table(["规则 rule"] + [_dept(d) for d in depts],
                 [[_e(rule)] + [_e(v.get(d, 0)) for d in depts] for rule, v in sorted(counts.items())])


def conflicts_section(summary: Mapping[str, Any]) -> str:
    counts = summary.get("counts") or {}
    out = [table([STATES.get(s, s) for s in counts], [[_e(v) for v in counts.values()]]) if counts else ""]
    out.append(f"<p>确认中位时长 median hours to acknowledge: {_num(summary.get('median_hours_to_acknowledge'))}; "
               f"解决中位时长 median hours to resolve: {_num(summary.get('median_hours_to_resolve'))}</p>")
    states = list(counts) or list(STATES)
    for key, title, head, label in (("by_department", "按部门 by department", "部门 department", _dept),
                                    ("by_rule", "按规则 by rule", "规则 rule", _e)):
        per = summary.get(key) or {}
        if per:
            out.append(f"<h3>{title}</h3>" + table(
                [head] + [STATES.get(s, s) for s in states],
                [[label(k)] + [_e(c.get(s, 0)) for s in states] for k, c in per.items()]))
    flow = summary.get("flow") or {}
    for kind, title in (("new", "今夜新增 new tonight"), ("resolved", "今夜解除 resolved tonight")):
        if flow.get(kind):
            out.append(f"<h3>{title}</h3>" + _by_rule_and_department(flow[kind]))
        elif kind in flow:
            out.append(f"<h3>{title}</h3><p>无 none</p>")
    oldest = summary.get("oldest_open") or []
    if oldest:
        out.append("<h3>最久未解决 oldest open</h3>" + table(
            ["冲突 conflict", "规则 rule", "对象 subject (masked)", "状态 state", "首次发现 first seen", "天数 days"],
            [[_e(r.get("conflict_id")), _e(r.get("rule_id")), _e(r.get("subject_masked")),
              _e(STATES.get(r.get("state"), r.get("state"))),
              _e(r.get("first_seen")), _e(r.get("age_days"))] for r in oldest]))
    return "".join(out)


def gates_section(gates: list[Mapping[str, Any]]) -> str:
    if not gates:
        return "<p>今夜无质量门记录 (no gate ran for this night)</p>"
    return table(["表 table", "结果 outcome", "期望数 expectations", "严重失败 critical failed", "警告 warnings",
                  "详情 details"],
                 [[_e(g.get("table")), _e(OUTCOMES.get(g.get("outcome"), g.get("outcome"))), _e(g.get("expectations")),
                   _e(g.get("failed_critical")), _e(g.get("failed_warning")),
                   f'<a href="{_e(g["docs"])}">Data Docs</a>' if g.get("docs") else "—"] for g in gates])


def rejected_section(rows: list[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>今夜无拒收 (no delivery rejected tonight)</p>"
    return table(["部门 department", "交付 delivery", "文件 file", "原因 reason", "说明 message"],
                 [[_dept(r.get("source")), _e(r.get("delivery_id")), _e(r.get("file")), _e(r.get("reason_code")),
                   _e(r.get("message"))] for r in rows])


def retention_section(ret: Mapping[str, Any]) -> str:
    stages = ret.get("stages") or []
    out = [table(["阶段 stage", "截至 as of", "逾期未处理 overdue", "冻结保留 held", "已核验 verified"],
                 [[_e(s.get("stage")), _e(s.get("as_of")), _e(s.get("overdue")), _e(s.get("held")),
                   _e({True: "是 yes", False: "否 no"}.get(s.get("verified")))] for s in stages])
           if stages else "<p>留存阶段尚未运行 (no retention stage has run yet)</p>"]
    holds = ret.get("holds") or []
    out.append(f"<p>冻结规则 legal holds: {_e('、'.join(holds)) if holds else '无 none'}</p>")
    c = ret.get("certificate")
    out.append("<p>最近销毁证明 last destruction certificate: " + (
        f"<code>{_e(c.get('certificate_id'))}</code>，截至 {_e(c.get('as_of'))}，记录 {_e(c.get('records'))}，"
        f"人员 {_e(c.get('persons'))}，核验 {_e(c.get('verification'))}，发现 findings {_e(c.get('findings'))}"
        if c else "无 none") + "</p>")
    return "".join(out)


def render_night(data: Mapping[str, Any]) -> str:
    """The whole page of one night. ``data``: night, quality, quarantine, conflicts, gates,
    rejected, retention (the shapes of ``shuzhi.cockpit_report``), catalogue (a relative link)."""
    night = data.get("night")
    quality = data.get("quality") or {}
    sections = [
        ("部门质量评分 Department scorecards", scorecards(quality)),
        ("质量趋势 Trends", trend_charts(quality)),
        ("异常标记 Anomaly flags", anomalies_section(quality)),
        ("隔离记录 Quarantine", quarantine_section(data.get("quarantine") or [])),
        ("冲突处置 Conflicts", conflicts_section(data.get("conflicts") or {})),
        ("质量门 Gates", gates_section(data.get("gates") or [])),
        ("拒收交付 Rejected deliveries", rejected_section(data.get("rejected") or [])),
        ("留存与销毁 Retention", retention_section(data.get("retention") or {})),
    ]
    body = "".join(f"<h2>{t}</h2>{s}" for t, s in sections)
    cat = data.get("catalogue")
    links = '<a href="index.html">全部夜次 all nights</a>' + (
        f' · <a href="{_e(cat)}">数据目录 data catalogue</a>' if cat else "")
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>数据治理驾驶舱 {_e(night)}</title>'
            f"<style>{CSS}</style></head><body><h1>数据治理驾驶舱 Governance cockpit — {_e(night)}</h1>"
            f"<p>{links}</p>{body}</body></html>")


def render_index(nights: list[Mapping[str, Any]]) -> str:
    """``index.html``: one row per night (newest first), each department's overall score, a link."""
    depts = sorted({d for n in nights for d in (n.get("scores") or {})})
    rows = [[f'<a href="{_e(n["night"])}.html">{_e(n["night"])}</a>'] +
            [_num((n.get("scores") or {}).get(d)) for d in depts]
            for n in sorted(nights, key=lambda n: n["night"], reverse=True)]
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>数据治理驾驶舱</title>'
            f"<style>{CSS}</style></head><body><h1>数据治理驾驶舱 Governance cockpit</h1>"
            f'<p><a href="catalogue.html">数据目录 data catalogue</a></p>'
            f"{table(['夜次 night'] + [f'{_dept(d)} 总分' for d in depts], rows)}</body></html>")


def render_catalogue_page(fragment: str) -> str:
    """The catalogue's HTML fragment (``shuzhi.catalogue.render_catalogue_html``) as a cockpit page."""
    return (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>数据目录 data catalogue</title>'
            f'<style>{CSS}</style></head><body><p><a href="index.html">全部夜次 all nights</a></p>'
            f"{fragment}</body></html>")
