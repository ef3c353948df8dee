"""The archive's records: petitions, events and departments, as frozen dataclasses.

A petition folder holds ``petition.yaml`` and one file per event, named
``<UTC time>-<kind>.yaml`` (``20261122T021500Z-assigned.yaml``) so that ``ls``
shows the timeline. Files are never edited once merged; mistakes are fixed by a
``correction`` event that names the file it corrects.

This module only describes the shapes. Turning raw YAML into these objects, and
reporting everything wrong with the raw YAML, is :mod:`generator.validate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Mapping

CATEGORIES = ("consultation", "complaint", "help", "suggestion", "report")
CHANNELS = ("web", "phone", "app", "weibo", "wechat", "email", "letter", "visit")
RESOLUTIONS = ("resolved", "partly_resolved", "explained", "not_in_remit")
RATINGS = ("satisfied", "basically_satisfied", "dissatisfied")
REJECT_REASONS = (
    "duplicate",
    "abusive",
    "not_a_petition",
    "contains_personal_data",
    "out_of_scope",
    "spam",
)
DECISIONS = ("approved", "refused")
ESCALATION_LEVELS = ("reminder", "notice", "supervision", "accountability")
DEPARTMENT_LEVELS = ("city", "county", "township")

# Special actors besides department ids.
CENTRE = "centre"
PETITIONER = "petitioner"
SYSTEM = "system"

EVENT_KINDS = (
    "assigned",
    "transferred",
    "accepted",
    "reply",
    "clarification_requested",
    "clarification_received",
    "extension_requested",
    "extension_decided",
    "closed",
    "feedback",
    "reopened",
    "withdrawn",
    "rejected",
    "correction",
    "escalated",
)

PETITION_FILE = "petition.yaml"
# ASCII digits only (``\d`` would take full-width and Arabic-Indic digits, so a
# look-alike of an existing id), no name ending in a newline (``\Z``, not ``$``),
# and one spelling per number: six digits, zero-padded, or more without a
# leading zero (2026-0000001 would be a second folder for 2026-000001).
_SEQ = r"(?:[0-9]{6}|[1-9][0-9]{6,8})"
PETITION_ID_RE = re.compile(rf"^(?P<year>[0-9]{{4}})-(?P<seq>{_SEQ})\Z")
EVENT_FILE_RE = re.compile(
    r"^(?P<stamp>[0-9]{8}T[0-9]{6}Z)-(?P<kind>[a-z_]+?)(?:-(?P<seq>[0-9]+))?\.yaml\Z"
)
FOLDER_RE = re.compile(
    rf"^petitions/(?P<year>[0-9]{{4}})/(?P<month>[0-9]{{2}})/(?P<id>[0-9]{{4}}-{_SEQ})/(?P<name>[^/]+)\Z"
)


def petition_folder(petition_id: str, received_at: datetime) -> str:
    """Return the folder of a petition: ``petitions/YYYY/MM/<id>``.

    The year and month are those of ``received_at`` in its own offset, which is
    the city's local time for every record the bridge and importers write.
    """
    return f"petitions/{received_at:%Y}/{received_at:%m}/{petition_id}"


def event_file_name(kind: str, at: datetime, seq: int = 1) -> str:
    """Return the file name of an event: its UTC time, its kind, and a sequence
    number when several events of one kind share a second."""
    from datetime import timezone

    stamp = at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-{seq}" if seq > 1 else ""
    return f"{stamp}-{kind}{suffix}.yaml"


@dataclass(frozen=True)
class Source:
    """Where a record came from: its path in the tree and its git blob id."""

    path: str
    blob: str = ""


@dataclass(frozen=True)
class Legacy:
    """What an imported petition carried from the system it came from."""

    system: str
    id: str
    due_at: datetime | None = None
    status: str | None = None


@dataclass(frozen=True)
class Petition:
    id: str
    received_at: datetime
    channel: str
    category: str
    title: str
    body: str
    display_name: str
    district: str | None
    address: str | None
    legacy: Legacy | None
    source: Source


@dataclass(frozen=True)
class Event:
    """One fact in a petition's life.

    ``fields`` keeps the kind-specific keys (``to``, ``final``, ``resolution``,
    ``rating``, ``new_due``...) exactly as validated; the accessors below give
    them typed names for the common ones.
    """

    kind: str
    at: datetime
    by: str
    name: str  # the file name, which is also how corrections refer to it
    fields: Mapping[str, Any]
    source: Source

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


@dataclass(frozen=True)
class Case:
    """A petition with its events in timeline order (file name order)."""

    petition: Petition
    events: tuple[Event, ...]
    folder: str

    @property
    def id(self) -> str:
        return self.petition.id


@dataclass(frozen=True)
class LocalName:
    zh: str
    en: str


@dataclass(frozen=True)
class Department:
    id: str
    name: LocalName
    level: str
    parent: str | None
    categories: tuple[str, ...]
    members: tuple[str, ...]
    phones: tuple[str, ...] = ()  # public office numbers, kept visible in its replies


@dataclass(frozen=True)
class Departments:
    """The whole of ``departments.yaml``: the city, its centre and departments."""

    city: LocalName
    centre: Department
    departments: Mapping[str, Department]
    bridge_accounts: tuple[str, ...]
    bot_accounts: tuple[str, ...]
    source: Source = field(default=Source("departments.yaml"))
    # account -> its SSH public key lines; when any are listed, the audit takes
    # each commit's identity from its signature (docs/audit.md)
    signing_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The forge accounts that may change the project itself (code, workflows,
    # packaging, git settings): not an actor, a right (generator.governance).
    maintainers: tuple[str, ...] = ()

    def get(self, dept_id: str) -> Department | None:
        if dept_id == CENTRE:
            return self.centre
        return self.departments.get(dept_id)

    def actor_of(self, account: str) -> str | None:
        """Return the actor id an account may act as (a department id,
        ``centre``, ``petitioner`` for the bridge, ``system`` for bots)."""
        if account in self.centre.members:
            return CENTRE
        if account in self.bridge_accounts:
            return PETITIONER
        if account in self.bot_accounts:
            return SYSTEM
        for dept in self.departments.values():
            if account in dept.members:
                return dept.id
        return None


def parse_date(value: Any) -> date | None:
    """Return a date from a YAML date or an ISO string, or None."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None
