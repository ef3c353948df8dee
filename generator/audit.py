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
that commit is no longer an ancestor of the branch, history was rewritten.

Signatures (``--verify-signatures``) are checked in the same log pass: every
commit must carry a good signature whose key is listed under ``signing_keys``
of the unit its account acts for (the centre's keys for the bridge and bot
accounts, which the centre runs), as departments.yaml stood at its parent.

The design is explained in docs/audit.md.
"""

from __future__ import annotations

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
    signing_key: str = ""  # git's %GK (SSH: SHA256 fingerprint; OpenPGP: key id)
    signer_fingerprint: str = ""  # git's %GF (OpenPGP primary fingerprint)


@dataclass(frozen=True)
class Violation:
    """A commit that broke a rule: which commit, which file, which rule."""

    commit: str
    path: str
    code: str
    message: str
    hint: str
    account: str = ""

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
    signatures: str  # "verified" | "not checked"
    violations: list[Violation] = field(default_factory=list)
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


_FORMAT = "%x01%H %P%x00%an%x00%ae%x00%ct%x00%G?%x00%GK%x00%GF%x00"
_FORMAT_PLAIN = "%x01%H %P%x00%an%x00%ae%x00%ct%x00N%x00%x00%x00"


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
        parts = chunk.split(b"\0", 7)
        ids = parts[0].decode().split()
        raw = parts[7] if len(parts) > 7 else b""
        commits.append(Commit(
            oid=ids[0], parents=tuple(ids[1:]),
            author_name=parts[1].decode("utf-8", "replace"),
            author_email=parts[2].decode("utf-8", "replace"),
            time=datetime.fromtimestamp(int(parts[3]), tz=timezone.utc),
            changes=tuple(_raw_changes(raw)),
            signature=parts[4].decode() or "N", signing_key=parts[5].decode(),
            signer_fingerprint=parts[6].decode(),
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
            old, new = fields[i + 1].decode(), fields[i + 2].decode()
            yield RawChange(status[0], new, old, old_blob, new_blob, new_mode)
            i += 3
        else:
            yield RawChange(status[0], fields[i + 1].decode(), None, old_blob, new_blob, new_mode)
            i += 2


def _merged_accounts(repo: str | Path, commits: list[Commit]) -> dict[str, str]:
    """Return, for each merge commit, the account of the merged branch's head.

    A merge commit's author is whoever pressed the button; the change belongs
    to the author of the branch it merged.
    """
    tips = [c.parents[1] for c in commits if len(c.parents) > 1]
    if not tips:
        return {}
    out = gitio.git(repo, "show", "-s", "--no-walk=unsorted", "--format=%H%x00%an%x00%ae", *tips)
    found = {}
    for line in out.decode("utf-8", "replace").splitlines():
        oid, name, email = line.split("\0")
        found[oid] = account_of(name, email)
    return {c.oid: found[c.parents[1]] for c in commits if len(c.parents) > 1}


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
    keys: dict[str, set[str]]  # actor -> accepted key ids/fingerprints


def _read_config(state: _State, blobs: _Blobs, fingerprints: Mapping[str, str]) -> _Config:
    departments = None
    text = blobs.read(state.config["departments.yaml"]) if "departments.yaml" in state.config else None
    if text is not None:
        try:
            report = v.Report()
            departments = v.check_departments(report, "departments.yaml", parse(text))
        except YamlError:
            departments = None
    tolerance = governance.DEFAULT_TOLERANCE
    rules_text = blobs.read(state.config["rules.yaml"]) if "rules.yaml" in state.config else None
    if rules_text is not None:
        from generator.rules import load_rules

        rules, _ = load_rules(rules_text, "rules.yaml", cross_check=False)
        tolerance = governance.tolerance_of(rules)
    keys: dict[str, set[str]] = {}
    if departments is not None:
        units = [departments.centre, *departments.departments.values()]
        for unit in units:
            keys[unit.id] = {fingerprints.get(k, k.strip()) for k in unit.signing_keys}
        # The bridge and the bot are services the centre runs, with its keys.
        keys[r.PETITIONER] = keys[r.SYSTEM] = keys.get(r.CENTRE, set())
    return _Config(departments, tolerance, keys)


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
                     records: _Records, blobs: _Blobs) -> list[Problem]:
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
    v.check_case(report, petition, events, departments, folder)
    if report.pending:
        problems += report.resolve(lambda name: f"{folder}/{name}",
                                   lambda name: blobs.read(files[name]) if name in files else None)
    return problems


def audit_history(repo: str | Path, branch: str = "main", *, now: datetime,
                  previous: Mapping[str, Any] | None = None, incremental: bool = False,
                  verify_signatures: bool = False,
                  merge_window: timedelta = DEFAULT_MERGE_WINDOW) -> AuditReport:
    """Return the audit of ``branch``: every violation of the pull-request rules
    in its first-parent history, judged by the rules of each commit's parent.

    ``previous`` is an earlier report: its head must still be an ancestor of
    the branch (else history was rewritten). With ``incremental`` the replay
    starts after that head instead of at the first commit.
    """
    import time

    started = time.perf_counter()
    root = Path(repo)
    head = gitio.rev_parse(root, branch)
    violations: list[Violation] = []
    start: str | None = None
    if previous is not None:
        prev_head = previous.get("head")
        if prev_head and not _is_ancestor(root, prev_head, head):
            violations.append(Violation(
                prev_head, "(history)", "history-rewritten",
                f"commit {prev_head[:12]}, proved by the audit of {previous.get('checked_at', '?')}, "
                f"is no longer in the history of {branch}: history was rewritten (force-push)",
                "restore the published history (push the audited commits back) and record "
                "fixes as new commits; the published audit.json keeps the proof"))
        elif prev_head and incremental:
            start = prev_head
    if head is None:
        return AuditReport(branch, None, None, start, 0, 0, now.isoformat(),
                           "not checked", violations, time.perf_counter() - started)

    fingerprints: dict[str, str] = {}
    signers_file = None
    if verify_signatures:
        signers_file, fingerprints = _allowed_signers(root, branch)
    try:
        commits = read_history(root, branch, since=start, signatures=verify_signatures,
                               signers_file=signers_file)
    finally:
        if signers_file is not None:
            signers_file.unlink()
    total = int(gitio.git(root, "rev-list", "--first-parent", "--count", head).decode())
    first = gitio.git(root, "rev-list", "--first-parent", "--max-parents=0", head).decode().split()
    merged_accounts = _merged_accounts(root, commits)

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
    blobs.load(needed)
    _parse_all(root, blobs, needed)

    config = _read_config(state, blobs, fingerprints) if state.config else None
    for commit in commits:
        account = merged_accounts.get(commit.oid) or account_of(commit.author_name,
                                                                commit.author_email)
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
        if any(ch.path in load.CONFIG_FILES or ch.old_path in load.CONFIG_FILES
               for ch in commit.changes) or config is None:
            head_config = _read_config(state, blobs, fingerprints)
        else:
            head_config = config
        found: list[Violation] = []

        def add(problems: Iterable[Problem]) -> None:
            for p in problems:
                if p.severity == "error":
                    found.append(Violation(commit.oid, p.path, p.code, p.message, p.hint, account))

        if config is None:
            pass  # the founding commit: whoever owns the repository made it
        elif config.departments is None:
            add([Problem("departments.yaml", None, "base-config",
                         "departments.yaml had errors before this commit, so no right could "
                         "be judged", "the centre must fix departments.yaml")])
        else:
            added = {}
            for ch in commit.changes:
                if ch.status in "AR" and ch.new_blob and r.FOLDER_RE.match(ch.path):
                    record, _ = checked.get(ch.path, ch.new_blob)
                    if record is not None:
                        added[ch.path] = record
            cs = governance.ChangeSet(
                tuple(gitio.Change(ch.status, ch.path, ch.old_path) for ch in commit.changes),
                base_names, added)
            add(governance.check_pull_request(cs, config.departments,
                                              config.tolerance + merge_window, account,
                                              commit.time))
            if verify_signatures:
                found.extend(_signature_violations(commit, account, config))
        # the record checks, on the folders this commit touched
        departments = head_config.departments
        paths = {ch.path for ch in commit.changes if ch.new_blob}
        if departments is not None:
            for folder in sorted(changed_folders):
                files = state.folders.get(folder)
                if not files:
                    continue
                problems = _folder_problems(folder, files, departments, checked, blobs)
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

    return AuditReport(
        branch=branch, head=head, first=first[0] if first else None, start=start,
        commits=total, commits_checked=len(commits), checked_at=now.isoformat(),
        signatures="verified" if verify_signatures else "not checked",
        violations=violations, seconds=round(time.perf_counter() - started, 3))


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
    for entry in gitio.ls_tree(root, rev, list(load.CONFIG_FILES) + ["petitions"]):
        if entry.path in load.CONFIG_FILES:
            state.config[entry.path] = entry.oid
            continue
        placed = load.layout(entry.path)
        if placed:
            state.folders.setdefault(placed[0], {})[placed[1]] = entry.oid
            state.ids.setdefault(placed[0].rsplit("/", 1)[1], placed[0])


def _is_ancestor(root: Path, ancestor: str, head: str | None) -> bool:
    if head is None:
        return False
    proc = subprocess.run(["git", "-C", str(root), "merge-base", "--is-ancestor", ancestor, head],
                          capture_output=True)
    return proc.returncode == 0


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

    git only tells whether a signature is good and by which key; which key may
    sign which commit is decided per commit against the departments.yaml of
    its parent.
    """
    out = gitio.git(root, "log", "--first-parent", "--format=%H", branch, "--", "departments.yaml")
    keys: dict[str, str] = {}
    for oid in out.decode().split():
        text = gitio.read_file_at(root, oid, "departments.yaml")
        try:
            data = parse(text) if text else None
        except YamlError:
            continue
        if not isinstance(data, dict):
            continue
        units = [data.get("centre") or {}] + list(data.get("departments") or [])
        for unit in units:
            if not isinstance(unit, dict):
                continue
            for key in unit.get("signing_keys") or ():
                if isinstance(key, str) and key.startswith(("ssh-", "ecdsa-", "sk-")):
                    fp = _ssh_fingerprint(key)
                    if fp:
                        keys[key] = fp
    fd, name = tempfile.mkstemp(prefix="wenzheng-signers-")
    with os.fdopen(fd, "w") as fh:
        for key, fp in keys.items():
            fh.write(f"{fp} {key.strip()}\n")
    return Path(name), keys


def _signature_violations(commit: Commit, account: str, config: _Config) -> list[Violation]:
    actor = config.departments.actor_of(account) if config.departments else None
    allowed = config.keys.get(actor or "", set())
    if commit.signature == "N":
        return [Violation(commit.oid, "(commit)", "unsigned",
                          "the commit carries no signature",
                          "sign commits (git config commit.gpgsign true) with a key listed "
                          "under your unit's signing_keys", account)]
    if commit.signature in ("B", "E"):
        return [Violation(commit.oid, "(commit)", "bad-signature",
                          "the commit's signature does not verify",
                          "the commit was altered after signing or signed with an unknown "
                          "key; restore the signed commit", account)]
    key_ids = {commit.signing_key, commit.signer_fingerprint} - {""}
    if not key_ids & allowed:
        return [Violation(commit.oid, "(commit)", "wrong-key",
                          f"signed with key {commit.signing_key or '?'}, which is not one of "
                          f"the signing_keys of {actor or account!r} at that time",
                          "sign with a key your unit lists in departments.yaml, or ask the "
                          "centre to add your key first", account)]
    return []


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


def read_previous(path: Path | None) -> dict[str, Any] | None:
    """Return a previous audit report, or None when there is none yet.

    A report that exists but cannot be read is an error, never ignored: a
    damaged proof must not pass as "no proof yet".
    """
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: the previous audit report is not valid JSON ({exc}); "
                         "restore it from the published site") from None
    if not isinstance(data, dict) or not isinstance(data.get("head"), (str, type(None))):
        raise ValueError(f"{path}: this is not an audit report (no `head`); "
                         "restore it from the published site")
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
    ``rev`` as of ``now`` with ``wenzheng build`` (empty: byte for byte equal).

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
        diffs = compare_trees(published, out)
    return [d for d in diffs if not d.split(": ", 1)[1].startswith(("audit.json", "audit/"))]
