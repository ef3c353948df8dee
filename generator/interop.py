"""Open data in the standards other tools read: Open311 GeoReport v2 and SQLite.

Both writers are pure functions of the archive's cases (plus the departments
and the time zone) that write into an output directory they are given. Every
exported field is documented in ``docs/open-data.md``.

What each case is exported with comes from :func:`case_facts`: its status,
the department holding it, the times of assignment, final reply and closure,
its resolution and rating, and the legacy due time of an imported record. A
caller that has our computed deadline for a case (``generator.evaluate``)
passes it through ``deadline_of``; without it, Open311's ``expected_datetime``
and the on-time columns use the legacy due time, and say so.
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from generator import records as r

SCHEMA_VERSION = 1

CATEGORY_NAMES = {
    "consultation": ("咨询", "Consultation", "A question about a policy or a service."),
    "complaint": ("投诉", "Complaint", "Something wrong that a department should put right."),
    "help": ("求助", "Request for help", "A request for a service or a repair."),
    "suggestion": ("建议", "Suggestion", "An idea for doing something better."),
    "report": ("举报", "Report", "A report of someone breaking a rule."),
}


@dataclass(frozen=True)
class CaseFacts:
    """What the records say about one case, read from its timeline."""

    status: str  # open | closed | rejected | withdrawn
    department: str | None  # the department holding it (last assigned or transferred to)
    assigned_at: datetime | None
    first_reply_at: datetime | None
    final_reply_at: datetime | None
    final_reply: str | None
    resolution: str | None
    closed_at: datetime | None
    rating: str | None
    updated_at: datetime  # the last event's time (the received time if none)
    legacy_due_at: datetime | None
    legacy_status: str | None


def case_facts(case: r.Case) -> CaseFacts:
    """Return the facts of a case read from its events in timeline order.

    A reopened case is open again. The case's records are already corrected
    (:func:`generator.validate.check_case`); the corrections themselves are
    not facts of its handling.
    """
    status = "open"
    dept = assigned_at = first_reply = final_at = closed_at = None
    final_body = resolution = rating = None
    updated = case.petition.received_at
    for e in case.events:
        if e.kind == "correction":
            continue
        updated = max(updated, e.at)
        if e.kind == "assigned":
            dept, assigned_at = e.get("to"), e.at
        elif e.kind == "transferred":
            dept = e.get("to")
        elif e.kind == "reply":
            first_reply = first_reply or e.at
            if e.get("final") is True:
                final_at, final_body, resolution = e.at, e.get("body"), e.get("resolution")
        elif e.kind == "closed":
            status, closed_at = "closed", e.at
        elif e.kind == "reopened":
            status, closed_at = "open", None
        elif e.kind == "feedback":
            rating = e.get("rating")
        elif e.kind in ("rejected", "withdrawn"):
            status = e.kind
    legacy = case.petition.legacy
    due, legacy_status = (legacy.due_at, legacy.status) if legacy else (None, None)
    return CaseFacts(status, dept, assigned_at, first_reply, final_at, final_body, resolution,
                     closed_at, rating, updated, due, legacy_status)


def _iso(t: datetime | None, tz: tzinfo) -> str | None:
    return t.astimezone(tz).isoformat() if t is not None else None


def _dept_name(departments: r.Departments, dept_id: str | None) -> str | None:
    dept = departments.get(dept_id) if dept_id else None
    return f"{dept.name.zh} ({dept.name.en})" if dept else dept_id


# -- Open311 GeoReport v2 ----------------------------------------------------------


def open311_services() -> list[dict[str, Any]]:
    """Return GeoReport v2 ``services.json``: one service per petition category."""
    return [
        {
            "service_code": code,
            "service_name": f"{zh} {en}",
            "description": desc,
            "metadata": False,
            "type": "batch",  # requests reach the archive through reviewed pull requests
            "keywords": f"{zh},{en.lower()},{code}",
            "group": "12345",
        }
        for code, (zh, en, desc) in CATEGORY_NAMES.items()
    ]


def open311_requests(cases: Iterable[r.Case], departments: r.Departments, tz: tzinfo,
                     deadline_of: Callable[[r.Case], datetime | None] | None = None) -> list[dict[str, Any]]:
    """Return GeoReport v2 ``requests.json``: one service request per case.

    Open311 knows two statuses: ``open`` and ``closed``; rejected and
    withdrawn cases are closed with the reason in ``status_notes``.
    ``expected_datetime`` is our computed deadline when ``deadline_of`` gives
    one, else the legacy system's due time, else null. Coordinates are null:
    the archive keeps only an approximate, public place.
    """
    out = []
    for case in sorted(cases, key=lambda c: c.id):
        p = case.petition
        facts = case_facts(case)
        notes = facts.final_reply
        if facts.status in ("rejected", "withdrawn"):
            notes = {"rejected": "已驳回 (rejected)", "withdrawn": "已撤回 (withdrawn)"}[facts.status]
        expected = deadline_of(case) if deadline_of else None
        if expected is None:
            expected = facts.legacy_due_at
        address = ", ".join(x for x in (p.address, p.district) if x) or None
        zh, en, _ = CATEGORY_NAMES[p.category]
        out.append({
            "service_request_id": p.id,
            "status": "open" if facts.status == "open" else "closed",
            "status_notes": notes,
            "service_name": f"{zh} {en}",
            "service_code": p.category,
            "description": f"{p.title}\n\n{p.body}",
            "agency_responsible": _dept_name(departments, facts.department),
            "service_notice": None,
            "requested_datetime": _iso(p.received_at, tz),
            "updated_datetime": _iso(facts.updated_at, tz),
            "expected_datetime": _iso(expected, tz),
            "address": address,
            "address_id": None,
            "zipcode": None,
            "lat": None,
            "long": None,
            "media_url": None,
        })
    return out


def _write_json(path: Path, data: Any) -> Path:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_open311(out_dir: str | Path, cases: Iterable[r.Case], departments: r.Departments,
                  tz: tzinfo, deadline_of: Callable[[r.Case], datetime | None] | None = None) -> list[Path]:
    """Write ``services.json`` and ``requests.json`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        _write_json(out / "services.json", open311_services()),
        _write_json(out / "requests.json", open311_requests(cases, departments, tz, deadline_of)),
    ]


# -- SQLite ------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE metadata (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE departments (
  id TEXT PRIMARY KEY,
  name_zh TEXT NOT NULL,
  name_en TEXT NOT NULL,
  level TEXT NOT NULL,
  parent TEXT,
  categories TEXT NOT NULL
);
CREATE TABLE cases (
  id TEXT PRIMARY KEY,
  folder TEXT NOT NULL,
  received_at TEXT NOT NULL,
  received_date TEXT NOT NULL,
  period TEXT NOT NULL,
  channel TEXT NOT NULL,
  category TEXT NOT NULL,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  display_name TEXT NOT NULL,
  district TEXT,
  address TEXT,
  status TEXT NOT NULL,
  department TEXT REFERENCES departments(id),
  assigned_at TEXT,
  first_reply_at TEXT,
  final_reply_at TEXT,
  resolution TEXT,
  closed_at TEXT,
  rating TEXT,
  updated_at TEXT NOT NULL,
  due_at TEXT,
  due_basis TEXT,
  on_time INTEGER,
  days_to_close REAL,
  legacy_system TEXT,
  legacy_id TEXT,
  legacy_due_at TEXT,
  legacy_status TEXT,
  legacy_on_time INTEGER
);
CREATE TABLE events (
  case_id TEXT NOT NULL REFERENCES cases(id),
  seq INTEGER NOT NULL,
  file TEXT NOT NULL,
  kind TEXT NOT NULL,
  at TEXT NOT NULL,
  by TEXT NOT NULL,
  to_department TEXT,
  final INTEGER,
  resolution TEXT,
  rating TEXT,
  body TEXT,
  note TEXT,
  fields TEXT NOT NULL,
  PRIMARY KEY (case_id, seq)
);
CREATE TABLE legacy_scorecards (
  department TEXT NOT NULL REFERENCES departments(id),
  period TEXT NOT NULL,
  received INTEGER NOT NULL,
  closed INTEGER NOT NULL,
  judged INTEGER NOT NULL,
  on_time INTEGER NOT NULL,
  on_time_rate REAL,
  median_days_to_close REAL,
  PRIMARY KEY (department, period)
);
CREATE TABLE scorecards (
  department TEXT NOT NULL REFERENCES departments(id),
  period TEXT NOT NULL,
  figure TEXT NOT NULL,
  numerator INTEGER,
  denominator INTEGER,
  value REAL,
  wilson_low REAL,
  wilson_high REAL,
  PRIMARY KEY (department, period, figure)
);
CREATE INDEX cases_department ON cases(department);
CREATE INDEX cases_received_at ON cases(received_at);
CREATE INDEX cases_status ON cases(status);
CREATE INDEX cases_legacy ON cases(legacy_system, legacy_id);
CREATE INDEX events_kind ON events(kind, at);
"""


@dataclass(frozen=True)
class CaseRow:
    """One row of the ``cases`` table, with what the scorecards need."""

    values: tuple[Any, ...]
    department: str | None
    period: str
    closed: bool
    judged: bool
    on_time: bool
    days_to_close: float | None


def _case_row(case: r.Case, tz: tzinfo,
              deadline_of: Callable[[r.Case], datetime | None] | None) -> CaseRow:
    p = case.petition
    f = case_facts(case)
    local = p.received_at.astimezone(tz)
    due = deadline_of(case) if deadline_of else None
    basis = "wenzheng" if due is not None else None
    done = f.final_reply_at or f.closed_at
    ours_judged = due is not None and done is not None
    ours_on_time = ours_judged and done <= due  # type: ignore[operator]
    # The source's own judgement, kept beside ours and never replacing it.
    judged = f.legacy_due_at is not None and f.status == "closed" and done is not None
    on_time = judged and done <= f.legacy_due_at  # type: ignore[operator]
    days = (f.closed_at - p.received_at).total_seconds() / 86400 if f.closed_at else None
    values = (
        p.id, case.folder, _iso(p.received_at, tz), f"{local:%Y-%m-%d}", f"{local:%Y-%m}",
        p.channel, p.category, p.title, p.body, p.display_name, p.district, p.address,
        f.status, f.department, _iso(f.assigned_at, tz), _iso(f.first_reply_at, tz),
        _iso(f.final_reply_at, tz), f.resolution, _iso(f.closed_at, tz), f.rating,
        _iso(f.updated_at, tz), _iso(due, tz), basis,
        (1 if ours_on_time else 0) if ours_judged else None,
        round(days, 4) if days is not None else None,
        p.legacy.system if p.legacy else None, p.legacy.id if p.legacy else None,
        _iso(f.legacy_due_at, tz), f.legacy_status, (1 if on_time else 0) if judged else None,
    )
    return CaseRow(values, f.department, f"{local:%Y-%m}", f.status == "closed", judged,
                   bool(on_time), days)


def legacy_scorecard_rows(rows: Sequence[CaseRow]) -> list[tuple[Any, ...]]:
    """Return the source system's own judgement: one row per department and
    month, and per department for ``all``.

    ``received`` counts cases received in the period; ``closed`` those of them
    closed; ``judged`` the closed ones with a legacy due time; ``on_time`` those
    answered (final reply, else closure) by it. The official figures are the
    ``scorecards`` table, computed by :mod:`generator.metrics` on our deadlines.
    """
    groups: dict[tuple[str, str], list[CaseRow]] = {}
    for row in rows:
        if row.department is None:
            continue
        groups.setdefault((row.department, row.period), []).append(row)
        groups.setdefault((row.department, "all"), []).append(row)
    out = []
    for (dept, period), members in sorted(groups.items()):
        closed = [m for m in members if m.closed]
        judged = [m for m in members if m.judged]
        on_time = sum(1 for m in judged if m.on_time)
        days = [m.days_to_close for m in closed if m.days_to_close is not None]
        out.append((dept, period, len(members), len(closed), len(judged), on_time,
                    round(on_time / len(judged), 4) if judged else None,
                    round(statistics.median(days), 4) if days else None))
    return out


def official_scorecard_rows(cards: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Return the official scorecards (``Scorecards.to_dict()``) as one row per
    department, period and figure: counts have only a numerator, rates all five
    columns, times their median and 90th percentile as two figures."""
    out: list[tuple[Any, ...]] = []
    for card in cards.get("departments", []):
        for key, value in sorted(card.items()):
            if key in ("department", "period"):
                continue
            base = (card["department"], card["period"])
            if isinstance(value, dict) and "denominator" in value:
                out.append(base + (key, value["numerator"], value["denominator"], value["value"],
                                   value["wilson_low"], value["wilson_high"]))
            elif isinstance(value, dict) and "median_hours" in value:
                out.append(base + (f"{key}.median_hours", value["count"], None,
                                   value["median_hours"], None, None))
                out.append(base + (f"{key}.p90_hours", value["count"], None,
                                   value["p90_hours"], None, None))
            elif isinstance(value, dict):
                out.extend(base + (f"{key}.{k}", v, None, None, None, None)
                           for k, v in sorted(value.items()))
            elif isinstance(value, bool) or value is None or isinstance(value, int):
                out.append(base + (key, None if value is None else int(value), None, None, None, None))
    return out


def write_sqlite(path: str | Path, cases: Iterable[r.Case], departments: r.Departments, tz: tzinfo,
                 metadata: Mapping[str, str],
                 deadline_of: Callable[[r.Case], datetime | None] | None = None,
                 cards: Mapping[str, Any] | None = None) -> Path:
    """Write the archive as one SQLite database at ``path``; return it.

    Written to a temporary file and moved into place, so a reader never sees
    half a database.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    if tmp.exists():
        tmp.unlink()
    con = sqlite3.connect(tmp)
    try:
        con.executescript(SCHEMA)
        meta = {"schema_version": str(SCHEMA_VERSION), "timezone": str(tz), **metadata}
        con.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(meta.items()))
        con.executemany("INSERT INTO departments VALUES (?, ?, ?, ?, ?, ?)", [
            (d.id, d.name.zh, d.name.en, d.level, d.parent, ",".join(d.categories))
            for d in departments.departments.values()])
        rows: list[CaseRow] = []
        events: list[tuple[Any, ...]] = []
        for case in sorted(cases, key=lambda c: c.id):
            rows.append(_case_row(case, tz, deadline_of))
            for seq, e in enumerate(case.events, start=1):
                final = e.get("final")
                events.append((
                    case.id, seq, e.name, e.kind, _iso(e.at, tz), e.by, e.get("to"),
                    None if final is None else int(bool(final)), e.get("resolution"), e.get("rating"),
                    e.get("body"), e.get("note"),
                    json.dumps(dict(e.fields), ensure_ascii=False, sort_keys=True, default=str)))
        marks = ", ".join("?" * len(rows[0].values)) if rows else ""
        if rows:
            con.executemany(f"INSERT INTO cases VALUES ({marks})", [row.values for row in rows])
        con.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", events)
        con.executemany("INSERT INTO legacy_scorecards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        legacy_scorecard_rows(rows))
        if cards is not None:
            con.executemany("INSERT INTO scorecards VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            official_scorecard_rows(cards))
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return path


# -- the command's entry -----------------------------------------------------------


def archive_timezone(rules: Any) -> tzinfo:
    """Return the city's time zone from the archive's rules.

    Reads ``Rules.tz`` of the full rules model, or the ``timezone`` key of the
    transitional reader's raw data; Asia/Shanghai when neither says.
    """
    tz = getattr(rules, "tz", None)
    if tz is not None:
        return tz
    raw = getattr(rules, "raw", None)
    name = raw.get("timezone") if isinstance(raw, dict) else None
    return ZoneInfo(name or "Asia/Shanghai")


def export(fmt: str, out_dir: str | Path, archive: Any, now: datetime,
           deadline_of: Callable[[r.Case], datetime | None] | None = None,
           cards: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``fmt`` (open311 or sqlite) for a checked archive into ``out_dir``."""
    tz = archive_timezone(archive.rules)
    cases = list(archive.cases.values())
    if fmt == "open311":
        return write_open311(out_dir, cases, archive.departments, tz, deadline_of)
    if fmt == "sqlite":
        meta = {"rev": archive.rev or "", "generated_at": now.astimezone(tz).isoformat(),
                "city_zh": archive.departments.city.zh, "city_en": archive.departments.city.en,
                "cases": str(len(cases)),
                "due_basis": "wenzheng deadline" if deadline_of else "none"}
        return [write_sqlite(Path(out_dir) / "wenzheng.sqlite", cases, archive.departments, tz, meta,
                             deadline_of, cards)]
    raise ValueError(f"unknown export format {fmt!r}")
