"""Text views for the terminal: one case's timeline, and a scorecard table."""

from __future__ import annotations

from datetime import datetime

from generator.evaluate import OVERDUE_ZH, STAGE_STATUS_ZH, STATUS_ZH, CaseState
from generator.metrics import LABELS_EN, LABELS_ZH, Rate, Scorecards
from generator.records import Case, Departments

STATUS_EN = {"open": "open", "closed": "closed", "rejected": "rejected", "withdrawn": "withdrawn"}


def _name(departments: Departments, dept: str | None, lang: str) -> str:
    if dept is None:
        return "（未分派）" if lang == "zh" else "(unassigned)"
    d = departments.get(dept)
    if d is None:
        return dept
    return d.name.zh if lang == "zh" else d.name.en


def _duration(hours: float, lang: str) -> str:
    if hours >= 24:
        return f"{hours / 24:.1f} 天" if lang == "zh" else f"{hours / 24:.1f} days"
    return f"{hours:.1f} 小时" if lang == "zh" else f"{hours:.1f} hours"


def render_status(case: Case, state: CaseState, departments: Departments, now: datetime,
                  lang: str = "zh") -> str:
    """Return a case's timeline, stages and deadline arithmetic as text."""
    zh = lang == "zh"
    p = case.petition
    tz = p.received_at.tzinfo
    out = [f"{p.id}  {p.title}"]
    out.append(("状态：" if zh else "Status: ")
               + (STATUS_ZH if zh else STATUS_EN)[state.status]
               + ("；承办单位：" if zh else "; held by: ") + _name(departments, state.holder, lang))
    if state.status == "open":
        level = OVERDUE_ZH[state.overdue_level] if zh else state.overdue_level.replace("_", " ")
        out.append(("逾期状态：" if zh else "Overdue: ") + level
                   + (("；督办阶段：" if zh else "; escalation: ") + state.escalation
                      if state.escalation else ""))
    if state.provisional:
        out.append("注意：部分期限所在年份尚无官方节假日安排，期限为暂定。" if zh else
                   "Note: some deadlines fall in a year with no official holiday data; they are provisional.")
    out.append(f"{'时间以' if zh else 'Times as of'} {now.astimezone(tz):%Y-%m-%d %H:%M %z}")
    out.append("")
    out.append("时间线：" if zh else "Timeline:")
    out.append(f"  {p.received_at:%Y-%m-%d %H:%M}  {'收到诉求' if zh else 'received'} ({p.channel}, {p.category})")
    for e in case.events:
        detail = ""
        if e.kind in ("assigned", "transferred"):
            detail = " → " + _name(departments, e.get("to"), lang)
        elif e.kind == "reply":
            detail = (" (final, " + str(e.get("resolution")) + ")") if e.get("final") else " (interim)"
        elif e.kind == "feedback":
            detail = f" ({e.get('rating')})"
        elif e.kind == "correction":
            keys = ", ".join(map(str, e.get("set") or {}))
            if e.get("retract") is True:
                detail = f" ({'撤销' if zh else 'retracts'} {e.get('corrects')})"
            else:
                detail = f" ({'更正' if zh else 'corrects'} {e.get('corrects')}: {keys})"
        elif e.kind == "extension_decided":
            detail = f" ({e.get('decision')}" + (f", {e.get('new_due')}" if e.get("new_due") else "") + ")"
        who = _name(departments, e.by, lang) if e.by in departments.departments else e.by
        out.append(f"  {e.at.astimezone(tz):%Y-%m-%d %H:%M}  {e.kind}{detail}  [{who}]  {e.name}")
    out.append("")
    out.append("期限：" if zh else "Deadlines:")
    for s in state.stages:
        due = f"{s.deadline.due_at:%Y-%m-%d %H:%M}" if s.deadline.due_at else "—"
        status = STAGE_STATUS_ZH.get(s.status, s.status) if zh else s.status.replace("_", " ")
        late = ""
        if s.late_by is not None and s.late_by.total_seconds() > 0:
            late = ("，超时 " if zh else ", late by ") + _duration(s.late_by.total_seconds() / 3600, lang)
        rnd = f" #{s.round + 1}" if s.round else ""
        out.append(f"  {s.stage}{rnd} — {_name(departments, s.department, lang)}: "
                   f"{'到期' if zh else 'due'} {due}, {status}{late}"
                   + (f" [{s.escalation}]" if s.escalation else ""))
        for line in s.deadline.lines(lang):
            out.append(f"      {line}")
    return "\n".join(out)


def _rate(r: Rate) -> str:
    if r.denominator == 0:
        return "—"
    return f"{r.value * 100:5.1f}% ({r.numerator}/{r.denominator})"


def render_scorecards(cards: Scorecards, departments: Departments, period: str,
                      lang: str = "zh") -> str:
    """Return a period's department scorecards as a text table."""
    labels = LABELS_ZH if lang == "zh" else LABELS_EN
    rows = cards.for_period(period)
    if not rows:
        known = ", ".join(cards.periods[:12])
        return (f"没有 {period} 的数据。" if lang == "zh" else f"No figures for {period}.") + f" ({known})"
    head = [("排名" if lang == "zh" else "rank"), ("单位" if lang == "zh" else "department"),
            labels["received"], labels["replied_on_time"], labels["closed"],
            labels["satisfaction"], labels["overdue_now"]]
    table = [head]
    for c in rows:
        table.append([
            str(c.rank) if c.ranked else ("不排名" if lang == "zh" else "not ranked"),
            _name(departments, c.department, lang), str(c.received), _rate(c.replied_on_time),
            _rate(c.closed), _rate(c.satisfaction), str(c.overdue_now)])
    h = cards.headline(period)
    widths = [max(_width(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths)) for row in table]
    if h is not None:
        lines.append("")
        lines.append(("全市：" if lang == "zh" else "City: ")
                     + f"{labels['received']} {h.received}; "
                     + f"{'答复率' if lang == 'zh' else 'reply rate'} {_rate(h.reply_rate)}; "
                     + f"{'按时率' if lang == 'zh' else 'on-time rate'} {_rate(h.on_time_rate)}; "
                     + f"{'办结率' if lang == 'zh' else 'completion rate'} {_rate(h.completion_rate)}; "
                     + f"{'满意率' if lang == 'zh' else 'satisfaction rate'} {_rate(h.satisfaction_rate)}; "
                     + f"{'当前逾期' if lang == 'zh' else 'overdue now'} {h.overdue_now}")
    lines.append(("少于 %d 件的单位列出但不排名。" if lang == "zh" else
                  "Departments with fewer than %d cases are listed but not ranked.")
                 % cards.minimum_cases_for_ranking)
    return "\n".join(lines)


def _width(text: str) -> int:
    """Return the display width: CJK characters take two columns."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
