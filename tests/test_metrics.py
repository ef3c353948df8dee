"""Scorecards on a small archive whose figures are worked out by hand below.

Shipped rules (宿迁): accept 3 hours from assignment; resolve 5 working days.
October 2025 after National Day: Sat 10-11 worked; Oct 9 onwards ordinary weeks.
now = 2025-11-01 00:00. Every case received in October 2025.

A housing: assigned 10-09 09:00, accepted 10:00 (due 12:00: on time), final reply
  10-13 10:00 resolved (due end of 10-15: 1 10-10, 2 10-11, 3 10-13, 4 10-14,
  5 10-15; on time), closed 10-14 09:00, rated satisfied.
B housing: same start, accepted 13:00 (late), final reply 10-17 10:00 explained
  (late), closed 10-17 12:00 (after the due time), rated dissatisfied.
C housing -> transport: housing accepted 09:30 (on time), transferred 10-10 10:00
  (housing's resolve is void: ended before its due time); transport accepted
  10-10 11:00 (due 13:00: on time), final reply 10-16 15:00 (due end of 10-16:
  on time), resolved, never closed (a reply is not a closure).
D transport: assigned Mon 10-20 09:00, accepted 09:30, no reply: due end of
  10-27 (10-21, 22, 23, 24, 27): overdue now.
E housing: assigned 10-20 09:00, accepted 10:00, final reply 10-21 10:00
  resolved, closed 10-22, reopened Thu 10-23 09:00: round 1 due end of 10-30
  (10-24, 27, 28, 29, 30): overdue now.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest

from generator.evaluate import evaluate_case
from generator.metrics import LABELS_ZH, period_keys, rate, scorecards, times
from tests.clock_util import make_case, shipped_rules, t

R = shipped_rules()
NOW = t("2025-11-01 00:00")


def archive():
    a = make_case("2025-10-09 09:00", [
        ("assigned", "2025-10-09 09:00", "centre", {"to": "housing"}),
        ("accepted", "2025-10-09 10:00", "housing", {}),
        ("reply", "2025-10-13 10:00", "housing", {"final": True, "resolution": "resolved", "body": "x"}),
        ("closed", "2025-10-14 09:00", "centre", {}),
        ("feedback", "2025-10-14 20:00", "petitioner", {"rating": "satisfied"}),
    ], pid="2025-000001")
    b = make_case("2025-10-09 09:00", [
        ("assigned", "2025-10-09 09:00", "centre", {"to": "housing"}),
        ("accepted", "2025-10-09 13:00", "housing", {}),
        ("reply", "2025-10-17 10:00", "housing", {"final": True, "resolution": "explained", "body": "x"}),
        ("closed", "2025-10-17 12:00", "centre", {}),
        ("feedback", "2025-10-17 20:00", "petitioner", {"rating": "dissatisfied"}),
    ], pid="2025-000002")
    c = make_case("2025-10-09 09:00", [
        ("assigned", "2025-10-09 09:00", "centre", {"to": "housing"}),
        ("accepted", "2025-10-09 09:30", "housing", {}),
        ("transferred", "2025-10-10 10:00", "centre", {"from": "housing", "to": "transport", "reason": "r"}),
        ("accepted", "2025-10-10 11:00", "transport", {}),
        ("reply", "2025-10-16 15:00", "transport", {"final": True, "resolution": "resolved", "body": "x"}),
    ], pid="2025-000003")
    d = make_case("2025-10-20 09:00", [
        ("assigned", "2025-10-20 09:00", "centre", {"to": "transport"}),
        ("accepted", "2025-10-20 09:30", "transport", {}),
    ], pid="2025-000004")
    e = make_case("2025-10-20 09:00", [
        ("assigned", "2025-10-20 09:00", "centre", {"to": "housing"}),
        ("accepted", "2025-10-20 10:00", "housing", {}),
        ("reply", "2025-10-21 10:00", "housing", {"final": True, "resolution": "resolved", "body": "x"}),
        ("closed", "2025-10-22 09:00", "centre", {}),
        ("reopened", "2025-10-23 09:00", "centre", {"reason": "r"}),
    ], pid="2025-000005")
    return [evaluate_case(x, R, NOW) for x in (a, b, c, d, e)]


@pytest.fixture(scope="module")
def cards():
    return scorecards(archive(), R, NOW)


def card(cards, dept, period="2025-10"):
    [c] = [c for c in cards.departments if c.department == dept and c.period == period]
    return c


def nd(r):
    return (r.numerator, r.denominator)


def test_housing_by_hand(cards):
    h = card(cards, "housing")
    assert h.received == 4                                  # A B C E
    assert nd(h.accepted_on_time) == (3, 4)                 # A C E on time, B late
    assert nd(h.replied) == (3, 4)                          # A B E replied; C transferred
    assert nd(h.replied_on_time) == (2, 3)                  # A E on time, B late, C void
    assert h.resolved == 2                                  # A, E; B explained; closed != resolved
    assert nd(h.closed) == (2, 4)                           # A B; E reopened; C not held at end
    assert nd(h.closed_on_time) == (1, 2)                   # A by end of 10-15, B not
    assert h.overdue_now == 1                               # E round 1
    assert (h.transfers_out, h.reopened) == (1, 1)
    assert h.ratings == {"satisfied": 1, "basically_satisfied": 0, "dissatisfied": 1}
    assert nd(h.satisfaction) == (1, 2)
    # acceptance hours A 1, B 4, C 0.5, E 1 -> [0.5, 1, 1, 4]: median 1, p90 rank ceil(3.6)=4 -> 4
    assert (h.acceptance_time.count, h.acceptance_time.median_hours, h.acceptance_time.p90_hours) == (4, 1.0, 4.0)
    # reply hours from the holding start: A 97, B 193, E 25 -> median 97, p90 rank 3 -> 193
    assert (h.reply_time.median_hours, h.reply_time.p90_hours) == (97.0, 193.0)
    # closure hours from receipt: A 120, B 195 -> median 157.5, p90 rank ceil(1.8)=2 -> 195
    assert (h.closure_time.median_hours, h.closure_time.p90_hours) == (157.5, 195.0)


def test_transport_by_hand(cards):
    tr = card(cards, "transport")
    assert tr.received == 2                                 # C D
    assert nd(tr.accepted_on_time) == (2, 2)
    assert nd(tr.replied) == (1, 2)                         # C
    assert nd(tr.replied_on_time) == (1, 2)                 # C on time, D overdue
    assert nd(tr.closed) == (0, 2)                          # a reply is never a closure
    assert tr.resolved == 1 and tr.overdue_now == 1
    assert (tr.transfers_out, tr.reopened) == (0, 0)


def test_city_headline_by_hand(cards):
    h = cards.headline("2025-10")
    assert h.received == 5
    assert nd(h.reply_rate) == (4, 5)                       # A B C E have a final reply
    assert nd(h.on_time_rate) == (3, 5)                     # A E C on time; B late, D overdue
    assert nd(h.completion_rate) == (2, 5)                  # A B closed
    assert nd(h.satisfaction_rate) == (1, 2)
    assert h.overdue_now == 2                               # D E
    assert cards.headline("all") == replace(h, period="all")


def test_periods_and_minimum_for_ranking(cards):
    assert cards.periods[0] == "all" and {"2025", "2025-10", "2025-W41", "2025-W43"} <= set(cards.periods)
    # A B C received Thu 10-09 (ISO week 41), D E Mon 10-20 (week 43).
    assert card(cards, "housing", "2025-W41").received == 3
    assert card(cards, "housing", "2025-W43").received == 1
    # Shipped minimum is 10: nobody is ranked, everyone is shown.
    assert all(not c.ranked and c.rank is None for c in cards.departments)
    # Minimum 3: housing (4) ranked, transport (2) shown but not ranked.
    ranked = scorecards(archive(), replace(R, minimum_cases_for_ranking=3), NOW)
    assert (card(ranked, "housing").rank, card(ranked, "transport").ranked) == (1, False)
    # Minimum 2: both ranked by the Wilson lower bound of the on-time reply rate:
    # housing 2/3 -> 0.2077, transport 1/2 -> 0.0945 (worked below): housing first.
    both = scorecards(archive(), replace(R, minimum_cases_for_ranking=2), NOW)
    assert [c.department for c in both.for_period("2025-10")] == ["housing", "transport"]
    assert [c.rank for c in both.for_period("2025-10")] == [1, 2]


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.96: z²/n = 0.38415; centre = (0.8 + 0.192074) / 1.38415 = 0.71674;
    # half = (1.96 / 1.38415) * sqrt(0.016 + 0.0096037) = 1.41600 * 0.160012 = 0.226577;
    # interval = (0.49016, 0.94332).
    r = rate(8, 10)
    assert r.value == 0.8
    assert math.isclose(r.wilson_low, 0.49016, abs_tol=5e-5)
    assert math.isclose(r.wilson_high, 0.94332, abs_tol=5e-5)
    # 2 of 3: centre 0.57309, half 0.365426 -> low 0.20766; 1 of 2: low 0.09455.
    assert math.isclose(rate(2, 3).wilson_low, 0.20766, abs_tol=5e-5)
    assert math.isclose(rate(1, 2).wilson_low, 0.09455, abs_tol=5e-5)
    # 0 of 0: no value and no interval.
    assert rate(0, 0).value is None and rate(0, 0).wilson_low is None
    # 10 of 10: the upper bound is 1 and the lower bound n/(n+z²) = 10/13.8415 = 0.72246.
    assert math.isclose(rate(10, 10).wilson_low, 0.72246, abs_tol=5e-5) and rate(10, 10).wilson_high == 1.0


def test_times_nearest_rank():
    assert times([5.0]) == times([5.0])
    assert (times([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).median_hours, times(list(range(1, 11))).p90_hours) == (5.5, 9)
    assert times([]).count == 0 and times([]).median_hours is None


def test_period_keys_use_the_city_time_zone():
    # 2025-12-31 20:00 UTC is 2026-01-01 04:00 in Shanghai: year 2026, ISO week 2026-W01.
    from datetime import datetime, timezone
    keys = period_keys(datetime(2025, 12, 31, 20, tzinfo=timezone.utc), R.tz)
    assert keys == ["all", "2026", "2026-01", "2026-W01"]


def test_to_dict_and_labels(cards):
    d = cards.to_dict()
    row = next(r for r in d["departments"] if r["department"] == "housing" and r["period"] == "2025-10")
    assert row["replied_on_time"]["numerator"] == 2 and row["ranked"] is False
    import json
    json.dumps(d, ensure_ascii=False)
    for key in ("received", "replied_on_time", "closed", "satisfaction_rate", "overdue_now"):
        assert LABELS_ZH[key]


def test_sums_of_parts_merge_to_the_sums_of_the_whole():
    """A build keeps the sums of settled cases a month at a time and adds the
    others' (generator.build._scorecard_sums): any split gives the same cards."""
    from generator.metrics import accumulate, aggregate, case_facts, merged, scorecards_of

    facts = [case_facts(st, R.tz) for st in archive()]
    whole = aggregate(facts, R, NOW, departments=("housing", "transport", "water"))
    for split in ([facts[:2], facts[2:]], [facts[4:], [], facts[1:4], facts[:1]]):
        parts = [accumulate(part) for part in split]
        before = copy.deepcopy(parts)
        assert scorecards_of(merged(parts), R, NOW, departments=("housing", "transport", "water")) == whole
        assert parts == before  # the parts are left as they were
    water = [c for c in whole.departments if c.department == "water"]
    assert [(c.period, c.received) for c in water] == [("all", 0)]
