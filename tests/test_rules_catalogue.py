"""conf/rules.yaml parses to exactly the rules it declares, each with its whole description.

YAML flow mappings end an unquoted value at the first ``,``: ``en: has spaces, hyphens`` is
``{en: "has spaces", "hyphens": null}``. These tests read the file with plain PyYAML (not the
loader under test) as well as through ``shuzhi.rules``, and compare texts written out by hand."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from shuzhi.rules import ingest_reasons, load_rules, load_tags, parse_rules

pytestmark = pytest.mark.unit

CATALOGUE = Path(__file__).resolve().parents[1] / "conf" / "rules.yaml"
KEYS = {"elements", "action", "severity", "zh", "en", "required_only", "enabled", "entities"}


def _raw() -> dict:
    return yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))


def test_every_rule_has_only_declared_keys_and_string_descriptions():
    raw = _raw()
    assert set(raw) == {"ingest", "clean", "verify", "precedence", "tags"}
    n = 0
    for stage in ("clean", "verify"):
        for rid, r in raw[stage].items():
            assert set(r) <= KEYS, (rid, set(r) - KEYS)
            assert {"action", "severity", "zh", "en"} <= set(r), rid
            assert isinstance(r["zh"], str) and isinstance(r["en"], str), rid
            # a value cut at a comma leaves a clause that ends with an opening bracket or a dangling word
            for text in (r["zh"], r["en"]):
                assert text.count("(") == text.count(")") and text.count("（") == text.count("）"), (rid, text)
                assert not text.rstrip().endswith((",", "(", "e.g.", "，")), (rid, text)
            n += 1
    # the ingest stage's reason codes: descriptions only, whole too
    for code, r in raw["ingest"].items():
        assert set(r) == {"zh", "en"}, code
        for text in (r["zh"], r["en"]):
            assert isinstance(text, str) and text.count("(") == text.count(")"), (code, text)
            assert not text.rstrip().endswith((",", "(", "e.g.", "，")), (code, text)
    assert {c: (r.zh, r.en) for c, r in ingest_reasons().items()} == {
        c: (r["zh"], r["en"]) for c, r in raw["ingest"].items()}
    # every rule id and reason code written at the start of a line (read from the text, not the
    # YAML) is a rule or an ingest reason code
    ids = re.findall(r"^  ([A-Z][A-Z0-9_]+):", CATALOGUE.read_text(encoding="utf-8"), flags=re.M)
    assert n == len(load_rules()) == 37 and len(ingest_reasons()) == 7
    assert len(ids) == len(set(ids)) == 37 + 7 and set(ids) == set(load_rules()) | set(ingest_reasons())


def test_every_tag_has_whole_descriptions_and_integer_thresholds():
    """The theme tables' tags (``tags``): descriptions not cut at a comma, thresholds integers, and
    the loader reads the same tags as the plain YAML."""
    raw = _raw()["tags"]
    assert set(raw) == {"person", "house", "event", "organisation"}
    for theme, tags in raw.items():
        for name, tag in tags.items():
            assert isinstance(tag["zh"], str) and isinstance(tag["en"], str), (theme, name)
            assert not tag["en"].rstrip().endswith((",", "(", "e.g.")), (theme, name, tag["en"])
            params = {k: v for k, v in tag.items() if k not in ("zh", "en")}
            assert all(isinstance(v, int) and not isinstance(v, bool) for v in params.values()), (theme, name)
            assert load_tags()[theme][name].params == tuple(sorted(params.items())), (theme, name)
    assert {t: set(v) for t, v in load_tags().items()} == {t: set(v) for t, v in raw.items()}
    alone = load_tags()["person"]["elderly_alone"]
    assert (alone.param("min_age"), alone.param("registered_residents")) == (60, 1)
    assert alone.en == "aged min_age or more, an active resident, alone at a registered house"


def test_descriptions_with_commas_are_whole():
    rules = load_rules()
    assert rules["ID_SEPARATOR"].en == "identity number has spaces, hyphens or dots; removed"
    assert rules["ID_CHECK"].en == "wrong check character (GB 11643, ISO 7064 MOD 11-2)"
    assert rules["ID_CHECK"].zh == "身份号码校验位错误（GB 11643，ISO 7064 MOD 11-2）"
    assert rules["CODE_LABEL"].en == ("a label (e.g. 男, M) where a code is expected (or the reverse); "
                                      "mapped by the code list")
    assert rules["PHONE_FORMAT"].en == "phone has +86, spaces or dashes; removed"
    assert rules["X_DECEASED_PAID"].en == (
        "deceased (police status, civil-affairs death registration or health death certificate) while a pension "
        "or benefit is still paid after the death date, or an assistance case is still active")
    assert rules["NAME_DOT"].en == "minority-name middle dot written as '.' or '•'; unified to '·'"
    assert rules["X_DUP_PERSON"].entities == ("police/population", "health/residents")
    assert rules["ID_EMPTY"].required_only is True and rules["ID_CHECK"].required_only is False


def test_loader_matches_the_file_text_for_every_rule():
    raw = _raw()
    rules = load_rules()
    for stage in ("clean", "verify"):
        for rid, r in raw[stage].items():
            rule = rules[rid]
            assert (rule.stage, rule.action, rule.severity, rule.zh, rule.en) == (
                stage, r["action"], r["severity"], r["zh"], r["en"]), rid
            assert rule.elements == tuple(r.get("elements") or ()), rid


def _one(**kw) -> dict:
    return {"clean": {"R": {"action": "flag", "severity": "low", "zh": "甲", "en": "a", **kw}}}


def test_loader_rejects_stray_keys_and_cut_descriptions():
    cut = yaml.safe_load("clean:\n  R: {action: flag, severity: low, zh: 甲, en: has spaces, hyphens or dots}\n")
    assert set(cut["clean"]["R"]) == {"action", "severity", "zh", "en", "hyphens or dots"}     # what YAML does
    with pytest.raises(ValueError, match=r"R: unknown key\(s\) \['hyphens or dots'\]"):
        parse_rules(cut)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['severty'\]"):
        parse_rules(_one(severty="high"))
    with pytest.raises(ValueError, match=r"missing key\(s\) \['en'\]"):
        parse_rules({"clean": {"R": {"action": "flag", "severity": "low", "zh": "甲"}}})
    with pytest.raises(ValueError, match="en must be a non-empty string"):
        parse_rules(_one(en=None))
    with pytest.raises(ValueError, match=r"unknown section\(s\) \['cleen'\]"):
        parse_rules({"cleen": {}})
    ok = parse_rules(_one(elements=["citizen_id"], required_only=True, enabled=False, entities=["police/population"]))
    assert ok["R"].elements == ("citizen_id",) and ok["R"].required_only and not ok["R"].enabled
