"""Webhook sink: one HTTP POST per best shot, in order, never losing one to an outage.

Each event is POSTed on its own, as JSON with the crop JPEG in base64 or as
``multipart/form-data`` (the event JSON and the crop JPEG), signed with HMAC-SHA256 in
``X-Fiqa-Signature`` when a ``secret`` is set. Every answer falls in one of three kinds:

    2xx                                         delivered
    connection error, timeout, 5xx, 408, 429    transient: retried ``retries`` times with
                                                exponential backoff (429 and 503 with a
                                                Retry-After wait that long, up to
                                                ``max_backoff``), then spilled to the journal
    any other answer (1xx, 3xx, other 4xx)      permanent: not retried, counted in
                                                ``rejected`` and logged with the event id

After a transient failure the event, and every later one, goes to the on-disk journal
(``sinks/journal.py``) until a replay thread has delivered the journal, oldest first,
one event at a time, backing off exponentially while the endpoint stays away; so the
endpoint receives events in the order they were made. An entry leaves the journal only
after a 2xx (or a permanent refusal): delivery is at-least-once across crashes, and
``event_id`` (also sent as ``X-Fiqa-Event-Id``) is the de-duplication key.

When the journal itself cannot store (full disk, I/O error), events wait in memory
behind it, in order; beyond ``_BACKLOG_BYTES`` ``publish`` waits, so the pipeline slows
down rather than dropping events. The replay thread never dies: a failure is logged,
counted in ``replay_restarts`` and reported by ``replay_problem`` until a pass succeeds.
The contract for receivers is docs/WEBHOOK.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import ssl
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import unquote, urlsplit

from fiqa_stream.errors import SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.config import WebhookSinkConfig
from fiqa_stream.sinks.events import crop_name, event_fields
from fiqa_stream.sinks.journal import Journal, JournalEntry
from fiqa_stream.types import BestShot

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fiqa-Signature"
EVENT_ID_HEADER = "X-Fiqa-Event-Id"
_TRANSIENT_STATUS = frozenset({408, 429})
_RETRY_AFTER_STATUS = frozenset({429, 503})
# Answers are read up to this size to keep the connection; a longer one closes it.
_ANSWER_LIMIT = 64 << 10
# Events that neither the journal nor the endpoint took yet; beyond this, publish waits.
_BACKLOG_BYTES = 64 << 20
_REPLAY_BATCH = 64
_FIRST_RESTART_PAUSE = 0.2
_MAX_RESTART_PAUSE = 5.0


def _user_agent() -> str:
    try:
        return f"fiqa-stream/{version('fiqa-stream')}"
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "fiqa-stream"


def event_body(event: BestShot, form: str) -> tuple[bytes, str]:
    """The request body of one event and its Content-Type.

    ``json``: the documented event fields (docs/EVENTS.md) plus ``crop_format`` ("jpeg")
    and ``crop``, the JPEG in standard base64. ``multipart``: a part ``event`` holding the
    same JSON without ``crop``, and a part ``crop`` holding the JPEG itself.
    """
    fields = {**event_fields(event), "crop_format": "jpeg"}
    if form == "json":
        fields["crop"] = base64.b64encode(event.crop_jpeg).decode("ascii")
        return json.dumps(fields, separators=(",", ":")).encode(), "application/json"
    boundary = f"fiqa-{secrets.token_hex(16)}"
    filename = crop_name(event).rsplit("/", 1)[-1]
    body = b"".join([
        f'--{boundary}\r\nContent-Disposition: form-data; name="event"\r\n'
        "Content-Type: application/json\r\n\r\n".encode(),
        json.dumps(fields, separators=(",", ":")).encode(),
        f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="crop"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode(),
        event.crop_jpeg,
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    return body, f"multipart/form-data; boundary={boundary}"


def signature(key: bytes, body: bytes) -> str:
    """The ``X-Fiqa-Signature`` value of a body: ``sha256=`` and the HMAC-SHA256 in hex."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one attempt came to."""

    ok: bool
    permanent: bool
    why: str
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _one_line(text: str, limit: int = 200) -> str:
    return redact_text(" ".join(text.split()))[:limit]


class _Client:
    """One keep-alive connection to the endpoint; each thread has its own."""

    def __init__(self, config: WebhookSinkConfig, where: str) -> None:
        parts = urlsplit(config.url)
        self._where = where
        self._host = parts.hostname or ""
        self._port = parts.port
        self._https = parts.scheme == "https"
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = config.timeout
        self._key = config.secret.get_secret_value().encode() if config.secret else None
        self._headers = {"User-Agent": _user_agent()}
        if parts.username is not None or parts.password is not None:
            pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        if config.token is not None:
            self._headers["Authorization"] = f"Bearer {config.token.get_secret_value()}"
        self._context: ssl.SSLContext | None = None
        if self._https:
            try:
                self._context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
            except (OSError, ssl.SSLError) as error:
                raise SinkError(f"webhook sink {where}: ca_file '{config.ca_file}': cannot load: {error}") from None
        self._connection: http.client.HTTPConnection | None = None

    def post(self, entry: JournalEntry) -> _Answer:
        """POSTs one stored event; a stale keep-alive connection is retried once at once."""
        answer, stale = self._attempt(entry)
        if stale:
            answer, _ = self._attempt(entry)
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._https:
                self._connection = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=self._context,
                )
            else:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        return self._connection

    def _attempt(self, entry: JournalEntry) -> tuple[_Answer, bool]:
        """One request; and whether it failed on a reused connection the server had closed."""
        headers = {**self._headers, "Content-Type": entry.blob_key or "application/json",
                   EVENT_ID_HEADER: entry.stream}
        if self._key is not None:
            headers[SIGNATURE_HEADER] = signature(self._key, entry.fields)
        connection = self._connect()
        reused = connection.sock is not None  # else http.client opens a fresh socket
        try:
            connection.request("POST", self._target, body=entry.fields, headers=headers)
            response = connection.getresponse()
            detail = response.read(_ANSWER_LIMIT)
            if not response.isclosed():  # a longer answer than we read: start afresh next time
                self.close()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as error:
            self.close()
            return _Answer(False, False, _describe(error)), reused
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return _Answer(False, False, _describe(error)), False
        status = response.status
        why = f"HTTP {status} {response.reason}".rstrip()
        if 200 <= status < 300:
            return _Answer(True, False, why), False
        text = _one_line(detail.decode(errors="replace"))
        why += f": {text}" if text else ""
        if status >= 500 or status in _TRANSIENT_STATUS:
            wait = _retry_after(response.getheader("Retry-After")) if status in _RETRY_AFTER_STATUS else None
            return _Answer(False, False, why, wait), False
        return _Answer(False, True, why), False


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return _one_line(str(text))


class WebhookSink:
    """POSTs best shots to an HTTP endpoint, with retries, backoff and a journal for outages."""

    name = "webhook"

    def __init__(self, config: WebhookSinkConfig) -> None:
        self._config = config
        self._where = redact_url(config.url)
        self.delivered = 0
        self.rejected = 0
        self.failed_attempts = 0
        self._direct = _Client(config, self._where)
        self._replay_client = _Client(config, self._where)
        self._journal = Journal(config.journal.path, config.journal.max_bytes, config.journal.when_full)
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Guards the backlog and the choice between direct send, journal and backlog.
        self._order = threading.Condition()
        self._backlog: deque[JournalEntry] = deque()
        self._backlog_bytes = 0
        self._unreachable = False
        self.replay_restarts = 0
        self.replay_problem: str | None = None
        self._restart_pause = _FIRST_RESTART_PAUSE
        self._delivered_through: int | None = None
        self._replayer = threading.Thread(target=self._replay_loop, name="webhook-replay", daemon=True)
        self._replayer.start()
        if len(self._journal):
            log.warning("webhook sink %s: %d events from an earlier run wait in journal %s; replaying them first",
                        self._where, len(self._journal), self._journal.path)
            self._wake.set()

    @property
    def journal_depth(self) -> int:
        return len(self._journal)

    @property
    def unspilled(self) -> int:
        """Events held in memory because the journal could not store them."""
        return len(self._backlog)

    def publish(self, events: Sequence[BestShot]) -> None:
        entries = [self._entry(event) for event in events]
        if not entries:
            return
        with self._order:
            pending = entries
            if not self._backlog and not len(self._journal):
                pending = self._send_in_order(entries)
            if pending:
                self._queue_up(pending)
            while self._backlog_bytes > _BACKLOG_BYTES and not self._stop.is_set():
                self._order.wait(0.5)

    def close(self, drain_seconds: float = 10.0) -> None:
        """Give the replay thread a last chance to deliver the journal (unless the endpoint
        is away), then stop; what is left stays in the journal for the next start."""
        waited = 0.0
        while (len(self._journal) or self._backlog) and not self._unreachable and waited < drain_seconds:
            self._wake.set()
            self._stop.wait(0.1)
            waited += 0.1
        self._stop.set()
        self._wake.set()
        with self._order:
            self._order.notify_all()
        self._replayer.join(self._config.timeout + 5.0)
        with self._order:
            if self._backlog:
                try:
                    self._journal.append(list(self._backlog))
                    self._backlog.clear()
                except SinkError as error:
                    log.error("webhook sink %s: %d event(s) are lost: neither the endpoint nor the journal took "
                              "them (%s)", self._where, len(self._backlog), error)
        try:
            stored = self._journal.recount()
        except SinkError as error:
            log.error("webhook sink %s: %s", self._where, error)
            stored = 0
        if stored:
            log.warning("webhook sink %s: %d events stay in journal %s; they are sent on the next start",
                        self._where, stored, self._journal.path)
        self._journal.close()
        self._direct.close()
        self._replay_client.close()

    def __enter__(self) -> WebhookSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _entry(self, event: BestShot) -> JournalEntry:
        # Stored as the journal's stream entry: the event id, the exact body, its Content-Type
        # (the body is signed when sent, so a replay after a key rotation carries a valid signature).
        body, content_type = event_body(event, self._config.format)
        return JournalEntry(event.event_id, body, content_type)

    def _deliver(self, client: _Client, entry: JournalEntry, attempts: int) -> _Answer:
        """Up to ``attempts`` tries with exponential backoff; the last answer."""
        pause = self._config.backoff
        for attempt in range(attempts):
            answer = client.post(entry)
            if answer.ok:
                self.delivered += 1
                return answer
            if answer.permanent:
                self._refused(entry, answer)
                return answer
            self.failed_attempts += 1
            if attempt + 1 < attempts:
                wait = pause if answer.retry_after is None else max(pause, answer.retry_after)
                log.debug("webhook sink %s: event %s: %s; retry in %.1f s", self._where, entry.stream, answer.why,
                          min(wait, self._config.max_backoff))
                if self._stop.wait(min(wait, self._config.max_backoff)):
                    break
                pause = min(self._config.max_backoff, pause * 2)
        return answer

    def _refused(self, entry: JournalEntry, answer: _Answer) -> None:
        self.rejected += 1
        log.error("webhook sink %s: event %s refused with %s; not retried (%d refused so far)",
                  self._where, entry.stream, answer.why, self.rejected)

    def _send_in_order(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """Sends entries one by one; after a transient failure, the entries not delivered."""
        for index, entry in enumerate(entries):
            answer = self._deliver(self._direct, entry, self._config.retries + 1)
            if not answer.ok and not answer.permanent:
                self._unreachable = True
                log.warning("webhook sink %s: %s after %d attempt(s); %d event(s) spilled to journal %s",
                            self._where, answer.why, self._config.retries + 1, len(entries) - index,
                            self._journal.path)
                return entries[index:]
        return []

    def _queue_up(self, entries: list[JournalEntry]) -> None:
        """Behind what waits: into the journal, or when it fails, into memory (caller holds ``_order``)."""
        if self._backlog:
            self._keep(entries)
            return
        try:
            self._journal.append(entries)
        except SinkError as error:
            self._keep(entries)
            log.error("webhook sink %s: %s; %d event(s) kept in memory (%d waiting), retrying the spill",
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
                log.error("webhook sink %s: replay failed (%s); restart %d in %.1f s", self._where,
                          self.replay_problem, self.replay_restarts, self._restart_pause)
                self._stop.wait(self._restart_pause)
                self._restart_pause = min(_MAX_RESTART_PAUSE, self._restart_pause * 2)

    def _replay(self) -> None:
        """One pass per wake-up while the endpoint answers; after a transient failure, one
        pass per backoff period, whatever arrives meanwhile (a down endpoint is not hammered)."""
        pause: float | None = None  # None: the last pass reached the endpoint
        while not self._stop.is_set():
            if pause is None:
                waiting = len(self._journal) or self._backlog
                if not waiting:
                    self._healthy()  # nothing left that could fail
                self._wake.wait(1.0 if waiting else None)
            else:
                self._stop.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            answer = self._deliver_journal()
            if answer is None:
                self._unreachable = False
                self._drain_backlog()
                pause = None
            else:
                self._unreachable = True
                pause = self._config.backoff if pause is None else min(self._config.max_backoff, pause * 2)
                if answer.retry_after is not None:
                    pause = min(self._config.max_backoff, max(pause, answer.retry_after))
                log.debug("webhook sink %s: replay: %s; next attempt in %.1f s", self._where, answer.why, pause)
            if self._delivered_through is not None:
                # Delivered, but the journal could not forget them (a full disk): fail until it can.
                self._journal.remove_through(self._delivered_through)
                self._delivered_through = None
            self._healthy()

    def _deliver_journal(self) -> _Answer | None:
        """Sends the journal oldest-first, one event at a time; the transient failure that
        stopped it, or None when the journal was delivered.

        An entry the journal cannot delete is remembered as delivered (``_delivered_through``)
        and not sent again by this process; deleting it is retried after the next one and at
        the end of the pass.
        """
        while not self._stop.is_set():
            batch = self._journal.oldest(_REPLAY_BATCH, after=self._delivered_through or 0)
            if not batch:
                return None
            for row_id, entry in batch:
                answer = self._deliver(self._replay_client, entry, 1)
                if not answer.ok and not answer.permanent:
                    return answer
                self._delivered_through = row_id
                try:
                    self._journal.remove_through(row_id)
                except SinkError as error:
                    log.debug("webhook sink %s: %s", self._where, error)
                    continue
                self._delivered_through = None
                if self._stop.is_set():
                    return None
            if not len(self._journal):
                log.info("webhook sink %s: journal delivered; back to direct posts", self._where)
        return None

    def _drain_backlog(self) -> None:
        """Moves the in-memory backlog into the journal; failing that, with nothing older
        waiting in the journal, straight to the endpoint, in order.

        Raises:
            SinkError: neither took all of it (the rest stays in memory, in order).
        """
        if not self._backlog:
            return
        with self._order:
            try:
                if self._journal.when_full == "block" and not self._journal.has_room(self._backlog_bytes):
                    return  # replay makes room first; appending here would wait on this very thread
                try:
                    self._journal.append(list(self._backlog))
                except SinkError as error:
                    if self._journal.oldest(1, after=self._delivered_through or 0):
                        raise
                    self._post_backlog(error)
                else:
                    log.info("webhook sink %s: %d event(s) from memory spilled to journal %s",
                             self._where, len(self._backlog), self._journal.path)
                    self._backlog.clear()
                    self._backlog_bytes = 0
            finally:
                self._order.notify_all()

    def _post_backlog(self, spill_error: SinkError) -> None:
        """Nothing older waits, so posting from memory keeps the order (caller holds ``_order``)."""
        sent = 0
        while self._backlog and not self._stop.is_set():
            entry = self._backlog[0]
            answer = self._deliver(self._replay_client, entry, 1)
            if not answer.ok and not answer.permanent:
                raise SinkError(f"{spill_error}; and the endpoint did not take them: {answer.why}")
            self._backlog.popleft()
            self._backlog_bytes -= entry.size
            sent += 1
        log.info("webhook sink %s: %d event(s) from memory posted", self._where, sent)

    def _healthy(self) -> None:
        if self.replay_problem is not None:
            log.info("webhook sink %s: replay works again after %d restart(s)", self._where, self.replay_restarts)
        self.replay_problem = None
        self._restart_pause = _FIRST_RESTART_PAUSE
