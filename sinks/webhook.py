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

Journal, replay thread and outage handling are the ``Spool`` of sinks/spool.py, shared
with the other journalled sinks. When the journal itself cannot store (full disk, I/O
error), events wait in memory behind it, in order; beyond a bound ``publish`` waits, so
the pipeline slows down rather than dropping events. The replay thread never dies: a failure is logged,
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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from urllib.parse import unquote, urlsplit

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.config import WebhookSinkConfig
from fiqa_stream.sinks.events import crop_name, event_fields
from fiqa_stream.sinks.journal import Journal, JournalEntry
from fiqa_stream.sinks.spool import Pacing, Sent, Spool, SpooledSink
from fiqa_stream.types import BestShot

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Fiqa-Signature"
EVENT_ID_HEADER = "X-Fiqa-Event-Id"
_TRANSIENT_STATUS = frozenset({408, 429})
_RETRY_AFTER_STATUS = frozenset({429, 503})
# Answers are read up to this size to keep the connection; a longer one closes it.
_ANSWER_LIMIT = 64 << 10
_REPLAY_BATCH = 64


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


class WebhookSink(SpooledSink, ClosedOnExit):
    """POSTs best shots to an HTTP endpoint, with retries, backoff and a journal for outages (``Spool``)."""

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
        # One event per request, in order; a pass that fails waits out the backoff, whatever
        # arrives meanwhile (a down endpoint is not hammered), and Retry-After is honoured.
        self._spool = Spool(self.name, self._where, "the endpoint", self._journal, self._replay_send,
                            batch=_REPLAY_BATCH, singly=True,
                            pacing=Pacing(idle=1.0, first=config.backoff, most=config.max_backoff, patient=True))
        self._spool.start()

    def publish(self, events: Sequence[BestShot]) -> None:
        entries = [self._entry(event) for event in events]
        if entries:
            self._spool.publish(entries, self._send_in_order)

    def close(self, drain_seconds: float = 10.0) -> None:
        """Give the replay thread a last chance to deliver the journal (unless the endpoint
        is away), then stop; what is left stays in the journal for the next start."""
        self._spool.close(drain_seconds, lambda: self._spool.reachable, join_seconds=self._config.timeout + 5.0)
        self._direct.close()
        self._replay_client.close()

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
                if self._spool.pause(min(wait, self._config.max_backoff)):
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
                log.warning("webhook sink %s: %s after %d attempt(s); %d event(s) spilled to journal %s",
                            self._where, answer.why, self._config.retries + 1, len(entries) - index,
                            self._journal.path)
                return entries[index:]
        return []

    def _replay_send(self, entries: list[JournalEntry]) -> Sent:
        """One stored event, one attempt (the spool backs off between passes); a permanent
        refusal counts as taken, so the events behind it go on."""
        [entry] = entries
        answer = self._deliver(self._replay_client, entry, 1)
        return Sent(1 if answer.ok or answer.permanent else 0, answer.why, answer.retry_after)
