"""Write a site in place, rewriting only pages whose inputs changed, so that a
failed build leaves the previous site untouched.

Two phases. While the build runs, changed files go into a pending folder next
to ``out`` (``.<out>.pending``) and ``out`` is not touched: a build that fails
or is killed in this phase leaves the last good site exactly as it was (the
pending folder is thrown away by the next build). When every page, the search
index and the downloads are ready, a journal (``.<out>.journal``: the files to
move in and the files to delete) is written atomically, then each pending file
is renamed over its old path (``os.replace``, atomic per file: a reader never
sees a half-written file), removed pages are deleted, and the journal goes.
A build that finds a journal rolls it forward first, so a crash during the
moves is completed by the next build, never left half-applied.

The cost of this phase is proportional to the files that changed, not to the
site: the previous scheme (a hard-linked copy of the whole site, swapped in by
renaming the folder) cost 25 s per build at 10,000 petitions, whatever changed.
The trade-off: during the moves (milliseconds for a one-reply change) a reader
may see some pages of the new build and some of the old one; each file is
always complete.

The manifest maps every path to the digest of its inputs; a path whose digest
is unchanged is not rendered at all, which is what makes a one-reply rebuild fast.
It is build state, not part of the site: it lives beside ``out``
(``.<out>.manifest.json``), so that what is published is only what the
commit and ``now`` make, the same bytes on every build. It is replaced as
part of the journalled commit (written as ``.<out>.manifest.json.next``
before the journal, moved over the manifest after the files).
"""

from __future__ import annotations

import filecmp
import gzip
import hashlib
import json
import os
import pickle
import shutil
import signal
import threading
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import orjson

# Plain JSON: a manifest of every file is read and written on every build, and
# gzip (even at level 1) took longer than everything else the manifest costs
# (at 100,000 petitions: 0.6 s a build for 28 MB, against 0.05 s to write it plain).
# Earlier versions kept it in the site, plain or gzipped: read once, then deleted.
SITE_MANIFESTS = (".wenzheng-manifest.json", ".wenzheng-manifest.json.gz")


def manifest_path(out: Path) -> Path:
    """Return where the manifest of the site ``out`` is kept: beside it."""
    return out.with_name(f".{out.name}.manifest.json")


def _next_manifest(out: Path) -> Path:
    manifest = manifest_path(out)
    return manifest.with_name(manifest.name + ".next")


def digest(*parts: object) -> str:
    """Return a short, stable digest of the reprs of ``parts``."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def fast_digest(value: Any) -> str:
    """Return a short digest of plain data (dicts with string keys, lists,
    tuples, strings, numbers, datetimes; anything else by its ``repr``), several
    times faster than :func:`digest` on large values. Tuples and lists digest
    alike."""
    try:
        data = orjson.dumps(value, default=repr)
    except TypeError:  # a dict with keys other than strings
        return digest(value)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _empty_trash(trash: Path) -> None:
    """Wait for the freeing of ``trash`` a build of this process started; remove what is left."""
    worker = _freeing.pop(trash, None)
    if worker is not None:
        worker.join()
    if trash.exists():
        shutil.rmtree(trash, ignore_errors=True)


def recover(out: Path) -> bool:
    """Return True after completing a journalled commit that was interrupted;
    throw away a pending folder without a journal (a build that never finished)."""
    pending = out.with_name(f".{out.name}.pending")
    journal = out.with_name(f".{out.name}.journal")
    rolled = False
    if journal.is_file():
        plan = json.loads(journal.read_text(encoding="utf-8"))
        _apply(pending, out, plan["write"], plan["delete"])
        journal.unlink()
        rolled = True
    if pending.exists():
        shutil.rmtree(pending)
    _next_manifest(out).unlink(missing_ok=True)  # moved in by _apply if the build was committed
    return rolled


# Replacing a file frees the old one's blocks there and then (about 1 s for
# the largest download of 100,000 petitions, measured). A file this large is
# first linked into the trash, freed after the site is in place.
LARGE = 8 << 20
_freeing: dict[Path, threading.Thread] = {}  # trash folder -> the thread emptying it


def _apply(pending: Path, out: Path, write: list[str], delete: list[str], trash: Path | None = None) -> None:
    """Move the pending files over their paths in ``out`` and delete the removed
    ones; safe to repeat (a file already moved is no longer pending). A folder
    that ``out`` does not have yet (a new petition's, or every folder of a first
    build) is moved in one rename. With ``trash``, a large file replaced keeps a
    link there (see :data:`LARGE`)."""
    present: set[str] = set()
    for path in write:
        source = pending / path
        if not source.exists():
            continue  # moved by the interrupted run, or with its folder
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in present:
                continue
            present.add(folder)
            if not (out / folder).is_dir():
                os.replace(pending / folder, out / folder)
                break
        else:
            _replace(source, out / path, trash)
    for path in delete:
        target = out / path
        if target.is_file():
            target.unlink()
    if _next_manifest(out).exists():
        _replace(_next_manifest(out), manifest_path(out), trash)  # 28 MB at 100,000 petitions


def _replace(source: Path, target: Path, trash: Path | None) -> None:
    """Rename ``source`` over ``target``; with ``trash``, a large ``target``
    keeps a link there, so that its blocks are freed later (:data:`LARGE`)."""
    if trash is not None:
        try:
            if target.stat().st_size >= LARGE:
                os.link(target, trash / f"{len(os.listdir(trash))}-{target.name}")
        except FileNotFoundError:
            pass
    os.replace(source, target)


def forked(work: Callable[[], Any], running: list[int] | None = None) -> Callable[[], Any]:
    """Run ``work`` in a forked process; return a function that waits for it and
    returns its result (pickled back), or raises when it failed. ``running``, when
    given, holds the child's process id until it is waited for."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, report, exit without running the parent's cleanup
        os.close(read)
        code = 0
        try:
            result: tuple = ("ok", work())
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises
            result, code = ("error", traceback.format_exc()), 1
        try:
            with os.fdopen(write, "wb") as f:
                pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            os._exit(code)
    os.close(write)
    if running is not None:
        running.append(pid)

    def wait() -> Any:
        with os.fdopen(read, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
        if running is not None:
            running.remove(pid)
        result = pickle.loads(data) if data else ("error", "the process died without a report")
        if result[0] != "ok":
            raise RuntimeError(f"a build process failed:\n{result[1]}")
        return result[1]

    return wait


def _same_bytes(a: Path, b: Path) -> bool:
    """Return True when the files ``a`` and ``b`` both exist with equal content
    (files of different sizes are not read)."""
    try:
        return filecmp.cmp(a, b, shallow=False)
    except FileNotFoundError:
        return False


def write_all(target: BinaryIO, data: bytes) -> int:
    """Write all of ``data`` to ``target`` (an unbuffered write may take only
    part); return its length."""
    view = memoryview(data)
    while view:
        view = view[target.write(view):]
    return len(data)


def room_to_fork(children: int, margin: int = 2 << 30) -> bool:
    """Return True when ``children`` forked copies of this process fit in the
    memory the system has available (with ``margin`` bytes to spare).

    A forked process shares its parent's memory until either writes to it, and
    in Python reading an object writes its reference count: a child that reads
    every case comes to copy nearly all of its parent. Where /proc is missing
    the answer is yes."""
    try:
        with open("/proc/self/statm") as fh:
            rss = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        with open("/proc/meminfo") as fh:
            avail = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return True
    return children * rss + margin < avail


def copy_range(source: BinaryIO, target: BinaryIO, offset: int, length: int) -> int:
    """Append ``length`` bytes of ``source`` from ``offset`` to ``target`` (in
    the kernel where it can); return ``length``."""
    done = 0
    if hasattr(os, "copy_file_range"):
        try:
            while done < length:
                n = os.copy_file_range(source.fileno(), target.fileno(), length - done, offset + done)
                if n == 0:
                    break
                done += n
        except OSError:
            pass  # a file system without it: copy the rest by hand
    while done < length:
        chunk = os.pread(source.fileno(), min(length - done, 1 << 20), offset + done)
        if not chunk:
            raise RuntimeError(f"{source.name} is shorter than the last build wrote; delete the site to rebuild it")
        done += write_all(target, chunk)
    return length


class SiteWriter:
    """Collects the changed files of one build beside ``out`` and commits them."""

    def __init__(self, out: Path):
        self.out = out
        self._out = str(out)
        self.pending = out.with_name(f".{out.name}.pending")
        self.journal = out.with_name(f".{out.name}.journal")
        self.trash = out.with_name(f".{out.name}.trash")
        self.state = manifest_path(out)
        self.old_manifest: dict[str, str] = {}
        self.manifest: dict[str, str] = {}
        self.changed: list[str] = []
        self.written = 0
        self.skipped = 0
        self._made: set[Path] = set()
        self._children: list[int] = []

    # -- set up ---------------------------------------------------------------

    def start(self) -> None:
        """Finish or discard what an earlier build left, read the last manifest."""
        _empty_trash(self.trash)
        recover(self.out)
        self.pending.mkdir(parents=True)
        plain, gzipped = (self.out / name for name in SITE_MANIFESTS)
        if self.state.is_file():
            self.old_manifest = orjson.loads(self.state.read_bytes())
        elif plain.is_file():
            self.old_manifest = orjson.loads(plain.read_bytes())
        elif gzipped.is_file():
            self.old_manifest = orjson.loads(gzip.decompress(gzipped.read_bytes()))

    # -- writing ----------------------------------------------------------------

    def unchanged(self, path: str, key: str) -> bool:
        """Return True when ``path`` was last built from inputs with digest ``key``
        and is still there; records ``key`` either way."""
        self.manifest[path] = key
        if self.has(path, key):
            self.skipped += 1
            return True
        return False

    def page(self, path: str, key: str, render: Callable[[], str | bytes]) -> bool:
        """Write ``path`` from ``render()`` unless its input digest ``key`` is unchanged.

        Returns True when the file was (re)written.
        """
        if self.unchanged(path, key):
            return False
        content = render()
        self.put(path, content.encode("utf-8") if isinstance(content, str) else content)
        return True

    def file(self, path: str, content: str | bytes) -> bool:
        """Write ``path`` with ``content``, keyed by the content itself."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        return self.page(path, hashlib.blake2b(data, digest_size=16).hexdigest(), lambda: data)

    def put(self, path: str, data: bytes) -> None:
        """Write ``path`` (already keyed with :meth:`unchanged`) into the pending folder."""
        self.write_pending(path, data)
        self.changed.append(path)
        self.written += 1

    # -- files written elsewhere (the check's worker processes) --------------------
    #
    # A petition's own files are rendered where the case is read, in the check's
    # worker processes: they ask :meth:`has` and write with :meth:`write_pending`,
    # and the build records the outcome here with :meth:`took`.

    def has(self, path: str, key: str) -> bool:
        """Return True when the last build wrote ``path`` from inputs with digest
        ``key`` and it is still there (no bookkeeping: safe in any process)."""
        return self.old_manifest.get(path) == key and os.path.exists(f"{self._out}/{path}")

    def write_pending(self, path: str, data: bytes) -> None:
        """Write ``path`` into the pending folder, without bookkeeping."""
        self.pending_path(path).write_bytes(data)

    def pending_path(self, path: str) -> Path:
        """Return where ``path`` goes in the pending folder, its folder made."""
        target = self.pending / path
        if target.parent not in self._made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(target.parent)
        return target

    def took(self, keyed: Sequence[tuple[str, str]], written: Sequence[str]) -> None:
        """Record files made elsewhere: every (path, key) of them, and which were written."""
        self.manifest.update(keyed)
        self.changed.extend(written)
        self.written += len(written)
        self.skipped += len(keyed) - len(written)

    def took_pending(self, paths: Sequence[str], key: str) -> None:
        """Record files another program wrote into the pending folder (Pagefind),
        all under ``key``. One whose bytes equal the site's file at its path is
        not moved in: a month indexed again keeps nearly all of its files
        (Pagefind's fragment of each unchanged petition is the same)."""
        self.took([(path, key) for path in paths],
                  [path for path in paths if not _same_bytes(self.pending / path, self.out / path)])

    def names(self, folder: str) -> set[str]:
        """Return the names in ``folder`` of the current site (one listing, where
        asking for each file would cost a system call per page)."""
        try:
            return set(os.listdir(self.out / folder))
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def stream(self, path: str, key: str, chunks: Callable[[], Iterable[bytes]]) -> int:
        """Write ``path`` from ``chunks()`` (a large file, never held whole in
        memory) unless its input digest ``key`` is unchanged; return its size."""
        if self.unchanged(path, key):
            return (self.out / path).stat().st_size
        size = 0
        with open(self.pending_path(path), "wb", buffering=0) as f:  # chunks are large
            for chunk in chunks():
                size += write_all(f, chunk)
        self.changed.append(path)
        self.written += 1
        return size

    def fork(self, work: Callable[[], Any], inline: bool = False) -> Callable[[], Any]:
        """Run ``work`` (which writes through this writer) in a forked process, so
        rendering uses both cores; return a function that waits for it, takes
        over what it wrote and returns ``work``'s result. ``inline``: run it
        here and now instead (when forks would not fit in memory,
        :func:`room_to_fork`); the site written is the same."""
        if inline:
            value = work()
            return lambda: value

        def child() -> tuple:
            self.manifest, self.changed, self.written, self.skipped = {}, [], 0, 0
            return work(), self.manifest, self.changed, self.written, self.skipped

        wait = forked(child, self._children)

        def join() -> Any:
            value, manifest, changed, written, skipped = wait()
            self.manifest.update(manifest)
            self.changed.extend(changed)
            self.written += written
            self.skipped += skipped
            return value

        return join

    def claim(self, path: str, key: str) -> None:
        """Record a path kept from the last build (an unchanged search shard) under ``key``."""
        self.manifest[path] = key

    # -- finish -------------------------------------------------------------------

    def finish(self) -> None:
        """Commit: journal the changes, move them into ``out``, delete pages no
        longer produced, replace the manifest (beside ``out``)."""
        _next_manifest(self.out).write_bytes(orjson.dumps(self.manifest, option=orjson.OPT_SORT_KEYS))
        write = sorted(set(self.changed))
        manifest = self.manifest
        delete = sorted([path for path in self.old_manifest if path not in manifest])
        delete += [name for name in SITE_MANIFESTS if (self.out / name).is_file()]
        tmp = self.journal.with_name(self.journal.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"write": write, "delete": delete}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.journal)  # from here on the build is committed
        self.out.mkdir(parents=True, exist_ok=True)
        self.trash.mkdir(exist_ok=True)
        _apply(self.pending, self.out, write, delete, self.trash)
        self.journal.unlink()
        shutil.rmtree(self.pending)
        # The site is in place: the replaced large files are freed meanwhile
        # (the process waits for it before it exits; the next build, at its start).
        worker = threading.Thread(target=shutil.rmtree, args=(self.trash, True), name="wenzheng-free")
        _freeing[self.trash] = worker
        worker.start()

    def abandon(self) -> None:
        """Throw the pending files away; the last good site stays as it was.
        A committed build (its journal written) is kept for the next build to finish."""
        for pid in list(self._children):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        self._children.clear()
        if not self.journal.exists():
            shutil.rmtree(self.pending, ignore_errors=True)
            _next_manifest(self.out).unlink(missing_ok=True)
