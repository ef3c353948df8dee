"""The department commands: write one correct event file for the current user.

``wenzheng accept|reply|transfer|extend|clarify|close ID`` find the petition's
folder (in a sparse checkout that holds only the petitions in hand), work out
who the user acts for (``git config wenzheng.account`` or ``user.name``, mapped
through departments.yaml), mask personal data in the free text (the office's
public ``phones`` listed there stay visible), stamp the event with the current time in the
city's time zone, and run the pull-request checks on the result before
anything is committed. A draft that fails is removed again: nothing is left
half-written.

:func:`event_text` and :func:`plan_event` are pure; :func:`write_event` is the
edge that touches the work tree and git.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from generator import gitio, governance, load
from generator import records as r
from generator.privacy import mask_personal_data
from generator.problems import Problem


class ToolError(RuntimeError):
    """The command cannot write the event; the message says why and what to do."""


@dataclass(frozen=True)
class Draft:
    """An event ready to be written: its folder, file name and text."""

    folder: str
    name: str
    text: str

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.name}"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and "\n" in value.strip():
        lines = value.strip("\n").splitlines()
        return "|\n" + "\n".join(f"  {line}" if line else "" for line in lines)
    # A JSON string is a valid YAML double-quoted scalar, whatever it holds.
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def event_text(kind: str, at: datetime, by: str, fields: Mapping[str, Any]) -> str:
    """Return the YAML text of an event, keys in the documented order."""
    lines = [f"kind: {kind}", f"at: {at.isoformat()}", f"by: {by}"]
    for key, value in fields.items():
        if value is None:
            continue
        lines.append(f"{key}: {_scalar(value)}")
    return "\n".join(lines) + "\n"


def holder_of(case: r.Case) -> str | None:
    """Return the department holding the case after its last event."""
    holder = None
    for e in case.events:
        if e.kind in ("assigned", "transferred"):
            holder = e.get("to")
    return holder


def open_request(case: r.Case) -> str | None:
    """Return the latest extension request not yet decided, if any."""
    decided = {e.get("request") for e in case.events if e.kind == "extension_decided"}
    pending = [e.name for e in case.events if e.kind == "extension_requested" and e.name not in decided]
    return pending[-1] if pending else None


def plan_event(command: str, case: r.Case, actor: str, options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return (kind, fields) of the event ``command`` writes for ``actor``.

    Raises :class:`ToolError` when the actor may not do it, saying who may.
    """
    holder = holder_of(case)
    is_centre = actor == r.CENTRE

    def need_holder() -> None:
        if actor != holder:
            who = f"held by {holder!r}" if holder else "not assigned yet"
            raise ToolError(f"{case.id} is {who}; {actor!r} cannot record this on it. "
                            "Ask the centre to assign or transfer the case first.")

    if command == "accept":
        need_holder()
        return "accepted", {}
    if command == "reply":
        need_holder()
        final = bool(options.get("final"))
        if final and not options.get("resolution"):
            raise ToolError("a final reply needs --resolution "
                            f"({', '.join(r.RESOLUTIONS)})")
        return "reply", {"final": final, "resolution": options.get("resolution") if final else None,
                         "body": options["text"]}
    if command == "clarify":
        if is_centre:
            return "clarification_received", {"body": options["text"]}
        need_holder()
        return "clarification_requested", {"body": options["text"]}
    if command == "extend":
        if is_centre:
            request = options.get("request") or open_request(case)
            if not request:
                raise ToolError(f"{case.id} has no undecided extension request")
            decision = "refused" if options.get("refuse") else "approved"
            if decision == "approved" and not options.get("new_due"):
                raise ToolError("an approval needs --new-due YYYY-MM-DD")
            return "extension_decided", {
                "request": request, "decision": decision,
                "new_due": options.get("new_due") if decision == "approved" else None,
                "reason": options.get("text")}
        need_holder()
        if not options.get("new_due"):
            raise ToolError("an extension request must give its new date: --new-due YYYY-MM-DD")
        return "extension_requested", {"reason": options["text"], "new_due": options["new_due"]}
    if command == "transfer":
        if not is_centre:
            raise ToolError("only the centre transfers cases between departments; "
                            "ask the centre, giving the reason the case belongs elsewhere")
        if not options.get("to"):
            raise ToolError("name the department taking the case: --to DEPARTMENT")
        return "transferred", {"from": holder, "to": options["to"], "reason": options["text"]}
    if command == "close":
        if not is_centre:
            raise ToolError("only the centre closes a case; a department ends its work "
                            "with `wenzheng reply ID --final`")
        return "closed", {"note": options.get("text")}
    raise ToolError(f"unknown command {command!r}")


TEXT_FIELDS = ("body", "reason", "note")


def mask_fields(fields: Mapping[str, Any], keep: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Return the event's fields with personal data in its free text masked
    (the department's public ``phones`` kept), and the kinds masked."""
    out = dict(fields)
    kinds: set[str] = set()
    for key in TEXT_FIELDS:
        if isinstance(out.get(key), str):
            masked = mask_personal_data(out[key], keep)
            out[key] = masked.text
            kinds.update(masked.kinds)
    return out, tuple(sorted(kinds))


def needs_text(command: str, actor: str | None) -> str | None:
    """Return what the free text is for (the $EDITOR prompt), or None if optional."""
    if command == "reply":
        return "答复内容 / the reply"
    if command == "clarify":
        return "需要补充的内容 / what the citizen should add"
    if command == "extend":
        return None if actor == r.CENTRE else "延期理由 / why more time is needed"
    if command == "transfer":
        return "转办理由 / why the case belongs elsewhere"
    return None


# -- the edge -------------------------------------------------------------------------


def city_tz(rules: Any) -> tzinfo:
    """Return the city's time zone from rules.yaml (China Standard Time if unset)."""
    tz = getattr(rules, "tz", None)
    if isinstance(tz, tzinfo):
        return tz
    raw = getattr(rules, "raw", None)
    name = raw.get("timezone") if isinstance(raw, dict) else None
    try:
        return ZoneInfo(name) if name else timezone(timedelta(hours=8))
    except (KeyError, ValueError):
        return timezone(timedelta(hours=8))


def find_folder(root: Path, petition_id: str) -> str:
    """Return the folder of a petition in the work tree.

    In a sparse checkout a folder may be in the repository but not on disk;
    then the error says how to add it.
    """
    if not r.PETITION_ID_RE.match(petition_id):
        raise ToolError(f"{petition_id!r} is not a petition id; ids look like 2026-000123")
    on_disk = sorted(p for p in (root / "petitions").glob(f"*/*/{petition_id}") if p.is_dir())
    if on_disk:
        return on_disk[0].relative_to(root).as_posix()
    in_git = load.folder_exists(root, "HEAD", petition_id)
    if in_git:
        raise ToolError(f"{petition_id} is not checked out here; run "
                        f"`git sparse-checkout add {in_git[0]}` first")
    raise ToolError(f"there is no petition {petition_id} in this archive")


def read_case(root: Path, folder: str) -> tuple[r.Case, r.Departments, Any]:
    """Return the case in ``folder`` on disk, with the departments and rules."""
    from generator.check import check_folder, read_departments, read_rules

    snap = load.snapshot_worktree(root, [folder])
    departments, problems = read_departments(snap)
    if departments is None:
        raise ToolError("departments.yaml has errors: "
                        + "; ".join(p.message for p in problems[:3]))
    rules, _ = read_rules(snap)
    files = load.load_folders(snap)[folder]
    case, problems = check_folder(folder, files, departments, snap)
    if case is None:
        raise ToolError(f"{folder} has problems to fix first:\n"
                        + "\n".join(p.render() for p in problems))
    return case, departments, rules


def write_event(root: Path, command: str, petition_id: str, account: str, now: datetime,
                options: Mapping[str, Any], commit: bool = False) -> tuple[Draft, list[Problem]]:
    """Write the event for ``command`` and check it; return the draft and the
    problems. A draft with errors is removed again; with ``commit`` a sound one
    is committed."""
    folder = find_folder(root, petition_id)
    case, departments, rules = read_case(root, folder)
    actor = departments.actor_of(account)
    if actor is None:
        raise ToolError(f"the account {account!r} is not in departments.yaml; set "
                        "`git config wenzheng.account <your forge account>` or ask the centre "
                        "to add it")
    kind, fields = plan_event(command, case, actor, options)
    office = departments.get(actor)
    fields, masked = mask_fields(fields, office.phones if office else ())
    at = now.astimezone(city_tz(rules)).replace(microsecond=0)
    seq = 1
    while (root / folder / r.event_file_name(kind, at, seq)).exists():
        seq += 1
    draft = Draft(folder, r.event_file_name(kind, at, seq), event_text(kind, at, actor, fields))
    target = root / draft.path
    target.write_text(draft.text, encoding="utf-8")
    try:
        result = governance.check_change(root, "HEAD", account, now, worktree=True,
                                         use_cache=False)
    except BaseException:
        target.unlink()
        raise
    problems = [p for p in result.problems if p.path.startswith(folder)]
    if masked:
        problems.append(Problem(draft.path, None, "personal-data-masked",
                                f"文中的个人信息已隐去 / personal data in the text was masked before "
                                f"writing ({', '.join(masked)})",
                                "无需处理；办公电话如需公开，请列入 departments.yaml 中本部门的 `phones:` / "
                                "nothing to do; to show an office number, list it under the department's "
                                "`phones:` in departments.yaml", "warning"))
    if any(p.severity == "error" for p in problems):
        target.unlink()
        return draft, problems
    if commit:
        gitio.git(root, "add", "--", draft.path)
        # Only the kind and the id: commit messages never carry personal data.
        # The author is the forge account, as the audit reads it, not the person's
        # name; the commit is signed when git is set up to (commit.gpgsign).
        gitio.git(root, "-c", f"user.name={account}", "commit", "-q", "-m",
                  f"{kind} {petition_id}", "--", draft.path)
    return draft, problems
