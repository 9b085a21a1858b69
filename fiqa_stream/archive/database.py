"""The archive index: ``DIR/index.sqlite3`` plus ``DIR/crops/<video>/<track>-<seq>.jpg``.

Tables (one row per video *content*, keyed by its fingerprint):

- ``videos``: path (where the content was last seen), size, mtime, duration, size in
  pixels, frame counts, content fingerprint, status (pending, running, done, partial,
  failed) and error;
- ``tracks``: each face track of a video that produced a best shot, with its first and
  last time and number of scored sightings;
- ``best_shots``: the final best shot of each track: time in the video, box,
  landmarks, quality with its components (JSON), scorer model and crop path.

Consistency after a kill at any moment: a video's tracks and best shots are inserted
in the same transaction that marks it done, so a video is either complete or has no
rows. Its crops are written (atomically, fsynced) before that transaction, so every
committed row points at a whole crop; crops of a video that never committed are
removed when the video is redone.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import ArchiveIndexError
from fiqa_stream.sinks.directory import write_atomically
from fiqa_stream.types import BestShot

log = logging.getLogger(__name__)

INDEX_FILE = "index.sqlite3"
CROPS_DIR = "crops"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    duration REAL,
    width INTEGER,
    height INTEGER,
    fps REAL,
    frames_decoded INTEGER,
    frames_analysed INTEGER,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'partial', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    seconds REAL,
    updated_at TEXT NOT NULL,
    dropped_faces TEXT
);
CREATE INDEX IF NOT EXISTS videos_path ON videos (path);
CREATE TABLE IF NOT EXISTS tracks (
    video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    track_id INTEGER NOT NULL,
    first_seen REAL,
    last_seen REAL,
    sightings INTEGER NOT NULL,
    PRIMARY KEY (video_id, track_id)
);
CREATE TABLE IF NOT EXISTS best_shots (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    frame_index INTEGER NOT NULL,
    time REAL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    landmarks TEXT,
    quality REAL NOT NULL,
    components TEXT NOT NULL,
    model TEXT NOT NULL,
    crop TEXT NOT NULL,
    FOREIGN KEY (video_id, track_id) REFERENCES tracks (video_id, track_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS best_shots_quality ON best_shots (quality);
CREATE INDEX IF NOT EXISTS best_shots_video_time ON best_shots (video_id, time);
"""


class VideoStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"  # indexed as far as the file could be read; error says why not further
    FAILED = "failed"


FINISHED = frozenset({VideoStatus.DONE, VideoStatus.PARTIAL})


@dataclass(frozen=True, slots=True)
class Shot:
    """What the index keeps of one track's final best shot (the event's fields, rounded for storage)."""

    track_id: int
    event_id: str
    frame_index: int
    time: float | None
    first_seen: float | None
    last_seen: float | None
    sightings: int
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...] | None
    quality: float
    components: dict[str, float]
    model: str


@dataclass(frozen=True, slots=True)
class ShotRecord(Shot):
    """A best shot as the analysis of a video produced it, its crop still in memory."""

    crop_jpeg: bytes

    @classmethod
    def of(cls, event: BestShot) -> ShotRecord:
        x1, y1, x2, y2 = event.box
        return cls(
            track_id=event.track_id, event_id=event.event_id, frame_index=event.frame_index, time=event.pts,
            first_seen=event.first_seen, last_seen=event.last_seen, sightings=event.sightings,
            box=(round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)),
            landmarks=event.landmarks, quality=round(event.quality, 6),
            components={name: round(value, 6) for name, value in event.components.items()},
            model=event.model, crop_jpeg=event.crop_jpeg,
        )


@dataclass(frozen=True, slots=True)
class VideoOutcome:
    """What the analysis of one video produced; ``status`` is done, partial or failed."""

    fingerprint: str
    status: VideoStatus
    error: str | None
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames_decoded: int = 0
    frames_analysed: int = 0
    seconds: float = 0.0
    shots: tuple[ShotRecord, ...] = ()
    dropped_faces: str | None = None


@dataclass(frozen=True, slots=True)
class VideoRow:
    id: int
    fingerprint: str
    path: str
    size: int
    mtime_ns: int
    duration: float | None
    width: int | None
    height: int | None
    fps: float | None
    frames_decoded: int | None
    frames_analysed: int | None
    status: VideoStatus
    error: str | None
    attempts: int
    seconds: float | None
    updated_at: str
    #: How many detected faces yielded no best shot and why (stream/drops.py), or None.
    dropped_faces: str | None = None


@dataclass(frozen=True, slots=True)
class ShotRow(Shot):
    """A stored best shot with its video; ``crop`` is the crop's path inside the index folder."""

    video_id: int
    video_path: str
    fingerprint: str
    crop: str


def video_key(fingerprint: str) -> str:
    """The folder name and event-id prefix of a video: its fingerprint's first 16 hex digits."""
    key = fingerprint[:16]
    if len(key) != 16 or any(c not in "0123456789abcdef" for c in key):
        raise ArchiveIndexError(f"invalid content fingerprint {fingerprint!r}")
    return key


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ArchiveIndex(ClosedOnExit):
    """The index database and crop folder of one output directory.

    Only one process writes an index at a time (the ``index`` command's parent);
    readers (``search``, ``report``) may open it while it is being written.
    """

    def __init__(self, folder: Path, *, create: bool = True) -> None:
        self.folder = Path(folder).resolve()
        self.path = self.folder / INDEX_FILE
        if not create and not self.path.is_file():
            raise ArchiveIndexError(
                f"{self.folder}: no archive index here ({INDEX_FILE}); run 'fiqa-stream index' first"
            )
        try:
            if create:
                (self.folder / CROPS_DIR).mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA busy_timeout = 30000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ArchiveIndexError(
                    f"{self.path}: index schema version {version} is newer than this fiqa-stream's ({SCHEMA_VERSION})"
                )
            if 0 < version < 2:
                # Schema 2 says why a video's faces yielded no best shot.
                self._db.execute("ALTER TABLE videos ADD COLUMN dropped_faces TEXT")
                self._db.execute("PRAGMA user_version = 2")
            if create:
                # WAL: readers never block the writer, and a kill never leaves a half transaction.
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as error:
            raise ArchiveIndexError(f"{self.path}: cannot open the archive index: {error}") from error

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                         (key, value, value))

    def cached_fingerprint(self, path: str, size: int, mtime_ns: int) -> str | None:
        """The fingerprint stored for this path when its size and mtime are unchanged, so
        reruns over a large archive need not read every file again."""
        row = self._db.execute(
            "SELECT fingerprint FROM videos WHERE path = ? AND size = ? AND mtime_ns = ?", (path, size, mtime_ns)
        ).fetchone()
        return None if row is None else str(row[0])

    def finished_count(self) -> int:
        statuses = tuple(s.value for s in FINISHED)
        return int(self._db.execute("SELECT COUNT(*) FROM videos WHERE status IN (?, ?)", statuses).fetchone()[0])

    def video(self, fingerprint: str) -> VideoRow | None:
        row = self._db.execute("SELECT * FROM videos WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return None if row is None else _video_row(row)

    def upsert_pending(self, fingerprint: str, path: str, size: int, mtime_ns: int) -> None:
        """Record a video to be (re)analysed; a row left by an earlier run keeps its id."""
        self._db.execute(
            "INSERT INTO videos (fingerprint, path, size, mtime_ns, status, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (fingerprint) DO UPDATE SET path = excluded.path, mtime_ns = excluded.mtime_ns, "
            "status = excluded.status, error = NULL, updated_at = excluded.updated_at",
            (fingerprint, path, size, mtime_ns, VideoStatus.PENDING.value, _now()),
        )

    def move(self, fingerprint: str, path: str, mtime_ns: int) -> None:
        """The same content now lives at ``path`` (its old path is gone)."""
        self._db.execute("UPDATE videos SET path = ?, mtime_ns = ?, updated_at = ? WHERE fingerprint = ?",
                         (path, mtime_ns, _now(), fingerprint))

    def set_status(self, fingerprint: str, status: VideoStatus) -> None:
        attempt = 1 if status is VideoStatus.RUNNING else 0
        self._db.execute("UPDATE videos SET status = ?, attempts = attempts + ?, updated_at = ? WHERE fingerprint = ?",
                         (status.value, attempt, _now(), fingerprint))

    def record(self, outcome: VideoOutcome) -> None:
        """Store a video's outcome: crops first (atomically), then one transaction."""
        key = video_key(outcome.fingerprint)
        crop_dir = self._inside(Path(CROPS_DIR) / key)
        written: dict[str, str] = {}
        if outcome.shots:
            crop_dir.mkdir(parents=True, exist_ok=True)
        for shot in outcome.shots:
            relative = (Path(CROPS_DIR) / key / f"{shot.track_id:06d}-{shot.event_id.rsplit(':', 1)[1]}.jpg")
            write_atomically(self._inside(relative), shot.crop_jpeg, fsync=True)
            written[shot.event_id] = relative.as_posix()
        try:
            self._db.execute("BEGIN IMMEDIATE")
            video_id = self._db.execute(
                "SELECT id FROM videos WHERE fingerprint = ?", (outcome.fingerprint,)
            ).fetchone()[0]
            # Rows of an earlier attempt go first, so a redo never duplicates them.
            self._db.execute("DELETE FROM tracks WHERE video_id = ?", (video_id,))
            self._db.executemany(
                "INSERT INTO tracks (video_id, track_id, first_seen, last_seen, sightings) VALUES (?, ?, ?, ?, ?)",
                [(video_id, s.track_id, s.first_seen, s.last_seen, s.sightings) for s in outcome.shots],
            )
            self._db.executemany(
                "INSERT INTO best_shots (video_id, track_id, event_id, frame_index, time, x1, y1, x2, y2, landmarks, "
                "quality, components, model, crop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(video_id, s.track_id, s.event_id, s.frame_index, s.time, *s.box,
                  None if s.landmarks is None else json.dumps(s.landmarks), s.quality,
                  json.dumps(s.components, sort_keys=True), s.model, written[s.event_id]) for s in outcome.shots],
            )
            self._db.execute(
                "UPDATE videos SET status = ?, error = ?, duration = ?, width = ?, height = ?, fps = ?, "
                "frames_decoded = ?, frames_analysed = ?, seconds = ?, updated_at = ?, dropped_faces = ? WHERE id = ?",
                (outcome.status.value, outcome.error, outcome.duration, outcome.width, outcome.height, outcome.fps,
                 outcome.frames_decoded, outcome.frames_analysed, outcome.seconds, _now(), outcome.dropped_faces,
                 video_id),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._remove_stale_crops(crop_dir, set(written.values()))

    def _remove_stale_crops(self, crop_dir: Path, keep: set[str]) -> None:
        """Crops of an attempt that never committed (the process was killed after writing them)."""
        if not crop_dir.is_dir():
            return
        for file in crop_dir.iterdir():
            if file.relative_to(self.folder).as_posix() not in keep:
                file.unlink(missing_ok=True)
        if not keep:
            shutil.rmtree(crop_dir, ignore_errors=True)

    def _inside(self, relative: Path) -> Path:
        """``relative`` under the index folder; anything that would land outside it is refused."""
        target = (self.folder / relative).resolve()
        if not target.is_relative_to(self.folder):
            raise ArchiveIndexError(f"{self.path}: path {relative} points outside the index folder")
        return target

    # -- reading ---------------------------------------------------------------------------

    def crop_file(self, crop: str) -> Path:
        """The file of a stored crop path, validated to lie inside the index folder."""
        return self._inside(Path(crop))

    def videos(self) -> list[VideoRow]:
        return [_video_row(r) for r in self._db.execute("SELECT * FROM videos ORDER BY path, id")]

    def counts(self) -> dict[str, int]:
        return {
            "videos": self._db.execute("SELECT COUNT(*) FROM videos").fetchone()[0],
            "tracks": self._db.execute("SELECT COUNT(*) FROM tracks").fetchone()[0],
            "best_shots": self._db.execute("SELECT COUNT(*) FROM best_shots").fetchone()[0],
        }

    def shots(
        self,
        *,
        min_quality: float | None = None,
        video_ids: Sequence[int] | None = None,
        between: tuple[float, float] | None = None,
        order: str = "quality",
        limit: int | None = None,
    ) -> list[ShotRow]:
        """Stored best shots matching every given filter; ``order`` is quality (best
        first) or time (per video, earliest first)."""
        where, args = [], []
        if min_quality is not None:
            where.append("s.quality >= ?")
            args.append(min_quality)
        if video_ids is not None:
            where.append(f"s.video_id IN ({', '.join('?' * len(video_ids))})")
            args.extend(video_ids)
        if between is not None:
            where.append("s.time BETWEEN ? AND ?")
            args.extend(between)
        ordering = "s.quality DESC, v.path, s.time" if order == "quality" else "v.path, s.time, s.track_id"
        query = (
            "SELECT s.video_id, v.path, v.fingerprint, s.track_id, s.event_id, s.frame_index, s.time, t.first_seen, "
            "t.last_seen, t.sightings, s.x1, s.y1, s.x2, s.y2, s.landmarks, s.quality, s.components, s.model, s.crop "
            "FROM best_shots s JOIN videos v ON v.id = s.video_id "
            "JOIN tracks t ON t.video_id = s.video_id AND t.track_id = s.track_id"
            + (f" WHERE {' AND '.join(where)}" if where else "") + f" ORDER BY {ordering}"
            + (" LIMIT ?" if limit is not None else "")
        )
        if limit is not None:
            args.append(limit)
        return list(_shot_rows(self._db.execute(query, args)))


def _video_row(row: tuple) -> VideoRow:
    values = list(row)
    values[11] = VideoStatus(values[11])
    return VideoRow(*values)


def _shot_rows(cursor: sqlite3.Cursor) -> Iterator[ShotRow]:
    for r in cursor:
        yield ShotRow(
            video_id=r[0], video_path=r[1], fingerprint=r[2], track_id=r[3], event_id=r[4], frame_index=r[5],
            time=r[6], first_seen=r[7], last_seen=r[8], sightings=r[9], box=(r[10], r[11], r[12], r[13]),
            landmarks=None if r[14] is None else tuple((x, y) for x, y in json.loads(r[14])), quality=r[15],
            components=json.loads(r[16]),
            model=r[17], crop=r[18],
        )
