"""Settled cases: states that can no longer change, cached by folder tree.

A case is settled as of ``now`` when it is no longer open (closed, rejected or
withdrawn), none of its clocks is still running or stopped, its deadlines are
not provisional, and ``now`` is at or after its last event. Its state then does
not depend on ``now``: every stage is on time, late or void, decided by times
that are already in the records (see :func:`generator.evaluate.evaluate_case`,
where ``now`` only reaches running clocks and the filtering of later events).
So the state, and everything computed only from the case and its state (the
export record, the site's view of it), can be kept and reused as long as

- the folder's git tree is the same (any new or corrected record changes it),
- ``departments.yaml`` and ``rules.yaml`` are the same (the check's config digest),
- the evaluating code and the calendar data are the same (a digest of the
  modules and of the installed ``chinesecalendar`` and ``holidays`` versions,
  and of the modules that make the kept value, such as the site's page view),
- and ``now`` is not before the case's last event (an export of an earlier
  moment evaluates again).

In a real archive nearly every case is settled (the synthesised 100,000-case
benchmark: 94 %), so a warm export evaluates only the open few.

The cache lives next to the check's (``.git/wenzheng-cache``) in the same
sharded pickle files; entries for trees no longer in the archive are dropped
when it is saved after a whole-archive run.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from generator import load
from generator.calendar import library_versions
from generator.evaluate import CaseState
from generator.records import Case

_MODULES = ("records", "evaluate", "rules", "calendar", "export", "metrics", "settled")


def _evaluator_digest(extra: tuple[str, ...] = ()) -> str:
    h = hashlib.sha1(str(load.CACHE_VERSION).encode())
    here = Path(__file__).parent
    for module in _MODULES + extra:
        h.update((here / f"{module.replace('.', '/')}.py").read_bytes())
    for version in library_versions():
        h.update(f"{version};".encode())
    return h.hexdigest()


EVALUATOR_DIGEST = _evaluator_digest()


def last_event_at(case: Case) -> datetime:
    """Return the time of the case's last record (the petition's receipt if none)."""
    at = case.petition.received_at
    for e in case.events:
        if e.at > at:
            at = e.at
    return at


def is_settled(case: Case, state: CaseState, now: datetime) -> bool:
    """Return True when ``state`` (of ``case`` as of ``now``) is the same for every later ``now``."""
    if state.status == "open" or state.provisional:
        return False
    if any(s.current for s in state.stages):
        return False
    return last_event_at(case) <= now


class SettledCache:
    """``(folder, tree id) -> (last event time, value)`` for settled cases.

    ``kind`` names what is kept (``export``: receipt time, scorecard facts and
    export record; ``site``: what the site makes of a case,
    :mod:`generator.render.products`). ``code`` names the further modules
    (``render.products``) that make the kept value: a change to any of them
    is a new cache. :meth:`bind` must be called with the check's config digest
    before use; without a cache directory (a work tree, a bare check) nothing
    is kept.
    """

    def __init__(self, repo: str | Path | None, kind: str, enabled: bool = True, code: tuple[str, ...] = ()):
        self.kind = kind
        self.directory = load.cache_dir(repo) if (enabled and repo is not None) else None
        self.store: load.ShardedStore | None = None
        self.code_digest = _evaluator_digest(code) if code else EVALUATOR_DIGEST
        self.hits = 0

    def bind(self, config_digest: str) -> "SettledCache":
        """Use the entries made under this config digest (and this evaluator)."""
        if self.store is None:
            key = hashlib.sha1(f"{config_digest}:{self.code_digest}".encode()).hexdigest()[:16]
            self.store = load.ShardedStore(self.directory, f"settled-{self.kind}-{key}")
        return self

    def get(self, folder: str, tree: str, now: datetime) -> Any | None:
        """Return the value kept for this folder tree, if valid as of ``now``."""
        if self.store is None or self.directory is None:
            return None
        hit = self.store.get((folder, tree))
        if hit is None or hit[0] > now:
            return None
        self.hits += 1
        return hit[1]

    def skipper(self, now: datetime, valid: Callable[[Any], bool] | None = None):
        """Return the check's ``skip_case``: skip reading a case this cache holds
        as of ``now`` (and, with ``valid``, whose kept value it accepts)."""
        kept: dict | None = None  # every entry, looked up once each

        def skip(config_digest: str, folder: str, tree: str) -> bool:
            nonlocal kept
            if kept is None:
                store = self.bind(config_digest).store
                kept = store.everything() if store is not None and self.directory is not None else {}
            hit = kept.get((folder, tree))
            if hit is None or hit[0] > now:
                return False
            self.hits += 1
            return valid is None or valid(hit[1])
        return skip

    def put(self, folder: str, tree: str, last_at: datetime, value: Any) -> None:
        if self.store is not None:
            self.store.put((folder, tree), (last_at, value))

    def save(self, keep: set[tuple[str, str]] | None) -> None:
        """Write what changed; with ``keep`` (every current key), drop the rest."""
        if self.store is not None:
            self.store.save(keep)
            if keep is not None and self.directory is not None:
                # Full page views were kept beside the site's products until
                # the pages came to be written where cases are read.
                for old in self.directory.glob(f"settled-{self.kind}-details-*.pickle"):
                    old.unlink(missing_ok=True)
