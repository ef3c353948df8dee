"""Return the figures the site publishes: rates with their numerator,
denominator and 95% Wilson interval, per department and per period.

Definitions (shown on the site beside every figure):
- received: petitions received in the period (rejected ones included; they are
  counted for the centre, not a department).
- reply rate: petitions with a final reply / petitions assigned to a department
  (not rejected, not withdrawn).
- on-time rate: resolve stages finished by their due time / resolve stages whose
  due time has passed or which are finished.
- completion rate: petitions closed / petitions assigned (not rejected, not withdrawn).
- satisfaction rate: ratings satisfied or basically satisfied / all ratings.
- overdue now: open petitions past a due time as of ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any, Iterable

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Rate:
    """A share with what it is made of: ``numerator`` of ``denominator``."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def interval(self) -> tuple[float, float] | None:
        """Return the 95% Wilson score interval, or None with no cases."""
        n, k = self.denominator, self.numerator
        if not n:
            return None
        p = k / n
        centre = (p + Z95 * Z95 / (2 * n)) / (1 + Z95 * Z95 / n)
        half = Z95 * math.sqrt(p * (1 - p) / n + Z95 * Z95 / (4 * n * n)) / (1 + Z95 * Z95 / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def as_dict(self) -> dict[str, Any]:
        iv = self.interval
        return {"numerator": self.numerator, "denominator": self.denominator,
                "value": None if self.value is None else round(self.value, 4),
                "interval": None if iv is None else [round(iv[0], 4), round(iv[1], 4)]}


@dataclass(frozen=True)
class Scorecard:
    """One department's (or the whole city's) figures over one set of petitions."""

    received: int
    reply_rate: Rate
    on_time_rate: Rate
    completion_rate: Rate
    satisfaction_rate: Rate
    overdue_now: int
    median_reply_days: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, "reply_rate": self.reply_rate.as_dict(),
                "on_time_rate": self.on_time_rate.as_dict(),
                "completion_rate": self.completion_rate.as_dict(),
                "satisfaction_rate": self.satisfaction_rate.as_dict(),
                "overdue_now": self.overdue_now, "median_reply_days": self.median_reply_days}


def scorecard(views: Iterable[dict[str, Any]], now: datetime) -> Scorecard:
    """Return the scorecard of a set of case views as of ``now``."""
    received = replied = assigned = closed = 0
    on_time = judged = rated = satisfied = overdue = 0
    reply_days: list[float] = []
    for v in views:
        received += 1
        if v["status"] in ("rejected", "withdrawn") or v["holder"] is None:
            continue
        assigned += 1
        if v["final_reply_at"] is not None:
            replied += 1
            if v["assigned_at"] is not None:
                reply_days.append((v["final_reply_at"] - v["assigned_at"]).total_seconds() / 86400)
        if v["status"] == "closed":
            closed += 1
        due, done = v["resolve_due_at"], v["resolve_done_at"]
        if due is not None and (done is not None or now > due):
            judged += 1
            if done is not None and done <= due:
                on_time += 1
        if v["rating"] is not None:
            rated += 1
            if v["rating"] in ("satisfied", "basically_satisfied"):
                satisfied += 1
        if v["status"] == "overdue":
            overdue += 1
    return Scorecard(received, Rate(replied, assigned), Rate(on_time, judged), Rate(closed, assigned),
                     Rate(satisfied, rated), overdue,
                     round(median(reply_days), 2) if reply_days else None)


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
