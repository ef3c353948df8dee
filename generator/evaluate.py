"""The state of a case as of ``now``: who holds it, every clock, overdue and escalation.

``evaluate_case(case, rules, now)`` is pure: the same case, rules and ``now``
give the same state. Events after ``now`` are ignored, so an auditor can ask
what the state was on any past day.

How a case is read (details in ``docs/rules.md``):

1. Corrections are already applied: a case is made with its corrected
   records (:func:`generator.validate.check_case`: a retracted event is left
   out, one named by a ``set`` has those fields replaced, never ``kind`` or
   ``by``). The correction events themselves do not move a clock.
2. Holdings: each ``assigned`` or ``transferred`` starts a holding of the named
   department; a transfer ends the previous one. Each holding has its own
   clocks. Until the first assignment, an unassigned holding carries only the
   stages that start on receipt.
3. Per holding and stage, the clock starts at the holding's start (or on
   receipt for ``starts: received`` in the first holding). A stage with
   ``restarts_on_reopen`` gets a new round at each ``reopened``.
4. Clarification requests stop every running clock until the answer arrives.
5. An approved ``extension_decided`` sets the extended stage's due time to the
   end of ``new_due``, capped by the rule's ``max_total``; refused ones do not.
6. A stage is done by the first event its ``done_by`` names, from the holding
   department (or the centre) inside the round. A round that ends undone (a
   transfer, a reopen, the case closed, rejected or withdrawn) is ``void`` when
   it ended before its due time and ``late`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from .calendar import Deadline, Step
from .records import CENTRE, ESCALATION_LEVELS, PETITIONER, SYSTEM, Case, Event, parse_date
from .rules import Rules, RuleSet, StageRule, compute_deadline, extension_cap, stage_deadline

__all__ = [
    "CaseState", "Holding", "StageState", "evaluate_case", "compute_deadline",
    "OVERDUE_LEVELS", "STATUS_ZH", "STAGE_STATUS_ZH", "OVERDUE_ZH",
]

TERMINAL = ("closed", "rejected", "withdrawn")
OVERDUE_LEVELS = ("not_due", "due_soon", "overdue")
STATUS_ZH = {"open": "办理中", "closed": "已办结", "rejected": "不予受理", "withdrawn": "已撤回"}
STAGE_STATUS_ZH = {
    "on_time": "按时完成", "late": "超时", "pending": "计时中", "overdue": "已逾期",
    "stopped": "暂停计时", "void": "不再计时",
}
OVERDUE_ZH = {"not_due": "未到期", "due_soon": "即将到期", "overdue": "已逾期"}
_NEUTRAL = (CENTRE, SYSTEM, PETITIONER)


@dataclass(frozen=True)
class Holding:
    """A department's time with the case: from its assignment or transfer to
    the transfer away (``end`` None while it still holds it)."""

    department: str | None  # None: not yet assigned
    start: datetime
    end: datetime | None
    via: str  # assigned | transferred | unassigned
    transferred_out: bool = False
    accepted_at: datetime | None = None  # its first acceptance
    final_reply_at: datetime | None = None  # its first final reply
    extensions_requested: int = 0
    extensions_granted: int = 0  # approvals of its requests
    reopened: int = 0  # reopenings while it held the case


@dataclass(frozen=True)
class StageState:
    """One clock of one holding (and round, after reopenings)."""

    stage: str
    department: str | None
    deadline: Deadline
    done_at: datetime | None
    status: str  # on_time | late | pending | overdue | stopped | void
    late_by: timedelta | None
    escalation: str | None  # the highest ladder level reached (as of now, or when done)
    overdue_level: str | None  # not_due | due_soon | overdue for running clocks, else None
    role: str  # accept | reply | resolve | other: what completes it, for the metrics
    round: int = 0  # 0, then 1, 2... after each reopening
    extended: bool = False

    @property
    def current(self) -> bool:
        """True while the clock is still running or stopped (not done, not ended)."""
        return self.status in ("pending", "overdue", "stopped")


@dataclass(frozen=True)
class CaseState:
    id: str
    category: str
    channel: str
    district: str | None
    received_at: datetime
    status: str  # open | closed | rejected | withdrawn
    holder: str | None
    holdings: tuple[Holding, ...]
    stages: tuple[StageState, ...]
    closed_at: datetime | None
    final_reply_at: datetime | None  # the first final reply
    resolution: str | None  # of the latest final reply
    rating: str | None  # the latest feedback
    reopened_count: int
    transfers: int
    extensions_requested: int
    extensions_granted: int
    clock_stopped_now: bool
    overdue_level: str  # not_due | due_soon | overdue
    escalation: str | None
    provisional: bool
    legacy_due_at: datetime | None
    accepted_at: datetime | None = None  # the first acceptance
    rule_set: str = ""

    def stages_of(self, department: str | None) -> tuple[StageState, ...]:
        return tuple(s for s in self.stages if s.department == department)


# -- evaluation -------------------------------------------------------------------


def evaluate_case(case: Case, rules: Rules, now: datetime) -> CaseState:
    """Return the state of ``case`` as of ``now`` under the rules in force when
    it was received."""
    p = case.petition
    rs = rules.rule_set_for(p.received_at)
    events = [e for e in case.events if e.kind != "correction" and e.at <= now]

    holdings: list[list] = []  # [department, start, end, via, transferred_out, accepted_at,
    #                              final_reply_at, ext_requested, ext_granted, reopened]
    stops: list[list] = []  # [start, end or None]
    reopen_times: list[datetime] = []
    terminal_times: list[datetime] = []
    status = "open"
    closed_at = final_reply_at = accepted_at = None
    resolution = rating = None
    transfers = requested = granted = 0
    decisions: list[tuple[datetime, date | None, bool]] = []  # (at, new_due, approved)

    for e in events:
        k = e.kind
        if k == "assigned" or k == "transferred":
            to = e.get("to")
            if holdings and holdings[-1][2] is None:
                holdings[-1][2] = e.at
                holdings[-1][4] = k == "transferred"
            holdings.append([to, e.at, None, k, False, None, None, 0, 0, 0])
            if k == "transferred":
                transfers += 1
        elif k == "clarification_requested":
            if not stops or stops[-1][1] is not None:
                stops.append([e.at, None])
        elif k == "clarification_received":
            if stops and stops[-1][1] is None:
                stops[-1][1] = e.at
        elif k == "extension_requested":
            requested += 1
            if holdings:
                holdings[-1][7] += 1
        elif k == "extension_decided":
            approved = e.get("decision") == "approved"
            decisions.append((e.at, parse_date(e.get("new_due")), approved))
            granted += approved
            if holdings and approved:
                holdings[-1][8] += 1
        elif k == "reply":
            if e.get("final"):
                if final_reply_at is None:
                    final_reply_at = e.at
                resolution = e.get("resolution")
                if holdings and holdings[-1][0] == e.by and holdings[-1][6] is None:
                    holdings[-1][6] = e.at
        elif k == "accepted":
            if accepted_at is None:
                accepted_at = e.at
            if holdings and holdings[-1][0] == e.by and holdings[-1][5] is None:
                holdings[-1][5] = e.at
        elif k == "feedback":
            rating = e.get("rating")
        elif k in TERMINAL:
            status = k
            terminal_times.append(e.at)
            if k == "closed":
                closed_at = e.at
        elif k == "reopened":
            status = "open"
            closed_at = None
            reopen_times.append(e.at)
            if holdings:
                holdings[-1][9] += 1

    if not holdings:
        holdings.append([None, p.received_at, None, "unassigned", False, None, None, 0, 0, 0])
    holding_objs = tuple(Holding(*h) for h in holdings)
    stop_pairs = tuple((a, b) for a, b in stops)
    clock_stopped_now = bool(stops) and stops[-1][1] is None and status == "open"

    ladder = rs.escalation
    stage_states: list[StageState] = []
    for hi, h in enumerate(holding_objs):
        for stage in rs.stages:
            if h.department is None and stage.starts != "received":
                continue  # a department's clock cannot start before it has the case
            start0 = p.received_at if (stage.starts == "received" and hi == 0) else h.start
            starts = [start0]
            if stage.restarts_on_reopen:
                starts += [r for r in reopen_times if h.start <= r and (h.end is None or r < h.end) and r > start0]
            for rnd, start in enumerate(starts):
                window_end = starts[rnd + 1] if rnd + 1 < len(starts) else h.end
                stage_states.append(
                    _stage_state(rs, rules, stage, h, start, window_end, rnd, events, stop_pairs,
                                 terminal_times, decisions, p.category, p.channel, now, ladder)
                )

    current = [s for s in stage_states if s.current]
    level = "not_due"
    escalation = None
    if status == "open":
        for s in current:
            if s.overdue_level and OVERDUE_LEVELS.index(s.overdue_level) > OVERDUE_LEVELS.index(level):
                level = s.overdue_level
            if s.escalation and (escalation is None or ESCALATION_LEVELS.index(s.escalation) > ESCALATION_LEVELS.index(escalation)):
                escalation = s.escalation
    holder = holding_objs[-1].department
    return CaseState(
        id=p.id,
        category=p.category,
        channel=p.channel,
        district=p.district,
        received_at=p.received_at,
        status=status,
        holder=holder,
        holdings=holding_objs,
        stages=tuple(stage_states),
        closed_at=closed_at if status == "closed" else None,
        final_reply_at=final_reply_at,
        resolution=resolution,
        rating=rating,
        reopened_count=len(reopen_times),
        transfers=transfers,
        extensions_requested=requested,
        extensions_granted=granted,
        clock_stopped_now=clock_stopped_now,
        overdue_level=level,
        escalation=escalation,
        provisional=any(s.deadline.provisional for s in stage_states),
        legacy_due_at=p.legacy.due_at if p.legacy else None,
        accepted_at=accepted_at,
        rule_set=rs.name,
    )


def _stage_state(rs: RuleSet, rules: Rules, stage: StageRule, h: Holding, start: datetime,
                 window_end: datetime | None, rnd: int, events: list[Event], stops,
                 terminal_times: list[datetime], decisions, category: str, channel: str,
                 now: datetime, ladder) -> StageState:
    clock = rs.clock
    my_stops = tuple((max(a, start), b) for a, b in stops
                     if (b is None or b > start) and (window_end is None or a < window_end)) if stops else ()
    deadline = stage_deadline(rs, stage, start, category, channel, my_stops)
    extended = False
    if stage.extension is not None:
        approved = [d for d in decisions if d[2] and d[1] is not None and d[0] >= start
                    and (window_end is None or d[0] < window_end)]
        if approved:
            deadline = _extended(rs, stage, deadline, approved[-1], start, my_stops)
            extended = True

    done_at = None
    dept = h.department
    kinds = stage.done_kinds
    for e in events:
        if e.kind not in kinds or e.at < start:
            continue
        if window_end is not None and e.at >= window_end:
            break
        if stage.is_done_by(e.kind, e.fields) and (dept is None or e.by == dept or e.by in _NEUTRAL):
            done_at = e.at
            break
    ended_at = window_end
    if done_at is None:
        for t in terminal_times:
            if t >= start and (window_end is None or t < window_end):
                ended_at = t
                break

    due = deadline.due_at
    late_by = None
    overdue_level = None
    if done_at is not None:
        status = "on_time" if due is None or done_at <= due else "late"
        if status == "late":
            late_by = done_at - due
        esc_at = done_at
    elif ended_at is not None:
        status = "late" if due is not None and ended_at > due else "void"
        if status == "late":
            late_by = ended_at - due
        esc_at = ended_at
    elif due is None:
        status = "stopped"
        esc_at = None
        overdue_level = "not_due"
    elif now > due:
        status = "overdue"
        late_by = now - due
        esc_at = now
        overdue_level = "overdue"
    else:
        status = "pending"
        esc_at = now
        soon = rules.due_soon
        overdue_level = "due_soon" if clock.shift(now, soon.amount, soon.unit) >= due else "not_due"

    escalation = None
    if stage.escalates and due is not None and esc_at is not None and ladder:
        for level, threshold in _thresholds(clock, ladder, due):
            if threshold <= esc_at:
                escalation = level
    return StageState(stage.name, dept, deadline, done_at, status, late_by, escalation,
                      overdue_level, stage.role, rnd, extended)


def _thresholds(clock, ladder, due: datetime) -> tuple[tuple[str, datetime], ...]:
    """Return (level, time) for each rung of the ladder, cached per due time
    (many petitions share an end-of-day due time)."""
    key = ("ladder", due)
    hit = clock._cache.get(key)
    if hit is None:
        hit = clock._cache[key] = tuple(
            (step.level, clock.shift(due, step.offset.amount, step.offset.unit)) for step in ladder
        )
    return hit


def _extended(rs: RuleSet, stage: StageRule, base: Deadline, decision, start: datetime, stops) -> Deadline:
    """Return the deadline moved to the approved new date, capped by the rule."""
    at, new_due, _ = decision
    clock = rs.clock
    wanted = clock.end_of(new_due)
    cap = extension_cap(rs, stage, start, stops)
    steps = list(base.steps)
    steps.append(Step(new_due, "extension",
                      f"{at.astimezone(clock.tz):%Y-%m-%d} 中心批准延期至 {new_due} {_hhmm(clock.end_of_day)}",
                      f"{at.astimezone(clock.tz):%Y-%m-%d} the centre approved an extension to {new_due} at {_hhmm(clock.end_of_day)}"))
    due = wanted
    if cap is not None and cap.due_at is not None and wanted > cap.due_at:
        due = cap.due_at
        cap_day = clock.day_of_end(cap.due_at)
        total = stage.extension.max_total.text  # type: ignore[union-attr]
        steps.append(Step(cap_day, "cap",
                          f"延期总时限不超过{_zh_duration(stage)}：截止 {cap_day} {_hhmm(clock.end_of_day)}",
                          f"extensions may not exceed {total} in total: capped at {cap_day} {_hhmm(clock.end_of_day)}"))
    elif cap is not None and cap.due_at is None:
        due = None
    if base.due_at is not None and due is not None and due < base.due_at:
        # An approved "extension" that would shorten the time does not.
        due = base.due_at
    return replace(base, due_at=due, steps=tuple(steps), basis="extension",
                   provisional=base.provisional or (cap.provisional if cap else False))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _zh_duration(stage: StageRule) -> str:
    from .calendar import UNIT_NAMES

    d = stage.extension.max_total  # type: ignore[union-attr]
    n = int(d.amount) if float(d.amount).is_integer() else d.amount
    return f"{n}{UNIT_NAMES[d.unit][0]}"
