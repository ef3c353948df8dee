"""Return what the site shows of one case as of ``now``: its facts, timeline,
stage clocks with their arithmetic, status and escalation.

A view is a plain dict of strings, numbers and tuples, so that its ``repr`` is a
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
from generator.rules import Rules, extension_cap, stage_deadline

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


def _holdings(case: r.Case) -> list[tuple[str, datetime]]:
    """Return every (department, since) the case was routed to, in order."""
    out = []
    for e in case.events:
        if e.kind in ("assigned", "transferred") and e.get("to"):
            out.append((e.get("to"), e.at))
    return out


def _stops(case: r.Case, since: datetime) -> list[tuple[datetime, datetime | None]]:
    """Return the intervals the clocks stood still waiting for the citizen."""
    stops: list[tuple[datetime, datetime | None]] = []
    open_at: datetime | None = None
    for e in case.events:
        if e.at < since:
            continue
        if e.kind == "clarification_requested" and open_at is None:
            open_at = e.at
        elif e.kind == "clarification_received" and open_at is not None:
            stops.append((open_at, e.at))
            open_at = None
    if open_at is not None:
        stops.append((open_at, None))
    return stops


def case_view(case: r.Case, rules: Rules, now: datetime, commits: Mapping[str, str]) -> dict[str, Any]:
    """Return the view of ``case`` as of ``now``; ``commits`` maps record paths to
    the commit that added them."""
    p = case.petition
    rs = rules.rule_set_for(p.received_at)
    clock = rs.clock
    local = clock.local
    events = [e for e in case.events if e.at <= now]
    holdings = _holdings(case)
    holder, since = holdings[-1] if holdings else (None, None)
    kinds = {e.kind for e in events}
    last_reopen = max((e.at for e in events if e.kind == "reopened"), default=None)

    stages = []
    for stage in rs.stages:
        start = p.received_at if stage.starts == "received" else since
        if start is None:
            continue
        if stage.restarts_on_reopen and last_reopen and last_reopen > start:
            start = last_reopen
        done = next((e for e in events if e.at >= start and e.by == holder
                     and stage.is_done_by(e.kind, e.fields)), None)
        stops = _stops(case, start)
        deadline = stage_deadline(rs, stage, start, p.category, p.channel, stops)
        due = deadline.due_at
        extended = None
        if stage.extension is not None:
            approved = [e for e in events if e.kind == "extension_decided" and e.at >= start
                        and e.get("decision") == "approved" and e.get("new_due")]
            if approved:
                new_due = r.parse_date(approved[-1].get("new_due"))
                cap = extension_cap(rs, stage, start, stops)
                if new_due is not None:
                    extended = clock.end_of(new_due)
                    if cap is not None and cap.due_at is not None and extended > cap.due_at:
                        extended = cap.due_at
                    if due is None or extended > due:
                        due = extended
        end = done.at if done else None
        late = None
        if due is not None:
            ref = end if end is not None else now
            if ref > due:
                late = span_text(ref - due)
        stages.append({
            "name": stage.name, "label": (stage.label_zh, stage.label_en),
            "start": local(start).strftime(TIME_FMT),
            "due": local(due).strftime(TIME_FMT) if due else None,
            "due_at": due, "done_at": end,
            "done": local(end).strftime(TIME_FMT) if end else None,
            "late": late, "open": end is None,
            "extended": local(extended).strftime(TIME_FMT) if extended else None,
            "lines": (tuple(deadline.lines("zh")), tuple(deadline.lines("en"))),
            "provisional": deadline.provisional, "escalates": stage.escalates,
        })

    rejected = next((e for e in events if e.kind == "rejected"), None)
    withdrawn = "withdrawn" in kinds
    closed_at = max((e.at for e in events if e.kind == "closed"), default=None)
    closed = closed_at is not None and (last_reopen is None or closed_at > last_reopen)
    open_stages = [s for s in stages if s["open"] and s["due_at"] is not None]
    overdue = [s for s in open_stages if now > s["due_at"]]
    escalation, days_overdue = None, 0
    if rejected:
        status = "rejected"
    elif withdrawn:
        status = "withdrawn"
    elif closed:
        status = "closed"
    elif holder is None:
        status = "unassigned"
    elif overdue:
        status = "overdue"
        worst = min(overdue, key=lambda s: s["due_at"])
        days_overdue = (now - worst["due_at"]).days
        for step in rs.escalation:
            if any(s["escalates"] and now >= clock.shift(s["due_at"], step.offset.amount, step.offset.unit)
                   for s in overdue) and step.offset.amount >= 0:
                escalation = step.level
    else:
        status = "open"
        window = rules.due_soon
        if any(clock.shift(now, window.amount, window.unit) >= s["due_at"] for s in open_stages):
            status = "due_soon"
        for step in rs.escalation:
            if step.offset.amount < 0 and any(
                    s["escalates"] and now >= clock.shift(s["due_at"], step.offset.amount, step.offset.unit)
                    for s in open_stages):
                escalation = step.level
    recorded = [e for e in events if e.kind == "escalated"]
    if recorded and status not in ("closed", "rejected", "withdrawn"):
        levels = r.ESCALATION_LEVELS
        top = max((e.get("level") for e in recorded), key=levels.index)
        if escalation is None or levels.index(top) > levels.index(escalation):
            escalation = top

    replies = [e for e in events if e.kind == "reply"]
    final = next((e for e in replies if e.get("final")), None)
    ratings = [e.get("rating") for e in events if e.kind == "feedback"]
    timeline = [{
        "kind": "petition", "at": local(p.received_at).strftime(TIME_FMT), "by": "petitioner",
        "file": "petition.yaml", "commit": commits.get(p.source.path, ""), "fields": (),
        "body": "",
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
    resolve = next((s for s in stages if s["name"] == "resolve"), stages[-1] if stages else None)
    return {
        "id": p.id, "title": p.title, "body": p.body, "category": p.category,
        "channel": p.channel, "district": p.district or "", "address": p.address or "",
        "display_name": p.display_name,
        "received": received_local.strftime(TIME_FMT), "received_at": p.received_at,
        "year": received_local.year, "month": received_local.strftime("%Y-%m"),
        "holder": holder, "status": status, "escalation": escalation,
        "days_overdue": days_overdue, "stages": tuple(stages), "timeline": tuple(timeline),
        "replies": tuple({"at": local(e.at).strftime(TIME_FMT), "by": e.by,
                          "final": bool(e.get("final")), "resolution": e.get("resolution"),
                          "body": str(e.get("body") or "")} for e in replies),
        "final_reply_at": final.at if final else None,
        "first_reply_at": replies[0].at if replies else None,
        "rating": ratings[-1] if ratings else None,
        "closed_at": closed_at if closed else None,
        "resolve_due_at": resolve["due_at"] if resolve else None,
        "resolve_done_at": resolve["done_at"] if resolve else None,
        "assigned_at": holdings[0][1] if holdings else None,
        "legacy_due": local(p.legacy.due_at).strftime(TIME_FMT) if p.legacy and p.legacy.due_at else None,
        "legacy_system": p.legacy.system if p.legacy else None,
        "folder": case.folder,
        "last_event_at": events[-1].at if events else p.received_at,
    }
