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


class GitError(RuntimeError):
    """A git command failed; the message carries git's own words."""


def git(repo: str | Path, *args: str, input: bytes | None = None) -> bytes:
    """Run one git command in ``repo`` and return its standard output."""
    proc = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=input,
        capture_output=True,
    )
    if proc.returncode != 0:
        raise GitError(
            f"git {' '.join(args[:3])} failed in {repo}: "
            + proc.stderr.decode("utf-8", "replace").strip()
        )
    return proc.stdout


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
    repo: str | Path, rev: str, paths: Iterable[str] = (), trees: bool = False
) -> Iterator[TreeEntry]:
    """Yield every entry under ``paths`` (the whole tree if none) at ``rev``.

    With ``trees`` the folders themselves are listed too, so a caller can key a
    cache on a folder's tree id.
    """
    args = ["ls-tree", "-r", "-z", "--full-tree"]
    if trees:
        args.append("-t")
    out = git(repo, *args, rev, "--", *paths)
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.decode().split(" ")
        yield TreeEntry(mode, kind, oid, path.decode("utf-8"))


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


def read_file_at(repo: str | Path, rev: str, path: str) -> bytes | None:
    """Return one file's content at ``rev``, or None when it is not there."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "blob", f"{rev}:{path}"],
        capture_output=True,
    )
    if proc.returncode != 0:
        return None
    return proc.stdout


@dataclass(frozen=True)
class Change:
    status: str  # A added, M modified, D deleted, R renamed, T type changed
    path: str
    old_path: str | None = None


def diff_tree(repo: str | Path, base: str, head: str, paths: Iterable[str] = ()) -> list[Change]:
    """Return what changed between two commits, renames detected."""
    out = git(repo, "diff-tree", "-r", "-z", "-M", "--no-commit-id", "--name-status",
              base, head, "--", *paths)
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


class FastImport:
    """Write many files as one commit (or a few) through ``git fast-import``.

    Writing 100,000 petitions as separate commits or through the index takes
    hours; fast-import streams blobs straight into a pack. Use as a context
    manager; every ``commit`` keeps the files of the previous one and adds or
    replaces the given paths.
    """

    def __init__(self, repo: str | Path, branch: str = "refs/heads/main"):
        self.repo = Path(repo)
        self.branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        self._proc: subprocess.Popen | None = None
        self._mark = 0

    def __enter__(self) -> "FastImport":
        self._proc = subprocess.Popen(
            ["git", "-C", str(self.repo), "fast-import", "--quiet", "--done"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self

    def commit(
        self,
        files: Iterable[tuple[str, bytes]],
        message: str,
        when: int,
        author: str = "Wenzheng <wenzheng@localhost>",
        parent: str | None = None,
        deletes: Iterable[str] = (),
    ) -> None:
        """Add one commit on the branch holding ``files`` (path, content).

        ``when`` is a Unix time; ``parent`` names the commit to build on the
        first time a branch is written when it should not start from nothing.
        """
        assert self._proc and self._proc.stdin
        out = self._proc.stdin
        msg = message.encode("utf-8")
        out.write(f"commit {self.branch}\n".encode())
        out.write(f"author {author} {when} +0000\ncommitter {author} {when} +0000\n".encode())
        out.write(f"data {len(msg)}\n".encode() + msg + b"\n")
        if parent:
            out.write(f"from {parent}\n".encode())
        for path in deletes:
            out.write(f"D {path}\n".encode("utf-8"))
        for path, content in files:
            out.write(f"M 100644 inline {path}\n".encode("utf-8"))
            out.write(f"data {len(content)}\n".encode())
            out.write(content)
            out.write(b"\n")
        out.write(b"\n")

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._proc and self._proc.stdin
        if exc_type is None:
            self._proc.stdin.write(b"done\n")
        self._proc.stdin.close()
        err = self._proc.stderr.read() if self._proc.stderr else b""
        if self._proc.stderr:
            self._proc.stderr.close()
        code = self._proc.wait()
        if exc_type is None and code != 0:
            raise GitError("git fast-import failed: " + err.decode("utf-8", "replace"))


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
