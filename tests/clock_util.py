"""Helpers for the clock tests: the shipped and example rules, and times written by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path

from generator.rules import Rules, read_rules

ROOT = Path(__file__).resolve().parent.parent
CST = timezone(timedelta(hours=8))  # China Standard Time, no daylight saving


@lru_cache(maxsize=None)
def shipped_rules() -> Rules:
    return read_rules((ROOT / "rules.yaml").read_text(encoding="utf-8"), "rules.yaml", cross_check=False)


@lru_cache(maxsize=None)
def example_rules(name: str) -> Rules:
    path = ROOT / "docs" / "rules-examples" / name
    return read_rules(path.read_text(encoding="utf-8"), f"docs/rules-examples/{name}", cross_check=False)


def rules_from(text: str) -> Rules:
    return read_rules(text, "rules.yaml", cross_check=False)


def t(text: str) -> datetime:
    """A local time written by hand as 'YYYY-MM-DD HH:MM' (+08:00)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=CST)


def end_of(day: str, eod: str = "24:00") -> datetime:
    """The end of a day by hand: 24:00 is the next day's midnight."""
    d = date.fromisoformat(day)
    h, m = map(int, eod.split(":"))
    return datetime(d.year, d.month, d.day, tzinfo=CST) + timedelta(hours=h, minutes=m)


MINIMAL = """\
timezone: Asia/Shanghai
calendar:
  cross_check: false
{calendar}
rule_sets:
  - effective_from: 2024-01-01
    end_of_day: "{eod}"
    office_hours:
      - {{from: "08:30", to: "12:00"}}
      - {{from: "14:00", to: "17:30"}}
    stages:
      resolve:
        limit: {limit}
        done_by: [{{kind: reply, final: true}}]
"""


def minimal_rules(limit: str = "5 working days", eod: str = "24:00", calendar: str = "") -> Rules:
    return rules_from(MINIMAL.format(limit=limit, eod=eod, calendar=calendar))


def make_case(received: str, events: list[tuple], category: str = "complaint", channel: str = "web",
              pid: str = "2025-000001", district: str | None = "东湖区", legacy_due: str | None = None):
    """Build a Case straight from the records dataclasses.

    ``events`` are (kind, 'YYYY-MM-DD HH:MM', by, {fields}) or with a fifth item, the
    file name to use (for corrections to refer to).
    """
    from generator.records import Case, Event, Legacy, Petition, Source, event_file_name

    received_at = t(received)
    petition = Petition(pid, received_at, channel, category, "路灯坏了", "路灯坏了三周。", "网友 ab12",
                        district, None, Legacy("old", "X1", t(legacy_due)) if legacy_due else None,
                        Source(f"petitions/x/{pid}/petition.yaml"))
    evs = []
    for item in events:
        kind, at, by, fields = item[:4]
        name = item[4] if len(item) > 4 else event_file_name(kind, t(at))
        evs.append(Event(kind, t(at), by, name, dict(fields), Source(name)))
    evs.sort(key=lambda e: e.name)
    return Case(petition, tuple(evs), f"petitions/x/{pid}")
