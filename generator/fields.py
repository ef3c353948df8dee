"""The table of record fields: one row per key, one small parser per type.

This table is the single source of truth for what a petition or event file may
hold. :mod:`generator.validate` checks files against it and
:mod:`generator.schemas` derives the shipped JSON Schemas from it, so the
editor's view and CI's view of a record can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Callable

from generator import records as r


class FieldError(ValueError):
    """A value does not fit its field; the message says what is expected."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of TYPES
    required: bool = False
    choices: tuple[str, ...] = ()
    max_length: int | None = None
    description: str = ""


# One zone object per UTC offset: ``fromisoformat`` makes a new one for every
# time it reads. Times sharing a zone object compare faster, and a cache of a
# million of them pickles the zone once instead of once per time.
_ZONES: dict[timedelta, tzinfo] = {}


def parse_time(value: Any) -> datetime:
    """Return an aware datetime from ISO 8601 text; a time needs a UTC offset."""
    if not isinstance(value, str):
        raise FieldError("expected a time like 2026-11-22T10:15:00+08:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(
            f"{value!r} is not a time; write it like 2026-11-22T10:15:00+08:00"
        ) from None
    if parsed.tzinfo is None:
        raise FieldError(
            f"{value!r} has no UTC offset; add one, e.g. {value}+08:00 for China Standard Time"
        )
    offset = parsed.utcoffset()
    zone = _ZONES.get(offset)  # type: ignore[arg-type]
    if zone is None:
        zone = _ZONES.setdefault(offset, timezone(offset))  # type: ignore[arg-type]
    return parsed if parsed.tzinfo is zone else parsed.replace(tzinfo=zone)


def parse_date(value: Any) -> date:
    """Return a date from ``YYYY-MM-DD`` text."""
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise FieldError(f"{value!r} is not a date; write it like 2026-12-01")


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError("expected non-empty text")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(f"expected true or false, not {value!r}")
    return value


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise FieldError("expected a mapping of keys to values")
    return value


def _petition_id(value: Any) -> str:
    if not isinstance(value, str) or not r.PETITION_ID_RE.match(value):
        raise FieldError(f"{value!r} is not a petition id; ids look like 2026-000123 (quote it)")
    return value


def _file_name(value: Any) -> str:
    if not isinstance(value, str) or not (
        value == r.PETITION_FILE or r.EVENT_FILE_RE.match(value)
    ):
        raise FieldError(
            f"{value!r} is not a record file name; name a file of the same folder, "
            "e.g. 20261125T080000Z-reply.yaml or petition.yaml"
        )
    return value


PARSERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "time": parse_time,
    "date": parse_date,
    "bool": _bool,
    "mapping": _mapping,
    "id": _petition_id,
    "file": _file_name,
    "choice": _text,  # the choice itself is checked against Field.choices
    "department": _text,  # checked against departments.yaml by the validator
    "actor": _text,
}

TYPES = tuple(PARSERS)

PETITION_FIELDS: tuple[Field, ...] = (
    Field("id", "id", True, description="petition number, YYYY-NNNNNN; the folder's name"),
    Field("received_at", "time", True, description="when the centre received it"),
    Field("channel", "choice", True, r.CHANNELS, description="how it arrived"),
    Field("category", "choice", True, r.CATEGORIES, description="咨询 投诉 求助 建议 举报"),
    Field("title", "text", True, max_length=100, description="public title"),
    Field("body", "text", True, max_length=5000, description="public text, personal data masked"),
    Field("petitioner", "mapping", True, description="{display_name: a pseudonym}"),
    Field("location", "mapping", description="{district, address}: public, approximate"),
    Field("legacy", "mapping", description="for imports: {system, id, due_at, status}"),
)
PETITIONER_FIELDS = (Field("display_name", "text", True, max_length=40),)
LOCATION_FIELDS = (
    Field("district", "text", max_length=80),  # e.g. Boston: "Fenway / Kenmore / Audubon Circle / Longwood"
    Field("address", "text", max_length=200),
)
LEGACY_FIELDS = (
    Field("system", "text", True, max_length=80),
    Field("id", "text", True, max_length=500),  # a source id kept whole (some are URLs)
    Field("due_at", "time"),
    Field("status", "text", max_length=80),
)

COMMON_EVENT_FIELDS: tuple[Field, ...] = (
    Field("kind", "choice", True, r.EVENT_KINDS, description="what happened"),
    Field("at", "time", True, description="when it happened; matches the file name"),
    Field("by", "actor", True, description="a department id, centre, petitioner or system"),
    Field("note", "text", max_length=2000, description="a public remark"),
)

EVENT_FIELDS: dict[str, tuple[Field, ...]] = {
    "assigned": (Field("to", "department", True, description="the department now holding it"),),
    "transferred": (
        Field("from", "department", True, description="the department giving it up"),
        Field("to", "department", True, description="the department taking it"),
        Field("reason", "text", True, max_length=1000),
    ),
    "accepted": (),
    "reply": (
        Field("final", "bool", True, description="true for the answer that ends the department's work"),
        Field("body", "text", True, max_length=10000),
        Field("resolution", "choice", False, r.RESOLUTIONS, description="required when final"),
    ),
    "clarification_requested": (Field("body", "text", True, max_length=2000),),
    "clarification_received": (Field("body", "text", True, max_length=5000),),
    "extension_requested": (
        Field("reason", "text", True, max_length=2000, description="why more time is needed"),
        Field("new_due", "date", True, description="the date the department asks for"),
    ),
    "extension_decided": (
        Field("request", "file", True, description="the extension_requested file decided on"),
        Field("decision", "choice", True, r.DECISIONS),
        Field("new_due", "date", False, description="required when approved"),
        Field("reason", "text", max_length=2000),
    ),
    "closed": (),
    "feedback": (
        Field("rating", "choice", True, r.RATINGS),
        Field("comment", "text", max_length=2000),
    ),
    "reopened": (Field("reason", "text", True, max_length=2000),),
    "withdrawn": (Field("reason", "text", max_length=2000),),
    "rejected": (
        Field("reason_code", "choice", True, r.REJECT_REASONS),
        Field("duplicate_of", "id", description="with reason_code duplicate"),
    ),
    "correction": (
        Field("corrects", "file", True, description="the file in this folder it corrects"),
        Field("reason", "text", True, max_length=2000),
        Field("set", "mapping", description="keys of the corrected record and their new values"),
        Field("retract", "bool", description="true: the corrected record is void"),
    ),
    "escalated": (
        Field("level", "choice", True, r.ESCALATION_LEVELS),
        Field("stage", "text", True, max_length=40),
        Field("department", "department", True),
        Field("due_at", "time", True),
    ),
}

# Which actors may record each kind. ``holder`` is the department holding the
# case at that moment (checked by the validator from the timeline).
KIND_ACTORS: dict[str, tuple[str, ...]] = {
    "assigned": (r.CENTRE,),
    "transferred": (r.CENTRE,),
    "accepted": ("holder",),
    "reply": ("holder",),
    "clarification_requested": ("holder",),
    "clarification_received": (r.PETITIONER, r.CENTRE),
    "extension_requested": ("holder",),
    "extension_decided": (r.CENTRE,),
    "closed": (r.CENTRE,),
    "feedback": (r.PETITIONER,),
    "reopened": (r.CENTRE,),
    "withdrawn": (r.PETITIONER,),
    "rejected": (r.CENTRE,),
    "correction": ("author", r.CENTRE),
    "escalated": (r.SYSTEM,),
}
