"""A crash-safe, bounded, append-only spill journal (SQLite in WAL mode).

Entries wait here, in order, while their destination is unreachable, and are replayed
from the oldest when it returns. An entry is removed only after the destination
acknowledged it, so delivery is at-least-once across crashes of either side.

When the journal is full, ``when_full`` decides: ``drop_oldest`` deletes the oldest
entries to make room (each drop counted and logged), ``block`` makes ``append`` wait
until replay frees room (the pipeline then slows down instead of losing events).
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


class Journal:
    """Ordered spill storage shared by one writer and one replayer thread."""

    def __init__(self, path: Path, max_bytes: int, when_full: WhenFull = "drop_oldest") -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.dropped = 0
        self._room = threading.Condition()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "stream TEXT NOT NULL, fields BLOB NOT NULL, blob_key TEXT, blob BLOB, size INTEGER NOT NULL)"
            )
            self._count, self._bytes = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries"
            ).fetchone()
        except sqlite3.Error as error:
            raise SinkError(f"journal '{path}': cannot open: {error}") from error
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return int(self._count)

    @property
    def bytes(self) -> int:
        return int(self._bytes)

    def append(self, entries: list[JournalEntry]) -> None:
        """Store entries at the end, in order, durably (one transaction)."""
        incoming = sum(e.size for e in entries)
        if self.when_full == "block":
            with self._room:
                while self._bytes + incoming > self.max_bytes and self._count:
                    self._room.wait(0.5)
        with self._transaction():
            if self.when_full == "drop_oldest":
                self._drop_oldest_for(incoming)
            self._db.executemany(
                "INSERT INTO entries (stream, fields, blob_key, blob, size) VALUES (?, ?, ?, ?, ?)",
                [(e.stream, e.fields, e.blob_key, e.blob, e.size) for e in entries],
            )
            self._count += len(entries)
            self._bytes += incoming

    def oldest(self, limit: int) -> list[tuple[int, JournalEntry]]:
        """Up to ``limit`` entries from the front, with their ids for ``remove_through``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, stream, fields, blob_key, blob FROM entries ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [(row[0], JournalEntry(row[1], row[2], row[3], row[4])) for row in rows]

    def remove_through(self, last_id: int) -> None:
        """Delete every entry up to and including ``last_id`` (they were delivered)."""
        with self._transaction():
            count, size = self._db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries WHERE id <= ?", (last_id,)
            ).fetchone()
            self._db.execute("DELETE FROM entries WHERE id <= ?", (last_id,))
            self._count -= count
            self._bytes -= size
        with self._room:
            self._room.notify_all()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _drop_oldest_for(self, incoming: int) -> None:
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
            self._count -= dropped_count
            self._bytes -= dropped_bytes
            self.dropped += dropped_count
            log.error("journal '%s' is full (%d bytes): dropped the %d oldest entries",
                      self.path, self.max_bytes, dropped_count)
