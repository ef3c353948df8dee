"""The publishing worker: outbox items to batches, batches to pull requests.

Each ``step`` does a bounded amount of work and says how long to sleep. The
order matters for crash safety: a batch (with its branch name) is committed
to the outbox before the forge is called, so after a crash the same batch is
published again under the same branch, and the provider finds what the
earlier attempt made instead of making a second pull request.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

import httpx

import re

from generator.records import PETITION_ID_RE

from .compose import batch_change, renumbered_petition
from .outbox import Outbox
from .providers import ForgeError, ForgeUnavailable, Provider

log = logging.getLogger("wenzheng.bridge.worker")


class Worker:
    def __init__(self, cfg, provider: Provider, clock: Callable[[], float],
                 stop: threading.Event | None = None):
        self.cfg = cfg
        self.provider = provider
        self.clock = clock
        self.stop = stop or threading.Event()
        self.outbox: Outbox | None = None
        self._next_poll = 0.0
        self._next_purge = 0.0
        self._next_cleanup = 0.0
        self._next_id_check = 0.0
        self._listed: dict[int, dict[str, str]] = {}  # main's petitions by year, listed once a step
        self._floor_synced = False
        self.published_batches = 0

    def branch_name(self, instance: str, batch_id: int) -> str:
        return f"{self.cfg.forge_branch_prefix}{instance}-{batch_id:06d}"

    def sync_floor(self, outbox: Outbox) -> None:
        """Make petition ids continue after the highest id on main."""
        for year, highest in self.provider.highest_ids().items():
            outbox.raise_floor(year, highest)
        self._floor_synced = True

    def run(self) -> None:
        """Publish until ``stop`` is set."""
        self.outbox = Outbox(self.cfg.database, self.cfg.sqlite_synchronous)
        try:
            while not self.stop.is_set():
                try:
                    delay = self.step(self.clock())
                except ForgeUnavailable as exc:
                    log.warning("forge unavailable", extra={"fields": {"error": str(exc),
                                                                      "retry_after": exc.retry_after}})
                    delay = exc.retry_after
                except Exception:  # keep publishing whatever one batch did
                    log.exception("worker step failed")
                    delay = 5.0
                self.stop.wait(delay)
        finally:
            self.outbox.close()

    def step(self, now: float) -> float:
        """Do one round of work; return the seconds to wait before the next."""
        ob = self.outbox
        assert ob is not None
        if not self._floor_synced:
            self.sync_floor(ob)
        self._listed = {}
        for batch in ob.batches("pending"):
            self._publish(ob, batch)
        made = self._make_batches(ob, now)
        for batch in made:
            self._publish(ob, batch)
        if now >= self._next_poll:
            check_ids = now >= self._next_id_check
            if check_ids:
                self._next_id_check = now + self.cfg.forge_id_check_seconds
            self._poll(ob, check_ids)
            self._next_poll = now + self.cfg.forge_poll_seconds
        if self.cfg.forge_cleanup_seconds and now >= self._next_cleanup:
            self._next_cleanup = now + self.cfg.forge_cleanup_seconds
            deleted = self.cleanup_branches(ob)
            if deleted:
                log.info("branches cleaned up", extra={"fields": {"count": len(deleted)}})
        if now >= self._next_purge:
            purged = ob.purge_contacts(now)
            if purged:
                log.info("contacts purged", extra={"fields": {"count": purged}})
            self._next_purge = now + 3600
        if made:
            return 0.0
        age = ob.oldest_queued_age(now)
        if age is None:
            return 0.2
        return max(0.05, min(1.0, self.cfg.forge_batch_max_wait_seconds - age))

    def _make_batches(self, ob: Outbox, now: float) -> list:
        limit = self.cfg.forge_batch_max_items if self.cfg.forge_batch_enabled else 1
        queued = ob.queued(limit)
        if not queued:
            return []
        if self.cfg.forge_batch_enabled and len(queued) < limit:
            age = ob.oldest_queued_age(now) or 0.0
            if age < self.cfg.forge_batch_max_wait_seconds:
                return []
        instance = ob.instance_id()
        # One folder may appear once per batch (a petition and its rating never
        # share one, since a rating needs the petition closed on main).
        return [ob.make_batch([i.seq for i in queued], lambda bid: self.branch_name(instance, bid), now)]

    def claim_ids(self, ob: Outbox, batch):
        """Make sure no petition of a pending batch takes an id already on
        main, and return the batch (moved to a new branch if any was renumbered).

        Another channel (the centre's hotline entries, an import) may have
        added petitions since the ids were allocated. The batch has never been
        merged, so any of its ids on main (in any month's folder) was taken by
        someone else: those petitions get the next free ids before the pull
        request is opened. Ids taken after that are found by
        :meth:`_reclaim_open`; the pull-request check refuses them meanwhile.
        """
        taken = self._taken_on_main(ob, [batch])
        if not taken.get(batch.id):
            return batch
        return self._renumber(ob, batch, taken[batch.id], "before publishing")

    def _taken_on_main(self, ob: Outbox, batches: list) -> dict[int, list[int]]:
        """Return {batch id: item seqs} of the unmerged petitions whose ids are
        on main (listing each year once a step), and raise the id floor past main's."""
        listed = self._listed
        taken: dict[int, list[int]] = {}
        for batch in batches:
            for item in ob.batch_items(batch.id):
                m = PETITION_ID_RE.match(item.petition_id)
                if item.kind != "petition" or not m:
                    continue
                year = int(m["year"])
                if year not in listed:
                    listed[year] = self.provider.petition_folders(year)
                    seqs = [int(PETITION_ID_RE.match(i)["seq"]) for i in listed[year] if PETITION_ID_RE.match(i)]
                    ob.raise_floor(year, max(seqs, default=0))
                if item.petition_id in listed[year]:
                    taken.setdefault(batch.id, []).append(item.seq)
        return taken

    def _renumber(self, ob: Outbox, batch, taken: list[int], when: str):
        base = re.sub(r"-r\d+$", "", batch.branch)
        tries = re.search(r"-r(\d+)$", batch.branch)
        branch = f"{base}-r{int(tries[1]) + 1 if tries else 1}"
        changed = ob.renumber(batch.id, taken, renumbered_petition, branch)
        log.warning(f"petition ids taken on main by another channel; renumbered {when}",
                    extra={"fields": {"batch": batch.id, "branch": branch,
                                      "renumbered": [f"{a}->{b}" for a, b in changed]}})
        return ob.batch(batch.id)

    def _reclaim_open(self, ob: Outbox, open_batches: list) -> None:
        """Renumber the petitions of open, unmerged pull requests whose ids
        another channel has since put on main (the pull-request check refuses
        such a pull request), publish each such batch again as a new pull
        request, and close the old one."""
        from .providers import PullRequest
        taken = self._taken_on_main(ob, open_batches)
        for batch in open_batches:
            if not taken.get(batch.id):
                continue
            # Merged since the state was polled? Then the ids on main are its own.
            pr = PullRequest(batch.pr_number or 0, batch.pr_url or "")
            files = tuple((i.path, i.content) for i in ob.batch_items(batch.id))
            if self.provider.pull_request_state(pr, batch.branch, files) != "open":
                continue
            self._renumber(ob, batch, taken[batch.id], "after the pull request was opened")
            try:
                self.provider.close_pull_request(pr, batch.branch)
            except ForgeError as exc:  # cleanup_branches removes the old branch later
                log.error("could not close a superseded pull request", extra={"fields": {
                    "batch": batch.id, "branch": batch.branch, "error": str(exc)}})

    def _publish(self, ob: Outbox, batch) -> None:
        batch = self.claim_ids(ob, batch)
        items = ob.batch_items(batch.id)
        change = batch_change(batch.branch, items, self.cfg.forge_label, self.cfg.forge_moderation_label)
        try:
            pr = self.provider.publish(change)
        except ForgeUnavailable as exc:
            ob.batch_failed(batch.id, str(exc))
            raise
        except ForgeError as exc:
            ob.batch_failed(batch.id, str(exc))
            log.error("forge refused a batch", extra={"fields": {"batch": batch.id, "error": str(exc)}})
            raise ForgeUnavailable(str(exc), min(self.cfg.forge_max_backoff_seconds, 30.0)) from exc
        ob.batch_opened(batch.id, pr.number, pr.url)
        self.published_batches += 1
        log.info("pull request opened", extra={"fields": {
            "batch": batch.id, "branch": batch.branch, "pr": pr.number, "items": len(items)}})

    def _poll(self, ob: Outbox, check_ids: bool = False) -> None:
        from .providers import PullRequest
        # The oldest open pull requests first, a bounded number a round, so
        # polling never crowds out publishing or the forge's budget.
        still_open = []
        for batch in ob.batches("opened")[:50]:
            items = ob.batch_items(batch.id)
            state = self.provider.pull_request_state(PullRequest(batch.pr_number or 0, batch.pr_url or ""),
                                                     batch.branch, tuple((i.path, i.content) for i in items))
            if state == "merged":
                ob.batch_merged(batch.id)
                log.info("pull request merged", extra={"fields": {"batch": batch.id}})
            elif state == "closed":
                ob.batch_closed(batch.id)
                log.info("pull request closed unmerged", extra={"fields": {"batch": batch.id}})
            else:
                still_open.append(batch)
        if check_ids and still_open:
            self._reclaim_open(ob, still_open)
        self._mark_published(ob)

    def _mark_published(self, ob: Outbox) -> None:
        """Mark merged items published once the public site shows them (at
        once when no site is configured: merged on main is then public)."""
        merged = ob.merged_items()
        if not merged:
            return
        if not self.cfg.site_url:
            ob.items_published([i.seq for i in merged])
            return
        done = []
        with httpx.Client(timeout=5.0) as client:
            for item in merged:
                try:
                    resp = client.head(f"{self.cfg.site_url.rstrip('/')}/petitions/{item.petition_id}/")
                except httpx.HTTPError:
                    break
                if resp.status_code == 200:
                    done.append(item.seq)
        ob.items_published(done)

    def cleanup_branches(self, ob: Outbox) -> list[str]:
        """Delete this bridge's branches that no pending or open batch needs
        (left by a merged or closed pull request, or by a lost database);
        return their names."""
        prefix = self.cfg.forge_branch_prefix
        keep = {b.branch for state in ("pending", "opened") for b in ob.batches(state)}
        deleted = []
        for branch in self.provider.bridge_branches(prefix):
            if branch not in keep:
                self.provider.delete_branch(branch)
                deleted.append(branch)
        return deleted


def start_worker(cfg, provider: Provider, clock: Callable[[], float] = time.time) -> tuple[Worker, threading.Thread]:
    """Return a worker running in a daemon thread."""
    worker = Worker(cfg, provider, clock)
    thread = threading.Thread(target=worker.run, name="bridge-worker", daemon=True)
    thread.start()
    return worker, thread
