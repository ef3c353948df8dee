"""Check an archive: gather everything, validate it, report every problem.

Reads top to bottom like the pipeline: list the commit, read the config, parse
the folders, check each folder, then check what spans folders. Nothing stops
at the first problem.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from generator import archivepaths, gitio, load
from generator.bulk import bulk
from generator import records as r
from generator import validate as v
from generator.problems import Problem
from generator.rules import Rules, load_rules
from generator.yamlio import YamlError, parse


def _checker_digest() -> str:
    """Return a digest of the code that decides verdicts, so that a new
    version of the checker never trusts an old verdict."""
    h = hashlib.sha1(str(load.CACHE_VERSION).encode())
    for module in ("records", "fields", "validate", "check", "load", "yamlio",
                   "escalate", "evaluate", "rules", "calendar", "archivepaths"):
        h.update((Path(__file__).parent / f"{module}.py").read_bytes())
    return h.hexdigest()


_CHECKER_DIGEST = _checker_digest()


@dataclass
class Archive:
    """A checked archive: its config, its sound cases, and every problem."""

    root: Path
    rev: str | None
    departments: r.Departments | None
    rules: Rules | None
    cases: dict[str, r.Case] = field(default_factory=dict)  # or what ``transform`` made of them
    problems: list[Problem] = field(default_factory=list)
    folders_checked: int = 0
    # Every sound petition: id -> (folder, tree id). A case whose loading was
    # skipped (``skip_case``) is here but not in ``cases``.
    sound: dict[str, tuple[str, str]] = field(default_factory=dict)
    config_digest: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _config_problem(path: str, message: str, hint: str, line: int | None = None) -> Problem:
    return Problem(path, line, "config", message, hint)


def removed_petitions(repo: str | Path, rev: str = "HEAD", worktree: bool = False) -> list[Problem]:
    """Return a warning for each petition folder that ``rev`` (or the work tree) removes.

    Records are never deleted: a commit that drops petition files is nearly
    always an accident (an index left behind by a tool that moved the branch
    under it, a bad merge). Against ``rev``'s first parent; with ``worktree``,
    the files on disk and in the index against ``rev``. A first commit
    removes nothing.
    """
    if worktree:
        try:
            out = gitio.git(repo, "diff", "--name-only", "--no-renames", "--diff-filter=D", "-z",
                            rev, "--", "petitions/")
        except gitio.GitError:
            return []
        removed = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
        staged = gitio.git(repo, "diff", "--cached", "--name-only", "--no-renames", "--diff-filter=D",
                           "-z", rev, "--", "petitions/").decode("utf-8", "surrogateescape").split("\0")
        removed = sorted(set(removed) | {n for n in staged if n})
        where = "the work tree"
    else:
        parent = gitio.rev_parse(repo, f"{rev}^")
        if parent is None:
            return []
        removed = [c.path for c in gitio.diff_tree(repo, parent, rev, ["petitions/"]) if c.status == "D"]
        where = f"commit {gitio.rev_parse(repo, rev)[:12]}"  # type: ignore[index]
    folders: dict[str, int] = {}
    for name in removed:
        folders[name.rsplit("/", 1)[0]] = folders.get(name.rsplit("/", 1)[0], 0) + 1
    shown = sorted(folders)
    out_problems = [Problem(
        f"{folder}/", None, "removed-petition",
        f"{where} removes {n} file(s) of {folder}; records are never deleted",
        "if this was not meant (e.g. a commit made after `wenzheng import` with an index left at the "
        "old tree), restore them: git checkout HEAD~1 -- " + folder, "warning")
        for folder, n in ((f, folders[f]) for f in shown[:20])]
    if len(shown) > 20:
        out_problems.append(Problem(
            "petitions/", None, "removed-petition",
            f"{where} removes the files of {len(shown) - 20} more petition folder(s) "
            f"({len(removed)} file(s) in all)",
            "see `git diff --stat HEAD~1 HEAD -- petitions/`", "warning"))
    return out_problems


def read_departments(snap: load.Snapshot) -> tuple[r.Departments | None, list[Problem]]:
    """Return departments.yaml of the snapshot, with its problems."""
    text = load.read_config(snap, "departments.yaml")
    if text is None:
        return None, [_config_problem("departments.yaml", "departments.yaml is missing",
                                      "add departments.yaml at the top of the repository")]
    try:
        data = parse(text)
    except YamlError as exc:
        return None, [Problem("departments.yaml", exc.line, "yaml", str(exc),
                              "fix the YAML syntax at that line")]
    report = v.Report()
    depts = v.check_departments(report, "departments.yaml", data)
    return depts, report.resolve(lambda f: f, lambda f: text)


def read_rules(snap: load.Snapshot, cross_check: bool | None = None) -> tuple[Rules | None, list[Problem]]:
    """Return rules.yaml of the snapshot, with its problems (``cross_check``
    overrides the file's calendar cross-check with the holidays library)."""
    text = load.read_config(snap, "rules.yaml")
    if text is None:
        return None, [_config_problem("rules.yaml", "rules.yaml is missing",
                                      "add rules.yaml at the top of the repository")]
    return load_rules(text, "rules.yaml", cross_check, load.cache_dir(snap.root))


def check_folder(folder: str, files: list[load.RecordFile], departments: r.Departments,
                 snap: load.Snapshot, rules: Rules | None = None) -> tuple[r.Case | None, list[Problem]]:
    """Return the folder's case if it is sound, with every problem in it.
    With ``rules``, the records the system wrote are verified against them
    (:func:`generator.escalate.check_system_records`)."""
    m = r.FOLDER_RE.match(folder + "/x")
    assert m is not None
    report = v.Report()
    petition = None
    events: list[r.Event] = []
    by_name = {rf.name: rf for rf in files}
    if r.PETITION_FILE not in by_name:
        report.add(r.PETITION_FILE, (), "missing-petition",
                   f"folder {folder} has no petition.yaml",
                   "every petition folder starts with its petition.yaml")
    for rf in files:
        source = r.Source(f"{folder}/{rf.name}", rf.blob)
        if rf.error is not None:
            message, line = rf.error
            report.add(rf.name, ("#line", line or 1), "yaml",
                       f"not valid YAML: {message}", "fix the YAML syntax at that line")
            continue
        if rf.name == r.PETITION_FILE:
            petition = v.check_petition(report, rf.data, m["id"], (m["year"], m["month"]), source)
        else:
            event = v.check_event(report, rf.name, rf.data, source)
            if event is not None:
                events.append(event)
    case = None
    if not report.pending:
        case = v.check_case(report, petition, events, departments, folder)
    elif petition is not None:
        # Still walk the timeline so that order problems come out together with
        # the file problems; the case itself is not kept.
        v.check_case(report, petition, events, departments, folder)
    if case is not None and rules is not None:
        from generator.escalate import check_system_records

        check_system_records(report, case, rules)
    problems = report.resolve(
        lambda name: f"{folder}/{name}",
        lambda name: snap.read(by_name[name].blob) if name in by_name else None,
    )
    return (case if not problems or all(p.severity != "error" for p in problems) else None), problems


_WORKER: dict[str, Any] = {}
# Below this many folders to read, worker processes cost more than they save.
POOL_FROM = 2000


def _init_worker(nice: int = 0, **state: Any) -> None:
    import gc

    gc.disable()  # a worker builds short-lived acyclic objects and exits (see generator.bulk)
    if nice:
        os.nice(nice)
    _WORKER.update(state)


# The workers that transform cached cases yield the processor to the process
# that started them: it goes on asking skip_case about the other cases, the
# longer of the two jobs, and needs their results only after it.
TRANSFORM_NICE = 10


def _check_chunk(items: list[tuple[str, str, list[tuple[str, str]]]]) -> list[tuple]:
    """Read, parse and check a chunk of folders in a worker process."""
    snap, departments, transform = _WORKER["snap"], _WORKER["departments"], _WORKER["transform"]
    rules = _WORKER["rules"]
    keep_case, want_cases = _WORKER["keep_case"], _WORKER["want_cases"]
    # The case goes back pickled on its own: the parent keeps these bytes in
    # its (lazy) case store as they are, instead of pickling the case again;
    # with a transform, it goes back transformed too and is never unpickled
    # (nor pickled, when ``keep_case`` says the store need not keep it).
    out = []
    for folder, tree, rows, refs, case in _check_items(snap, items, departments, rules):
        shaped = transform(case) if transform is not None and case is not None else None
        keep = want_cases and case is not None and (transform is None or keep_case is None or keep_case(shaped))
        out.append((folder, tree, rows, refs, pickle.dumps(case, protocol=5) if keep else None, shaped))
    return out


def _check_items(snap: load.Snapshot, items, departments: r.Departments, rules: Rules | None):
    oids = [oid for _, _, files in items for _, oid in files]
    if snap.rev is None:
        blobs = {oid: snap.texts[oid] for oid in oids}
    else:
        blobs = gitio.read_blobs(snap.root, oids)
    for folder, tree, files in items:
        parsed = [load.RecordFile(name, oid, *load.parse_record(blobs[oid])) for name, oid in files]
        case, problems = check_folder(folder, parsed, departments, snap, rules)
        too_large = [p for name, oid in files
                     for p in [archivepaths.size_problem(f"{folder}/{name}", len(blobs[oid]))] if p]
        if too_large:
            case, problems = None, too_large + problems
        refs = tuple(e.get("duplicate_of") for e in (case.events if case else ())
                     if e.kind == "rejected" and e.get("duplicate_of"))
        yield folder, tree, [tuple(p.__dict__.values()) for p in problems], refs, case


def check_folders(snap: load.Snapshot, folders: list[str], departments: r.Departments,
                  workers: int | None = None, transform: Callable[[r.Case], Any] | None = None,
                  keep_case: Callable[[Any], bool] | None = None, want_cases: bool = True,
                  rules: Rules | None = None):
    """Yield ``(folder, tree, problem rows, duplicate_of refs, case, pickled case
    or None, transformed case or None)`` for each folder.

    Reading, parsing and checking are spread over processes when there are
    many folders: the work is per folder and the answers are small. With
    ``transform``, each sound case is also transformed where it was read, and
    a case read in a worker process is not unpickled here (None); nor is it
    pickled there when ``keep_case(transformed)`` is false, or at all without
    ``want_cases`` (a plain check).
    """
    items = [(f, snap.folders[f][0], snap.files(f)) for f in folders]
    workers = workers or min(os.cpu_count() or 1, 4)
    if len(items) < POOL_FROM or workers == 1 or snap.rev is None:
        for start in range(0, len(items), 1000):
            for folder, tree, rows, refs, case in _check_items(snap, items[start:start + 1000], departments,
                                                               rules):
                out = transform(case) if transform is not None and case is not None else None
                yield folder, tree, rows, refs, case, None, out
        return
    size = max(200, len(items) // (workers * 8))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    init = functools.partial(_init_worker, snap=load.Snapshot(root=snap.root, rev=snap.rev),
                             departments=departments, transform=transform, keep_case=keep_case,
                             want_cases=want_cases, rules=rules)
    with ProcessPoolExecutor(workers, initializer=init) as pool:
        for result in pool.map(_check_chunk, chunks):
            for folder, tree, rows, refs, blob, out in result:
                case = pickle.loads(blob) if blob is not None and transform is None else None
                yield folder, tree, rows, refs, case, blob, out


def _transform_blobs(transform, items: list[tuple[tuple[str, str], tuple, bytes]]) -> list[tuple]:
    return [(key, verdict, transform(pickle.loads(blob))) for key, verdict, blob in items]


def _transform_blob_chunk(items: list[tuple[tuple[str, str], tuple, bytes]]) -> list[tuple]:
    return _transform_blobs(_WORKER["transform"], items)


class _Transforms:
    """The results of :func:`_transform_stored`; :meth:`close` stops its workers."""

    def __init__(self, results: Iterable[list[tuple]], pool: ProcessPoolExecutor | None = None):
        self._results, self._pool = results, pool

    def __iter__(self) -> Iterator[tuple]:
        for result in self._results:
            yield from result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _transform_stored(items: list[tuple[tuple[str, str], tuple, bytes]], transform,
                      workers: int | None = None) -> _Transforms:
    """Return ``(key, verdict, transform(case))`` for cached (pickled) cases, as
    they are iterated; when there are many (the open cases of a large archive,
    evaluated again on every run), worker processes start on them at once, so
    the caller does other work meanwhile. Close the result when done."""
    workers = workers or min(os.cpu_count() or 1, 4)
    if len(items) < POOL_FROM or workers == 1:
        return _Transforms(map(functools.partial(_transform_blobs, transform), [items]))  # here, when read
    size = max(100, len(items) // (workers * 4))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    pool = ProcessPoolExecutor(workers, initializer=functools.partial(_init_worker, nice=TRANSFORM_NICE,
                                                                      transform=transform))
    try:
        return _Transforms(pool.map(_transform_blob_chunk, chunks), pool)  # every chunk is submitted here
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def check_archive(repo: str | Path, rev: str = "HEAD", **options: Any) -> Archive:
    """Return the checked archive at ``rev``: see :func:`_check_archive`."""
    with bulk():
        return _check_archive(repo, rev, **options)


def _check_archive(repo: str | Path, rev: str = "HEAD", *, worktree: bool = False,
                  changed_since: str | None = None, use_cache: bool = True,
                  need_cases: bool = True, folders: list[str] | None = None,
                  cross_check: bool | None = None,
                  skip_case: Callable[[str, str, str], bool] | None = None,
                  transform: Callable[..., Any] | None = None,
                  keep_case: Callable[[Any], bool] | None = None,
                  receive: Callable[[str, str, Any], Any] | None = None,
                  progress: Callable[[int], Callable[[], None]] | None = None) -> Archive:
    """Return the checked archive at ``rev`` (or in the work tree).

    With ``changed_since`` only the petition folders touched since that commit
    are read and checked, so the time grows with the change, not the archive;
    if departments.yaml or rules.yaml changed, everything is checked again,
    since any record may depend on them. ``folders`` names the folders to
    check directly (the pull-request check knows them already).

    Verdicts are cached by (folder, tree id) under a digest of the config and
    of this program's version: an unchanged folder under unchanged rules is
    not read again. ``need_cases=False`` (a plain check) skips loading the
    cached case records too. ``skip_case(config digest, folder, tree)``
    returning True says a sound case is known elsewhere (a settled case,
    :mod:`generator.settled`): it is listed in ``archive.sound`` but not loaded.
    ``transform(case, rules=..., departments=...)``, when given, is applied to every sound case
    (in the worker processes, for the folders read there) and
    ``archive.cases`` holds what it returns instead of the cases: a caller
    that needs something small of each case does not pay for carrying the
    cases back and holding them. ``keep_case(transformed)`` false says the
    case need not be kept in the case cache (the caller keeps what it needs
    of it, as the settled cache does). ``receive(folder, tree, transformed)``,
    when given, is called in this process as each case's transform arrives
    (folders of a whole-archive read arrive in order) and its result is kept
    instead: a caller can move what it does not need to hold out of memory
    at once. ``progress(n)``, when given, is called
    with the number of cases to read or transform and returns a function
    called once per case done (a progress bar).
    """
    root = Path(repo)
    only: set[str] | None = None
    loose: list[str] = []  # changed paths under petitions/ outside any petition folder
    if changed_since is not None:
        folders, configs, changes = load.changed_folders(root, changed_since, rev)
        if not configs:
            only = folders
            loose = sorted({ch.path for ch in changes if ch.status != "D"
                            and archivepaths.kind_of(ch.path) == archivepaths.RECORD
                            and "/".join(ch.path.split("/")[:4]) not in folders})
    elif folders is not None:
        only = set(folders)
    if worktree:
        snap = load.snapshot_worktree(root, sorted(only) if only is not None else None)
    else:
        listed = sorted(only) + loose if only is not None else None
        snap = load.snapshot_at(root, rev, listed, reuse=use_cache)

    departments, problems = read_departments(snap)
    rules, rule_problems = read_rules(snap, cross_check)
    problems += rule_problems
    archive = Archive(root, snap.rev, departments, rules, problems=problems)
    for path, mode in snap.strays:
        stray = archivepaths.entry_problem(path, mode)
        if stray is not None:
            archive.problems.append(stray)
    if departments is None:
        archive.problems.append(Problem(
            "departments.yaml", None, "not-checked",
            "petition records were not checked because departments.yaml has errors",
            "fix departments.yaml first"))
        return archive

    # Only a whole commit is cached: a partial check reads folders whose tree
    # ids are new anyway, and must not pay for loading the cache.
    cdir = load.cache_dir(root) if use_cache and snap.rev is not None and snap.full else None
    digest = config_digest(snap)[:16]
    archive.config_digest = digest
    verdicts = load.ShardedStore(cdir, f"verdicts-{digest}")
    # A caller that keeps only some cases (``keep_case``: the open ones, which
    # the site build and the export evaluate again on every run, taking the
    # settled ones from a cache of their own) has a case store of its own: one
    # that keeps every case (the escalation run) would fill it with settled
    # cases, which the next build would then read and evaluate again, all of
    # them, instead of asking skip_case.
    stored_cases = load.ShardedStore(cdir if need_cases else None,
                                     f"cases-{digest}" if keep_case is None else f"open-cases-{digest}", lazy=True)
    # Without sound rules there is nothing to transform with; the caller stops anyway.
    shape = (functools.partial(transform, rules=rules, departments=departments)
             if transform is not None and rules is not None else None)
    found: dict[tuple[str, str], tuple[list, tuple, Any, bool, bool]] = {}
    todo: list[str] = []
    # Sound cases whose record is cached (the open ones: keep_case) are only
    # transformed again: that starts first, in worker processes, while this
    # one asks skip_case about the rest (which loads what the caller keeps).
    stored: list[tuple[tuple[str, str], tuple, bytes]] = []
    rest: list[tuple[str, tuple[str, str], tuple | None]] = []
    listed = snap.folders
    ordered = sorted(listed)
    # Nearly every folder is looked up: in the stores' entries all at once.
    known_verdicts = verdicts.everything()
    known_cases = stored_cases.everything() if need_cases and shape is not None else {}
    for folder in ordered:
        key = (folder, listed[folder][0])
        verdict = known_verdicts.get(key)
        if known_cases and verdict and not verdict[0]:
            blob = known_cases.get(key)
            if blob is not None:
                stored.append((key, verdict, blob))
                continue
        rest.append((folder, key, verdict))
    del known_verdicts, known_cases
    transforms = _transform_stored(stored, shape)
    try:
        for folder, key, verdict in rest:
            skipped = bool(verdict and not verdict[0] and skip_case is not None and skip_case(digest, *key))
            wanted = need_cases and verdict and not verdict[0] and not skipped
            case = stored_cases.get(key) if wanted and shape is None else None
            if verdict is None or (need_cases and not verdict[0] and case is None and not skipped):
                todo.append(folder)
            else:
                found[key] = (verdict[0], verdict[1], case, skipped, case is not None)
        del rest
        tick = progress(len(stored) + len(todo)) if progress is not None else (lambda: None)
        for key, verdict, value in transforms:
            if keep_case is not None and not keep_case(value):
                stored_cases.drop(key)  # settled since: the caller keeps it now
            if receive is not None:
                value = receive(key[0], key[1], value)
            found[key] = (verdict[0], verdict[1], value, False, True)
            tick()
    finally:
        transforms.close()
    for folder, tree, problem_rows, refs, case, blob, out in check_folders(snap, todo, departments,
                                                                          transform=shape, keep_case=keep_case,
                                                                          want_cases=need_cases,
                                                                          rules=rules):
        tick()
        if receive is not None and out is not None:
            out = receive(folder, tree, out)
        found[(folder, tree)] = (problem_rows, refs, out if shape is not None else case,
                                 False, case is not None or blob is not None or out is not None)
        verdicts.put((folder, tree), (problem_rows, refs))
        if blob is not None:
            stored_cases.put_raw((folder, tree), blob)
        elif case is not None and (shape is None or keep_case is None or keep_case(out)):
            stored_cases.put((folder, tree), case)

    references: list[tuple[str, str]] = []
    seen_ids: dict[str, str] = {}
    archive.folders_checked += len(ordered)
    for folder in ordered:
        key = (folder, listed[folder][0])
        problem_rows, refs, case, skipped, sound = found[key]
        if problem_rows:
            archive.problems.extend(Problem(*row) for row in problem_rows)
        pid = folder.rsplit("/", 1)[1]
        if refs:
            references.extend((folder, ref) for ref in refs)
        if pid in seen_ids:
            archive.problems.append(Problem(
                f"{folder}/petition.yaml", 1, "duplicate-id",
                f"petition id {pid} is also used by {seen_ids[pid]}",
                "each id is used once; the later petition needs a new id"))
            archive.cases.pop(pid, None)
            continue
        seen_ids[pid] = folder
        if sound or skipped:
            archive.sound[pid] = key
        if need_cases and case is not None:
            archive.cases[pid] = case
    keep = set(found) if snap.full else None
    verdicts.save(keep)
    stored_cases.save(keep)

    if only is not None and not worktree:
        _check_ids_against_archive(archive, root, snap.rev or rev, only)
    _check_references(archive, root, snap.rev or rev, references, seen_ids, full=only is None)
    return archive


def _check_ids_against_archive(archive: Archive, root: Path, rev: str, folders: set[str]) -> None:
    """For a partial check: report changed petitions whose id is used elsewhere."""
    holders = load.folders_of(root, rev, [f.rsplit("/", 1)[1] for f in folders])
    for folder in sorted(folders):
        pid = folder.rsplit("/", 1)[1]
        others = [w for w in holders[pid] if w != folder]
        if others:
            archive.problems.append(Problem(
                f"{folder}/petition.yaml", 1, "duplicate-id",
                f"petition id {pid} is also used by {others[0]}",
                "each id is used once; the later petition needs a new id"))


def _check_references(archive: Archive, root: Path, rev: str, references: list[tuple[str, str]],
                      ids: dict[str, str], full: bool) -> None:
    """Report rejections that name a duplicate which does not exist."""
    for folder, target in references:
        pid = folder.rsplit("/", 1)[1]
        exists = target in ids if full else bool(load.folders_of(root, rev, [target])[target])
        if target == pid or not exists:
            archive.problems.append(Problem(
                f"{folder}", None, "unknown-duplicate",
                f"a rejection names duplicate_of {target}, which "
                + ("is this petition itself" if target == pid else "is not in the archive"),
                "name the earlier petition this one duplicates"))


def config_digest(snap: load.Snapshot) -> str:
    """Return a digest of the config blobs and this program's version: cached
    verdicts are valid only for the same config and the same checker."""
    h = hashlib.sha1(_CHECKER_DIGEST.encode())
    for name in sorted(snap.config):
        h.update(f"{name}:{snap.config[name]};".encode())
    return h.hexdigest()


def as_dict(archive: Archive) -> dict[str, Any]:
    """Return a summary of the check for machines."""
    errors = len(archive.errors)
    return {
        "rev": archive.rev,
        "folders_checked": archive.folders_checked,
        "cases": len(archive.cases),
        "errors": errors,
        "warnings": len(archive.problems) - errors,
    }
