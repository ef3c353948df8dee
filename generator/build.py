"""Build the public site: load, evaluate, aggregate, render, commit into place.

Reads top to bottom like the pipeline. Everything is gathered and computed
before the first page is written; changed pages go into a pending folder that
is committed into ``out`` (journalled, file by file, see
:mod:`generator.render.writer`) only when the whole build succeeded, so a
failed build leaves the last good site untouched. Same commit and same ``now``
give a byte-identical site, Pagefind's filter files aside (docs/site.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gc
import logging
import marshal
import pickle
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import orjson
import yaml

from generator import gitio, load, shipped
from generator.bulk import bulk
from generator.check import check_archive
from generator.metrics import Sums, accumulate, merged, scorecards_of
from generator.problems import Problem
from generator.rules import DEFAULT_TIMEZONE
from generator.render import figures as fg
from generator.render import pages as pg
from generator.render import products, rulespage, search
from generator.render.i18n import LANGS, t
from generator.render.shell import ShellPage, build_shell, fix_shell_page
from generator.render.view import TIME_FMT
from generator.render.writer import SiteWriter, digest, room_to_fork
from generator.settled import SettledCache

log = logging.getLogger("wenzheng.build")


class BuildError(Exception):
    """The archive cannot be published; ``problems`` says why, every one."""

    def __init__(self, problems: list[Problem]):
        super().__init__(f"{len(problems)} problem(s) stop the build")
        self.problems = problems


@dataclass
class BuildReport:
    """What a build did: counts and seconds per phase."""

    cases: int = 0
    written: int = 0
    skipped: int = 0
    shell_rebuilt: bool = False
    search_shards: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class AddedBy:
    """Record path -> the commit that added it, kept in ``folder`` one marshal
    file per folder month (``petitions/YYYY/MM/...``), each read when a path
    of its month is first asked for. A build asks for the paths of the cases
    it reads: after one new reply, those of a few months (the open cases'),
    not all 650,000 paths of 100,000 petitions (0.3 s to read, 0.2 s to write
    back with one more). In a month's file each petition folder's names and
    commits are one string (``name\tcommit`` lines), unpacked when a path of
    the folder is asked for: a month of 3,000 petitions is 3,000 strings to
    read, not 20,000 (a month took 12 ms to read, in each worker process that
    evaluates an open case of it)."""

    FORMAT = "added-by-2"  # the folder's name; "added-by" held one entry per path

    def __init__(self, folder: Path):
        self.folder = folder
        self._months: dict[str, dict[str, str]] = {}  # month -> petition folder -> packed names and commits
        self._folders: dict[str, dict[str, str]] = {}  # petition folder -> name -> commit

    @staticmethod
    def month(path: str) -> str:
        """Return the file a path is kept in: ``YYYY-MM`` of its folder, else ``other``."""
        parts = path.split("/", 3)
        if len(parts) > 3 and parts[0] == "petitions" and len(parts[1]) == 4 and len(parts[2]) == 2:
            return f"{parts[1]}-{parts[2]}"
        return "other"

    def months(self) -> list[str]:
        """Return the months kept in the folder."""
        return sorted(path.stem for path in self.folder.glob("*.marshal"))

    def _load(self, month: str) -> dict[str, str]:
        got = self._months.get(month)
        if got is None:
            path = self.folder / f"{month}.marshal"
            try:
                got = marshal.loads(path.read_bytes())
                if not isinstance(got, dict):
                    raise TypeError(f"a {type(got).__name__}, not a dict")
            except FileNotFoundError:
                got = {}  # a month whose records were all added since (add) or that has none
            except (OSError, EOFError, ValueError, TypeError) as exc:
                raise RuntimeError(f"{path} cannot be read ({exc}); delete {self.folder} and build again") from exc
            self._months[month] = got
        return got

    def _names(self, folder: str, month: str) -> dict[str, str]:
        got = self._folders.get(folder)
        if got is None:
            packed = self._load(month).get(folder, "")
            got = dict(line.split("\t", 1) for line in packed.split("\n")) if packed else {}
            self._folders[folder] = got
        return got

    def get(self, path: str, default: str = "") -> str:
        folder, _, name = path.rpartition("/")
        return self._names(folder, self.month(path)).get(name, default)

    def add(self, paths: dict[str, str]) -> None:
        """Add ``paths`` (path -> commit) not known yet; write the months they changed."""
        by_month: dict[str, dict[str, dict[str, str]]] = {}
        for path, commit in paths.items():
            folder, _, name = path.rpartition("/")
            by_month.setdefault(self.month(path), {}).setdefault(folder, {})[name] = commit
        self.folder.mkdir(parents=True, exist_ok=True)
        for month, folders in by_month.items():
            packed = self._load(month)
            changed = not (self.folder / f"{month}.marshal").is_file()
            for folder, added in folders.items():
                names = self._names(folder, month)
                before = len(names)
                for name, commit in added.items():
                    names.setdefault(name, commit)
                if len(names) != before:
                    packed[folder] = "\n".join(f"{name}\t{commit}" for name, commit in names.items())
                    changed = True
            if changed:
                load.replace_file(self.folder / f"{month}.marshal", marshal.dumps(packed))


def added_by(repo: Path, rev: str, cache: Path) -> tuple[AddedBy, bool]:
    """Return, for every record path under petitions/, the commit that added it
    (an :class:`AddedBy`), and whether the last build's answer was extended
    (True: every path it knew keeps its commit) rather than worked out again
    (a first build, or a rewritten history).

    One ``git log`` pass; later builds read only the commits since the last one.
    """
    head = gitio.rev_parse(repo, rev)
    folder = cache / AddedBy.FORMAT
    stamp = folder / "head.json"
    for old in ("added-by.marshal", "added-by.json"):  # the formats before: one file for every path
        (cache / old).unlink(missing_ok=True)
    shutil.rmtree(cache / "added-by", ignore_errors=True)  # the format before: one entry per path
    since = None
    known = AddedBy(folder)
    try:
        saved = orjson.loads(stamp.read_bytes())
        if known.months() == saved["months"]:  # else a month's file is missing: worked out again
            since = saved["head"]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    if since == head:
        return known, True
    if since is not None:
        try:
            subprocess.run(["git", "-C", str(repo), "merge-base", "--is-ancestor", since, head],
                           check=True, capture_output=True)
        except subprocess.CalledProcessError:
            since = None
    if since is None:
        shutil.rmtree(folder, ignore_errors=True)  # worked out again from the whole history
    span = f"{since}..{head}" if since else head
    out = gitio.git(repo, "log", "--reverse", "--diff-filter=A", "--name-only", "--format=%x00%H", span,
                    "--", "petitions")
    text = out.decode() if isinstance(out, bytes) else out
    new: dict[str, str] = {}
    for block in text.split("\0")[1:]:
        lines = block.strip().splitlines()
        if not lines:
            continue
        commit = lines[0]
        for path in lines[1:]:
            if path:
                new.setdefault(path.strip(), commit)
    known.add(new)
    # The head last: a build stopped before it reads the same commits again.
    folder.mkdir(parents=True, exist_ok=True)
    load.replace_file(stamp, orjson.dumps({"head": head, "months": known.months()}))
    return known, since is not None


# What the last build made (about a gigabyte of small objects at 100,000
# petitions: every case's products and view, the manifests, the commits of
# every record) is kept here when it returns, not freed object by object on
# the way out, which took 0.85 s after the site was in place. The `wenzheng`
# command then exits without freeing it (:func:`generator.cli.run`); a
# process that goes on (``wenzheng serve``, the benchmark) calls
# :func:`release` when it is idle, else the next build frees it first.
_LEFT: list[Any] = []


def release() -> None:
    """Free what the last build of this process left (:data:`_LEFT`), and let
    the cyclic collector see what remains of it again."""
    _LEFT.clear()
    gc.unfreeze()


def build_site(repo: Path, rev: str, now: datetime, out: Path, base_url: str = "/",
               progress: Callable[[str, int], Callable[[], None]] | None = None) -> BuildReport:
    """Build the site of ``repo`` at ``rev`` as of ``now`` into ``out``.

    Raises BuildError when the archive has errors; ``out`` is then untouched.
    What the build made is freed by :func:`release` (or the next build).
    """
    release()
    with _one_build_at_a_time(Path(repo)), bulk():  # bulk: the cyclic collector would walk millions of objects
        report = _build_site(repo, rev, now, out, base_url, progress)
        # Switched back on, the collector's first pass would walk every object
        # made meanwhile (0.6 s at 100,000 petitions): they are set aside
        # (gc.freeze) until release().
        gc.freeze()
        return report


@contextlib.contextmanager
def _one_build_at_a_time(repo: Path) -> Iterator[None]:
    """Hold the archive's build lock: two builds of one archive (a preview and
    a build, say) share its caches (kept products, download parts, chart
    drawings), which each prunes of what it does not use."""
    folder = (load.cache_dir(repo) or repo / ".wenzheng-cache") / "site"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another build of this archive to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _build_site(repo: Path, rev: str, now: datetime, out: Path, base_url: str,
                progress: Callable[[str, int], Callable[[], None]] | None) -> BuildReport:
    report = BuildReport()
    clock = time.monotonic()

    def lap(name: str) -> None:
        nonlocal clock
        report.seconds[name] = round(time.monotonic() - clock, 2)
        log.info("phase %s: %.1f s", name, report.seconds[name])
        clock = time.monotonic()

    # 1. The frame every page shares, from the shell (mkdocs-material), before
    # any case is read: the shell's pages are known by name and title; their
    # bodies (the figures) go in at the end.
    repo = Path(repo)
    cache = (load.cache_dir(repo) or repo / ".wenzheng-cache") / "site"
    cache.mkdir(parents=True, exist_ok=True)
    site_config = _site_config(repo, rev)
    templates = _site_templates(repo, rev, cache)
    base_path = "/" + base_url.split("://", 1)[1].partition("/")[2] if "://" in base_url else base_url
    if not base_path.endswith("/"):
        base_path += "/"
    link_base = base_url if "://" in base_url else base_path  # feed links are absolute when it is
    # The shell's dates (sitemap) are days, in the city's time zone: the start
    # of today keeps mkdocs from rerunning on every build of the same day.
    config = _config_text(repo, rev)
    today = now.astimezone(_city_zone(config["rules.yaml"]))
    epoch = int(today.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    outs, frames, report.shell_rebuilt = build_shell(site_config, _shell_nav(), templates / "overrides",
                                                     base_url, epoch, cache)
    writer = SiteWriter(Path(out))
    writer.start()
    indexer = search.Indexer()
    try:
        salt = digest(pg.templates_digest(templates), pg.CODE_DIGEST, frames["zh"], frames["en"], base_path,
                      site_config.get("repo_url"))
        site = pg.Site(pg.environment(templates, cache / "templates"), frames, writer, base_path, link_base, None,
                       site_config.get("repo_url"), salt)
        lap("shell")

        # 2. Load, check and evaluate: only a sound archive is published. Each
        # case is made into what the site needs of it where it is read (the
        # check's worker processes, generator/render/products.py), and its own
        # pages and feed are written there. A settled case whose files the site
        # already holds, made from the same inputs, comes from the cache instead.
        commits, continued = added_by(repo, rev, cache)
        kept = SettledCache(repo, "site", code=products.CODE)
        files = pg.PetitionFiles(site)
        folders_seen = cache / "site-folders.json"  # the petition folders' stamps after the last build
        present = files.present(writer, _read_stamps(folders_seen, writer.out))

        # The kept cases the check skips, with their files' keys, by folder.
        hits: dict[str, tuple[products.Products, tuple]] = {}

        def still_valid(hit: products.Products) -> bool:
            # Each record's commit is shown on the page: a history that was
            # rewritten (not continued) may have changed it.
            if not (continued or products.same_sources(hit, commits)):
                return False
            keyed = files.in_site(hit, writer.old_manifest, present)
            if keyed is None:
                return False
            hits[hit.lite["folder"]] = (hit, keyed)
            return True

        # A settled case's search record and download lines go to disk as soon
        # as the case is made (a month at a time); they are read back only for
        # a search shard or a month of downloads that is made again.
        payloads = products.PayloadStore(cache, f"payloads-{kept.code_digest[:16]}")
        shutil.rmtree(cache / "data-parts", ignore_errors=True)  # the downloads' cache before data-ranges.json

        def receive(folder: str, tree: str, got: tuple[products.Products, list[str]]):
            item, wrote = got
            if item.settled_last is not None and item.payload:
                payloads.put(folder, item.payload_key, item.payload)
                item = item._replace(payload=b"")
            return item, wrote

        # The open cases are evaluated again; those whose products would come out
        # the same are taken from the last build's (products.make_and_write).
        open_kept = products.OpenProducts(cache, digest(config, kept.code_digest)[:16])
        archive = check_archive(repo, rev, skip_case=kept.skipper(now, still_valid), keep_case=products.unsettled,
                                transform=functools.partial(products.make_and_write, now=now, commits=commits,
                                                            files=files, previous=open_kept.entries),
                                receive=receive,
                                progress=(lambda n: progress("cases", n)) if progress else None)
        if not archive.ok or archive.departments is None or archive.rules is None:
            raise BuildError(archive.errors or archive.problems)
        rules, depts = archive.rules, archive.departments
        site.use(depts)
        kept.bind(archive.config_digest)
        made: list[products.Products] = []
        unchanged: list[tuple[str, str]] = []  # the files of the kept cases, recorded at once
        for pid, (folder, tree) in archive.sound.items():
            got = archive.cases.pop(pid, None)
            if got is None:
                item, keyed = hits.pop(folder, (None, ()))
                if item is None:
                    raise RuntimeError(f"{folder}: neither read nor kept")  # the skipper and the cache disagree
                unchanged.extend(keyed)
            else:
                item, wrote = got
                if item.settled_last is not None:
                    kept.put(folder, tree, item.settled_last, item)
                writer.took(files.keys(item), wrote)
            made.append(item)
        writer.took(unchanged, [])
        del unchanged
        report.cases = len(made)
        open_kept.save(made)

        # 3. Order and aggregate: pages by id, downloads newest first, as `wenzheng export`.
        now = now.astimezone(rules.tz)
        made.sort(key=lambda p: p.id)
        # Search shards (Pagefind) index in the background from here on: changed
        # shards only, as early as possible, since indexing one takes seconds.
        # Their records are read from ``payloads`` while it is saved below,
        # which keeps the payload of every settled case in ``made``.
        shard_keys = search.shard_keys(made, now)
        kept_shards = []
        search_keys = {shard: key for shard, (key, _) in shard_keys.items()}
        for shard, (key, members) in shard_keys.items():
            stamp = f"pagefind/{shard}/.key"
            if writer.old_manifest.get(stamp) == key and (writer.out / "pagefind" / shard).is_dir():
                kept_shards.append(shard)
            else:
                indexer.add(shard, functools.partial(search.job_items, members, payloads),
                            writer.pending / "pagefind" / shard)
        shard_sizes = {shard: len(members) for shard, (_, members) in shard_keys.items()}
        del shard_keys
        kept.save(set(archive.sound.values()))
        settled_payloads: dict[str, set[str]] = {}
        for item in made:
            if item.settled_last is not None:
                settled_payloads.setdefault(products.month_of(item.lite["folder"]), set()).add(item.payload_key)
        payloads.save(settled_payloads)
        hits.clear()  # any left were skipped by the check but not sound (a duplicate id)
        lap("load")

        views = [p.lite for p in made]
        # By instant (timestamp): comparing datetimes whose zones are distinct
        # objects (as unpickled from the cache) is several times slower.
        newest = sorted(made, key=lambda p: (p.received_at.timestamp(), p.id), reverse=True)
        newest_views = [p.lite for p in newest]
        sums = _scorecard_sums(made, archive.sound, cache, f"{archive.config_digest}:{kept.code_digest}")
        cards = scorecards_of(sums, rules, now, departments=tuple(depts.departments))
        del sums
        city = fg.from_headline(cards.headline("all"))
        min_cases = rules.minimum_cases_for_ranking
        as_of = now.astimezone(rules.tz).strftime(TIME_FMT)
        lap("aggregate")

        # 4. While the search shards index, the downloads, the listings, and the
        # department and report pages are made in three forked processes; this
        # one writes the shell's pages and the feeds. The downloads start first:
        # writing them is mostly waiting for the disk. The other two are forked
        # after the shell and the feeds, since after a fork the first write to
        # each page of this process's memory copies it (reading an object
        # writes its reference count), and all of them go over every case.
        # A large archive's build process does not fit three times in memory:
        # the three are then made here, one after another.
        inline = not room_to_fork(3)
        if inline:
            log.info("too little memory to fork this build process three times: "
                     "the downloads, listings and pages are made in it, one after another")
        open_data_done = writer.fork(lambda: pg.open_data_files(site, newest, cards, now, archive.rev,
                                                                f"{archive.config_digest}:{kept.code_digest}",
                                                                cache / "data-ranges.json", payloads), inline)
        # The trend charts' drawings that changed (matplotlib, about 0.3 s each) are
        # drawn meanwhile, in a process that reads only the scorecards.
        charts_done = writer.fork(lambda: pg.draw_charts(sorted(depts.departments), cards, cache), inline)
        periods = _periods(views)
        bodies = _shell_bodies(site, newest_views, city, fg.by_department(cards, "all"), periods, shard_sizes, as_of,
                               min_cases, rules, site_config.get("extra") or {}, _field_docs(repo, rev, cache))
        for lang in LANGS:
            _copy_shell(writer, outs[lang], "en/" if lang == "en" else "", base_path,
                        {slug: pair[LANGS.index(lang)] for slug, pair in bodies.items()})
        writer.file("assets/wz-deadline.js", (templates / "wz-deadline.js").read_text(encoding="utf-8"))
        pg.feed_files(site, newest_views, now)
        lap("shell+feeds")
        listings_done = writer.fork(lambda: pg.all_listings(site, newest_views), inline)
        charts_done()
        pages_done = writer.fork(lambda: (pg.department_pages(site, views, cards, as_of, min_cases, cache),
                                          pg.report_pages(site, views, cards, as_of, min_cases)), inline)
        pages_done()
        lap("wait: departments+reports")
        listings_done()
        lap("wait: listings")
        open_data_done()
        lap("wait: downloads")

        # 5. Search: collect the shards indexed meanwhile, keep the unchanged ones.
        kept_set = set(kept_shards)
        for p, k in writer.old_manifest.items():
            if p.startswith("pagefind/") and p.split("/", 2)[1] in kept_set:
                writer.claim(p, k)
        for shard, names in indexer.results().items():  # written into the pending folder by Pagefind
            key = search_keys[shard]
            writer.took_pending([f"pagefind/{shard}/{rel}" for rel in names], key)
            writer.claim(f"pagefind/{shard}/.key", key)
            report.search_shards.append(shard)
        lap("search")
        folders_seen.unlink(missing_ok=True)  # the swap changes them; a build stopped during it lists them
        writer.finish()
        load.replace_file(folders_seen, orjson.dumps({"out": str(writer.out.resolve()),
                                                      "stamps": pg.PetitionFiles.mark(writer.out)}))
        lap("swap")
        _LEFT.append((made, views, newest, newest_views, archive, kept, payloads, writer, commits, cards, site, files))
    except BaseException:
        indexer.close()  # its running jobs write into the pending folder: let them end first
        writer.abandon()
        raise
    finally:
        indexer.close()
    report.written, report.skipped = writer.written, writer.skipped
    return report


def _read_stamps(path: Path, out: Path) -> Any:
    """Return the stamps of ``out``'s petition folders kept in ``path`` after
    the last build of ``out`` (:meth:`PetitionFiles.present`), else None."""
    try:
        kept = orjson.loads(path.read_bytes())
        return kept["stamps"] if kept.get("out") == str(out.resolve()) else None
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return None


def _scorecard_sums(made: list[products.Products], sound: dict[str, tuple[str, str]], cache: Path,
                    inputs: str) -> Sums:
    """Return the scorecard sums of the cases ``made``.

    A settled case's facts do not change (:mod:`generator.settled`), so the
    sums of a month's settled cases are kept in ``cache``, by the folders and
    trees of those cases and ``inputs`` (the digest of the config and of the
    code that made them): a build adds the sums of the open cases and of the
    months whose settled cases changed to the kept ones. Aggregating every
    case takes about 2 s at 100,000 cases, 20 s at a million."""
    store = cache / "settled-sums.pickle"
    try:
        kept = pickle.loads(store.read_bytes())
        if not isinstance(kept, dict):
            kept = {}
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
        kept = {}  # none yet, damaged, or of another version: made again
    settled: dict[str, list[products.Products]] = {}
    live = []
    for p in made:
        if p.settled_last is None:
            live.append(pickle.loads(p.facts))
        else:
            settled.setdefault(p.lite["month"], []).append(p)
    parts = [accumulate(live)]
    now_kept: dict[str, tuple[str, Sums]] = {}
    changed = kept.keys() != settled.keys()
    for month, members in sorted(settled.items()):
        key = digest(inputs, sorted(sound[p.id] for p in members))
        got = kept.get(month)
        if not (isinstance(got, tuple) and len(got) == 2 and got[0] == key and isinstance(got[1], Sums)):
            got, changed = (key, accumulate(pickle.loads(p.facts) for p in members)), True
        now_kept[month] = got
        parts.append(got[1])
    if changed:
        load.replace_file(store, pickle.dumps(now_kept, protocol=pickle.HIGHEST_PROTOCOL))
    return merged(parts)


def _site_config(repo: Path, rev: str) -> dict[str, Any]:
    """Return mkdocs.yml of the archive at ``rev``, else the package's own."""
    try:
        text = gitio.read_file_at(repo, rev, "mkdocs.yml")
    except Exception:  # noqa: BLE001 - an archive without its own shell config uses ours
        text = None
    if text:
        return yaml.safe_load(text) or {}
    config = yaml.safe_load(shipped.path("mkdocs.yml").read_bytes()) or {}
    # Ours is written for the project's own (demo) city: an archive of another
    # city without its own shell (an imported one) is titled with the city its
    # departments.yaml names.
    try:
        city = (yaml.safe_load(gitio.read_file_at(repo, rev, "departments.yaml") or b"") or {}).get("city")
    except Exception:  # noqa: BLE001 - the check reports a bad departments.yaml and stops the build
        city = None
    if isinstance(city, dict) and city.get("zh") and config.get("site_name") != f"{city['zh']}问政":
        zh, en = str(city["zh"]), str(city.get("en") or city["zh"])
        config["site_name"] = f"{zh}问政"
        config["site_description"] = f"{zh}诉求、答复、时限与部门考核的公开档案"
        config.setdefault("extra", {})["site_name_en"] = f"{en} Wenzheng"
    return config


def _site_templates(repo: Path, rev: str, cache: Path) -> Path:
    """Return the folder of the site's templates: the package's
    ``site_templates/``, with each file the archive's own ``site_templates/``
    holds at ``rev`` in place of the package's of the same path (or added).
    Without such files, the package's folder itself; with them, a folder in
    ``cache`` written afresh on every build (a few dozen small files). In the
    project's own checkout (the demo, an editable install) the package's
    files are the archive's work tree, edits included (``wenzheng serve``
    rebuilds on them)."""
    own = [e for e in gitio.ls_tree(repo, rev, ["site_templates"]) if e.type == "blob"]
    if not own or _package_checkout(repo):
        return shipped.path("site_templates")
    blobs = gitio.read_blobs(repo, [e.oid for e in own])
    folder, fresh = cache / "site-templates", cache / "site-templates.new"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(shipped.path("site_templates"), fresh)
    for entry in own:
        target = fresh / entry.path.removeprefix("site_templates/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        target.write_bytes(blobs[entry.oid])
    shutil.rmtree(folder, ignore_errors=True)
    fresh.rename(folder)
    return folder


def _package_checkout(repo: Path) -> bool:
    """Whether ``repo`` is the checkout the package itself runs from (editable)."""
    try:
        return shipped.path("site_templates").resolve() == (Path(repo) / "site_templates").resolve()
    except OSError:
        return False


def _config_text(repo: Path, rev: str) -> dict[str, bytes | None]:
    """Return departments.yaml and rules.yaml at ``rev`` by name (None for one missing)."""
    return {name: gitio.read_file_at(repo, rev, name) for name in load.CONFIG_FILES}


def _city_zone(rules_text: bytes | None) -> tzinfo:
    """Return the time zone rules.yaml (``rules_text``) names (read before the
    check, which reports a bad one; until then, China Standard Time)."""
    try:
        data = yaml.safe_load(rules_text or b"") or {}
        return ZoneInfo(str(data.get("timezone", DEFAULT_TIMEZONE)))
    except Exception:  # noqa: BLE001 - the check reports the problem and stops the build
        return ZoneInfo(DEFAULT_TIMEZONE)


def _periods(views: list[dict[str, Any]]) -> dict[str, list[fg.Period]]:
    # The day of receipt in the city's time (as the scorecards count it), from
    # each view's local time text: a few hundred distinct days, not 100,000 dates.
    days = {date.fromisoformat(text) for text in {v["received"][:10] for v in views}}
    return {kind: sorted({fg.period_of(kind, d) for d in days}, key=lambda p: p.first, reverse=True)
            for kind in ("week", "month", "year")}


def _copy_shell(writer: SiteWriter, built: Path, into: str, base_path: str, bodies: dict[str, str]) -> None:
    """Put one language's shell into the site: pages with their bodies put in and
    their language switch fixed, theme assets, without the frame page, source maps
    or the theme's search."""
    for path in sorted(built.rglob("*")):
        rel = path.relative_to(built).as_posix()
        if not path.is_file() or rel.startswith(("_frame/", "assets/javascripts/lunr/")) or rel.endswith(".map") \
                or rel.startswith("assets/javascripts/workers/search"):
            continue
        data = path.read_bytes()
        if rel.endswith(".html"):
            here = rel[: -len("index.html")] if rel.endswith("index.html") else rel
            data = fix_shell_page(data.decode("utf-8"), here, base_path, bodies.get(here.rstrip("/"))).encode("utf-8")
        writer.file(into + rel, data)


# The shell's pages: slug and title (a label key, or the title in both
# languages); their bodies are :func:`_shell_bodies`.
SHELL: tuple[tuple[str, str | tuple[str, str]], ...] = (
    ("", "home"), ("petitions", "petitions"), ("departments", "departments"), ("ranking", "ranking"),
    ("supervision", ("督办", "Supervision")), ("reports", "reports"), ("rules", "rules"), ("search", "search"),
    ("open-data", "open_data"), ("submit", "submit"), ("about", "about"))


def _shell_nav() -> list[ShellPage]:
    """Return the shell's pages with their titles in both languages (no bodies:
    mkdocs builds them around a mark)."""
    return [ShellPage(slug, title if isinstance(title, tuple) else (t(title, "zh"), t(title, "en")), ("", ""))
            for slug, title in SHELL]


def _shell_bodies(site: pg.Site, views, city, dept_cards, periods, shard_sizes: dict[str, int], as_of, min_cases,
                  rules, extra, field_docs: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Return each shell page's body in both languages, by slug (``views``: newest first;
    ``shard_sizes``: the petitions in each search shard)."""
    latest = views[:10]
    overdue = sorted((v for v in views if v["status"] == "overdue"), key=lambda v: (-v["days_overdue"], v["id"]))
    dept_rows = sorted(dept_cards.items())
    ranked = sorted(((d, c) for d, c in dept_rows if c.ranked), key=lambda dc: (dc[1].rank or 0, dc[0]))
    unranked = [(d, c) for d, c in dept_rows if not c.ranked]
    levels = []
    # Every overdue case appears once, under its escalation level; a case past due
    # that has reached no level (or only the reminder) is listed as plain overdue.
    for level in ("accountability", "supervision", "notice", "reminder", None):
        rows = [v for v in overdue if v["escalation"] == level]
        levels.append((level or "overdue", rows[:50], len(rows)))
    # Counted in C (Counter over itemgetter), not in a loop of dict updates: 100,000 views.
    counts: dict[str, Counter] = {
        "status": Counter(map(itemgetter("status"), views)),
        "dept": Counter(map(lambda h: h or "unassigned", map(itemgetter("holder"), views))),
        "cat": Counter(map(itemgetter("category"), views)),
        "month": Counter(map(itemgetter("month"), views))}
    counts["status"].update(v["escalation"] for v in overdue if v["escalation"])
    has_form = "partials/submit_form.html" in site.env.list_templates()
    body = site.shell_body
    pages = {
        "": body("home.html", city=city, latest=latest, most_overdue=overdue[:10], dept_rows=dept_rows,
                 as_of=as_of, min_cases=min_cases),
        "petitions": _both(site, "petitions.html", lambda lang: dict(
            total=len(views), statuses=sorted(counts["status"].items()),
            by_dept=[(d, pg.dept_label(site.depts, None if d == "unassigned" else d, lang), n)
                     for d, n in sorted(counts["dept"].items())],
            by_cat=sorted(counts["cat"].items()), by_month=sorted(counts["month"].items(), reverse=True))),
        "departments": body("departments.html", dept_rows=dept_rows, as_of=as_of, min_cases=min_cases),
        "ranking": body("ranking.html", ranked=ranked, unranked=unranked, as_of=as_of, min_cases=min_cases),
        "supervision": body("supervision.html", levels=levels, overdue_total=len(overdue), as_of=as_of),
        "reports": body("reports.html", groups=[(k, periods[k]) for k in ("year", "month", "week")]),
        "rules": rulespage.bodies(site, rules, min_cases),
        "search": body("search.html", choices=search.choices(shard_sizes),
                       labels={lang: search.ui_labels(site.depts, lang) for lang in LANGS}),
        "open-data": body("open_data.html", as_of=as_of, files=[
            ("export.json", "JSON", ("与 wenzheng export 命令的输出相同：全部诉求及其状态、全部考核指标",
                                     "the same as the wenzheng export command: every petition with its state, "
                                     "every scorecard")),
            ("cases.jsonl", "JSON Lines", ("一行一件诉求", "one petition per line")),
            ("cases.csv", "CSV", ("一行一件诉求", "one petition per row")),
            ("events.jsonl", "JSON Lines", ("一行一个办理事件", "one event per line")),
            ("events.csv", "CSV", ("一行一个办理事件", "one event per row")),
            ("scorecards.json", "JSON", ("全市及各部门考核指标", "city and department scorecards")),
            ("scorecards.csv", "CSV", ("一行一个部门一个统计期", "one department and period per row"))],
            field_docs=field_docs),
        "submit": body("submit.html", bridge_url=extra.get("bridge_url", ""), has_form=has_form),
        "about": body("about.html", centre_zh=site.depts.centre.name.zh, centre_en=site.depts.centre.name.en),
    }
    return pages


def _field_docs(repo: Path, rev: str, cache: Path) -> dict[str, tuple[str, str]]:
    """Return, by page language, the field documentation of the site's
    downloads as HTML and the language it is written in: docs/export.md, and
    its Chinese version docs/export.zh.md for the Chinese page (the English
    one where that is missing), each the archive's at ``rev`` where it has
    one, else the package's. Kept in ``cache`` by a digest of the Markdown
    (converting it takes a few tenths of a second per build). Links to other
    documents, which the site does not carry, become their names in the
    repository."""
    def doc(name: str) -> str | None:
        own = None if _package_checkout(repo) else gitio.read_file_at(repo, rev, f"docs/{name}")
        if own is not None:
            return own.decode("utf-8")
        path = shipped.path(f"docs/{name}")
        return path.read_text(encoding="utf-8") if path.is_file() else None

    english, chinese = doc("export.md") or "", doc("export.zh.md")
    texts: dict[str, tuple[str, str]] = {}
    for lang, (text, written_in) in (("zh", (chinese, "zh") if chinese is not None else (english, "en")),
                                     ("en", (english, "en"))):
        text = re.sub(r"\[([^\]]+)\]\(([\w./-]+\.md)\)", r"`docs/\2`", text)
        texts[lang] = (text.split("\n", 1)[1] if text.startswith("# ") else text, written_in)
    kept = cache / f"field-docs-{digest(texts)[:16]}.json"
    try:
        return {lang: tuple(pair) for lang, pair in orjson.loads(kept.read_bytes()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    import markdown

    html = {lang: (markdown.markdown(text, extensions=["tables"]), written_in)
            for lang, (text, written_in) in texts.items()}
    for old in cache.glob("field-docs-*"):
        old.unlink(missing_ok=True)
    load.replace_file(kept, orjson.dumps(html))
    return html


def _both(site: pg.Site, template: str, context: Callable[[str], dict]) -> tuple[str, str]:
    return tuple(site.env.get_template(f"shell/{template}").render(
        lang=lang, home=site.home(lang), root=site.base_path, depts=site.depts, repo_url=site.repo_url,
        **context(lang)) for lang in LANGS)  # type: ignore[return-value]
