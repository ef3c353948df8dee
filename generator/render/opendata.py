"""Return the open-data downloads: cases and events as JSON Lines and CSV, and
the scorecards as JSON. Every row is sorted, so equal input gives equal bytes."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any, Iterable

CASE_FIELDS = [
    ("id", "诉求编号（年份-序号）", "petition number (year-sequence)"),
    ("received_at", "受理时间（ISO 8601，含时区）", "time received (ISO 8601 with offset)"),
    ("channel", "渠道", "channel (web, phone, app, ...)"),
    ("category", "类别", "category (consultation, complaint, help, suggestion, report)"),
    ("title", "标题", "public title"),
    ("district", "区县", "district"),
    ("department", "当前承办部门编号", "id of the department holding the case"),
    ("status", "状态：open、due_soon、overdue、closed、rejected、withdrawn、unassigned",
     "status: open, due_soon, overdue, closed, rejected, withdrawn, unassigned"),
    ("escalation", "督办级别：reminder、notice、supervision、accountability，或空",
     "escalation level: reminder, notice, supervision, accountability, or empty"),
    ("days_overdue", "逾期天数（截至数据时点）", "whole days overdue as of the build's now"),
    ("final_reply_at", "正式答复时间", "time of the final reply"),
    ("closed_at", "办结时间", "time the centre closed the case"),
    ("rating", "评价：satisfied、basically_satisfied、dissatisfied，或空",
     "rating: satisfied, basically_satisfied, dissatisfied, or empty"),
]
EVENT_FIELDS = [
    ("petition", "诉求编号", "petition number"),
    ("file", "记录文件名", "record file name"),
    ("kind", "事件类型", "event kind"),
    ("at", "发生时间", "time"),
    ("by", "记录者（部门编号、centre、petitioner、system）", "actor (department id, centre, petitioner, system)"),
    ("commit", "添加该记录的提交", "commit that added the record"),
]


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    return v


def case_row(v: dict[str, Any]) -> dict[str, Any]:
    """Return the open-data row of a case view."""
    return {
        "id": v["id"], "received_at": _value(v["received_at"]), "channel": v["channel"],
        "category": v["category"], "title": v["title"], "district": v["district"],
        "department": v["holder"], "status": v["status"], "escalation": v["escalation"],
        "days_overdue": v["days_overdue"],
        "final_reply_at": _value(v["final_reply_at"]), "closed_at": _value(v["closed_at"]),
        "rating": v["rating"],
    }


def event_rows(v: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the open-data rows of a case view's timeline."""
    return [{"petition": v["id"], "file": e["file"], "kind": e["kind"], "at": e["at"],
             "by": e["by"], "commit": e["commit"]} for e in v["timeline"]]


def jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def csv_text(rows: Iterable[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r[k] is None else r[k] for k in fields})
    return buf.getvalue()
