"""Redis Streams sink: one XADD per best shot, never stalling, never losing one.

Healthy path: ``publish`` sends the batch in one pipelined round trip (XADD with
``MAXLEN ~`` trimming, plus SET with TTL for full frames). When Redis is unreachable
or refuses a write, the batch goes to the on-disk journal instead, and so does every
later batch until a replay thread has delivered the journal, oldest first, in order.
Entries leave the journal only after Redis acknowledged them: delivery is
at-least-once, and ``event_id`` lets consumers drop the duplicates a crash can cause.
The entry format is documented in docs/REDIS.md.

Journal, replay thread and outage handling are the ``Spool`` of sinks/spool.py, shared
with the other journalled sinks. When the journal itself cannot take a batch (full
disk, I/O error), the batch is kept in memory, behind the journal and in order, and the
replay thread retries the spill (or, with an empty journal, sends it straight to Redis).
That backlog is bounded: beyond it ``publish`` waits, so the pipeline slows down rather
than dropping events. The replay thread never dies: a failure is logged, counted in
``replay_restarts``, reported by ``replay_problem`` until a later pass succeeds, and
the loop starts again after a backoff.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import DependencyError, SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.config import RedisSinkConfig
from fiqa_stream.sinks.events import event_fields
from fiqa_stream.sinks.journal import Journal, JournalEntry
from fiqa_stream.sinks.spool import Sent, Spool, SpooledSink
from fiqa_stream.types import BestShot

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

try:
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry
except ImportError as missing:  # pragma: no cover - depends on the install
    raise DependencyError.missing("redis", "redis", "the redis sink") from missing

log = logging.getLogger(__name__)

_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


def _epoch_ms(iso: str | None) -> str:
    return "" if not iso else str(int(datetime.fromisoformat(iso).timestamp() * 1000))


def entry_fields(event: BestShot, frame_key: str | None) -> dict[str, bytes | str]:
    """The stream entry of one event: flat string fields, JSON for structures, JPEG bytes."""
    fields = event_fields(event)
    entry: dict[str, bytes | str] = {}
    for name, value in fields.items():
        if isinstance(value, dict | list):
            entry[name] = json.dumps(value, separators=(",", ":"))
        elif value is None:
            entry[name] = ""
        else:
            entry[name] = str(value)
    entry["captured_at_ms"] = _epoch_ms(fields["captured_at"])
    entry["decided_at_ms"] = _epoch_ms(fields["decided_at"])
    entry["crop_format"] = "jpeg"
    entry["crop"] = event.crop_jpeg
    entry["frame_key"] = frame_key or ""
    return entry


_JSON_FIELDS = ("box", "first_box", "landmarks", "components")
_INT_FIELDS = ("schema", "track_id", "frame_index", "first_frame_index", "sightings")
_FLOAT_FIELDS = ("pts", "first_seen", "last_seen", "quality")


def decode_entry(fields: dict[bytes, bytes]) -> tuple[dict[str, Any], bytes]:
    """The inverse of ``entry_fields``: the event as typed JSON values, and the crop JPEG.

    Raises:
        ValueError: a field is not what docs/REDIS.md says; the message names the field.
    """
    event: dict[str, Any] = {}
    for key, raw in fields.items():
        if key == b"crop":
            continue
        name = key.decode(errors="backslashreplace")
        try:
            value = raw.decode()
            if value == "":
                event[name] = None
            elif name in _JSON_FIELDS:
                event[name] = json.loads(value)
            elif name in _INT_FIELDS or name.endswith("_ms"):
                event[name] = int(value)
            elif name in _FLOAT_FIELDS:
                event[name] = float(value)
            else:
                event[name] = value
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ValueError(f"field '{name}': {error}") from error
    return event, fields.get(b"crop", b"")


def _pack(entry: dict[str, bytes | str]) -> bytes:
    """Length-prefixed encoding of an entry for the journal (keeps bytes as bytes)."""
    parts: list[bytes] = []
    for name, value in entry.items():
        data = value if isinstance(value, bytes) else value.encode()
        key = name.encode()
        parts += [len(key).to_bytes(4, "big"), key, len(data).to_bytes(4, "big"), data]
    return b"".join(parts)


def _unpack(packed: bytes) -> dict[FieldT, EncodableT]:
    entry: dict[FieldT, EncodableT] = {}
    at = 0
    while at < len(packed):
        size = int.from_bytes(packed[at : at + 4], "big")
        key = packed[at + 4 : at + 4 + size]
        at += 4 + size
        size = int.from_bytes(packed[at : at + 4], "big")
        entry[key] = packed[at + 4 : at + 4 + size]
        at += 4 + size
    return entry


class RedisSink(SpooledSink, ClosedOnExit):
    """Publishes best shots to Redis Streams, with a journal for outages (``Spool``)."""

    name = "redis"

    def __init__(self, config: RedisSinkConfig) -> None:
        self._config = config
        self._where = redact_url(config.url)
        self.rejected = 0
        self.delivered = 0
        self._client = redis.Redis.from_url(
            config.url,
            username=config.username,
            password=(config.password.get_secret_value() or None) if config.password else None,
            socket_connect_timeout=config.connect_timeout,
            socket_timeout=config.socket_timeout,
            health_check_interval=config.health_check_interval,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), config.retries),
            retry_on_error=list(_TRANSIENT),
        )
        self._journal = Journal(config.journal.path, config.journal.max_bytes, config.journal.when_full)
        self._check_server()
        self._spool = Spool(self.name, self._where, "Redis", self._journal, self._replay_send, batch=config.batch,
                            unreachable=_TRANSIENT, refused=(redis.RedisError,))
        self._spool.start()

    def publish(self, events: Sequence[BestShot]) -> None:
        self._spool.publish_within([self._entry(event) for event in events], self._send_now, "max_entry_bytes",
                                   self._config.max_entry_bytes)

    def close(self, drain_seconds: float = 10.0) -> None:
        """Give the replay thread a last chance to deliver the journal, then stop."""
        self._spool.close(drain_seconds)
        self._client.close()

    def _check_server(self) -> None:
        """Fatal problems are reported at start; an unreachable server only spills."""
        try:
            self._client.ping()
            if "{source}" not in self._config.stream:
                kind = self._client.type(self._config.stream)
                if kind not in (b"none", b"stream"):
                    name = kind.decode() if isinstance(kind, bytes) else kind
                    raise SinkError(
                        f"redis sink {self._where}: key '{self._config.stream}' holds a {name}, "
                        "not a stream; choose another 'stream' key"
                    )
        except redis.AuthenticationError as error:
            raise SinkError(f"redis sink {self._where}: authentication failed: {redact_text(str(error))}") from None
        except redis.ResponseError as error:
            if "NOPERM" in str(error) or "WRONGPASS" in str(error) or "NOAUTH" in str(error):
                raise SinkError(f"redis sink {self._where}: not allowed: {redact_text(str(error))}") from None
            raise SinkError(f"redis sink {self._where}: {redact_text(str(error))}") from None
        except _TRANSIENT as error:
            log.warning("redis sink %s: not reachable at start (%s); spilling to journal %s until it is",
                        self._where, redact_text(str(error)), self._journal.path)

    def _entry(self, event: BestShot) -> JournalEntry | None:
        frame_key = self._config.frame_key.format(event_id=event.event_id) if (
            self._config.full_frames and event.frame_jpeg) else None
        packed = _pack(entry_fields(event, frame_key))
        entry = JournalEntry(self._config.stream.format(source=event.source), packed,
                             frame_key, event.frame_jpeg if frame_key else None)
        if entry.size > self._config.max_entry_bytes:
            self.rejected += 1
            log.error("redis sink %s: event %s is %d bytes, over max_entry_bytes %d; not sent",
                      self._where, event.event_id, entry.size, self._config.max_entry_bytes)
            return None
        return entry

    def _send(self, entries: list[JournalEntry]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for entry in entries:
            if entry.blob_key and entry.blob is not None:
                pipe.set(entry.blob_key, entry.blob, ex=self._config.frame_ttl)
            pipe.xadd(entry.stream, _unpack(entry.fields), maxlen=self._config.maxlen, approximate=True)
        pipe.execute()
        self.delivered += len(entries)

    def _send_now(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """The direct path of ``publish``: all of them, or none (spilled, with the reason)."""
        try:
            self._send(entries)
        except redis.RedisError as error:
            log.warning("redis sink %s: %s; %d event(s) spilled to journal %s",
                        self._where, redact_text(str(error)) or type(error).__name__, len(entries),
                        self._journal.path)
            return entries
        return []

    def _replay_send(self, entries: list[JournalEntry]) -> Sent:
        """One pipelined batch: all taken, or an exception (``_TRANSIENT``: Redis is away)."""
        self._send(entries)
        return Sent(len(entries))
