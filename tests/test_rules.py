"""rules.yaml: the shipped regime, the examples, and a self-contradicting file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from generator.rules import RulesError, load_rules, parse_duration, read_rules, Duration
from tests.clock_util import ROOT, example_rules, shipped_rules, t

BAD = """\
timezone: Asia/Shanghai
calendar:
  extra_rest_days:
    - {date: 2025-10-09}
colour: blue
rule_sets:
  - effective_from: 2024-01-01
    office_hours:
      - {from: "08:30", to: "12:00"}
      - {from: "11:00", to: "13:00"}
      - {from: "17:30", to: "14:00"}
    stages:
      resolve:
        limit: 5 working days
        limit: 7 working days
        done_by: [{kind: reply, final: true}]
        extension: {max_total: 3 working days}
      accept:
        limit: 3 parsecs
        done_by: [{kind: assigned}]
    escalation:
      applies_to: [resolve, answer]
      ladder:
        - {level: supervision, offset: 2 working days}
        - {level: notice, offset: 0 hours}
  - effective_from: 2024-01-01
    office_hours: [{from: "09:00", to: "17:00"}]
    stages:
      resolve: {limit: 5 working days, done_by: [reply]}
"""


def test_a_self_contradicting_file_gives_every_error_at_once_with_lines():
    rules, problems = load_rules(BAD, "rules.yaml", cross_check=False)
    assert rules is None
    found = {(p.code, p.line, p.severity) for p in problems}
    # Each expected line was counted by hand in BAD above.
    expected = {
        ("missing-reason", 4, "error"),            # the extra rest day has no reason
        ("unknown-key", 5, "warning"),             # colour
        ("overlapping-office-hours", 10, "error"), # 11:00-13:00 overlaps 08:30-12:00
        ("reversed-office-hours", 11, "error"),    # 17:30 to 14:00
        ("duplicate-key", 15, "error"),            # a stage with two limits
        ("cap-below-limit", 17, "error"),          # cap 3 below limit (7, the last one YAML kept)
        ("bad-duration", 19, "error"),             # 3 parsecs
        ("bad-done-by", 20, "error"),              # assigned cannot complete a stage
        ("unknown-stage", 22, "error"),            # applies_to names 'answer'
        ("escalation-order", 25, "error"),         # notice after supervision
        ("overlapping-rule-sets", 26, "error"),    # the same effective_from twice
    }
    assert expected <= found, sorted(found)
    assert all(p.path == "rules.yaml" and p.hint for p in problems)
    with pytest.raises(RulesError) as info:
        read_rules(BAD, "rules.yaml", cross_check=False)
    assert "overlapping-rule-sets" in str(info.value)


def test_offsets_out_of_order_with_the_same_level_order():
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8").replace(
        "offset: 5 working days", "offset: 1 working day")
    rules, problems = load_rules(text, "rules.yaml", cross_check=False)
    assert rules is None
    [p] = [p for p in problems if p.severity == "error"]
    assert p.code == "escalation-order" and "accountability" in p.message


def test_two_extension_stages_and_missing_keys():
    text = """\
timezone: Mars/Olympus
rule_sets:
  - effective_from: someday
    office_hours: [{from: "08:30", to: "12:00"}]
    stages:
      a: {limit: 1 working day, done_by: [reply], extension: {max_total: 2 working days}}
      b: {limit: 1 working day, done_by: [reply], extension: {max_total: 2 working days}}
      c: {done_by: [reply]}
"""
    rules, problems = load_rules(text, "x.yaml", cross_check=False)
    codes = {p.code for p in problems}
    assert rules is None
    assert {"bad-timezone", "bad-date", "two-extension-stages", "missing-limit"} <= codes


def test_cross_check_warns_where_the_libraries_disagree():
    # chinese_calendar and holidays.China disagree on 2005-12-31 (a Saturday worked
    # under the 2006 notice); a rule set from 2005 brings that year into the check.
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8").replace("effective_from: 2024-01-01", "effective_from: 2005-01-01")
    rules, problems = load_rules(text, "rules.yaml", cross_check=True)
    assert rules is not None
    warnings = [p for p in problems if p.code == "calendar-disagreement"]
    assert [w.severity for w in warnings] == ["warning"]
    assert "2005-12-31" in warnings[0].message


def test_the_cross_check_answer_is_kept_and_read_back(tmp_path):
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8").replace("effective_from: 2024-01-01", "effective_from: 2005-01-01")
    _, fresh = load_rules(text, "rules.yaml", cross_check=True)
    _, first = load_rules(text, "rules.yaml", cross_check=True, cache=tmp_path)
    kept = list(tmp_path.glob("calendar-cross-check-*.json"))
    assert len(kept) == 1 and "2005-12-31" in kept[0].read_text(encoding="utf-8")
    # Read back: a kept answer that names another day is what comes out.
    kept[0].write_text('[["2006-01-02", true]]', encoding="utf-8")
    _, second = load_rules(text, "rules.yaml", cross_check=True, cache=tmp_path)
    assert [p.message for p in first] == [p.message for p in fresh]
    assert [p.message for p in second] == [("2006-01-02: chinese_calendar says a working day, "
                                            "holidays.China says a rest day")]
    # A damaged file is found again, and an override of the day settles it.
    kept[0].write_text("{not json", encoding="utf-8")
    _, again = load_rules(text, "rules.yaml", cross_check=True, cache=tmp_path)
    assert [p.message for p in again] == [p.message for p in fresh]
    overridden = text.replace("extra_working_days: []",
                              "extra_working_days:\n    - {date: 2005-12-31, reason: 国办发明电〔2005〕33号}", 1)
    assert overridden != text
    _, settled = load_rules(overridden, "rules.yaml", cross_check=True, cache=tmp_path)
    assert not [p for p in settled if p.code == "calendar-disagreement"]
    assert len(list(tmp_path.glob("calendar-cross-check-*.json"))) == 1  # the older answer replaced


def test_shipped_rules_express_suqian():
    rules = shipped_rules()
    assert rules.minimum_cases_for_ranking == 10
    assert rules.due_soon == Duration(1, "working_days")
    assert rules.notarised_tolerance == timedelta(hours=2)
    rs = rules.rule_set_for(t("2026-11-22 10:15"))
    accept, resolve = rs.stage("accept"), rs.stage("resolve")
    assert accept.limit.office_time == Duration(3, "hours")
    assert resolve.limit.office_time == Duration(5, "working_days")
    assert resolve.extension.max_total == Duration(15, "working_days")
    assert resolve.extension.reason_required and resolve.extension.new_due_required
    assert rs.extension_stage is resolve
    assert [s.level for s in rs.escalation] == ["reminder", "notice", "supervision", "accountability"]
    assert resolve.is_done_by("reply", {"final": True}) and not resolve.is_done_by("reply", {"final": False})
    assert not resolve.is_done_by("closed", {})


def test_examples_load_and_say_what_they_claim():
    ruian = example_rules("ruian.yaml").rule_sets[0]
    assert ruian.stage("reply").limit.office_time == Duration(1, "working_days")
    assert ruian.stage("feedback").is_done_by("closed", {})
    assert [s.level for s in ruian.escalation] == ["notice", "supervision"]
    yinchuan = example_rules("yinchuan.yaml").rule_sets[0].stage("first_response")
    assert yinchuan.limit.by_arrival and yinchuan.limit.rest_time == Duration(8, "hours")
    cat = example_rules("by-category.yaml").rule_sets[0].stage("resolve")
    assert {k: v.office_time.amount for k, v in cat.by_category.items()} == {
        "consultation": 3, "help": 7, "complaint": 15}


def test_every_example_file_is_clean():
    for path in sorted((ROOT / "docs" / "rules-examples").glob("*.yaml")) + [ROOT / "rules.yaml"]:
        rules, problems = load_rules(path.read_text(encoding="utf-8"), path.name, cross_check=False)
        assert rules is not None and problems == [], (path, problems)


def test_rule_set_in_force_when_received():
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8") + """\
  - name: 2026 revision
    effective_from: 2026-01-01
    office_hours: [{from: "09:00", to: "17:00"}]
    stages:
      resolve: {limit: 3 working days, done_by: [{kind: reply, final: true}]}
"""
    rules = read_rules(text, cross_check=False)
    assert rules.rule_set_for(t("2025-12-31 23:59")).stage("resolve").limit.office_time.amount == 5
    assert rules.rule_set_for(t("2026-01-01 00:00")).stage("resolve").limit.office_time.amount == 3
    # Received before any rule set: judged by the earliest.
    assert rules.rule_set_for(t("2020-05-05 10:00")).name.startswith("明湖市")


@pytest.mark.parametrize("text,expected", [
    ("3 hours", Duration(3, "hours")), ("1 hour", Duration(1, "hours")),
    ("-1 working day", Duration(-1, "working_days")), ("2 office hours", Duration(2, "office_hours")),
    ("10 days", Duration(10, "days")), ("1.5 hours", Duration(1.5, "hours")),
    ("1.5 working days", None), ("soon", None), (3, None),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


def test_every_rules_key_is_documented():
    from generator import rules as m

    doc = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    keys = m._TOP_KEYS | m._CAL_KEYS | m._SET_KEYS | m._STAGE_KEYS | m._EXT_KEYS | {"applies_to", "ladder"}
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == []
