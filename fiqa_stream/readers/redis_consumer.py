"""The reference consumer of best shots in Redis (``fiqa-stream consume``).

It reads a stream through a consumer group (XREADGROUP), writes each best shot to a
folder in the directory sink's layout (``crops/<source>/<run_id>-<track:06d>-<seq>-<kind>.jpg``
plus ``events.jsonl``), and acknowledges it (XACK) only after the files
are safely on disk. On start it claims the entries that dead consumers of the group
left pending (XAUTOCLAIM). Delivery is at-least-once, so it drops repeats by
``event_id``. An entry it cannot decode (a poison entry: bad JSON, a missing field, a
crop that is not a JPEG) is copied to a dead-letter stream with the error and its id,
acknowledged, counted, and consumption goes on. Downstream developers can use it as
the worked example of docs/REDIS.md.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fiqa_stream.errors import DependencyError, SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.directory import write_atomically
from fiqa_stream.sinks.events import crop_path
from fiqa_stream.sinks.redis_streams import decode_entry

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

try:
    import redis
except ImportError as missing:  # pragma: no cover - depends on the install
    raise DependencyError.missing("redis", "redis", "fiqa-stream consume") from missing

log = logging.getLogger(__name__)

# What the consumer itself relies on: the name of the files, and the crop to write.
_REQUIRED = ("event_id", "kind", "source", "run_id")
_JPEG = b"\xff\xd8\xff"
# A part of a crop's path: a plain file name, so an entry cannot write outside the folder.
_FILE_NAME = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    url: str
    stream: str
    group: str
    consumer: str
    out: Path
    username: str | None = None
    password: str | None = None
    claim_idle_ms: int = 60_000
    block_ms: int = 2_000
    dead_letter: str | None = None
    """Stream for entries that cannot be decoded; None: ``<stream>:dead``."""

    @property
    def dead_letter_stream(self) -> str:
        return self.dead_letter or f"{self.stream}:dead"


def decode_best_shot(fields: dict[bytes, bytes]) -> tuple[dict[str, Any], bytes]:
    """The event and its crop, checked for what writing it needs.

    Raises:
        ValueError: the entry is not a usable best shot; the message names the field.
    """
    if not fields:
        raise ValueError("no fields: the entry was deleted (trimmed by MAXLEN?) before it was handled")
    event, crop = decode_entry(fields)
    for name in _REQUIRED:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise ValueError(f"field '{name}': missing or empty")
        if "\0" in value:
            raise ValueError(f"field '{name}': contains a NUL character")
    crop_file(event)
    if not crop.startswith(_JPEG):
        raise ValueError("field 'crop': missing or not a JPEG")
    return event, crop


def crop_file(event: dict[str, Any]) -> str:
    """Where the event's crop goes below ``crops/``: the directory sink's layout.

    Raises:
        ValueError: a field of the path is not a plain file name (or the track id not a
            number); the message names the field.
    """
    if not isinstance(event.get("track_id"), int) or isinstance(event["track_id"], bool) or event["track_id"] < 0:
        raise ValueError(f"field 'track_id': expected a whole number >= 0, got {event.get('track_id')!r}")
    seq = str(event["event_id"]).rsplit(":", 1)[-1]
    parts = {"source": event["source"], "run_id": event["run_id"], "event_id": seq, "kind": event["kind"]}
    for name, value in parts.items():
        if not _FILE_NAME.fullmatch(value) or value in (".", ".."):
            raise ValueError(f"field '{name}': {value!r} is not a plain file name (letters, digits, '.', '_', '-')")
    return crop_path(event["source"], event["run_id"], event["track_id"], seq, event["kind"])


class BestShotConsumer:
    """Reads best shots from one stream as one consumer of a group."""

    def __init__(self, settings: ConsumerSettings) -> None:
        self._settings = settings
        self._where = redact_url(settings.url)
        # A blocking read must outlive its BLOCK time, so this connection gets a longer timeout.
        self._client = redis.Redis.from_url(
            settings.url, username=settings.username, password=settings.password,
            socket_connect_timeout=5, socket_timeout=settings.block_ms / 1000 + 5,
        )
        (settings.out / "crops").mkdir(parents=True, exist_ok=True)
        self._events_path = settings.out / "events.jsonl"
        self._seen = self._already_written()
        self.written = 0
        self.duplicates = 0
        self.dead_lettered = 0

    @property
    def dead_letter_stream(self) -> str:
        return self._settings.dead_letter_stream

    def _already_written(self) -> set[str]:
        if not self._events_path.exists():
            return set()
        with open(self._events_path, encoding="utf-8") as lines:
            return {json.loads(line)["event_id"] for line in lines if line.strip()}

    def ensure_group(self) -> None:
        try:
            self._client.xgroup_create(self._settings.stream, self._settings.group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise SinkError(f"consume {self._where}: {redact_text(str(error))}") from None
        except redis.AuthenticationError as error:
            raise SinkError(f"consume {self._where}: authentication failed: {redact_text(str(error))}") from None
        except redis.ConnectionError as error:
            raise SinkError(f"consume {self._where}: cannot connect: {redact_text(str(error))}") from None

    def claim_pending(self) -> int:
        """Take over and handle entries other consumers left unacknowledged too long."""
        claimed, cursor = 0, "0-0"
        while True:
            cursor, entries, _deleted = self._client.xautoclaim(
                self._settings.stream, self._settings.group, self._settings.consumer,
                min_idle_time=self._settings.claim_idle_ms, start_id=cursor, count=100,
            )
            for entry_id, fields in entries:
                if fields:
                    self._handle(entry_id, fields)
                    claimed += 1
            if cursor in (b"0-0", "0-0"):
                return claimed

    def run(self, stop: threading.Event, max_events: int | None = None, idle_exit: float | None = None) -> int:
        """Consume until ``stop``, ``max_events`` handled, or ``idle_exit`` seconds without news."""
        self.ensure_group()
        handled = self.claim_pending()
        # First our own pending entries (a restart after a crash), then new ones.
        position = "0"
        idle = 0.0
        while not stop.is_set() and (max_events is None or handled < max_events):
            try:
                reply: Any = self._client.xreadgroup(
                    self._settings.group, self._settings.consumer, {self._settings.stream: position},
                    count=100, block=self._settings.block_ms,
                )
            except (redis.ConnectionError, redis.TimeoutError) as error:
                log.warning("consume %s: %s; retrying", self._where, redact_text(str(error)))
                stop.wait(1.0)
                continue
            except redis.ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise SinkError(f"consume {self._where}: {redact_text(str(error))}") from None
                self.ensure_group()  # the stream was deleted or Redis restarted empty
                continue
            entries = reply[0][1] if reply else []
            if position == "0" and not entries:
                position = ">"
                continue
            if not entries:
                idle += self._settings.block_ms / 1000
                if idle_exit is not None and idle >= idle_exit:
                    break
                continue
            idle = 0.0
            for entry_id, fields in entries:
                self._handle(entry_id, fields)
                handled += 1
        return handled

    def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            event, crop = decode_best_shot(fields)
        except ValueError as error:
            self._dead_letter(entry_id, fields, str(error))
            return
        event_id = event.get("event_id")
        if event_id in self._seen:
            self.duplicates += 1
        else:
            relative = Path("crops") / crop_file(event)
            (self._settings.out / relative.parent).mkdir(parents=True, exist_ok=True)
            write_atomically(self._settings.out / relative, crop, fsync=True)
            event["crop"] = relative.as_posix()
            event["stream_id"] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            with open(self._events_path, "a", encoding="utf-8") as lines:
                lines.write(json.dumps(event, separators=(",", ":")) + "\n")
                lines.flush()
                os.fsync(lines.fileno())
            self._seen.add(str(event_id))
            self.written += 1
        self._client.xack(self._settings.stream, self._settings.group, entry_id)

    def _dead_letter(self, entry_id: bytes, fields: dict[bytes, bytes], error: str) -> None:
        """Moves a poison entry aside: copied to the dead-letter stream and acknowledged, in one
        transaction, so it is neither lost nor read again."""
        dead = self._settings.dead_letter_stream
        copy: dict[FieldT, EncodableT] = {key: value for key, value in fields.items()}
        copy.update({"dead_error": error, "dead_entry_id": entry_id, "dead_stream": self._settings.stream})
        pipe = self._client.pipeline(transaction=True)
        pipe.xadd(dead, copy)
        pipe.xack(self._settings.stream, self._settings.group, entry_id)
        pipe.execute()
        self.dead_lettered += 1
        log.error("consume %s: entry %s of '%s' is not a valid best shot (%s); moved to '%s'",
                  self._where, entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                  self._settings.stream, error, dead)

    def close(self) -> None:
        self._client.close()
