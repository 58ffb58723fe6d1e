"""The cockpit's renderer (``shuzhi.cockpit``) on hand-written section data: every section shows
what it was given, nothing is fetched from outside the file, values are escaped, and the charts
are drawn as inline SVG."""
import re

import pytest

from shuzhi import cockpit

pytestmark = pytest.mark.unit

NIGHT = {
    "night": "2026-11-27",
    "quality": {
        "scorecards": {"police": {"overall": {"score": 83.25, "change": 11.75}, "accuracy": {"score": 85.3,
                                                                                            "change": None}}},
        "trend": {"police": {"overall": [["2026-11-25", 70.0], ["2026-11-26", 71.5], ["2026-11-27", 83.25]]}},
        "anomalies": [{"department": "health", "table": "health_residents", "metric": "quarantine_share",
                       "value": 0.157, "previous": 0.019, "expected_low": 0.013, "expected_high": 0.027,
                       "severity": "failure"}],
    },
    "quarantine": [
        {"department": "police", "stage": "ingest", "reason_code": "CSV_TOO_FEW_FIELDS", "reason_zh": "字段数少于表头",
         "records": 1},
        {"department": "police", "stage": "clean", "reason_code": "ID_EMPTY", "reason_zh": "必填的身份号码为空",
         "records": 1200},
    ],
    "conflicts": {"counts": {"open": 3, "acknowledged": 1, "assigned": 0, "resolved": 2, "reopened": 0},
                  "by_department": {"police": {"open": 3}}, "by_rule": {"X_DUP_PERSON": {"open": 3}},
                  "flow": {"new": {"X_ABSENT_POLICE": {"police": 1, "social_security": 1}}, "resolved": {}},
                  "oldest_open": [{"conflict_id": "c1", "rule_id": "X_DUP_PERSON",
                                   "subject_masked": "150105********1234", "state": "open",
                                   "first_seen": "2026-11-25", "age_days": 2}]},
    "gates": [{"table": "bronze.quarantine", "outcome": "failed", "expectations": 5, "failed_critical": 5,
               "failed_warning": 0, "docs": "../gx/uncommitted/data_docs/local_site/validations/x.html"},
              {"table": "silver.police_population", "outcome": "warned", "expectations": 8, "failed_critical": 0,
               "failed_warning": 1, "docs": None}],
    "rejected": [{"source": "civil_affairs", "delivery_id": "civil_affairs/2026-11-27/ab", "file": None,
                  "reason_code": "MANIFEST_MISSING", "message": "no manifest.json <after 240 min>"}],
    "retention": {"stages": [{"stage": "destroy", "as_of": "2026-11-27", "overdue": 0, "held": 4, "verified": True}],
                  "holds": ["H_OPEN_CONFLICT"], "certificate": None},
    "catalogue": "catalogue.html",
}


def cells(page: str) -> list[list[str]]:
    """Every table row's cells as text (tags stripped)."""
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", page)]


def test_every_section_shows_its_data():
    page = cockpit.render_night(NIGHT)
    rows = cells(page)
    assert ["公安 police", "清洗 clean", "ID_EMPTY", "必填的身份号码为空", "1,200"] in rows
    assert ["卫健 health", "health_residents", "quarantine_share", "0.157", "0.019", "0.013 – 0.027",
            "失败 failure"] in rows
    assert ["bronze.quarantine", "未通过 failed", "5", "5", "0", "Data Docs"] in rows
    assert ["silver.police_population", "警告 warned", "8", "0", "1", "—"] in rows
    assert ["公安 police", "3", "0", "0", "0", "0"] in rows and ["X_DUP_PERSON", "3", "0", "0", "0", "0"] in rows
    assert ["X_ABSENT_POLICE", "1", "1"] in rows                          # new tonight, police and social security
    assert ["destroy", "2026-11-27", "0", "4", "是 yes"] in rows
    assert ["c1", "X_DUP_PERSON", "150105********1234", "未处理 open", "2026-11-25", "2"] in rows
    assert "83.2 <span" in page                 # one decimal (83.25 is exact in binary: half to even), the change
    assert '<span class="up">+11.8</span>' in page
    assert "今夜解除 resolved tonight</h3><p>无 none" in page
    assert "最近销毁证明 last destruction certificate: 无 none" in page
    assert 'href="catalogue.html"' in page and 'href="index.html"' in page


def test_nothing_outside_the_file_and_values_escaped():
    page = cockpit.render_night(NIGHT)
    assert "&lt;after 240 min&gt;" in page and "<after" not in page
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["'](https?:)?//""", page)        # no URL outside the file
    assert not re.search(r"@import|url\(", page)


def test_charts_are_inline_svg_with_shapes():
    page = cockpit.render_night(NIGHT)
    svgs = re.findall(r"<svg.*?</svg>", page)
    assert len(svgs) == 2                                 # police's trend, the quarantine bars
    trend, bars = svgs
    assert trend.count("<circle") == 3 and "<path" in trend
    # bars: one per department, its parts proportional: 1 and 1,200 records on one 230-pixel bar
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)" height="18"', bars)]
    assert widths == [pytest.approx(230 * 1 / 1201, abs=1.0), pytest.approx(230 * 1200 / 1201, abs=0.1)]


def test_empty_night_says_so():
    page = cockpit.render_night({"night": "2026-11-25"})
    for text in ("尚无评分", "无异常", "今夜无隔离记录", "今夜无质量门记录", "今夜无拒收", "留存阶段尚未运行"):
        assert text in page


def test_index_lists_nights_newest_first_with_scores():
    page = cockpit.render_index([{"night": "2026-11-25", "scores": {"police": 70.0}},
                                 {"night": "2026-11-26", "scores": {"police": 71.55, "health": None}}])
    rows = cells(page)
    assert rows[0] == ["夜次 night", "卫健 health 总分", "公安 police 总分"]
    assert rows[1:] == [["2026-11-26", "—", "71.5"], ["2026-11-25", "—", "70.0"]]     # 71.55 is 71.549… in binary
