"""What the site makes of each case, made once per case and, for settled cases,
kept between builds.

For every case the build needs the same few things: its page view, the digests
that decide whether its page and feed are rewritten, its search record, its
lines of every download (export record, events, CSV rows) and its scorecard
facts. :func:`make` computes them all from the case, where the case is read
(in the check's worker processes, :func:`generator.check.check_archive`'s
``transform``), and :func:`make_and_write` writes the case's own files there
too (its pages and feed, :class:`generator.render.pages.PetitionFiles`), so
the build never carries cases or page views around. For a settled case
(:mod:`generator.settled`) the products do not depend on ``now`` and are kept
by folder tree: the next build takes them instead of reading, checking and
evaluating the case again, as long as the site still holds the case's files
made from the same inputs.
"""

from __future__ import annotations

import hashlib
import pickle
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import orjson

from generator import export as ex
from generator import records as r
from generator.evaluate import CaseState, evaluate_case
from generator.load import replace_file
from generator.metrics import case_facts
from generator.render import search
from generator.render.pages import dept_label, pack_feed_text
from generator.render.view import case_view, days_overdue, shown_events
from generator.render.writer import fast_digest
from generator.rules import Rules
from generator.settled import is_settled, last_event_at

# The modules (besides the evaluator's, generator.settled) whose code makes the
# products: a change to any of them is a new settled cache.
CODE = ("render.products", "render.view", "render.search", "render.i18n")

# What listings, feeds, reports, department pages and the shell read of a case
# (its "lite" view), with the times of its replies and, packed, its
# body and replies cut to feed length (pages.feed_text). Only these: a
# settled case's are unpickled on every build, 100,000 of them at 100,000
# petitions, and the fields only its own page shows (where it came from, its
# address, its closing) cost a tenth of a second each.
FEED_TEXT = 280
LITE_FIELDS = ("id", "title", "category", "received", "received_at", "year", "month", "holder", "status",
               "escalation", "days_overdue", "late_stages", "rating", "handling_hours", "folder", "last_event_at")


class Payload(NamedTuple):
    """The bulky products of a case, needed only when its search shard or its
    month's part of the downloads is made again."""

    search: str  # its Pagefind record
    record: bytes  # its export record (a line of cases.jsonl)
    events_jsonl: bytes
    events_csv: str
    case_csv: str


class Products(NamedTuple):
    id: str
    received_at: datetime
    lite: dict[str, Any]  # with "row_key", the digest of what its listing row shows
    page_key: str
    feed_key: str
    search_key: str  # digest of the search record
    data_key: str  # digest of the four download pieces
    # The Payload, pickled, and its digest. A build that does not need it does
    # not unpack it, and a settled case's is moved to a PayloadStore as soon
    # as the case is made (payload b""), so the build does not hold it.
    payload: bytes
    payload_key: str
    facts: bytes  # its scorecard facts (metrics.case_facts), pickled: read only when its month is summed again
    # Each record's path and the commit that added it, "path\tcommit" lines:
    # one string rather than a tuple of pairs (a dozen objects a case to
    # unpickle, for a check that only a rewritten history needs).
    sources: str
    settled_last: datetime | None  # the last event's time when settled, else None
    files: tuple = ()  # (tag, page keys, feed key) of its own files as written (PetitionFiles.kept)
    reuse_key: str = ""  # an open case's: what its products are made from (reuse_key())


def month_of(folder: str) -> str:
    """Return ``YYYY-MM`` of a petition folder (``petitions/YYYY/MM/<id>``)."""
    parts = folder.split("/")
    return f"{parts[1]}-{parts[2]}"


class PayloadStore:
    """The packed payloads of settled cases, one file per folder month, by
    payload digest, under ``directory/name``.

    The check hands over cases in folder order, so while a whole archive is
    read :meth:`put` keeps one month in memory and writes it out when the next
    begins: the build process holds one month of payloads, not all of them
    (about 4.5 KB a case). A month is read back only when its search shard or
    its part of the downloads is made again (:meth:`unpacked`).
    """

    def __init__(self, directory: Path, name: str):
        self.root = directory
        self.folder = directory / name
        self.name = name
        self._months: dict[str, dict[str, bytes]] = {}  # months being added to
        self._current: str | None = None

    def _path(self, month: str) -> Path:
        return self.folder / f"{month}.pickle"

    def _read(self, month: str) -> dict[str, bytes]:
        try:
            with open(self._path(month), "rb") as fh:
                loaded = pickle.load(fh)
            return loaded if isinstance(loaded, dict) else {}
        except FileNotFoundError:
            return {}

    def put(self, folder: str, key: str, payload: bytes) -> None:
        month = month_of(folder)
        if month != self._current and self._current in self._months:
            self._write(self._current, self._months.pop(self._current))  # the check has moved on
        self._current = month
        if month not in self._months:
            self._months[month] = self._read(month)
        self._months[month][key] = payload

    def _write(self, month: str, entries: dict[str, bytes]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        replace_file(self._path(month), pickle.dumps(entries, protocol=5))

    def unpacked(self, members: Sequence["Products"]) -> list[Payload]:
        """Return the payloads of ``members`` (cases with their payload, or
        settled ones whose payload is here), in order; one month file at a time."""
        out: list[Payload | None] = [None] * len(members)
        wanted: dict[str, list[int]] = {}
        for i, p in enumerate(members):
            if p.payload:
                out[i] = Payload(*pickle.loads(p.payload))
            else:
                wanted.setdefault(month_of(p.lite["folder"]), []).append(i)
        for month, indices in wanted.items():
            entries = self._months.get(month) or self._read(month)
            for i in indices:
                blob = entries.get(members[i].payload_key)
                if blob is None:
                    raise RuntimeError(
                        f"{members[i].lite['folder']}: its kept search record and download lines are missing from "
                        f"{self.folder}; delete {self.root} to rebuild the site's cache")
                out[i] = Payload(*pickle.loads(blob))
        return out  # type: ignore[return-value]

    def sources(self, members: Sequence[Products]) -> list[tuple[bytes, str, str]]:
        """Return where the payload of each of ``members`` is, in order, without
        reading any month file: ``(payload, "", "")`` when it is at hand (an
        open case's, or one of a month being added to), else ``(b"", the
        month's file, its key)`` (:mod:`generator.render.pagefind_job` reads it)."""
        out = []
        for p in members:
            if p.payload:
                out.append((p.payload, "", ""))
                continue
            month = month_of(p.lite["folder"])
            adding = self._months.get(month)
            if adding is not None and p.payload_key in adding:
                out.append((adding[p.payload_key], "", ""))
            else:
                out.append((b"", str(self._path(month)), p.payload_key))
        return out

    def save(self, keep: Mapping[str, set[str]]) -> None:
        """Write the months added to, keeping only the payloads in ``keep``
        (month -> the payload digests of its settled cases); delete the files
        of months with none, and the payloads of other code versions."""
        for month, entries in self._months.items():
            live = keep.get(month, set())
            self._write(month, {k: v for k, v in entries.items() if k in live})
        self._months.clear()
        self._current = None
        if self.folder.is_dir():
            for path in self.folder.glob("*.pickle"):
                if path.stem not in keep:
                    path.unlink(missing_ok=True)
        for other in self.root.glob("payloads-*"):
            if other.is_dir() and other.name != self.name:
                shutil.rmtree(other, ignore_errors=True)


# What a listing row shows of a case: a change to any of them rewrites the
# listing pages the case is on (site_templates/macros.html, case_table).
ROW_FIELDS = ("id", "title", "holder", "status", "escalation", "days_overdue", "received")


def make(case: r.Case, rules: Rules, departments: r.Departments, now: datetime,
         commits: Mapping[str, str], state: CaseState | None = None) -> tuple[Products, dict[str, Any]]:
    """Return the products of ``case`` as of ``now`` (``state``: its state
    then, when evaluated already) and its full page view."""
    if state is None:
        state = evaluate_case(case, rules, now)
    view = case_view(case, rules, now, commits, state)
    holder = (dept_label(departments, view["holder"], "zh"), dept_label(departments, view["holder"], "en"))
    lite = {k: view[k] for k in LITE_FIELDS}
    # The feeds show the text of the newest fifty only: packed, it is unpacked for those.
    lite["reply_at"] = tuple(rp["at"] for rp in view["replies"])
    lite["text"] = pack_feed_text(view["body"][:FEED_TEXT], [rp["body"][:FEED_TEXT] for rp in view["replies"]])
    lite["row_key"] = fast_digest([lite[k] for k in ROW_FIELDS])
    rec = ex.case_record(case, state)
    record = orjson.dumps(rec, option=orjson.OPT_SORT_KEYS)  # as export.record_bytes
    events_jsonl, events_csv, case_csv = ex.event_json_lines(case), ex.event_csv_rows(case), ex.case_csv_row(rec, state)
    sources = "\n".join([f"{path}\t{commits.get(path, '')}" for path in
                         [case.petition.source.path] + [e.source.path for e in case.events]])
    found = search.record(view, lambda d: dept_label(departments, d, "zh"))
    payload = pickle.dumps((found, record, events_jsonl, events_csv, case_csv), protocol=5)
    products = Products(
        id=case.id,
        received_at=case.petition.received_at,
        lite=lite,
        page_key=fast_digest((view, holder)),
        feed_key=fast_digest((view["id"], view["timeline"], view["title"])),
        search_key=hashlib.blake2b(found.encode(), digest_size=16).hexdigest(),
        data_key=hashlib.blake2b(b"\0".join((record, events_jsonl, events_csv.encode(), case_csv.encode())),
                                 digest_size=16).hexdigest(),
        payload=payload,
        payload_key=hashlib.blake2b(payload, digest_size=16).hexdigest(),
        facts=pickle.dumps(case_facts(state, rules.tz), protocol=5),
        sources=sources,
        settled_last=last_event_at(case) if is_settled(case, state, now) else None,
    )
    return products, view


def reuse_key(case: r.Case, state: CaseState, now: datetime, commits: Mapping[str, str]) -> str:
    """Return a digest of everything an open case's products are made from,
    besides the config and the code: its records (their blobs), the commits
    that added them, its state as of ``now``, and what its view takes from
    ``now`` itself (:func:`generator.render.view.days_overdue` and
    :func:`~generator.render.view.shown_events`)."""
    paths = [case.petition.source] + [e.source for e in case.events]
    return fast_digest((case.folder, [(s.path, s.blob, commits.get(s.path, "")) for s in paths], state,
                        days_overdue(state, now), len(shown_events(case, now))))


def make_and_write(case: r.Case, rules: Rules, departments: r.Departments, now: datetime,
                   commits: Mapping[str, str], files: Any,
                   previous: Mapping[str, tuple[str, Products]] | None = None) -> tuple[Products, list[str]]:
    """Return the products of ``case`` as of ``now`` and the paths of its own
    files that :meth:`files.write <generator.render.pages.PetitionFiles.write>`
    wrote (those whose inputs changed).

    ``previous``: the last build's products of the open cases, by folder
    (:class:`OpenProducts`), made under the same config and code. An open
    case is evaluated again as of ``now``, but when its :func:`reuse_key`
    is the one its kept products were made from and the site holds its
    files as made from them, those products are taken as they are: most of
    an open case's state does not change between two builds minutes apart,
    and making its view, export record, CSV rows and search record again
    cost three quarters of its time (about 2.5 of 3.5 CPU s for the 2,100
    open cases of 100,000 petitions)."""
    state = evaluate_case(case, rules, now)
    key = ""
    if previous is not None and not is_settled(case, state, now):
        key = reuse_key(case, state, now, commits)
        got = previous.get(case.folder)
        if got is not None and got[0] == key:
            products = got[1]._replace(files=files.kept(got[1]))
            if files.unchanged(products):
                return products, []
    products, view = make(case, rules, departments, now, commits, state)
    products = products._replace(files=files.kept(products), reuse_key=key)
    return products, files.write(products, view, departments)


class OpenProducts:
    """The products of the last build's open cases, by folder, with the
    :func:`reuse_key` each was made from, kept in one file per config and code
    (``directory/open-products-<inputs>.pickle``; about 6 KB a case, their
    search record and download lines included)."""

    def __init__(self, directory: Path, inputs: str):
        self.path = directory / f"open-products-{inputs}.pickle"
        try:
            loaded = pickle.loads(self.path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
            loaded = {}  # none yet, damaged, or of another version: every open case is made
        self.entries: dict[str, tuple[str, Products]] = loaded if isinstance(loaded, dict) else {}

    def save(self, made: Sequence[Products]) -> None:
        """Keep the open cases among ``made`` (those with a reuse key) in place
        of the last build's; remove the files of other configs and code."""
        now_kept = {p.lite["folder"]: (p.reuse_key, p) for p in made if p.settled_last is None and p.reuse_key}
        old = self.entries
        if now_kept.keys() != old.keys() or any(old[f][0] != k or old[f][1].files != p.files
                                               for f, (k, p) in now_kept.items()):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_file(self.path, pickle.dumps(now_kept, protocol=pickle.HIGHEST_PROTOCOL))
        self.entries = now_kept
        for other in self.path.parent.glob("open-products-*.pickle"):
            if other != self.path:
                other.unlink(missing_ok=True)


def unsettled(made: tuple[Products, Any]) -> bool:
    """The check's ``keep_case``: keep only open cases in the case cache."""
    return made[0].settled_last is None


def same_sources(products: Products, commits: Mapping[str, str]) -> bool:
    """Return True when every record of a kept case was still added by the same
    commit (a rewritten history changes the commits its page links to)."""
    pairs = (line.partition("\t") for line in products.sources.split("\n"))
    return all(commits.get(path, "") == commit for path, _, commit in pairs)
