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
import marshal
import os
import pickle
import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from generator import archivepaths, gitio
from generator.yamlio import YamlError, parse

CONFIG_FILES = archivepaths.CONFIG_FILES
CACHE_VERSION = 5


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
    folders: dict[str, tuple[str, str]] = field(default_factory=dict)
    # folder path -> (tree id, its files packed: "name\0blob\0name\0blob"; see files())
    # entries under petitions/ that break the path rules (generator.archivepaths): (path, git mode)
    strays: list[tuple[str, str]] = field(default_factory=list)
    full: bool = True  # False when only some folders were listed
    texts: dict[str, bytes] = field(default_factory=dict)  # work tree only: blob -> content

    def files(self, folder: str) -> list[tuple[str, str]]:
        """Return the (file name, blob id) pairs of a folder, sorted by name.

        They are kept packed in one string per folder: a build reads the
        listing of 100,000 folders (650,000 files) from the cache, and needs
        the files of the few folders it reads again (0.2 s to load packed,
        0.4 to 0.8 s as a list of pairs per folder)."""
        return _unpack(self.folders[folder][1])

    def read(self, blob: str) -> bytes:
        """Return a blob's content."""
        if blob in self.texts:
            return self.texts[blob]
        return gitio.read_blobs(self.root, [blob])[blob]


def _pack(files: list[tuple[str, str]]) -> str:
    """Pack (name, blob id) pairs into one string (git paths hold no NUL)."""
    return "\0".join(f"{name}\0{oid}" for name, oid in sorted(files))


def _unpack(packed: str) -> list[tuple[str, str]]:
    parts = packed.split("\0") if packed else []
    return list(zip(parts[::2], parts[1::2]))


def layout(path: str) -> tuple[str, str] | None:
    """Return (folder, file name) when ``path`` fits the petition layout
    (:func:`generator.archivepaths.placed`)."""
    return archivepaths.placed(path)


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a
    reader (or a build killed half-way) sees the old file or the new one,
    never part of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def snapshot_at(repo: str | Path, rev: str = "HEAD",
                folders: Iterable[str] | None = None, reuse: bool = False) -> Snapshot:
    """Return the listing of ``rev``: config blobs and every petition folder.

    With ``folders`` only those folders are listed, which keeps a check of a
    small change small whatever the size of the archive. With ``reuse`` the
    whole listing is kept in the cache folder, and the next one is the kept
    listing with the folders that changed since listed again (``git
    diff-tree``): listing 650,000 files anew takes seconds.
    """
    root = Path(repo)
    commit = gitio.rev_parse(root, rev)
    if commit is None:
        raise gitio.GitError(f"{rev!r} is not a commit in {root}")
    if folders is not None or not reuse:
        return _listed(root, commit, folders)
    cdir = cache_dir(root)
    if cdir is None:
        return _listed(root, commit, None)
    store = cdir / f"snapshot-{CACHE_VERSION}.marshal"
    try:
        saved = marshal.loads(store.read_bytes())
        kept = Snapshot(root=root, rev=commit, config=saved["config"], folders=saved["folders"],
                        strays=[tuple(s) for s in saved["strays"]])
        base = saved["rev"]
    except (OSError, EOFError, ValueError, TypeError, KeyError):  # none yet, or damaged: list it all
        kept, base = None, None
    if kept is not None and base == commit:
        return kept
    snap = _patched(kept, base, commit) if kept is not None and base else None
    if snap is None:
        snap = _listed(root, commit, None)
    cdir.mkdir(parents=True, exist_ok=True)
    replace_file(store, marshal.dumps({"rev": commit, "config": snap.config, "folders": snap.folders,
                                       "strays": snap.strays}))
    for old in cdir.glob("snapshot-*.marshal"):
        if old != store:
            old.unlink(missing_ok=True)  # another version's listing
    return snap


def _patched(kept: Snapshot, base: str, commit: str) -> Snapshot | None:
    """Return the listing of ``commit`` from ``kept`` (the listing of ``base``)
    with what changed in between listed again; None when ``base`` is gone."""
    try:
        changes = gitio.diff_tree(kept.root, base, commit, ["petitions", *CONFIG_FILES])
    except gitio.GitError:  # a rewritten history, collected since
        return None
    folders: set[str] = set()
    loose: set[str] = set()  # changed files outside any petition folder
    for ch in changes:
        for path in (ch.path, ch.old_path):
            if not path or path in CONFIG_FILES:
                continue
            parts = path.split("/")
            if len(parts) >= 5:
                folders.add("/".join(parts[:4]))
            else:
                loose.add(path)
    fresh = _listed(kept.root, commit, sorted(folders | loose))
    for folder in folders:
        kept.folders.pop(folder, None)
    kept.folders.update(fresh.folders)
    kept.strays = sorted([s for s in kept.strays
                          if s[0] not in loose and "/".join(s[0].split("/")[:4]) not in folders]
                         + fresh.strays)
    kept.config = fresh.config
    return kept


def _listed(root: Path, commit: str, folders: Iterable[str] | None) -> Snapshot:
    snap = Snapshot(root=root, rev=commit, full=folders is None)
    paths = list(CONFIG_FILES)
    paths += list(folders) if folders is not None else ["petitions"]
    # The listing of a large archive has millions of lines: parse the bytes
    # directly (no object per entry), and check a folder's name once.
    out = gitio.git(root, "ls-tree", "-r", "-t", "-z", "--full-tree", commit, "--", *paths,
                    env=gitio.OBJECTS_ONLY_ENV)
    listed: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    good: set[str] = set()
    for record in out.split(b"\0"):
        if not record:
            continue
        tab = record.index(b"\t")
        mode, kind, oid = record[:tab].decode().split(" ")
        path = record[tab + 1:].decode("utf-8")
        if kind == "tree":
            if path.count("/") == 3:  # petitions/YYYY/MM/<id>
                if layout(path + "/petition.yaml"):
                    good.add(path)
                listed[path] = (oid, listed.get(path, ("", []))[1])
            continue
        if path in CONFIG_FILES:
            snap.config[path] = oid
            continue
        folder, _, name = path.rpartition("/")
        if folder in good and mode == archivepaths.FILE_MODE and archivepaths.record_name(name):
            listed[folder][1].append((name, oid))
        else:
            snap.strays.append((path, mode))
    # A folder off the layout is left out: its files are strays.
    snap.folders = {folder: (tree, _pack(files)) for folder, (tree, files) in listed.items() if folder in good}
    snap.strays.sort()  # as a patched listing has them (_patched)
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
    found: dict[str, list[tuple[str, str]]] = {}
    for base in bases:
        if not base.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                full = Path(dirpath) / fn
                rel = full.relative_to(root).as_posix()
                placed = layout(rel)
                mode = worktree_mode(full)
                if placed is None or mode != archivepaths.FILE_MODE:
                    snap.strays.append((rel, mode))
                    continue
                content = full.read_bytes()
                oid = _blob_id(content)
                snap.texts[oid] = content
                found.setdefault(placed[0], []).append((placed[1], oid))
    for folder, files in found.items():
        files.sort()
        digest = hashlib.sha1("".join(f"{n}{b}" for n, b in files).encode()).hexdigest()
        snap.folders[folder] = ("wt-" + digest, _pack(files))
    return snap


def worktree_mode(path: Path) -> str:
    """Return the git mode a file on disk would be committed with."""
    if path.is_symlink():
        return "120000"
    return "100755" if os.access(path, os.X_OK) else archivepaths.FILE_MODE


def parse_record(content: bytes) -> tuple[Any, tuple[str, int | None] | None]:
    try:
        return parse(content), None
    except YamlError as exc:
        return None, (str(exc), exc.line)
    except UnicodeDecodeError as exc:
        return None, (f"the file is not UTF-8 text ({exc.reason})", None)


def parse_blob_chunk(args: tuple[str, list[str]]) -> list[tuple[Any, Any]]:
    """Return ``parse_record`` of each blob of a chunk (run in a worker process)."""
    repo, oids = args
    blobs = gitio.read_blobs(repo, oids)
    return [parse_record(blobs[oid]) for oid in oids]


class ShardedStore:
    """A dict kept in pickle files under ``.git/wenzheng-cache``, split into
    shards by folder so that a run touching a few folders reads a few shards.

    Keys are ``(folder, tree id)``; a shard is read on first use and written
    back only if it changed. A damaged or foreign shard is ignored and
    rebuilt, never trusted.
    """

    SHARDS = 64

    def __init__(self, directory: Path | None, name: str, lazy: bool = False):
        """``lazy``: keep each value pickled on its own, unpickled only when
        asked for; for a store of which a run usually needs a few entries
        (the cases a warm export still evaluates) rather than all."""
        self.directory = directory
        self.name = name
        self.lazy = lazy
        self._shards: dict[int, dict] = {}
        self._dirty: set[int] = set()

    @staticmethod
    def shard_of(folder: str) -> int:
        return zlib.crc32(folder.encode("utf-8")) % ShardedStore.SHARDS

    def _path(self, shard: int) -> Path:
        assert self.directory is not None
        return self.directory / f"{self.name}-{shard:02d}.pickle"

    def _shard(self, shard: int) -> dict:
        if shard not in self._shards:
            entries: dict = {}
            if self.directory is not None and self._path(shard).exists():
                try:
                    with self._path(shard).open("rb") as fh:
                        version, loaded = pickle.load(fh)
                    if version == CACHE_VERSION and isinstance(loaded, dict):
                        entries = loaded
                except Exception:  # noqa: BLE001 - any damage means: start again
                    entries = {}
            self._shards[shard] = entries
        return self._shards[shard]

    def get(self, key: tuple[str, str]):
        if self.directory is None:
            return None
        value = self._shard(self.shard_of(key[0])).get(key)
        return pickle.loads(value) if self.lazy and value is not None else value

    def everything(self) -> dict:
        """Return every entry (a lazy store's still pickled) in one dict, to
        read, not to change: a run that looks up nearly all of them (a build
        at 100,000 petitions) finds each by one lookup there rather than by a
        shard number and a lookup in that shard."""
        if self.directory is None:
            return {}
        merged: dict = {}
        for shard in range(self.SHARDS):
            merged.update(self._shard(shard))
        return merged

    def get_raw(self, key: tuple[str, str]) -> bytes | None:
        """Return a lazy store's value still pickled."""
        assert self.lazy
        if self.directory is None:
            return None
        return self._shard(self.shard_of(key[0])).get(key)

    def put(self, key: tuple[str, str], value) -> None:
        if self.directory is None:
            return
        shard = self.shard_of(key[0])
        self._shard(shard)[key] = pickle.dumps(value, protocol=5) if self.lazy else value
        self._dirty.add(shard)

    def put_raw(self, key: tuple[str, str], blob: bytes) -> None:
        """Keep an already pickled value (a lazy store only)."""
        assert self.lazy
        if self.directory is None:
            return
        shard = self.shard_of(key[0])
        self._shard(shard)[key] = blob
        self._dirty.add(shard)

    def drop(self, key: tuple[str, str]) -> None:
        """Forget ``key`` (written out with the next :meth:`save`)."""
        if self.directory is None:
            return
        shard = self.shard_of(key[0])
        if self._shard(shard).pop(key, None) is not None:
            self._dirty.add(shard)

    def save(self, keep: set | None = None) -> None:
        """Write the changed shards; with ``keep`` (every current key), also
        drop stale entries from every shard, so the cache does not grow forever."""
        if self.directory is None:
            return
        if keep is not None:
            for shard in range(self.SHARDS):
                entries = self._shard(shard)
                stale = entries.keys() - keep
                for k in stale:
                    del entries[k]
                if stale:
                    self._dirty.add(shard)
        self.directory.mkdir(parents=True, exist_ok=True)
        if keep is not None:
            self._drop_other_versions()
        for shard in sorted(self._dirty):
            path = self._path(shard)
            tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
            with tmp.open("wb") as fh:
                pickle.dump((CACHE_VERSION, self._shards[shard]), fh, protocol=5)
            os.replace(tmp, path)
        self._dirty.clear()


    def _drop_other_versions(self) -> None:
        """Remove this store's files made under another digest (an older
        config or program): a whole-archive run replaces them, so the cache
        keeps one copy, not one per version."""
        family, _, mine = self.name.rpartition("-")
        if not family or len(mine) != 16:
            return
        pattern = re.compile(re.escape(family) + r"-[0-9a-f]{16}-\d\d\.pickle")
        for path in self.directory.glob(f"{family}-*.pickle"):  # type: ignore[union-attr]
            if pattern.fullmatch(path.name) and not path.name.startswith(self.name + "-"):
                path.unlink(missing_ok=True)


_GIT_DIRS: dict[str, Path] = {}  # repository folder -> its git directory, once found


def cache_dir(repo: str | Path) -> Path | None:
    """Return the folder for caches inside the repository's git directory.
    A build asks for it several times (its lock, the check, the rules'
    cross-check, the kept cases); git is asked once per repository."""
    key = os.path.abspath(repo)
    gitdir = _GIT_DIRS.get(key)
    if gitdir is None:
        try:
            gitdir = Path(gitio.git(repo, "rev-parse", "--absolute-git-dir").decode().strip())
        except gitio.GitError:
            return None  # not a repository (yet): asked again next time
        _GIT_DIRS[key] = gitdir
    return gitdir / "wenzheng-cache"


def load_folders(snap: Snapshot, only: Iterable[str] | None = None) -> dict[str, list[RecordFile]]:
    """Return the folders of the snapshot (or ``only`` those) as parsed record files."""
    wanted = list(snap.folders) if only is None else list(only)
    listed = {folder: snap.files(folder) for folder in wanted}
    oids = [oid for files in listed.values() for _, oid in files]
    if snap.rev is None:
        blobs = {oid: snap.texts[oid] for oid in oids}
    else:
        blobs = gitio.read_blobs(snap.root, oids)
    return {folder: [RecordFile(name, oid, *parse_record(blobs[oid]))
                     for name, oid in files] for folder, files in listed.items()}


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
            placed = layout(path)
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
