"""Synthetic archives: a seeded generator of realistic petitions and events.

``wenzheng synth`` fills a folder or a git repository with the petitions of the
fictional city 明湖市 and everything that happened to them: routing, acceptance,
replies, extensions, clarifications, transfers, closures, ratings, reopenings,
withdrawals, rejections, corrections and escalations, each by the actor allowed
to record it. It feeds the demo site, the tests and the benchmarks.

Four properties matter more than realism:

* Lawful by construction: the archive follows its own ``rules.yaml``. Working
  days and office hours come from the rules' calendar
  (:mod:`generator.calendar`), every due time the actors aim at from
  :func:`generator.rules.stage_deadline`, and every ``escalated`` record is
  written by :mod:`generator.escalate` itself, at the times of an hourly
  scheduled run (five past the hour) replayed over the case: so ``wenzheng
  check`` accepts it and ``wenzheng escalate`` at ``now`` has nothing to add.
* Deterministic: one ``random.Random(seed)`` drives everything, cases are made
  in received order, and no dict order or clock is consulted, so the same seed,
  arguments and rules give byte-identical files. The petitions themselves (and
  the centre's corrections of them) are drawn from that stream; each case's
  life from a stream of its own seeded from it, so a change in how cases are
  handled does not change which petitions arrive.
* Streaming: petitions are generated one day at a time and each case's files
  are yielded as soon as it is made, so memory does not grow with the count.
* Fast: the actors' times are whole seconds of city local time held as ints
  (the city's time zone must keep one UTC offset over the window), and YAML is
  written from templates, not through a YAML emitter.

What the actors do (how often they are late, stall, ask for more time...) is
the generator's model of a city, tuned by :class:`Knobs`; when they must act
is the rules'.
"""

from __future__ import annotations

import bisect
import json
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator, Sequence

from generator import records as r
from generator import synth_text as T
from generator.escalate import due_escalations, escalation_files
from generator.evaluate import evaluate_case
from generator.rules import Rules, RuleSet, RulesError, extension_cap, read_rules, stage_deadline

DAY = 86400
HOUR = 3600
EPOCH_DAY = 719163  # date(1970, 1, 1).toordinal()

PETITION_SCHEMA = "# yaml-language-server: $schema=../../../../generator/schemas/petition.schema.json\n"
EVENT_SCHEMA = "# yaml-language-server: $schema=../../../../generator/schemas/event.schema.json\n"

# Relative arrival volume per local hour of day (a hotline's day: quiet at
# night, peaks mid-morning and early afternoon).
HOUR_WEIGHTS = (3, 2, 1, 1, 1, 2, 4, 9, 16, 20, 21, 19, 13, 14, 18, 19, 17, 15, 12, 11, 10, 9, 7, 5)
# The scheduled escalation run of the synthetic city: hourly, at five past.
RUN_MINUTE = 5

TERMINAL = ("closed", "rejected", "withdrawn")


@dataclass(frozen=True)
class Knobs:
    """The tunable behaviour of the synthetic city, as rates and delays.

    Rates are per petition unless said otherwise. Due times are not knobs:
    they come from rules.yaml. The lead tunes these (with ``seed``) so the
    demo has cases at every escalation level.
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
    # What a department aims at when rules.yaml clocks no stage of that name.
    accept_office_hours: int = 3
    resolve_working_days: int = 5


@dataclass(frozen=True)
class SynthSpec:
    """What to generate: how many petitions, from when, for how long, as of
    when, under which rules (``rules``: the archive's own rules.yaml, see
    :func:`load_rules`; the writers read it from the archive when it is None)."""

    count: int
    seed: int
    start: date
    months: int
    now: datetime
    knobs: Knobs = field(default_factory=Knobs)
    rules: Rules | None = None

    @property
    def end(self) -> date:
        """Return the first day after the generated window."""
        return window_end(self.start, self.months)


def window_end(start: date, months: int) -> date:
    """Return the day ``months`` after ``start`` (the day of the month clamped
    to 28, so every month has it): the first day after the window."""
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, min(start.day, 28))


def load_rules(text: str | bytes, path: str = "rules.yaml") -> Rules:
    """Return the rules a synthetic archive follows, from rules.yaml's text.

    Raises :class:`SynthError` naming every error of the file."""
    try:
        return read_rules(text, path, cross_check=False)
    except RulesError as exc:
        raise SynthError(f"{path} has errors, so no archive can follow it; fix them first "
                         f"(wenzheng check):\n{exc}") from None


def _rules_of(spec: SynthSpec, where: str, text: bytes | None) -> SynthSpec:
    """Return ``spec`` with its rules: its own, else those of ``text``."""
    if spec.rules is not None:
        return spec
    if text is None:
        raise SynthError(f"{where} has no rules.yaml; a synthetic archive follows the rules of the "
                         "archive it is written into: add rules.yaml there (or pass --config-from DIR "
                         "holding one)")
    from dataclasses import replace

    return replace(spec, rules=load_rules(text, f"{where}/rules.yaml"))


@dataclass(frozen=True)
class CaseFiles:
    """One generated petition: its folder, received month and files in time order."""

    id: str
    folder: str
    files: tuple[tuple[str, bytes, int], ...]  # path, content, local time (seconds)


# ---------------------------------------------------------------------------
# Time as int seconds of city local time since 1970-01-01 00:00 local


class LocalTime:
    """City local time as whole seconds, over the rules' working-day calendar
    (:class:`generator.calendar.WorkCalendar`) and a rule set's office hours.

    This is how the synthetic actors find their desks quickly (office time as
    a running total per day, so adding office time is a bisection). It decides
    no due time: those are :func:`generator.rules.stage_deadline`'s.
    """

    def __init__(self, rules: Rules, rule_set: RuleSet, offset: int) -> None:
        self.calendar = rules.calendar
        self.tz = rules.tz
        self.offset = offset
        sign = "+" if offset >= 0 else "-"
        self.offset_text = f"{sign}{abs(offset) // 3600:02d}:{abs(offset) // 60 % 60:02d}"
        self.office = tuple((a * 60, b * 60) for a, b in rule_set.clock.office.periods)
        self.office_day = sum(b - a for a, b in self.office)
        if not self.office_day:
            raise SynthError(f"rule set {rule_set.name!r} has no office hours; synthetic departments "
                             "work in office hours")
        self._workday: dict[int, bool] = {}
        self._iso: dict[int, str] = {}

    def seconds(self, when: datetime) -> int:
        """Return an aware datetime as whole seconds of local time."""
        return int(when.timestamp()) + self.offset

    def moment(self, t: int) -> datetime:
        """Return local seconds as an aware datetime in the rules' time zone."""
        return datetime.fromtimestamp(t - self.offset, self.tz)

    def is_workday(self, day: int) -> bool:
        """Return whether day number ``day`` (days since 1970-01-01) is worked."""
        known = self._workday.get(day)
        if known is None:
            known = self._workday[day] = self.calendar.is_working_day(date.fromordinal(day + EPOCH_DAY))
        return known

    def date_iso(self, day: int) -> str:
        """Return ``YYYY-MM-DD`` of a day number."""
        text = self._iso.get(day)
        if text is None:
            text = self._iso[day] = date.fromordinal(day + EPOCH_DAY).isoformat()
        return text

    def iso(self, t: int) -> str:
        """Return local seconds as ISO 8601 text with the city's offset."""
        s = t % DAY
        return f"{self.date_iso(t // DAY)}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{self.offset_text}"

    def file_name(self, kind: str, t: int, seq: int = 1) -> str:
        """Return the event file name of a record at ``t`` (records.event_file_name)."""
        return r.event_file_name(kind, self.moment(t), seq)

    # Office time as a running total: ``_office[i]`` is the office seconds
    # before day ``_base + i``, so adding or measuring office time is a lookup
    # and a bisection instead of a walk over days.

    _base = 0
    _office: list[int]

    def _office_table(self, day: int) -> None:
        per_day = self.office_day
        if not hasattr(self, "_office"):
            self._base = day - 64
            self._office = [0]
        if day < self._base:  # extend the table backwards
            start = day - 64
            head = [0]
            for d in range(start, self._base):
                head.append(head[-1] + (per_day if self.is_workday(d) else 0))
            shift = head.pop()
            self._office = head + [x + shift for x in self._office]
            self._base = start
        while self._base + len(self._office) <= day + 1:
            d = self._base + len(self._office) - 1
            self._office.append(self._office[-1] + (per_day if self.is_workday(d) else 0))

    def office_position(self, t: int) -> int:
        """Return the office seconds from the table's start to ``t``."""
        day, s = divmod(t, DAY)
        self._office_table(day)
        total = self._office[day - self._base]
        if self._office[day - self._base + 1] > total:  # a working day
            for a, b in self.office:
                if s > a:
                    total += (b if s > b else s) - a
        return total

    def add_office(self, t: int, seconds: int) -> int:
        """Return the moment ``seconds`` of office time after ``t`` (the start
        of the next office period when ``seconds`` is 0 and ``t`` is outside)."""
        target = self.office_position(t) + seconds
        if seconds == 0:
            target += 1  # the first office second at or after t, then step back
        while self._office[-1] < target + self.office_day:
            self._office_table(self._base + len(self._office) + 30)
        i = bisect.bisect_left(self._office, target) - 1  # the day holding it
        rest = target - self._office[i]
        day = self._base + i
        for a, b in self.office:
            if rest <= b - a:
                moment = day * DAY + a + rest
                return max(moment - 1, t) if seconds == 0 else moment
            rest -= b - a
        raise AssertionError("office table out of step")

    def office_between(self, t0: int, t1: int) -> int:
        """Return the office seconds between two moments."""
        return self.office_position(t1) - self.office_position(t0)

    def working_days_after(self, t: int, n: int) -> int:
        """Return the start of the ``n``-th working day after ``t``'s day
        (:meth:`generator.calendar.WorkCalendar.working_days_after`)."""
        d = self.calendar.working_days_after(date.fromordinal(t // DAY + EPOCH_DAY), n)
        return (d.toordinal() - EPOCH_DAY) * DAY


def fixed_offset(rules: Rules, start: date, end: date) -> int:
    """Return the UTC offset (seconds) of the rules' time zone over a window,
    which synth needs to be one offset (Asia/Shanghai has had no daylight
    saving since 1991)."""
    offsets = {int(datetime(d.year, d.month, d.day, 12, tzinfo=rules.tz).utcoffset().total_seconds())
               for d in (start + timedelta(days=i) for i in range(0, max(1, (end - start).days) + 1, 7))}
    if len(offsets) != 1:
        raise SynthError(f"the time zone {rules.timezone} of rules.yaml changes its UTC offset between "
                         f"{start} and {end}; synth counts local time at one offset, so generate a "
                         "window without a change (or for a city without daylight saving)")
    return offsets.pop()


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
    """The events of one case as they are made: (time, kind, by, body lines,
    the fields the evaluator reads)."""

    __slots__ = ("events", "used")

    def __init__(self) -> None:
        self.events: list[tuple[int, str, str, str, dict]] = []
        self.used: set[int] = set()

    def add(self, t: int, kind: str, by: str, body: str = "", **fields) -> int:
        while t in self.used:  # strictly increasing times within a case
            t += 1
        self.used.add(t)
        self.events.append((t, kind, by, body, fields))
        return t


class Synthesiser:
    """Makes the cases of one archive from a spec, one at a time, in order."""

    def __init__(self, spec: SynthSpec):
        if spec.rules is None:
            raise SynthError("no rules to follow: give SynthSpec(rules=...) (see synth.load_rules), "
                             "or write with write_into/write_repo, which read the archive's rules.yaml")
        self.spec = spec
        self.knobs = spec.knobs
        self.rules = spec.rules
        self.offset = fixed_offset(spec.rules, spec.start, max(spec.end, spec.now.date()))
        self.times: dict[str, LocalTime] = {}
        self.rs = spec.rules.rule_set_for(spec.now)
        self.cal = self.time_for(self.rs)
        self.main = random.Random(spec.seed)  # the petitions
        self.rng = self.main  # the life of the case being made (its own stream, see case)
        self.now = self.cal.seconds(spec.now)
        self.now_at = self.cal.moment(self.now)
        self.recent_ids: list[str] = []
        self.unseen_codes = list(REJECT_TABLE[0])
        self.retracted_once = False
        self.category = self.channel = ""
        # Some departments are slower than others: scorecards should differ.
        self.sloth = {d: 0.4 + 1.4 * self.main.random() for d in T.DEPARTMENTS}

    def time_for(self, rule_set: RuleSet) -> LocalTime:
        found = self.times.get(rule_set.name)
        if found is None:
            found = self.times[rule_set.name] = LocalTime(self.rules, rule_set, self.offset)
        return found

    # -- arrivals -----------------------------------------------------------

    def arrival_days(self) -> list[tuple[int, int]]:
        """Return (day number, petitions received that day) over the window."""
        first = (self.spec.start.toordinal() - EPOCH_DAY)
        last = min(self.spec.end.toordinal() - EPOCH_DAY, self.now // DAY + 1)
        weights: list[float] = []
        days = list(range(first, last))
        for day in days:
            w = 1.0 if self.cal.is_workday(day) else 0.72
            w *= math.exp(self.main.gauss(0, 0.12))
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
            h = int(_pick(self.main, table))
            times.append(day * DAY + h * HOUR + _rr(self.main, HOUR))
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
        rng = self.main
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
        rng = self.main
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
        rng = self.main
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
        rng = self.main
        received_at = self.cal.moment(received)
        self.rs = self.rules.rule_set_for(received_at)
        self.cal = cal = self.time_for(self.rs)
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
        display_name = self.display_name(channel)
        address = None
        if rng.random() < 0.7:
            address = fill['road'] if rng.random() < 0.5 else fill['estate']
        lines = [PETITION_SCHEMA, f'id: "{pid}"\n', f"received_at: {cal.iso(received)}\n",
                 f"channel: {channel}\n", f"category: {category}\n", f"title: {q(title)}\n",
                 block("body", body), "petitioner:\n",
                 f"  display_name: {q(display_name)}\n", "location:\n",
                 f"  district: {q(district)}\n"]
        if address is not None:
            lines.append(f"  address: {q(address)}\n")
        petition_text = "".join(lines)
        correct_title = rng.random() < self.knobs.correction_rate / 2

        # The case's life has a stream of its own.
        self.rng = random.Random(rng.getrandbits(64))
        self.category, self.channel = category, channel
        case = _Case()
        # A title the centre masks is masked at moderation, before anyone
        # answers: replies quote the title as corrected, so the original lives
        # on in git history only.
        shown = self.masked_title() if correct_title else title
        rejected = self.lifecycle(case, pid, received, category, topic, fill, shown, dept, candidates,
                                  district)
        if correct_title and not rejected:
            self.correct_petition(case, received, shown)
        self.rng = self.main
        day = cal.date_iso(received // DAY)
        folder = f"petitions/{day[:4]}/{day[5:7]}/{pid}"
        files = [(f"{folder}/petition.yaml", petition_text.encode("utf-8"), received)]
        events: list[r.Event] = []
        seen: dict[str, int] = {}
        for t, kind, by, extra, fields in sorted(case.events, key=lambda e: e[0]):
            if t > self.now:
                break
            name = self.file_name(kind, t, seen)
            text = f"{EVENT_SCHEMA}kind: {kind}\nat: {cal.iso(t)}\nby: {by}\n{extra}"
            files.append((f"{folder}/{name}", text.encode("utf-8"), t))
            events.append(r.Event(kind, cal.moment(t), by, name, fields, r.Source(f"{folder}/{name}")))
        petition = r.Petition(pid, received_at, channel, category, title, body, display_name, district,
                              address, None, r.Source(f"{folder}/petition.yaml"))
        files += self.escalations(folder, petition, events)
        self.recent_ids.append(pid)
        if len(self.recent_ids) > 200:
            del self.recent_ids[:100]
        return CaseFiles(pid, folder, tuple(files))

    def file_name(self, kind: str, t: int, seen: dict[str, int]) -> str:
        key = (kind, t)
        n = seen.get(key, 0) + 1
        seen[key] = n
        return self.cal.file_name(kind, t, n)

    # -- the scheduled escalation run -----------------------------------------

    def next_run(self, when: datetime) -> datetime:
        """Return the first run of the hourly escalation job at or after ``when``."""
        t = -(-int(when.timestamp() * 1_000_000) // 1_000_000) + self.offset  # whole seconds, up
        run = t // HOUR * HOUR + RUN_MINUTE * 60
        if run < t:
            run += HOUR
        return self.cal.moment(run)

    def escalations(self, folder: str, petition: r.Petition,
                    events: list[r.Event]) -> list[tuple[str, bytes, int]]:
        """Return the ``escalated`` files the hourly run (:mod:`generator.escalate`)
        wrote for this case up to ``now``: at each run the case had a crossed,
        unrecorded level, exactly what ``wenzheng escalate`` writes then.

        Only the runs that can find something are replayed: the first run after
        each level of a clock is crossed. A clock's due time changes only at a
        clarification or an extension decision, so the due times in force are
        those of the case just before each such event and at the end.
        """
        rules, now = self.rules, self.now_at
        clock = self.rs.clock
        runs: set[datetime] = set()

        def crossings(state, since: datetime | None, until: datetime | None) -> None:
            """Add the first run after each level crossed by a clock of
            ``state`` that reached one, while its due time held (from
            ``since`` until ``until``; None: unbounded)."""
            for s in state.stages:
                rule = self.rs.stage(s.stage)
                due = s.deadline.due_at
                if (not s.escalation or due is None or s.department is None or rule is None
                        or not rule.escalates):
                    continue
                start = s.deadline.start if since is None else max(since, s.deadline.start)
                for step in self.rs.escalation:
                    crossed = max(clock.shift(due, step.offset.amount, step.offset.unit), start)
                    if crossed > now or (until is not None and crossed >= until):
                        continue
                    run = self.next_run(crossed)
                    if until is None and run > now:
                        run = now  # the run of the archive's own moment
                    if run <= now and (until is None or run < until):
                        runs.add(run)

        moves = sorted({e.at for e in events if e.kind in (
            "clarification_requested", "clarification_received", "extension_decided")})
        since = None
        for m in moves:
            before = r.Case(petition, tuple(e for e in events if e.at < m), folder)
            crossings(evaluate_case(before, rules, m), since, m)
            since = m
        crossings(evaluate_case(r.Case(petition, tuple(events), folder), rules, now), since, None)
        if not runs:
            return []
        files: list[tuple[str, bytes, int]] = []
        known = list(events)
        names = {e.name for e in events}
        for run in sorted(runs):
            then = r.Case(petition, tuple(e for e in known if e.at <= run), folder)
            items = due_escalations(then, evaluate_case(then, rules, run), rules, run)
            if not items:
                continue
            for item, (path, content) in zip(items, escalation_files(items, run, {folder: names})):
                name = path.rsplit("/", 1)[1]
                names.add(name)
                known.append(r.Event("escalated", run, r.SYSTEM, name,
                                     {"level": item.level, "stage": item.stage,
                                      "department": item.department, "due_at": item.due_at},
                                     r.Source(path)))
                files.append((path, content, self.cal.seconds(run)))
            known.sort(key=lambda e: e.at)
        return files

    # -- due times, from the rules ------------------------------------------

    def stage_due(self, name: str, start: int, received: int,
                  stops: Sequence[tuple[int, int]] = ()) -> int | None:
        """Return when rules.yaml says stage ``name`` begun at ``start`` is
        due (local seconds), or None when the rule set has no such stage or the
        due time is not known."""
        rule = self.rs.stage(name)
        if rule is None:
            return None
        begin = received if rule.starts == "received" else start
        m = self.cal.moment
        due = stage_deadline(self.rs, rule, m(begin), self.category, self.channel,
                             tuple((m(a), m(b)) for a, b in stops)).due_at
        return None if due is None else self.cal.seconds(due)

    def extended_due(self, start: int, new_due: date, stops: Sequence[tuple[int, int]]) -> int | None:
        """Return the resolve due time an approved extension to ``new_due``
        gives under rules.yaml (capped by its maximum), or None when that
        stage cannot be extended."""
        rule = self.rs.stage("resolve")
        if rule is None or rule.extension is None:
            return None
        m = self.cal.moment
        cap = extension_cap(self.rs, rule, m(start), tuple((m(a), m(b)) for a, b in stops))
        wanted = self.cal.seconds(self.rs.clock.end_of(new_due))
        if cap is None or cap.due_at is None:
            return wanted
        return min(wanted, self.cal.seconds(cap.due_at))

    def day_after_working_days(self, t: int, n: int) -> date:
        """Return the date ``n`` working days after the day holding ``t``
        (a due time at 24:00 belongs to the day before)."""
        return date.fromordinal(self.cal.working_days_after(t - 1, n) // DAY + EPOCH_DAY)

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
            late = self.cal.working_days_after(due - 1, _ri(rng, *k.stall_days))
            return self.dept_time(late, _rr(rng, 7 * HOUR))
        if rng.random() < k.late_rate * self.sloth[dept]:
            scale = late_scale or int(k.late_scale_days * self.cal.office_day)
            return self.cal.add_office(due, max(600, int(rng.lognormvariate(math.log(scale), 1.0))))
        span = max(self.cal.office_between(start, due), 600)
        return self.cal.add_office(start, int(span * rng.uniform(0.15, 0.95)) + 60)

    # -- the life of a case -------------------------------------------------

    def lifecycle(self, case: _Case, pid: str, received: int, category: str, topic: T.Topic,
                  fill: dict[str, str], title: str, dept: str, candidates: tuple[str, ...],
                  district: str) -> bool:
        """Make the case's events; return True when the centre rejected it."""
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
            return True

        t = case.add(self.centre_time(received), "assigned", "centre",
                     f"to: {dept}\n" + (f"note: {q(_ch(rng, T.NOTES['assigned']))}\n"
                                        if rng.random() < 0.2 else ""), to=dept)
        assigned_at = held_from = t
        stalled = rng.random() < k.stall_rate

        # Acceptance, perhaps after a transfer.
        transfer = rng.random() < k.transfer_rate and len(T.DEPARTMENTS) > 1
        others = [d for d in T.DEPARTMENTS if d != dept and category in T.DEPARTMENTS[d][1]]
        holder = dept
        for round_ in range(2 if transfer else 1):
            accept_due = (self.stage_due("accept", t, received)
                          or cal.add_office(t, k.accept_office_hours * HOUR))
            if transfer and round_ == 0 and rng.random() < 0.4:
                # The department refuses to sign; the centre reroutes it.
                moved = self.centre_time(self.dept_time(t, _ri(rng, HOUR, 5 * HOUR)), fast=False)
                new_holder, body = self.transfer_body(holder, others, candidates)
                t = held_from = case.add(moved, "transferred", "centre", body,
                                         to=new_holder, **{"from": holder})
                holder = new_holder
                continue
            accepted = self.finish_time(t, accept_due, holder,
                                        late_scale=int(k.late_accept_hours * HOUR))
            t = case.add(max(accepted, t + 60), "accepted", holder,
                         f"note: {q(_ch(rng, T.NOTES['accepted']))}\n" if rng.random() < 0.15 else "")
            if transfer and round_ == 0:
                moved = self.dept_time(t, _ri(rng, HOUR, 3 * self.cal.office_day))
                new_holder, body = self.transfer_body(holder, others, candidates)
                t = held_from = case.add(self.centre_time(moved, fast=False), "transferred", "centre", body,
                                         to=new_holder, **{"from": holder})
                holder = new_holder
        stage_start = t
        stops: list[tuple[int, int]] = []

        def resolve_due_from(start: int) -> int:
            due = self.stage_due("resolve", start, received, stops)
            if due is None:
                due = cal.working_days_after(start, k.resolve_working_days) + DAY
            return due

        resolve_due = resolve_due_from(held_from)

        # Interim reply, clarification and extension happen before the answer.
        if rng.random() < k.interim_rate:
            t = case.add(self.dept_time(t, _ri(rng, 2 * HOUR, 14 * HOUR)), "reply", holder,
                         "final: false\n" + block("body", self.interim_text(topic, fill)), final=False)
            if not self.retracted_once or rng.random() < k.correction_rate:
                # Posted to the wrong case: the department retracts it (the
                # first time always, so every archive shows a retraction).
                self.retracted_once = True
                target = cal.file_name("reply", t)
                t = case.add(self.dept_time(t, _ri(rng, 600, 2 * HOUR)), "correction", holder,
                             f"corrects: {target}\n"
                             f"reason: {q(T.CORRECTION_REASONS[2])}\nretract: true\n",
                             corrects=target, retract=True)
        if rng.random() < k.clarify_rate:
            asked = case.add(self.dept_time(t, _ri(rng, HOUR, 7 * HOUR)), "clarification_requested",
                             holder, block("body", _ch(rng, T.CLARIFY_REQUESTS)))
            if rng.random() < k.clarify_unanswered:
                # The clock stays stopped; the resolve stage waits on the citizen.
                if rng.random() < 0.3:
                    self.withdraw(case, self.citizen_time(asked, DAY, 10 * DAY))
                return False
            by = "petitioner" if rng.random() < 0.85 else "centre"
            answered = case.add(self.citizen_time(asked, 1800, 4 * DAY), "clarification_received", by,
                                block("body", _ch(rng, T.CLARIFY_ANSWERS).format(**fill)))
            stops.append((asked, answered))
            resolve_due = resolve_due_from(held_from)
            t = answered
        if rng.random() < k.extension_rate:
            ask_at = max(t + 60, cal.add_office(max(stage_start, resolve_due - 2 * DAY), _rr(rng, 7 * HOUR)))
            asked_day = self.day_after_working_days(resolve_due, _ri(rng, 5, 10))
            request = case.add(self.dept_time(ask_at, 600), "extension_requested", holder,
                               f"reason: {q(_ch(rng, T.EXTENSION_REASONS))}\n"
                               f"new_due: {asked_day.isoformat()}\n", new_due=asked_day)
            decided = self.dept_time(request, _ri(rng, 1800, 6 * HOUR))
            request_name = cal.file_name("extension_requested", request)
            if rng.random() < k.extension_refused:
                t = case.add(decided, "extension_decided", "centre",
                             f"request: {request_name}\ndecision: refused\n"
                             f"reason: {q(_ch(rng, T.EXTENSION_REFUSALS))}\n",
                             request=request_name, decision="refused")
            else:
                granted = asked_day if rng.random() < 0.8 else self.day_after_working_days(resolve_due, 3)
                t = case.add(decided, "extension_decided", "centre",
                             f"request: {request_name}\ndecision: approved\n"
                             f"new_due: {granted.isoformat()}\n"
                             f"reason: {q(_ch(rng, T.EXTENSION_APPROVALS))}\n",
                             request=request_name, decision="approved", new_due=granted)
                resolve_due = max(resolve_due, self.extended_due(held_from, granted, stops) or resolve_due)
            t = max(t, stage_start)

        withdraw_at = None
        if rng.random() < k.withdraw_rate:
            withdraw_at = self.citizen_time(assigned_at, HOUR, 6 * DAY)

        # The answer, the closure, the rating; a dissatisfied rating may reopen it.
        for attempt in range(3):
            done = max(self.finish_time(stage_start, resolve_due, holder, stalled and attempt == 0), t + 600)
            # Only before the first answer: once closed, a case takes no withdrawal.
            if attempt == 0 and withdraw_at is not None and withdraw_at < done:
                self.drop_after(case, withdraw_at)
                self.withdraw(case, withdraw_at)
                return False
            resolution = _pick(rng, RESOLUTION_TABLE)
            reply_at = case.add(done, "reply", holder,
                                f"final: true\nresolution: {resolution}\n"
                                + block("body", self.reply_text(holder, topic, fill, title, resolution, done)),
                                final=True, resolution=resolution)
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
                             f"rating: {rating}\n{comment}", rating=rating)
            if rating != "dissatisfied" or rng.random() >= k.reopen_rate or attempt == 2:
                break
            t = case.add(self.dept_time(rated, _ri(rng, 1800, 7 * HOUR)), "reopened", "centre",
                         f"reason: {q(_ch(rng, T.REOPEN_REASONS))}\n")
            stage_start = t
            stops = []
            resolve_due = resolve_due_from(t)
        return False

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
        target = cal.file_name("reply", reply_at)
        text = self.reply_text(holder, topic, fill, title, "resolved", reply_at)
        case.add(at, "correction", holder,
                 f"corrects: {target}\nreason: {q(_ch(rng, T.CORRECTION_REASONS[:2]))}\nset:\n"
                 f"  body: {q(text)}\n", corrects=target, set={"body": text})

    def masked_title(self) -> str:
        """Return the title the centre gives a petition whose title it masks."""
        return '（已遮盖门牌号）' + _ch(self.rng, T.ROADS) + '附近的问题'

    def correct_petition(self, case: _Case, received: int, title: str) -> None:
        """Add the centre's correction of the petition's title (masking a house
        number), within minutes of the case's first record."""
        first = min(e[0] for e in case.events) if case.events else received
        case.add(first + _ri(self.rng, 60, 600), "correction", "centre",
                 f"corrects: petition.yaml\nreason: {q(T.CORRECTION_REASONS[3])}\nset:\n"
                 f"  title: {q(title)}\n", corrects=r.PETITION_FILE, set={"title": title})

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

    The archive follows ``spec.rules``, or else ``root/rules.yaml``. The files
    are written to a temporary folder beside it and moved into place at the
    end, so a failed run leaves nothing half-written.
    """
    import os
    import shutil
    import tempfile

    root = Path(root)
    target = root / "petitions"
    if target.exists() and any(target.iterdir()) and not replace:
        raise SynthError(f"{target} already holds files; remove it or pass --replace to overwrite it")
    rules_file = root / "rules.yaml"
    spec = _rules_of(spec, str(root), rules_file.read_bytes() if rules_file.is_file() else None)
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


def _month_end(month: int) -> int:
    """Return the last local second of a month key ``YYYYMM``."""
    year, m = divmod(month, 100)
    nxt = date(year + m // 12, m % 12 + 1, 1)
    return (nxt.toordinal() - EPOCH_DAY) * DAY - 1


def _month_of(t: int, cal: LocalTime) -> int:
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
    ``rules.yaml``, ``mkdocs.yml``) go into the first commit. The archive
    follows ``spec.rules``, else the ``rules.yaml`` of ``extra_files``, else
    the one ``branch`` holds. With
    ``commit_per_month`` every commit holds the files whose time falls in one
    month and is dated at that month's end (or ``now``); that mode keeps one
    tree id per petition in memory, the single commit only one month's.

    Objects go straight into one pack (:mod:`generator.gitpack`). A repository
    this creates checks out only its top-level files: the archive is read from
    git objects, and checking out millions of files is slow.
    """
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
    rules_text = dict(extra_files).get("rules.yaml")
    if rules_text is None and spec.rules is None:
        held = [e[2].hex() for e in kept if e[1] == "rules.yaml"]
        rules_text = gitio.read_blobs(repo, held)[held[0]] if held else None
    spec = _rules_of(spec, f"{repo} ({branch})", rules_text)
    cal = LocalTime(spec.rules, spec.rules.rule_set_for(spec.now),
                    fixed_offset(spec.rules, spec.start, max(spec.end, spec.now.date())))
    now = cal.seconds(spec.now)
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
                               [parent] if parent else [], message, now - cal.offset)
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
                               when - cal.offset)
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
    now = now.replace(microsecond=0)
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
        last_at = max(_aware(e["at"]) for e in events)
        at = now - timedelta(seconds=60 * len(added) + _rr(rng, 60))
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
        name = records.event_file_name(kind, at)
        text = f"{EVENT_SCHEMA}kind: {kind}\nat: {at.isoformat()}\nby: {by}\n{body}"
        added.append((f"{folder}/{name}", text.encode("utf-8")))
    if len(added) < count:
        raise SynthError(f"only {len(added)} open cases in {repo} can take a new event before {now.isoformat()}; "
                         "ask for fewer changes or a later --now")
    with gitio.ArchiveWriter(repo, ref) as fi:
        fi.commit(added, f"Synthetic activity: {len(added)} new events\n", int(now.timestamp()), parent=base)
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
