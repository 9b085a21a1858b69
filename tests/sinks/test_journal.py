"""The spill journal on failing storage: a full database, a full disk, a read-only database.

Every failure is real: SQLite's ``max_page_count`` gives real SQLITE_FULL errors on any
disk, ``query_only`` real SQLITE_READONLY errors, and a 2 MB tmpfs (where mounting is
allowed) real ENOSPC, which SQLite reports at COMMIT.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from fiqa_stream.errors import SinkError
from fiqa_stream.sinks.journal import Journal, JournalEntry


def entry(n: int, size: int = 20_000) -> JournalEntry:
    return JournalEntry("fiqa:bestshots", n.to_bytes(4, "big") + os.urandom(size))


def stored(path: Path) -> list[int]:
    """The entry numbers in the journal file, read with a connection of the test's own."""
    with sqlite3.connect(path) as db:
        rows = [int.from_bytes(fields[:4], "big") for (fields,) in db.execute("SELECT fields FROM entries ORDER BY id")]
    db.close()
    return rows


def cap_pages(journal: Journal, pages: int) -> None:
    """Limit the journal's database to ``pages`` pages (a per-connection setting)."""
    journal._db.execute(f"PRAGMA max_page_count = {pages}")  # noqa: SLF001 - the only way to reach it


def read_only(journal: Journal, on: bool) -> None:
    journal._db.execute(f"PRAGMA query_only = {int(on)}")  # noqa: SLF001 - the only way to reach it


def append_until_full(journal: Journal, limit: int = 500) -> tuple[list[int], SinkError]:
    """Appends entries one by one until the journal refuses one; the numbers it took, and the error."""
    taken: list[int] = []
    for n in range(limit):
        try:
            journal.append([entry(n)])
        except SinkError as error:
            return taken, error
        taken.append(n)
    raise AssertionError(f"the journal took {limit} entries without filling up")


def fill(disk: Path, leave: int) -> Path:
    """A file that takes all of ``disk`` but ``leave`` bytes; delete it to free the space."""
    stats = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


def test_a_write_the_full_database_refuses_names_the_journal_and_stores_nothing_of_it(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, max_bytes=1 << 30)
    cap_pages(journal, 60)
    taken, error = append_until_full(journal)
    assert str(error) == f"journal '{path}': cannot write: database or disk is full"
    assert isinstance(error.__cause__, sqlite3.OperationalError)
    assert taken and stored(path) == taken
    assert len(journal) == journal.recount() == len(taken)
    journal.close()


def test_a_write_that_fails_after_dropping_the_oldest_leaves_them_and_the_counts_as_stored(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, max_bytes=100_000, when_full="drop_oldest")
    for n in range(4):
        journal.append([entry(n)])
    before_bytes = journal.bytes
    cap_pages(journal, journal._db.execute("PRAGMA page_count").fetchone()[0])  # noqa: SLF001 - no room for more
    with pytest.raises(SinkError, match="cannot write: database or disk is full"):
        journal.append([entry(10, size=30_000)])  # drops entry 0 first, then fails
    assert stored(path) == [0, 1, 2, 3]
    assert len(journal) == 4 and journal.bytes == before_bytes and journal.dropped == 0
    cap_pages(journal, 1_000_000)
    journal.append([entry(10, size=30_000)])
    assert stored(path) == [1, 2, 3, 10] and len(journal) == journal.recount() == 4 and journal.dropped == 1
    journal.close()


def test_a_delete_the_database_refuses_keeps_the_entries_and_the_counts(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path, max_bytes=1 << 30)
    journal.append([entry(n) for n in range(5)])
    [(first, _), (second, _)] = journal.oldest(2)
    read_only(journal, True)
    with pytest.raises(SinkError, match=f"journal '{path}': cannot delete delivered entries: .*readonly"):
        journal.remove_through(second)
    assert len(journal) == 5 and stored(path) == [0, 1, 2, 3, 4]
    read_only(journal, False)
    journal.remove_through(second)
    assert len(journal) == journal.recount() == 3 and stored(path) == [2, 3, 4]
    assert [ident for ident, _ in journal.oldest(10, after=first)][0] > second
    journal.close()


def test_enospc_injected_into_the_journal_fails_the_commit_and_the_counts_follow_the_database(
    tiny_disk: Path,
) -> None:
    path = tiny_disk / "j.sqlite3"
    journal = Journal(path, max_bytes=1 << 30)
    filler = fill(tiny_disk, leave=400_000)
    taken, error = append_until_full(journal)
    assert str(error) == f"journal '{path}': cannot write: database or disk is full"
    assert len(journal) == journal.recount() == len(taken) and stored(path) == taken
    last_id = journal.oldest(len(taken))[-1][0]
    with pytest.raises(SinkError, match="cannot delete delivered entries: database or disk is full"):
        journal.remove_through(last_id)  # in WAL mode a delete needs space too
    assert len(journal) == len(taken) and stored(path) == taken
    filler.unlink()  # space freed
    journal.remove_through(last_id)
    journal.append([entry(1000)])
    assert stored(path) == [1000] and len(journal) == journal.recount() == 1
    journal.close()
