"""Return the rules page: rules.yaml in plain words and the data its in-browser
deadline calculator needs (the rule set in force and the working-day table)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from generator.rules import Duration, Limit, RuleSet, Rules

UNIT_WORDS = {"hours": ("小时", "hours"), "office_hours": ("个办公小时", "office hours"),
              "working_days": ("个工作日", "working days"), "days": ("日", "calendar days")}


def duration_text(d: Duration, lang: str) -> str:
    n = int(d.amount) if float(d.amount).is_integer() else d.amount
    zh, en = UNIT_WORDS[d.unit]
    return f"{n}{zh}" if lang == "zh" else f"{n} {en}"


def limit_text(limit: Limit, lang: str) -> str:
    if not limit.by_arrival:
        return duration_text(limit.office_time, lang)
    if lang == "zh":
        return f"办公时间内收到 {duration_text(limit.office_time, lang)}，非办公时间收到 {duration_text(limit.rest_time, lang)}"
    return f"{duration_text(limit.office_time, lang)} if received in office time, {duration_text(limit.rest_time, lang)} otherwise"


def calendar_table(rules: Rules, first_year: int, last_year: int) -> dict[str, Any]:
    """Return the days that differ from Monday-to-Friday, with their reason, and
    the provisional years, for ``first_year``..``last_year``."""
    cal = rules.calendar
    days = {}
    d, end = date(first_year, 1, 1), date(last_year, 12, 31)
    while d <= end:
        info = cal.day(d)
        if info.working != (d.weekday() < 5) or info.kind in ("holiday", "makeup", "extra_rest", "extra_working"):
            zh, en = info.describe(d)
            days[d.isoformat()] = [1 if info.working else 0, zh, en]
        d += timedelta(days=1)
    return {"days": days, "provisional": [y for y in range(first_year, last_year + 1)
                                          if cal.year_is_provisional(y)],
            "first": first_year, "last": last_year}


def _limit_json(limit: Limit) -> dict[str, Any]:
    return {"by_arrival": limit.by_arrival,
            "office": [limit.office_time.amount, limit.office_time.unit],
            "rest": [limit.rest_time.amount, limit.rest_time.unit]}


def calculator_data(rules: Rules, rs: RuleSet, first_year: int, last_year: int) -> dict[str, Any]:
    """Return what the browser calculator needs, as JSON-ready data."""
    clock = rs.clock
    return {
        "end_of_day": clock.end_of_day, "late_receipt_after": clock.late_receipt_after,
        "office": [list(p) for p in clock.office.periods],
        "stages": [{"name": s.name, "zh": s.label_zh, "en": s.label_en, "limit": _limit_json(s.limit),
                    "by_category": {k: _limit_json(v) for k, v in sorted(s.by_category.items())},
                    "by_channel": {k: _limit_json(v) for k, v in sorted(s.by_channel.items())},
                    "cap": None if s.extension is None else [s.extension.max_total.amount, s.extension.max_total.unit]}
                   for s in rs.stages],
        "calendar": calendar_table(rules, first_year, last_year),
    }


def bodies(site, rules: Rules, min_cases: int) -> tuple[str, str]:
    """Return the rules page's body in both languages."""
    rs = rules.rule_sets[-1]
    first, last = rs.effective_from.year, max(rs.effective_from.year + 2, 2027)
    data = json.dumps(calculator_data(rules, rs, first, last), ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).replace("</", "<\\/")
    out = []
    for lang in ("zh", "en"):
        stages = []
        for s in rs.stages:
            text = limit_text(s.limit, lang)
            for cat, lim in sorted(s.by_category.items()):
                text += f"; {cat}: {limit_text(lim, lang)}"
            for ch, lim in sorted(s.by_channel.items()):
                text += f"; {ch}: {limit_text(lim, lang)}"
            if s.extension:
                cap = duration_text(s.extension.max_total, lang)
                text += (f"；经批准可延期，总计不超过{cap}" if lang == "zh"
                         else f"; extensions with approval, at most {cap} in total")
            stages.append({"label": s.label_zh if lang == "zh" else s.label_en, "text": text})
        ext = rs.extension_stage
        cap = duration_text(ext.extension.max_total, lang) if ext and ext.extension else "—"
        from generator.render.i18n import t
        esc = [f"{t(e.level, lang)} {('到期后' if lang == 'zh' else 'at due time +') if e.offset.amount >= 0 else ('到期前' if lang == 'zh' else 'before due:')} "
               f"{duration_text(Duration(abs(e.offset.amount), e.offset.unit), lang)}" for e in rs.escalation]
        out.append(site.env.get_template("shell/rules.html").render(
            lang=lang, home=site.home(lang), root=site.base_path, rule_set=rs, stages=stages,
            end_of_day=f"{rs.clock.end_of_day // 60:02d}:{rs.clock.end_of_day % 60:02d}", cap=cap,
            escalation=esc, min_cases=min_cases, calc_json=data, sample_start="2025-09-30T15:00",
            calendar_words=rules.calendar.rule_words(), local_zone=rules.timezone,
            categories=("consultation", "complaint", "help", "suggestion", "report"),
            channels=("web", "phone", "app", "weibo", "wechat", "email", "letter", "visit")))
    return out[0], out[1]
