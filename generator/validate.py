"""Turn raw YAML into records, and say everything that is wrong with it.

Every check here reports and carries on: a bad file never stops the other files
(or the other keys of the same file) from being checked. Each problem names the
file and line, what is wrong and how to fix it.

Two levels:

* a file on its own: keys, types, choices, times with offsets, the file name
  agreeing with the content (:func:`check_petition`, :func:`check_event`);
* a petition folder as a whole: the order of the case's life, who may record
  what, references between files (:func:`check_case`).

Unknown keys are errors in records (a typo in a record is a wrong public fact)
and warnings in configuration (:func:`check_departments`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping, Sequence

from generator import fields as f
from generator import records as r
from generator.problems import Problem
from generator.yamlio import line_of

KeyPath = tuple[str | int, ...]


@dataclass
class _Pending:
    """A problem whose line is looked up only if it is reported."""

    file: str  # file name within the folder, or a full path for config
    keypath: KeyPath
    code: str
    message: str
    hint: str
    severity: str = "error"


class Report:
    """Collects problems for one unit (a folder or a config file)."""

    def __init__(self) -> None:
        self.pending: list[_Pending] = []

    def add(self, file: str, keypath: KeyPath, code: str, message: str, hint: str,
            severity: str = "error") -> None:
        self.pending.append(_Pending(file, keypath, code, message, hint, severity))

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.pending)

    def resolve(self, path_of: Callable[[str], str],
                text_of: Callable[[str], str | bytes | None]) -> list[Problem]:
        """Return the problems with full paths and line numbers filled in."""
        texts: dict[str, str | bytes | None] = {}
        out = []
        for p in self.pending:
            if p.file not in texts:
                texts[p.file] = text_of(p.file)
            text = texts[p.file]
            line = None
            if text is not None:
                line = line_of(text, p.keypath) if p.keypath else 1
            if isinstance(p.keypath, tuple) and p.keypath and p.keypath[0] == "#line":
                line = int(p.keypath[1])
            out.append(Problem(path_of(p.file), line, p.code, p.message, p.hint, p.severity))
        return out


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_fields(report: Report, file: str, data: Mapping[str, Any],
                  table: Sequence[f.Field], base: KeyPath = (),
                  unknown_severity: str = "error", partial: bool = False) -> dict[str, Any]:
    """Check ``data`` against a field table; return the parsed values that fit.

    ``partial``: ``data`` holds new values for some keys of a record (a
    correction's ``set``): only the keys given are checked; a key given as
    null is removed (its value None), which a required key cannot be."""
    known = {fl.name: fl for fl in table}
    values: dict[str, Any] = {}
    for key in data:
        if key not in known:
            report.add(file, base + (key,), "unknown-key",
                       f"unknown key {'.'.join(map(str, base + (key,)))!r}{_suggest(key, known)}",
                       f"remove it or use one of: {', '.join(known)}", unknown_severity)
    for fl in table:
        where = base + (fl.name,)
        label = ".".join(map(str, where))
        if partial and fl.name not in data:
            continue
        if partial and data[fl.name] is None:
            if fl.required:
                report.add(file, where, "missing-key", f"{label!r} is required; a correction cannot remove it",
                           f"give `{fl.name}:` a new value ({fl.description or fl.type})")
            else:
                values[fl.name] = None
            continue
        if fl.name not in data or data[fl.name] is None:
            if fl.required:
                report.add(file, base, "missing-key", f"{label!r} is required but missing",
                           f"add `{fl.name}:` ({fl.description or fl.type})")
            continue
        raw = data[fl.name]
        try:
            value = f.PARSERS[fl.type](raw)
        except f.FieldError as exc:
            report.add(file, where, "bad-value", f"{label}: {exc}",
                       f"give {label} a valid {fl.type} value")
            continue
        if fl.choices and value not in fl.choices:
            report.add(file, where, "bad-choice",
                       f"{label}: {raw!r} is not allowed{_suggest(raw, fl.choices)}",
                       f"use one of: {', '.join(fl.choices)}")
            continue
        if fl.max_length and isinstance(value, str) and len(value) > fl.max_length:
            report.add(file, where, "too-long",
                       f"{label} has {len(value)} characters, more than {fl.max_length}",
                       f"shorten it to at most {fl.max_length} characters")
            continue
        values[fl.name] = value
    return values


def _petition_values(report: Report, file: str, data: Mapping[str, Any], base: KeyPath = (),
                     partial: bool = False) -> dict[str, Any]:
    """Check the keys of a petition (all of them, or with ``partial`` those a
    correction sets) and return their parsed values, the nested mappings
    (``petitioner``, ``location``, ``legacy``) checked in full and parsed."""
    v = _check_fields(report, file, data, f.PETITION_FIELDS, base, partial=partial)
    for key, table in (("petitioner", f.PETITIONER_FIELDS), ("location", f.LOCATION_FIELDS),
                       ("legacy", f.LEGACY_FIELDS)):
        if v.get(key) is not None:
            v[key] = _check_fields(report, file, v[key], table, base + (key,))
    return v


def _petition_attributes(v: Mapping[str, Any]) -> dict[str, Any]:
    """Return the :class:`~generator.records.Petition` attributes the parsed
    values ``v`` give (only those of the keys in ``v``; a mapping given
    replaces every attribute it holds, a key removed leaves None)."""
    out = {k: v[k] for k in ("id", "received_at", "channel", "category", "title", "body") if k in v}
    if "petitioner" in v:
        out["display_name"] = (v["petitioner"] or {}).get("display_name")
    if "location" in v:
        loc = v["location"] or {}
        out["district"], out["address"] = loc.get("district"), loc.get("address")
    if "legacy" in v:
        lg = v["legacy"] or {}
        out["legacy"] = (r.Legacy(lg["system"], lg["id"], lg.get("due_at"), lg.get("status"))
                         if "system" in lg and "id" in lg else None)
    return out


def _check_placement(report: Report, file: str, v: Mapping[str, Any], folder_id: str | None,
                     folder_year_month: tuple[str, str] | None, base: KeyPath = ()) -> None:
    """Report a petition id or receipt time that does not fit its folder."""
    if folder_id is not None and "id" in v and v["id"] != folder_id:
        report.add(file, base + ("id",), "id-mismatch",
                   f"id {v['id']!r} does not match its folder {folder_id!r}",
                   "move the folder or fix the id so they are the same")
    if v.get("received_at") is not None and folder_year_month is not None:
        local = v["received_at"]
        if (f"{local:%Y}", f"{local:%m}") != folder_year_month:
            report.add(file, base + ("received_at",), "wrong-folder",
                       f"received_at {local.isoformat()} is not in the folder's month "
                       f"{folder_year_month[0]}/{folder_year_month[1]}",
                       f"move the folder to petitions/{local:%Y}/{local:%m}/")
        if "id" in v and v["id"][:4] != f"{local:%Y}":
            report.add(file, base + ("id",), "id-year",
                       f"id {v['id']!r} does not start with the year received ({local:%Y})",
                       "petition ids start with the year the centre received them")


def check_petition(report: Report, data: Any, folder_id: str | None,
                   folder_year_month: tuple[str, str] | None,
                   source: r.Source) -> r.Petition | None:
    """Return the petition in ``data`` if it is sound, reporting every problem."""
    file = r.PETITION_FILE
    if not isinstance(data, dict):
        report.add(file, (), "not-a-mapping", "petition.yaml must be a mapping of keys to values",
                   "start from the example in docs/formats.md")
        return None
    v = _petition_values(report, file, data)
    _check_placement(report, file, v, folder_id, folder_year_month)
    needed = {fl.name for fl in f.PETITION_FIELDS if fl.required}
    if not needed <= v.keys() or "display_name" not in v["petitioner"]:
        return None
    return r.Petition(**_petition_attributes({"location": None, "legacy": None, **v}), source=source)


def check_event(report: Report, name: str, data: Any, source: r.Source) -> r.Event | None:
    """Return the event in ``data`` if it is sound on its own, reporting every problem."""
    match = r.EVENT_FILE_RE.match(name)
    if not match:
        report.add(name, (), "bad-file-name",
                   f"{name!r} is not a record file name",
                   "name event files <YYYYMMDDTHHMMSSZ>-<kind>.yaml after their `at` in UTC, "
                   "e.g. 20261125T080000Z-reply.yaml")
        return None
    if not isinstance(data, dict):
        report.add(name, (), "not-a-mapping", "an event file must be a mapping of keys to values",
                   "start from the examples in docs/formats.md")
        return None
    kind = data.get("kind")
    table = f.COMMON_EVENT_FIELDS + f.EVENT_FIELDS.get(kind, ())
    v = _check_fields(report, name, data, table)
    if "kind" not in v:
        return None
    if match["kind"] != kind:
        report.add(name, ("kind",), "kind-mismatch",
                   f"the file name says {match['kind']!r} but kind is {kind!r}",
                   f"rename the file to end in -{kind}.yaml or fix `kind`")
    if "at" in v:
        stamp = v["at"].astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        if stamp != match["stamp"]:
            report.add(name, ("at",), "time-mismatch",
                       f"at is {v['at'].isoformat()} ({stamp} in UTC) but the file name says "
                       f"{match['stamp']}",
                       f"rename the file to {r.event_file_name(kind, v['at'])} or fix `at`")
    _check_kind_rules(report, name, kind, v)
    needed = {fl.name for fl in table if fl.required}
    if not needed <= v.keys():
        return None
    extra = {k: val for k, val in v.items() if k not in ("kind", "at", "by")}
    return r.Event(kind=kind, at=v["at"], by=v["by"], name=name, fields=extra, source=source)


def _check_kind_rules(report: Report, name: str, kind: str, v: Mapping[str, Any]) -> None:
    """Report conditions between keys of one event."""
    if kind == "reply" and v.get("final") is True and "resolution" not in v:
        report.add(name, ("final",), "missing-resolution",
                   "a final reply must say its resolution",
                   f"add `resolution:` with one of {', '.join(r.RESOLUTIONS)}")
    if kind == "reply" and v.get("final") is False and "resolution" in v:
        report.add(name, ("resolution",), "resolution-on-interim",
                   "an interim reply (final: false) cannot carry a resolution",
                   "remove `resolution` or make the reply final")
    if kind == "extension_decided":
        if v.get("decision") == "approved" and "new_due" not in v:
            report.add(name, ("decision",), "missing-new-due",
                       "an approved extension must give the new due date",
                       "add `new_due: YYYY-MM-DD`")
        if v.get("decision") == "refused" and "new_due" in v:
            report.add(name, ("new_due",), "new-due-on-refusal",
                       "a refused extension cannot set a new due date",
                       "remove `new_due` or approve the extension")
    if kind == "rejected":
        if v.get("reason_code") == "duplicate" and "duplicate_of" not in v:
            report.add(name, ("reason_code",), "missing-duplicate-of",
                       "a petition rejected as a duplicate must name the one it duplicates",
                       "add `duplicate_of: YYYY-NNNNNN`")
    if kind == "correction":
        has_set, retract = "set" in v, v.get("retract") is True
        if has_set == retract:
            report.add(name, ("corrects",), "correction-shape",
                       "a correction must either `set` new values or `retract: true`, not "
                       + ("both" if has_set else "neither"),
                       "keep exactly one of `set` and `retract`")
        if has_set and ({"kind", "by"} & set(v["set"])):
            report.add(name, ("set",), "correction-identity",
                       "a correction cannot change a record's kind or author",
                       "retract the record and add the right one instead")


def _actor_ok(report: Report, name: str, by: str, departments: r.Departments) -> bool:
    if by in (r.CENTRE, r.PETITIONER, r.SYSTEM) or by in departments.departments:
        return True
    report.add(name, ("by",), "unknown-actor",
               f"by: {by!r} is not a department in departments.yaml"
               f"{_suggest(by, departments.departments)}",
               "use a department id from departments.yaml, or centre, petitioner or system")
    return False


def _department_ok(report: Report, name: str, key: str, dept: str,
                   departments: r.Departments, base: KeyPath = ()) -> bool:
    if dept in departments.departments:
        return True
    report.add(name, base + (key,), "unknown-department",
               f"{'.'.join(map(str, base + (key,)))}: {dept!r} is not a department in departments.yaml"
               f"{_suggest(dept, departments.departments)}",
               "use a department id listed in departments.yaml")
    return False


# What may still happen once a case has ended.
_AFTER_TERMINAL = {
    "closed": ("feedback", "reopened", "correction"),
    "rejected": ("correction",),
    "withdrawn": ("correction",),
}


def check_case(report: Report, petition: r.Petition | None, events: Sequence[r.Event],
               departments: r.Departments, folder: str) -> r.Case | None:
    """Return the case if its timeline is sound, reporting every problem in it.

    First the corrections: each must name a file of the folder written by its
    author (or be the centre's), and is applied (:func:`_apply_corrections`).
    Then the corrected timeline is walked in time order, following who holds
    the case, so it can say that a reply came before any assignment, that a
    department answered a case it does not hold, or that a case was closed
    twice; a retracted record is no longer part of it, a corrected one is
    judged with its new values (its problems say so).
    """
    if petition is None:
        return None
    ok = _check_correction_targets(report, events)
    before = len(report.pending)
    petition, corrected, changed = _apply_corrections(report, petition, events, departments, folder)
    ok = ok and len(report.pending) == before
    walk = Report()
    ok = _check_timeline(walk, petition, corrected, departments) and ok
    by = sorted({name for names in changed.values() for name in names})
    for p in walk.pending:
        report.add(p.file, p.keypath, p.code,
                   p.message + (f" (in the timeline as corrected by {', '.join(by)})" if by else ""),
                   p.hint + ("; a merged record is put right by a further correction" if by else ""),
                   p.severity)
    if not ok:
        return None
    return r.Case(petition=petition, events=corrected, folder=folder)


def _check_correction_targets(report: Report, events: Sequence[r.Event]) -> bool:
    """Report a correction naming no file of the folder, or a file that
    neither its author nor the centre wrote; return True when there is none."""
    ok = True
    names = {e.name for e in events} | {r.PETITION_FILE}
    authors: dict[str, str] = {}
    for e in events:
        authors[e.name] = e.by
        if e.kind != "correction":
            continue
        target = e.get("corrects")
        if target not in names:
            ok = False
            report.add(e.name, ("corrects",), "unknown-target",
                       f"corrects {target!r}, which is not a file of this petition",
                       f"name one of: {', '.join(sorted(names))}")
        elif e.by == r.SYSTEM:
            ok = False
            report.add(e.name, ("by",), "correction-author",
                       f"the system corrects {target!r}, but it writes escalation records only "
                       "(wenzheng escalate never writes a correction)",
                       "a wrong escalation record is retracted by the centre (by: centre, retract: true)")
        elif e.by not in (r.CENTRE, authors.get(target, None if target != r.PETITION_FILE else r.PETITIONER)):
            ok = False
            report.add(e.name, ("by",), "correction-author",
                       f"{e.by!r} corrects {target!r}, which {authors.get(target, 'the bridge')!r} wrote",
                       "a record is corrected by its own author or by the centre")
    return ok


def _check_corrected_time(report: Report, correction: r.Event, target: str, at: datetime) -> None:
    """Report a correction of a record's time that only the centre may make, or
    that moves the record past the correction itself. A department moving its
    own record earlier would turn a late answer into one on time, beyond the
    notarised window its record was merged in."""
    if correction.by != r.CENTRE:
        report.add(correction.name, ("set", "at"), "correction-time",
                   f"set.at: {correction.by!r} moves {target} to {at.isoformat()}; only the centre "
                   "corrects when a record happened",
                   "leave the time as it is (a late record stays late), or ask the centre to correct "
                   "it, giving the evidence in its `reason`")
    elif at > correction.at:
        report.add(correction.name, ("set", "at"), "correction-time",
                   f"set.at: {at.isoformat()} is after the correction itself ({correction.at.isoformat()}); "
                   "a record cannot be moved into the future",
                   "give the time the record really happened, at or before this correction")


def _check_timeline(report: Report, petition: r.Petition, events: Sequence[r.Event],
                    departments: r.Departments) -> bool:
    """Walk the (corrected) events in order; report every problem of the
    case's life; return True when there is none."""
    holder: str | None = None
    assigned = False
    closed = False
    terminal: str | None = None
    last_at: datetime = petition.received_at
    requests: set[str] = set()
    decided: set[str] = set()
    ok = True

    def bad(e: r.Event, keypath: KeyPath, code: str, message: str, hint: str) -> None:
        nonlocal ok
        ok = False
        report.add(e.name, keypath, code, message, hint)

    for e in events:
        if not _actor_ok(report, e.name, e.by, departments):
            ok = False
        if e.at < last_at:
            what = "the petition was received" if last_at == petition.received_at else "the event before it"
            bad(e, ("at",), "time-order",
                f"{e.kind} at {e.at.isoformat()} is earlier than {what} ({last_at.isoformat()})",
                "events are files named by time; check `at` and the file name")
        last_at = max(last_at, e.at)
        if terminal and e.kind not in _AFTER_TERMINAL[terminal]:
            bad(e, ("kind",), "after-terminal",
                f"{e.kind} comes after the case was {terminal}",
                f"a {terminal} case takes only: {', '.join(_AFTER_TERMINAL[terminal])}")
        allowed = f.KIND_ACTORS[e.kind]
        if "holder" in allowed:
            if holder is None:
                bad(e, ("kind",), "before-assignment",
                    f"{e.kind} before the case was assigned to any department",
                    "the centre must record an `assigned` event first")
            elif e.by != holder:
                bad(e, ("by",), "not-holder",
                    f"{e.kind} by {e.by!r}, but the case is held by {holder!r} at that time",
                    f"only {holder!r} may record it, or the centre must transfer the case first")
        elif e.kind == "correction":
            pass  # its target and author: _check_correction_targets
        elif e.by not in allowed:
            bad(e, ("by",), "wrong-actor",
                f"{e.kind} must be recorded by {' or '.join(allowed)}, not {e.by!r}",
                f"set by: {allowed[0]}" if len(allowed) == 1 else f"use one of {', '.join(allowed)}")

        kind = e.kind
        if kind == "assigned":
            if assigned:
                bad(e, ("kind",), "assigned-twice",
                    f"the case is already assigned to {holder!r}",
                    "move a case between departments with a `transferred` event")
            if _department_ok(report, e.name, "to", e.get("to"), departments):
                holder = e.get("to")
            else:
                ok = False
            assigned = True
        elif kind == "transferred":
            if not assigned:
                bad(e, ("kind",), "transfer-before-assignment",
                    "a case must be assigned before it can be transferred",
                    "record an `assigned` event first")
            elif e.get("from") != holder:
                bad(e, ("from",), "transfer-from",
                    f"transferred from {e.get('from')!r}, but the case is held by {holder!r}",
                    f"set from: {holder}")
            if e.get("to") == e.get("from"):
                bad(e, ("to",), "transfer-to-self",
                    "a case cannot be transferred to the department that holds it",
                    "name another department in `to`")
            for key in ("from", "to"):
                if not _department_ok(report, e.name, key, e.get(key), departments):
                    ok = False
            holder = e.get("to")
        elif kind == "closed":
            if closed:
                bad(e, ("kind",), "closed-twice", "the case is already closed",
                    "close a case once; reopen it first if it must be closed again")
            if not assigned:
                bad(e, ("kind",), "close-before-assignment",
                    "a case cannot be closed before it was assigned",
                    "assign it first, or reject it if it is not a petition")
            closed = True
            terminal = "closed"
        elif kind == "feedback":
            if not closed:
                bad(e, ("kind",), "feedback-before-closure",
                    "feedback comes only after the case is closed",
                    "wait for the centre's `closed` event")
        elif kind == "reopened":
            if not closed:
                bad(e, ("kind",), "reopen-open-case",
                    "only a closed case can be reopened", "remove this event")
            closed = False
            terminal = None
        elif kind in ("rejected", "withdrawn"):
            terminal = "rejected" if kind == "rejected" else "withdrawn"
        elif kind == "extension_requested":
            requests.add(e.name)
        elif kind == "extension_decided":
            req = e.get("request")
            if req not in requests:
                bad(e, ("request",), "unknown-request",
                    f"decides {req!r}, which is not an earlier extension_requested of this petition",
                    "name the extension_requested file this decision answers")
            elif req in decided:
                bad(e, ("request",), "decided-twice",
                    f"{req!r} was already decided", "decide each request once")
            decided.add(req)
        elif kind == "escalated":
            if not _department_ok(report, e.name, "department", e.get("department"), departments):
                ok = False
    return ok


def retracted(events: Iterable[r.Event]) -> set[str]:
    """Return the names of the records retracted by a correction in force (one
    not itself retracted by a later correction)."""
    gone: set[str] = set()
    for c in reversed([e for e in events if e.kind == "correction"]):
        if c.name not in gone and c.get("retract") is True and isinstance(c.get("corrects"), str):
            gone.add(c.get("corrects"))
    return gone


def _apply_corrections(report: Report, petition: r.Petition, events: Sequence[r.Event],
                       departments: r.Departments, folder: str
                       ) -> tuple[r.Petition, tuple[r.Event, ...], dict[str, list[str]]]:
    """Return the petition and events as corrected: the records a correction in
    force retracts left out, the keys one sets replaced (in file order, so the
    latest wins), the events in time order; the corrections stay, as records of
    what was changed and why. This is the one place corrections are applied:
    every reader of a case (pages, feeds, search, downloads, exports,
    ``status``, the clocks) sees the corrected records.

    Each correction's new values are checked as the keys of the record it
    corrects are (the same field table), and the corrected record as that
    record is (its kind's rules, its folder): a problem is reported against
    the correction's ``set``. Also returns, for each record changed, the
    corrections that changed it."""
    changed: dict[str, list[str]] = {}
    if not any(e.kind == "correction" for e in events):
        return petition, tuple(events), changed  # nearly every case: nothing to apply
    gone = retracted(events)
    current = {e.name: e for e in events}
    m = r.FOLDER_RE.match(folder + "/x")
    folder_id, folder_month = (m["id"], (m["year"], m["month"])) if m else (None, None)
    for c in events:
        if c.kind != "correction" or c.name in gone:
            continue
        target, new = c.get("corrects"), c.get("set")
        if target == r.PETITION_FILE and c.get("retract") is True:
            report.add(c.name, ("retract",), "retract-petition", "petition.yaml cannot be retracted",
                       "the centre rejects a petition (a `rejected` event with its reason_code), or "
                       "corrects some of its keys with `set`")
            continue
        if not isinstance(new, Mapping):
            continue
        if target == r.PETITION_FILE:
            if "id" in new:
                report.add(c.name, ("set", "id"), "correction-identity",
                           "set.id: a correction cannot change a petition's id, which names its folder",
                           "remove `id` from `set`; a petition filed under a wrong number is rejected "
                           "(reason_code: duplicate) and filed again")
            values = {k: val for k, val in new.items() if k != "id"}
            v = _petition_values(report, c.name, values, ("set",), partial=True)
            _check_placement(report, c.name, {**v, "id": petition.id}, folder_id, folder_month, ("set",))
            petition = replace(petition, **_petition_attributes(v))
            changed.setdefault(target, []).append(c.name)
            continue
        record = current.get(target)
        if record is None:
            continue  # reported by _check_correction_targets (unknown-target)
        if record.kind == "correction":
            report.add(c.name, ("set",), "correction-of-correction",
                       f"{target} is a correction, which cannot be changed with `set`",
                       f"retract {target} (retract: true) and record the right correction")
            continue
        table = [fl for fl in f.COMMON_EVENT_FIELDS + f.EVENT_FIELDS.get(record.kind, ())
                 if fl.name not in ("kind", "by")]  # never changed (correction-identity)
        v = _check_fields(report, c.name, {k: val for k, val in new.items() if k not in ("kind", "by")},
                          table, ("set",), partial=True)
        for fl in table:
            if fl.type == "department" and v.get(fl.name) is not None:
                _department_ok(report, c.name, fl.name, v[fl.name], departments, ("set",))
        if v.get("at") is not None:
            _check_corrected_time(report, c, target, v["at"])
        fields = {**record.fields, **{k: val for k, val in v.items() if k != "at"}}
        fields = {k: val for k, val in fields.items() if val is not None}
        at = v.get("at") or record.at
        after = Report()
        _check_kind_rules(after, target, record.kind, {"kind": record.kind, "at": at, "by": record.by, **fields})
        for p in after.pending:
            key = p.keypath[0] if p.keypath else None
            report.add(c.name, ("set", key) if key in new else ("set",), p.code,
                       f"with this correction, {target}: {p.message}", p.hint, p.severity)
        current[target] = replace(record, at=at, fields=fields)
        changed.setdefault(target, []).append(c.name)
    kept = [current[e.name] for e in events if e.name not in gone]
    kept.sort(key=lambda e: e.at)  # stable: file order among equal times
    return petition, tuple(kept), changed


def check_departments(report: Report, file: str, data: Any) -> r.Departments | None:
    """Return departments.yaml as records, reporting every problem in it."""
    if not isinstance(data, dict):
        report.add(file, (), "not-a-mapping", "departments.yaml must be a mapping",
                   "start from the shipped departments.yaml")
        return None
    top = ("city", "centre", "departments", "bridge_accounts", "bot_accounts", "signing_keys",
           "maintainers")
    for key in data:
        if key not in top:
            report.add(file, (key,), "unknown-key", f"unknown key {key!r}{_suggest(key, top)}",
                       f"use one of: {', '.join(top)}", "warning")

    def name_of(value: Any, where: KeyPath) -> r.LocalName | None:
        if not (isinstance(value, dict) and isinstance(value.get("zh"), str)
                and isinstance(value.get("en"), str)):
            report.add(file, where, "bad-name", f"{'.'.join(map(str, where))} needs zh and en names",
                       "write it as {zh: 市住房和城乡建设局, en: Municipal Housing Bureau}")
            return None
        extra = sorted(set(value) - {"zh", "en"})
        if extra:
            report.add(file, where, "bad-name",
                       f"{'.'.join(map(str, where))} has keys {extra} besides zh and en",
                       "quote a name that contains a comma: {zh: ..., en: \"Office, District\"}")
        return r.LocalName(value["zh"], value["en"])

    def accounts(value: Any, where: KeyPath) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
            report.add(file, where, "bad-accounts",
                       f"{'.'.join(map(str, where))} must be a list of forge account names",
                       "write it as [account-one, account-two]")
            return ()
        return tuple(value)

    def phones(value: Any, where: KeyPath) -> tuple[str, ...]:
        if value is None:
            return ()
        bad = (not isinstance(value, list) or not value
               or [p for p in value if not isinstance(p, str) or not 5 <= sum(c.isdigit() for c in p) <= 15])
        if bad:
            report.add(file, where, "bad-phones",
                       f"{'.'.join(map(str, where))} must be a list of public phone numbers as strings"
                       + (f"; {bad[0]!r} is not one" if isinstance(bad, list) else ""),
                       "write it as ['0527-84561234', '12345'], quoted, with the area code")
            return ()
        return tuple(value)

    city = name_of(data.get("city"), ("city",))
    centre_raw = data.get("centre")
    centre = None
    if not isinstance(centre_raw, dict):
        report.add(file, ("centre",), "missing-centre", "departments.yaml must describe the centre",
                   "add `centre: {id: centre, name: {zh: ..., en: ...}, members: [...]}`")
    else:
        if centre_raw.get("id", r.CENTRE) != r.CENTRE:
            report.add(file, ("centre", "id"), "centre-id", "the centre's id must be `centre`",
                       "set centre.id: centre")
        cname = name_of(centre_raw.get("name"), ("centre", "name"))
        members = accounts(centre_raw.get("members"), ("centre", "members"))
        if not members:
            report.add(file, ("centre",), "centre-members", "the centre needs at least one member",
                       "list the centre's forge accounts under centre.members")
        if cname:
            centre = r.Department(r.CENTRE, cname, "city", None, (), members,
                                  phones(centre_raw.get("phones"), ("centre", "phones")))
        _unit_keys_moved(report, file, centre_raw, ("centre", "signing_keys"))
    bridge = accounts(data.get("bridge_accounts"), ("bridge_accounts",))
    bots = accounts(data.get("bot_accounts"), ("bot_accounts",))
    maintainers = accounts(data.get("maintainers"), ("maintainers",))

    depts: dict[str, r.Department] = {}
    raw_list = data.get("departments")
    if not isinstance(raw_list, list) or not raw_list:
        report.add(file, ("departments",), "missing-departments",
                   "departments.yaml must list at least one department",
                   "add a `departments:` list")
        raw_list = []
    known_keys = ("id", "name", "level", "parent", "categories", "members", "phones")
    parents: list[tuple[int, str, str]] = []
    for i, d in enumerate(raw_list):
        where: KeyPath = ("departments", i)
        if not isinstance(d, dict):
            report.add(file, where, "not-a-mapping", "each department must be a mapping",
                       "see the shipped departments.yaml")
            continue
        _unit_keys_moved(report, file, d, where + ("signing_keys",))
        for key in d:
            if key not in known_keys and key != "signing_keys":
                report.add(file, where + (key,), "unknown-key",
                           f"unknown key {key!r} in a department{_suggest(key, known_keys)}",
                           f"use one of: {', '.join(known_keys)}", "warning")
        did = d.get("id")
        if not isinstance(did, str) or not did or did in (r.CENTRE, r.PETITIONER, r.SYSTEM):
            report.add(file, where + ("id",), "bad-id",
                       f"department id {did!r} is missing or reserved",
                       "give each department a short unique id such as `housing`")
            continue
        if did in depts:
            report.add(file, where + ("id",), "duplicate-department",
                       f"department id {did!r} is listed twice", "give each department one entry")
            continue
        name = name_of(d.get("name"), where + ("name",))
        level = d.get("level")
        if level not in r.DEPARTMENT_LEVELS:
            report.add(file, where + ("level",), "bad-level",
                       f"level {level!r} of {did!r} is not one of {', '.join(r.DEPARTMENT_LEVELS)}",
                       "set level: city, county or township")
        cats = d.get("categories") or []
        bad_cats = [c for c in cats if c not in r.CATEGORIES] if isinstance(cats, list) else [cats]
        if bad_cats:
            report.add(file, where + ("categories",), "bad-category",
                       f"{did!r} lists unknown categories {bad_cats}",
                       f"use: {', '.join(r.CATEGORIES)}")
        members = accounts(d.get("members"), where + ("members",))
        office_phones = phones(d.get("phones"), where + ("phones",))
        parent = d.get("parent")
        if parent is not None:
            parents.append((i, did, parent))
        if name and level in r.DEPARTMENT_LEVELS and not bad_cats:
            depts[did] = r.Department(did, name, level, parent, tuple(cats), members, office_phones)
    for i, did, parent in parents:
        if parent not in depts:
            report.add(file, ("departments", i, "parent"), "unknown-parent",
                       f"{did!r} names parent {parent!r}, which is not listed",
                       "name a department id listed in this file")
    seen: dict[str, str] = {}
    holders = [(r.CENTRE, centre.members if centre else ())] + [
        (d.id, d.members) for d in depts.values()]
    for owner, members in holders:
        for m in members:
            if m in seen and seen[m] != owner:
                report.add(file, (), "shared-account",
                           f"account {m!r} is a member of both {seen[m]!r} and {owner!r}",
                           "an account acts for one unit only; give it one membership")
            seen[m] = owner
    keys = _signing_keys(report, file, data.get("signing_keys"),
                         set(seen) | set(bridge) | set(bots) | set(maintainers))
    if report.has_errors or city is None or centre is None:
        return None
    return r.Departments(city=city, centre=centre, departments=depts,
                         bridge_accounts=bridge, bot_accounts=bots,
                         source=r.Source(file), signing_keys=keys,
                         maintainers=maintainers)


# An SSH public key line: type, base64 blob, optional comment.
SSH_KEY_RE = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521)"
                        r"|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)"
                        r" [A-Za-z0-9+/]+={0,3}(?: [^\n]*)?$")


def _unit_keys_moved(report: Report, file: str, unit: Mapping[str, Any], where: KeyPath) -> None:
    if "signing_keys" in unit:
        report.add(file, where, "unit-signing-keys",
                   "signing keys belong to accounts, not to units: a unit's key would not tell "
                   "which member signed",
                   "move the keys to the top-level `signing_keys:` mapping, under the account "
                   "that holds each key (`signing_keys: {mh-housing: ['ssh-ed25519 AAAA...']}`)")


def _signing_keys(report: Report, file: str, value: Any,
                  accounts: set[str]) -> dict[str, tuple[str, ...]]:
    """Return the top-level ``signing_keys`` (account -> SSH public keys)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        report.add(file, ("signing_keys",), "bad-signing-keys",
                   "signing_keys must map each account to its SSH public keys",
                   "write it as `signing_keys: {mh-housing: ['ssh-ed25519 AAAA... clerk-1']}`")
        return {}
    keys: dict[str, tuple[str, ...]] = {}
    owner_of: dict[str, str] = {}
    for account, listed in value.items():
        where: KeyPath = ("signing_keys", account)
        if account not in accounts:
            report.add(file, where, "unknown-signer",
                       f"signing_keys lists account {account!r}, which is no member, bridge "
                       "or bot account", "list the account as a member first, or remove its keys")
        if not isinstance(listed, list) or not listed:
            report.add(file, where, "bad-signing-keys",
                       f"the keys of {account!r} must be a non-empty list",
                       "write them as ['ssh-ed25519 AAAA... comment']")
            continue
        for i, key in enumerate(listed):
            if not isinstance(key, str) or not SSH_KEY_RE.match(key.strip()):
                report.add(file, where + (i,), "bad-signing-key",
                           f"key {i + 1} of {account!r} is not an SSH public key line",
                           "paste the whole line of the .pub file, e.g. "
                           "'ssh-ed25519 AAAAC3Nza... clerk-1' (ssh-keygen -t ed25519)")
                continue
            blob = key.split()[1]
            if blob in owner_of and owner_of[blob] != account:
                report.add(file, where + (i,), "shared-signing-key",
                           f"key {i + 1} of {account!r} is also listed for {owner_of[blob]!r}",
                           "a key identifies one account; give each account its own key")
            owner_of[blob] = account
        keys[str(account)] = tuple(k.strip() for k in listed if isinstance(k, str))
    return keys
