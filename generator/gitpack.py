"""Write git objects straight into one pack file: blobs, trees and commits.

``git fast-import`` keeps each tree as an array it searches entry by entry, so
filling a folder of 17,000 petitions (one month of a big archive) costs time
that grows with the square of the folder's size: 100,000 petitions took close
to three minutes, a million would take hours. Building the trees here, in the
order the archive is generated, and handing git one finished pack to index
keeps the cost linear and the memory bounded by one folder level.
"""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Iterable

from generator.gitio import GitError, git

_BLOB, _TREE, _COMMIT = 3, 2, 1
_TYPE_NAMES = {_BLOB: b"blob", _TREE: b"tree", _COMMIT: b"commit"}
FILE_MODE = b"100644"
TREE_MODE = b"40000"


def object_id(kind: bytes, data: bytes) -> bytes:
    """Return the 20-byte SHA-1 git gives an object of ``kind`` holding ``data``."""
    h = hashlib.sha1(b"%s %d\0" % (kind, len(data)))
    h.update(data)
    return h.digest()


def tree_bytes(entries: Iterable[tuple[bytes, str, bytes]]) -> bytes:
    """Return the body of a tree object from (mode, name, 20-byte id) entries,
    in git's order (a folder sorts as if its name ended with ``/``)."""
    def key(entry: tuple[bytes, str, bytes]) -> bytes:
        name = entry[1].encode("utf-8")
        return name + b"/" if entry[0] == TREE_MODE else name

    return b"".join(mode + b" " + name.encode("utf-8") + b"\0" + oid
                    for mode, name, oid in sorted(entries, key=key))


class PackWriter:
    """Append objects to a new pack in ``repo`` and install it on ``finish``.

    Objects are zlib-compressed at level 1 (the archive's files are small and
    unlike each other, so harder compression buys little). Nothing becomes
    visible to git until :meth:`finish` indexes the pack; a failed run leaves
    only a temporary file, which :meth:`abort` removes.
    """

    def __init__(self, repo: str | Path, blobs_in_parallel: bool = True):
        self.repo = Path(repo)
        # Blobs are most of the work (compressing every file); a fast-import
        # process that only stores blobs does it on the other core, and never
        # touches a tree, so its slow tree search does not apply.
        self._blobs: subprocess.Popen | None = None
        if blobs_in_parallel:
            self._blobs = subprocess.Popen(
                ["git", "-C", str(self.repo), "fast-import", "--quiet", "--done"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                bufsize=1 << 20,
            )
        git_dir = Path(git(self.repo, "rev-parse", "--absolute-git-dir").decode().strip())
        self.pack_dir = git_dir / "objects" / "pack"
        self.pack_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="tmp_synth_", suffix=".pack", dir=self.pack_dir)
        self.path = Path(name)
        self._out = os.fdopen(fd, "wb", buffering=1 << 20)
        self._out.write(b"PACK" + struct.pack(">II", 2, 0))  # the count is patched in finish
        self.count = 0

    def _write(self, kind: int, data: bytes) -> None:
        n = len(data)
        header = bytearray()
        byte = (kind << 4) | (n & 0x0F)
        n >>= 4
        while n:
            header.append(byte | 0x80)
            byte = n & 0x7F
            n >>= 7
        header.append(byte)
        self._out.write(bytes(header))
        self._out.write(zlib.compress(data, 1))
        self.count += 1

    def blob(self, data: bytes) -> bytes:
        """Write a file's content; return its 20-byte object id."""
        if self._blobs:
            assert self._blobs.stdin
            self._blobs.stdin.write(b"blob\ndata %d\n%s\n" % (len(data), data))
        else:
            self._write(_BLOB, data)
        return object_id(b"blob", data)

    def tree(self, entries: Iterable[tuple[bytes, str, bytes]]) -> bytes:
        """Write a tree of (mode, name, 20-byte id) entries; return its id."""
        return self.tree_body(tree_bytes(entries))

    def tree_body(self, data: bytes) -> bytes:
        """Write a tree whose body is already built; return its id."""
        self._write(_TREE, data)
        return object_id(b"tree", data)

    def commit(self, tree: bytes, parents: Iterable[str], message: str, when: int,
               author: str = "Wenzheng <wenzheng@localhost>") -> str:
        """Write a commit (``when`` a Unix time, UTC); return its hex id."""
        lines = [f"tree {tree.hex()}"] + [f"parent {p}" for p in parents]
        lines += [f"author {author} {when} +0000", f"committer {author} {when} +0000", "", message]
        data = "\n".join(lines).encode("utf-8")
        self._write(_COMMIT, data)
        return object_id(b"commit", data).hex()

    def finish(self) -> Path:
        """Seal the pack, index it with ``git index-pack`` and return its path."""
        if self._blobs:
            assert self._blobs.stdin and self._blobs.stderr
            self._blobs.stdin.write(b"done\n")
            self._blobs.stdin.close()
            err = self._blobs.stderr.read()
            self._blobs.stderr.close()
            if self._blobs.wait() != 0:
                self.abort()
                raise GitError("git fast-import (blobs) failed: " + err.decode("utf-8", "replace"))
        self._out.close()
        with open(self.path, "r+b") as f:
            f.seek(8)
            f.write(struct.pack(">I", self.count))
            f.seek(0)
            h = hashlib.sha1()
            while chunk := f.read(1 << 22):
                h.update(chunk)
            f.seek(0, os.SEEK_END)
            f.write(h.digest())
        final = self.pack_dir / f"pack-{h.hexdigest()}.pack"
        os.replace(self.path, final)
        proc = subprocess.run(["git", "-C", str(self.repo), "index-pack", str(final)],
                              capture_output=True)
        if proc.returncode != 0:
            final.unlink(missing_ok=True)
            raise GitError("git index-pack failed: " + proc.stderr.decode("utf-8", "replace"))
        return final

    def abort(self) -> None:
        """Drop the unfinished pack (blobs already stored stay unreferenced)."""
        if self._blobs:
            if self._blobs.poll() is None:
                # Let fast-import end cleanly: a killed one leaves its temporary
                # pack behind. Its blobs stay unreferenced until git gc.
                try:
                    self._blobs.stdin.write(b"done\n")  # type: ignore[union-attr]
                    self._blobs.stdin.close()  # type: ignore[union-attr]
                except (BrokenPipeError, ValueError):
                    pass
                try:
                    self._blobs.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    self._blobs.kill()
                    self._blobs.wait()
            for pipe in (self._blobs.stdin, self._blobs.stderr):
                if pipe and not pipe.closed:
                    try:
                        pipe.close()
                    except BrokenPipeError:
                        pass
        if not self._out.closed:
            self._out.close()
        self.path.unlink(missing_ok=True)
