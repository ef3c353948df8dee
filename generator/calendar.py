"""Working days, office hours and the arithmetic of deadlines.

Working days come from ``chinese_calendar`` (the State Council's yearly holiday
notices, 2004 to 2026, make-up working days 调休 included). ``holidays.China``
is a second opinion: where the two disagree we warn. The owner of ``rules.yaml``
may declare extra working days and extra rest days (each with a reason); those
win over both libraries, so a late library release never breaks a deadline.

A year with no data is an explicit state: it is counted Monday to Friday and
every deadline that touches it is marked provisional, until the owner lists its
days in ``rules.yaml`` and declares it complete.

Counting follows the Civil Code (art. 201 and 203): the day of receipt does not
count, day 1 is the next working day, and the deadline is the end of day N
(the end of day is configurable, for example 24:00 or 17:30).

That is China's calendar, the default. An archive of another country's
records names its jurisdiction instead (``calendar.jurisdiction`` in
rules.yaml, e.g. ``US-MA``, ``US-NY``, ``GB-ENG``): its public holidays come
from the ``holidays`` package for that country and subdivision, weekends are
Saturday and Sunday, there are no make-up working days, and the explanations
speak of that jurisdiction's holidays (a bank holiday in England, a legal
holiday in Massachusetts) rather than China's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Iterable, Sequence

import chinese_calendar

from .problems import Problem

UNITS = ("hours", "office_hours", "working_days", "days")
UNIT_NAMES = {
    "hours": ("小时", "hour(s)"),
    "office_hours": ("个办公小时", "office hour(s)"),
    "working_days": ("个工作日", "working day(s)"),
    "days": ("日", "calendar day(s)"),
}

# chinese_calendar names holidays in English; citizens read Chinese first.
HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利70周年纪念日",
}
# Holiday names of the non-Chinese jurisdictions shipped with rule sets, in Chinese.
FOREIGN_HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Martin Luther King Jr. Day": "马丁·路德·金纪念日",
    "Washington's Birthday": "华盛顿诞辰纪念日（总统日）",
    "Patriots' Day": "爱国者日",
    "Memorial Day": "阵亡将士纪念日",
    "Juneteenth National Independence Day": "六月节",
    "Independence Day": "美国独立日",
    "Labor Day": "劳动节",
    "Columbus Day": "哥伦布日",
    "Veterans Day": "退伍军人节",
    "Thanksgiving Day": "感恩节",
    "Christmas Day": "圣诞节",
    "Lincoln's Birthday": "林肯诞辰纪念日",
    "Susan B. Anthony Day": "苏珊·安东尼纪念日",
    "Election Day": "选举日",
    "Good Friday": "耶稣受难日",
    "Easter Monday": "复活节星期一",
    "May Day": "五月初银行假日",
    "Spring Bank Holiday": "春季银行假日",
    "Late Summer Bank Holiday": "夏末银行假日",
    "Boxing Day": "节礼日",
    "Platinum Jubilee of Elizabeth II": "伊丽莎白二世白金禧年",
    "State Funeral of Queen Elizabeth II": "伊丽莎白二世国葬日",
    "Coronation of Charles III": "查尔斯三世加冕日",
    "Diamond Jubilee of Elizabeth II": "伊丽莎白二世钻禧年",
    "Wedding of William and Catherine": "威廉王子婚礼",
    "Millennium Celebrations": "千禧年庆典",
    "Presidents' Day": "总统日",
    "Cesar Chavez Day": "塞萨尔·查维斯纪念日",
    "Day After Thanksgiving": "感恩节次日",
}

# What a public holiday is called where it is kept: (zh, en, the word for a
# holiday moved off a weekend). Countries not listed get the neutral words.
HOLIDAY_TERMS = {
    "GB": ("银行假日", "bank holiday", "substitute day", "补假"),
    "US": ("法定假日", "legal holiday", "observed", "补休"),
}
_NEUTRAL_TERMS = ("公共假日", "public holiday", "observed", "补休")
SUBDIVISION_NAMES = {
    "GB-ENG": ("英格兰", "England"), "GB-WLS": ("威尔士", "Wales"), "GB-SCT": ("苏格兰", "Scotland"),
    "GB-NIR": ("北爱尔兰", "Northern Ireland"), "US-MA": ("马萨诸塞州", "Massachusetts"),
    "US-NY": ("纽约州", "New York"), "US-CA": ("加利福尼亚州", "California"),
}
CHINA = "CN"


class JurisdictionError(ValueError):
    """A jurisdiction the holidays package does not know."""


def split_jurisdiction(code: str) -> tuple[str, str | None]:
    """Return (country, subdivision or None) of a code like ``US-MA`` or ``GB-ENG``.

    Raises JurisdictionError naming what the ``holidays`` package knows when
    the country or the subdivision is not one of its.
    """
    text = str(code).strip()
    country, _, subdiv = text.partition("-")
    country = country.upper()
    if country == CHINA and not subdiv:
        return CHINA, None
    import holidays  # only foreign calendars need it; slow to import

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise JurisdictionError(f"{text!r} is not a country the holidays package knows "
                                f"(ISO 3166 codes such as US, GB, FR; then -subdivision)")
    if subdiv:
        subs = [str(s) for s in supported[country]]
        match = next((s for s in subs if s.upper() == subdiv.upper()), None)
        if match is None:
            raise JurisdictionError(f"{text!r}: {country} has no subdivision {subdiv!r}; "
                                    f"known: {', '.join(subs[:60])}")
        subdiv = match
    return country, subdiv or None


WEEKDAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
WEEKDAY_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def library_years() -> range:
    """Return the years chinese_calendar has holiday notices for."""
    years = sorted({d.year for d in chinese_calendar.holidays})
    return range(years[0], years[-1] + 1)


_LIBRARY_YEARS = library_years()


def library_versions() -> list[str]:
    """Return ``name=version`` of the two calendar libraries (``none`` when
    holidays is missing): a new version may change any day, so what was
    worked out from them is kept under these. chinese_calendar's comes from
    the module: its distribution's name depends on how it was installed
    (``chinesecalendar`` from PyPI, ``chinese_calendar`` otherwise), and asked
    by the wrong one its version was never found."""
    try:
        theirs = importlib.metadata.version("holidays")
    except importlib.metadata.PackageNotFoundError:
        theirs = "none"
    return [f"chinese_calendar={chinese_calendar.__version__}", f"holidays={theirs}"]


# The kept cross-check answers (Calendar.cross_check) of an earlier way of finding them are not read.
CROSS_CHECK_VERSION = 1


@dataclass(frozen=True)
class DayOverride:
    """An owner's correction of one day: working or rest, and why."""

    day: date
    working: bool
    reason: str


@dataclass(frozen=True)
class DayInfo:
    """What one date is: a working day or not, and why.

    ``kind`` is one of ``working`` (an ordinary weekday), ``makeup`` (a weekend
    day worked in exchange for a holiday, 调休), ``extra_working`` (declared by
    the owner), ``weekend``, ``holiday`` (a named public holiday) or
    ``extra_rest`` (declared by the owner). ``provisional`` is True in years
    with no holiday data, where only weekends are known.
    """

    working: bool
    kind: str
    name_zh: str = ""
    name_en: str = ""
    provisional: bool = False

    def describe(self, day: date) -> tuple[str, str]:
        """Return (zh, en) words for why this day is or is not counted."""
        wd = day.weekday()
        if self.kind == "weekend":
            return WEEKDAY_ZH[wd], WEEKDAY_EN[wd]
        if self.kind == "holiday":
            return f"{self.name_zh}假期", f"{self.name_en} holiday"
        if self.kind == "public_holiday":  # a foreign jurisdiction's, named in its terms
            return self.name_zh, self.name_en
        if self.kind == "extra_rest":
            return f"额外休息日（{self.name_zh}）", f"extra rest day ({self.name_en})"
        if self.kind == "makeup":
            return f"{WEEKDAY_ZH[wd]}调休上班", f"{WEEKDAY_EN[wd]} worked (make-up day)"
        if self.kind == "extra_working":
            return f"额外工作日（{self.name_zh}）", f"extra working day ({self.name_en})"
        return WEEKDAY_ZH[wd], WEEKDAY_EN[wd]


_ORDINARY = DayInfo(True, "working")
_WEEKEND = DayInfo(False, "weekend")
_ORDINARY_P = DayInfo(True, "working", provisional=True)
_WEEKEND_P = DayInfo(False, "weekend", provisional=True)


@dataclass(frozen=True)
class WorkCalendar:
    """The working-day calendar: library data, owner overrides, provisional years.

    Day lookups go through per-year tables built once on first use, so deciding
    whether a date is a working day is one dict and one list lookup.
    """

    overrides: tuple[DayOverride, ...] = ()
    complete_years: tuple[int, ...] = ()
    jurisdiction: str = CHINA  # CN, or a country[-subdivision] code the holidays package knows
    _years: dict = field(default_factory=dict, compare=False, repr=False)
    _by_day: dict = field(default_factory=dict, compare=False, repr=False)
    _days: dict = field(default_factory=dict, compare=False, repr=False)
    _place: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for o in self.overrides:
            self._by_day[o.day] = o
        country, subdiv = split_jurisdiction(self.jurisdiction)
        self._place["place"] = (country, subdiv)

    @property
    def is_china(self) -> bool:
        """True for China's calendar (chinese_calendar, make-up days, provisional years)."""
        return self._place["place"][0] == CHINA

    def rule_words(self) -> tuple[str, str] | None:
        """Return (zh, en) words for where working days come from, for a foreign
        jurisdiction; None for China (whose words the site's templates hold)."""
        if self.is_china:
            return None
        country, subdiv = self._place["place"]
        term_zh, term_en, moved_en, moved_zh = HOLIDAY_TERMS.get(country, _NEUTRAL_TERMS)
        code = country + (f"-{subdiv}" if subdiv else "")
        place_zh, place_en = SUBDIVISION_NAMES.get(code, (code, code))
        return (f"工作日为周一至周五，{place_zh}的{term_zh}（含{moved_zh}）除外；不设调休上班日。",
                f"Working days are Monday to Friday except the {term_en}s of {place_en}, and the "
                f"weekdays they move to when they fall on a weekend; there are no make-up working days.")

    def _foreign_year(self, year: int) -> dict[date, tuple[str, str]]:
        """Return day -> (zh, en) words of each public holiday of a foreign jurisdiction's year."""
        import holidays

        country, subdiv = self._place["place"]
        found = holidays.country_holidays(country, subdiv=subdiv, years=year)
        term_zh, term_en, moved_en, moved_zh = HOLIDAY_TERMS.get(country, _NEUTRAL_TERMS)
        code = country + (f"-{subdiv}" if subdiv else "")
        place_zh, place_en = SUBDIVISION_NAMES.get(code, (code, code))
        out: dict[date, tuple[str, str]] = {}
        for day, names in found.items():
            parts_zh, parts_en = [], []
            for name in str(names).split("; "):
                observed = name.endswith(" (observed)")
                base = name.removesuffix(" (observed)")
                zh = FOREIGN_HOLIDAY_ZH.get(base, base)
                parts_en.append(f"{base}, {moved_en}" if observed else base)
                parts_zh.append(f"{zh}{moved_zh}" if observed else zh)
            out[day] = (f"{'、'.join(parts_zh)}（{place_zh}{term_zh}）",
                        f"{'; '.join(parts_en)} ({term_en} in {place_en})")
        return out

    # -- single days ---------------------------------------------------------

    def year_is_provisional(self, year: int) -> bool:
        """Return True when a year has no holiday data and the owner has not
        declared it complete. A foreign jurisdiction's holidays follow rules
        the holidays package computes for any year: never provisional."""
        if not self.is_china:
            return False
        return year not in _LIBRARY_YEARS and year not in self.complete_years

    def _build_year(self, year: int) -> list[DayInfo]:
        provisional = self.year_is_provisional(year)
        library = self._library_days(year)
        table: list[DayInfo] = []
        day = date(year, 1, 1)
        one = timedelta(days=1)
        while day.year == year:
            override = self._by_day.get(day)
            if override is not None:
                kind = "extra_working" if override.working else "extra_rest"
                info = DayInfo(override.working, kind, override.reason, override.reason, provisional)
            elif day in library:
                info = library[day]
            elif day.weekday() >= 5:
                info = _WEEKEND_P if provisional else _WEEKEND
            else:
                info = _ORDINARY_P if provisional else _ORDINARY
            table.append(info)
            day += one
        return table

    def _library_days(self, year: int) -> dict[date, DayInfo]:
        """Return the days of ``year`` the jurisdiction's holiday data names:
        China's holidays and make-up working days (chinese_calendar), or a
        foreign jurisdiction's public holidays (the holidays package)."""
        if not self.is_china:
            return {day: DayInfo(False, "public_holiday", *words)
                    for day, words in self._foreign_year(year).items()}
        if year not in _LIBRARY_YEARS:
            return {}
        days = {day: DayInfo(False, "holiday", HOLIDAY_ZH.get(name, name), name)
                for day, name in chinese_calendar.holidays.items() if day.year == year}
        days.update((day, DayInfo(True, "makeup"))
                    for day in chinese_calendar.workdays if day.year == year)
        return days

    def day(self, d: date) -> DayInfo:
        """Return what a date is (working or not, and why)."""
        info = self._days.get(d)
        if info is None:
            if d.year not in self._years:
                table = self._years[d.year] = self._build_year(d.year)
                first = date(d.year, 1, 1)
                for i, item in enumerate(table):
                    self._days[first + timedelta(days=i)] = item
            info = self._days[d]
        return info

    def is_working_day(self, d: date) -> bool:
        """Return True when ``d`` is a working day."""
        return self.day(d).working

    # -- counting ------------------------------------------------------------

    def next_working_day(self, d: date) -> date:
        """Return the first working day strictly after ``d``."""
        return self.working_days_after(d, 1)

    def working_days_after(self, d: date, n: int) -> date:
        """Return the n-th working day after ``d`` (``d`` itself not counted).

        ``n`` = 0 gives ``d``. Negative ``n`` counts backwards: the |n|-th
        working day before ``d``.
        """
        if n == 0:
            return d
        step = timedelta(days=1 if n > 0 else -1)
        left = abs(n)
        day = d
        while left:
            day += step
            if self.day(day).working:
                left -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Return how many working days lie in (start, end]: after ``start``,
        up to and including ``end``; 0 if end <= start."""
        count = 0
        day = start + timedelta(days=1)
        while day <= end:
            if self.day(day).working:
                count += 1
            day += timedelta(days=1)
        return count

    def any_provisional(self, start: date, end: date) -> bool:
        """Return True when any year from start to end has no holiday data."""
        return any(self.year_is_provisional(y) for y in range(start.year, end.year + 1))

    # -- the second opinion --------------------------------------------------

    def cross_check(self, years: Iterable[int], path: str = "rules.yaml", line: int | None = None,
                    cache: Path | None = None) -> list[Problem]:
        """Return a warning for each day where ``holidays.China`` disagrees with
        chinese_calendar (owner overrides settle a day and are not checked).

        With ``cache`` (a folder), the days found are kept there by the years,
        the overridden days and both libraries' versions: importing
        ``holidays`` and walking twenty years takes about 0.3 s, on every
        check and every build, for an answer that changes only with them."""
        if not self.is_china:
            return []  # one library for a foreign jurisdiction: nothing to compare with
        years = sorted(set(years))
        found = self._disagreements_cached(years, cache) if cache is not None else self._disagreements(years)
        word = {True: "a working day", False: "a rest day"}
        return [
            Problem(
                path,
                line,
                "calendar-disagreement",
                f"{day}: chinese_calendar says {word[ours]}, holidays.China says {word[not ours]}",
                f"check the State Council notice for {day.year} and add {day} to "
                "calendar.extra_working_days or calendar.extra_rest_days with the notice as reason",
                "warning",
            )
            for day, ours in found
        ]

    def _disagreements(self, years: list[int]) -> list[tuple[date, bool]]:
        """Return (day, chinese_calendar's is-working-day) for each day of
        ``years`` not overridden on which ``holidays.China`` says otherwise."""
        import holidays  # imported here: only the check needs it, and it is slow to import

        found: list[tuple[date, bool]] = []
        for year in years:
            if year not in _LIBRARY_YEARS:
                continue
            other = holidays.China(years=year)
            day = date(year, 1, 1)
            while day.year == year:
                if day not in self._by_day:
                    ours = chinese_calendar.is_workday(day)
                    if ours != other.is_working_day(day):
                        found.append((day, ours))
                day += timedelta(days=1)
        return found

    def _disagreements_cached(self, years: list[int], cache: Path) -> list[tuple[date, bool]]:
        key = hashlib.sha1(json.dumps([years, sorted(d.isoformat() for d in self._by_day), library_versions(),
                                       CROSS_CHECK_VERSION]).encode()).hexdigest()
        store = cache / f"calendar-cross-check-{key[:16]}.json"
        try:
            return [(date.fromisoformat(day), bool(ours)) for day, ours in json.loads(store.read_bytes())]
        except (OSError, ValueError, TypeError):  # not there yet, or damaged: found again
            pass
        found = self._disagreements(years)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            for old in cache.glob("calendar-cross-check-*.json"):
                old.unlink(missing_ok=True)
            tmp = store.with_name(f"{store.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps([(day.isoformat(), ours) for day, ours in found]), encoding="utf-8")
            os.replace(tmp, store)
        except OSError:
            pass  # a read-only cache: found again next time
        return found


# -- office hours ---------------------------------------------------------------


@dataclass(frozen=True)
class OfficeHours:
    """Office periods of a working day, as minutes after midnight, sorted."""

    periods: tuple[tuple[int, int], ...]

    def contains(self, minute: float) -> bool:
        """Return True when a minute of the day falls inside an office period."""
        return any(a <= minute < b for a, b in self.periods)

    def per_day(self) -> int:
        """Return the office minutes of one working day."""
        return sum(b - a for a, b in self.periods)


def hhmm(minutes: float) -> str:
    """Return minutes after midnight as ``HH:MM`` (1440 is ``24:00``)."""
    m = int(round(minutes))
    return f"{m // 60:02d}:{m % 60:02d}"


def parse_hhmm(text: str) -> int | None:
    """Return ``HH:MM`` (00:00 to 24:00) as minutes after midnight, or None."""
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        return None
    hh, mm = text[:2], text[3:]
    if not (hh.isdigit() and mm.isdigit()):
        return None
    h, m = int(hh), int(mm)
    if m >= 60 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


# -- deadlines ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One line of a deadline's arithmetic: a day counted, skipped or noted.

    ``kind``: ``start`` (day 0 / clock start), ``late_receipt``, ``count``,
    ``skip``, ``stopped`` (clock stopped), ``office`` (office time counted),
    ``due``, ``extension``, ``cap``, ``provisional``.
    """

    day: date | None
    kind: str
    note_zh: str
    note_en: str


@dataclass(frozen=True)
class Deadline:
    """When a clock runs out, and how that was worked out.

    ``due_at`` is None while the clock is stopped with no restart yet.
    ``basis`` says which limit applied (``default``, ``category:help``,
    ``channel:phone``, ``office_time``, ``rest_time``, ``extension``).
    """

    stage: str
    start: datetime
    limit: float
    unit: str
    due_at: datetime | None
    steps: tuple[Step, ...]
    provisional: bool
    basis: str = "default"

    def lines(self, lang: str = "zh") -> list[str]:
        """Return the arithmetic as text lines, in Chinese (``zh``) or English."""
        zh_unit, en_unit = UNIT_NAMES[self.unit]
        amount = _amount(self.limit)
        if lang == "zh":
            head = f"{self.stage}：期限 {amount}{zh_unit}，自 {self.start:%Y-%m-%d %H:%M} 起算"
            body = [s.note_zh for s in self.steps]
        else:
            head = f"{self.stage}: limit {amount} {en_unit}, from {self.start:%Y-%m-%d %H:%M}"
            body = [s.note_en for s in self.steps]
        return [head, *body]


def _amount(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def local_minute(t: datetime) -> float:
    """Return the minutes after midnight of a local time."""
    return t.hour * 60 + t.minute + t.second / 60 + t.microsecond / 60_000_000


@dataclass(frozen=True)
class Clock:
    """The counting conventions of one rule set over a calendar and time zone.

    ``end_of_day`` and ``late_receipt_after`` are minutes after midnight
    (``24:00`` is 1440). With ``late_receipt_after`` set, a time received at or
    after it on a working day, or at any time on a rest day, counts as received
    on the next working day (so Friday evening never gets more time than
    Saturday morning).
    """

    calendar: WorkCalendar
    tz: tzinfo
    end_of_day: int = 1440
    late_receipt_after: int | None = None
    office: OfficeHours = OfficeHours(((540, 720), (840, 1080)))
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    # -- helpers -------------------------------------------------------------

    def local(self, t: datetime) -> datetime:
        """Return a time in the city's time zone."""
        return t.astimezone(self.tz)

    def end_of(self, d: date) -> datetime:
        """Return the end of a day (the configured end of day) as a local time."""
        midnight = datetime(d.year, d.month, d.day, tzinfo=self.tz)
        return midnight + timedelta(minutes=self.end_of_day)

    def day_of_end(self, t: datetime) -> date:
        """Return the date whose end of day is ``t`` or which contains ``t``."""
        lt = self.local(t)
        d = lt.date()
        if self.end_of_day == 1440 and lt.hour == 0 and lt.minute == 0 and lt.second == 0 and lt.microsecond == 0:
            return d - timedelta(days=1)
        return d

    def in_office_time(self, t: datetime) -> bool:
        """Return True when ``t`` is in office hours on a working day."""
        lt = self.local(t)
        return self.calendar.is_working_day(lt.date()) and self.office.contains(local_minute(lt))

    # -- the main entry ------------------------------------------------------

    def deadline(
        self,
        stage: str,
        start: datetime,
        limit: float,
        unit: str,
        stops: Sequence[tuple[datetime, datetime | None]] = (),
        basis: str = "default",
    ) -> Deadline:
        """Return the deadline of a clock started at ``start`` running ``limit``
        ``unit``, not counting the ``stops`` (intervals, end None = still stopped)."""
        if len(self._cache) > 200_000:
            self._cache.clear()
        if unit == "working_days":
            result = self._working_days(stage, start, int(limit), stops, basis, calendar_days=False)
        elif unit == "days":
            result = self._working_days(stage, start, int(limit), stops, basis, calendar_days=True)
        elif unit == "hours":
            result = self._hours(stage, start, limit, stops, basis)
        elif unit == "office_hours":
            result = self._office_hours(stage, start, limit, stops, basis)
        else:
            raise ValueError(f"unknown unit {unit!r}")
        return result

    # -- working days and calendar days ---------------------------------------

    def day_zero(self, start: datetime) -> tuple[date, list[Step]]:
        """Return day 0 of a day count, and the late-receipt step moving it, if any."""
        lt = self.local(start)
        d = lt.date()
        steps: list[Step] = []
        if self.late_receipt_after is not None:
            info = self.calendar.day(d)
            late = local_minute(lt) >= self.late_receipt_after
            if late or not info.working:
                nd = self.calendar.next_working_day(d)
                why_zh = f"{hhmm(self.late_receipt_after)}后收到" if info.working else "休息日收到"
                why_en = f"received after {hhmm(self.late_receipt_after)}" if info.working else "received on a rest day"
                steps.append(
                    Step(d, "late_receipt", f"{why_zh}，视为 {nd} 收到", f"{why_en}: counts as received on {nd}")
                )
                d = nd
        return d, steps

    def _working_days(self, stage, start, n, stops, basis, calendar_days) -> Deadline:
        d0, first_steps = self.day_zero(start)
        stopped_days = self._stopped_days(stops) if stops else frozenset()
        open_from = self._open_stop_day(stops) if stops else None
        # The count depends only on day 0, the amount and the stopped days, which
        # thousands of petitions share: compute it once per combination.
        key = ("days", d0, n, calendar_days, stopped_days, open_from)
        core = self._cache.get(key)
        if core is None:
            core = self._cache[key] = self._count_days(d0, n, stopped_days, open_from, calendar_days)
        due_at, steps, provisional = core
        return Deadline(stage, start, n, "days" if calendar_days else "working_days", due_at,
                        tuple(first_steps) + steps, provisional, basis)

    def _count_days(self, d0, n, stopped_days, open_from, calendar_days):
        cal = self.calendar
        steps = [Step(d0, "start", f"第0日 {d0}：收到当日不计入", f"Day 0 {d0}: the day of receipt does not count")]
        counted = 0
        day = d0
        one = timedelta(days=1)
        due_at = None
        while counted < n:
            day += one
            if open_from is not None and day >= open_from:
                steps.append(
                    Step(day, "stopped", f"自 {day} 起等待群众答复，计时暂停，期限待定",
                         f"from {day} waiting for the citizen: clock stopped, due time not yet known")
                )
                break
            info = cal.day(day)
            if day in stopped_days:
                steps.append(Step(day, "stopped", f"{day} 不计：等待群众答复，计时暂停",
                                  f"{day} not counted: waiting for the citizen, clock stopped"))
                continue
            if calendar_days or info.working:
                counted += 1
                zh, en = info.describe(day)
                extra_zh = f"（{zh}）" if info.kind in ("makeup", "extra_working") else ""
                extra_en = f" ({en})" if info.kind in ("makeup", "extra_working") else ""
                word_zh, word_en = ("日", "Day") if calendar_days else ("个工作日", "Working day")
                steps.append(Step(day, "count", f"第{counted}{word_zh}：{day}{extra_zh}",
                                  f"{word_en} {counted}: {day}{extra_en}"))
            else:
                zh, en = info.describe(day)
                steps.append(Step(day, "skip", f"{day} 跳过：{zh}", f"{day} skipped: {en}"))
        else:
            last = day
            if calendar_days and not cal.is_working_day(last):
                # Civil Code art. 203: a period ending on a rest day ends on the
                # next working day.
                nd = cal.next_working_day(last)
                steps.append(Step(last, "skip", f"最后一日 {last} 为休息日，顺延至 {nd}",
                                  f"last day {last} is a rest day: moved to {nd}"))
                last = nd
            due_at = self.end_of(last)
            steps.append(Step(last, "due", f"期限届满：{last} {hhmm(self.end_of_day)}",
                              f"Due: {last} at {hhmm(self.end_of_day)} (end of day {n})"))
        end_day = day if due_at is None else self.day_of_end(due_at)
        provisional = cal.any_provisional(d0, end_day)
        if provisional:
            steps.append(self._provisional_step(d0, end_day))
        return due_at, tuple(steps), provisional

    def _provisional_step(self, a: date, b: date) -> Step:
        years = [y for y in range(a.year, b.year + 1) if self.calendar.year_is_provisional(y)]
        ys = "、".join(str(y) for y in years)
        ys_en = ", ".join(str(y) for y in years)
        return Step(None, "provisional",
                    f"{ys}年节假日安排尚未公布：暂按周一至周五计算，期限为暂定",
                    f"no holiday data for {ys_en} yet: counted Monday to Friday; this deadline is provisional")

    def _stopped_days(self, stops) -> frozenset[date]:
        days: set[date] = set()
        for a, b in stops:
            if b is None:
                continue
            d, e = self.local(a).date(), self.local(b).date()
            while d <= e:
                days.add(d)
                d += timedelta(days=1)
        return frozenset(days)

    def _open_stop_day(self, stops) -> date | None:
        for a, b in stops:
            if b is None:
                return self.local(a).date()
        return None

    # -- calendar hours ------------------------------------------------------

    def _hours(self, stage, start, hours, stops, basis) -> Deadline:
        lt = start.astimezone(self.tz)
        if not stops:
            # The common case, kept lean: it runs once per petition and stage.
            due = (start + timedelta(hours=hours)).astimezone(self.tz)
            a, b = _minute_text(lt), _minute_text(due)
            steps = (Step(lt.date(), "start", f"计时开始：{a}", f"Clock starts: {a}"),
                     Step(due.date(), "due", f"期限届满：{b}", f"Due: {b}"))
            return Deadline(stage, start, hours, "hours", due, steps, False, basis)
        steps = [Step(lt.date(), "start", f"计时开始：{lt:%Y-%m-%d %H:%M}", f"Clock starts: {lt:%Y-%m-%d %H:%M}")]
        remaining = timedelta(hours=hours)
        cursor = start
        due_at = None
        for a, b in sorted(stops, key=lambda s: s[0]):
            if b is not None and b <= cursor:
                continue
            if a >= cursor + remaining:
                break
            if a > cursor:
                remaining -= a - cursor
            la = self.local(a)
            if b is None:
                steps.append(Step(la.date(), "stopped", f"{la:%Y-%m-%d %H:%M} 起等待群众答复，计时暂停，期限待定",
                                  f"from {la:%Y-%m-%d %H:%M} waiting for the citizen: clock stopped, due time not yet known"))
                cursor = None
                break
            lb = self.local(b)
            steps.append(Step(la.date(), "stopped", f"{la:%Y-%m-%d %H:%M} 至 {lb:%Y-%m-%d %H:%M} 计时暂停",
                              f"clock stopped {la:%Y-%m-%d %H:%M} to {lb:%Y-%m-%d %H:%M}"))
            cursor = max(cursor, b)
        if cursor is not None:
            due_at = self.local(cursor + remaining)
            steps.append(Step(due_at.date(), "due", f"期限届满：{due_at:%Y-%m-%d %H:%M}",
                              f"Due: {due_at:%Y-%m-%d %H:%M}"))
        # Calendar hours do not depend on the holiday calendar: never provisional.
        return Deadline(stage, start, hours, "hours", due_at, tuple(steps), False, basis)

    # -- office hours --------------------------------------------------------

    def _office_hours(self, stage, start, hours, stops, basis) -> Deadline:
        cal = self.calendar
        lt = self.local(start)
        steps = [Step(lt.date(), "start", f"收到：{lt:%Y-%m-%d %H:%M}，只计工作日办公时间",
                      f"Received {lt:%Y-%m-%d %H:%M}; only office time on working days counts")]
        remaining = hours * 60.0  # minutes
        closed_stops = sorted((self.local(a), self.local(b)) for a, b in stops if b is not None)
        open_stop = next((self.local(a) for a, b in stops if b is None), None)
        day = lt.date()
        due_at = None
        first = lt.date()
        guard = 0
        while remaining > 1e-9:
            guard += 1
            if guard > 4000:
                raise ValueError("office-hours clock ran past ten years; check office_hours")
            info = cal.day(day)
            if not info.working:
                zh, en = info.describe(day)
                steps.append(Step(day, "skip", f"{day} 跳过：{zh}", f"{day} skipped: {en}"))
                day += timedelta(days=1)
                continue
            counted_today = 0.0
            spans: list[str] = []
            for a_min, b_min in self.office.periods:
                seg_a = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(minutes=a_min)
                seg_b = datetime(day.year, day.month, day.day, tzinfo=self.tz) + timedelta(minutes=b_min)
                if seg_b <= lt:
                    continue
                seg_a = max(seg_a, lt)
                for piece_a, piece_b in _subtract(seg_a, seg_b, closed_stops, open_stop):
                    length = (piece_b - piece_a).total_seconds() / 60
                    if length <= 0:
                        continue
                    if length >= remaining - 1e-9:
                        due_at = piece_a + timedelta(minutes=remaining)
                        counted_today += remaining
                        spans.append(f"{piece_a:%H:%M}–{due_at:%H:%M}")
                        remaining = 0
                        break
                    remaining -= length
                    counted_today += length
                    spans.append(f"{piece_a:%H:%M}–{piece_b:%H:%M}")
                if remaining <= 1e-9:
                    break
            if spans:
                h = _amount(round(counted_today / 60, 2))
                steps.append(Step(day, "office", f"{day} 计入 {'、'.join(spans)}（{h}小时）",
                                  f"{day} counted {', '.join(spans)} ({h} h)"))
            if open_stop is not None and open_stop.date() <= day and remaining > 1e-9:
                steps.append(Step(open_stop.date(), "stopped",
                                  f"{open_stop:%Y-%m-%d %H:%M} 起等待群众答复，计时暂停，期限待定",
                                  f"from {open_stop:%Y-%m-%d %H:%M} waiting for the citizen: clock stopped, due time not yet known"))
                break
            if remaining > 1e-9:
                day += timedelta(days=1)
        if due_at is not None:
            due_at = self.local(due_at)
            steps.append(Step(due_at.date(), "due", f"期限届满：{due_at:%Y-%m-%d %H:%M}",
                              f"Due: {due_at:%Y-%m-%d %H:%M}"))
        provisional = cal.any_provisional(first, day)
        if provisional:
            steps.append(self._provisional_step(first, day))
        return Deadline(stage, start, hours, "office_hours", due_at, tuple(steps), provisional, basis)

    # -- shifting a time (escalation offsets, due-soon windows) ----------------

    def shift(self, t: datetime, amount: float, unit: str) -> datetime:
        """Return ``t`` moved by ``amount`` of ``unit`` (negative = earlier).

        Hours move by elapsed time. Working days move to the end of the n-th
        working day after (or before) the day ``t`` falls in or ends.
        Calendar days do the same over all days. Office hours move forward
        only over office time (used for due-soon windows).
        """
        if unit == "hours":
            return t + timedelta(hours=amount)
        if unit in ("working_days", "days"):
            base = self.day_of_end(t)
            key = ("shift", base, amount, unit)
            hit = self._cache.get(key)
            if hit is None:
                n = int(amount)
                if unit == "days":
                    hit = self.end_of(base + timedelta(days=n))
                else:
                    hit = self.end_of(self.calendar.working_days_after(base, n))
                self._cache[key] = hit
            return hit
        if unit == "office_hours":
            if amount < 0:
                raise ValueError("office-hour shifts go forward only")
            return self._office_hours("", t, amount, (), "").due_at  # type: ignore[return-value]
        raise ValueError(f"unknown unit {unit!r}")


def _minute_text(t: datetime) -> str:
    """Return ``YYYY-MM-DD HH:MM`` (faster than strftime)."""
    return t.isoformat(" ", "minutes")[:16]


def _subtract(a: datetime, b: datetime, stops, open_stop):
    """Yield the parts of [a, b) outside the stop intervals and before an open stop."""
    if open_stop is not None and open_stop < b:
        b = open_stop
    if b <= a:
        return
    cursor = a
    for sa, sb in stops:
        if sb <= cursor or sa >= b:
            continue
        if sa > cursor:
            yield cursor, min(sa, b)
        cursor = max(cursor, sb)
        if cursor >= b:
            return
    if cursor < b:
        yield cursor, b

