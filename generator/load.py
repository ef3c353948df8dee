"""Read the archive from git objects, parsing only what was not seen before.

A build is exactly one commit: we list its tree once (``git ls-tree -r -t``),
read the blobs we need through one ``git cat-file --batch`` and parse them with
libyaml. Parsed folders are cached by their git tree id, so a rebuild after a
small change parses only the folders that changed. Nothing here needs a
checkout of the petitions; ``load_worktree`` reads uncommitted files instead,
for a department checking its draft.
"""

from __future__ import annotations

import hashlib
import pickle
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from generator import gitio
from generator import records as r
from generator.yamlio import YamlError, parse

CONFIG_FILES = ("departments.yaml", "rules.yaml")
CACHE_VERSION = 2


@dataclass(frozen=True)
class RecordFile:
    """One file of a petition folder: its name, blob id and parsed data.

    ``error`` holds ``(message, line)`` when the file is not valid YAML.
    """

    name: str
    blob: str
    data: Any
    error: tuple[str, int | None] | None = None


@dataclass
class Snapshot:
    """What one commit (or the work tree) holds, before anything is parsed."""

    root: Path
    rev: str | None  # the commit id, or None for the work tree
    config: dict[str, str] = field(default_factory=dict)  # path -> blob id
    folders: dict[str, tuple[str, list[tuple[str, str]]]] = field(default_factory=dict)
    # folder path -> (tree id, [(file name, blob id)])
    strays: list[str] = field(default_factory=list)  # files under petitions/ off the layout
    full: bool = True  # False when only some folders were listed
    texts: dict[str, bytes] = field(default_factory=dict)  # work tree only: blob -> content

    def read(self, blob: str) -> bytes:
        """Return a blob's content."""
        if blob in self.texts:
            return self.texts[blob]
        return gitio.read_blobs(self.root, [blob])[blob]


def _layout(path: str) -> tuple[str, str] | None:
    """Return (folder, file name) when ``path`` fits the petition layout."""
    m = r.FOLDER_RE.match(path)
    if not m:
        return None
    return path.rsplit("/", 1)[0], m["name"]


def snapshot_at(repo: str | Path, rev: str = "HEAD",
                folders: Iterable[str] | None = None) -> Snapshot:
    """Return the listing of ``rev``: config blobs and every petition folder.

    With ``folders`` only those folders are listed, which keeps a check of a
    small change small whatever the size of the archive.
    """
    root = Path(repo)
    commit = gitio.rev_parse(root, rev)
    if commit is None:
        raise gitio.GitError(f"{rev!r} is not a commit in {root}")
    snap = Snapshot(root=root, rev=commit, full=folders is None)
    paths = list(CONFIG_FILES)
    paths += list(folders) if folders is not None else ["petitions"]
    for entry in gitio.ls_tree(root, commit, paths, trees=True):
        if entry.path in CONFIG_FILES:
            snap.config[entry.path] = entry.oid
            continue
        if entry.type == "tree":
            if entry.path.count("/") == 3:  # petitions/YYYY/MM/<id>
                files = snap.folders.get(entry.path, ("", []))[1]
                snap.folders[entry.path] = (entry.oid, files)
            continue
        placed = _layout(entry.path)
        if placed is None:
            snap.strays.append(entry.path)
            continue
        folder, name = placed
        snap.folders.setdefault(folder, ("", []))[1].append((name, entry.oid))
    for folder, (_, files) in snap.folders.items():
        files.sort()
    return snap


def _blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def snapshot_worktree(root: str | Path, folders: Iterable[str] | None = None) -> Snapshot:
    """Return the listing of the files on disk, committed or not.

    Blob and tree ids are computed as git would, so the cache works the same.
    """
    root = Path(root)
    snap = Snapshot(root=root, rev=None, full=folders is None)
    for name in CONFIG_FILES:
        p = root / name
        if p.is_file():
            content = p.read_bytes()
            oid = _blob_id(content)
            snap.texts[oid] = content
            snap.config[name] = oid
    bases = [root / fo for fo in folders] if folders is not None else [root / "petitions"]
    for base in bases:
        if not base.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                rel = full.relative_to(root).as_posix()
                placed = _layout(rel)
                if placed is None:
                    snap.strays.append(rel)
                    continue
                content = full.read_bytes()
                oid = _blob_id(content)
                snap.texts[oid] = content
                snap.folders.setdefault(placed[0], ("", []))[1].append((placed[1], oid))
    for folder, (_, files) in list(snap.folders.items()):
        files.sort()
        digest = hashlib.sha1("".join(f"{n}{b}" for n, b in files).encode()).hexdigest()
        snap.folders[folder] = ("wt-" + digest, files)
    return snap


def _parse_one(content: bytes) -> tuple[Any, tuple[str, int | None] | None]:
    try:
        return parse(content), None
    except YamlError as exc:
        return None, (str(exc), exc.line)
    except UnicodeDecodeError as exc:
        return None, (f"the file is not UTF-8 text ({exc.reason})", None)


def _parse_chunk(args: tuple[str, list[str]]) -> list[tuple[Any, Any]]:
    """Read and parse a chunk of blobs in a worker (one cat-file per chunk)."""
    repo, oids = args
    blobs = gitio.read_blobs(repo, oids)
    return [_parse_one(blobs[oid]) for oid in oids]


class PickleStore:
    """A dict kept in one pickle file under ``.git/wenzheng-cache``.

    Pickle, not marshal: with protocol 5 and its memo of repeated keys it
    reads the parsed folders about four times faster than marshal here.
    A damaged or foreign file is ignored and rebuilt, never trusted.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.entries: dict = {}
        self.dirty = False
        if path and path.exists():
            try:
                with path.open("rb") as fh:
                    version, entries = pickle.load(fh)
                if version == CACHE_VERSION and isinstance(entries, dict):
                    self.entries = entries
            except Exception:  # noqa: BLE001 - any damage means: start again
                self.entries = {}

    def save(self, keep: set | None = None) -> None:
        """Write the store; with ``keep``, drop every key not in it first."""
        if not self.path or not self.dirty:
            return
        kept = self.entries if keep is None else {k: v for k, v in self.entries.items() if k in keep}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            pickle.dump((CACHE_VERSION, kept), fh, protocol=5)
        os.replace(tmp, self.path)


def cache_dir(repo: str | Path) -> Path | None:
    """Return the folder for caches inside the repository's git directory."""
    try:
        gitdir = gitio.git(repo, "rev-parse", "--absolute-git-dir").decode().strip()
    except gitio.GitError:
        return None
    return Path(gitdir) / "wenzheng-cache"


def load_folders(snap: Snapshot, use_cache: bool = True, workers: int | None = None,
                 only: Iterable[str] | None = None) -> dict[str, list[RecordFile]]:
    """Return the folders of the snapshot (or ``only`` those) as parsed record files.

    Folders whose tree id is in the cache are not read again; the rest are
    read and parsed, in parallel when there are many.
    """
    # Work-tree files change under our feet and are few: never cached.
    cdir = cache_dir(snap.root) if use_cache and snap.rev is not None else None
    cache = PickleStore(cdir / "folders.pickle" if cdir else None)
    result: dict[str, list[RecordFile]] = {}
    todo: list[str] = []
    wanted = snap.folders if only is None else {f: snap.folders[f] for f in only}
    for folder, (tree, files) in wanted.items():
        hit = cache.entries.get(tree) if tree else None
        if hit is not None:
            result[folder] = [RecordFile(*item) for item in hit]
        else:
            todo.append(folder)
    oids = [oid for folder in todo for _, oid in snap.folders[folder][1]]
    parsed: dict[str, tuple[Any, Any]] = {}
    if oids:
        if snap.rev is None:
            for oid in oids:
                parsed[oid] = _parse_one(snap.texts[oid])
        else:
            workers = workers or min(os.cpu_count() or 1, 4)
            if len(oids) < 2000 or workers == 1:
                blobs = gitio.read_blobs(snap.root, oids)
                for oid in oids:
                    parsed[oid] = _parse_one(blobs[oid])
            else:
                size = max(500, len(oids) // (workers * 8))
                chunks = [oids[i:i + size] for i in range(0, len(oids), size)]
                with ProcessPoolExecutor(workers) as pool:
                    for chunk, out in zip(chunks, pool.map(
                            _parse_chunk, [(str(snap.root), c) for c in chunks])):
                        parsed.update(zip(chunk, out))
    for folder in todo:
        tree, files = snap.folders[folder]
        items = [(name, oid, *parsed[oid]) for name, oid in files]
        result[folder] = [RecordFile(*item) for item in items]
        if tree:
            cache.entries[tree] = items
            cache.dirty = True
    # A partial listing must not evict the folders it did not list.
    cache.save({tree for tree, _ in snap.folders.values()} if only is None and snap.full else None)
    return result


def read_config(snap: Snapshot, name: str) -> bytes | None:
    """Return a config file's content from the snapshot, or None if absent."""
    blob = snap.config.get(name)
    return snap.read(blob) if blob else None


def changed_folders(repo: str | Path, base: str, head: str = "HEAD") -> tuple[set[str], set[str], list[gitio.Change]]:
    """Return (petition folders touched, config files touched, all changes) since ``base``."""
    changes = gitio.diff_tree(repo, base, head)
    folders: set[str] = set()
    configs: set[str] = set()
    for ch in changes:
        for path in (ch.path, ch.old_path):
            if not path:
                continue
            if path in CONFIG_FILES:
                configs.add(path)
            placed = _layout(path)
            if placed:
                folders.add(placed[0])
    return folders, configs, changes


def folder_exists(repo: str | Path, rev: str, petition_id: str) -> list[str]:
    """Return the folders that hold ``petition_id`` at ``rev`` (any month of its year)."""
    return folders_of(repo, rev, [petition_id])[petition_id]


def folders_of(repo: str | Path, rev: str, petition_ids: Iterable[str]) -> dict[str, list[str]]:
    """Return, for each id, the folders that hold it at ``rev``, in one ``ls-tree``.

    One call walks each month tree once, whatever the number of ids; a call
    per id walks them again for each.
    """
    ids = sorted(set(petition_ids))
    found: dict[str, list[str]] = {pid: [] for pid in ids}
    if not ids:
        return found
    specs = [f"petitions/{pid[:4]}/{m:02d}/{pid}" for pid in ids for m in range(1, 13)]
    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-d", "--name-only", rev, "--", *specs],
                         capture_output=True, env=gitio.OBJECTS_ONLY_ENV)
    for line in out.stdout.decode().splitlines():
        pid = line.rsplit("/", 1)[-1]
        if pid in found:
            found[pid].append(line)
    return found
