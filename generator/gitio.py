"""Git plumbing: list a tree, read many blobs, write many files in one commit.

One ``git ls-tree`` or one ``git cat-file --batch`` over the whole tree is cheap;
one git call per file is not (GitPython's per-file history costs 25 ms a file).
So everything here streams through a single long-lived git process.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import tempfile
import zlib
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


_TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3}


def object_id(kind: str, content: bytes) -> str:
    """Return the git object id of ``content`` as an object of ``kind``."""
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(content)) + content).hexdigest()


def _tree_sort_key(item: tuple[str, tuple[str, bytes]]) -> bytes:
    name, (mode, _) = item
    # git orders a folder as if its name ended in "/"
    return name.encode("utf-8") + (b"/" if mode == "40000" else b"")


class _Dir:
    """A folder being written: open (entries in memory) or sealed (a written tree)."""

    __slots__ = ("entries", "sha", "raw", "dirty")

    def __init__(self, sha: bytes | None = None, raw: bytes | None = None):
        self.entries: dict[str, object] | None = None  # name -> _Dir | (mode, sha)
        self.sha = sha  # raw 20-byte id of the tree as last written or read
        self.raw = raw  # the tree's bytes while sealed and not yet in the repo
        self.dirty = False


class ArchiveWriter:
    """Write many files as one commit (or a few) straight into a pack.

    ``git fast-import`` looks up every path segment with a linear scan, so a
    month folder holding 80,000 petition folders makes it quadratic (100,000
    petitions in one folder did not finish in 11 minutes). This writer builds
    the blobs and trees itself, streams them into one pack file, and lets
    ``git index-pack`` index it: linear in the number of files. Folders are
    sealed (written and dropped from memory) as soon as the input moves on to
    another folder, so memory grows with the number of folders, not files.

    Use as a context manager; every ``commit`` keeps the files of the previous
    one (or of the branch's current head) and adds, replaces or deletes paths.
    """

    def __init__(self, repo: str | Path, branch: str = "refs/heads/main"):
        self.repo = Path(repo)
        self.branch = branch if branch.startswith("refs/") else f"refs/heads/{branch}"
        self._pack = None
        self._pack_path: Path | None = None
        self._count = 0
        self._root: _Dir | None = None
        self._head: str | None = None
        self._reader: subprocess.Popen | None = None
        self._open_leaf: tuple[_Dir, str, _Dir] | None = None  # (parent, name, dir)

    # -- objects -------------------------------------------------------------
    def _write_object(self, kind: str, content: bytes) -> bytes:
        assert self._pack is not None
        header = b"%s %d\0" % (kind.encode(), len(content))
        sha = hashlib.sha1(header + content).digest()
        size = len(content)
        byte = (_TYPE_CODES[kind] << 4) | (size & 15)
        size >>= 4
        out = bytearray()
        while size:
            out.append(byte | 0x80)
            byte = size & 0x7F
            size >>= 7
        out.append(byte)
        self._pack.write(bytes(out))
        self._pack.write(zlib.compress(content, 1))
        self._count += 1
        return sha

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
        data = self._reader.stdout.read(size + 1)[:size]
        return _parse_tree(data)

    def _entries(self, d: _Dir) -> dict[str, object]:
        if d.entries is None:
            if d.raw is not None:
                d.entries = _parse_tree(d.raw)
                d.raw = None
            elif d.sha is not None:
                d.entries = self._read_tree(d.sha)
            else:
                d.entries = {}
        return d.entries

    def _seal(self, d: _Dir) -> bytes:
        """Write ``d`` and its dirty children; return its tree id."""
        if not d.dirty and d.sha is not None:
            return d.sha
        items: list[tuple[str, tuple[str, bytes]]] = []
        for name, entry in self._entries(d).items():
            if isinstance(entry, _Dir):
                items.append((name, ("40000", self._seal(entry))))
            else:
                items.append((name, entry))  # type: ignore[arg-type]
        items.sort(key=_tree_sort_key)
        raw = b"".join(mode.encode() + b" " + name.encode("utf-8") + b"\0" + sha
                       for name, (mode, sha) in items)
        d.sha = self._write_object("tree", raw)
        d.dirty = False
        return d.sha

    def _seal_leaf(self) -> None:
        """Seal the folder last written to, keeping only its bytes."""
        if self._open_leaf is None:
            return
        _, _, d = self._open_leaf
        entries = self._entries(d)
        if all(not isinstance(e, _Dir) for e in entries.values()):
            self._seal(d)
            items = sorted(entries.items(), key=_tree_sort_key)  # type: ignore[arg-type]
            d.raw = b"".join(mode.encode() + b" " + name.encode("utf-8") + b"\0" + sha
                             for name, (mode, sha) in items)  # type: ignore[misc]
            d.entries = None
        self._open_leaf = None

    def _dir_for(self, parts: list[str]) -> _Dir:
        assert self._root is not None
        d = self._root
        d.dirty = True
        for part in parts:
            entries = self._entries(d)
            child = entries.get(part)
            if not isinstance(child, _Dir):
                child = _Dir(sha=child[1] if isinstance(child, tuple) and child[0] == "40000" else None)
                entries[part] = child
            child.dirty = True
            d = child
        return d

    # -- public --------------------------------------------------------------
    def __enter__(self) -> "ArchiveWriter":
        pack_dir = Path(git(self.repo, "rev-parse", "--absolute-git-dir").decode().strip()) / "objects" / "pack"
        pack_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="tmp_wz_", suffix=".pack", dir=pack_dir)
        self._pack_path = Path(name)
        self._pack = os.fdopen(fd, "wb", buffering=1 << 20)
        self._pack.write(b"PACK" + struct.pack(">II", 2, 0))
        self._head = rev_parse(self.repo, self.branch)
        base_tree = None
        if self._head:
            base_tree = bytes.fromhex(git(self.repo, "rev-parse", self._head + "^{tree}").decode().strip())
        self._root = _Dir(sha=base_tree)
        return self

    def commit(self, files: Iterable[tuple[str, bytes]], message: str, when: int,
               author: str = "Wenzheng <wenzheng@localhost>", parent: str | None = None,
               deletes: Iterable[str] = ()) -> str:
        """Add one commit holding ``files`` (path, content); return its id.

        ``when`` is a Unix time. ``parent`` overrides the commit to build on
        (the branch's head, or this writer's previous commit).
        """
        assert self._root is not None
        if parent is not None:
            self._seal_leaf()
            self._head = parent
            tree = git(self.repo, "rev-parse", parent + "^{tree}").decode().strip()
            self._root = _Dir(sha=bytes.fromhex(tree))
        for path in deletes:
            self._seal_leaf()
            *parts, name = path.split("/")
            self._entries(self._dir_for(parts)).pop(name, None)
        for path, content in files:
            *parts, name = path.split("/")
            leaf = self._open_leaf
            if leaf is None or leaf[1] != "/".join(parts):
                self._seal_leaf()
                d = self._dir_for(parts)
                self._open_leaf = (d, "/".join(parts), d)
            d = self._open_leaf[2]
            self._entries(d)[name] = ("100644", self._write_object("blob", content))
            d.dirty = True
        self._seal_leaf()
        tree = self._seal(self._root).hex()
        lines = [f"tree {tree}"]
        if self._head:
            lines.append(f"parent {self._head}")
        lines.append(f"author {author} {when} +0000")
        lines.append(f"committer {author} {when} +0000")
        body = ("\n".join(lines) + "\n\n" + message.rstrip("\n") + "\n").encode("utf-8")
        self._head = self._write_object("commit", body).hex()
        return self._head

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._pack is not None and self._pack_path is not None
        if self._reader is not None:
            self._reader.stdin.close()  # type: ignore[union-attr]
            self._reader.wait()
        self._pack.close()
        try:
            if exc_type is not None or self._count == 0:
                return
            _finish_pack(self._pack_path, self._count)
            git(self.repo, "index-pack", str(self._pack_path))
            final = self._pack_path.with_name(f"pack-{_pack_name(self._pack_path)}.pack")
            os.replace(self._pack_path, final)
            os.replace(self._pack_path.with_suffix(".idx"), final.with_suffix(".idx"))
            git(self.repo, "update-ref", self.branch, self._head or "")
        finally:
            for leftover in (self._pack_path, self._pack_path.with_suffix(".idx")):
                if leftover.exists():
                    leftover.unlink()


# Older name kept while branches written against it are merged.
FastImport = ArchiveWriter


def _parse_tree(data: bytes) -> dict[str, object]:
    entries: dict[str, object] = {}
    pos = 0
    while pos < len(data):
        space = data.index(b" ", pos)
        nul = data.index(b"\0", space)
        mode = data[pos:space].decode()
        name = data[space + 1:nul].decode("utf-8")
        entries[name] = ("40000" if mode == "40000" else mode, data[nul + 1:nul + 21])
        pos = nul + 21
    return entries


def _finish_pack(path: Path, count: int) -> None:
    """Write the object count into the pack header and append the checksum."""
    with path.open("r+b") as fh:
        fh.seek(8)
        fh.write(struct.pack(">I", count))
        fh.seek(0)
        digest = hashlib.sha1()
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
        fh.seek(0, os.SEEK_END)
        fh.write(digest.digest())


def _pack_name(path: Path) -> str:
    with path.open("rb") as fh:
        fh.seek(-20, os.SEEK_END)
        return fh.read(20).hex()


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
