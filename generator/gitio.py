"""Git plumbing: list a tree, read many blobs, write many files in one commit.

One ``git ls-tree`` or one ``git cat-file --batch`` over the whole tree is cheap;
one git call per file is not (GitPython's per-file history costs 25 ms a file).
So everything here streams through a single long-lived git process.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from generator.problems import Problem


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


# Commands that only read objects (ls-tree, diff-tree between commits) still
# load the index of a checked-out work tree: 1.5 s and 770 MB with 2,000,000
# files checked out. Pointing them at an index that does not exist skips that.
OBJECTS_ONLY_ENV = {**os.environ, "GIT_INDEX_FILE": os.path.join(os.sep, "nonexistent-wenzheng", "index")}


def git(repo: str | Path, *args: str, input: bytes | None = None,
        env: dict[str, str] | None = None) -> bytes:
    """Run one git command in ``repo`` and return its standard output."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=input,
        capture_output=True,
        env=env,
    )
    if proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args[:3])} failed in {repo}: "
            + proc.stderr.decode("utf-8", "replace").strip()
        )
    return proc.stdout


def signing_on(repo: str | Path) -> bool:
    """Whether git in ``repo`` is set up to sign commits (``commit.gpgsign``)."""
    proc = subprocess.run(["git", "-C", str(repo), "config", "--bool", "commit.gpgsign"],
                          capture_output=True, text=True)
    return proc.stdout.strip() == "true"


def sign_commit(repo: str | Path, oid: str) -> str:
    """Return a signed copy of commit ``oid`` (same tree, parents, author,
    committer, times and message), signed with git's configured key."""
    raw = git(repo, "cat-file", "commit", oid).decode("utf-8")
    header, _, message = raw.partition("\n\n")
    args, env = [], dict(os.environ)
    for line in header.splitlines():
        field, _, value = line.partition(" ")
        if field == "tree":
            args.insert(0, value)
        elif field == "parent":
            args += ["-p", value]
        elif field in ("author", "committer"):
            ident, _, when = value.rpartition("> ")
            name, _, email = ident.partition(" <")
            who = "AUTHOR" if field == "author" else "COMMITTER"
            env.update({f"GIT_{who}_NAME": name, f"GIT_{who}_EMAIL": email,
                        f"GIT_{who}_DATE": "@" + when})
    return git(repo, "commit-tree", "-S", *args, input=message.encode("utf-8"),
               env=env).decode().strip()


def rev_parse(repo: str | Path, rev: str) -> str | None:
    """Return the full object id of ``rev``, or None if it does not exist."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", rev + "^{commit}"],
        capture_output=True,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | tree | commit
    oid: str
    path: str


def ls_tree(
    repo: str | Path, rev: str, paths: Iterable[str] = (), trees: bool = False,
    errors: str = "strict",
) -> Iterator[TreeEntry]:
    """Yield every entry under ``paths`` (the whole tree if none) at ``rev``.

    With ``trees`` the folders themselves are listed too, so a caller can key a
    cache on a folder's tree id. ``errors`` is how a path that is not UTF-8 is
    decoded (:meth:`bytes.decode`; the audit reports such paths by name).
    """
    args = ["ls-tree", "-r", "-z", "--full-tree"]
    if trees:
        args.append("-t")
    out = git(repo, *args, rev, "--", *paths, env=OBJECTS_ONLY_ENV)
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split(" ")
        yield TreeEntry(mode, kind, oid, path.decode("utf-8", errors))


def read_blobs(repo: str | Path, oids: Iterable[str]) -> dict[str, bytes]:
    """Return the contents of many blobs, read through one ``cat-file --batch``."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input=("\n".join(wanted) + "\n").encode(),
        capture_output=True,
    )
    if proc.returncode != 0:
        raise GitError("git cat-file --batch failed: " + proc.stderr.decode("utf-8", "replace"))
    data = proc.stdout
    result: dict[str, bytes] = {}
    pos = 0
    for oid in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].decode()
        pos = end + 1
        parts = header.split(" ")
        if len(parts) == 2 and parts[1] == "missing":
            raise GitError(f"blob {oid} is missing from {repo}")
        size = int(parts[2])
        result[oid] = data[pos : pos + size]
        pos += size + 1  # the content is followed by a newline
    return result


def object_sizes(repo: str | Path, oids: Iterable[str]) -> dict[str, int]:
    """Return the size in bytes of each object, read through one
    ``cat-file --batch-check`` (nothing is read whole); a missing one is left out."""
    wanted = list(dict.fromkeys(oids))
    if not wanted:
        return {}
    out = git(repo, "cat-file", "--batch-check=%(objectname) %(objectsize)",
              input=("\n".join(wanted) + "\n").encode())
    sizes = {}
    for line in out.decode().splitlines():
        oid, _, size = line.partition(" ")
        if size.isdigit():
            sizes[oid] = int(size)
    return sizes


def read_file_at(repo: str | Path, rev: str, path: str) -> bytes | None:
    """Return one file's content at ``rev``, or None when it is not there."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "blob", f"{rev}:{path}"],
        capture_output=True,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout


def ls_tree_top(repo: str | Path, rev: str) -> list[tuple[bytes, str, bytes]]:
    """Return the top level of ``rev``'s tree as (mode, name, 20-byte id)."""
    out = git(repo, "ls-tree", "-z", rev)
    entries = []
    for record in out.split(b"\0"):
        if record:
            meta, _, name = record.partition(b"\t")
            mode, _, oid = meta.split(b" ")
            entries.append((mode, name.decode("utf-8"), bytes.fromhex(oid.decode())))
    return entries


@dataclass(frozen=True)
class Change:
    status: str  # A added, M modified, D deleted, R renamed, T type changed
    path: str
    old_path: str | None = None


def diff_tree(repo: str | Path, base: str, head: str, paths: Iterable[str] = ()) -> list[Change]:
    """Return what changed between two commits, renames detected."""
    out = git(repo, "diff-tree", "-r", "-z", "-M", "--no-commit-id", "--name-status",
              base, head, "--", *paths, env=OBJECTS_ONLY_ENV)
    fields = [f.decode("utf-8") for f in out.split(b"\0") if f]
    changes: list[Change] = []
    i = 0
    while i < len(fields):
        status = fields[i]
        if status[0] in "RC":
            changes.append(Change(status[0], fields[i + 2], fields[i + 1]))
            i += 3
        else:
            changes.append(Change(status[0], fields[i + 1]))
            i += 2
    return changes


class _Dir:
    """A folder being written: open (entries in memory) or sealed (a written tree)."""

    __slots__ = ("entries", "sha", "raw", "dirty")

    def __init__(self, sha: bytes | None = None):
        self.entries: dict[str, object] | None = None  # name -> _Dir | (mode, 20-byte id)
        self.sha = sha  # the tree's id as last written or read
        self.raw: bytes | None = None  # the tree's body while sealed and not yet in the repo
        self.dirty = False


class ArchiveWriter:
    """Write many files as one commit (or a few), by path, into one pack.

    ``git fast-import`` looks up every path segment with a linear scan, so a
    month folder holding 80,000 petition folders makes it quadratic (100,000
    petitions in one folder did not finish in 11 minutes). This writer keeps
    the folders itself and hands the objects to :class:`generator.gitpack.PackWriter`:
    linear in the number of files. A folder is sealed (its tree written, its
    entries dropped from memory) as soon as the input moves on to another
    folder, so memory grows with the number of folders, not files.

    Use as a context manager; every ``commit`` keeps the files of the previous
    one (or of the branch's current head) and adds, replaces or deletes paths.
    """

    def __init__(self, repo: str | Path, branch: str = "refs/heads/main"):
        self.repo = Path(repo)
        self.branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        self._pack = None
        self._root: _Dir | None = None
        self._head: str | None = None
        self._reader: subprocess.Popen | None = None
        self._leaf: tuple[str, _Dir] | None = None  # the folder being filled

    def _read_tree(self, sha: bytes) -> dict[str, object]:
        """Return the entries of a tree already in the repository."""
        if self._reader is None:
            self._reader = subprocess.Popen(
                ["git", "-C", str(self.repo), "cat-file", "--batch"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._reader.stdin and self._reader.stdout
        self._reader.stdin.write(sha.hex().encode() + b"\n")
        self._reader.stdin.flush()
        header = self._reader.stdout.readline().split()
        size = int(header[2])
        return _parse_tree(self._reader.stdout.read(size + 1)[:size])

    def _entries(self, d: _Dir) -> dict[str, object]:
        if d.entries is None:
            if d.raw is not None:
                d.entries, d.raw = _parse_tree(d.raw), None
            elif d.sha is not None:
                d.entries = self._read_tree(d.sha)
            else:
                d.entries = {}
        return d.entries

    def _seal(self, d: _Dir) -> bytes:
        """Write ``d`` and its changed sub-folders; return its tree id."""
        from generator.gitpack import TREE_MODE, tree_bytes

        if not d.dirty and d.sha is not None:
            return d.sha
        entries = [(TREE_MODE, name, self._seal(e)) if isinstance(e, _Dir) else (e[0], name, e[1])
                   for name, e in self._entries(d).items()]
        assert self._pack is not None
        body = tree_bytes(entries)  # type: ignore[arg-type]
        d.sha = self._pack.tree_body(body)
        d.dirty = False
        if all(not isinstance(e, _Dir) for e in d.entries.values()):  # type: ignore[union-attr]
            d.raw, d.entries = body, None  # a leaf folder: keep only its bytes
        return d.sha

    def _dir_for(self, parts: list[str]) -> _Dir:
        assert self._root is not None
        d = self._root
        d.dirty = True
        for part in parts:
            entries = self._entries(d)
            child = entries.get(part)
            if not isinstance(child, _Dir):
                is_tree = isinstance(child, tuple) and child[0] == b"40000"
                child = _Dir(sha=child[1] if is_tree else None)  # type: ignore[index]
                entries[part] = child
            child.dirty = True
            d = child
        return d

    def __enter__(self) -> "ArchiveWriter":
        from generator.gitpack import PackWriter

        self._pack = PackWriter(self.repo)
        self._head = rev_parse(self.repo, self.branch)
        tree = git(self.repo, "rev-parse", self._head + "^{tree}").decode().strip() if self._head else None
        self._root = _Dir(sha=bytes.fromhex(tree) if tree else None)
        return self

    def commit(self, files: Iterable[tuple[str, bytes]], message: str, when: int,
               author: str = "Wenzheng <wenzheng@localhost>", parent: str | None = None,
               deletes: Iterable[str] = ()) -> str:
        """Add one commit holding ``files`` (path, content); return its id.

        ``when`` is a Unix time. ``parent`` names the commit to build on
        instead of the branch's head or this writer's previous commit.
        """
        from generator.gitpack import FILE_MODE

        assert self._pack is not None
        if parent is not None:
            self._leaf = None
            self._head = parent
            tree = git(self.repo, "rev-parse", parent + "^{tree}").decode().strip()
            self._root = _Dir(sha=bytes.fromhex(tree))
        for path in deletes:
            *parts, name = path.split("/")
            self._entries(self._dir_for(parts)).pop(name, None)
        for path, content in files:
            folder, _, name = path.rpartition("/")
            if self._leaf is None or self._leaf[0] != folder:
                if self._leaf is not None:
                    self._seal(self._leaf[1])
                self._leaf = (folder, self._dir_for(folder.split("/") if folder else []))
            leaf = self._leaf[1]
            self._entries(leaf)[name] = (FILE_MODE, self._pack.blob(content))
            leaf.dirty = True
        self._leaf = None
        assert self._root is not None
        tree = self._seal(self._root)
        self._head = self._pack.commit(tree, [self._head] if self._head else [], message, when, author)
        return self._head

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._pack is not None
        if self._reader is not None:
            for stream in (self._reader.stdin, self._reader.stdout):
                if stream:
                    stream.close()
            self._reader.wait()
        if exc_type is not None or self._head is None:
            self._pack.abort()
            return
        self._pack.finish()
        git(self.repo, "update-ref", self.branch, self._head)


def _parse_tree(data: bytes) -> dict[str, object]:
    entries: dict[str, object] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        entries[data[space + 1:nul].decode("utf-8")] = (data[pos:space], data[nul + 1:nul + 21])
        pos = nul + 21
    return entries


def init_repo(path: str | Path, branch: str = "main") -> Path:
    """Create an empty repository with ``branch`` as its default branch."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", branch)
    env_name = os.environ.get("GIT_AUTHOR_NAME")
    if not env_name:
        git(path, "config", "user.name", "Wenzheng")
        git(path, "config", "user.email", "wenzheng@localhost")
    return path


def checked_out_in(repo: str | Path, ref: str) -> list[Path]:
    """Return the work trees (of ``repo`` and its linked work trees) that have ``ref`` checked out."""
    try:
        out = git(repo, "worktree", "list", "--porcelain").decode("utf-8", "surrogateescape")
    except GitError:
        return []
    found: list[Path] = []
    path: str | None = None
    for line in out.splitlines() + [""]:
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line.startswith("branch ") and line[len("branch "):] == ref and path is not None:
            found.append(Path(path))
        elif not line:
            path = None
    return found


def advance_worktrees(repo: str | Path, ref: str, old: str, new: str) -> list[Problem]:
    """Bring the index and files of every work tree on ``ref`` from ``old`` to ``new``.

    A two-tree ``git read-tree -m -u``: files the commit adds are written,
    the index records them, and a clerk's uncommitted edits and untracked
    files elsewhere stay as they are. When a work tree cannot follow (an
    untracked file where the commit writes one), the branch is moved back to
    ``old`` and the problems say which file is in the way: nothing is half-done.
    """
    problems: list[Problem] = []
    done: list[Path] = []
    for tree in checked_out_in(repo, ref):
        proc = subprocess.run(["git", "-C", str(tree), "read-tree", "-m", "-u", old, new],
                              capture_output=True)
        if proc.returncode != 0:
            why = proc.stderr.decode("utf-8", "replace").strip()
            problems.append(Problem(
                str(tree), None, "worktree-in-the-way",
                f"the work tree {tree} cannot take the new commit ({ref} is checked out there): {why}",
                "move those files away (or commit them) and run the command again; the branch was left as it was"))
            break
        done.append(tree)
    if problems:
        for tree in done:
            subprocess.run(["git", "-C", str(tree), "read-tree", "-m", "-u", new, old], capture_output=True)
        git(repo, "update-ref", ref, old, new)
    return problems
