"""The durable outbox: every accepted submission and rating, until it is published.

A submission is committed here (SQLite, WAL mode) before the citizen gets a
receipt. Its petition id is allocated in the same transaction, and the exact
bytes of the file to publish are stored with it, so a retry after a crash
writes the same file again. Each item joins exactly one batch; a batch has a
branch name fixed before the forge is first called, so publishing it again
finds the branch and pull request made last time instead of making new ones.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (year INTEGER PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,                 -- petition | feedback
    idem_key TEXT NOT NULL UNIQUE,      -- form key, or 'feedback:<petition id>'
    receipt_hash TEXT UNIQUE,           -- SHA-256 of the receipt token (petitions)
    petition_id TEXT NOT NULL,
    folder TEXT NOT NULL,
    path TEXT NOT NULL,
    content BLOB NOT NULL,              -- the masked YAML written to git, exactly
    title TEXT NOT NULL,                -- masked public title, for pull-request text
    category TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',     -- comma-separated: masked kinds, review flags (address), no_pow
    created_at TEXT NOT NULL,
    accepted_unix REAL NOT NULL,        -- when the outbox accepted it (batch wait)
    batch_id INTEGER REFERENCES batches(id),
    state TEXT NOT NULL DEFAULT 'queued'  -- queued | batched | opened | merged | published
);
CREATE INDEX IF NOT EXISTS items_by_state ON items(state, seq);
CREATE INDEX IF NOT EXISTS items_by_batch ON items(batch_id);
CREATE INDEX IF NOT EXISTS items_by_petition ON items(petition_id);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    branch TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | opened | merged | closed
    pr_number INTEGER,
    pr_url TEXT,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS contacts (
    petition_id TEXT PRIMARY KEY,
    sealed BLOB NOT NULL,
    expires_at REAL NOT NULL
);
"""

ITEM_STATES = ("queued", "batched", "opened", "merged", "published")


class AlreadyExists(Exception):
    """An item with this idempotency key is already in the outbox."""


@dataclass(frozen=True)
class Item:
    seq: int
    kind: str
    petition_id: str
    folder: str
    path: str
    content: bytes
    title: str
    category: str
    flags: tuple[str, ...]
    created_at: str
    batch_id: int | None
    state: str


@dataclass(frozen=True)
class Batch:
    id: int
    branch: str
    state: str
    pr_number: int | None
    pr_url: str | None
    created_at: float
    attempts: int


@dataclass(frozen=True)
class Receipt:
    """What a citizen's receipt shows: the petition and where it is."""

    petition_id: str
    folder: str
    state: str
    pr_url: str | None
    created_at: str
    rating_state: str | None  # None: not rated; else the feedback item's state
    title: str = ""           # the masked public title, so the citizen sees it is their case


def connect(path: str | Path, synchronous: str = "full") -> sqlite3.Connection:
    """Return a connection to the outbox, creating its tables if needed."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(SCHEMA)
    return conn


def _item(row: sqlite3.Row | tuple) -> Item:
    (seq, kind, petition_id, folder, path, content, title, category, flags,
     created_at, batch_id, state) = row
    return Item(seq, kind, petition_id, folder, path, bytes(content), title, category,
                tuple(f for f in flags.split(",") if f), created_at, batch_id, state)


_ITEM_COLS = ("seq, kind, petition_id, folder, path, content, title, category, flags, "
              "created_at, batch_id, state")


class Outbox:
    """The outbox's operations; one instance per thread (each has its connection)."""

    def __init__(self, path: str | Path, synchronous: str = "full"):
        self.path = str(path)
        self.conn = connect(path, synchronous)

    def close(self) -> None:
        self.conn.close()

    # -- identity --------------------------------------------------------
    def instance_id(self) -> str:
        """Return this outbox's random instance name, made on first use; it
        keeps branch names unique even if a database is ever replaced."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='instance'").fetchone()
        if row:
            return row[0]
        value = secrets.token_hex(3)
        self.conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('instance', ?)", (value,))
        return self.conn.execute("SELECT value FROM meta WHERE key='instance'").fetchone()[0]

    # -- petition ids ----------------------------------------------------
    def raise_floor(self, year: int, highest: int) -> None:
        """Make the next id of ``year`` come after ``highest`` (the highest on main)."""
        self.conn.execute(
            "INSERT INTO counters(year, last) VALUES(?, ?) "
            "ON CONFLICT(year) DO UPDATE SET last = max(last, excluded.last)", (year, highest))

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    # -- accepting -------------------------------------------------------
    def find_by_idem(self, idem_key: str) -> Item | None:
        row = self.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE idem_key=?", (idem_key,)).fetchone()
        return _item(row) if row else None

    def add_petition(self, *, idem_key: str, receipt_hash: str, year: int, render,
                     sealed_contact: bytes | None, contact_expires_at: float, now: float) -> Item:
        """Allocate the next id of ``year``, store the petition ``render(id)``
        gives back (folder, path, content, title, category, flags, created_at),
        and its sealed contact, all in one transaction; return the new item.

        Raises :class:`AlreadyExists` when ``idem_key`` was used before.
        """
        [(ok, value)] = self.run_group([lambda: self.insert_petition(
            idem_key=idem_key, receipt_hash=receipt_hash, year=year, render=render,
            sealed_contact=sealed_contact, contact_expires_at=contact_expires_at, now=now)])
        if not ok:
            raise value
        return value

    def run_group(self, operations: list) -> list[tuple[bool, object]]:
        """Run many operations in one transaction (one disk sync for all: group
        commit), each in its own savepoint so one failing does not undo the
        others; return (succeeded, result or exception) for each."""
        conn = self.conn
        results: list[tuple[bool, object]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for operation in operations:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, operation()))
                    conn.execute("RELEASE op")
                except Exception as exc:  # reported to that operation's caller alone
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    def insert_petition(self, *, idem_key: str, receipt_hash: str, year: int, render,
                        sealed_contact: bytes | None, contact_expires_at: float, now: float) -> Item:
        """The body of :meth:`add_petition`, for use inside :meth:`run_group`."""
        conn = self.conn
        if conn.execute("SELECT 1 FROM items WHERE idem_key=?", (idem_key,)).fetchone():
            raise AlreadyExists(idem_key)
        conn.execute("INSERT INTO counters(year, last) VALUES(?, 0) ON CONFLICT(year) DO NOTHING", (year,))
        seq_no = conn.execute("UPDATE counters SET last = last + 1 WHERE year=? RETURNING last",
                              (year,)).fetchone()[0]
        petition_id = f"{year}-{seq_no:06d}"
        folder, path, content, title, category, flags, created_at = render(petition_id)
        cur = conn.execute(
            "INSERT INTO items(kind, idem_key, receipt_hash, petition_id, folder, path, content, "
            "title, category, flags, created_at, accepted_unix) "
            "VALUES('petition', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (idem_key, receipt_hash, petition_id, folder, path, content, title, category,
             ",".join(flags), created_at, now))
        if sealed_contact is not None:
            conn.execute("INSERT INTO contacts(petition_id, sealed, expires_at) VALUES(?, ?, ?)",
                         (petition_id, sealed_contact, contact_expires_at))
        return self.item(cur.lastrowid)

    def renumber(self, batch_id: int, seqs: list[int], rewrite, branch: str) -> list[tuple[str, str]]:
        """Give the petitions ``seqs`` of a pending or opened (unmerged) batch
        new ids (the next of their year), rewriting each with ``rewrite(content,
        new id)`` -> (path, content), and make the batch pending again on
        ``branch`` (the old branch, pushed or opened, holds the old ids); all in
        one transaction. Return (old id, new id) pairs. Receipts follow, as
        they point at the item."""
        conn = self.conn
        changed = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for seq in seqs:
                row = conn.execute("SELECT petition_id, content FROM items WHERE seq=? AND batch_id=? "
                                   "AND kind='petition' AND state IN ('batched', 'opened')",
                                   (seq, batch_id)).fetchone()
                if row is None:
                    raise RuntimeError(f"item {seq} is not an unmerged petition of batch {batch_id}")
                old, content = row[0], bytes(row[1])
                year = int(old.split("-")[0])
                seq_no = conn.execute("UPDATE counters SET last = last + 1 WHERE year=? RETURNING last",
                                      (year,)).fetchone()[0]
                new = f"{year}-{seq_no:06d}"
                path, new_content = rewrite(content, new)
                conn.execute("UPDATE items SET petition_id=?, folder=?, path=?, content=? WHERE seq=?",
                             (new, path.rsplit("/", 1)[0], path, new_content, seq))
                conn.execute("UPDATE contacts SET petition_id=? WHERE petition_id=?", (new, old))
                changed.append((old, new))
            moved = conn.execute("UPDATE batches SET branch=?, state='pending', pr_number=NULL, pr_url=NULL "
                                 "WHERE id=? AND state IN ('pending', 'opened')", (branch, batch_id)).rowcount
            if moved != 1:
                raise RuntimeError(f"batch {batch_id} is neither pending nor opened")
            conn.execute("UPDATE items SET state='batched' WHERE batch_id=? AND state='opened'", (batch_id,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return changed

    def add_feedback(self, *, petition_id: str, folder: str, path: str, content: bytes,
                     flags: Iterable[str], created_at: str, now: float) -> Item:
        """Store a rating's feedback event; raise :class:`AlreadyExists` if the
        petition was rated before."""
        try:
            cur = self.conn.execute(
                "INSERT INTO items(kind, idem_key, petition_id, folder, path, content, title, "
                "category, flags, created_at, accepted_unix) "
                "VALUES('feedback', ?, ?, ?, ?, ?, '', 'feedback', ?, ?, ?)",
                (f"feedback:{petition_id}", petition_id, folder, path, content, ",".join(flags),
                 created_at, now))
        except sqlite3.IntegrityError as exc:
            raise AlreadyExists(petition_id) from exc
        return self.item(cur.lastrowid)

    # -- reading ---------------------------------------------------------
    def item(self, seq: int) -> Item:
        return _item(self.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE seq=?", (seq,)).fetchone())

    def receipt(self, receipt_hash: str) -> Receipt | None:
        """Return the receipt for a hashed receipt token, or None."""
        row = self.conn.execute(
            "SELECT i.petition_id, i.folder, i.state, b.pr_url, i.created_at, i.title FROM items i "
            "LEFT JOIN batches b ON b.id = i.batch_id WHERE i.receipt_hash=?", (receipt_hash,)).fetchone()
        if not row:
            return None
        rated = self.conn.execute("SELECT state FROM items WHERE idem_key=?",
                                  (f"feedback:{row[0]}",)).fetchone()
        return Receipt(row[0], row[1], row[2], row[3], row[4], rated[0] if rated else None, row[5])

    def counts(self) -> dict[str, int]:
        """Return how many items are in each state."""
        counts = {state: 0 for state in ITEM_STATES}
        for state, n in self.conn.execute("SELECT state, count(*) FROM items GROUP BY state"):
            counts[state] = n
        return counts

    def batch_counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT state, count(*) FROM batches GROUP BY state").fetchall())

    def oldest_queued_age(self, now: float) -> float | None:
        row = self.conn.execute("SELECT min(accepted_unix) FROM items WHERE state='queued'").fetchone()
        return None if row[0] is None else now - row[0]

    # -- batching --------------------------------------------------------
    def queued(self, limit: int) -> list[Item]:
        rows = self.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE state='queued' ORDER BY seq LIMIT ?",
                                 (limit,)).fetchall()
        return [_item(r) for r in rows]

    def make_batch(self, seqs: list[int], branch_for, now: float) -> Batch:
        """Put queued items into a new batch whose branch is ``branch_for(batch id)``."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute("INSERT INTO batches(branch, created_at) VALUES(?, ?)",
                               (f"pending-{secrets.token_hex(8)}", now))
            batch_id = cur.lastrowid
            conn.execute("UPDATE batches SET branch=? WHERE id=?", (branch_for(batch_id), batch_id))
            marks = ",".join("?" * len(seqs))
            changed = conn.execute(
                f"UPDATE items SET batch_id=?, state='batched' WHERE state='queued' AND seq IN ({marks})",
                (batch_id, *seqs)).rowcount
            if changed != len(seqs):
                raise RuntimeError("an item was batched twice; refusing to publish it again")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return self.batch(batch_id)

    def batch(self, batch_id: int) -> Batch:
        row = self.conn.execute("SELECT id, branch, state, pr_number, pr_url, created_at, attempts "
                                "FROM batches WHERE id=?", (batch_id,)).fetchone()
        return Batch(*row)

    def batches(self, state: str) -> list[Batch]:
        rows = self.conn.execute("SELECT id, branch, state, pr_number, pr_url, created_at, attempts "
                                 "FROM batches WHERE state=? ORDER BY id", (state,)).fetchall()
        return [Batch(*r) for r in rows]

    def batch_items(self, batch_id: int) -> list[Item]:
        rows = self.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE batch_id=? ORDER BY seq",
                                 (batch_id,)).fetchall()
        return [_item(r) for r in rows]

    def batch_failed(self, batch_id: int, error: str) -> None:
        self.conn.execute("UPDATE batches SET attempts = attempts + 1, last_error=? WHERE id=?",
                          (error[:500], batch_id))

    def batch_opened(self, batch_id: int, number: int, url: str) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("UPDATE batches SET state='opened', pr_number=?, pr_url=?, last_error=NULL "
                              "WHERE id=?", (number, url, batch_id))
            self.conn.execute("UPDATE items SET state='opened' WHERE batch_id=?", (batch_id,))

    def batch_merged(self, batch_id: int) -> None:
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("UPDATE batches SET state='merged' WHERE id=?", (batch_id,))
            self.conn.execute("UPDATE items SET state='merged' WHERE batch_id=? AND state='opened'", (batch_id,))

    def batch_closed(self, batch_id: int) -> None:
        """A pull request was closed without merging (the centre rejected it)."""
        self.conn.execute("UPDATE batches SET state='closed' WHERE id=?", (batch_id,))

    def items_published(self, seqs: list[int]) -> None:
        if seqs:
            marks = ",".join("?" * len(seqs))
            self.conn.execute(f"UPDATE items SET state='published' WHERE seq IN ({marks})", seqs)

    def merged_items(self, limit: int = 500) -> list[Item]:
        rows = self.conn.execute(f"SELECT {_ITEM_COLS} FROM items WHERE state='merged' ORDER BY seq LIMIT ?",
                                 (limit,)).fetchall()
        return [_item(r) for r in rows]

    # -- personal data -----------------------------------------------------
    def sealed_contact(self, petition_id: str) -> bytes | None:
        row = self.conn.execute("SELECT sealed FROM contacts WHERE petition_id=?", (petition_id,)).fetchone()
        return bytes(row[0]) if row else None

    def purge_contacts(self, now: float) -> int:
        """Delete sealed contacts past their retention; return how many."""
        return self.conn.execute("DELETE FROM contacts WHERE expires_at <= ?", (now,)).rowcount
