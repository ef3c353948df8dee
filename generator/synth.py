"""Synthetic archives: a seeded generator of realistic petitions and events.

``wenzheng synth`` fills a folder or a git repository with the petitions of the
fictional city 明湖市 and everything that happened to them: routing, acceptance,
replies, extensions, clarifications, transfers, closures, ratings, reopenings,
withdrawals, rejections, corrections and escalations, each by the actor allowed
to record it. It feeds the demo site, the tests and the benchmarks.

Three properties matter more than realism:

* Deterministic: one ``random.Random(seed)`` drives everything, cases are made
  in received order, and no dict order or clock is consulted, so the same seed
  and arguments give byte-identical files.
* Streaming: petitions are generated one day at a time and each case's files
  are yielded as soon as it is made, so memory does not grow with the count.
* Fast: times are whole seconds of local (+08:00) time held as ints, and YAML
  is written from templates, not through a YAML emitter.

Deadlines used here (accept within a few office hours, resolve within a
number of working days per category, escalate after it) are the generator's
own model of a department's behaviour; :class:`Knobs` exposes them so the demo
can be tuned against the real evaluator. They are not the archive's rules.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator, Sequence

from generator import synth_text as T

CITY_TZ = timezone(timedelta(hours=8))
OFFSET = 8 * 3600  # Asia/Shanghai has had no daylight saving since 1991
DAY = 86400
HOUR = 3600
# Office time on working days: 08:30-12:00 and 14:00-17:30.
OFFICE = ((8 * HOUR + 1800, 12 * HOUR), (14 * HOUR, 17 * HOUR + 1800))
OFFICE_DAY = sum(b - a for a, b in OFFICE)

PETITION_SCHEMA = "# yaml-language-server: $schema=../../../../generator/schemas/petition.schema.json\n"
EVENT_SCHEMA = "# yaml-language-server: $schema=../../../../generator/schemas/event.schema.json\n"

# Relative arrival volume per local hour of day (a hotline's day: quiet at
# night, peaks mid-morning and early afternoon).
HOUR_WEIGHTS = (3, 2, 1, 1, 1, 2, 4, 9, 16, 20, 21, 19, 13, 14, 18, 19, 17, 15, 12, 11, 10, 9, 7, 5)

TERMINAL = ("closed", "rejected", "withdrawn")


@dataclass(frozen=True)
class Knobs:
    """The tunable behaviour of the synthetic city, as rates and time limits.

    Rates are per petition unless said otherwise. The clocks are the
    generator's model of deadlines; the lead tunes them (with ``seed``) so the
    demo has cases at every escalation stage.
    """

    reject_rate: float = 0.03
    withdraw_rate: float = 0.025
    transfer_rate: float = 0.06
    clarify_rate: float = 0.05
    clarify_unanswered: float = 0.2  # of clarification requests
    extension_rate: float = 0.08
    extension_refused: float = 0.25  # of extension requests
    interim_rate: float = 0.15
    correction_rate: float = 0.02
    feedback_rate: float = 0.65  # of closed cases
    reopen_rate: float = 0.5  # of dissatisfied ratings
    late_rate: float = 0.12  # a stage finished after its due time
    late_scale_days: float = 1.5  # median lateness of a late answer, working days
    late_accept_hours: float = 2.0  # median lateness of a late acceptance, office hours
    stall_rate: float = 0.025  # departments sit on the case for weeks
    stall_days: tuple[int, int] = (8, 45)  # working days past due for a stalled case
    accept_office_hours: int = 3
    resolve_days: tuple[tuple[str, int], ...] = (
        ("consultation", 3), ("help", 5), ("complaint", 10), ("suggestion", 10), ("report", 10),
    )
    # Escalation levels crossed at these working days after the due time.
    escalation_days: tuple[int, int, int, int] = (0, 1, 3, 5)

    def resolve_limit(self, category: str) -> int:
        return dict(self.resolve_days)[category]


@dataclass(frozen=True)
class SynthSpec:
    """What to generate: how many petitions, from when, for how long, as of when."""

    count: int
    seed: int
    start: date
    months: int
    now: datetime
    knobs: Knobs = field(default_factory=Knobs)

    @property
    def end(self) -> date:
        """Return the first day after the generated window."""
        return window_end(self.start, self.months)


def window_end(start: date, months: int) -> date:
    """Return the day ``months`` after ``start`` (the day of the month clamped
    to 28, so every month has it): the first day after the window."""
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, min(start.day, 28))


@dataclass(frozen=True)
class CaseFiles:
    """One generated petition: its folder, received month and files in time order."""

    id: str
    folder: str
    files: tuple[tuple[str, bytes, int], ...]  # path, content, local time (seconds)


# ---------------------------------------------------------------------------
# Time as int seconds of local time since 1970-01-01 00:00 (+08:00)


def to_local_seconds(when: datetime) -> int:
    """Return an aware datetime as whole seconds of city local time."""
    return int(when.timestamp()) + OFFSET


def to_datetime(t: int) -> datetime:
    """Return local seconds as an aware datetime in the city's time zone."""
    return datetime.fromtimestamp(t - OFFSET, CITY_TZ)


class WorkCalendar:
    """Which days are working days, from ``chinese_calendar`` (with 调休).

    Years the library does not know fall back to Monday to Friday; this only
    shapes synthetic behaviour, deadlines proper are the evaluator's business.
    """

    def __init__(self) -> None:
        self._workday: dict[int, bool] = {}
        self._iso: dict[int, str] = {}
        self._stamp: dict[int, str] = {}

    def is_workday(self, day: int) -> bool:
        """Return whether day number ``day`` (days since 1970-01-01) is worked."""
        known = self._workday.get(day)
        if known is None:
            import chinese_calendar

            d = date.fromordinal(day + 719163)
            try:
                known = chinese_calendar.is_workday(d)
            except NotImplementedError:
                known = d.weekday() < 5
            self._workday[day] = known
        return known

    def date_iso(self, day: int) -> str:
        """Return ``YYYY-MM-DD`` of a day number."""
        text = self._iso.get(day)
        if text is None:
            text = date.fromordinal(day + 719163).isoformat()
            self._iso[day] = text
        return text

    def iso(self, t: int) -> str:
        """Return local seconds as ISO 8601 text with the +08:00 offset."""
        s = t % DAY
        return f"{self.date_iso(t // DAY)}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+08:00"

    def stamp(self, t: int) -> str:
        """Return local seconds as the UTC stamp of event file names."""
        u = t - OFFSET
        day = u // DAY
        text = self._stamp.get(day)
        if text is None:
            text = self.date_iso(day).replace("-", "")
            self._stamp[day] = text
        s = u % DAY
        return f"{text}T{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}Z"

    # Office time as a running total: ``_office[i]`` is the office seconds
    # before day ``_base + i``, so adding or measuring office time is a lookup
    # and a bisection instead of a walk over days.

    _base = 0
    _office: list[int]

    def _office_table(self, day: int) -> None:
        if not hasattr(self, "_office"):
            self._base = day - 64
            self._office = [0]
        if day < self._base:  # extend the table backwards
            start = day - 64
            head = [0]
            for d in range(start, self._base):
                head.append(head[-1] + (OFFICE_DAY if self.is_workday(d) else 0))
            shift = head.pop()
            self._office = head + [x + shift for x in self._office]
            self._base = start
        while self._base + len(self._office) <= day + 1:
            d = self._base + len(self._office) - 1
            self._office.append(self._office[-1] + (OFFICE_DAY if self.is_workday(d) else 0))

    def office_position(self, t: int) -> int:
        """Return the office seconds from the table's start to ``t``."""
        day, s = divmod(t, DAY)
        self._office_table(day)
        total = self._office[day - self._base]
        if self._office[day - self._base + 1] > total:  # a working day
            for a, b in OFFICE:
                if s > a:
                    total += (b if s > b else s) - a
        return total

    def add_office(self, t: int, seconds: int) -> int:
        """Return the moment ``seconds`` of office time after ``t`` (the start
        of the next office period when ``seconds`` is 0 and ``t`` is outside)."""
        target = self.office_position(t) + seconds
        if seconds == 0:
            target += 1  # the first office second at or after t, then step back
        while self._office[-1] < target + OFFICE_DAY:
            self._office_table(self._base + len(self._office) + 30)
        i = bisect.bisect_left(self._office, target) - 1  # the day holding it
        rest = target - self._office[i]
        day = self._base + i
        for a, b in OFFICE:
            if rest <= b - a:
                moment = day * DAY + a + rest
                return max(moment - 1, t) if seconds == 0 else moment
            rest -= b - a
        raise AssertionError("office table out of step")

    def office_between(self, t0: int, t1: int) -> int:
        """Return the office seconds between two moments."""
        return self.office_position(t1) - self.office_position(t0)

    def end_of_working_days(self, t: int, n: int) -> int:
        """Return the last second of the ``n``-th working day after ``t``'s day
        (the day of ``t`` itself does not count)."""
        day = t // DAY
        if n <= 0:
            return (day + 1) * DAY - 1
        self._office_table(day)
        target = self._office[day - self._base + 1] + n * OFFICE_DAY
        while self._office[-1] < target:
            self._office_table(self._base + len(self._office) + 30)
        i = bisect.bisect_left(self._office, target)  # first day start reaching it
        return (self._base + i) * DAY - 1


# ---------------------------------------------------------------------------
# Small helpers over the random stream


def _cumulative(pairs: Sequence[tuple[str, float]]) -> tuple[tuple[str, ...], list[float]]:
    items = tuple(p[0] for p in pairs)
    acc, cum = 0.0, []
    for _, w in pairs:
        acc += w
        cum.append(acc)
    return items, [c / acc for c in cum]


def _pick(rng: random.Random, table: tuple[tuple[str, ...], list[float]]) -> str:
    items, cum = table
    return items[min(bisect.bisect_right(cum, rng.random()), len(items) - 1)]


def _ch(rng: random.Random, seq: Sequence):
    """Return a random element (one ``random()`` call: faster than ``choice``)."""
    return seq[int(rng.random() * len(seq))]


def _ri(rng: random.Random, a: int, b: int) -> int:
    """Return a random int in [a, b]."""
    return a + int(rng.random() * (b - a + 1))


def _rr(rng: random.Random, n: int) -> int:
    """Return a random int in [0, n)."""
    return int(rng.random() * n)


def q(text: str) -> str:
    """Return text as a YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def block(key: str, text: str) -> str:
    """Return ``key: |`` and the text as a literal block indented two spaces."""
    lines = text.split("\n")
    return f"{key}: |\n" + "".join(f"  {line}\n" if line else "\n" for line in lines)


CHANNEL_TABLE = _cumulative(T.CHANNELS)
CATEGORY_TABLE = _cumulative(T.CATEGORIES)
DISTRICT_TABLE = _cumulative([(d[0], d[1]) for d in T.DISTRICTS])
DISTRICT_OFFICES = {d[0]: (d[2], d[3]) for d in T.DISTRICTS}
TOPICS_BY_CATEGORY = {c: tuple(t for t in T.TOPICS if c in t.categories) for c, _ in T.CATEGORIES}
RESOLUTION_TABLE = _cumulative([("resolved", 0.55), ("explained", 0.22), ("partly_resolved", 0.15),
                                ("not_in_remit", 0.08)])
RATING_TABLES = {
    "resolved": _cumulative([("satisfied", 0.72), ("basically_satisfied", 0.2), ("dissatisfied", 0.08)]),
    "partly_resolved": _cumulative([("satisfied", 0.3), ("basically_satisfied", 0.42), ("dissatisfied", 0.28)]),
    "explained": _cumulative([("satisfied", 0.4), ("basically_satisfied", 0.35), ("dissatisfied", 0.25)]),
    "not_in_remit": _cumulative([("satisfied", 0.2), ("basically_satisfied", 0.3), ("dissatisfied", 0.5)]),
}
REJECT_TABLE = _cumulative([("duplicate", 0.4), ("spam", 0.18), ("not_a_petition", 0.15),
                            ("out_of_scope", 0.12), ("abusive", 0.08), ("contains_personal_data", 0.07)])


def _title_kind(title: str) -> str:
    if title.startswith("建议"):
        return "proposal"
    if any(word in title for word in ("咨询", "请问", "哪里", "哪些", "如何", "怎么", "查询")):
        return "question"
    return "problem"


def departments_for(topic: T.Topic, category: str, district: str) -> tuple[str, ...]:
    """Return the departments that may handle a topic of a category in a district."""
    found = [d for d in topic.departments if category in T.DEPARTMENTS[d][1]]
    if topic.local:
        county, township = DISTRICT_OFFICES[district]
        for office in (county, township):
            if office and category in T.DEPARTMENTS[office][1]:
                found.append(office)
    if not found:
        county, _ = DISTRICT_OFFICES[district]
        found = [county] if county else [d for d in T.DEPARTMENTS if category in T.DEPARTMENTS[d][1]
                                          and T.DEPARTMENTS[d][0].startswith("市")]
    return tuple(found)


# ---------------------------------------------------------------------------
# One case


class _Case:
    """The events of one case as they are made: (time, kind, by, body lines)."""

    __slots__ = ("events", "used")

    def __init__(self) -> None:
        self.events: list[tuple[int, str, str, str]] = []
        self.used: set[int] = set()

    def add(self, t: int, kind: str, by: str, body: str = "") -> int:
        while t in self.used:  # strictly increasing times within a case
            t += 1
        self.used.add(t)
        self.events.append((t, kind, by, body))
        return t


class Synthesiser:
    """Makes the cases of one archive from a spec, one at a time, in order."""

    def __init__(self, spec: SynthSpec):
        self.spec = spec
        self.knobs = spec.knobs
        self.rng = random.Random(spec.seed)
        self.cal = WorkCalendar()
        self.now = to_local_seconds(spec.now)
        self.recent_ids: list[str] = []
        self.unseen_codes = list(REJECT_TABLE[0])
        self.retracted_once = False
        # Some departments are slower than others: scorecards should differ.
        self.sloth = {d: 0.4 + 1.4 * self.rng.random() for d in T.DEPARTMENTS}

    # -- arrivals -----------------------------------------------------------

    def arrival_days(self) -> list[tuple[int, int]]:
        """Return (day number, petitions received that day) over the window."""
        first = (self.spec.start.toordinal() - 719163)
        last = min(self.spec.end.toordinal() - 719163, self.now // DAY + 1)
        weights: list[float] = []
        days = list(range(first, last))
        for day in days:
            w = 1.0 if self.cal.is_workday(day) else 0.72
            w *= math.exp(self.rng.gauss(0, 0.12))
            if day == self.now // DAY:  # today: only the hours already past
                w *= sum(HOUR_WEIGHTS[: (self.now % DAY) // HOUR]) / sum(HOUR_WEIGHTS)
            weights.append(w)
        total = sum(weights) or 1.0
        shares = [self.spec.count * w / total for w in weights]
        counts = [int(s) for s in shares]
        order = sorted(range(len(days)), key=lambda i: (counts[i] - shares[i], i))
        for i in order[: self.spec.count - sum(counts)]:
            counts[i] += 1
        return list(zip(days, counts))

    def received_times(self, day: int, n: int) -> list[int]:
        """Return ``n`` sorted arrival times on a day, all before ``now``."""
        hours = HOUR_WEIGHTS
        if day == self.now // DAY:
            hours = HOUR_WEIGHTS[: (self.now % DAY) // HOUR] or (1,)
        table = _cumulative([(str(h), w) for h, w in enumerate(hours)])
        times = []
        for _ in range(n):
            h = int(_pick(self.rng, table))
            times.append(day * DAY + h * HOUR + _rr(self.rng, HOUR))
        times.sort()
        return [min(t, self.now - 1) for t in times]

    def cases(self) -> Iterator[CaseFiles]:
        """Yield every case in received order, ids sequential per year."""
        seq_by_year: dict[int, int] = {}
        for day, n in self.arrival_days():
            for t in self.received_times(day, n):
                year = int(self.cal.date_iso(t // DAY)[:4])
                seq = seq_by_year.get(year, 0) + 1
                seq_by_year[year] = seq
                yield self.case(f"{year}-{seq:06d}", t)

    # -- a petition ---------------------------------------------------------

    def fill(self, district: str) -> dict[str, str]:
        rng = self.rng
        return {
            "estate": _ch(rng, T.ESTATES), "road": _ch(rng, T.ROADS), "shop": _ch(rng, T.SHOPS),
            "company": _ch(rng, T.COMPANIES), "school": _ch(rng, T.SCHOOLS),
            "hospital": _ch(rng, T.HOSPITALS), "river": _ch(rng, T.RIVERS),
            "dur": _ch(rng, T.DURATIONS), "n": str(_ri(rng, 2, 9)),
            "bus": str(_ri(rng, 1, 120)), "district": district,
        }

    def wording(self, topic: T.Topic, category: str, fill: dict[str, str]) -> tuple[str, str]:
        """Return a title and body for a topic that read as the category's kind
        of petition (a question for 咨询, a proposal for 建议)."""
        rng = self.rng
        kinds = [_title_kind(t) for t in topic.titles]
        wanted = {"consultation": "question", "suggestion": "proposal"}.get(category, "problem")
        fitting = [i for i, kind in enumerate(kinds) if kind == wanted]
        i = _ch(rng, fitting) if fitting else _ch(rng, [i for i, k in enumerate(kinds) if k == "problem"]
                                                             or range(len(kinds)))
        title = topic.titles[i].format(**fill)
        body = (topic.bodies[i] if i < len(topic.bodies) else _ch(rng, topic.bodies)).format(**fill)
        if not fitting and wanted == "question":
            title, body = f"咨询：{title}", f"{body}\n请问这种情况应该找哪个部门，怎么处理？"
        elif not fitting and wanted == "proposal":
            title, body = f"建议解决{title}的问题", f"{body}\n建议有关部门建立长效机制。"
        return title[:100], body

    def display_name(self, channel: str) -> str:
        rng = self.rng
        if channel in ("phone", "visit", "letter"):
            return f"热线市民 {_rr(rng, 16 ** 4):04X}"
        style = rng.random()
        if style < 0.45:
            c = T.HANDLE_CHARS
            handle = _ch(rng, c) + _ch(rng, c) + f"{_rr(rng, 100):02d}" + _ch(rng, c) + _ch(rng, c)
        elif style < 0.85:
            handle = _ch(rng, T.NICK_WORDS) + str(_ch(rng, (_ri(rng, 1970, 2010), _ri(rng, 1, 999))))
        else:
            return "匿名网友"
        return f"网友 {handle}"

    def case(self, pid: str, received: int) -> CaseFiles:
        """Return one case: the petition and the events up to ``now``."""
        rng, cal = self.rng, self.cal
        channel = _pick(rng, CHANNEL_TABLE)
        category = _pick(rng, CATEGORY_TABLE)
        district = _pick(rng, DISTRICT_TABLE)
        topic = _ch(rng, TOPICS_BY_CATEGORY[category])
        fill = self.fill(district)
        title, body = self.wording(topic, category, fill)
        if rng.random() < 0.5:
            body += "\n" + _ch(rng, T.ADDONS)
        candidates = departments_for(topic, category, district)
        dept = _ch(rng, candidates)

        lines = [PETITION_SCHEMA, f'id: "{pid}"\n', f"received_at: {cal.iso(received)}\n",
                 f"channel: {channel}\n", f"category: {category}\n", f"title: {q(title)}\n",
                 block("body", body), "petitioner:\n",
                 f"  display_name: {q(self.display_name(channel))}\n", "location:\n",
                 f"  district: {q(district)}\n"]
        if rng.random() < 0.7:
            lines.append(f"  address: {q(fill['road'] if rng.random() < 0.5 else fill['estate'])}\n")
        petition_text = "".join(lines)

        case = _Case()
        self.lifecycle(case, pid, received, category, topic, fill, title, dept, candidates, district)
        folder = f"petitions/{cal.date_iso(received // DAY)[:4]}/{cal.date_iso(received // DAY)[5:7]}/{pid}"
        files = [(f"{folder}/petition.yaml", petition_text.encode("utf-8"), received)]
        seen: dict[str, int] = {}
        for t, kind, by, extra in sorted(case.events):
            if t > self.now:
                break
            name = self.file_name(kind, t, seen)
            text = f"{EVENT_SCHEMA}kind: {kind}\nat: {cal.iso(t)}\nby: {by}\n{extra}"
            files.append((f"{folder}/{name}", text.encode("utf-8"), t))
        self.recent_ids.append(pid)
        if len(self.recent_ids) > 200:
            del self.recent_ids[:100]
        return CaseFiles(pid, folder, tuple(files))

    def file_name(self, kind: str, t: int, seen: dict[str, int]) -> str:
        base = f"{self.cal.stamp(t)}-{kind}"
        n = seen.get(base, 0) + 1
        seen[base] = n
        return f"{base}.yaml" if n == 1 else f"{base}-{n}.yaml"

    # -- actors' timing -----------------------------------------------------

    def centre_time(self, t: int, fast: bool = True) -> int:
        """Return when the round-the-clock centre acts after ``t``."""
        rng = self.rng
        hour = (t % DAY) // HOUR
        if fast and 7 <= hour < 22:
            return t + _ri(rng, 300, 2 * HOUR)
        if fast and rng.random() < 0.5:
            return t + _ri(rng, 600, 3 * HOUR)
        return self.cal.add_office(t, _ri(rng, 600, 4 * HOUR))

    def dept_time(self, t: int, office_seconds: int) -> int:
        """Return when a department acts: ``office_seconds`` of office time on."""
        out = self.cal.add_office(t, max(60, office_seconds))
        if self.rng.random() < 0.04:  # overtime in the evening
            out = (out // DAY) * DAY + 18 * HOUR + _rr(self.rng, 3 * HOUR)
            out = max(out, t + 60)
        return out

    def citizen_time(self, t: int, lo: int, hi: int) -> int:
        """Return when a citizen acts, between ``lo`` and ``hi`` seconds later,
        mostly in waking hours."""
        out = t + _ri(self.rng, lo, hi)
        hour = (out % DAY) // HOUR
        if hour < 7 and self.rng.random() < 0.8:
            out = (out // DAY) * DAY + 7 * HOUR + _rr(self.rng, 3 * HOUR)
        return out

    def finish_time(self, start: int, due: int, dept: str, stalled: bool = False,
                    late_scale: int = 0) -> int:
        """Return when a department finishes a stage begun at ``start`` and due
        at ``due``: mostly in time, sometimes late, rarely weeks late.
        ``late_scale`` is the median lateness in office seconds."""
        rng, k = self.rng, self.knobs
        if stalled:
            return self.dept_time(self.cal.end_of_working_days(due, _ri(rng, *k.stall_days)) - DAY,
                                  _rr(rng, 7 * HOUR))
        if rng.random() < k.late_rate * self.sloth[dept]:
            scale = late_scale or int(k.late_scale_days * 7 * HOUR)
            return self.cal.add_office(due, max(600, int(rng.lognormvariate(math.log(scale), 1.0))))
        span = self.cal.office_between(start, due)
        return self.cal.add_office(start, int(span * rng.uniform(0.15, 0.95)) + 60)

    # -- the life of a case -------------------------------------------------

    def lifecycle(self, case: _Case, pid: str, received: int, category: str, topic: T.Topic,
                  fill: dict[str, str], title: str, dept: str, candidates: tuple[str, ...],
                  district: str) -> None:
        rng, k, cal = self.rng, self.knobs, self.cal
        if rng.random() < k.reject_rate:
            # Every reason code shows up early, so even a small archive has them all.
            code = self.unseen_codes.pop(0) if self.unseen_codes else _pick(rng, REJECT_TABLE)
            extra = f"reason_code: {code}\n"
            if code == "duplicate":
                if self.recent_ids:
                    extra += f'duplicate_of: "{_ch(rng, self.recent_ids[-50:])}"\n'
                else:
                    self.unseen_codes.append(code)
                    extra = "reason_code: spam\n"
                    code = "spam"
                    if code in self.unseen_codes:
                        self.unseen_codes.remove(code)
            extra += f"note: {q(T.REJECT_NOTES[code])}\n"
            case.add(self.centre_time(received), "rejected", "centre", extra)
            return

        limit = k.resolve_limit(category)
        escalations: list[tuple[str, str, int, int]] = []  # stage, dept, due, done
        t = case.add(self.centre_time(received), "assigned", "centre",
                     f"to: {dept}\n" + (f"note: {q(_ch(rng, T.NOTES['assigned']))}\n"
                                        if rng.random() < 0.2 else ""))
        assigned_at = t
        stalled = rng.random() < k.stall_rate

        # Acceptance, perhaps after a transfer.
        transfer = rng.random() < k.transfer_rate and len(T.DEPARTMENTS) > 1
        others = [d for d in T.DEPARTMENTS if d != dept and category in T.DEPARTMENTS[d][1]]
        holder = dept
        for round_ in range(2 if transfer else 1):
            accept_due = cal.add_office(t, k.accept_office_hours * HOUR)
            if transfer and round_ == 0 and rng.random() < 0.4:
                # The department refuses to sign; the centre reroutes it.
                moved = self.centre_time(self.dept_time(t, _ri(rng, HOUR, 5 * HOUR)), fast=False)
                new_holder, body = self.transfer_body(holder, others, candidates)
                t = case.add(moved, "transferred", "centre", body)
                escalations.append(("accept", holder, accept_due, t))
                holder = new_holder
                continue
            accepted = self.finish_time(t, accept_due, holder,
                                        late_scale=int(k.late_accept_hours * HOUR))
            escalations.append(("accept", holder, accept_due, accepted))
            t = case.add(max(accepted, t + 60), "accepted", holder,
                         f"note: {q(_ch(rng, T.NOTES['accepted']))}\n" if rng.random() < 0.15 else "")
            if transfer and round_ == 0:
                moved = self.dept_time(t, _ri(rng, HOUR, 3 * 7 * HOUR))
                new_holder, body = self.transfer_body(holder, others, candidates)
                t = case.add(self.centre_time(moved, fast=False), "transferred", "centre", body)
                holder = new_holder
        stage_start = t
        resolve_due = cal.end_of_working_days(stage_start, limit)

        # Interim reply, clarification and extension happen before the answer.
        if rng.random() < k.interim_rate:
            t = case.add(self.dept_time(t, _ri(rng, 2 * HOUR, 14 * HOUR)), "reply", holder,
                         "final: false\n" + block("body", self.interim_text(topic, fill)))
            if not self.retracted_once or rng.random() < k.correction_rate:
                # Posted to the wrong case: the department retracts it (the
                # first time always, so every archive shows a retraction).
                self.retracted_once = True
                t = case.add(self.dept_time(t, _ri(rng, 600, 2 * HOUR)), "correction", holder,
                             f"corrects: {cal.stamp(t)}-reply.yaml\n"
                             f"reason: {q(T.CORRECTION_REASONS[2])}\nretract: true\n")
        if rng.random() < k.clarify_rate:
            asked = case.add(self.dept_time(t, _ri(rng, HOUR, 7 * HOUR)), "clarification_requested",
                             holder, block("body", _ch(rng, T.CLARIFY_REQUESTS)))
            if rng.random() < k.clarify_unanswered:
                # The clock stays stopped; the resolve stage waits on the citizen.
                escalations.append(("resolve", holder, resolve_due, asked))
                self.add_escalations(case, escalations)
                if rng.random() < 0.3:
                    self.withdraw(case, self.citizen_time(asked, DAY, 10 * DAY))
                return
            by = "petitioner" if rng.random() < 0.85 else "centre"
            answered = case.add(self.citizen_time(asked, 1800, 4 * DAY), "clarification_received", by,
                                block("body", _ch(rng, T.CLARIFY_ANSWERS).format(**fill)))
            resolve_due += answered - asked
            t = answered
        if rng.random() < k.extension_rate:
            ask_at = max(t + 60, cal.add_office(max(stage_start, resolve_due - 2 * DAY), _rr(rng, 7 * HOUR)))
            asked_due = cal.end_of_working_days(resolve_due, _ri(rng, 5, 10))
            request = case.add(self.dept_time(ask_at, 600), "extension_requested", holder,
                               f"reason: {q(_ch(rng, T.EXTENSION_REASONS))}\n"
                               f"new_due: {cal.date_iso(asked_due // DAY)}\n")
            decided = self.dept_time(request, _ri(rng, 1800, 6 * HOUR))
            request_name = f"{cal.stamp(request)}-extension_requested.yaml"
            if rng.random() < k.extension_refused:
                t = case.add(decided, "extension_decided", "centre",
                             f"request: {request_name}\ndecision: refused\n"
                             f"reason: {q(_ch(rng, T.EXTENSION_REFUSALS))}\n")
            else:
                granted = asked_due if rng.random() < 0.8 else cal.end_of_working_days(resolve_due, 3)
                t = case.add(decided, "extension_decided", "centre",
                             f"request: {request_name}\ndecision: approved\n"
                             f"new_due: {cal.date_iso(granted // DAY)}\n"
                             f"reason: {q(_ch(rng, T.EXTENSION_APPROVALS))}\n")
                resolve_due = max(resolve_due, granted)
            t = max(t, stage_start)

        withdraw_at = None
        if rng.random() < k.withdraw_rate:
            withdraw_at = self.citizen_time(assigned_at, HOUR, 6 * DAY)

        # The answer, the closure, the rating; a dissatisfied rating may reopen it.
        for attempt in range(3):
            done = max(self.finish_time(stage_start, resolve_due, holder, stalled and attempt == 0), t + 600)
            if withdraw_at is not None and withdraw_at < done:
                escalations.append(("resolve", holder, resolve_due, withdraw_at))
                self.add_escalations(case, escalations)
                self.drop_after(case, withdraw_at)
                self.withdraw(case, withdraw_at)
                return
            escalations.append(("resolve", holder, resolve_due, done))
            resolution = _pick(rng, RESOLUTION_TABLE)
            reply_at = case.add(done, "reply", holder,
                                f"final: true\nresolution: {resolution}\n"
                                + block("body", self.reply_text(holder, topic, fill, title, resolution, done)))
            if attempt == 0 and rng.random() < k.correction_rate:
                self.correct(case, reply_at, holder, topic, fill, title)
            closed = case.add(self.dept_time(reply_at, _ri(rng, 1800, 10 * HOUR)), "closed", "centre",
                              f"note: {q(_ch(rng, T.NOTES['closed']))}\n" if rng.random() < 0.2 else "")
            if rng.random() >= k.feedback_rate:
                break
            rating = _pick(rng, RATING_TABLES[resolution])
            if done > resolve_due and rating == "satisfied" and rng.random() < 0.4:
                rating = "basically_satisfied"
            comment = f"comment: {q(_ch(rng, T.COMMENTS[rating]))}\n" if rng.random() < 0.5 else ""
            rated = case.add(self.citizen_time(closed, HOUR, 4 * DAY), "feedback", "petitioner",
                             f"rating: {rating}\n{comment}")
            if rating != "dissatisfied" or rng.random() >= k.reopen_rate or attempt == 2:
                break
            t = case.add(self.dept_time(rated, _ri(rng, 1800, 7 * HOUR)), "reopened", "centre",
                         f"reason: {q(_ch(rng, T.REOPEN_REASONS))}\n")
            stage_start = t
            resolve_due = cal.end_of_working_days(t, limit)
        if rng.random() < k.correction_rate / 2:
            self.correct_petition(case, received)
        self.add_escalations(case, escalations)

    def transfer_body(self, holder: str, others: list[str],
                      candidates: tuple[str, ...]) -> tuple[str, str]:
        """Return the department a case moves to and the transfer's body."""
        rng = self.rng
        pool = [d for d in candidates if d != holder] or others
        to = _ch(rng, pool)
        reason = _ch(rng, T.TRANSFER_REASONS).format(to=T.DEPARTMENTS[to][0])
        return to, f"from: {holder}\nto: {to}\nreason: {q(reason)}\n"

    def withdraw(self, case: _Case, at: int) -> None:
        """Add the petitioner's withdrawal at ``at`` (after every event so far)."""
        at = max(at, max(e[0] for e in case.events) + 60)
        body = f"reason: {q(_ch(self.rng, T.WITHDRAW_REASONS))}\n" if self.rng.random() < 0.8 else ""
        case.add(at, "withdrawn", "petitioner", body)

    @staticmethod
    def drop_after(case: _Case, t: int) -> None:
        case.events[:] = [e for e in case.events if e[0] < t]
        case.used = {e[0] for e in case.events}

    def correct(self, case: _Case, reply_at: int, holder: str, topic: T.Topic,
                fill: dict[str, str], title: str) -> None:
        """Add a correction by the reply's author amending its body."""
        rng, cal = self.rng, self.cal
        at = self.dept_time(reply_at, _ri(rng, 600, 5 * HOUR))
        target = f"{cal.stamp(reply_at)}-reply.yaml"
        text = self.reply_text(holder, topic, fill, title, "resolved", reply_at)
        case.add(at, "correction", holder,
                 f"corrects: {target}\nreason: {q(_ch(rng, T.CORRECTION_REASONS[:2]))}\nset:\n"
                 f"  body: {q(text)}\n")

    def correct_petition(self, case: _Case, received: int) -> None:
        """Add the centre's correction of the petition's title (masking a house number)."""
        first = case.events[0][0] if case.events else received
        case.add(first + _ri(self.rng, 600, DAY), "correction", "centre",
                 f"corrects: petition.yaml\nreason: {q(T.CORRECTION_REASONS[3])}\nset:\n"
                 f"  title: {q('（已遮盖门牌号）' + _ch(self.rng, T.ROADS) + '附近的问题')}\n")

    def add_escalations(self, case: _Case, stages: Iterable[tuple[str, str, int, int]]) -> None:
        """Add the scheduled run's escalations for stages finished late (or not
        yet): one per level crossed before the stage was done; the run is hourly
        at five past the hour."""
        cal = self.cal
        for stage, dept, due, done in stages:
            if done <= due:
                continue
            for level, days in zip(("reminder", "notice", "supervision", "accountability"),
                                   self.knobs.escalation_days):
                threshold = due if days == 0 else cal.end_of_working_days(due, days)
                run = (threshold // HOUR + 1) * HOUR + 300
                if run >= done:
                    break
                case.add(run, "escalated", "system",
                         f"level: {level}\nstage: {stage}\ndepartment: {dept}\ndue_at: {cal.iso(due)}\n")

    # -- words --------------------------------------------------------------

    def interim_text(self, topic: T.Topic, fill: dict[str, str]) -> str:
        return ("您好！您反映的问题已收悉，我们已安排工作人员核实情况。\n"
                f"目前{topic.partial.format(**fill)}，办理结果将及时答复您。")

    def reply_text(self, holder: str, topic: T.Topic, fill: dict[str, str], title: str,
                   resolution: str, at: int) -> str:
        name = T.DEPARTMENTS[holder][0]
        day = self.cal.date_iso(at // DAY)
        when = f"{int(day[5:7])}月{int(day[8:10])}日"
        head = f"您好！您反映的“{title}”问题已收悉，{name}高度重视。"
        if resolution == "resolved":
            body = f"{when}，工作人员到现场核实，{topic.action.format(**fill)}。"
        elif resolution == "partly_resolved":
            body = f"经核实，{topic.partial.format(**fill)}，我们将持续跟进，直至问题彻底解决。"
        elif resolution == "explained":
            body = f"经核实，{topic.explain.format(**fill)}。"
        else:
            body = "经核实，该事项不属于本单位职责范围，建议向相关主管部门反映，我们已将情况告知12345热线。"
        return f"{head}\n{body}\n感谢您对我们工作的理解和支持。如有疑问，请拨打12345热线。"


def synth_cases(spec: SynthSpec) -> Iterator[CaseFiles]:
    """Yield the cases of a synthetic archive in received order (streaming)."""
    return Synthesiser(spec).cases()


def archive_files(spec: SynthSpec) -> Iterator[tuple[str, bytes]]:
    """Yield (repository path, content) of every file of a synthetic archive."""
    for case in synth_cases(spec):
        for path, content, _ in case.files:
            yield path, content


# ---------------------------------------------------------------------------
# Writing an archive: into a folder, or as commits of a git repository


class SynthError(RuntimeError):
    """The archive cannot be written where asked; the message says why and what to do."""


@dataclass(frozen=True)
class SynthSummary:
    """What a synth run wrote."""

    petitions: int
    files: int
    bytes: int
    commits: int = 0
    head: str | None = None


Progress = Callable[[int], None]


def write_into(spec: SynthSpec, root, replace: bool = False,
               progress: Progress | None = None) -> SynthSummary:
    """Write a synthetic archive under ``root/petitions`` and return a summary.

    The files are written to a temporary folder beside it and moved into place
    at the end, so a failed run leaves nothing half-written.
    """
    import os
    import shutil
    import tempfile
    from pathlib import Path

    root = Path(root)
    target = root / "petitions"
    if target.exists() and any(target.iterdir()) and not replace:
        raise SynthError(f"{target} already holds files; remove it or pass --replace to overwrite it")
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".petitions-", dir=root))
    petitions = files = size = 0
    try:
        for case in synth_cases(spec):
            folder = staging / case.folder[len("petitions/"):]
            os.makedirs(folder)
            for path, content, _ in case.files:
                (folder / path.rsplit("/", 1)[1]).write_bytes(content)
                files += 1
                size += len(content)
            petitions += 1
            if progress:
                progress(1)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SynthSummary(petitions, files, size)


def _epoch(t: int) -> int:
    return t - OFFSET


def _month_end(month: int) -> int:
    """Return the last local second of a month key ``YYYYMM``."""
    year, m = divmod(month, 100)
    nxt = date(year + m // 12, m % 12 + 1, 1)
    return (nxt.toordinal() - 719163) * DAY - 1


def _month_of(t: int, cal: WorkCalendar) -> int:
    text = cal.date_iso(t // DAY)
    return int(text[:4]) * 100 + int(text[5:7])


def write_repo(spec: SynthSpec, repo, branch: str = "main", commit_per_month: bool = False,
               extra_files: Sequence[tuple[str, bytes]] = (),
               progress: Progress | None = None) -> SynthSummary:
    """Write a synthetic archive as commits of the git repository ``repo`` and
    return a summary.

    The repository is created when missing; otherwise the commits go on top of
    ``branch``, which must not hold ``petitions/`` yet (its other top-level
    files are kept). ``extra_files`` (the city's ``departments.yaml``,
    ``rules.yaml``, ``mkdocs.yml``) go into the first commit. With
    ``commit_per_month`` every commit holds the files whose time falls in one
    month and is dated at that month's end (or ``now``); that mode keeps one
    tree id per petition in memory, the single commit only one month's.

    Objects go straight into one pack (:mod:`generator.gitpack`). A repository
    this creates checks out only its top-level files: the archive is read from
    git objects, and checking out millions of files is slow.
    """
    from pathlib import Path

    from generator import gitio
    from generator.gitpack import FILE_MODE, TREE_MODE, PackWriter

    repo = Path(repo)
    created = not (repo / ".git").exists() and not (repo / "HEAD").exists()
    if created:
        gitio.init_repo(repo, branch)
    ref = f"refs/heads/{branch}"
    parent = gitio.rev_parse(repo, ref)
    kept: list[tuple[bytes, str, bytes]] = []
    if parent:
        for entry in gitio.ls_tree_top(repo, parent):
            if entry[1] == "petitions":
                raise SynthError(
                    f"{repo} already has petitions/ on {branch}; synth writes a whole archive. "
                    "Use a new repository, or `wenzheng synth --changes N --repo PATH` to add events to this one"
                )
            kept.append(entry)
    cal = WorkCalendar()
    now = to_local_seconds(spec.now)
    counts = {"petitions": 0, "files": 0, "bytes": 0, "commits": 0}
    pack = PackWriter(repo)

    extra: list[tuple[bytes, str, bytes]] = []

    def root_tree(petitions: bytes, first: bool) -> bytes:
        if first:
            extra.extend((FILE_MODE, name, pack.blob(content)) for name, content in extra_files)
        names = {e[1] for e in extra}
        entries = [e for e in kept if e[1] not in names] + extra
        entries.append((TREE_MODE, "petitions", petitions))
        return pack.tree(entries)

    def petitions_tree(months: dict[str, dict[str, bytes]]) -> bytes:
        return pack.tree([(TREE_MODE, year, pack.tree([(TREE_MODE, m, t) for m, t in sorted(ms.items())]))
                          for year, ms in sorted(months.items())])

    message = (f"Synthetic archive of 明湖市: {spec.count} petitions from {spec.start.isoformat()}, "
               f"{spec.months} months, seed {spec.seed}\n\nWritten by `wenzheng synth`; every record is invented.\n")
    try:
        head = parent
        if not commit_per_month:
            # Cases come in received order, so a month's folder is complete as
            # soon as the next month starts: write its tree and forget it.
            month_trees: dict[str, dict[str, bytes]] = {}
            current: tuple[str, str] | None = None
            entries: list[tuple[bytes, str, bytes]] = []
            for case in synth_cases(spec):
                _, year, month, _ = case.folder.split("/")
                if (year, month) != current:
                    if current:
                        month_trees.setdefault(current[0], {})[current[1]] = pack.tree(entries)
                    current, entries = (year, month), []
                files = []
                for path, content, _ in case.files:
                    files.append((FILE_MODE, path.rsplit("/", 1)[1], pack.blob(content)))
                    counts["files"] += 1
                    counts["bytes"] += len(content)
                entries.append((TREE_MODE, case.id, pack.tree(files)))
                counts["petitions"] += 1
                if progress:
                    progress(1)
            if current:
                month_trees.setdefault(current[0], {})[current[1]] = pack.tree(entries)
            head = pack.commit(root_tree(petitions_tree(month_trees), True),
                               [parent] if parent else [], message, _epoch(now))
            counts["commits"] = 1
        else:
            head = _write_monthly(spec, pack, cal, now, parent, root_tree, petitions_tree, counts, progress)
        pack.finish()
    except BaseException:
        pack.abort()
        raise
    gitio.git(repo, "update-ref", ref, head, parent or "")
    if created:
        _checkout_top_level(repo, branch)
    counts["files"] += len(extra_files)
    counts["bytes"] += sum(len(c) for _, c in extra_files)
    return SynthSummary(counts["petitions"], counts["files"], counts["bytes"], counts["commits"], head)


def _write_monthly(spec, pack, cal, now, parent, root_tree, petitions_tree, counts, progress) -> str:
    """Write one commit per month of record times; return the last commit id."""
    from generator.gitpack import FILE_MODE, TREE_MODE

    pending: dict[int, list[tuple[str, str, bytes]]] = {}  # month -> (folder, name, content)
    waiting: dict[str, int] = {}  # folder -> files not yet committed
    folder_files: dict[str, list[tuple[bytes, str, bytes]]] = {}
    month_dirs: dict[tuple[str, str], dict[str, bytes]] = {}
    month_trees: dict[str, dict[str, bytes]] = {}
    head = parent
    first = True

    def flush(upto: int) -> None:
        nonlocal head, first
        for month in sorted(m for m in pending if m < upto):
            touched: set[str] = set()
            for folder, name, content in pending.pop(month):
                folder_files.setdefault(folder, []).append((FILE_MODE, name, pack.blob(content)))
                counts["files"] += 1
                counts["bytes"] += len(content)
                touched.add(folder)
                waiting[folder] -= 1
            dirs: set[tuple[str, str]] = set()
            for folder in sorted(touched):
                _, year, mm, pid = folder.split("/")
                month_dirs.setdefault((year, mm), {})[pid] = pack.tree(folder_files[folder])
                dirs.add((year, mm))
                if not waiting[folder]:
                    del waiting[folder], folder_files[folder]
            for year, mm in sorted(dirs):
                month_trees.setdefault(year, {})[mm] = pack.tree(
                    [(TREE_MODE, pid, t) for pid, t in month_dirs[(year, mm)].items()])
            when = min(_month_end(month), now)
            label = f"{month // 100}-{month % 100:02d}"
            head = pack.commit(root_tree(petitions_tree(month_trees), first), [head] if head else [],
                               f"Synthetic archive of 明湖市: the records of {label} (seed {spec.seed})\n",
                               _epoch(when))
            first = False
            counts["commits"] += 1

    for case in synth_cases(spec):
        flush(_month_of(case.files[0][2], cal))
        waiting[case.folder] = len(case.files)
        for path, content, t in case.files:
            pending.setdefault(_month_of(t, cal), []).append((case.folder, path.rsplit("/", 1)[1], content))
        counts["petitions"] += 1
        if progress:
            progress(1)
    flush(10 ** 9)
    return head


def _checkout_top_level(repo, branch: str) -> None:
    """Check out only the top-level files of a fresh repository (sparse cone
    with a sparse index), so its index and working tree match ``HEAD``."""
    from generator import gitio

    gitio.git(repo, "sparse-checkout", "init", "--cone", "--sparse-index")
    gitio.git(repo, "checkout", "-q", "-f", branch)


# ---------------------------------------------------------------------------
# A small change on top of an archive: the next step of a few open cases


@dataclass(frozen=True)
class ChangeSummary:
    """The commit a change added and the files in it."""

    commit: str
    base: str
    files: tuple[str, ...]


_NEXT = {
    "assigned": "accepted", "transferred": "accepted", "accepted": "reply",
    "clarification_received": "reply", "extension_decided": "reply", "reopened": "reply",
    "reply": "reply", "clarification_requested": "clarification_received",
    "extension_requested": "extension_decided",
}
_SIDE_KINDS = ("escalated", "correction", "feedback")


def append_changes(repo, count: int, seed: int, now: datetime, branch: str = "main") -> ChangeSummary:
    """Add one commit with ``count`` new event files, each the next step of a
    different open case (acceptance, answer, closure...), and return it.

    This is the "small pull request" of the benchmarks: the events are dated
    shortly before ``now`` and obey the same roles as the generated archive.
    """
    import yaml
    from pathlib import Path

    from generator import gitio, records

    repo = Path(repo)
    ref = f"refs/heads/{branch}"
    base = gitio.rev_parse(repo, ref)
    if not base:
        raise SynthError(f"{repo} has no branch {branch} to add changes to; run `wenzheng synth --repo` first")
    folders: dict[str, list[str]] = {}
    for line in gitio.git(repo, "ls-tree", "-r", "--name-only", "-z", base, "--", "petitions").split(b"\0"):
        if line:
            folder, _, name = line.decode("utf-8").rpartition("/")
            folders.setdefault(folder, []).append(name)
    rng = random.Random(seed)
    open_cases = []
    for folder in sorted(folders):
        kinds = [m.group("kind") for n in sorted(folders[folder])
                 if (m := records.EVENT_FILE_RE.match(n)) and m.group("kind") not in _SIDE_KINDS]
        if kinds and kinds[-1] in _NEXT:
            open_cases.append(folder)
    rng.shuffle(open_cases)
    cal = WorkCalendar()
    now_s = to_local_seconds(now)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    added: list[tuple[str, bytes]] = []
    for folder in open_cases:
        if len(added) >= count:
            break
        names = sorted(folders[folder])
        entries = {e.path: e.oid for e in gitio.ls_tree(repo, base, [folder])}
        blobs = gitio.read_blobs(repo, entries.values())
        events = [yaml.load(blobs[entries[f"{folder}/{n}"]], Loader=loader) for n in names if n != "petition.yaml"]
        main = [e for e in events if e["kind"] not in _SIDE_KINDS]
        last_at = max(to_local_seconds(_aware(e["at"])) for e in events)
        at = now_s - 60 * len(added) - _rr(rng, 60)
        if at <= last_at:
            continue
        holder = next(e["to"] for e in reversed(main) if e["kind"] in ("assigned", "transferred"))
        last = main[-1]
        kind = _NEXT[last["kind"]]
        if kind == "reply" and last["kind"] == "reply" and last.get("final"):
            kind, body, by = "closed", "", "centre"
        elif kind == "accepted":
            body, by = "", holder
        elif kind == "reply":
            body, by = ("final: true\nresolution: resolved\n"
                        + block("body", "您好！您反映的问题已处理完毕，感谢您的监督。")), holder
        elif kind == "clarification_received":
            body, by = block("body", "已按要求补充了具体位置。"), "petitioner"
        else:
            request = [n for n in names if "-extension_requested" in n][-1]
            new_due = last["new_due"]
            body = (f"request: {request}\ndecision: approved\nnew_due: {new_due}\n"
                    f"reason: {q(T.EXTENSION_APPROVALS[0])}\n")
            by = "centre"
        name = f"{cal.stamp(at)}-{kind}.yaml"
        text = f"{EVENT_SCHEMA}kind: {kind}\nat: {cal.iso(at)}\nby: {by}\n{body}"
        added.append((f"{folder}/{name}", text.encode("utf-8")))
    if len(added) < count:
        raise SynthError(f"only {len(added)} open cases in {repo} can take a new event before {now.isoformat()}; "
                         "ask for fewer changes or a later --now")
    with gitio.ArchiveWriter(repo, ref) as fi:
        fi.commit(added, f"Synthetic activity: {len(added)} new events\n", _epoch(now_s), parent=base)
    head = gitio.rev_parse(repo, ref)
    assert head
    _refresh_index(repo, branch)
    return ChangeSummary(head, base, tuple(p for p, _ in added))


def _aware(value) -> datetime:
    """Return a YAML time (a datetime from the safe loader, or text) as aware."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _refresh_index(repo, branch: str) -> None:
    """Bring the index of a repository checked out on ``branch`` up to its new
    head, so the commit written behind git's back does not show as undone."""
    from generator import gitio

    current = gitio.git(repo, "symbolic-ref", "-q", "HEAD").decode().strip() if \
        (repo / ".git").exists() else ""
    if current == f"refs/heads/{branch}":
        gitio.git(repo, "reset", "-q")
