"""A crash-safe, bounded, append-only spill journal (SQLite in WAL mode).

Entries wait here, in order, while their destination is unreachable, and are replayed
from the oldest when it returns. An entry is removed only after the destination
acknowledged it, so delivery is at-least-once across crashes of either side.

When the journal is full, ``when_full`` decides: ``drop_oldest`` deletes the oldest
entries to make room (each drop counted and logged), ``block`` makes ``append`` wait
until replay frees room (the pipeline then slows down instead of losing events).

A write that fails (full disk, I/O error) is rolled back whole and raises
``SinkError`` naming the journal and the cause; the caller still holds the entries.
The entry and byte counts change only after a transaction committed, and are read
again from the database after any failure, so they always describe what is stored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fiqa_stream.errors import SinkError

log = logging.getLogger(__name__)

WhenFull = Literal["drop_oldest", "block"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One spilled write: a stream entry (its fields) and an optional side blob."""

    stream: str
    fields: bytes
    blob_key: str | None = None
    blob: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.stream) + len(self.fields) + len(self.blob or b"") + len(self.blob_key or "")


@dataclass(slots=True)
class _Change:
    """What one transaction does to the counts; applied only once it committed."""

    count: int = 0
    bytes: int = 0
    dropped: int = 0


class Journal:
    """Ordered spill storage shared by one writer and one replayer thread."""

    def __init__(self, path: Path, max_bytes: int, when_full: WhenFull = "drop_oldest") -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.dropped = 0
        self._room = threading.Condition()
        self._count, self._bytes = 0, 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "stream TEXT NOT NULL, fields BLOB NOT NULL, blob_key TEXT, blob BLOB, size INTEGER NOT NULL)"
            )
            self._read_counts()
        except (sqlite3.Error, OSError) as error:
            raise SinkError(f"journal '{path}': cannot open: {error}") from error
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._count)

    @property
    def bytes(self) -> int:
        return int(self._bytes)

    def has_room(self, incoming: int) -> bool:
        """Whether ``incoming`` bytes fit without dropping or waiting (an empty journal takes anything)."""
        return self._bytes + incoming <= self.max_bytes or not self._count

    def append(self, entries: list[JournalEntry]) -> None:
        """Store entries at the end, in order, durably (one transaction).

        Raises:
            SinkError: the journal could not store them (nothing of them was stored).
        """
        incoming = sum(e.size for e in entries)
        if self.when_full == "block":
            with self._room:
                while not self.has_room(incoming):
                    self._room.wait(0.5)
        with self._transaction("write") as change:
            if self.when_full == "drop_oldest":
                self._drop_oldest_for(incoming, change)
            self._db.executemany(
                "INSERT INTO entries (stream, fields, blob_key, blob, size) VALUES (?, ?, ?, ?, ?)",
                [(e.stream, e.fields, e.blob_key, e.blob, e.size) for e in entries],
            )
            change.count += len(entries)
            change.bytes += incoming
        if change.dropped:
            log.error("journal '%s' is full (%d bytes): dropped the %d oldest entries",
                      self.path, self.max_bytes, change.dropped)

    def oldest(self, limit: int, after: int = 0) -> list[tuple[int, JournalEntry]]:
        """Up to ``limit`` entries from the front (those with an id above ``after``), with
        their ids for ``remove_through``."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, stream, fields, blob_key, blob FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                    (after, limit),
                ).fetchall()
                if not rows and not after and self._count:
                    self._read_counts()  # never report entries that are not there
            except sqlite3.Error as error:
                raise SinkError(f"journal '{self.path}': cannot read: {error}") from error
        return [(row[0], JournalEntry(row[1], row[2], row[3], row[4])) for row in rows]

    def remove_through(self, last_id: int) -> None:
        """Delete every entry up to and including ``last_id`` (they were delivered).

        Raises:
            SinkError: the journal could not delete them (they stay, and are sent again).
        """
        with self._transaction("delete delivered entries") as change:
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries WHERE id <= ?", (last_id,)
            ).fetchone()
            self._db.execute("DELETE FROM entries WHERE id <= ?", (last_id,))
            change.count -= count
            change.bytes -= size
        with self._room:
            self._room.notify_all()

    def recount(self) -> int:
        """The number of entries stored, read from the database (not from memory)."""
        with self._lock:
            try:
                self._read_counts()
            except sqlite3.Error as error:
                raise SinkError(f"journal '{self.path}': cannot read: {error}") from error
        return int(self._count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _read_counts(self) -> None:
        self._count, self._bytes = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[_Change]:
        change = _Change()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield change
                self._db.execute("COMMIT")
            except sqlite3.Error as error:
                self._abandon()
                raise SinkError(f"journal '{self.path}': cannot {doing}: {error}") from error
            except BaseException:
                self._abandon()
                raise
            self._count += change.count
            self._bytes += change.bytes
            self.dropped += change.dropped

    def _abandon(self) -> None:
        """Undo a failed transaction and re-read the counts from what is really stored.

        A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may leave the transaction open or may
        already have rolled it back; only an open one is rolled back here.
        """
        try:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._read_counts()
        except sqlite3.Error as error:
            log.error("journal '%s': cannot roll back or recount after a failed write: %s", self.path, error)

    def _drop_oldest_for(self, incoming: int, change: _Change) -> None:
        excess = self._bytes + incoming - self.max_bytes
        if excess <= 0:
            return
        dropped_count, dropped_bytes, last_id = 0, 0, None
        for row_id, size in self._db.execute("SELECT id, size FROM entries ORDER BY id"):
            if dropped_bytes >= excess:
                break
            dropped_count += 1
            dropped_bytes += size
            last_id = row_id
        if last_id is not None:
            self._db.execute("DELETE FROM entries WHERE id <= ?", (last_id,))
            change.count -= dropped_count
            change.bytes -= dropped_bytes
            change.dropped += dropped_count
