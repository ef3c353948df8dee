"""Build the Pagefind search index, one shard per month of receipt (five days
of a busy recent month), from compact records rather than the rendered pages.

Pagefind's indexer holds a whole index in memory and every query downloads the
index's metadata, which grows with the page count (about 7 bytes a page); a
shard per month keeps both bounded (about 16,000 petitions a month in a large
city) and a one-reply change reindexes one shard. Pagefind takes about a
millisecond a petition, so a busy recent month (:data:`SPLIT_ABOVE`) is split
by day of receipt into six parts of five days (the last: the 26th on): a reply
reindexes a sixth of the month, and a query on the month merges its six. Older
months stay whole (each shard run
also costs Pagefind about 0.4 s); when a month stops being recent, it is
indexed whole once. Each petition is handed to
Pagefind as a small HTML record holding only what is searched (title, facts,
text, replies) and the filters, not the 13 KB page with its navigation: the
indexer is about four times faster on them. Shards are indexed by two Pagefind
processes at a time, while the pages are being rendered.

The search page offers a year (its month shards searched together, through
Pagefind's ``mergeIndex``) when the year is small enough for the download to
stay at a few hundred kilobytes, else each month on its own; newest first.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import marshal
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pagefind_bin_extended

from generator.records import CATEGORIES
from generator.render.i18n import t
from generator.render.view import SITE_STATUSES

BINARY = Path(pagefind_bin_extended.__file__).parent / "pagefind_extended"
_VERSION = importlib.metadata.version("pagefind_bin_extended")  # a new Pagefind reindexes every shard
# A year with more petitions than this is searched month by month: merging its
# shards would download every month's metadata for one query.
YEAR_SEARCH_LIMIT = 20_000


# A recent month (``now``'s or the one before) with more petitions than this is
# indexed in six parts by day of receipt (days 1 to 5, 6 to 10, ..., 26 on), so
# that a reply, nearly always to a recent case, reindexes about a sixth of a
# month (in thirds, it took a third more CPU time at 100,000 petitions).
SPLIT_ABOVE = 1_500


def shard_names(views: Sequence[dict[str, Any]], now: datetime) -> list[str]:
    """Return the shard each petition is indexed in: ``YYYY-MM``, its month of
    receipt, or ``YYYY-MM-1`` to ``-6``, the month's part, when the month is
    ``now``'s (local time) or the one before and has more than
    :data:`SPLIT_ABOVE` petitions."""
    recent = (now.strftime("%Y-%m"), (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m"))
    months = list(map(itemgetter("month"), views))
    big = {m for m, n in Counter(m for m in months if m in recent).items() if n > SPLIT_ABOVE}
    if not big:
        return months
    return [f"{m}-{_part(v['received'])}" if m in big else m for m, v in zip(months, views)]


def _part(received: str) -> int:
    """Return the part of its month (1 to 6: days 1 to 5, 6 to 10, ..., 26 on) of
    a local receipt time ``YYYY-MM-DD HH:MM``."""
    return min(6, (int(received[8:10]) + 4) // 5)


def record(view: dict[str, Any], dept_name: Callable[[str | None], str]) -> str:
    """Return the HTML record Pagefind indexes for one petition (Chinese page)."""
    v = view
    parts = [f'<html lang="zh"><body data-pagefind-body><h1>{escape(v["title"])}</h1>',
             f'<span data-pagefind-meta="date:{v["received"]}"></span>',
             f'<span data-pagefind-filter="status:{escape(t(v["status"], "zh"))}"></span>',
             f'<span data-pagefind-filter="year:{v["year"]}"></span>',
             f'<p>{v["id"]} <span data-pagefind-filter="category">{escape(t(v["category"], "zh"))}</span> ',
             f'<span data-pagefind-filter="department">{escape(dept_name(v["holder"]))}</span> ',
             f'{escape(v["district"])} {escape(v["address"])} {escape(v["display_name"])}</p>']
    parts.extend(f"<p>{escape(para)}</p>" for para in v["body"].split("\n") if para.strip())
    for rp in v["replies"]:
        parts.append(f'<p>{escape(dept_name(rp["by"]))} {rp["at"]}</p>')
        parts.extend(f"<p>{escape(para)}</p>" for para in rp["body"].split("\n") if para.strip())
    parts.append("</body></html>")
    return "".join(parts)


def ui_labels(departments: Any, lang: str) -> dict[str, dict[str, str]]:
    """Return what the search page in ``lang`` shows for the names in the index:
    ``names``, each filter's and the date's (:func:`record` names them in
    English, as keys); ``values``, on the English page, the English of each
    filter value, which the one index both languages search holds in Chinese
    (statuses, categories, departments). ``departments``: the archive's
    :class:`generator.records.Departments`."""
    names = {"category": t("category", lang), "department": t("department", lang), "status": t("status", lang),
             "year": t("search_year", lang), "date": t("received_at", lang)}
    values: dict[str, str] = {}
    if lang != "zh":
        values.update((t(key, "zh"), t(key, lang)) for key in SITE_STATUSES + CATEGORIES)
        for d in (departments.centre, *departments.departments.values()):
            values[d.name.zh] = d.name.en
    return {"names": names, "values": values}


@dataclass(frozen=True)
class Choice:
    """One entry of the search page's picker: a label and the shards it searches."""

    label: str
    shards: tuple[str, ...]


def choices(sizes: Mapping[str, int]) -> list[Choice]:
    """Return the search page's choices, newest first, from the number of
    petitions in each shard (:func:`shard_keys`; a shard's name begins with
    the ``YYYY-MM`` its petitions were received in)."""
    by_year: dict[int, dict[str, set[str]]] = {}  # year -> month -> its shards
    petitions: Counter = Counter()
    for shard, size in sizes.items():
        by_year.setdefault(int(shard[:4]), {}).setdefault(shard[:7], set()).add(shard)
        petitions[int(shard[:4])] += size
    out = []
    for year in sorted(by_year, reverse=True):
        months = [(m, tuple(sorted(by_year[year][m], reverse=True))) for m in sorted(by_year[year], reverse=True)]
        if petitions[year] <= YEAR_SEARCH_LIMIT:
            out.append(Choice(str(year), tuple(s for _, shards in months for s in shards)))
        else:
            out.extend(Choice(m, shards) for m, shards in months)
    return out


class Indexer:
    """Indexes changed shards in the background, two Pagefind processes at a time.

    Pagefind writes each shard straight where the build wants it (the site
    writer's pending folder), so its files, one per petition, are written once
    and never read back."""

    def __init__(self, scratch: Path | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="wz-pagefind-", dir=scratch or scratch_dir()))
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.jobs: dict[str, Future] = {}

    def add(self, shard: str, items: Callable[[], list[tuple]], into: Path) -> None:
        """Start indexing ``shard`` into the folder ``into`` from the records
        ``items()`` describes (:func:`job_items`); it is called when the job
        starts, and the records are unpacked in the job's own process."""
        self.jobs[shard] = self.pool.submit(_run, items, self.tmp / shard, shard, into)

    def results(self) -> dict[str, list[str]]:
        """Wait for every shard; return shard -> the paths of its files (relative to its folder)."""
        out = {}
        for shard, job in sorted(self.jobs.items()):
            folder: Path = job.result()
            out[shard] = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        return out

    def close(self) -> None:
        """Stop (after running jobs end) and remove the temporary records."""
        for job in self.jobs.values():
            job.cancel()
        self.pool.shutdown(wait=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


# Pagefind reads each shard's records as files, which are deleted once it has
# run: a shard at a time, about 1,300 to 4,000 files written and deleted. In
# memory (tmpfs) that costs nothing; on an ext4 file system without a journal
# (this benchmark machine) the kernel goes over every recently deleted inode
# each time it creates a file, and 20,000 records written and deleted in five
# shards took 9.7 s of CPU against 0.35 s on tmpfs.
SCRATCH = Path("/dev/shm")
SCRATCH_ROOM = 2 << 30  # bytes free it needs, else the default temporary folder


def scratch_dir(candidate: Path = SCRATCH, room: int = SCRATCH_ROOM) -> str | None:
    """Return the in-memory folder for Pagefind's input when it is there, writable
    and has ``room`` bytes free; else None (the default temporary folder)."""
    try:
        if candidate.is_dir() and os.access(candidate, os.W_OK | os.X_OK) and \
                shutil.disk_usage(candidate).free >= room:
            return str(candidate)
    except OSError:
        pass
    return None


def _run(items: Callable[[], list[tuple]], work: Path, shard: str, into: Path) -> Path:
    """Index the records ``items()`` describes (:func:`job_items`) into ``into``,
    in a process of its own (:mod:`generator.render.pagefind_job`); return ``into``.

    The job goes to the process as a file, and only its standard error comes
    back through a pipe: this thread then waits without Python's interpreter
    lock until the process ends. Fed through standard input, 700 records
    (2.7 MB) went in 4 KB writes, each waiting for the lock: 3 s."""
    work.mkdir(parents=True)
    spec = work / "job.marshal"
    spec.write_bytes(marshal.dumps({"site": str(work / "site"), "into": str(into), "binary": str(BINARY),
                                    "items": items()}))
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the generator package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH")))))
    proc = subprocess.run([sys.executable, "-m", "generator.render.pagefind_job", str(spec)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    shutil.rmtree(work, ignore_errors=True)
    if proc.returncode:
        raise RuntimeError(f"pagefind failed on shard {shard}:\n{proc.stderr.decode(errors='replace')}")
    return into


def shard_keys(made: Sequence[Any], now: datetime) -> dict[str, tuple[str, list[Any]]]:
    """Return shard -> (digest of its records, its cases), from the cases'
    :class:`generator.render.products.Products` (each record by its digest:
    the records themselves are unpacked only for a shard indexed again,
    :func:`records`)."""
    grouped: dict[str, list[Any]] = {}
    for shard, p in zip(shard_names([p.lite for p in made], now), made):
        grouped.setdefault(shard, []).append(p)
    return {shard: (_records_digest(members), members) for shard, members in sorted(grouped.items())}


def job_items(members: Sequence[Any], payloads: Any) -> list[tuple[str, str, bytes, str, str]]:
    """Return what :mod:`generator.render.pagefind_job` needs to write a shard's
    records: each case's id, folder, and its payload or where it is kept
    (:meth:`generator.render.products.PayloadStore.sources`)."""
    return [(p.id, p.lite["folder"], *where) for p, where in zip(members, payloads.sources(members))]


def _records_digest(members: Sequence[Any]) -> str:
    h = hashlib.blake2b(_VERSION.encode(), digest_size=16)
    h.update("".join([f"\0{p.id}\0{p.search_key}" for p in members]).encode())
    return h.hexdigest()
