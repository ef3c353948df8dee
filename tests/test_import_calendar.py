"""Calendars by jurisdiction: golden deadlines worked out by hand.

Every expected date below was counted by hand from the published holiday
lists, never with the ``holidays`` package the code uses:

* Massachusetts: the US federal holidays (5 U.S.C. 6103; a Sunday holiday is
  kept on the Monday) and Patriots' Day (third Monday of April, M.G.L. c. 4
  s. 7). Evacuation Day (17 March) and Bunker Hill Day (17 June) are Suffolk
  County holidays only; Wenzheng's US-MA calendar does not rest on them
  (docs/rules.md), so those days count.
* England: the bank holidays published on gov.uk for England and Wales,
  substitute days and the one-off royal days included.

The day of receipt does not count; day 1 is the next working day; the
deadline is the end (24:00) of the last day.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from generator.calendar import Clock, WorkCalendar
from generator.rules import compute_deadline, load_rules
from tests.import_util import MAPPINGS, ROOT

BOSTON = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")

# (received, working days, due date) on the Massachusetts calendar.
MASSACHUSETTS = [
    # Fri 17 Jan 2025; Mon 20 Jan is Martin Luther King Jr. Day: Tue 21 is day 1 ... Mon 27 day 5.
    ("2025-01-17T10:00", 5, date(2025, 1, 27)),
    # Thu 13 Feb; Fri 14 day 1, Mon 17 Washington's Birthday skipped, Tue 18..Fri 21 days 2-5.
    ("2025-02-13T10:00", 5, date(2025, 2, 21)),
    # Fri 14 Mar; Mon 17 Mar is Evacuation Day (Suffolk County only): it counts, day 1; Fri 21 day 5.
    ("2025-03-14T10:00", 5, date(2025, 3, 21)),
    # Thu 17 Apr; Fri 18 (Good Friday is no US holiday) day 1, Mon 21 Patriots' Day skipped,
    # Tue 22..Fri 25 days 2-5.
    ("2025-04-17T10:00", 5, date(2025, 4, 25)),
    # Wed 21 May; Thu 22, Fri 23 days 1-2, Mon 26 Memorial Day skipped, Tue 27..Thu 29 days 3-5.
    ("2025-05-21T10:00", 5, date(2025, 5, 29)),
    # Tue 17 Jun (Bunker Hill Day, Suffolk only: day 0 anyway); Wed 18 day 1, Thu 19 Juneteenth
    # skipped, Fri 20 day 2, Mon 23..Wed 25 days 3-5.
    ("2025-06-17T10:00", 5, date(2025, 6, 25)),
    # Mon 30 Jun; Tue 1..Thu 3 Jul days 1-3, Fri 4 Independence Day skipped, Mon 7, Tue 8 days 4-5.
    ("2025-06-30T10:00", 5, date(2025, 7, 8)),
    # Fri 29 Aug; Mon 1 Sep Labor Day skipped, Tue 2..Mon 8 days 1-5.
    ("2025-08-29T10:00", 5, date(2025, 9, 8)),
    # Fri 10 Oct; Mon 13 Columbus Day skipped, Tue 14..Mon 20 days 1-5.
    ("2025-10-10T10:00", 5, date(2025, 10, 20)),
    # Mon 10 Nov; Tue 11 Veterans Day skipped, Wed 12..Tue 18 days 1-5.
    ("2025-11-10T10:00", 5, date(2025, 11, 18)),
    # Tue 25 Nov; Wed 26 day 1, Thu 27 Thanksgiving skipped, Fri 28 (no legal holiday) day 2,
    # Mon 1..Wed 3 Dec days 3-5.
    ("2025-11-25T10:00", 5, date(2025, 12, 3)),
    # Tue 30 Dec; Wed 31 day 1, Thu 1 Jan 2026 New Year's Day skipped, Fri 2 day 2, Mon 5..Wed 7.
    ("2025-12-30T10:00", 5, date(2026, 1, 7)),
    # Wed 21 Dec 2022; Christmas on Sunday 25 is kept on Monday 26: Thu 22, Fri 23 days 1-2,
    # Mon 26 skipped, Tue 27..Thu 29 days 3-5.
    ("2022-12-21T10:00", 5, date(2022, 12, 29)),
]

# (received, due date) for a UK FOI request: 20 working days on England's bank holidays.
ENGLAND_FOI = [
    # Mon 19 Dec 2022: Dec 20-23 days 1-4; Mon 26 Boxing Day and Tue 27 Christmas (substitute
    # day) skipped; Dec 28-30 days 5-7; Mon 2 Jan 2023 New Year's substitute day skipped;
    # Jan 3-6 days 8-11, 9-13 days 12-16, 16-19 days 17-20.
    ("2022-12-19T11:00", date(2023, 1, 19)),
    # Thu 7 Apr 2022: four weeks is Thu 5 May; Good Friday 15 Apr, Easter Monday 18 Apr and
    # Early May bank holiday Mon 2 May push it three working days: Fri 6, Mon 9, Tue 10 May.
    ("2022-04-07T11:00", date(2022, 5, 10)),
    # Wed 25 May 2022: four weeks is Wed 22 Jun; Spring bank holiday Thu 2 Jun and the Platinum
    # Jubilee Fri 3 Jun push it two: Thu 23, Fri 24 Jun.
    ("2022-05-25T11:00", date(2022, 6, 24)),
    # Mon 5 Sep 2022: four weeks is Mon 3 Oct; the Queen's state funeral Mon 19 Sep pushes it one.
    ("2022-09-05T11:00", date(2022, 10, 4)),
    # Fri 28 Apr 2023: Mon 1 May (Early May) skipped, May 2-5 days 1-4; Mon 8 May (Coronation)
    # skipped; May 9-12 days 5-8, 15-19 days 9-13, 22-26 days 14-18; Mon 29 May (Spring) skipped;
    # Tue 30, Wed 31 days 19-20.
    ("2023-04-28T11:00", date(2023, 5, 31)),
    # Mon 8 May 2023, received on the Coronation bank holiday (day 0 all the same): May 9-12 days
    # 1-4, 15-19 days 5-9, 22-26 days 10-14; Mon 29 skipped; May 30-Jun 2 days 15-18; Jun 5, 6.
    ("2023-05-08T11:00", date(2023, 6, 6)),
    # Thu 21 Mar 2024: four weeks is Thu 18 Apr; Good Friday 29 Mar and Easter Monday 1 Apr
    # push it two: Fri 19, Mon 22 Apr.
    ("2024-03-21T11:00", date(2024, 4, 22)),
    # Fri 20 Dec 2024: four weeks is Fri 17 Jan 2025; Christmas, Boxing Day and New Year's Day
    # push it three: Mon 20, Tue 21, Wed 22 Jan.
    ("2024-12-20T11:00", date(2025, 1, 22)),
    # Wed 16 Apr 2025: four weeks is Wed 14 May; Good Friday 18 Apr, Easter Monday 21 Apr and
    # Early May Mon 5 May push it three: Thu 15, Fri 16, Mon 19 May.
    ("2025-04-16T11:00", date(2025, 5, 19)),
    # Fri 22 Aug 2025: four weeks is Fri 19 Sep; the Summer bank holiday Mon 25 Aug pushes it
    # one, over the weekend: Mon 22 Sep.
    ("2025-08-22T11:00", date(2025, 9, 22)),
    # Mon 27 Apr 2020: four weeks is Mon 25 May, itself the Spring bank holiday; with VE Day
    # (Early May moved to Fri 8 May) that is two days more after Fri 22 May (day 18): Tue 26, Wed 27.
    ("2020-04-27T11:00", date(2020, 5, 27)),
    # Fri 18 Dec 2020: Dec 21-24 days 1-4; Fri 25 Christmas skipped; Boxing Day on Saturday 26 is
    # kept on Mon 28 (substitute day), skipped; Dec 29-31 days 5-7; Fri 1 Jan 2021 skipped;
    # Jan 4-8 days 8-12, 11-15 days 13-17, 18-20 days 18-20.
    ("2020-12-18T11:00", date(2021, 1, 20)),
]


def _rules(name: str):
    rules, problems = load_rules((MAPPINGS / name).read_bytes(), name, cross_check=False)
    assert rules is not None, problems
    return rules


@pytest.mark.parametrize("received, n, due", MASSACHUSETTS, ids=[c[0][:10] for c in MASSACHUSETTS])
def test_massachusetts_working_days(received, n, due):
    clock = Clock(WorkCalendar(jurisdiction="US-MA"), BOSTON)
    got = clock.deadline("resolve", datetime.fromisoformat(received).replace(tzinfo=BOSTON), n,
                         "working_days")
    assert got.due_at == datetime(due.year, due.month, due.day, tzinfo=BOSTON) + (
        datetime(2000, 1, 2) - datetime(2000, 1, 1))
    assert not got.provisional
    assert not any("make-up" in line for line in got.lines("en"))


@pytest.mark.parametrize("received, due", ENGLAND_FOI, ids=[c[0][:10] for c in ENGLAND_FOI])
def test_uk_foi_twenty_working_days_on_england_bank_holidays(received, due):
    """The shipped UK FOI rule set: 20 working days on England's bank holidays."""
    rules = _rules("uk-foi-rules.yaml")
    (resolve,) = compute_deadline(rules, datetime.fromisoformat(received).replace(tzinfo=LONDON),
                                  "consultation", "web")
    assert resolve.limit == 20 and resolve.unit == "working_days"
    assert resolve.due_at.astimezone(LONDON).date() == due + (date(2000, 1, 2) - date(2000, 1, 1))
    assert resolve.due_at.astimezone(LONDON).time().hour == 0  # 24:00 of the due day


def test_boston_case_of_the_issue_is_judged_on_massachusetts_holidays():
    """Issue #20: a Boston case received Sat 2025-09-20 was pushed past China's National Day
    and explained with a 'Sunday worked (make-up day)'. Fourteen calendar days end on Sat 4 Oct,
    a weekend in Massachusetts: the period ends on Mon 6 Oct."""
    rules = _rules("boston-rules.yaml")
    (resolve,) = compute_deadline(rules, datetime(2025, 9, 20, 9, 30, tzinfo=BOSTON), "help", "phone")
    assert resolve.due_at == datetime(2025, 10, 7, tzinfo=BOSTON)  # the end (24:00) of Mon 6 Oct
    text = "\n".join(resolve.lines("en") + resolve.lines("zh"))
    assert "make-up" not in text and "调休" not in text and "National Day" not in text


def test_boston_period_ending_on_independence_day_moves_to_monday():
    """Received Fri 20 Jun 2025: day 14 is Fri 4 Jul, Independence Day, so the period ends on
    the next working day, Mon 7 Jul; the explanation names the holiday in US terms."""
    rules = _rules("boston-rules.yaml")
    (resolve,) = compute_deadline(rules, datetime(2025, 6, 20, 9, 0, tzinfo=BOSTON), "help", "phone")
    assert resolve.due_at == datetime(2025, 7, 8, tzinfo=BOSTON)
    clock = Clock(WorkCalendar(jurisdiction="US-MA"), BOSTON)
    assert clock.calendar.day(date(2025, 7, 4)).describe(date(2025, 7, 4)) == (
        "美国独立日（马萨诸塞州法定假日）", "Independence Day (legal holiday in Massachusetts)")


def test_england_substitute_day_is_named_in_english_terms():
    cal = WorkCalendar(jurisdiction="GB-ENG")
    assert cal.day(date(2022, 12, 27)).describe(date(2022, 12, 27)) == (
        "圣诞节补假（英格兰银行假日）", "Christmas Day, substitute day (bank holiday in England)")
    assert cal.is_working_day(date(2023, 3, 17))  # St Patrick's Day: Northern Ireland only


def test_nyc_rules_use_new_york_calendar():
    rules = _rules("nyc-rules.yaml")
    assert not rules.calendar.is_working_day(date(2025, 11, 27))  # Thanksgiving
    assert rules.calendar.is_working_day(date(2025, 10, 1))  # China's National Day


def test_china_stays_the_default():
    cal = WorkCalendar()
    assert cal.day(date(2025, 9, 28)).kind == "makeup"
    assert not cal.is_working_day(date(2025, 10, 1))


def test_unknown_jurisdiction_is_an_error_naming_the_line():
    text = "timezone: Europe/London\ncalendar:\n  jurisdiction: GB-XYZ\nrule_sets: []\n"
    rules, problems = load_rules(text, "rules.yaml", cross_check=False)
    assert rules is None
    bad = [p for p in problems if p.code == "bad-jurisdiction"]
    assert bad and bad[0].line == 3 and "GB" in bad[0].message


def test_rules_page_speaks_of_the_jurisdiction(tmp_path):
    """The site's rules page of an imported archive explains its own holidays, not China's."""
    from generator.render import rulespage

    class Env:
        def __init__(self):
            import jinja2
            self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT / "site_templates")))
            self.base_path = "/"

        def home(self, lang):
            return "/"

    from generator.render.i18n import t
    site = Env()
    site.env.globals["t"] = t
    zh, en = rulespage.bodies(site, _rules("uk-foi-rules.yaml"), 10)
    assert "bank holidays of England" in en and "State Council" not in en
    assert "英格兰的银行假日" in zh and "国务院" not in zh and "北京时间" not in zh
