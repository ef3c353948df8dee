"""Return what the site shows of one case as of ``now``: its facts, timeline,
stage clocks with their arithmetic, status and escalation.

The clocks are :func:`generator.evaluate.evaluate_case`'s; a view adds what a
page needs (local times as text, the timeline, replies, the commits). A view is a plain dict of strings, numbers and tuples, so that its ``repr`` is a
stable digest input (only changed pages are rewritten) and templates read it
directly. Deadlines come from the rules' clocks (:mod:`generator.rules`): one
clock per stage, started when the holding department got the case (or on
receipt), stopped while waiting for the citizen's clarification, moved by an
approved extension (never past the cap), restarted on reopening.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Mapping

from generator import records as r
from generator.evaluate import CaseState, evaluate_case
from generator.rules import Rules

TIME_FMT = "%Y-%m-%d %H:%M"


def span_text(delta: timedelta) -> tuple[str, str]:
    """Return a duration as (Chinese, English) text in days and hours."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    zh, en = [], []
    if days:
        zh.append(f"{days}天")
        en.append(f"{days} d")
    if hours:
        zh.append(f"{hours}小时")
        en.append(f"{hours} h")
    if not days and not hours:
        zh.append(f"{mins}分钟")
        en.append(f"{mins} min")
    return "".join(zh), " ".join(en)


# Every status :func:`status_of` gives.
SITE_STATUSES = ("open", "due_soon", "overdue", "closed", "rejected", "withdrawn", "unassigned")


def status_of(state: CaseState) -> str:
    """Return the site's status of a case: open, due_soon, overdue, closed,
    rejected, withdrawn or unassigned."""
    if state.status != "open":
        return state.status
    if state.holder is None:
        return "unassigned"
    if state.overdue_level in ("overdue", "due_soon"):
        return state.overdue_level
    return "open"


def days_overdue(state: CaseState, now: datetime) -> int:
    """Return the whole days since the earliest missed due time of a case
    overdue as of ``now``, else 0: with :func:`shown_events`, all that its view
    takes from ``now`` besides its state."""
    if status_of(state) != "overdue":
        return 0
    dues = [s.deadline.due_at for s in state.stages
            if s.status == "overdue" and s.deadline.due_at is not None]
    return (now - min(dues)).days if dues else 0


def shown_events(case: r.Case, now: datetime) -> list[r.Event]:
    """Return the events of ``case`` its view shows as of ``now``: those up to ``now``."""
    return [e for e in case.events if e.at <= now]


def case_view(case: r.Case, rules: Rules, now: datetime, commits: Mapping[str, str],
              state: CaseState | None = None) -> dict[str, Any]:
    """Return the view of ``case`` as of ``now``; ``commits`` maps record paths to
    the commit that added them."""
    p = case.petition
    if state is None:
        state = evaluate_case(case, rules, now)
    rs = rules.rule_set_for(p.received_at)
    local = rs.clock.local
    events = shown_events(case, now)
    status = status_of(state)

    stages = []
    for s in state.stages:
        if s.status == "void":
            continue
        rule = rs.stage(s.stage)
        label = (rule.label_zh, rule.label_en) if rule else (s.stage, s.stage)
        due = s.deadline.due_at
        stages.append({
            "name": s.stage, "label": label, "department": s.department, "round": s.round,
            "start": local(s.deadline.start).strftime(TIME_FMT),
            "due": local(due).strftime(TIME_FMT) if due else None,
            "done": local(s.done_at).strftime(TIME_FMT) if s.done_at else None,
            "state": s.status, "late": span_text(s.late_by) if s.late_by else None,
            "extended": s.extended, "escalation": s.escalation,
            "lines": (tuple(s.deadline.lines("zh")), tuple(s.deadline.lines("en"))),
            "provisional": s.deadline.provisional,
        })

    replies = [e for e in events if e.kind == "reply"]
    timeline = [{
        "kind": "petition", "at": local(p.received_at).strftime(TIME_FMT), "by": "petitioner",
        "file": "petition.yaml", "commit": commits.get(p.source.path, ""), "fields": (), "body": "",
    }]
    for e in events:
        shown = tuple(sorted((k, str(v)) for k, v in e.fields.items()
                             if k not in ("body", "comment") and not isinstance(v, (dict, list))))
        timeline.append({
            "kind": e.kind, "at": local(e.at).strftime(TIME_FMT), "by": e.by, "file": e.name,
            "commit": commits.get(e.source.path, ""), "fields": shown,
            "body": str(e.get("body") or e.get("comment") or ""),
        })
    received_local = local(p.received_at)
    return {
        "id": p.id, "title": p.title, "body": p.body, "category": p.category,
        "channel": p.channel, "district": p.district or "", "address": p.address or "",
        "display_name": p.display_name,
        "received": received_local.strftime(TIME_FMT), "received_at": p.received_at,
        "year": received_local.year, "month": received_local.strftime("%Y-%m"),
        "holder": state.holder, "status": status,
        "escalation": state.escalation if status in ("open", "due_soon", "overdue") else None,
        "days_overdue": days_overdue(state, now), "stages": tuple(stages), "timeline": tuple(timeline),
        # Deadlines missed, done late or still overdue (the reports' best and worst cases).
        "late_stages": sum(1 for s in state.stages if s.status in ("late", "overdue")),
        "replies": tuple({"at": local(e.at).strftime(TIME_FMT), "by": e.by,
                          "final": bool(e.get("final")), "resolution": e.get("resolution"),
                          "body": str(e.get("body") or "")} for e in replies),
        "final_reply_at": state.final_reply_at, "rating": state.rating,
        "closed_at": state.closed_at, "resolution": state.resolution,
        "handling_hours": ((state.final_reply_at - state.holdings[0].start).total_seconds() / 3600
                           if state.final_reply_at and state.holdings else None),
        "legacy_due": local(state.legacy_due_at).strftime(TIME_FMT) if state.legacy_due_at else None,
        "legacy_system": p.legacy.system if p.legacy else None,
        "folder": case.folder,
        "last_event_at": events[-1].at if events else p.received_at,
    }
