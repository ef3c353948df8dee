"""Golden deadlines worked out by hand from the State Council holiday notices.

Sources (facts, not code): 国务院办公厅关于2024年部分节假日安排的通知
(国办发明电〔2023〕7号), ...2025年... (国办发明电〔2024〕12号), ...2026年...
(国办发明电〔2025〕7号). Weekdays were read off a printed calendar. Every
expected value below is reasoned in the comment beside it; none is computed by
the code under test.

Conventions (Civil Code art. 201, 203): the day of receipt is day 0 and does not
count; day 1 is the next working day; the deadline is the end of day N (24:00
unless the rule set says otherwise).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from generator.rules import compute_deadline

from tests.clock_util import end_of, example_rules, minimal_rules, shipped_rules, t

WD = "working_days"

# (case id, start, working days, expected due, reasoning)
WORKING_DAY_CASES = [
    # -- 2025 National Day + Mid-Autumn: Oct 1 (Wed) to Oct 8 (Wed) off;
    #    Sun Sep 28 and Sat Oct 11 worked.
    ("2025-national-day-fact-1", "2025-09-30 15:00", 5, end_of("2025-10-14"),
     # day 0 Tue 9-30; Oct 1-8 off; 1 Thu 10-09, 2 Fri 10-10, 3 Sat 10-11 (make-up),
     # Sun 10-12 off, 4 Mon 10-13, 5 Tue 10-14 -> end of 2025-10-14 (the fact).
     ),
    ("2025-national-day-fact-2", "2025-10-07 23:00", 1, end_of("2025-10-09"),
     # day 0 Tue 10-07 (a holiday, still day 0); Wed 10-08 off; 1 Thu 10-09 (the fact).
     ),
    ("2025-makeup-sunday-before", "2025-09-26 10:00", 5, end_of("2025-10-10"),
     # day 0 Fri 9-26; Sat 9-27 off; 1 Sun 9-28 (make-up); 2 Mon 9-29; 3 Tue 9-30;
     # Oct 1-8 off; 4 Thu 10-09; 5 Fri 10-10.
     ),
    ("2025-makeup-saturday-after", "2025-10-10 09:00", 3, end_of("2025-10-14"),
     # day 0 Fri 10-10; 1 Sat 10-11 (make-up); Sun 10-12 off; 2 Mon 10-13; 3 Tue 10-14.
     ),
    # -- 2025 Spring Festival: Jan 28 (Tue) to Feb 4 (Tue) off; Sun Jan 26 and Sat Feb 8 worked.
    ("2025-spring-festival", "2025-01-24 11:00", 5, end_of("2025-02-07"),
     # day 0 Fri 1-24; Sat 1-25 off; 1 Sun 1-26 (make-up); 2 Mon 1-27; Jan 28-Feb 4 off;
     # 3 Wed 2-05; 4 Thu 2-06; 5 Fri 2-07.
     ),
    ("2025-spring-festival-saturday-worked", "2025-02-07 20:00", 1, end_of("2025-02-08"),
     # day 0 Fri 2-07; 1 Sat 2-08 (make-up).
     ),
    # -- 2025 New Year: Jan 1 (Wed) off, no make-up day.
    ("2025-new-year", "2024-12-31 16:00", 1, end_of("2025-01-02"),
     # day 0 Tue 12-31; Wed 1-01 off; 1 Thu 1-02.
     ),
    # -- 2025 Qingming: Apr 4 (Fri) to Apr 6 (Sun) off.
    ("2025-qingming", "2025-04-03 09:00", 1, end_of("2025-04-07"),
     # day 0 Thu 4-03; Apr 4-6 off; 1 Mon 4-07.
     ),
    # -- 2025 Labour Day: May 1 (Thu) to May 5 (Mon) off; Sun Apr 27 worked.
    ("2025-labour-makeup", "2025-04-25 09:00", 3, end_of("2025-04-29"),
     # day 0 Fri 4-25; Sat 4-26 off; 1 Sun 4-27 (make-up); 2 Mon 4-28; 3 Tue 4-29.
     ),
    ("2025-labour-holiday", "2025-04-30 09:00", 2, end_of("2025-05-07"),
     # day 0 Wed 4-30; May 1-5 off; 1 Tue 5-06; 2 Wed 5-07.
     ),
    # -- 2025 Dragon Boat: May 31 (Sat) to Jun 2 (Mon) off.
    ("2025-dragon-boat", "2025-05-30 17:00", 1, end_of("2025-06-03"),
     # day 0 Fri 5-30; May 31-Jun 2 off; 1 Tue 6-03.
     ),
    # -- 2024 Spring Festival: Feb 10 (Sat) to Feb 17 (Sat) off; Sun Feb 4 and Sun Feb 18
    #    worked; New Year's Eve Fri Feb 9 is officially a working day.
    ("2024-spring-festival-before", "2024-02-02 10:00", 5, end_of("2024-02-08"),
     # day 0 Fri 2-02; Sat 2-03 off; 1 Sun 2-04 (make-up); 2 Mon 2-05; 3 Tue 2-06;
     # 4 Wed 2-07; 5 Thu 2-08.
     ),
    ("2024-spring-festival-eve-and-after", "2024-02-08 10:00", 2, end_of("2024-02-18"),
     # day 0 Thu 2-08; 1 Fri 2-09 (New Year's Eve, a working day); Feb 10-17 off;
     # 2 Sun 2-18 (make-up).
     ),
    # -- 2024 Qingming: Apr 4 (Thu) to Apr 6 (Sat) off; Sun Apr 7 worked.
    ("2024-qingming", "2024-04-03 15:00", 2, end_of("2024-04-08"),
     # day 0 Wed 4-03; Apr 4-6 off; 1 Sun 4-07 (make-up); 2 Mon 4-08.
     ),
    # -- 2024 Labour Day: May 1 (Wed) to May 5 (Sun) off; Sun Apr 28 and Sat May 11 worked.
    ("2024-labour-received-saturday", "2024-04-27 10:00", 1, end_of("2024-04-28"),
     # day 0 Sat 4-27 (a rest day, still day 0); 1 Sun 4-28 (make-up).
     ),
    ("2024-labour-saturday-worked", "2024-05-08 10:00", 3, end_of("2024-05-11"),
     # day 0 Wed 5-08; 1 Thu 5-09; 2 Fri 5-10; 3 Sat 5-11 (make-up).
     ),
    # -- 2024 Mid-Autumn: Sep 15 (Sun) to Sep 17 (Tue) off; Sat Sep 14 worked.
    ("2024-mid-autumn", "2024-09-13 10:00", 2, end_of("2024-09-18"),
     # day 0 Fri 9-13; 1 Sat 9-14 (make-up); Sep 15-17 off; 2 Wed 9-18.
     ),
    # -- 2024 National Day: Oct 1 (Tue) to Oct 7 (Mon) off; Sun Sep 29 and Sat Oct 12 worked.
    ("2024-national-day-before", "2024-09-27 10:00", 3, end_of("2024-10-08"),
     # day 0 Fri 9-27; Sat 9-28 off; 1 Sun 9-29 (make-up); 2 Mon 9-30; Oct 1-7 off; 3 Tue 10-08.
     ),
    ("2024-national-day-after", "2024-10-08 10:00", 4, end_of("2024-10-12"),
     # day 0 Tue 10-08; 1 Wed 10-09; 2 Thu 10-10; 3 Fri 10-11; 4 Sat 10-12 (make-up).
     ),
    # -- 2026 New Year: Jan 1 (Thu) to Jan 3 (Sat) off; Sun Jan 4 worked.
    ("2026-new-year", "2025-12-31 18:00", 1, end_of("2026-01-04"),
     # day 0 Wed 12-31; Jan 1-3 off; 1 Sun 1-04 (make-up).
     ),
    # -- 2026 Spring Festival: Feb 15 (Sun) to Feb 23 (Mon) off; Sat Feb 14 and Sat Feb 28 worked.
    ("2026-spring-festival", "2026-02-12 10:00", 5, end_of("2026-02-26"),
     # day 0 Thu 2-12; 1 Fri 2-13; 2 Sat 2-14 (make-up); Feb 15-23 off; 3 Tue 2-24;
     # 4 Wed 2-25; 5 Thu 2-26.
     ),
    ("2026-spring-festival-saturday-worked", "2026-02-26 10:00", 2, end_of("2026-02-28"),
     # day 0 Thu 2-26; 1 Fri 2-27; 2 Sat 2-28 (make-up).
     ),
    # -- 2026 Labour Day: May 1 (Fri) to May 5 (Tue) off; Sat May 9 worked.
    ("2026-labour", "2026-04-30 10:00", 4, end_of("2026-05-09"),
     # day 0 Thu 4-30; May 1-5 off; 1 Wed 5-06; 2 Thu 5-07; 3 Fri 5-08; 4 Sat 5-09 (make-up).
     ),
    # -- 2026 Mid-Autumn: Sep 25 (Fri) to Sep 27 (Sun) off. National Day: Oct 1 (Thu) to
    #    Oct 7 (Wed) off; Sun Sep 20 and Sat Oct 10 worked.
    ("2026-makeup-sunday", "2026-09-18 10:00", 5, end_of("2026-09-24"),
     # day 0 Fri 9-18; Sat 9-19 off; 1 Sun 9-20 (make-up); 2 Mon 9-21; 3 Tue 9-22;
     # 4 Wed 9-23; 5 Thu 9-24.
     ),
    ("2026-mid-autumn", "2026-09-24 10:00", 3, end_of("2026-09-30"),
     # day 0 Thu 9-24; Sep 25-27 off; 1 Mon 9-28; 2 Tue 9-29; 3 Wed 9-30.
     ),
    ("2026-national-day", "2026-09-30 10:00", 3, end_of("2026-10-10"),
     # day 0 Wed 9-30; Oct 1-7 off; 1 Thu 10-08; 2 Fri 10-09; 3 Sat 10-10 (make-up).
     ),
    # -- Before 2004-2026 data ends: no provisional year touched.
    ("2026-year-end", "2026-12-28 10:00", 2, end_of("2026-12-30"),
     # day 0 Mon 12-28; 1 Tue 12-29; 2 Wed 12-30.
     ),
]


@pytest.mark.parametrize("case_id,start,n,expected", [c[:4] for c in WORKING_DAY_CASES],
                         ids=[c[0] for c in WORKING_DAY_CASES])
def test_working_day_deadline(case_id, start, n, expected):
    rules = shipped_rules()
    clock = rules.rule_set_for(t(start)).clock
    deadline = clock.deadline("resolve", t(start), n, WD)
    assert deadline.due_at == expected
    assert deadline.provisional is False


def test_the_two_facts_through_the_calculator():
    # compute_deadline on the shipped 宿迁 rules: resolve is 5 working days;
    # the first fact above gives end of 2025-10-14; accept is 3 calendar hours.
    deadlines = {d.stage + ("/cap" if d.basis == "extension_cap" else ""): d
                 for d in compute_deadline(shipped_rules(), t("2025-09-30 15:00"), "complaint", "web")}
    assert deadlines["resolve"].due_at == end_of("2025-10-14")
    assert deadlines["accept"].due_at == t("2025-09-30 18:00")
    # Extension cap 15 working days from day 0 Tue 9-30: 1 10-09, 2 10-10, 3 10-11 (make-up),
    # 4 10-13, 5 10-14, 6 10-15, 7 10-16, 8 10-17, 9 10-20, 10 10-21, 11 10-22, 12 10-23,
    # 13 10-24, 14 10-27, 15 10-28.
    assert deadlines["resolve/cap"].due_at == end_of("2025-10-28")


def test_2027_has_no_data_and_is_provisional():
    # chinese_calendar's data ends with 2026. 3 working days after Wed 2026-12-30:
    # 1 Thu 12-31; 2 Fri 2027-01-01 (New Year's Day in every year so far, but 2027's
    # notice is unknown, so Monday to Friday is assumed); Sat/Sun off; 3 Mon 2027-01-04.
    clock = shipped_rules().rule_set_for(t("2026-12-30 10:00")).clock
    d = clock.deadline("resolve", t("2026-12-30 10:00"), 3, WD)
    assert d.due_at == end_of("2027-01-04")
    assert d.provisional is True
    assert any(s.kind == "provisional" and "2027" in s.note_en for s in d.steps)
    assert any("暂定" in line for line in d.lines("zh"))


def test_owner_completes_2027_and_it_is_no_longer_provisional():
    # The owner lists Jan 1 2027 as a rest day and declares 2027 complete:
    # 3 working days after Wed 2026-12-30: 1 Thu 12-31; Fri 1-01 rest (owner);
    # Sat/Sun off; 2 Mon 1-04; 3 Tue 1-05.
    rules = minimal_rules(calendar="""\
  extra_rest_days:
    - {date: 2027-01-01, reason: 2027年元旦（假设的国务院通知）}
  complete_years: [2027]""")
    d = rules.rule_set_for(t("2026-12-30 10:00")).clock.deadline("resolve", t("2026-12-30 10:00"), 3, WD)
    assert d.due_at == end_of("2027-01-05")
    assert d.provisional is False
    assert any("2027年元旦" in s.note_zh for s in d.steps if s.kind == "skip")


def test_owner_extra_rest_day_moves_a_deadline():
    # A typhoon day declared as rest on Thu 2025-10-09: 1 working day after Tue 10-07:
    # Wed 10-08 holiday, Thu 10-09 rest (owner), 1 Fri 10-10.
    rules = minimal_rules(calendar="""\
  extra_rest_days:
    - {date: 2025-10-09, reason: 台风停工}""")
    d = rules.rule_set_for(t("2025-10-07 23:00")).clock.deadline("resolve", t("2025-10-07 23:00"), 1, WD)
    assert d.due_at == end_of("2025-10-10")


def test_end_of_day_1730():
    # end_of_day 17:30: 1 working day after Tue 2025-09-30 -> Thu 10-09 at 17:30.
    rules = minimal_rules(limit="1 working day", eod="17:30")
    d = rules.rule_set_for(t("2025-09-30 09:00")).clock.deadline("resolve", t("2025-09-30 09:00"), 1, WD)
    assert d.due_at == t("2025-10-09 17:30")


def test_calendar_days_ending_on_a_holiday_move_to_next_working_day():
    # 10 calendar days after Fri 2025-09-26: day 10 is Mon 10-06, a holiday; Civil Code
    # art. 203 moves the last day to the next working day, Thu 10-09.
    rules = minimal_rules(limit="10 days")
    d = rules.rule_set_for(t("2025-09-26 10:00")).clock.deadline("resolve", t("2025-09-26 10:00"), 10, "days")
    assert d.due_at == end_of("2025-10-09")


# -- office hours (宿迁 office time 08:30-12:00 and 14:00-17:30) ---------------------

OFFICE_CASES = [
    ("office-over-national-day", "2025-09-30 16:00", 3, t("2025-10-09 10:00")),
    # 16:00-17:30 on Tue 9-30 counts 1.5 h; Oct 1-8 off; Thu 10-09 08:30 + 1.5 h = 10:00.
    ("office-makeup-saturday-early", "2025-10-11 07:00", 2, t("2025-10-11 10:30")),
    # Sat 10-11 is a make-up working day; the clock starts at 08:30; + 2 h = 10:30.
    ("office-lunch-break", "2025-10-13 12:30", 2, t("2025-10-13 16:00")),
    # Mon 10-13 12:30 is lunch; counting starts at 14:00; + 2 h = 16:00.
    ("office-across-lunch", "2025-10-13 11:00", 2, t("2025-10-13 15:00")),
    # 11:00-12:00 is 1 h; the other 1 h runs 14:00-15:00.
    ("office-friday-evening-2026", "2026-02-13 17:00", 1, t("2026-02-14 09:00")),
    # Fri 2026-02-13 17:00-17:30 is 0.5 h; Sat 2-14 is a make-up day: 08:30 + 0.5 h = 09:00.
]


@pytest.mark.parametrize("case_id,start,hours,expected", OFFICE_CASES, ids=[c[0] for c in OFFICE_CASES])
def test_office_hours_deadline(case_id, start, hours, expected):
    clock = shipped_rules().rule_set_for(t(start)).clock
    assert clock.deadline("accept", t(start), hours, "office_hours").due_at == expected


# -- arrival in office time or rest time (银川: office 09:00-12:00, 13:30-17:30) -----

ARRIVAL_CASES = [
    ("yinchuan-office-time", "2025-10-09 10:00", t("2025-10-09 11:00"), "office_time"),
    # Thu 10-09 10:00 is office time on a working day: 1 hour -> 11:00.
    ("yinchuan-lunch-is-rest-time", "2025-10-09 12:30", t("2025-10-09 20:30"), "rest_time"),
    # 12:30 is outside office periods: 8 hours -> 20:30.
    ("yinchuan-holiday-is-rest-time", "2025-10-04 10:00", t("2025-10-04 18:00"), "rest_time"),
    # Sat 10-04 is a National Day holiday: rest time, 8 hours -> 18:00.
    ("yinchuan-makeup-day-is-office-time", "2025-10-11 10:00", t("2025-10-11 11:00"), "office_time"),
    # Sat 10-11 is a make-up working day: office time, 1 hour -> 11:00.
    ("yinchuan-evening", "2026-03-02 22:00", t("2026-03-03 06:00"), "rest_time"),
    # Mon 2026-03-02 22:00 is rest time: 8 hours -> Tue 06:00.
]


@pytest.mark.parametrize("case_id,start,expected,basis", ARRIVAL_CASES, ids=[c[0] for c in ARRIVAL_CASES])
def test_arrival_dependent_limit(case_id, start, expected, basis):
    deadlines = compute_deadline(example_rules("yinchuan.yaml"), t(start), "help", "web")
    first = next(d for d in deadlines if d.stage == "first_response")
    assert first.due_at == expected
    assert first.basis == basis


# -- late-receipt cut-off and category limits (by-category example: end of day 17:30,
#    received after 17:30 or on a rest day counts as received the next working day) ----

def _resolve(rules, start, category, channel="web"):
    return next(d for d in compute_deadline(rules, t(start), category, channel)
                if d.stage == "resolve" and d.basis != "extension_cap")


def test_late_receipt_on_a_friday_evening():
    # Fri 2025-10-10 18:00 is after 17:30: received Sat 10-11 (make-up working day) = day 0.
    # consultation 3: 1 Mon 10-13; 2 Tue 10-14; 3 Wed 10-15 -> 17:30.
    d = _resolve(example_rules("by-category.yaml"), "2025-10-10 18:00", "consultation")
    assert d.due_at == t("2025-10-15 17:30")
    assert d.steps[0].kind == "late_receipt"


def test_receipt_on_a_rest_day_with_cut_off():
    # Sun 2025-10-12: received Mon 10-13 = day 0. help 7: 1 10-14, 2 10-15, 3 10-16,
    # 4 10-17, (10-18/19 weekend), 5 10-20, 6 10-21, 7 10-22 -> 17:30.
    d = _resolve(example_rules("by-category.yaml"), "2025-10-12 09:00", "help")
    assert d.due_at == t("2025-10-22 17:30")


def test_complaint_15_and_letter_channel():
    # complaint 15 from Mon 2025-09-01 10:00 (before cut-off, day 0 9-01). September 2025
    # has no holiday; Sun 9-28 is a make-up day. 1 9-02, 2 9-03, 3 9-04, 4 9-05, 5 9-08,
    # 6 9-09, 7 9-10, 8 9-11, 9 9-12, 10 9-15, 11 9-16, 12 9-17, 13 9-18, 14 9-19, 15 9-22.
    rules = example_rules("by-category.yaml")
    assert _resolve(rules, "2025-09-01 10:00", "complaint").due_at == t("2025-09-22 17:30")
    # A consultation by letter takes the channel limit, 15 working days: same date.
    d = _resolve(rules, "2025-09-01 10:00", "consultation", "letter")
    assert d.due_at == t("2025-09-22 17:30") and d.basis == "channel:letter"
    # A suggestion takes the default 10: ... 10 9-15.
    assert _resolve(rules, "2025-09-01 10:00", "suggestion").due_at == t("2025-09-15 17:30")


# -- clock stops -------------------------------------------------------------------

def test_working_days_skip_days_with_the_clock_stopped():
    # 5 working days from Thu 2025-10-09 09:00; clarification asked Fri 10-10 11:00 and
    # answered Mon 10-13 16:00: Oct 10-13 are not counted (the clock stood on each).
    # 1 Tue 10-14, 2 Wed 10-15, 3 Thu 10-16, 4 Fri 10-17, Sat/Sun off, 5 Mon 10-20.
    clock = shipped_rules().rule_set_for(t("2025-10-09 09:00")).clock
    d = clock.deadline("resolve", t("2025-10-09 09:00"), 5, WD, [(t("2025-10-10 11:00"), t("2025-10-13 16:00"))])
    assert d.due_at == end_of("2025-10-20")
    assert [s.day.isoformat() for s in d.steps if s.kind == "stopped"] == [
        "2025-10-10", "2025-10-11", "2025-10-12", "2025-10-13"]


def test_hours_clock_stop():
    # 3 hours from 09:00 with the clock stopped 10:00-11:30: 1 h before, 2 h after -> 13:30.
    clock = shipped_rules().rule_set_for(t("2025-10-09 09:00")).clock
    d = clock.deadline("accept", t("2025-10-09 09:00"), 3, "hours", [(t("2025-10-09 10:00"), t("2025-10-09 11:30"))])
    assert d.due_at == t("2025-10-09 13:30")


def test_open_stop_has_no_due_time():
    clock = shipped_rules().rule_set_for(t("2025-10-09 09:00")).clock
    d = clock.deadline("resolve", t("2025-10-09 09:00"), 5, WD, [(t("2025-10-10 11:00"), None)])
    assert d.due_at is None
    assert d.steps[-1].kind == "stopped"


def test_arithmetic_lines_in_both_languages():
    clock = shipped_rules().rule_set_for(t("2025-09-30 15:00")).clock
    d = clock.deadline("resolve", t("2025-09-30 15:00"), 5, WD)
    zh, en = d.lines("zh"), d.lines("en")
    assert "第0日 2025-09-30：收到当日不计入" in zh
    assert "2025-10-01 跳过：国庆节假期" in zh
    assert "第3个工作日：2025-10-11（周六调休上班）" in zh
    assert "2025-10-12 skipped: Sunday" in en
    assert en[-1] == "Due: 2025-10-14 at 24:00 (end of day 5)"
    assert isinstance(d.start, datetime)
