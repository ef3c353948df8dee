"""Return the figures the site shows, taken from :mod:`generator.metrics` (the
same numbers ``wenzheng export`` publishes), in one shape for city and department.

Per department: reply rate = its first final replies / cases it received;
on-time rate = answers on time / answers whose due time passed or which were
given; completion rate = cases closed while it held them / cases received;
satisfaction = satisfied or basically satisfied / ratings. The city's figures
are the metrics' headline. Every rate carries numerator, denominator and its
Wilson 95% interval.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta

from generator import metrics


@dataclass(frozen=True)
class Figures:
    """The figures of one department or of the city over one period."""

    received: int
    reply_rate: metrics.Rate
    on_time_rate: metrics.Rate
    completion_rate: metrics.Rate
    satisfaction_rate: metrics.Rate
    overdue_now: int
    median_reply_hours: float | None = None
    ranked: bool = True
    rank: int | None = None


EMPTY = Figures(0, metrics.rate(0, 0), metrics.rate(0, 0), metrics.rate(0, 0), metrics.rate(0, 0), 0)


def from_card(card: metrics.DepartmentCard | None) -> Figures:
    """Return a department card's figures (all zero for no card)."""
    if card is None:
        return EMPTY
    return Figures(card.received, card.replied, card.replied_on_time, card.closed, card.satisfaction,
                   card.overdue_now, card.reply_time.median_hours, card.ranked, card.rank)


def from_headline(head: metrics.Headline | None) -> Figures:
    """Return the city's figures of a period (all zero for no headline)."""
    if head is None:
        return EMPTY
    return Figures(head.received, head.reply_rate, head.on_time_rate, head.completion_rate,
                   head.satisfaction_rate, head.overdue_now)


def by_department(cards: metrics.Scorecards, period: str) -> dict[str, Figures]:
    """Return every department's figures of a period."""
    return {c.department: from_card(c) for c in cards.departments if c.period == period}


# -- periods ---------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A reporting period: ``kind`` week, month or year, and its local dates."""

    kind: str
    key: str  # 2026-W47, 2026-11, 2026
    first: date
    last: date

    def label(self, lang: str) -> str:
        if self.kind == "week":
            y, w = self.key.split("-W")
            return f"{y}年第{int(w)}周" if lang == "zh" else f"Week {int(w)}, {y}"
        if self.kind == "month":
            y, m = self.key.split("-")
            return f"{y}年{int(m)}月" if lang == "zh" else f"{date(int(y), int(m), 1):%B %Y}"
        return f"{self.key}年" if lang == "zh" else self.key


@functools.lru_cache(maxsize=None)
def period_of(kind: str, d: date) -> Period:
    """Return the period of ``kind`` holding the day ``d``."""
    if kind == "week":
        y, w, _ = d.isocalendar()
        first = d - timedelta(days=d.weekday())
        return Period("week", f"{y}-W{w:02d}", first, first + timedelta(days=6))
    if kind == "month":
        first = d.replace(day=1)
        nxt = (first + timedelta(days=32)).replace(day=1)
        return Period("month", f"{d:%Y-%m}", first, nxt - timedelta(days=1))
    return Period("year", str(d.year), date(d.year, 1, 1), date(d.year, 12, 31))


def previous(period: Period) -> Period:
    """Return the period just before ``period``."""
    return period_of(period.kind, period.first - timedelta(days=1))
