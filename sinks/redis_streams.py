"""Redis Streams sink: one XADD per best shot, never stalling, never losing one.

Healthy path: ``publish`` sends the batch in one pipelined round trip (XADD with
``MAXLEN ~`` trimming, plus SET with TTL for full frames). When Redis is unreachable
or refuses a write, the batch goes to the on-disk journal instead, and so does every
later batch until a replay thread has delivered the journal, oldest first, in order.
Entries leave the journal only after Redis acknowledged them: delivery is
at-least-once, and ``event_id`` lets consumers drop the duplicates a crash can cause.
The entry format is documented in docs/REDIS.md.

When the journal itself cannot take a batch (full disk, I/O error), the batch is kept
in memory, behind the journal and in order, and the replay thread retries the spill
(or, with an empty journal, sends it straight to Redis). That backlog is bounded:
beyond ``_BACKLOG_BYTES`` ``publish`` waits, so the pipeline slows down rather than
dropping events. The replay thread never dies: a failure is logged, counted in
``replay_restarts``, reported by ``replay_problem`` until a later pass succeeds, and
the loop starts again after a backoff.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fiqa_stream.errors import DependencyError, SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.config import RedisSinkConfig
from fiqa_stream.sinks.events import event_fields
from fiqa_stream.sinks.journal import Journal, JournalEntry
from fiqa_stream.types import BestShot

try:
    import redis
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry
except ImportError as missing:  # pragma: no cover - depends on the install
    raise DependencyError.missing("redis", "redis", "the redis sink") from missing

log = logging.getLogger(__name__)

_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
_MAX_REPLAY_PAUSE = 5.0
_FIRST_RESTART_PAUSE = 0.2
# Events that neither the journal nor Redis took yet; beyond this, publish waits.
_BACKLOG_BYTES = 64 << 20


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


_JSON_FIELDS = ("box", "landmarks", "components")
_INT_FIELDS = ("schema", "track_id", "frame_index", "sightings")
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
            if name in _JSON_FIELDS:
                event[name] = json.loads(value)
            elif value == "":
                event[name] = None
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


def _unpack(packed: bytes) -> dict[bytes, bytes]:
    entry: dict[bytes, bytes] = {}
    at = 0
    while at < len(packed):
        size = int.from_bytes(packed[at : at + 4], "big")
        key = packed[at + 4 : at + 4 + size]
        at += 4 + size
        size = int.from_bytes(packed[at : at + 4], "big")
        entry[key] = packed[at + 4 : at + 4 + size]
        at += 4 + size
    return entry


class RedisSink:
    """Publishes best shots to Redis Streams, with a journal for outages."""

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
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Guards the backlog and the choice between direct send, journal and backlog.
        self._order = threading.Condition()
        self._backlog: deque[JournalEntry] = deque()
        self._backlog_bytes = 0
        self.replay_restarts = 0
        self.replay_problem: str | None = None
        self._restart_pause = _FIRST_RESTART_PAUSE
        self._delivered_through: int | None = None
        self._replayer = threading.Thread(target=self._replay_loop, name="redis-replay", daemon=True)
        self._replayer.start()
        if len(self._journal):
            log.warning("redis sink %s: %d events from an earlier run wait in journal %s; replaying them first",
                        self._where, len(self._journal), self._journal.path)
            self._wake.set()

    @property
    def journal_depth(self) -> int:
        return len(self._journal)

    @property
    def unspilled(self) -> int:
        """Events held in memory because the journal could not store them."""
        return len(self._backlog)

    @property
    def replay_healthy(self) -> bool:
        return self.replay_problem is None

    def publish(self, events: Sequence[BestShot]) -> None:
        entries = [e for e in (self._entry(event) for event in events) if e is not None]
        if entries:
            with self._order:
                if self._backlog:
                    self._keep(entries)
                elif len(self._journal):
                    self._append_or_keep(entries)
                else:
                    try:
                        self._send(entries)
                    except redis.RedisError as error:
                        self._spill(entries, error)
                while self._backlog_bytes > _BACKLOG_BYTES and not self._stop.is_set():
                    self._order.wait(0.5)
        rejected = len(events) - len(entries)
        if rejected:
            raise SinkError(
                f"redis sink {self._where}: {rejected} event(s) larger than max_entry_bytes "
                f"({self._config.max_entry_bytes}) were not sent"
            )

    def close(self, drain_seconds: float = 10.0) -> None:
        """Give the replay thread a last chance to deliver the journal, then stop."""
        waited = 0.0
        while (len(self._journal) or self._backlog) and waited < drain_seconds:
            self._wake.set()
            self._stop.wait(0.1)
            waited += 0.1
        self._stop.set()
        self._wake.set()
        with self._order:
            self._order.notify_all()
        self._replayer.join(5.0)
        with self._order:
            if self._backlog:
                try:
                    self._journal.append(list(self._backlog))
                    self._backlog.clear()
                except SinkError as error:
                    log.error("redis sink %s: %d event(s) are lost: neither Redis nor the journal took them (%s)",
                              self._where, len(self._backlog), error)
        try:
            stored = self._journal.recount()
        except SinkError as error:
            log.error("redis sink %s: %s", self._where, error)
            stored = 0
        if stored:
            log.warning("redis sink %s: %d events stay in journal %s; they are sent on the next start",
                        self._where, stored, self._journal.path)
        self._journal.close()
        self._client.close()

    def __enter__(self) -> RedisSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_server(self) -> None:
        """Fatal problems are reported at start; an unreachable server only spills."""
        try:
            self._client.ping()
            if "{source}" not in self._config.stream:
                kind = self._client.type(self._config.stream)
                if kind not in (b"none", b"stream"):
                    raise SinkError(
                        f"redis sink {self._where}: key '{self._config.stream}' holds a {kind.decode()}, "
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

    def _spill(self, entries: list[JournalEntry], error: redis.RedisError) -> None:
        log.warning("redis sink %s: %s; %d event(s) spilled to journal %s",
                    self._where, redact_text(str(error)) or type(error).__name__, len(entries), self._journal.path)
        self._append_or_keep(entries)

    def _append_or_keep(self, entries: list[JournalEntry]) -> None:
        """Into the journal; when it fails, into the in-memory backlog (caller holds ``_order``)."""
        try:
            self._journal.append(entries)
        except SinkError as error:
            self._keep(entries)
            log.error("redis sink %s: %s; %d event(s) kept in memory (%d waiting), retrying the spill",
                      self._where, error, len(entries), len(self._backlog))
        self._wake.set()

    def _keep(self, entries: list[JournalEntry]) -> None:
        self._backlog.extend(entries)
        self._backlog_bytes += sum(e.size for e in entries)
        self._wake.set()

    def _replay_loop(self) -> None:
        """Runs ``_replay`` until stopped; a failure is logged, counted, and replay restarts."""
        while not self._stop.is_set():
            try:
                self._replay()
            except Exception as error:  # noqa: BLE001 - a dead replay thread strands the journal for good
                self.replay_restarts += 1
                self.replay_problem = f"{type(error).__name__}: {redact_text(str(error))}"
                log.error("redis sink %s: replay failed (%s); restart %d in %.1f s", self._where,
                          self.replay_problem, self.replay_restarts, self._restart_pause)
                self._stop.wait(self._restart_pause)
                self._restart_pause = min(_MAX_REPLAY_PAUSE, self._restart_pause * 2)

    def _replay(self) -> None:
        """One pass per wake-up: the journal oldest-first, then what waits in memory."""
        pause = 0.1
        while not self._stop.is_set():
            waiting = len(self._journal) or self._backlog
            if not waiting:
                self._healthy()  # nothing left that could fail
            self._wake.wait(pause if waiting else None)
            self._wake.clear()
            if self._stop.is_set():
                return
            reachable = self._deliver_journal()
            pause = 0.1 if reachable else min(_MAX_REPLAY_PAUSE, pause * 2)
            self._spill_backlog(send=reachable)
            if self._delivered_through is not None:
                # Delivered, but the journal could not forget them (a full disk): fail until it can.
                self._journal.remove_through(self._delivered_through)
                self._delivered_through = None
            self._healthy()

    def _deliver_journal(self) -> bool:
        """Sends the journal oldest-first; False when Redis is unreachable.

        A batch the journal cannot delete is remembered as delivered (``_delivered_through``)
        and not sent again by this process; deleting it is retried with the next batch and
        at the end of the pass.
        """
        while not self._stop.is_set():
            batch = self._journal.oldest(self._config.batch, after=self._delivered_through or 0)
            if not batch:
                return True
            try:
                self._send([entry for _, entry in batch])
            except _TRANSIENT as error:
                log.debug("redis sink %s: replay failed: %s", self._where, redact_text(str(error)))
                return False
            self._delivered_through = batch[-1][0]
            try:
                self._journal.remove_through(self._delivered_through)
            except SinkError as error:
                log.debug("redis sink %s: %s", self._where, error)
                continue
            self._delivered_through = None
            if not len(self._journal):
                log.info("redis sink %s: journal delivered; back to direct writes", self._where)
        return True

    def _journal_waiting(self) -> bool:
        """Whether the journal holds entries not yet delivered by this process."""
        return bool(self._journal.oldest(1, after=self._delivered_through or 0))

    def _spill_backlog(self, send: bool) -> None:
        """Moves the in-memory backlog into the journal; failing that, with nothing older
        waiting in the journal and ``send``, straight to Redis.

        Raises:
            SinkError: neither took it (the backlog stays, in order).
        """
        if not self._backlog:
            return
        with self._order:
            entries = list(self._backlog)
            if self._journal.when_full == "block" and not self._journal.has_room(self._backlog_bytes):
                return  # replay makes room first; appending here would wait on this very thread
            try:
                self._journal.append(entries)
            except SinkError as error:
                if not send or self._journal_waiting():
                    raise
                try:
                    self._send(entries)  # nothing older waits, so sending directly keeps the order
                except redis.RedisError as refused:
                    raise SinkError(f"{error}; and Redis refused them: {redact_text(str(refused))}") from None
                log.info("redis sink %s: %d event(s) from memory sent to Redis", self._where, len(entries))
            else:
                log.info("redis sink %s: %d event(s) from memory spilled to journal %s",
                         self._where, len(entries), self._journal.path)
            self._backlog.clear()
            self._backlog_bytes = 0
            self._order.notify_all()

    def _healthy(self) -> None:
        if self.replay_problem is not None:
            log.info("redis sink %s: replay works again after %d restart(s)", self._where, self.replay_restarts)
        self.replay_problem = None
        self._restart_pause = _FIRST_RESTART_PAUSE
