"""Department scorecards and city-wide figures: pure functions of case states.

Every figure's exact definition is in ``docs/metrics.md``; the short version:

- A case counts for every department that held it, in the period of its
  receipt (local date in the city's time zone): ISO week, month, year, all time.
- Rates carry their numerator, denominator and a Wilson 95% interval.
- Closed is never counted as resolved, and a reply is never counted as a
  closure.
- Departments with fewer received cases than ``minimum_cases_for_ranking`` are
  shown but not ranked.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields
from datetime import datetime, tzinfo
from statistics import median
from typing import Any, Iterable, Mapping

from .evaluate import CaseState, StageState
from .records import RATINGS
from .rules import Rules

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
PERIOD_KINDS = ("all", "year", "month", "week")

LABELS_ZH = {
    "received": "受理量",
    "accepted_on_time": "按时签收率",
    "replied": "答复率",
    "replied_on_time": "按时答复率",
    "resolved": "已解决",
    "closed": "办结率",
    "closed_on_time": "按时办结率",
    "overdue_now": "当前逾期",
    "extensions_requested": "申请延期",
    "extensions_granted": "批准延期",
    "transfers_out": "转出",
    "reopened": "重新办理",
    "ratings": "评价",
    "satisfaction": "满意率",
    "acceptance_time": "签收用时",
    "reply_time": "答复用时",
    "closure_time": "办结用时",
    "median_hours": "中位数（小时）",
    "p90_hours": "第90百分位（小时）",
    "ranked": "参与排名",
    "rank": "排名",
    "reply_rate": "答复率",
    "on_time_rate": "按时率",
    "completion_rate": "办结率",
    "satisfaction_rate": "满意率",
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "dissatisfied": "不满意",
}
LABELS_EN = {k: k.replace("_", " ") for k in LABELS_ZH}


@dataclass(frozen=True)
class Rate:
    """A proportion with its Wilson 95% interval (value and bounds None when
    the denominator is 0)."""

    numerator: int
    denominator: int
    value: float | None
    wilson_low: float | None
    wilson_high: float | None


def rate(numerator: int, denominator: int, z: float = Z95) -> Rate:
    """Return numerator/denominator with its Wilson score interval."""
    if denominator <= 0:
        return Rate(numerator, denominator, None, None, None)
    n = denominator
    p = numerator / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # The bounds are exactly 0 and 1 at the ends; say so rather than 0.9999999999999999.
    low = 0.0 if numerator == 0 else max(0.0, centre - half)
    high = 1.0 if numerator == n else min(1.0, centre + half)
    return Rate(numerator, denominator, p, low, high)


@dataclass(frozen=True)
class Times:
    """Durations in hours: how many, the median and the 90th percentile
    (nearest rank); None when there are none."""

    count: int
    median_hours: float | None
    p90_hours: float | None


def times(hours: list[float]) -> Times:
    """Return the count, median and nearest-rank 90th percentile of ``hours``."""
    if not hours:
        return Times(0, None, None)
    ordered = sorted(hours)
    rank = math.ceil(0.9 * len(ordered))
    return Times(len(ordered), round(median(ordered), 4), round(ordered[rank - 1], 4))


@dataclass(frozen=True)
class DepartmentCard:
    department: str
    period: str
    received: int
    accepted_on_time: Rate
    replied: Rate  # final reply given / received
    replied_on_time: Rate
    resolved: int  # final replies whose resolution is `resolved`
    closed: Rate  # closed while held / received
    closed_on_time: Rate
    overdue_now: int
    extensions_requested: int
    extensions_granted: int
    transfers_out: int
    reopened: int
    ratings: Mapping[str, int]
    satisfaction: Rate
    acceptance_time: Times
    reply_time: Times
    closure_time: Times
    ranked: bool = False
    rank: int | None = None


@dataclass(frozen=True)
class Headline:
    """City-wide figures for one period."""

    period: str
    received: int
    reply_rate: Rate
    on_time_rate: Rate
    completion_rate: Rate
    satisfaction_rate: Rate
    overdue_now: int


@dataclass(frozen=True)
class Scorecards:
    now: datetime
    minimum_cases_for_ranking: int
    periods: tuple[str, ...]
    departments: tuple[DepartmentCard, ...]
    headlines: tuple[Headline, ...]

    def for_period(self, period: str) -> tuple[DepartmentCard, ...]:
        """Return the department cards of one period, ranked ones first in rank order."""
        cards = [c for c in self.departments if c.period == period]
        return tuple(sorted(cards, key=lambda c: (c.rank is None, c.rank or 0, c.department)))

    def headline(self, period: str) -> Headline | None:
        return next((h for h in self.headlines if h.period == period), None)

    def to_dict(self) -> dict[str, Any]:
        """Return plain data for JSON/CSV export (times as ISO text). Made once
        per Scorecards (the site writes it into three downloads): read it, do
        not change it."""
        return self._plain_data

    @functools.cached_property
    def _plain_data(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "minimum_cases_for_ranking": self.minimum_cases_for_ranking,
            "periods": list(self.periods),
            "departments": [_plain(c) for c in self.departments],
            "headlines": [_plain(h) for h in self.headlines],
        }


def _plain(d: Any) -> Any:
    """Return a card, rate or time summary as plain data, floats rounded (what
    ``dataclasses.asdict`` gives, at a tenth of its cost on 100,000 cards)."""
    names = _FIELDS.get(type(d))
    if names is not None:
        return {k: _plain(getattr(d, k)) for k in names}
    if isinstance(d, dict):
        return {k: _plain(v) for k, v in d.items()}
    if isinstance(d, float):
        return round(d, 6)
    return d


_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (Rate, Times, DepartmentCard, Headline)}


def period_keys(received_at: datetime, tz: tzinfo, kinds: Iterable[str] = PERIOD_KINDS) -> list[str]:
    """Return the period keys a case received at ``received_at`` belongs to:
    ``all``, ``2025``, ``2025-10``, ``2025-W41`` (ISO week)."""
    d = received_at.astimezone(tz).date()
    out = []
    for k in kinds:
        if k == "all":
            out.append("all")
        elif k == "year":
            out.append(f"{d.year}")
        elif k == "month":
            out.append(f"{d.year}-{d.month:02d}")
        elif k == "week":
            iso = d.isocalendar()
            out.append(f"{iso[0]}-W{iso[1]:02d}")
    return out


@dataclass
class _Acc:
    received: int = 0
    acc_ok: int = 0
    acc_n: int = 0
    replied: int = 0
    rep_ok: int = 0
    rep_n: int = 0
    resolved: int = 0
    closed: int = 0
    closed_ok: int = 0
    overdue_now: int = 0
    ext_req: int = 0
    ext_ok: int = 0
    transfers_out: int = 0
    reopened: int = 0
    ratings: dict = field(default_factory=lambda: {r: 0 for r in RATINGS})
    acc_hours: list = field(default_factory=list)
    rep_hours: list = field(default_factory=list)
    close_hours: list = field(default_factory=list)

    def add(self, other: "_Acc") -> None:
        """Add the sums of ``other`` (other cases) to these."""
        for name in _ACC_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for rating, n in other.ratings.items():
            self.ratings[rating] += n
        self.acc_hours.extend(other.acc_hours)
        self.rep_hours.extend(other.rep_hours)
        self.close_hours.extend(other.close_hours)


@dataclass
class _City:
    received: int = 0
    replied: int = 0
    on_ok: int = 0
    on_n: int = 0
    closed: int = 0
    satisfied: int = 0
    rated: int = 0
    overdue_now: int = 0

    def add(self, other: "_City") -> None:
        """Add the counts of ``other`` (other cases) to these."""
        for name in _CITY_COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_ACC_COUNTS = tuple(f.name for f in fields(_Acc) if f.type in ("int", int))
_CITY_COUNTS = tuple(f.name for f in fields(_City))

_SETTLED = ("on_time", "late", "overdue")


def _answer_stage(stages: list[StageState]) -> StageState | None:
    """Return round 0 of the stage completed by a final reply (role ``resolve``),
    or else of the stage completed by any reply (role ``reply``)."""
    for role in ("resolve", "reply"):
        for s in stages:
            if s.role == role and s.round == 0:
                return s
    return None


def case_facts(st: CaseState, tz: tzinfo, kinds: Iterable[str] = PERIOD_KINDS) -> tuple:
    """Return what the scorecards count of one case, as a plain tuple.

    ``(period keys, replied, answer statuses, closed, rating, overdue now,
    holdings)``, each holding ``(department, first holding of it, accept
    status, answer status, overdue now, transferred out, extensions requested,
    extensions granted, reopened, hours to accept, hours to first final reply,
    holds at the end, resolved, hours to closure, closed on time, rating)``.
    For a settled case (generator/settled.py) this does not depend on ``now``
    and is cached: aggregating tuples is much cheaper than walking states.
    """
    keys = tuple(period_keys(st.received_at, tz, kinds))
    by_dept: dict[str | None, list[StageState]] = {}
    for s in st.stages:
        by_dept.setdefault(s.department, []).append(s)
    last = st.holdings[-1].department if st.holdings else None
    answers = tuple(a.status for a in (_answer_stage(v) for k, v in by_dept.items() if k is not None)
                    if a is not None)
    is_open = st.status == "open"
    seen: set[str] = set()
    replied_by: set[str] = set()
    holdings = []
    for h in st.holdings:
        dept = h.department
        if dept is None:
            continue
        stages = by_dept.get(dept, [])
        first = dept not in seen
        seen.add(dept)
        accept = next((s for s in stages if s.role == "accept" and s.round == 0), None) if first else None
        answer = _answer_stage(stages) if first else None
        overdue = first and is_open and any(s.current and s.status == "overdue" for s in stages)
        first_reply = h.final_reply_at is not None and dept not in replied_by
        if first_reply:
            replied_by.add(dept)
        at_end = dept == last and h.end is None
        closed_hours = closed_ok = None
        if at_end and st.status == "closed" and st.closed_at is not None:
            closed_hours = (st.closed_at - st.received_at).total_seconds() / 3600
            due = _latest_answer_due(stages)
            closed_ok = due is not None and st.closed_at <= due
        holdings.append((
            dept, first, accept.status if accept else None, answer.status if answer else None, overdue,
            h.transferred_out, h.extensions_requested, h.extensions_granted, h.reopened,
            (h.accepted_at - h.start).total_seconds() / 3600 if h.accepted_at is not None else None,
            (h.final_reply_at - h.start).total_seconds() / 3600 if first_reply else None,
            at_end, at_end and st.resolution == "resolved" and h.final_reply_at is not None,
            closed_hours, closed_ok, st.rating if at_end else None))
    return (keys, st.final_reply_at is not None, answers, st.status == "closed", st.rating,
            is_open and st.overdue_level == "overdue", tuple(holdings))


def scorecards(states: Iterable[CaseState], rules: Rules, now: datetime,
               kinds: Iterable[str] = PERIOD_KINDS, departments: Iterable[str] = ()) -> Scorecards:
    """Return department scorecards and city headlines for every period in
    which a case was received. ``departments`` listed get an ``all`` row even
    with no cases."""
    kinds = tuple(kinds)
    return aggregate((case_facts(st, rules.tz, kinds) for st in states), rules, now, departments)


def aggregate(facts: Iterable[tuple], rules: Rules, now: datetime, departments: Iterable[str] = ()) -> Scorecards:
    """Return the scorecards of cases given as :func:`case_facts`."""
    return scorecards_of(accumulate(facts), rules, now, departments)


@dataclass
class Sums:
    """What the scorecards of some cases are made from: counts and durations
    per (department, period) and per period for the city. Sums of disjoint sets
    of cases add up (:func:`merged`) to the sums of their union, so a build can
    keep the sums of cases that no longer change (settled cases, a month at a
    time) and add only the others'."""

    acc: dict[tuple[str, str], _Acc] = field(default_factory=dict)
    city: dict[str, _City] = field(default_factory=dict)


def accumulate(facts: Iterable[tuple]) -> Sums:
    """Return the sums of cases given as :func:`case_facts`."""
    acc: dict[tuple[str, str], _Acc] = {}
    city: dict[str, _City] = {}
    for keys, replied, answers, closed, rating, overdue_now, holdings in facts:
        # -- city
        on_n = sum(1 for a in answers if a in _SETTLED)
        on_ok = sum(1 for a in answers if a == "on_time")
        satisfied = rating in ("satisfied", "basically_satisfied")
        for key in keys:
            c = city.get(key)
            if c is None:
                c = city[key] = _City()
            c.received += 1
            c.replied += replied
            c.on_n += on_n
            c.on_ok += on_ok
            c.closed += closed
            if rating is not None:
                c.rated += 1
                c.satisfied += satisfied
            c.overdue_now += overdue_now
        # -- departments
        for (dept, first, accept, answer, overdue, transferred_out, ext_req, ext_ok, reopened, acc_hours,
             rep_hours, at_end, resolved, close_hours, closed_ok, end_rating) in holdings:
            for key in keys:
                a = acc.get((dept, key))
                if a is None:
                    a = acc[(dept, key)] = _Acc()
                if first:
                    a.received += 1
                    if accept in _SETTLED:
                        a.acc_n += 1
                        a.acc_ok += accept == "on_time"
                    if answer in _SETTLED:
                        a.rep_n += 1
                        a.rep_ok += answer == "on_time"
                    a.overdue_now += overdue
                a.transfers_out += transferred_out
                a.ext_req += ext_req
                a.ext_ok += ext_ok
                a.reopened += reopened
                if acc_hours is not None:
                    a.acc_hours.append(acc_hours)
                if rep_hours is not None:
                    a.replied += 1
                    a.rep_hours.append(rep_hours)
                if at_end:
                    a.resolved += resolved
                    if close_hours is not None:
                        a.closed += 1
                        a.close_hours.append(close_hours)
                        a.closed_ok += closed_ok
                    if end_rating is not None:
                        a.ratings[end_rating] += 1
    return Sums(acc, city)


def merged(parts: Iterable[Sums]) -> Sums:
    """Return the sums of the cases of every one of ``parts`` (disjoint sets of
    cases), leaving ``parts`` as they were."""
    out = Sums()
    for part in parts:
        for into, items, kind in ((out.acc, part.acc, _Acc), (out.city, part.city, _City)):
            for key, sums in items.items():
                total = into.get(key)
                if total is None:
                    total = into[key] = kind()
                total.add(sums)
    return out


def scorecards_of(sums: Sums, rules: Rules, now: datetime, departments: Iterable[str] = ()) -> Scorecards:
    """Return the scorecards made from ``sums``. ``departments`` listed get an
    ``all`` row even with no cases."""
    acc, city = dict(sums.acc), sums.city
    for dept in departments:
        acc.setdefault((dept, "all"), _Acc())
    cards = []
    for (dept, key), a in acc.items():
        rated = sum(a.ratings.values())
        cards.append(DepartmentCard(
            department=dept, period=key, received=a.received,
            accepted_on_time=rate(a.acc_ok, a.acc_n),
            replied=rate(a.replied, a.received),
            replied_on_time=rate(a.rep_ok, a.rep_n),
            resolved=a.resolved,
            closed=rate(a.closed, a.received),
            closed_on_time=rate(a.closed_ok, a.closed),
            overdue_now=a.overdue_now,
            extensions_requested=a.ext_req, extensions_granted=a.ext_ok,
            transfers_out=a.transfers_out, reopened=a.reopened,
            ratings=dict(a.ratings),
            satisfaction=rate(a.ratings["satisfied"] + a.ratings["basically_satisfied"], rated),
            acceptance_time=times(a.acc_hours), reply_time=times(a.rep_hours), closure_time=times(a.close_hours),
        ))
    cards = _rank(cards, rules.minimum_cases_for_ranking)
    heads = tuple(
        Headline(key, c.received, rate(c.replied, c.received), rate(c.on_ok, c.on_n),
                 rate(c.closed, c.received), rate(c.satisfied, c.rated), c.overdue_now)
        for key, c in sorted(city.items())
    )
    periods = tuple(sorted({c.period for c in cards} | set(city), key=lambda p: (p != "all", p)))
    return Scorecards(now, rules.minimum_cases_for_ranking, periods,
                      tuple(sorted(cards, key=lambda c: (c.period, c.department))), heads)


def _latest_answer_due(stages: list[StageState]) -> datetime | None:
    for role in ("resolve", "reply"):
        rounds = [s for s in stages if s.role == role]
        if rounds:
            return max(rounds, key=lambda s: s.round).deadline.due_at
    return None


def _rank(cards: list[DepartmentCard], minimum: int) -> list[DepartmentCard]:
    """Return the cards with ``ranked`` and ``rank`` set, per period.

    Ranked: at least ``minimum`` received cases and at least one settled answer.
    Order: the Wilson lower bound of the on-time reply rate, highest first (so a
    perfect record on 10 cases does not beat a near-perfect one on 1,000), then
    the rate itself, then more cases, then the department id.
    """
    from dataclasses import replace

    out = []
    by_period: dict[str, list[DepartmentCard]] = {}
    for c in cards:
        by_period.setdefault(c.period, []).append(c)
    for period, group in by_period.items():
        eligible = [c for c in group if c.received >= minimum and c.replied_on_time.denominator > 0]
        eligible.sort(key=lambda c: (-(c.replied_on_time.wilson_low or 0.0), -(c.replied_on_time.value or 0.0),
                                     -c.received, c.department))
        ranks = {c.department: i + 1 for i, c in enumerate(eligible)}
        for c in group:
            r = ranks.get(c.department)
            out.append(replace(c, ranked=r is not None, rank=r))
    return out
