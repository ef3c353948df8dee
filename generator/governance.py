"""The pull-request rules: who may write what, and when.

:func:`check_pull_request` is a pure function of one change (the files added,
modified, renamed or deleted, the file names each touched folder held at the
base, and the records added), the departments of the base, the notarised-time
tolerance, the author's forge account and ``now``. It returns one problem per
refusal, each naming the file, the rule and what the author may do instead.

The rules it adds to what :func:`generator.validate.check_case` already
enforces (which kinds each actor may record, holder checks):

* append-only: a merged record is never modified, renamed or deleted;
* the author's account acts as exactly one actor (``Departments.actor_of``),
  and every record it adds says so in ``by``; only the bridge adds petitions;
  only the centre changes the archive's configuration (departments.yaml,
  rules.yaml); only the accounts listed under ``maintainers:`` change the
  project itself: code, workflows, packaging, git settings, anything else
  outside ``petitions/`` (:func:`generator.archivepaths.kind_of`);
* notarised time: a new record's time is not in the future and not older than
  the tolerance; a new event sorts after every event already merged in its
  folder, so the case's life keeps its order.

Permissions are judged with departments.yaml *as of the base*, so a pull
request cannot grant itself rights; and CI runs this code as it is on the base
branch, never the pull request's (docs/governance.md), so a pull request
cannot change how it is judged either. :func:`check_change` is the impure edge
that gathers these inputs from a repository (or a work tree) and runs the
ordinary record checks and the archive's path rules
(:mod:`generator.archivepaths`) on what changed too.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Mapping, Sequence

from generator import archivepaths, gitio, load
from generator import records as r
from generator import validate as v
from generator.problems import Problem
from generator.yamlio import YamlError, parse

DEFAULT_TOLERANCE = timedelta(hours=2)

CORRECTION_HINT = (
    "leave the merged file as it is and add a `correction` event in the same folder "
    "(corrects: <file name>, reason: ..., and set: {key: new value} or retract: true)"
)


@dataclass(frozen=True)
class ChangeSet:
    """One proposed change, as the pull-request rules see it.

    ``base_names`` gives, for every petition folder the change touches, the
    file names it held at the base (empty for a new folder). ``added`` holds
    the records added by the change that are sound on their own (a record
    that does not parse is reported by the ordinary checks instead).
    """

    changes: tuple[gitio.Change, ...]
    base_names: Mapping[str, tuple[str, ...]]
    added: Mapping[str, r.Petition | r.Event] = field(default_factory=dict)


def tolerance_of(rules: Any) -> timedelta:
    """Return the notarised-time tolerance of a rules object (2 hours if unset)."""
    value = getattr(rules, "notarised_tolerance", None)
    return value if isinstance(value, timedelta) else DEFAULT_TOLERANCE


def _folder_of(path: str) -> str | None:
    placed = archivepaths.placed(path)
    return placed[0] if placed else None


def _acts_as(actor: str | None) -> str:
    if actor is None:
        return "no actor (a maintainer)"
    if actor == r.CENTRE:
        return "the centre"
    if actor == r.PETITIONER:
        return "the bridge (petitioner)"
    if actor == r.SYSTEM:
        return "the bot (system)"
    return f"department {actor!r}"


def check_pull_request(change: ChangeSet, departments: r.Departments, tolerance: timedelta,
                       author: str, now: datetime) -> list[Problem]:
    """Return every refusal of ``change`` made by ``author`` at ``now``.

    ``departments`` must be those of the base. An empty list means the change
    obeys the pull-request rules (the record checks are separate).
    """
    problems: list[Problem] = []
    actor = departments.actor_of(author)
    maintainer = author in departments.maintainers
    first = change.changes[0].path if change.changes else "departments.yaml"
    if actor is None and not maintainer:
        problems.append(Problem(
            first, None, "unknown-account",
            f"the account {author!r} is not listed in departments.yaml (as of the base), "
            "so it may not change the archive",
            "ask the centre to add the account to its department's `members` in a separate "
            "pull request, then open this one again"))
        return problems

    imports = _imported_folders(change, actor) if actor is not None else set()
    for ch in change.changes:
        kinds = {archivepaths.kind_of(p) for p in (ch.path, ch.old_path) if p}
        if archivepaths.RECORD not in kinds and archivepaths.PROJECT in kinds and not maintainer:
            problems.append(Problem(
                ch.path, None, "maintainers-only",
                f"{ch.path} is part of the project itself (code, workflows, packaging or "
                f"git settings); only the maintainers listed in departments.yaml may change "
                f"it ({author!r} is not one of them)",
                "ask a maintainer to make this change in a pull request of their own; "
                "departments change only petitions/, by adding event files"))
        if archivepaths.RECORD not in kinds:
            if archivepaths.CONFIG in kinds and actor != r.CENTRE:
                problems.append(Problem(
                    ch.path, None, "centre-only",
                    f"{ch.path} is the archive's configuration; only the centre may change it "
                    f"({author!r} acts as {_acts_as(actor)})",
                    "ask the centre to make this change; departments change only "
                    "petitions/ by adding event files"))
            continue
        if actor is None:
            problems.append(Problem(
                ch.path, None, "unknown-account",
                f"the account {author!r} is a maintainer, not an actor of the archive, so it "
                "may not change petitions/",
                "records are added by the centre, the departments, the bridge and the bot "
                "through their own accounts; leave petitions/ out of this pull request"))
            continue
        if ch.status != "A":
            problems.append(_append_only(ch))
            continue
        record = change.added.get(ch.path)
        folder = _folder_of(ch.path)
        if record is None or folder is None:
            continue  # not a sound record on its own: the record checks say why
        if folder in imports:
            continue  # an import: historical records, checked as records only
        problems.extend(_check_added(ch.path, folder, record, change, actor, author,
                                     tolerance, now))
    return problems


def _append_only(ch: gitio.Change) -> Problem:
    what = {"M": "modified", "T": "modified", "D": "deleted", "R": "renamed"}.get(ch.status, "changed")
    path = ch.old_path if ch.status == "R" and ch.old_path else ch.path
    extra = f" to {ch.path}" if ch.status == "R" else ""
    hint = CORRECTION_HINT
    if ch.status == "D" and path.endswith("/" + r.PETITION_FILE):
        hint = ("a petition stays in the archive; the centre withdraws it from the public "
                "with a `rejected` event (e.g. reason_code: contains_personal_data)")
    elif ch.status == "R":
        hint = "restore the original name; " + CORRECTION_HINT
    return Problem(path, None, "append-only",
                   f"{path} is a merged record and was {what}{extra}; merged records are never "
                   "modified, renamed or deleted", hint)


def _imported_folders(change: ChangeSet, actor: str) -> set[str]:
    """Return the new folders the centre adds as imports (petitions with ``legacy``).

    Imported records carry the old system's times and actors, so notarised
    time and the author's ``by`` do not apply to them; they are still checked
    as records.
    """
    if actor != r.CENTRE:
        return set()
    found = set()
    for path, record in change.added.items():
        folder = _folder_of(path)
        if (isinstance(record, r.Petition) and record.legacy is not None and folder
                and not change.base_names.get(folder)):
            found.add(folder)
    return found


def _check_added(path: str, folder: str, record: r.Petition | r.Event, change: ChangeSet,
                 actor: str, author: str, tolerance: timedelta, now: datetime) -> list[Problem]:
    out: list[Problem] = []
    base = change.base_names.get(folder, ())
    if isinstance(record, r.Petition):
        if actor != r.PETITIONER:
            out.append(Problem(
                path, None, "bridge-only",
                f"only the bridge's account adds petitions; {author!r} acts as {_acts_as(actor)}",
                "petitions arrive through the public form or the hotline, which the bridge "
                "turns into pull requests; a department answers with event files"))
        if base:
            out.append(Problem(
                path, None, "folder-exists",
                f"{folder} already exists in the archive; a petition is added once",
                "give the new petition a new id and folder"))
        out.extend(_notarised(path, record.received_at, "received_at", tolerance, now))
        return out

    if record.by != actor:
        out.append(_wrong_by(path, record, actor, author))
    out.extend(_notarised(path, record.at, "at", tolerance, now))
    merged_events = [n for n in base if n != r.PETITION_FILE]
    if merged_events and record.name <= max(merged_events):
        last = max(merged_events)
        out.append(Problem(
            path, None, "out-of-order",
            f"{record.name} would come before {last}, which is already merged; "
            "events keep the order of the case's life",
            "write the event again with the current time (the department commands stamp it "
            "for you) so that it follows the merged events"))
    return out


def _wrong_by(path: str, record: r.Event, actor: str, author: str) -> Problem:
    message = (f"{record.kind} says by: {record.by}, but the account {author!r} acts as "
               f"{_acts_as(actor)}")
    if record.by == r.PETITIONER:
        hint = ("only the citizen, through the bridge, records feedback, withdrawals and "
                "answers to clarification requests; the centre may record an answer it "
                "received as by: centre")
    elif record.by == r.CENTRE:
        hint = ("only the centre records assignments, transfers, extension decisions, "
                "closures and moderation; ask the centre (for more time, record "
                "extension_requested and wait for its decision)")
    elif record.by == r.SYSTEM:
        hint = "escalation events are written only by the scheduled run's bot account"
    elif actor in (r.CENTRE, r.PETITIONER, r.SYSTEM):
        hint = f"set by: {actor}; a department's events are added by its own members"
    else:
        hint = (f"record events only as your own department (by: {actor}); if the case "
                "belongs elsewhere, ask the centre to transfer it")
    return Problem(path, None, "not-your-account", message, hint)


def _notarised(path: str, at: datetime, key: str, tolerance: timedelta,
               now: datetime) -> list[Problem]:
    if at > now:
        return [Problem(
            path, None, "future-time",
            f"{key} {at.isoformat()} is later than now ({now.isoformat()})",
            "record what has happened, at the time it happens; use the current time")]
    if at < now - tolerance:
        return [Problem(
            path, None, "backdated",
            f"{key} {at.isoformat()} is more than {_span(tolerance)} before this check "
            f"({now.isoformat()}); backdating is refused",
            "write the record again with the current time (rename the file to match) and "
            "push it promptly; a late answer is recorded as late")]
    return []


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hour(s)"


# -- the edge: gathering a change from a repository --------------------------------


@dataclass
class ChangeCheck:
    """The result of checking one change: the record problems, the refusals,
    and what was looked at."""

    base: str
    head: str | None
    author: str
    actor: str | None
    changes: list[gitio.Change]
    problems: list[Problem]
    folders_checked: int

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def merge_base(repo: str | Path, base: str, head: str) -> str:
    """Return the commit where ``head`` left ``base`` (so a stale base shows no
    reverse changes)."""
    return gitio.git(repo, "merge-base", base, head).decode().strip()


def worktree_changes(repo: str | Path, base: str) -> list[gitio.Change]:
    """Return how the work tree (tracked and untracked files) differs from ``base``."""
    out = gitio.git(repo, "diff", "--name-status", "-z", "-M", base, "--")
    fields = [f.decode("utf-8") for f in out.split(b"\0") if f]
    changes: list[gitio.Change] = []
    i = 0
    while i < len(fields):
        status = fields[i]
        if status[0] in "RC":
            changes.append(gitio.Change(status[0], fields[i + 2], fields[i + 1]))
            i += 3
        else:
            changes.append(gitio.Change(status[0], fields[i + 1]))
            i += 2
    untracked = gitio.git(repo, "ls-files", "-z", "--others", "--exclude-standard")
    for f in untracked.split(b"\0"):
        if f:
            changes.append(gitio.Change("A", f.decode("utf-8")))
    return changes


def record_of(report: v.Report, path: str, data: Any) -> r.Petition | r.Event | None:
    """Return the record at ``path`` if ``data`` is sound on its own, reporting
    its problems (under the file name) into ``report``."""
    m = r.FOLDER_RE.match(path)
    if not m:
        return None
    source = r.Source(path)
    if m["name"] == r.PETITION_FILE:
        return v.check_petition(report, data, m["id"], (m["year"], m["month"]), source)
    return v.check_event(report, m["name"], data, source)


def read_added(texts: Mapping[str, bytes]) -> dict[str, r.Petition | r.Event]:
    """Return the records among ``texts`` (path -> content) that are sound on their own."""
    added: dict[str, r.Petition | r.Event] = {}
    for path, content in texts.items():
        try:
            data = parse(content)
        except (YamlError, UnicodeDecodeError):
            continue
        rec = record_of(v.Report(), path, data)
        if rec is not None:
            added[path] = rec
    return added


def base_names_of(repo: str | Path, base: str, folders: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Return the file names each folder held at ``base`` (one ``ls-tree``)."""
    names: dict[str, list[str]] = {f: [] for f in folders}
    if folders:
        for entry in gitio.ls_tree(repo, base, folders):
            folder, _, name = entry.path.rpartition("/")
            names.setdefault(folder, []).append(name)
    return {f: tuple(sorted(n)) for f, n in names.items()}


def check_change(repo: str | Path, base: str, author: str, now: datetime, *,
                 head: str = "HEAD", worktree: bool = False,
                 use_cache: bool = True) -> ChangeCheck:
    """Return the record problems and refusals of the change from ``base`` to
    ``head`` (or to the work tree) made by ``author``.

    Only the touched folders are read, at the base and at the head, so the
    time grows with the change, not the archive.
    """
    from generator.check import check_archive, read_departments, read_rules

    root = Path(repo)
    head_commit = None if worktree else gitio.rev_parse(root, head)
    if not worktree and head_commit is None:
        raise gitio.GitError(f"{head!r} is not a commit in {root}")
    fork = merge_base(root, base, head_commit or "HEAD")
    if worktree:
        changes = worktree_changes(root, fork)
    else:
        changes = gitio.diff_tree(root, fork, head_commit)
    folders = sorted({f for ch in changes for p in (ch.path, ch.old_path) if p
                      for f in [_folder_of(p)] if f})
    configs_changed = any(p in load.CONFIG_FILES for ch in changes
                          for p in (ch.path, ch.old_path) if p)

    base_snap = load.snapshot_at(root, fork, folders=[])
    departments, dept_problems = read_departments(base_snap)
    # The base's rules give only the tolerance; the calendar cross-check (which
    # loads the holidays library) matters only when rules.yaml itself changes.
    rules, _ = read_rules(base_snap, cross_check=False)
    problems: list[Problem] = []
    if departments is None:
        problems += dept_problems
        problems.append(Problem("departments.yaml", None, "base-config",
                                "departments.yaml at the base has errors, so nobody's rights "
                                "can be judged", "the centre must fix departments.yaml first"))

    rules_changed = any("rules.yaml" in (ch.path, ch.old_path) for ch in changes)
    archive = check_archive(root, head_commit or "HEAD", worktree=worktree,
                            folders=None if configs_changed else folders,
                            use_cache=use_cache, cross_check=None if rules_changed else False)
    problems += archive.problems
    problems += path_problems(root, changes, None if worktree else head_commit)

    added_paths = [ch.path for ch in changes if ch.status == "A" and _folder_of(ch.path)]
    if worktree:
        texts = {p: (root / p).read_bytes() for p in added_paths if (root / p).is_file()}
    else:
        # a gitlink names a commit of another repository: nothing here to read
        entries = [e for e in gitio.ls_tree(root, head_commit, added_paths) if e.type == "blob"] \
            if added_paths else []
        blobs = gitio.read_blobs(root, [e.oid for e in entries])
        texts = {e.path: blobs[e.oid] for e in entries}
    actor = None
    if departments is not None:
        actor = departments.actor_of(author)
        cs = ChangeSet(tuple(changes), base_names_of(root, fork, folders), read_added(texts))
        problems += check_pull_request(cs, departments, tolerance_of(rules), author, now)
        problems += ids_taken_on_base(root, base, cs)
    # the partial check of a folder and the path rules may both refuse one file
    return ChangeCheck(fork, head_commit, author, actor, changes, list(dict.fromkeys(problems)),
                       archive.folders_checked)


def path_problems(repo: str | Path, changes: Sequence[gitio.Change],
                  head: str | None) -> list[Problem]:
    """Return the refusals of what the change puts under ``petitions/`` by the
    archive's path rules (:func:`generator.archivepaths.entry_problem`): its
    place, its git mode and its size, at ``head`` (None: in the work tree)."""
    paths = [ch.path for ch in changes
             if ch.status != "D" and archivepaths.kind_of(ch.path) == archivepaths.RECORD]
    if not paths:
        return []
    root = Path(repo)
    entries: list[tuple[str, str, int | None]] = []
    if head is None:
        for path in paths:
            full = root / path
            if full.is_dir() and not full.is_symlink():
                entries.append((path, "160000", None))  # a nested repository
            elif full.is_file() or full.is_symlink():
                mode = load.worktree_mode(full)
                entries.append((path, mode, full.lstat().st_size))
    else:
        listed = list(gitio.ls_tree(root, head, paths))
        sizes = gitio.object_sizes(root, [e.oid for e in listed if e.type == "blob"])
        entries = [(e.path, e.mode, sizes.get(e.oid)) for e in listed]
    problems = []
    for path, mode, size in entries:
        problem = archivepaths.entry_problem(path, mode, size)
        if problem is not None:
            problems.append(problem)
    return problems


def ids_taken_on_base(repo: str | Path, base: str, change: ChangeSet) -> list[Problem]:
    """Return a refusal for each petition the change adds in a new folder whose
    id is already in the archive at ``base``'s tip (not only where the change
    left it), in any month's folder: an id is given once, whoever (the bridge,
    the centre, an import) took it first."""
    added = {}
    for path, record in change.added.items():
        folder = _folder_of(path)
        if isinstance(record, r.Petition) and folder and not change.base_names.get(folder):
            added[path] = folder
    if not added:
        return []
    tip = gitio.rev_parse(repo, base)

    def folders(path: str) -> list[str]:  # the sub-folders of one folder at the tip
        try:
            out = gitio.git(repo, "ls-tree", "-d", "-z", "--name-only", f"{tip}:{path}")
        except gitio.GitError:
            return []
        return [n.decode("utf-8") for n in out.split(b"\0") if n]

    existing: dict[str, str] = {}
    for year in sorted({f.split("/")[1] for f in added.values()}):
        for month in folders(f"petitions/{year}"):
            for pid in folders(f"petitions/{year}/{month}"):
                existing.setdefault(pid, f"petitions/{year}/{month}/{pid}")
    problems = []
    for path, folder in sorted(added.items()):
        pid = folder.rsplit("/", 1)[1]
        if pid in existing:
            problems.append(Problem(
                path, None, "id-exists",
                f"petition id {pid} is already taken in the archive by {existing[pid]} "
                f"(on {base}); an id is given to one petition only",
                "the bridge renumbers its petitions before it opens a pull request; close this one "
                "and submit again, or give the petition the next free id and folder"))
    return problems


def account_from_git(repo: str | Path) -> str | None:
    """Return the forge account of the current user: ``git config wenzheng.account``,
    else ``user.name``."""
    for key in ("wenzheng.account", "user.name"):
        proc = subprocess.run(["git", "-C", str(repo), "config", "--get", key],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None
