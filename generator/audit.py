"""Replay the history of main and prove that every commit obeyed the rules.

``audit_history`` walks the first-parent history of a branch from its first
commit (or from a previously audited commit) and judges each commit as the
pull-request check would have judged it at that time: with the
departments.yaml and rules.yaml of its parent, the account that made it, and
its commit time as ``now``. It reports every violation with the commit, the
file and the rule. Everything comes from one ``git log`` pass and one
``git cat-file --batch``; the files each commit touches are parsed once.

It also proves that history was not rewritten: a report of the previous audit
(the ``audit.json`` the site publishes) names the last commit it proved; if
that commit is no longer on the first-parent line of the branch, history was
rewritten.

Every violation of the previous report stays open until a centre record
under ``audit/acknowledgements/`` acknowledges it, so an incremental run
cannot turn a failed audit into a passed one.

Signatures are checked in the same log pass whenever departments.yaml lists
``signing_keys``: the key that signed a commit names the account it is judged
as, as departments.yaml stood at its parent; the author name is only a claim.

The design is explained in docs/audit.md.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from generator import archivepaths, gitio, governance, load
from generator import records as r
from generator import validate as v
from generator.problems import Problem
from generator.yamlio import YamlError, parse

REPORT_VERSION = 1
DEFAULT_MERGE_WINDOW = timedelta(days=3)
_NOREPLY_RE = re.compile(r"^(?:\d+\+)?(?P<login>[^@+]+)@users\.noreply\.")


@dataclass(frozen=True)
class RawChange:
    """One file changed by a commit, with its blob ids (``""`` when absent)."""

    status: str
    path: str
    old_path: str | None
    old_blob: str
    new_blob: str
    new_mode: str = "100644"


@dataclass(frozen=True)
class Commit:
    oid: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    time: datetime
    changes: tuple[RawChange, ...]
    signature: str = "N"  # git's %G? letter: G good, N none, B bad, U/X/Y/R/E see git-log(1)
    signing_key: str = ""  # git's %GK (an SSH key's SHA256 fingerprint)


@dataclass(frozen=True)
class Violation:
    """A commit that broke a rule: which commit, which file, which rule."""

    commit: str
    path: str
    code: str
    message: str
    hint: str
    account: str = ""
    acknowledged_by: str = ""  # the centre's acknowledgement record, once there is one

    def render(self) -> str:
        return (f"{self.commit[:12]} {self.path}: {self.message} [{self.code}]"
                + (f" (account {self.account})" if self.account else "")
                + f"\n    fix: {self.hint}")


@dataclass
class AuditReport:
    """What an audit proved, in the shape published as ``audit.json``."""

    branch: str
    head: str | None
    first: str | None
    start: str | None  # the commit the replay started after (None: from the first commit)
    commits: int  # first-parent commits from the first one to head
    commits_checked: int
    checked_at: str
    signatures: str  # "verified" | "partly verified" | "not checked"
    violations: list[Violation] = field(default_factory=list)  # open, carried until acknowledged
    acknowledged: list[Violation] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"version": REPORT_VERSION, "ok": self.ok, **d}
        return d

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def account_of(name: str, email: str) -> str:
    """Return the forge account of a commit author.

    Forges write the login into their no-reply addresses
    (``12345+mh-housing@users.noreply.github.com``); otherwise the author
    name is the account, as the department tools write it.
    """
    m = _NOREPLY_RE.match(email)
    return m["login"] if m else name


# -- reading history --------------------------------------------------------------


_FORMAT = "%x01%H %P%x00%an%x00%ae%x00%ct%x00%G?%x00%GK%x00"
_FORMAT_PLAIN = "%x01%H %P%x00%an%x00%ae%x00%ct%x00N%x00%x00"


def read_history(repo: str | Path, branch: str, since: str | None = None,
                 signatures: bool = False, signers_file: Path | None = None) -> list[Commit]:
    """Return the first-parent commits of ``branch`` oldest first, with what
    each changed against its first parent (the root against nothing)."""
    args = ["log", "--first-parent", "--reverse", "--root", "--diff-merges=first-parent",
            "--raw", "-z", "--no-abbrev", "-M", "--no-color",
            "--format=" + (_FORMAT if signatures else _FORMAT_PLAIN)]
    rng = f"{since}..{branch}" if since else branch
    prefix: list[str] = []
    if signers_file is not None:
        prefix = ["-c", f"gpg.ssh.allowedSignersFile={signers_file}"]
    out = gitio.git(repo, *prefix, *args, rng, env=gitio.OBJECTS_ONLY_ENV)
    commits = []
    for chunk in out.split(b"\x01")[1:]:
        parts = chunk.split(b"\0", 6)
        ids = parts[0].decode().split()
        raw = parts[6] if len(parts) > 6 else b""
        commits.append(Commit(
            oid=ids[0], parents=tuple(ids[1:]),
            author_name=parts[1].decode("utf-8", "replace"),
            author_email=parts[2].decode("utf-8", "replace"),
            time=datetime.fromtimestamp(int(parts[3]), tz=timezone.utc),
            changes=tuple(_raw_changes(raw)),
            signature=parts[4].decode() or "N", signing_key=parts[5].decode(),
        ))
    return commits


def _raw_changes(raw: bytes) -> Iterator[RawChange]:
    fields = raw.lstrip(b"\n").split(b"\0")
    i = 0
    while i < len(fields):
        meta = fields[i].lstrip(b"\n")
        if not meta.startswith(b":"):
            i += 1
            continue
        _, new_mode, old_blob, new_blob, status = meta[1:].decode().split(" ")
        zero = "0" * len(old_blob)
        old_blob = "" if old_blob == zero else old_blob
        # a gitlink names a commit of another repository, not a blob of this one
        new_blob = "" if new_blob == zero or new_mode == "160000" else new_blob
        if status[0] in "RC":
            old, new = _path(fields[i + 1]), _path(fields[i + 2])
            yield RawChange(status[0], new, old, old_blob, new_blob, new_mode)
            i += 3
        else:
            yield RawChange(status[0], _path(fields[i + 1]), None, old_blob, new_blob, new_mode)
            i += 2


def _path(raw: bytes) -> str:
    """Return a path as git stores it, readably: bytes that are not UTF-8 as
    backslash escapes (``docs-\\xff.md``).

    git allows any bytes in a file name. Such a name never fits the record
    layout (digits and ASCII names only), so under ``petitions/`` it is a stray
    file, and elsewhere a project file, as the path rules have it; the audit
    reports it by this readable name instead of stopping.
    """
    return raw.decode("utf-8", PATH_ERRORS)


PATH_ERRORS = "backslashreplace"


@dataclass(frozen=True)
class _Head:
    """The head of a branch a merge commit merged: who claims it, who signed it."""

    account: str
    signature: str
    signing_key: str


def _merged_heads(repo: str | Path, commits: list[Commit], signatures: bool,
                  signers_file: Path | None) -> dict[str, _Head]:
    """Return, for each merge commit, the head of the branch it merged.

    A merge commit's author is whoever pressed the button; the change belongs
    to the author (or, with keys listed, the signer) of the merged branch's head.
    """
    tips = [c.parents[1] for c in commits if len(c.parents) > 1]
    if not tips:
        return {}
    prefix = ["-c", f"gpg.ssh.allowedSignersFile={signers_file}"] if signers_file else []
    fmt = "%H%x00%an%x00%ae%x00" + ("%G?%x00%GK" if signatures else "N%x00")
    out = gitio.git(repo, *prefix, "show", "-s", "--no-walk=unsorted", f"--format={fmt}", *tips,
                    env=gitio.OBJECTS_ONLY_ENV)
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        oid, name, email, sig, key = line.split("\0")
        found[oid] = _Head(account_of(name, email), sig or "N", key)
    return {c.oid: found[c.parents[1]] for c in commits if len(c.parents) > 1}


def _clean_merge(root: Path, commit: Commit) -> bool:
    """Whether a merge commit's tree is exactly the merge of its parents.

    The signature that identifies a merge is its merged head's; a merge commit
    that adds changes of its own (an "evil merge") would pass them off under it.
    """
    proc = subprocess.run(["git", "-C", str(root), "merge-tree", "--write-tree",
                           *commit.parents[:2]], capture_output=True, text=True)
    if proc.returncode != 0:  # conflicts: the merge commit resolved them by hand
        return False
    merged = proc.stdout.split("\n", 1)[0].strip()
    return merged == gitio.git(root, "rev-parse", f"{commit.oid}^{{tree}}").decode().strip()


def forge_merger(commit: Commit) -> str | None:
    """Return the account the forge recorded as having merged ``commit``, or None.

    A merge made on the forge's web page or API is written by the forge with
    the merger as author under the forge's no-reply address; a merge made
    elsewhere records nothing the forge vouches for.
    """
    if len(commit.parents) < 2:
        return None
    m = _NOREPLY_RE.match(commit.author_email)
    return m["login"] if m else None


# -- the replay -------------------------------------------------------------------


@dataclass
class _State:
    """The tree as of the commit being replayed: config blobs and folders."""

    config: dict[str, str] = field(default_factory=dict)  # path -> blob
    folders: dict[str, dict[str, str]] = field(default_factory=dict)  # folder -> name -> blob
    ids: dict[str, str] = field(default_factory=dict)  # petition id -> folder

    def apply(self, change: RawChange) -> None:
        if change.old_path:
            self._set(change.old_path, "")
        self._set(change.path, change.new_blob)

    def _set(self, path: str, blob: str) -> None:
        if path in load.CONFIG_FILES:
            if blob:
                self.config[path] = blob
            else:
                self.config.pop(path, None)
            return
        placed = load.layout(path)
        if placed is None:
            return
        folder, name = placed
        files = self.folders.setdefault(folder, {})
        if blob:
            files[name] = blob
        else:
            files.pop(name, None)
            if not files:
                del self.folders[folder]


class _Blobs:
    """Blob contents and their parsed YAML, read in bulk."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.text: dict[str, bytes] = {}
        self.parsed: dict[str, tuple[Any, Any]] = {}

    def load(self, oids: Iterable[str]) -> None:
        todo = [o for o in dict.fromkeys(oids) if o and o not in self.text]
        step = 20000
        for i in range(0, len(todo), step):
            self.text.update(gitio.read_blobs(self.repo, todo[i:i + step]))

    def read(self, oid: str) -> bytes:
        if oid not in self.text:
            self.load([oid])
        return self.text[oid]

    def data(self, oid: str) -> tuple[Any, Any]:
        hit = self.parsed.get(oid)
        if hit is None:
            hit = load.parse_record(self.read(oid))
            self.parsed[oid] = hit
        return hit


@dataclass
class _Config:
    departments: r.Departments | None
    tolerance: timedelta
    keys: dict[str, str]  # SSH key fingerprint -> the account that holds the key
    problems: list[Problem]  # what is wrong with departments.yaml or rules.yaml, if anything
    rules: Any = None  # the rules, for the records the system wrote

    @property
    def keyed(self) -> bool:
        """Whether identities come from signatures (departments.yaml lists keys)."""
        return bool(self.keys)


def _read_config(state: _State, blobs: _Blobs, fingerprints: Mapping[str, str]) -> _Config:
    departments = None
    problems: list[Problem] = []
    name = "departments.yaml"
    text = blobs.read(state.config[name]) if name in state.config else None
    if text is None:
        problems.append(Problem(name, None, "missing-config", "departments.yaml is missing",
                                "restore departments.yaml"))
    else:
        report = v.Report()
        try:
            departments = v.check_departments(report, name, parse(text))
        except YamlError as exc:
            report.add(name, ("#line", exc.line or 1), "yaml", f"not valid YAML: {exc}",
                       "fix the YAML syntax at that line")
        problems += [p for p in report.resolve(lambda _: name, lambda _: text)
                     if p.severity == "error"]
    tolerance = governance.DEFAULT_TOLERANCE
    rules = None
    rules_text = blobs.read(state.config["rules.yaml"]) if "rules.yaml" in state.config else None
    if rules_text is not None:
        from generator.rules import load_rules

        rules, found = load_rules(rules_text, "rules.yaml", cross_check=False)
        problems += [p for p in found if p.severity == "error"]
        tolerance = governance.tolerance_of(rules)
    keys: dict[str, str] = {}
    if departments is not None:
        for account, listed in departments.signing_keys.items():
            for key in listed:
                keys[fingerprints.get(key, key)] = account
    return _Config(departments, tolerance, keys, problems, rules)


class _Records:
    """Each record file checked on its own once, by (path, blob).

    The replay touches a folder every time an event is added to it; checking
    every file of the folder again each time (as a one-commit check does)
    would cost the audit most of its time.
    """

    def __init__(self, blobs: _Blobs):
        self.blobs = blobs
        self.done: dict[tuple[str, str], tuple[Any, list[Problem]]] = {}

    def get(self, path: str, blob: str) -> tuple[r.Petition | r.Event | None, list[Problem]]:
        key = (path, blob)
        hit = self.done.get(key)
        if hit is None:
            data, error = self.blobs.data(blob)
            report = v.Report()
            record = None
            if error is not None:
                report.add(path, ("#line", error[1] or 1), "yaml", f"not valid YAML: {error[0]}",
                           "fix the YAML syntax at that line")
            else:
                record = governance.record_of(report, path, data)
            problems = report.resolve(lambda _: path, lambda _: self.blobs.read(blob)) \
                if report.pending else []
            hit = self.done[key] = (record, problems)
        return hit


def _folder_problems(folder: str, files: Mapping[str, str], departments: r.Departments,
                     records: _Records, blobs: _Blobs, rules: Any = None) -> list[Problem]:
    """Return the problems of one folder as ``wenzheng check`` finds them."""
    problems: list[Problem] = []
    petition = None
    events: list[r.Event] = []
    for name in sorted(files):
        path = f"{folder}/{name}"
        record, found = records.get(path, files[name])
        problems += found
        if isinstance(record, r.Petition):
            petition = record
        elif isinstance(record, r.Event):
            events.append(record)
    if r.PETITION_FILE not in files:
        problems.append(Problem(f"{folder}/{r.PETITION_FILE}", None, "missing-petition",
                                f"folder {folder} has no petition.yaml",
                                "every petition folder starts with its petition.yaml"))
    report = v.Report()
    case = v.check_case(report, petition, events, departments, folder)
    if case is not None and rules is not None and not problems:
        from generator.escalate import check_system_records

        check_system_records(report, case, rules)
    if report.pending:
        problems += report.resolve(lambda name: f"{folder}/{name}",
                                   lambda name: blobs.read(files[name]) if name in files else None)
    return problems


ACK_FOLDER = archivepaths.CENTRE_FOLDERS[0]
_ACK_FIELDS = ("commit", "code", "path", "reason")
_OID_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def _violations_of(previous: Mapping[str, Any] | None) -> list[Violation]:
    """Return the open violations an earlier report carries."""
    if previous is None:
        return []
    return [Violation(**{k: d.get(k, "") for k in ("commit", "path", "code", "message", "hint",
                                                   "account")})
            for d in previous.get("violations") or ()]


def _acknowledgement(path: str, blob: str, blobs: _Blobs) -> tuple[tuple[str, str, str] | None,
                                                                   list[Problem]]:
    """Return the violation an acknowledgement record names as (commit, path, code),
    and every problem with the record."""
    data, error = blobs.data(blob)
    report = v.Report()
    key = None
    if error is not None:
        report.add(path, ("#line", error[1] or 1), "yaml", f"not valid YAML: {error[0]}",
                   "fix the YAML syntax at that line")
    elif not isinstance(data, dict):
        report.add(path, (), "bad-acknowledgement", "an acknowledgement must be a mapping",
                   "write commit:, code:, path: and reason: (docs/audit.md)")
    else:
        for name in _ACK_FIELDS:
            value = data.get(name)
            if not isinstance(value, str) or not value.strip():
                report.add(path, (name,) if name in data else (), "bad-acknowledgement",
                           f"the acknowledgement needs `{name}:` as text",
                           "copy commit, code and path from the violation on the audit page, "
                           "and say in reason what the centre did about it")
        for name in data:
            if name not in _ACK_FIELDS:
                report.add(path, (name,), "bad-acknowledgement", f"unknown key {name!r}",
                           f"use only: {', '.join(_ACK_FIELDS)}")
        if isinstance(data.get("commit"), str) and not _OID_RE.match(data["commit"]):
            report.add(path, ("commit",), "bad-acknowledgement",
                       f"commit {data['commit']!r} is not a full commit id",
                       "copy the whole 40-character id from audit.json")
        if not report.has_errors:
            key = (data["commit"], data["path"], data["code"])
    problems = report.resolve(lambda _: path, lambda _: blobs.read(blob)) if report.pending else []
    return key, problems


def _identity(commit: Commit, claimed: str, signature: str, signing_key: str,
              config: _Config) -> tuple[str, list[Problem]]:
    """Return the account a commit is judged as, and the signature's problems.

    With no keys listed the claimed account (the author's) is all there is.
    With keys listed the signature says who made the commit: an author name
    that is not the signer's is reported and ignored.
    """
    if not config.keyed:
        return claimed, []
    if signature == "N":
        return claimed, [Problem("(commit)", None, "unsigned",
                                 "the commit carries no signature, and departments.yaml lists "
                                 "signing keys",
                                 "sign commits with your key listed under signing_keys "
                                 "(git config commit.gpgsign true; docs/audit.md)")]
    if signature == "B":
        return claimed, [Problem("(commit)", None, "bad-signature",
                                 "the commit's signature does not verify",
                                 "the commit was altered after it was signed; restore the "
                                 "signed commit")]
    owner = config.keys.get(signing_key) if signature in ("G", "U") else None
    if owner is None:
        return claimed, [Problem("(commit)", None, "unknown-key",
                                 f"signed with key {signing_key or '?'}, which departments.yaml "
                                 "did not list for any account before this commit",
                                 "sign with your key listed under signing_keys, or ask the "
                                 "centre to list your key first")]
    if owner != claimed:
        return owner, [Problem("(commit)", None, "author-not-signer",
                               f"the commit names {claimed!r} as its author but was signed with "
                               f"the key of {owner!r}; it is judged as {owner!r}",
                               "commit under your own account name (git config user.name "
                               "<your forge account>)")]
    return owner, []


class AuditError(RuntimeError):
    """The audit could not finish (a damaged repository, a bug): not a finding.

    The message is one line naming what the audit was doing, the commit it
    was replaying if any, and the error.
    """


def audit_history(repo: str | Path, branch: str = "main", *, now: datetime,
                  previous: Mapping[str, Any] | None = None, incremental: bool = False,
                  merge_window: timedelta = DEFAULT_MERGE_WINDOW) -> AuditReport:
    """Return the audit of ``branch``: every violation of the pull-request rules
    in its first-parent history, judged by the rules of each commit's parent.

    ``previous`` is an earlier report (None: this is the first audit): its
    head must still be on the first-parent line of the branch (else history
    was rewritten), and its violations stay open until a centre record
    acknowledges them. With ``incremental`` the replay starts after that head
    instead of at the first commit. Signatures are verified whenever
    departments.yaml lists keys.

    Raises :class:`AuditError` when the audit cannot finish.
    """
    doing = ["reading the history of " + branch]
    try:
        return _audit_history(repo, branch, now=now, previous=previous, incremental=incremental,
                              merge_window=merge_window, doing=doing)
    except AuditError:
        raise
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise AuditError(f"the audit stopped while {doing[0]}: {detail}") from exc


def _audit_history(repo: str | Path, branch: str, *, now: datetime,
                   previous: Mapping[str, Any] | None, incremental: bool,
                   merge_window: timedelta, doing: list[str]) -> AuditReport:
    """The audit; ``doing[0]`` is kept saying what it is doing, for an error."""
    import time

    started = time.perf_counter()
    root = Path(repo)
    head = gitio.rev_parse(root, branch)
    violations: list[Violation] = _violations_of(previous)
    start: str | None = None
    if previous is not None:
        prev_head = previous.get("head")
        if prev_head and not _on_first_parent_line(root, prev_head, head):
            violations.append(Violation(
                prev_head, "(history)", "history-rewritten",
                f"commit {prev_head[:12]}, proved by the audit of {previous.get('checked_at', '?')}, "
                f"is no longer on the first-parent line of {branch}: history was rewritten "
                "(a force-push, or a fast-forward to a merge that keeps it only as a second "
                "parent, which can drop or change what it merged)",
                "restore the published history (push the audited commits back) and record "
                "fixes as new commits; the published audit.json keeps the proof"))
        elif prev_head and incremental:
            start = prev_head
    if head is None:
        return AuditReport(branch, None, None, start, 0, 0, now.isoformat(),
                           "not checked", _dedupe(violations), [],
                           time.perf_counter() - started)

    signers_file, fingerprints = _allowed_signers(root, branch)
    signatures = bool(fingerprints)
    try:
        commits = read_history(root, branch, since=start, signatures=signatures,
                               signers_file=signers_file)
        merged_heads = _merged_heads(root, commits, signatures, signers_file)
    finally:
        signers_file.unlink()
    total = int(gitio.git(root, "rev-list", "--first-parent", "--count", head).decode())
    first = gitio.git(root, "rev-list", "--first-parent", "--max-parents=0", head).decode().split()

    state = _State()
    blobs = _Blobs(root)
    checked = _Records(blobs)
    if start is not None:
        _state_at(root, start, state, commits)
    # One bulk read: every blob the replay will look at.
    needed = [ch.new_blob for c in commits for ch in c.changes if ch.new_blob]
    touched = {load.layout(ch.path)[0] for c in commits for ch in c.changes
               if load.layout(ch.path)}
    needed += [b for f in touched for b in state.folders.get(f, {}).values()]
    needed += list(state.config.values())
    doing[0] = f"reading the files of the {len(commits)} commit(s) to replay"
    try:
        blobs.load(needed)
    except gitio.GitError as exc:  # name the commit that brought the unreadable file
        culprit = next((c.oid for c in commits for ch in c.changes
                        if ch.new_blob and ch.new_blob in str(exc)), None)
        if culprit:
            doing[0] = f"reading the files of commit {culprit}"
        raise
    _parse_all(root, blobs, needed)

    config = _read_config(state, blobs, fingerprints) if state.config else None
    if start is not None and (config is None or config.problems):
        # the config at the previous head has errors: only a full replay knows the
        # last good one to judge the new commits by
        return audit_history(root, branch, now=now, previous=previous, incremental=False,
                             merge_window=merge_window)
    # the last departments.yaml and rules.yaml without errors: a broken config
    # commit is reported once, and later commits are still judged by these
    good = config if config is not None and not config.problems else None
    acknowledgements: dict[tuple[str, str, str], str] = {}
    keyed_commits = 0
    for commit in commits:
        doing[0] = f"replaying commit {commit.oid}"
        merged = merged_heads.get(commit.oid)
        claimed = merged.account if merged else account_of(commit.author_name,
                                                           commit.author_email)
        signature = merged.signature if merged else commit.signature
        signing_key = merged.signing_key if merged else commit.signing_key
        base_names = {}
        changed_folders: set[str] = set()
        for ch in commit.changes:
            for p in (ch.path, ch.old_path):
                placed = load.layout(p) if p else None
                if placed:
                    changed_folders.add(placed[0])
        for folder in changed_folders:
            base_names[folder] = tuple(sorted(state.folders.get(folder, {})))
        base_ids = dict(state.ids)
        for ch in commit.changes:
            state.apply(ch)
        config_changed = any(ch.path in load.CONFIG_FILES or ch.old_path in load.CONFIG_FILES
                             for ch in commit.changes)
        if config_changed or config is None:
            head_config = _read_config(state, blobs, fingerprints)
        else:
            head_config = config
        found: list[Violation] = []
        account = claimed

        def add(problems: Iterable[Problem]) -> None:
            for p in problems:
                if p.severity == "error":
                    found.append(Violation(commit.oid, p.path, p.code, p.message, p.hint, account))

        judge = good if config is not None and config.problems else config
        if config is None:
            pass  # the founding commit: whoever owns the repository made it
        elif judge is None or judge.departments is None:
            add([Problem("departments.yaml", None, "base-config",
                         "departments.yaml and rules.yaml have had errors since the first "
                         "commit, so no right could be judged", "the centre must fix them")])
        else:
            keyed_commits += judge.keyed
            account, problems = _identity(commit, claimed, signature, signing_key, judge)
            add(problems)
            if merged and judge.keyed and not _clean_merge(root, commit):
                add([Problem("(merge)", None, "merge-adds-changes",
                             "the merge commit holds changes of its own besides the branch it "
                             "merged; nobody's signature covers them",
                             "merge on the forge (or with a plain `git merge`) and make every "
                             "change a signed commit on the branch")])
            merger = forge_merger(commit)
            merger_actor = judge.departments.actor_of(merger) if merger else None
            actor = judge.departments.actor_of(account)
            if merger and merger_actor != r.CENTRE and merger_actor != actor:
                add([Problem("(merge)", None, "merger-mismatch",
                             f"the forge recorded {merger!r} ({merger_actor or 'no unit'}) as "
                             f"merging this change, which {account!r} ({actor or 'no unit'}) "
                             "is said to have made",
                             "a unit merges only its own changes (the centre may merge any); "
                             "the centre must review this change")])
            added = {}
            for ch in commit.changes:
                if ch.status in "AR" and ch.new_blob and r.FOLDER_RE.match(ch.path):
                    record, _ = checked.get(ch.path, ch.new_blob)
                    if record is not None:
                        added[ch.path] = record
            cs = governance.ChangeSet(
                tuple(gitio.Change(ch.status, ch.path, ch.old_path) for ch in commit.changes),
                base_names, added)
            add(governance.check_pull_request(cs, judge.departments,
                                              judge.tolerance + merge_window, account,
                                              commit.time))
            for ch in commit.changes:
                for p in (ch.path, ch.old_path):
                    if p and p.startswith(ACK_FOLDER) and ch.status != "A":
                        add([Problem(p, None, "append-only",
                                     f"{p} is a merged acknowledgement and was changed",
                                     "acknowledgements are never edited or deleted; add a "
                                     "new one")])
                if ch.status == "A" and ch.path.startswith(ACK_FOLDER):
                    key, problems = _acknowledgement(ch.path, ch.new_blob, blobs)
                    add(problems)
                    if key and actor == r.CENTRE:
                        acknowledgements.setdefault(key, ch.path)
        if config_changed and head_config.problems:
            before = {(p.path, p.code, p.message) for p in (config.problems if config else ())}
            add(p for p in head_config.problems if (p.path, p.code, p.message) not in before)
        # the record checks, on the folders this commit touched
        departments = (head_config if not head_config.problems else good or head_config).departments
        paths = {ch.path for ch in commit.changes if ch.new_blob}
        if departments is not None:
            for folder in sorted(changed_folders):
                files = state.folders.get(folder)
                if not files:
                    continue
                problems = _folder_problems(folder, files, departments, checked, blobs,
                                            head_config.rules)
                add(p for p in problems if p.path in paths)
                pid = folder.rsplit("/", 1)[1]
                other = base_ids.get(pid)
                if other and other != folder and f"{folder}/petition.yaml" in paths:
                    add([Problem(f"{folder}/petition.yaml", 1, "duplicate-id",
                                 f"petition id {pid} is also used by {other}",
                                 "each id is used once; the later petition needs a new id")])
                state.ids.setdefault(pid, folder)
        for ch in commit.changes:  # the archive's path rules, as wenzheng check has them
            if archivepaths.kind_of(ch.path) == archivepaths.RECORD and ch.new_mode != "000000":
                size = len(blobs.read(ch.new_blob)) if ch.new_blob else None
                add(p for p in [archivepaths.entry_problem(ch.path, ch.new_mode, size)] if p)
        violations.extend(found)
        config = head_config
        if not head_config.problems:
            good = head_config

    judged = len(commits) - (start is None)  # the founding commit is not judged
    if not keyed_commits:
        signed = "not checked"
    elif keyed_commits >= judged:
        signed = "verified"
    else:
        signed = "partly verified"
    open_: list[Violation] = []
    acknowledged: list[Violation] = []
    for found_v in _dedupe(violations):
        ack = acknowledgements.get((found_v.commit, found_v.path, found_v.code))
        if ack:
            acknowledged.append(Violation(**{**asdict(found_v), "acknowledged_by": ack}))
        else:
            open_.append(found_v)
    return AuditReport(
        branch=branch, head=head, first=first[0] if first else None, start=start,
        commits=total, commits_checked=len(commits), checked_at=now.isoformat(),
        signatures=signed, violations=open_, acknowledged=acknowledged,
        seconds=round(time.perf_counter() - started, 3))


def _dedupe(violations: Iterable[Violation]) -> list[Violation]:
    """Return the violations once each, by (commit, path, code), first seen first."""
    seen: dict[tuple[str, str, str], Violation] = {}
    for found in violations:
        seen.setdefault((found.commit, found.path, found.code), found)
    return list(seen.values())


def _parse_all(root: Path, blobs: _Blobs, oids: list[str]) -> None:
    """Parse every record blob up front, in parallel when there are many."""
    todo = [o for o in dict.fromkeys(oids) if o not in blobs.parsed]
    if len(todo) < 4000:
        for o in todo:
            blobs.data(o)
        return
    from concurrent.futures import ProcessPoolExecutor

    workers = min(os.cpu_count() or 1, 4)
    size = max(1000, len(todo) // (workers * 4))
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
    with ProcessPoolExecutor(workers) as pool:
        for chunk, out in zip(chunks, pool.map(load.parse_blob_chunk,
                                               [(str(root), c) for c in chunks])):
            blobs.parsed.update(zip(chunk, out))


def _state_at(root: Path, rev: str, state: _State, commits: list[Commit]) -> None:
    """Fill ``state`` with the tree of ``rev`` (names and blob ids only)."""
    for entry in gitio.ls_tree(root, rev, list(load.CONFIG_FILES) + ["petitions"],
                               errors=PATH_ERRORS):
        if entry.path in load.CONFIG_FILES:
            state.config[entry.path] = entry.oid
            continue
        placed = load.layout(entry.path)
        if placed:
            state.folders.setdefault(placed[0], {})[placed[1]] = entry.oid
            state.ids.setdefault(placed[0].rsplit("/", 1)[1], placed[0])


def _on_first_parent_line(root: Path, proved: str, head: str | None) -> bool:
    """Whether ``proved`` is on the first-parent line of ``head`` (or is it).

    Being an ancestor is not enough: a merge whose first parent is an older
    commit and whose second parent is ``proved`` (``git merge -s ours``) makes
    a fast-forward that drops every change after the older commit, and the
    replay, which follows first parents, would never see it. One git call:
    the first-parent commits of ``head`` that ``proved`` does not reach; the
    oldest of them must have ``proved`` as its first parent.
    """
    if head is None:
        return False
    if head == proved:
        return True
    proc = subprocess.run(["git", "-C", str(root), "rev-list", "--first-parent", "--parents",
                           f"{proved}..{head}", "--"], capture_output=True, text=True,
                          env=gitio.OBJECTS_ONLY_ENV)
    lines = proc.stdout.split("\n")
    last = next((line for line in reversed(lines) if line), "")
    parents = last.split()[1:2]
    return proc.returncode == 0 and parents == [proved]


# -- signatures -------------------------------------------------------------------


def _ssh_fingerprint(key: str) -> str | None:
    """Return the SHA256 fingerprint of an SSH public key line, or None."""
    proc = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", "-"], input=key.encode(),
                          capture_output=True)
    if proc.returncode != 0:
        return None
    parts = proc.stdout.decode().split()
    return parts[1] if len(parts) > 1 else None


def _allowed_signers(root: Path, branch: str) -> tuple[Path, dict[str, str]]:
    """Return an allowed-signers file holding every SSH key any departments.yaml
    in the history of ``branch`` lists, and each key's fingerprint.

    git only tells whether a signature is good and by which key; which account
    a key belongs to is decided per commit by the departments.yaml of its parent.
    """
    out = gitio.git(root, "log", "--first-parent", "--format=%H", branch, "--", "departments.yaml")
    keys: dict[str, str] = {}
    for oid in out.decode().split():
        text = gitio.read_file_at(root, oid, "departments.yaml")
        try:
            data = parse(text) if text else None
        except YamlError:
            continue
        listed = data.get("signing_keys") if isinstance(data, dict) else None
        if not isinstance(listed, dict):
            continue
        for account_keys in listed.values():
            for key in account_keys if isinstance(account_keys, list) else ():
                if isinstance(key, str) and v.SSH_KEY_RE.match(key.strip()):
                    key = key.strip()
                    fp = keys.get(key) or _ssh_fingerprint(key)
                    if fp:
                        keys[key] = fp
    fd, name = tempfile.mkstemp(prefix="wenzheng-signers-")
    with os.fdopen(fd, "w") as fh:
        for key, fp in keys.items():
            fh.write(f"{fp} {' '.join(key.split()[:2])}\n")
    return Path(name), keys


# -- rebuilding the published products ----------------------------------------------


def compare_trees(expected: Path, actual: Path) -> list[str]:
    """Return every difference between two folders, byte for byte, as
    ``missing: p``, ``extra: p`` or ``differs: p`` lines."""
    def files(base: Path) -> dict[str, Path]:
        return {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file()}

    want, got = files(expected), files(actual)
    out = [f"missing: {p}" for p in sorted(want.keys() - got.keys())]
    out += [f"extra: {p}" for p in sorted(got.keys() - want.keys())]
    for p in sorted(want.keys() & got.keys()):
        if want[p].read_bytes() != got[p].read_bytes():
            out.append(f"differs: {p}")
    return out


def read_previous(path: Path) -> dict[str, Any]:
    """Return a previous audit report.

    A report that is missing or cannot be read is an error, never ignored: a
    lost or damaged proof must not pass as "no proof yet" (a first audit says
    so with ``--first``).
    """
    if not path.is_file():
        raise ValueError(f"--previous {path}: no such file. Give the audit.json published "
                         "by the last audit (the site's audit.json); only the very first audit "
                         "of an archive runs without one, with --first instead of --previous")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"--previous {path}: the previous audit report is not valid JSON "
                         f"({exc}); restore it from the published site") from None
    if not isinstance(data, dict) or not isinstance(data.get("head"), (str, type(None))):
        raise ValueError(f"--previous {path}: this is not an audit report (no `head`); "
                         "restore it from the published site")
    listed = data.get("violations", [])
    fields = ("commit", "path", "code", "message", "hint")
    if not isinstance(listed, list) or not all(
            isinstance(d, dict) and all(isinstance(d.get(k), str) for k in fields)
            for d in listed):
        raise ValueError(f"--previous {path}: `violations` is damaged (each needs "
                         f"{', '.join(fields)} as text); restore it from the published site")
    return data


def render_page(report: AuditReport) -> str:
    """Return the audit's public page (Chinese first, English beside it)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("generator", "templates"),
                             autoescape=True, keep_trailing_newline=True)
    return env.get_template("audit.html").render(report=report)


def write_site(report: AuditReport, site: Path) -> None:
    """Write ``audit.json`` and ``audit/index.html`` into the site folder."""
    (site / "audit").mkdir(parents=True, exist_ok=True)
    tmp = site / "audit.json.tmp"
    tmp.write_text(report.to_json(), encoding="utf-8")
    os.replace(tmp, site / "audit.json")
    (site / "audit" / "index.html").write_text(render_page(report), encoding="utf-8")


def rebuild_and_compare(repo: Path, rev: str, now: datetime, published: Path) -> list[str]:
    """Return the differences between ``published`` and the site rebuilt from
    ``rev`` as of ``now`` with ``wenzheng build`` (empty: byte for byte equal;
    a build gives the same bytes for the same commit, ``now`` and package
    versions). A text file that differs is named with what differs in it
    (:func:`describe_change`).

    The audit's own files are left out: they describe the audit, not the commit.
    """
    import sys

    with tempfile.TemporaryDirectory(prefix="wenzheng-rebuild-") as tmp:
        out = Path(tmp) / "site"
        proc = subprocess.run(
            [sys.executable, "-m", "generator", "build", "--repo", str(repo), "--rev", rev,
             "--now", now.isoformat(), "--out", str(out)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("wenzheng build failed while rebuilding "
                               f"{rev}: {proc.stderr.strip() or proc.stdout.strip()}")
        diffs = []
        for d in compare_trees(published, out):
            kind, path = d.split(": ", 1)
            if path.startswith(("audit.json", "audit/")):
                continue
            detail = describe_change(out / path, published / path) if kind == "differs" else ""
            diffs.append(f"{d} ({detail})" if detail else d)
    return diffs


_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|\w+|\S")  # a figure, a word, or one other character
MAX_CHANGES = 5  # changes named per file; the rest are counted
_DIFF_LINES = 2000  # lines compared in detail around the changes (the downloads run to millions)
_DIFF_TOKENS = 20_000


def describe_change(rebuilt: Path, published: Path) -> str:
    """Return what differs between two versions of a text file, as ``line N:
    "x" rebuilt, "y" published`` for each changed run of figures or words
    (a figure changed by hand shows as the figure), or "" for a file that is
    not UTF-8 text."""
    try:
        want = rebuilt.read_text(encoding="utf-8").splitlines()
        got = published.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        return ""
    # The changed region: what is left once the common first and last lines are set aside.
    start = 0
    while start < min(len(want), len(got)) and want[start] == got[start]:
        start += 1
    end = 0
    while end < min(len(want), len(got)) - start and want[-1 - end] == got[-1 - end]:
        end += 1
    a, b = want[start:len(want) - end], got[start:len(got) - end]
    if not a and not b:
        return "in line endings only"
    if len(a) > _DIFF_LINES or len(b) > _DIFF_LINES:
        a, b = a[:_DIFF_LINES], b[:_DIFF_LINES]
    changes: list[str] = []
    lines = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in lines.get_opcodes():
        if op == "equal":
            continue
        old, new = _tokens(a, i1, i2, start), _tokens(b, j1, j2, start)
        if len(old) + len(new) > _DIFF_TOKENS:  # the first token that differs, not a quadratic diff
            k = next((k for k, (x, y) in enumerate(zip(old, new)) if x[0] != y[0]), min(len(old), len(new)))
            words: Any = [("replace", k, k + 1, k, k + 1)]
        else:
            words = difflib.SequenceMatcher(None, [t[0] for t in old], [t[0] for t in new],
                                            autojunk=False).get_opcodes()
        for top, k1, k2, l1, l2 in words:
            if top != "equal":
                line = new[l1][1] if l1 < l2 else old[k1][1] if k1 < k2 else start + j1 + 1
                changes.append(f"line {line}: {_quote(old[k1:k2], a, start)} rebuilt, "
                               f"{_quote(new[l1:l2], b, start)} published")
    more = len(changes) - MAX_CHANGES
    return "; ".join(changes[:MAX_CHANGES]) + (f"; and {more} more" if more > 0 else "")


def _tokens(lines: list[str], first: int, last: int, start: int) -> list[tuple[str, int, int, int]]:
    """Return the tokens of ``lines[first:last]``: each with its line number
    in the file (``start`` lines come before ``lines``), where it starts and ends."""
    return [(m[0], start + i + 1, m.start(), m.end())
            for i in range(first, last) for m in _TOKEN.finditer(lines[i])]


def _quote(tokens: list[tuple[str, int, int, int]], lines: list[str], start: int) -> str:
    """Return the text of a run of tokens, quoted (as it stands when on one line)."""
    if not tokens:
        return "nothing"
    if tokens[0][1] == tokens[-1][1]:
        text = lines[tokens[0][1] - start - 1][tokens[0][2]:tokens[-1][3]]
    else:
        text = " ".join(t[0] for t in tokens)
    return json.dumps(text if len(text) <= 60 else text[:57] + "...", ensure_ascii=False)

