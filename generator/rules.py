"""The clocks of ``rules.yaml``: reading them, checking them, and the rule sets.

``load_rules(text, path)`` returns the rules and every problem at once: errors
(the rules cannot be used), and warnings (unknown keys, the holiday libraries
disagreeing). Each problem names the file, the line, what is wrong and how to
fix it. ``compute_deadline`` is the calculator behind ``wenzheng deadline``.

The shape of the file is documented key by key in ``docs/rules.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .calendar import (
    UNITS,
    Clock,
    DayOverride,
    Deadline,
    OfficeHours,
    CHINA,
    JurisdictionError,
    WorkCalendar,
    split_jurisdiction,
    hhmm,
    parse_hhmm,
)
from .problems import Problem
from .records import CATEGORIES, CHANNELS, ESCALATION_LEVELS, EVENT_KINDS, parse_date
from .yamlio import SafeLoader, YamlError, line_of, parse

# The time zone of a rules.yaml that names none.
DEFAULT_TIMEZONE = "Asia/Shanghai"
STANDARD_STAGES = ("accept", "first_response", "reply", "resolve", "feedback")
STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Events a stage may be completed by: the ones a holding department or the
# centre produce as an answer; routing and bookkeeping events cannot.
COMPLETING_KINDS = ("accepted", "reply", "closed", "feedback", "rejected", "withdrawn")
STARTS = ("assigned", "received")

_DURATION_RE = re.compile(
    r"^\s*(?P<sign>[+-])?\s*(?P<n>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>office[ _]hours?|working[ _]days?|hours?|days?|h)\s*$"
)
_UNIT_OF = {
    "h": "hours", "hour": "hours", "hours": "hours",
    "office hour": "office_hours", "office hours": "office_hours",
    "office_hour": "office_hours", "office_hours": "office_hours",
    "working day": "working_days", "working days": "working_days",
    "working_day": "working_days", "working_days": "working_days",
    "day": "days", "days": "days",
}
# Rough size of each unit in hours, only to check that an escalation ladder or
# an extension cap is in order when the owner mixes units.
_ROUGH_HOURS = {"hours": 1, "office_hours": 1, "working_days": 24, "days": 24}


@dataclass(frozen=True)
class Duration:
    """An amount of one unit: ``hours``, ``office_hours``, ``working_days``, ``days``."""

    amount: float
    unit: str

    @property
    def text(self) -> str:
        n = int(self.amount) if float(self.amount).is_integer() else self.amount
        word = self.unit.replace("_", " ")
        if abs(self.amount) == 1:
            word = word[:-1]
        return f"{n} {word}"

    def rough_hours(self) -> float:
        return self.amount * _ROUGH_HOURS[self.unit]


def parse_duration(value: Any) -> Duration | None:
    """Return a Duration from text like ``3 hours``, ``-1 working day``,
    ``2 office hours`` or ``10 days``; None if it is not one."""
    if not isinstance(value, str):
        return None
    m = _DURATION_RE.match(value)
    if not m:
        return None
    amount = float(m["n"])
    if m["sign"] == "-":
        amount = -amount
    unit = _UNIT_OF[m["unit"]]
    if unit in ("working_days", "days") and not amount.is_integer():
        return None
    return Duration(amount, unit)


@dataclass(frozen=True)
class Limit:
    """A stage's time limit; with ``by_arrival`` it depends on whether the
    clock started in office time (``office_time``) or rest time (``rest_time``)."""

    office_time: Duration
    rest_time: Duration
    by_arrival: bool = False

    def texts(self) -> list[str]:
        if not self.by_arrival:
            return [self.office_time.text]
        return [f"office time {self.office_time.text}", f"rest time {self.rest_time.text}"]


@dataclass(frozen=True)
class Completion:
    """An event that completes a stage: its kind and, for replies, finality
    (``final`` None means any reply)."""

    kind: str
    final: bool | None = None

    def matches(self, kind: str, fields: Mapping[str, Any]) -> bool:
        if kind != self.kind:
            return False
        if self.final is None:
            return True
        return bool(fields.get("final", False)) == self.final


@dataclass(frozen=True)
class ExtensionRule:
    """How a stage may be extended: who approves, the cap on the total time
    (counted from the stage's start), and what a request must state."""

    max_total: Duration
    approval: str = "centre"
    reason_required: bool = True
    new_due_required: bool = True


@dataclass(frozen=True)
class StageRule:
    name: str
    label_zh: str
    label_en: str
    starts: str  # assigned | received
    limit: Limit
    by_category: Mapping[str, Limit]
    by_channel: Mapping[str, Limit]
    done_by: tuple[Completion, ...]
    restarts_on_reopen: bool
    extension: ExtensionRule | None
    escalates: bool = True
    # Derived: the kinds of event that can complete the stage, and its role for
    # the metrics: resolve (a final reply completes it), reply (any reply),
    # accept (acceptance) or other.
    done_kinds: frozenset = field(init=False, compare=False)
    role: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "done_kinds", frozenset(c.kind for c in self.done_by))
        kinds = {(c.kind, c.final) for c in self.done_by}
        if ("reply", True) in kinds:
            role = "resolve"
        elif ("reply", None) in kinds or ("reply", False) in kinds:
            role = "reply"
        elif any(k == "accepted" for k, _ in kinds):
            role = "accept"
        else:
            role = "other"
        object.__setattr__(self, "role", role)

    def limit_for(self, category: str, channel: str) -> tuple[Limit, str]:
        """Return the limit for a petition and its basis: a channel limit wins
        over a category limit, which wins over the stage's default."""
        if channel in self.by_channel:
            return self.by_channel[channel], f"channel:{channel}"
        if category in self.by_category:
            return self.by_category[category], f"category:{category}"
        return self.limit, "default"

    def is_done_by(self, kind: str, fields: Mapping[str, Any]) -> bool:
        """Return True when an event of this kind and fields completes the stage."""
        if kind not in self.done_kinds:
            return False
        return any(c.matches(kind, fields) for c in self.done_by)


@dataclass(frozen=True)
class EscalationStep:
    """A rung of the escalation ladder: its level and its offset from the due
    time (negative = before the due time)."""

    level: str
    offset: Duration


@dataclass(frozen=True)
class RuleSet:
    name: str
    effective_from: date
    clock: Clock
    stages: tuple[StageRule, ...]
    escalation: tuple[EscalationStep, ...]

    def stage(self, name: str) -> StageRule | None:
        for s in self.stages:
            if s.name == name:
                return s
        return None

    @property
    def extension_stage(self) -> StageRule | None:
        """Return the one stage that extensions apply to, if any."""
        for s in self.stages:
            if s.extension is not None:
                return s
        return None


@dataclass(frozen=True)
class Rules:
    """The whole of ``rules.yaml``."""

    timezone: str
    tz: tzinfo
    calendar: WorkCalendar
    rule_sets: tuple[RuleSet, ...]  # sorted by effective_from
    minimum_cases_for_ranking: int = 10
    due_soon: Duration = Duration(1, "working_days")
    notarised_tolerance: timedelta = timedelta(hours=2)
    path: str = "rules.yaml"

    def rule_set_for(self, received_at: datetime) -> RuleSet:
        """Return the rule set in force on the local date a petition was received
        (the earliest one for petitions older than every rule set)."""
        day = received_at.astimezone(self.tz).date()
        chosen = self.rule_sets[0]
        for rs in self.rule_sets:
            if rs.effective_from <= day:
                chosen = rs
            else:
                break
        return chosen


class RulesError(ValueError):
    """rules.yaml has errors; ``problems`` lists them all."""

    def __init__(self, problems: list[Problem]):
        super().__init__("\n".join(p.render() for p in problems if p.severity == "error"))
        self.problems = problems


# -- loading -----------------------------------------------------------------------


_TOP_KEYS = {
    "timezone", "calendar", "minimum_cases_for_ranking", "due_soon",
    "notarised_tolerance", "rule_sets",
}
_CAL_KEYS = {"jurisdiction", "cross_check", "extra_working_days", "extra_rest_days", "complete_years"}
_SET_KEYS = {"name", "effective_from", "end_of_day", "late_receipt_after", "office_hours", "stages", "escalation"}
_STAGE_KEYS = {
    "name", "starts", "limit", "by_category", "by_channel", "done_by",
    "restarts_on_reopen", "extension", "escalates",
}
_EXT_KEYS = {"max_total", "approval", "reason_required", "new_due_required"}


class _Reader:
    """Collects problems while reading one rules file; knows its lines."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.problems: list[Problem] = []
        self._lines: dict[tuple, int | None] = {}

    def line(self, keypath: Sequence[str | int]) -> int | None:
        key = tuple(keypath)
        if key not in self._lines:
            self._lines[key] = line_of(self.text, key)
        return self._lines[key]

    def error(self, keypath, code, message, hint) -> None:
        self.problems.append(Problem(self.path, self.line(keypath), code, message, hint))

    def warning(self, keypath, code, message, hint) -> None:
        self.problems.append(Problem(self.path, self.line(keypath), code, message, hint, "warning"))

    def where(self, keypath) -> str:
        out = ""
        for k in keypath:
            out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
        return out

    def unknown_keys(self, mapping: Mapping, allowed: set, keypath: list) -> None:
        for k in mapping:
            if k not in allowed:
                self.warning(
                    keypath + [k], "unknown-key",
                    f"unknown key {k!r} in {self.where(keypath) or 'the top level'}; it is ignored",
                    f"remove it or use one of: {', '.join(sorted(allowed))}",
                )

    def mapping(self, value, keypath, required=True) -> dict | None:
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            self.error(keypath, "not-a-mapping", f"{self.where(keypath)} must be a mapping of keys to values",
                       "write it as indented `key: value` lines")
            return None
        return value

    def duration(self, value, keypath, units=UNITS, allow_negative=False, allow_zero=False) -> Duration | None:
        d = parse_duration(value if not isinstance(value, (int, float)) or isinstance(value, bool) else None)
        if d is None or d.unit not in units or (d.amount < 0 and not allow_negative) or (d.amount == 0 and not allow_zero):
            kinds = " or ".join(u.replace("_", " ") for u in units)
            sign = "a signed amount" if allow_negative else "a positive amount"
            self.error(keypath, "bad-duration",
                       f"{self.where(keypath)} is {value!r}, not a duration in {kinds}",
                       f"write {sign} and a unit, e.g. \"3 hours\", \"5 working days\""
                       + (", \"-1 working day\"" if allow_negative else ""))
            return None
        return d

    def boolean(self, value, keypath, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(keypath, "not-a-boolean", f"{self.where(keypath)} is {value!r}, not true or false",
                       "write true or false")
            return default
        return value


def _duplicate_keys(text: str, r: _Reader) -> None:
    """Report keys that appear twice in one mapping: YAML keeps only the last,
    so a stage with two limits would silently lose one."""
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError:
        return

    def walk(node, path: list) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for k, v in node.value:
                key = k.value
                if key in seen:
                    where = r.where(path) or "the top level"
                    r.problems.append(Problem(
                        r.path, k.start_mark.line + 1, "duplicate-key",
                        f"{key!r} appears twice in {where} (first on line {seen[key]}); YAML keeps only the last",
                        f"keep one {key!r} in {where}",
                    ))
                else:
                    seen[key] = k.start_mark.line + 1
                walk(v, path + [key])
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, path + [i])

    if root is not None:
        walk(root, [])


def load_rules(text: str | bytes, path: str = "rules.yaml", cross_check: bool | None = None,
               cache: Path | None = None) -> tuple[Rules | None, list[Problem]]:
    """Return the rules read from ``text`` and every problem found.

    The rules are None when there is any error. ``cross_check`` overrides the
    file's ``calendar.cross_check`` (tests turn it off for speed); ``cache``
    is a folder where its answer is kept (:meth:`Calendar.cross_check`).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    r = _Reader(text, path)
    try:
        data = parse(text)
    except YamlError as exc:
        return None, [Problem(path, exc.line, "yaml-syntax", f"not valid YAML: {exc}",
                              "fix the syntax at that line (indentation, quotes, colons)")]
    _duplicate_keys(text, r)
    if not isinstance(data, dict):
        r.error([], "not-a-mapping", "rules.yaml must be a mapping with timezone, calendar and rule_sets",
                "start from the shipped rules.yaml")
        return None, r.problems
    r.unknown_keys(data, _TOP_KEYS, [])

    tz_name = data.get("timezone", DEFAULT_TIMEZONE)
    tz: tzinfo | None = None
    try:
        tz = ZoneInfo(str(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        r.error(["timezone"], "bad-timezone", f"timezone {tz_name!r} is not a known IANA time zone",
                "write a name like Asia/Shanghai")

    calendar, check_default = _read_calendar(data.get("calendar"), r)

    mcr = data.get("minimum_cases_for_ranking", 10)
    if isinstance(mcr, bool) or not isinstance(mcr, int) or mcr < 1:
        r.error(["minimum_cases_for_ranking"], "bad-number",
                f"minimum_cases_for_ranking is {mcr!r}, not a whole number of at least 1",
                "write a whole number such as 10")
        mcr = 10
    due_soon = r.duration(data.get("due_soon", "1 working day"), ["due_soon"],
                          units=("hours", "working_days", "office_hours"))
    tolerance = r.duration(data.get("notarised_tolerance", "2 hours"), ["notarised_tolerance"], units=("hours",))

    sets_raw = data.get("rule_sets")
    rule_sets: list[RuleSet] = []
    if not isinstance(sets_raw, list) or not sets_raw:
        r.error(["rule_sets"], "no-rule-sets", "rule_sets is missing or empty",
                "add at least one rule set with effective_from, office_hours and stages")
    else:
        seen_from: dict[date, int] = {}
        for i, raw in enumerate(sets_raw):
            eff = parse_date(raw.get("effective_from")) if isinstance(raw, dict) else None
            if eff is not None and eff in seen_from:
                r.error(["rule_sets", i, "effective_from"], "overlapping-rule-sets",
                        f"rule_sets[{i}] and rule_sets[{seen_from[eff]}] both take effect on "
                        f"{eff}; a petition received that day would have two sets of rules",
                        "give each rule set a different effective_from, or merge them")
            elif eff is not None:
                seen_from[eff] = i
            rs = _read_rule_set(raw, ["rule_sets", i], r, calendar, tz)
            if rs is not None:
                rule_sets.append(rs)
    if calendar is not None and (cross_check if cross_check is not None else check_default):
        # Check the years a petition archive plausibly spans: the library's years from
        # the first rule set on.
        first = min((rs.effective_from.year for rs in rule_sets), default=2004)
        r.problems.extend(calendar.cross_check(range(max(first, 2004), 2027), path, r.line(["calendar"]), cache))

    if any(p.severity == "error" for p in r.problems) or tz is None or calendar is None:
        return None, r.problems
    rules = Rules(
        timezone=str(tz_name),
        tz=tz,
        calendar=calendar,
        rule_sets=tuple(sorted(rule_sets, key=lambda s: s.effective_from)),
        minimum_cases_for_ranking=mcr,
        due_soon=due_soon,  # type: ignore[arg-type]
        notarised_tolerance=timedelta(hours=tolerance.amount),  # type: ignore[union-attr]
        path=path,
    )
    return rules, r.problems


def read_rules(text: str | bytes, path: str = "rules.yaml", cross_check: bool | None = None) -> Rules:
    """Return the rules, or raise RulesError listing every error."""
    rules, problems = load_rules(text, path, cross_check)
    if rules is None:
        raise RulesError(problems)
    return rules


def _read_calendar(raw, r: _Reader) -> tuple[WorkCalendar | None, bool]:
    if raw is None:
        return WorkCalendar(), True
    if isinstance(raw, str):  # `calendar: US-MA` names the jurisdiction alone
        raw = {"jurisdiction": raw}
    cal = r.mapping(raw, ["calendar"])
    if cal is None:
        return None, False
    r.unknown_keys(cal, _CAL_KEYS, ["calendar"])
    jurisdiction = cal.get("jurisdiction", CHINA)
    try:
        split_jurisdiction(str(jurisdiction))
    except JurisdictionError as exc:
        r.error(["calendar", "jurisdiction"], "bad-jurisdiction", str(exc),
                "write CN (China, the default), or a country and subdivision code such as "
                "US-MA, US-NY or GB-ENG")
        return None, False
    overrides: list[DayOverride] = []
    seen: dict[date, str] = {}
    for key, working in (("extra_working_days", True), ("extra_rest_days", False)):
        items = cal.get(key) or []
        if not isinstance(items, list):
            r.error(["calendar", key], "not-a-list", f"calendar.{key} must be a list",
                    "write one `- {date: YYYY-MM-DD, reason: ...}` per line")
            continue
        for j, item in enumerate(items):
            kp = ["calendar", key, j]
            if not isinstance(item, dict):
                r.error(kp, "not-a-mapping", f"calendar.{key}[{j}] must have a date and a reason",
                        "write `- {date: YYYY-MM-DD, reason: the notice that says so}`")
                continue
            r.unknown_keys(item, {"date", "reason"}, kp)
            d = parse_date(item.get("date"))
            if d is None:
                r.error(kp + ["date"], "bad-date", f"calendar.{key}[{j}].date is {item.get('date')!r}, not a date",
                        "write the date as YYYY-MM-DD")
                continue
            reason = item.get("reason")
            if not isinstance(reason, str) or not reason.strip():
                r.error(kp, "missing-reason", f"calendar.{key}[{j}] ({d}) has no reason",
                        "add `reason:` naming the notice or decision behind this day")
                continue
            if d in seen:
                r.error(kp + ["date"], "conflicting-override",
                        f"{d} is listed in both {seen[d]} and {key}" if seen[d] != key else f"{d} is listed twice in {key}",
                        "keep the day in one list only")
                continue
            seen[d] = key
            overrides.append(DayOverride(d, working, reason.strip()))
    complete = cal.get("complete_years") or []
    years: list[int] = []
    if not isinstance(complete, list) or not all(isinstance(y, int) and not isinstance(y, bool) for y in complete):
        r.error(["calendar", "complete_years"], "bad-years", "calendar.complete_years must be a list of years",
                "write e.g. [2027] once every rest day and make-up day of 2027 is listed")
    else:
        years = list(complete)
        for y in years:
            if not any(o.day.year == y for o in overrides):
                r.warning(["calendar", "complete_years"], "empty-complete-year",
                          f"{y} is declared complete but no extra working or rest day of {y} is listed",
                          f"list {y}'s holidays in extra_rest_days and make-up days in extra_working_days")
    cross = r.boolean(cal.get("cross_check"), ["calendar", "cross_check"], True)
    return WorkCalendar(tuple(sorted(overrides, key=lambda o: o.day)), tuple(years),
                        str(jurisdiction)), cross


def _read_office_hours(raw, kp, r: _Reader) -> OfficeHours | None:
    if not isinstance(raw, list) or not raw:
        r.error(kp, "missing-office-hours", f"{r.where(kp)} is missing or empty",
                "list the office periods of a working day, e.g. `- {from: \"08:30\", to: \"12:00\"}`")
        return None
    periods: list[tuple[int, int, int]] = []
    ok = True
    for j, item in enumerate(raw):
        ikp = kp + [j]
        if not isinstance(item, dict):
            r.error(ikp, "not-a-mapping", f"{r.where(ikp)} must have from and to",
                    "write `- {from: \"08:30\", to: \"12:00\"}`")
            ok = False
            continue
        r.unknown_keys(item, {"from", "to"}, ikp)
        a, b = parse_hhmm(item.get("from")), parse_hhmm(item.get("to"))
        if a is None or b is None:
            r.error(ikp, "bad-time", f"{r.where(ikp)} needs from and to as quoted \"HH:MM\" times",
                    "write e.g. {from: \"08:30\", to: \"12:00\"} (quote the times)")
            ok = False
            continue
        if b <= a:
            r.error(ikp, "reversed-office-hours",
                    f"{r.where(ikp)} ends ({hhmm(b)}) before or when it starts ({hhmm(a)})",
                    "swap from and to, or fix the times")
            ok = False
            continue
        periods.append((a, b, j))
    periods.sort()
    for (a1, b1, j1), (a2, b2, j2) in zip(periods, periods[1:]):
        if a2 < b1:
            r.error(kp + [j2], "overlapping-office-hours",
                    f"office period {hhmm(a2)}–{hhmm(b2)} overlaps {hhmm(a1)}–{hhmm(b1)}",
                    "make the periods disjoint (merge them into one if they are meant to be continuous)")
            ok = False
    if not ok:
        return None
    return OfficeHours(tuple((a, b) for a, b, _ in periods))


def _read_limit(raw, kp, r: _Reader) -> Limit | None:
    if isinstance(raw, dict):
        r.unknown_keys(raw, {"office_time", "rest_time"}, kp)
        if "office_time" not in raw or "rest_time" not in raw:
            r.error(kp, "incomplete-limit", f"{r.where(kp)} depends on arrival but lacks office_time or rest_time",
                    "give both, e.g. {office_time: 1 hour, rest_time: 8 hours}")
            return None
        a = r.duration(raw["office_time"], kp + ["office_time"])
        b = r.duration(raw["rest_time"], kp + ["rest_time"])
        if a is None or b is None:
            return None
        return Limit(a, b, True)
    d = r.duration(raw, kp)
    if d is None:
        return None
    return Limit(d, d, False)


def _read_stage(name, raw, kp, r: _Reader) -> StageRule | None:
    if not STAGE_NAME_RE.match(str(name)):
        r.error(kp, "bad-stage-name", f"stage name {name!r} is not a lower-case identifier",
                "use letters, digits and _ (e.g. accept, first_response, resolve)")
        return None
    st = r.mapping(raw, kp)
    if st is None:
        return None
    r.unknown_keys(st, _STAGE_KEYS, kp)
    ok = True
    label = st.get("name") or {}
    if not isinstance(label, dict):
        r.error(kp + ["name"], "not-a-mapping", f"{r.where(kp + ['name'])} must give zh and en",
                "write `name: {zh: 办结, en: Resolution}`")
        label = {}
    starts = st.get("starts", "assigned")
    if starts not in STARTS:
        r.error(kp + ["starts"], "bad-start", f"{r.where(kp + ['starts'])} is {starts!r}",
                "write `assigned` (the holding department's assignment or transfer) or `received`")
        ok = False
    if "limit" not in st:
        r.error(kp, "missing-limit", f"stage {name} has no limit", "add e.g. `limit: 5 working days`")
        ok = False
        limit = None
    else:
        limit = _read_limit(st["limit"], kp + ["limit"], r)
        ok = ok and limit is not None
    tables: dict[str, dict[str, Limit]] = {}
    for key, allowed in (("by_category", CATEGORIES), ("by_channel", CHANNELS)):
        table = st.get(key) or {}
        out: dict[str, Limit] = {}
        if not isinstance(table, dict):
            r.error(kp + [key], "not-a-mapping", f"{r.where(kp + [key])} must map names to limits",
                    f"write e.g. `{key}: {{{allowed[0]}: 3 working days}}`")
            ok = False
        else:
            for k, v in table.items():
                if k not in allowed:
                    r.error(kp + [key, k], "unknown-name", f"{r.where(kp + [key])} names {k!r}, which is not one of {', '.join(allowed)}",
                            f"use one of: {', '.join(allowed)}")
                    ok = False
                    continue
                lim = _read_limit(v, kp + [key, k], r)
                if lim is None:
                    ok = False
                else:
                    out[k] = lim
        tables[key] = out
    done_raw = st.get("done_by")
    done: list[Completion] = []
    if not isinstance(done_raw, list) or not done_raw:
        r.error(kp + ["done_by"], "missing-done-by", f"stage {name} does not say which event completes it",
                "add e.g. `done_by: [{kind: reply, final: true}]`")
        ok = False
    else:
        for j, item in enumerate(done_raw):
            ikp = kp + ["done_by", j]
            if isinstance(item, str):
                item = {"kind": item}
            if not isinstance(item, dict):
                r.error(ikp, "not-a-mapping", f"{r.where(ikp)} must name an event kind",
                        "write `- {kind: accepted}` or `- {kind: reply, final: true}`")
                ok = False
                continue
            r.unknown_keys(item, {"kind", "final"}, ikp)
            kind = item.get("kind")
            if kind not in COMPLETING_KINDS:
                known = "an event kind that cannot complete a stage" if kind in EVENT_KINDS else "not an event kind"
                r.error(ikp, "bad-done-by", f"{r.where(ikp)} names {kind!r}, {known}",
                        f"use one of: {', '.join(COMPLETING_KINDS)}")
                ok = False
                continue
            final = item.get("final")
            if final is not None and (not isinstance(final, bool) or kind != "reply"):
                r.error(ikp + ["final"], "bad-final", f"{r.where(ikp)}: final applies to replies and must be true or false",
                        "remove final, or use it with kind: reply")
                ok = False
                continue
            done.append(Completion(kind, final))
    ext = None
    if st.get("extension") is not None:
        ext_raw = r.mapping(st["extension"], kp + ["extension"])
        if ext_raw is None:
            ok = False
        else:
            r.unknown_keys(ext_raw, _EXT_KEYS, kp + ["extension"])
            cap = r.duration(ext_raw.get("max_total"), kp + ["extension", "max_total"])
            approval = ext_raw.get("approval", "centre")
            if approval != "centre":
                r.error(kp + ["extension", "approval"], "bad-approval",
                        f"extension approval is {approval!r}; only the centre approves extensions",
                        "write `approval: centre`")
                ok = False
            if cap is None:
                ok = False
            else:
                ext = ExtensionRule(
                    cap, "centre",
                    r.boolean(ext_raw.get("reason_required"), kp + ["extension", "reason_required"], True),
                    r.boolean(ext_raw.get("new_due_required"), kp + ["extension", "new_due_required"], True),
                )
                for lim, lkp in [(limit, kp + ["limit"])] + [
                    (v, kp + [key, k]) for key in tables for k, v in tables[key].items()
                ]:
                    if lim is None:
                        continue
                    for base in {lim.office_time, lim.rest_time}:
                        if base.unit != cap.unit:
                            r.error(kp + ["extension", "max_total"], "cap-unit",
                                    f"extension cap {cap.text} is not in the unit of the limit {base.text} ({r.where(lkp)})",
                                    f"give max_total in {base.unit.replace('_', ' ')}")
                            ok = False
                        elif cap.amount < base.amount:
                            r.error(kp + ["extension", "max_total"], "cap-below-limit",
                                    f"extension cap {cap.text} is below the limit {base.text} ({r.where(lkp)}); "
                                    "an extension could only shorten the time",
                                    f"raise max_total to at least {base.text} or lower the limit")
                            ok = False
    if not ok or limit is None:
        return None
    return StageRule(
        name=str(name),
        label_zh=str(label.get("zh", name)),
        label_en=str(label.get("en", name)),
        starts=starts,
        limit=limit,
        by_category=tables["by_category"],
        by_channel=tables["by_channel"],
        done_by=tuple(done),
        restarts_on_reopen=r.boolean(st.get("restarts_on_reopen"), kp + ["restarts_on_reopen"], name == "resolve"),
        extension=ext,
        escalates=r.boolean(st.get("escalates"), kp + ["escalates"], True),
    )


def _read_rule_set(raw, kp, r: _Reader, calendar: WorkCalendar | None, tz) -> RuleSet | None:
    rs = r.mapping(raw, kp)
    if rs is None:
        return None
    r.unknown_keys(rs, _SET_KEYS, kp)
    ok = True
    eff = parse_date(rs.get("effective_from"))
    if eff is None:
        r.error(kp + ["effective_from"], "bad-date",
                f"{r.where(kp)}.effective_from is {rs.get('effective_from')!r}, not a date",
                "write the first day the rules apply as YYYY-MM-DD")
        ok = False
    eod = parse_hhmm(rs.get("end_of_day", "24:00"))
    if eod is None or eod == 0:
        r.error(kp + ["end_of_day"], "bad-time", f"{r.where(kp)}.end_of_day is {rs.get('end_of_day')!r}",
                "write a quoted time such as \"24:00\" or \"17:30\"")
        ok = False
    late = rs.get("late_receipt_after")
    late_min = None
    if late is not None:
        late_min = parse_hhmm(late)
        if late_min is None or late_min in (0, 1440):
            r.error(kp + ["late_receipt_after"], "bad-time", f"{r.where(kp)}.late_receipt_after is {late!r}",
                    "write a quoted time such as \"17:30\", or remove the key")
            ok = False
    office = _read_office_hours(rs.get("office_hours"), kp + ["office_hours"], r)
    ok = ok and office is not None
    stages_raw = r.mapping(rs.get("stages"), kp + ["stages"])
    stages: list[StageRule] = []
    if stages_raw is None or not stages_raw:
        if stages_raw is not None:
            r.error(kp + ["stages"], "no-stages", f"{r.where(kp)} has no stages", "add at least one stage")
        ok = False
    else:
        for name, st in stages_raw.items():
            s = _read_stage(name, st, kp + ["stages", name], r)
            if s is None:
                ok = False
            else:
                stages.append(s)
        with_ext = [s.name for s in stages if s.extension is not None]
        if len(with_ext) > 1:
            r.error(kp + ["stages", with_ext[1], "extension"], "two-extension-stages",
                    f"stages {', '.join(with_ext)} all allow extensions; an extension request does not name a stage",
                    "keep `extension:` on one stage only (usually resolve)")
            ok = False
    escalation = _read_escalation(rs.get("escalation"), kp + ["escalation"], r, [s.name for s in stages], stages_raw or {})
    if escalation is None:
        ok = False
    if not ok or calendar is None or tz is None:
        return None
    applies, ladder = escalation
    stages = [s if s.name in applies else _replace_escalates(s, False) for s in stages]
    clock = Clock(calendar, tz, eod, late_min, office)  # type: ignore[arg-type]
    return RuleSet(str(rs.get("name", eff)), eff, clock, tuple(stages), tuple(ladder))  # type: ignore[arg-type]


def _replace_escalates(s: StageRule, value: bool) -> StageRule:
    from dataclasses import replace

    return replace(s, escalates=value)  # derived fields are recomputed by __post_init__


def _read_escalation(raw, kp, r: _Reader, stage_names: list[str], stages_raw: Mapping):
    if raw is None:
        return set(stage_names), []
    esc = r.mapping(raw, kp)
    if esc is None:
        return None
    r.unknown_keys(esc, {"applies_to", "ladder"}, kp)
    ok = True
    applies = esc.get("applies_to")
    if applies is None:
        applies_set = {n for n in stage_names}
    elif not isinstance(applies, list):
        r.error(kp + ["applies_to"], "not-a-list", f"{r.where(kp)}.applies_to must be a list of stage names",
                "write e.g. `applies_to: [resolve]`")
        return None
    else:
        applies_set = set()
        for j, n in enumerate(applies):
            if n not in stages_raw:
                r.error(kp + ["applies_to", j], "unknown-stage",
                        f"escalation applies to stage {n!r}, which this rule set does not define",
                        f"use one of: {', '.join(map(str, stages_raw)) or '(no stages)'}")
                ok = False
            applies_set.add(n)
    ladder_raw = esc.get("ladder") or []
    if not isinstance(ladder_raw, list):
        r.error(kp + ["ladder"], "not-a-list", f"{r.where(kp)}.ladder must be a list",
                "write one `- {level: notice, offset: 0 hours}` per rung")
        return None
    ladder: list[tuple[EscalationStep, int]] = []
    seen: set[str] = set()
    for j, item in enumerate(ladder_raw):
        ikp = kp + ["ladder", j]
        if not isinstance(item, dict):
            r.error(ikp, "not-a-mapping", f"{r.where(ikp)} must have a level and an offset",
                    "write `- {level: notice, offset: 0 hours}`")
            ok = False
            continue
        r.unknown_keys(item, {"level", "offset"}, ikp)
        level = item.get("level")
        if level not in ESCALATION_LEVELS:
            r.error(ikp + ["level"], "bad-level", f"escalation level {level!r} is not known",
                    f"use one of: {', '.join(ESCALATION_LEVELS)}")
            ok = False
            continue
        if level in seen:
            r.error(ikp + ["level"], "duplicate-level", f"escalation level {level} appears twice",
                    "keep one rung per level")
            ok = False
            continue
        seen.add(level)
        off = r.duration(item.get("offset"), ikp + ["offset"], units=("hours", "working_days"),
                         allow_negative=True, allow_zero=True)
        if off is None:
            ok = False
            continue
        ladder.append((EscalationStep(level, off), j))
    for (a, ja), (b, jb) in zip(ladder, ladder[1:]):
        if ESCALATION_LEVELS.index(b.level) < ESCALATION_LEVELS.index(a.level):
            r.error(kp + ["ladder", jb], "escalation-order",
                    f"escalation level {b.level} comes after {a.level} but is a lower level",
                    f"order the ladder {' → '.join(ESCALATION_LEVELS)}")
            ok = False
        elif b.offset.rough_hours() <= a.offset.rough_hours() and not (b.offset.unit == a.offset.unit and b.offset.amount > a.offset.amount):
            r.error(kp + ["ladder", jb, "offset"], "escalation-order",
                    f"{b.level} at {b.offset.text} does not come after {a.level} at {a.offset.text}",
                    "give each higher level a later offset from the due time")
            ok = False
    if not ok:
        return None
    return applies_set, [s for s, _ in ladder]


# -- the calculator ----------------------------------------------------------------


def stage_deadline(
    rule_set: RuleSet,
    stage: StageRule,
    start: datetime,
    category: str,
    channel: str,
    stops: Sequence[tuple[datetime, datetime | None]] = (),
) -> Deadline:
    """Return the deadline of one stage whose clock starts at ``start``.

    The limit is chosen by channel, then category, then the stage default; an
    arrival-dependent limit looks at whether ``start`` is in office time.
    """
    limit, basis = stage.limit_for(category, channel)
    if limit.by_arrival:
        in_office = rule_set.clock.in_office_time(start)
        dur = limit.office_time if in_office else limit.rest_time
        basis = ("office_time" if in_office else "rest_time") if basis == "default" else f"{basis}/{'office_time' if in_office else 'rest_time'}"
    else:
        dur = limit.office_time
    return rule_set.clock.deadline(stage.name, start, dur.amount, dur.unit, stops, basis)


def extension_cap(
    rule_set: RuleSet,
    stage: StageRule,
    start: datetime,
    stops: Sequence[tuple[datetime, datetime | None]] = (),
) -> Deadline | None:
    """Return the latest due time extensions may reach (the cap counted from the
    stage's start), or None when the stage cannot be extended."""
    if stage.extension is None:
        return None
    cap = stage.extension.max_total
    return rule_set.clock.deadline(stage.name, start, cap.amount, cap.unit, stops, "extension_cap")


def compute_deadline(rules: Rules, received_at: datetime, category: str, channel: str) -> list[Deadline]:
    """Return the deadline of every stage for a petition received at
    ``received_at``, its clocks starting on receipt, followed by the extension
    cap of the stage that may be extended (basis ``extension_cap``)."""
    rs = rules.rule_set_for(received_at)
    out = [stage_deadline(rs, s, received_at, category, channel) for s in rs.stages]
    for s in rs.stages:
        cap = extension_cap(rs, s, received_at)
        if cap is not None:
            out.append(cap)
    return out
