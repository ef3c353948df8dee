"""Properties of the working-day calendar and the clocks, checked with hypothesis."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator.calendar import WorkCalendar
from tests.clock_util import CST, shipped_rules

CAL = WorkCalendar()
CLOCK = shipped_rules().rule_sets[0].clock

days = st.dates(min_value=date(2004, 1, 1), max_value=date(2028, 12, 31))
small = st.integers(min_value=0, max_value=40)
times = st.datetimes(min_value=datetime(2004, 1, 1), max_value=datetime(2028, 6, 30)).map(
    lambda d: d.replace(tzinfo=CST, microsecond=0))


@settings(deadline=None, max_examples=60)
@given(days, st.integers(min_value=1, max_value=40))
def test_result_is_a_working_day_after_the_start(d, n):
    out = CAL.working_days_after(d, n)
    assert out > d
    assert CAL.is_working_day(out)
    # exactly n working days lie in (d, out]: counted by a separate simple loop
    count = sum(1 for k in range(1, (out - d).days + 1) if CAL.is_working_day(d + timedelta(days=k)))
    assert count == n


@settings(deadline=None, max_examples=60)
@given(days, small)
def test_n_plus_one_is_later_than_n(d, n):
    assert CAL.working_days_after(d, n + 1) > CAL.working_days_after(d, n)


@settings(deadline=None, max_examples=60)
@given(days, days, st.integers(min_value=1, max_value=30))
def test_monotone_in_the_start(a, b, n):
    if a <= b:
        assert CAL.working_days_after(a, n) <= CAL.working_days_after(b, n)


@settings(deadline=None, max_examples=60)
@given(days, small, small)
def test_adding_a_then_b_equals_adding_a_plus_b(d, a, b):
    assert CAL.working_days_after(CAL.working_days_after(d, a), b) == CAL.working_days_after(d, a + b)


@settings(deadline=None, max_examples=60)
@given(days, st.integers(min_value=1, max_value=30))
def test_backwards_undoes_forwards_from_a_working_day(d, n):
    if CAL.is_working_day(d):
        assert CAL.working_days_after(CAL.working_days_after(d, n), -n) == d


@settings(deadline=None, max_examples=60)
@given(days, st.integers(min_value=0, max_value=30))
def test_between_counts_what_after_adds(d, n):
    assert CAL.working_days_between(d, CAL.working_days_after(d, n)) == n


@settings(deadline=None, max_examples=60)
@given(times, small)
def test_working_day_deadline_is_the_end_of_a_working_day(start, n):
    d = CLOCK.deadline("s", start, n + 1, "working_days")
    due_day = (d.due_at - timedelta(minutes=1)).date()
    assert CAL.is_working_day(due_day)
    assert d.due_at > start
    # counted steps are exactly n + 1, all on working days
    counted = [s.day for s in d.steps if s.kind == "count"]
    assert len(counted) == n + 1 and all(CAL.is_working_day(x) for x in counted)


@settings(deadline=None, max_examples=60)
@given(times, st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=40))
@example(datetime(2004, 1, 2, 15, 30, 1, tzinfo=CST), 6, 40)  # due one second after an office opens
def test_office_hours_add_up(start, a_half_hours, b_half_hours):
    a, b = a_half_hours / 2, b_half_hours / 2
    first = CLOCK.deadline("s", start, a, "office_hours").due_at
    both = CLOCK.deadline("s", start, a + b, "office_hours").due_at
    assert CLOCK.deadline("s", first, b, "office_hours").due_at == both
    assert first < both
    # the due time of an office-hours clock is always inside office time, or at an
    # office period's end, on a working day
    local = both.astimezone(CST)
    second = local.hour * 3600 + local.minute * 60 + local.second  # starts may fall between minutes
    assert CAL.is_working_day(local.date())
    assert any(lo * 60 < second <= hi * 60 for lo, hi in CLOCK.office.periods)


@settings(deadline=None, max_examples=60)
@given(times, st.integers(min_value=1, max_value=30))
def test_office_hours_counted_equal_the_limit(start, half_hours):
    # Recount the office time between start and due with a separate minute-by-minute
    # walk over 15-minute blocks (every office boundary is on a quarter hour).
    hours = half_hours / 2
    start = start.replace(second=0)
    due = CLOCK.deadline("s", start, hours, "office_hours").due_at
    s = start.astimezone(CST)
    cursor = s + timedelta(minutes=(15 - s.minute % 15) % 15)
    counted = timedelta(0)
    if cursor > s:  # the partial quarter at the start
        if CAL.is_working_day(s.date()) and any(lo <= s.hour * 60 + s.minute < hi for lo, hi in CLOCK.office.periods):
            counted += cursor - s
    while cursor < due:
        m = cursor.hour * 60 + cursor.minute
        if CAL.is_working_day(cursor.date()) and any(lo <= m < hi for lo, hi in CLOCK.office.periods):
            counted += min(timedelta(minutes=15), due - cursor)
        cursor += timedelta(minutes=15)
    assert counted == timedelta(hours=hours)


@settings(deadline=None, max_examples=60)
@given(st.integers(min_value=2004, max_value=2026))
def test_library_years_are_not_provisional_and_2027_is(year):
    assert not CAL.year_is_provisional(year)
    assert CAL.year_is_provisional(2027)
    assert CAL.day(date(2027, 3, 3)).provisional


def test_the_calendar_libraries_versions_are_found():
    """What is kept from the calendar libraries (settled cases, the
    cross-check) is kept under their versions: both must be found."""
    from importlib.metadata import version

    import chinese_calendar

    from generator.calendar import library_versions

    assert library_versions() == [f"chinese_calendar={chinese_calendar.__version__}", f"holidays={version('holidays')}"]
    assert not any(v.endswith("=none") for v in library_versions())
