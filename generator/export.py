"""Every case with its computed state, and every scorecard, for the site and outside tools.

Pure functions from evaluated cases to plain data (dicts of strings, numbers,
lists). The fields are documented in ``docs/export.md``; a test checks that
every field written is documented there.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import orjson

from generator.bulk import bulk
from generator.evaluate import CaseState, StageState, evaluate_case
from generator.metrics import Scorecards, aggregate, case_facts, scorecards
from generator.records import Case
from generator.rules import Rules

if TYPE_CHECKING:
    from generator.check import Archive
    from generator.settled import SettledCache

EXPORT_VERSION = 1


def _time(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _hours(d: timedelta | None) -> float | None:
    return round(d.total_seconds() / 3600, 2) if d is not None else None


def stage_record(s: StageState) -> dict[str, Any]:
    """Return one stage clock as plain data."""
    return {
        "stage": s.stage,
        "department": s.department,
        "round": s.round,
        "start": _time(s.deadline.start),
        "limit": s.deadline.limit,
        "unit": s.deadline.unit,
        "due_at": _time(s.deadline.due_at),
        "provisional": s.deadline.provisional,
        "extended": s.extended,
        "done_at": _time(s.done_at),
        "status": s.status,
        "late_by_hours": _hours(s.late_by),
        "overdue_level": s.overdue_level,
        "escalation": s.escalation,
        "arithmetic_zh": s.deadline.lines("zh"),
        "arithmetic_en": s.deadline.lines("en"),
    }


def case_record(case: Case, state: CaseState) -> dict[str, Any]:
    """Return one case (the public petition and its computed state) as plain data."""
    p = case.petition
    return {
        "id": p.id,
        "folder": case.folder,
        "received_at": _time(p.received_at),
        "channel": p.channel,
        "category": p.category,
        "title": p.title,
        "body": p.body,
        "display_name": p.display_name,
        "district": p.district,
        "address": p.address,
        "status": state.status,
        "holder": state.holder,
        "departments": [h.department for h in state.holdings if h.department],
        "accepted_at": _time(state.accepted_at),
        "final_reply_at": _time(state.final_reply_at),
        "closed_at": _time(state.closed_at),
        "resolution": state.resolution,
        "rating": state.rating,
        "reopened": state.reopened_count,
        "transfers": state.transfers,
        "extensions_requested": state.extensions_requested,
        "extensions_granted": state.extensions_granted,
        "clock_stopped": state.clock_stopped_now,
        "overdue_level": state.overdue_level,
        "escalation": state.escalation,
        "provisional": state.provisional,
        "rule_set": state.rule_set,
        "legacy": None if p.legacy is None else {
            "system": p.legacy.system, "id": p.legacy.id,
            "due_at": _time(p.legacy.due_at), "status": p.legacy.status},
        "stages": [stage_record(s) for s in state.stages],
        "events": len(case.events),
    }


def event_records(case: Case) -> Iterator[dict[str, Any]]:
    """Yield every event of a case as plain data, in timeline order."""
    for e in case.events:
        fields = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in e.fields.items()}
        yield {"petition": case.id, "file": e.name, "kind": e.kind, "at": _time(e.at),
               "by": e.by, "fields": fields}


def record_bytes(case: Case, state: CaseState) -> bytes:
    """Return one case's record as compact JSON (UTF-8, keys sorted): a line of
    ``cases.jsonl`` and an element of the export's ``cases``."""
    return orjson.dumps(case_record(case, state), option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Evaluated:
    """Cases with their states and the scorecards over them, all as of ``now``.

    ``records`` holds the cases' export records where already made; the
    result of :func:`evaluate_checked` has only records (no cases or states).
    """

    now: datetime
    cases: tuple[Case, ...]
    states: tuple[CaseState, ...]
    cards: Scorecards
    records: list[bytes | None] = field(default_factory=list)

    @property
    def count(self) -> int:
        return max(len(self.states), len(self.records))

    def record(self, i: int) -> bytes:
        """Return the JSON record of the ``i``-th case (made once)."""
        if not self.records:
            self.records.extend([None] * len(self.states))
        rec = self.records[i]
        if rec is None:
            case, state = self.cases[i], self.states[i]
            assert case is not None and state is not None
            rec = self.records[i] = record_bytes(case, state)
        return rec


def evaluate_archive(cases: Iterable[Case], rules: Rules, now: datetime,
                     departments: Iterable[str] = ()) -> Evaluated:
    """Return every case evaluated as of ``now``, newest first, with scorecards."""
    with bulk():
        ordered = sorted(cases, key=lambda c: (c.petition.received_at, c.id), reverse=True)
        states = tuple(evaluate_case(c, rules, now) for c in ordered)
        cards = scorecards(states, rules, now, departments=tuple(departments))
    return Evaluated(now, tuple(ordered), states, cards)


def case_summary(case: Case, rules: Rules, now: datetime, records: bool = True, departments=None) -> tuple:
    """Return ``(received at, scorecard facts, export record or None, last event
    time if settled else None)`` of a case as of ``now``: what
    :func:`evaluate_checked` needs, small enough to be made where the case is
    read (``check_archive(transform=...)``) and sent back instead of it."""
    from generator.settled import is_settled, last_event_at

    state = evaluate_case(case, rules, now)
    settled = is_settled(case, state, now)
    rec = record_bytes(case, state) if records or settled else None
    return (case.petition.received_at, case_facts(state, rules.tz), rec,
            last_event_at(case) if settled else None)


def evaluate_checked(archive: "Archive", now: datetime, cache: "SettledCache | None" = None,
                     records: bool = True) -> Evaluated:
    """Return the checked archive's sound cases evaluated as of ``now``, newest
    first: their export records (with ``records``) and the scorecards, as
    :func:`evaluate_archive` and :func:`export_json` would make them.

    The archive must have been checked with ``transform=summarising(now,
    records)``, so that ``archive.cases`` holds :func:`case_summary` tuples,
    and, with a cache, ``skip_case=cache.skipper(now)``: settled
    cases come from ``cache`` when it has them and go into it when new. The
    result has records (or none) and scorecards, no ``cases`` or ``states``.
    """
    rules = archive.rules
    assert rules is not None and archive.departments is not None
    items: list[tuple[datetime, str, bytes | None, tuple]] = []
    if cache is not None:
        cache.bind(archive.config_digest)
    with bulk():
        for pid, (folder, tree) in archive.sound.items():
            summary = archive.cases.pop(pid, None)
            if summary is None:
                assert cache is not None, "a case was skipped without a cache to take it from"
                received_at, facts, rec = cache.get(folder, tree, now)
            else:
                received_at, facts, rec, settled_last = summary
                if cache is not None and settled_last is not None:
                    cache.put(folder, tree, settled_last, (received_at, facts, rec))
            items.append((received_at, pid, rec if records else None, facts))
        items.sort(key=lambda it: (it[0], it[1]), reverse=True)
        cards = aggregate((it[3] for it in items), rules, now, departments=tuple(archive.departments.departments))
        if cache is not None:
            cache.save(set(archive.sound.values()))
    return Evaluated(now, (), (), cards, [it[2] for it in items] if records else [])


def unsettled(summary: tuple) -> bool:
    """The check's ``keep_case``: keep only open cases in the case cache (the
    settled ones are kept by the settled cache)."""
    return summary[3] is None


def summarising(now: datetime, records: bool = True):
    """Return the check's ``transform`` for :func:`evaluate_checked`."""
    import functools

    return functools.partial(case_summary, now=now, records=records)


def export_json(ev: Evaluated, rev: str | None) -> Iterator[bytes]:
    """Yield the JSON export (UTF-8) in pieces (it can be large), cases then scorecards."""
    yield export_json_head(ev.now, rev)
    for i in range(ev.count):
        yield (b"" if i == 0 else b",\n") + ev.record(i)
    yield export_json_tail(ev.cards)


def export_json_head(now: datetime, rev: str | None) -> bytes:
    """Return what the JSON export says before its first case record."""
    return (b'{"version": %d, "now": %s, "commit": %s, "cases": [\n'
            % (EXPORT_VERSION, orjson.dumps(now.isoformat()), orjson.dumps(rev)))


def export_json_tail(cards: Scorecards) -> bytes:
    """Return what the JSON export says after its last case record (records are
    separated by ``,\n``)."""
    return b'\n], "scorecards": ' + orjson.dumps(cards.to_dict(), option=orjson.OPT_SORT_KEYS) + b"}\n"


CSV_CASE_FIELDS = (
    "id", "received_at", "channel", "category", "title", "district", "status", "holder",
    "accepted_at", "final_reply_at", "closed_at", "resolution", "rating", "reopened",
    "transfers", "extensions_requested", "extensions_granted", "clock_stopped",
    "overdue_level", "escalation", "provisional", "resolve_due_at", "resolve_status",
    "resolve_late_by_hours", "legacy_due_at",
)


def _current_resolve(state: CaseState) -> StageState | None:
    resolve = [s for s in state.stages if s.role == "resolve" and s.department == state.holder]
    return resolve[-1] if resolve else None


def resolve_due_at(state: CaseState) -> datetime | None:
    """Return the due time of the holding department's latest resolve clock."""
    stage = _current_resolve(state)
    return stage.deadline.due_at if stage else None


def csv_line(row: Iterable[Any]) -> str:
    """Return one CSV row (None as an empty cell) with its newline."""
    return csv_lines((row,))


def csv_lines(rows: Iterable[Iterable[Any]]) -> str:
    """Return CSV rows (None as an empty cell), each with its newline."""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(["" if v is None else v for v in row] for row in rows)
    return buf.getvalue()


def case_csv_row(rec: dict[str, Any], state: CaseState) -> str:
    """Return one case's row of cases.csv (its record, and the holder's latest resolve clock)."""
    resolve = _current_resolve(state)
    return csv_line([rec[k] for k in CSV_CASE_FIELDS[:21]] + [
        _time(resolve.deadline.due_at) if resolve else None,
        resolve.status if resolve else None,
        _hours(resolve.late_by) if resolve else None,
        rec["legacy"]["due_at"] if rec["legacy"] else None,
    ])


EVENT_CSV_FIELDS = ("petition", "file", "kind", "at", "by", "fields")


def event_csv_rows(case: Case) -> str:
    """Return one case's rows of events.csv."""
    return csv_lines((rec["petition"], rec["file"], rec["kind"], rec["at"], rec["by"],
                      json.dumps(rec["fields"], ensure_ascii=False, sort_keys=True))
                     for rec in event_records(case))


def event_json_lines(case: Case) -> bytes:
    """Return one case's lines of events.jsonl."""
    option = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    return b"".join(orjson.dumps(rec, option=option) for rec in event_records(case))


def export_csv_cases(ev: Evaluated) -> Iterator[str]:
    """Yield the CSV export of cases, one row per case (the holder's latest resolve clock)."""
    yield csv_line(CSV_CASE_FIELDS)
    for i, state in enumerate(ev.states):
        yield case_csv_row(orjson.loads(ev.record(i)), state)


def export_csv_scorecards(ev: Evaluated) -> Iterator[str]:
    """Yield the CSV export of scorecards: one row per department and period."""
    data = ev.cards.to_dict()
    cards = data["departments"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    columns: list[str] = []
    for card in cards:
        flat = _flatten(card)
        if not columns:
            columns = list(flat)
            writer.writerow(columns)
        writer.writerow(["" if flat.get(c) is None else flat.get(c) for c in columns])
    yield buf.getvalue()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list):
            out[key] = json.dumps(v, ensure_ascii=False)
        else:
            out[key] = v
    return out


def write_csv(ev: Evaluated, folder) -> None:
    """Write cases.csv, events.csv and scorecards.csv into ``folder``."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "cases.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.writelines(export_csv_cases(ev))
    with (folder / "events.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.write(csv_line(EVENT_CSV_FIELDS))
        fh.writelines(event_csv_rows(case) for case in ev.cases)
    with (folder / "scorecards.csv").open("w", encoding="utf-8", newline="") as fh:
        fh.writelines(export_csv_scorecards(ev))
