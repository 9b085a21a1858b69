"""MQTT sink: best shots to a broker with QoS 1, never stalling, never losing one.

Per event, in this order, each with QoS 1: the crop as a JPEG on its retained snapshot
topic (``fiqa/{source}/{track_id}/snapshot``), the crop again on the source's retained
image topic when Home Assistant discovery is on, then the event as JSON (the fields of
docs/EVENTS.md plus ``snapshot_topic`` and ``crop_sha256``) on ``fiqa/{source}/best_shot``.
A subscriber to both topics so receives an event's crop just before the event.

An event counts as delivered only once the broker acknowledged (PUBACK, MQTT 5) every
message of it with success; a PUBACK that refuses (not authorized, quota exceeded) keeps
its whole batch undelivered. ``publish`` sends a batch and waits up to ``ack_timeout``
for the PUBACKs; the events from the first unacknowledged one on go to the on-disk journal
(``sinks/journal.py``), and so does every later batch until a replay thread has
delivered the journal, oldest first. paho reconnects with exponential backoff; nothing
is published while it is away. Entries leave the journal only after their PUBACKs:
delivery is at-least-once, and ``event_id`` lets consumers drop repeats.

Order across reconnects: paho itself resends, flagged DUP, what was unacknowledged when
a connection dropped, right after the next CONNACK; those events are in the journal too
and arrive twice. The connect callback publishes ``online`` on the availability topic
(queued ahead of paho's resends) and the sink sends nothing of its own on a connection
until the broker acknowledged that message, so paho's resends always precede the
replay: the first copy of every event arrives in production order, and the newest crop
of a track is the last one written to its retained topic.

Journal, replay thread and outage handling are the ``Spool`` of sinks/spool.py, shared
with the other journalled sinks. When the journal itself cannot take a batch (full
disk, I/O error), the batch waits in memory behind it, in order, and the replay thread
retries the spill; beyond a bound ``publish`` waits, so the pipeline slows down rather
than dropping events. The replay thread never dies: a failure is logged, counted in
``replay_restarts`` and reported by ``replay_problem`` (as is a broker that refuses the
connection or the publications) until it works again. The contract for subscribers is docs/MQTT.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import DependencyError, SinkError
from fiqa_stream.redact import redact_text, redact_url
from fiqa_stream.sinks.config import MqttSinkConfig, MqttTlsConfig
from fiqa_stream.sinks.events import event_fields
from fiqa_stream.sinks.journal import Journal, JournalEntry
from fiqa_stream.sinks.spool import Sent, Spool, SpooledSink
from fiqa_stream.types import BestShot

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
except ImportError as missing:  # pragma: no cover - depends on the install
    raise DependencyError.missing("paho.mqtt", "mqtt", "the mqtt sink") from missing

log = logging.getLogger(__name__)

# How often a wait for PUBACKs looks whether the connection dropped meanwhile.
_ACK_POLL = 0.2
# Longest wait for the broker to take 'offline' on close.
_OFFLINE_WAIT = 2.0

Message = tuple[str, bytes, bool]
"""One MQTT publication: topic, payload, retain."""


def event_payload(event: BestShot, snapshot_topic: str | None) -> bytes:
    """The event's JSON: docs/EVENTS.md's fields, where its crop went and the crop's SHA-256."""
    fields = event_fields(event)
    fields["snapshot_topic"] = snapshot_topic
    fields["crop_sha256"] = hashlib.sha256(event.crop_jpeg).hexdigest() if snapshot_topic else None
    return json.dumps(fields, separators=(",", ":")).encode()


def pack_messages(messages: Sequence[Message]) -> bytes:
    """Length-prefixed encoding of an event's publications, as the journal stores them."""
    parts: list[bytes] = []
    for topic, payload, retain in messages:
        name = topic.encode()
        parts += [len(name).to_bytes(4, "big"), name, b"\1" if retain else b"\0", len(payload).to_bytes(4, "big"),
                  payload]
    return b"".join(parts)


def unpack_messages(packed: bytes) -> list[Message]:
    messages: list[Message] = []
    at = 0
    while at < len(packed):
        size = int.from_bytes(packed[at : at + 4], "big")
        topic = packed[at + 4 : at + 4 + size].decode()
        at += 4 + size
        retain = packed[at] == 1
        size = int.from_bytes(packed[at + 1 : at + 5], "big")
        messages.append((topic, packed[at + 5 : at + 5 + size], retain))
        at += 5 + size
    return messages


def discovery_messages(config: MqttSinkConfig, source: str) -> list[tuple[str, bytes]]:
    """Home Assistant discovery configs of one source: a quality sensor and a best-shot image."""
    node = re.sub(r"[^A-Za-z0-9_-]", "_", source)
    common: dict[str, Any] = {
        "availability_topic": config.availability_topic,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {"identifiers": [f"fiqa_stream_{node}"], "name": f"fiqa-stream {source}",
                   "manufacturer": "fiqa-stream", "model": "best-shot face quality"},
    }
    event_topic = config.topic.format(source=source)
    sensor = {
        "name": "Best-shot quality", "unique_id": f"fiqa_stream_{node}_quality", "state_topic": event_topic,
        "value_template": "{{ value_json.quality }}", "json_attributes_topic": event_topic,
        "state_class": "measurement", "icon": "mdi:face-recognition", **common,
    }
    image = {
        "name": "Best shot", "unique_id": f"fiqa_stream_{node}_best_shot",
        "image_topic": config.home_assistant.image_topic.format(source=source), "content_type": "image/jpeg",
        **common,
    }
    prefix = config.home_assistant.prefix
    return [
        (f"{prefix}/sensor/fiqa_stream/{node}_quality/config", json.dumps(sensor).encode()),
        (f"{prefix}/image/fiqa_stream/{node}_best_shot/config", json.dumps(image).encode()),
    ]


def _acked(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):  # never sent (no connection, queue full): not delivered
        return False


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when its handshake fails: paho does not, and the open socket would
    later warn (ResourceWarning) on every failed TLS reconnect."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def _tls_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    except (OSError, ssl.SSLError) as error:
        raise SinkError(f"tls.ca_file '{tls.ca_file}': cannot load: {error}") from None
    if tls.cert_file is not None:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as error:
            raise SinkError(f"tls.cert_file '{tls.cert_file}': cannot load: {error}") from None
    context.check_hostname = tls.verify_hostname
    context.sslsocket_class = _ClosingSSLSocket
    return context


class PublishRefused(SinkError):
    """The broker answered a publication with a failure reason (not authorized, quota, size)."""


class MqttSink(SpooledSink, ClosedOnExit):
    """Publishes best shots to an MQTT broker (QoS 1), with a journal for outages (``Spool``)."""

    name = "mqtt"

    def __init__(self, config: MqttSinkConfig) -> None:
        self._config = config
        parts = urlsplit(config.url)
        self._where = redact_url(config.url)
        self.delivered = 0
        self.rejected = 0
        self._journal = Journal(config.journal.path, config.journal.max_bytes, config.journal.when_full)
        # Exists before the connection: its callbacks wake the replay thread.
        self._spool = Spool(self.name, self._where, "the broker", self._journal, self._replay_send,
                            batch=config.batch)
        # Connection state, written by paho's network thread.
        self._connection = 0  # bumped on every disconnect: a wait for PUBACKs ends when it changes
        self._online: mqtt.MQTTMessageInfo | None = None  # its PUBACK opens a connection for our messages
        self._up = False
        self._refused: str | None = None
        self._publish_refusals = 0  # PUBACKs that refused a publication (ACL, size, quota)
        self._publish_refusal = ""
        self._warned_inflight = False
        self._answered = threading.Event()
        self._closing = False
        self._sources: dict[str, None] = {}
        self._sources_lock = threading.Lock()
        try:
            self._client = self._make_client(parts)
            self._connect(parts)
        except BaseException:
            self._journal.close()
            raise
        self._spool.start()

    @property
    def replay_problem(self) -> str | None:
        if self._refused is not None:
            return f"the broker refuses the connection: {self._refused}"
        return self._spool.problem

    @property
    def connected(self) -> bool:
        """Whether the sink publishes right now (connected, and its 'online' acknowledged)."""
        online = self._online
        return online is not None and _acked(online) and self._client.is_connected()

    def publish(self, events: Sequence[BestShot]) -> None:
        self._note_sources(events)
        self._spool.publish_within([self._entry(event) for event in events], self._send_now, "max_payload_bytes",
                                   self._config.max_payload_bytes)

    def close(self, drain_seconds: float = 10.0) -> None:
        """Give the replay thread a last chance to deliver the journal (while the broker is
        there), then stop and say 'offline'; what is left stays in the journal for the next start."""
        self._spool.close(drain_seconds, lambda: self.connected)
        self._closing = True
        if self._client.is_connected():
            offline = self._client.publish(self._config.availability_topic, b"offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # else the last will says it for us
                offline.wait_for_publish(_OFFLINE_WAIT)
        self._client.disconnect()
        self._client.loop_stop()

    # Connection: paho's network thread runs the callbacks.

    def _make_client(self, parts: SplitResult) -> mqtt.Client:
        config = self._config
        # MQTT 5: a PUBACK says whether the broker took the message (3.1.1 acknowledges a
        # publication its ACL drops just the same).
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id or f"fiqa-stream-{socket.gethostname()}-{os.getpid()}",
            protocol=mqtt.MQTTv5,
        )
        # An empty setting (an unset ${ENV:-}) falls back to the URL's.
        username = config.username or (unquote(parts.username) if parts.username else None)
        password = (config.password.get_secret_value() if config.password else "") or (
            unquote(parts.password) if parts.password else None)
        if username is not None or password:
            client.username_pw_set(username or "", password or None)
        if parts.scheme == "mqtts":
            client.tls_set_context(_tls_context(config.tls or MqttTlsConfig()))
        client.will_set(config.availability_topic, b"offline", qos=1, retain=True)
        # paho types these as int; it computes with them as seconds, fractions included.
        client.reconnect_delay_set(config.reconnect_min_delay, config.reconnect_max_delay)  # type: ignore[arg-type]
        client.max_inflight_messages_set(config.max_inflight)
        client.connect_timeout = config.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def _connect(self, parts: SplitResult) -> None:
        """Fatal problems (TLS, credentials) are reported at start; an unreachable broker only spills."""
        host = parts.hostname or ""
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        try:
            self._client.connect(host, port, keepalive=self._config.keepalive)
        except ssl.SSLError as error:  # an untrusted certificate or a plain port does not heal by retrying
            reason = getattr(error, "verify_message", None) or error.reason or str(error)
            raise SinkError(f"mqtt sink {self._where}: TLS failed: {redact_text(str(reason))}") from None
        except OSError as error:
            log.warning("mqtt sink %s: not reachable at start (%s); spilling to journal %s until it is",
                        self._where, redact_text(str(error)) or type(error).__name__, self._journal.path)
            self._client.loop_start()  # keeps trying, with backoff
            return
        self._client.loop_start()
        deadline = time.monotonic() + self._config.connect_timeout
        if not self._answered.wait(self._config.connect_timeout):
            log.warning("mqtt sink %s: no answer to CONNECT within %.1f s; spilling to journal %s until there is",
                        self._where, self._config.connect_timeout, self._journal.path)
        elif self._refused is not None:
            self._closing = True
            self._client.disconnect()
            self._client.loop_stop()
            raise SinkError(f"mqtt sink {self._where}: the broker refused the connection: {self._refused}")
        elif (online := self._online) is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # ready to publish once 'online' is acknowledged
                online.wait_for_publish(max(0.0, deadline - time.monotonic()))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            if self._refused != str(reason) and self._answered.is_set():
                log.error("mqtt sink %s: the broker refuses the connection: %s; retrying", self._where, reason)
            self._refused = str(reason)
            self._answered.set()
            return
        if self._answered.is_set():
            log.info("mqtt sink %s: connected again", self._where)
        self._refused = None
        self._up = True
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if receive_maximum and receive_maximum < self._config.max_inflight and not self._warned_inflight:
            # paho cannot lower it on an open connection; a strict broker disconnects beyond it.
            self._warned_inflight = True
            log.warning("mqtt sink %s: the broker takes %d unacknowledged messages at once (Receive Maximum), "
                        "fewer than max_inflight %d: set max_inflight to %d", self._where, receive_maximum,
                        self._config.max_inflight, receive_maximum)
        with self._sources_lock:
            sources = list(self._sources)
        for source in sources:
            self._announce(source)
        # Queued ahead of paho's resends of unacknowledged messages: once acknowledged,
        # those resends are on the wire, and our own messages go after them.
        self._online = client.publish(self._config.availability_topic, b"online", qos=1, retain=True)
        self._answered.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connection += 1
        self._online = None
        if self._up and not self._closing:
            log.warning("mqtt sink %s: connection lost (%s); events go to journal %s until the broker is back",
                        self._where, reason, self._journal.path)
        self._up = False

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._publish_refusal = str(reason)
            self._publish_refusals += 1
        online = self._online
        if online is not None and mid == online.mid:
            self._spool.wake()

    def _note_sources(self, events: Sequence[BestShot]) -> None:
        """Home Assistant discovery for each new source (again on every reconnect)."""
        if not self._config.home_assistant.discovery:
            return
        for event in events:
            if event.source not in self._sources:
                with self._sources_lock:
                    self._sources[event.source] = None
                if self._client.is_connected():
                    self._announce(event.source)

    def _announce(self, source: str) -> None:
        if self._config.home_assistant.discovery:
            for topic, payload in discovery_messages(self._config, source):
                self._client.publish(topic, payload, qos=1, retain=True)

    # Delivery.

    def _entry(self, event: BestShot) -> JournalEntry | None:
        config = self._config
        messages: list[Message] = []
        snapshot = config.snapshot_topic.format(source=event.source, track_id=event.track_id) if (
            config.snapshot_topic) else None
        if snapshot:
            messages.append((snapshot, event.crop_jpeg, True))
        if config.home_assistant.discovery:
            messages.append((config.home_assistant.image_topic.format(source=event.source), event.crop_jpeg, True))
        payload = event_payload(event, snapshot)
        messages.append((config.topic.format(source=event.source), payload, False))
        size = len(payload) + (len(event.crop_jpeg) if snapshot else 0)
        if size > config.max_payload_bytes:
            self.rejected += 1
            log.error("mqtt sink %s: event %s is %d bytes, over max_payload_bytes %d; not sent",
                      self._where, event.event_id, size, config.max_payload_bytes)
            return None
        return JournalEntry(event.event_id, pack_messages(messages))

    def _send(self, entries: list[JournalEntry]) -> tuple[int, str]:
        """Publishes the entries and waits for their PUBACKs: how many from the front the
        broker acknowledged, and why not the rest.

        Raises:
            PublishRefused: a PUBACK of the batch refused its publication.
        """
        connection = self._connection
        online = self._online
        if online is not None and not _acked(online) and self._client.is_connected():
            # Just connected (a reconnect wakes the replay thread): paho's resends go first.
            with contextlib.suppress(RuntimeError, ValueError):
                online.wait_for_publish(self._config.ack_timeout)
        if not self.connected:
            return 0, "not connected"
        refusals = self._publish_refusals
        sent = [
            [self._client.publish(topic, payload, qos=1, retain=retain)
             for topic, payload, retain in unpack_messages(entry.fields)]
            for entry in entries
        ]
        done = self._acknowledged(sent, connection)
        if self._publish_refusals != refusals:
            # A PUBACK names a packet id only, reused at once: the whole batch stays undelivered.
            raise PublishRefused(f"mqtt sink {self._where}: the broker refused a publication: "
                                 f"{self._publish_refusal}")
        self.delivered += done
        if done == len(entries):
            return done, ""
        if connection != self._connection:
            return done, "connection lost before the PUBACKs"
        return done, f"no PUBACK within ack_timeout ({self._config.ack_timeout:g} s)"

    def _acknowledged(self, sent: list[list[mqtt.MQTTMessageInfo]], connection: int) -> int:
        """Waits until every message has its PUBACK, the connection drops or ``ack_timeout``
        passes; returns the number of leading entries whose every message was acknowledged."""
        deadline = time.monotonic() + self._config.ack_timeout
        flat = [(index, info) for index, infos in enumerate(sent) for info in infos]
        at = 0
        while True:
            while at < len(flat) and _acked(flat[at][1]):
                at += 1
            if at == len(flat):
                return len(sent)
            index, info = flat[at]
            remaining = deadline - time.monotonic()
            failed = info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN)
            if failed or remaining <= 0 or connection != self._connection or self._spool.stopping:
                return index
            try:
                flat[-1][1].wait_for_publish(min(remaining, _ACK_POLL))  # PUBACKs come in order
            except (RuntimeError, ValueError):
                self._spool.pause(min(remaining, _ACK_POLL))

    def _send_now(self, entries: list[JournalEntry]) -> list[JournalEntry]:
        """The direct path of ``publish``: the entries the broker did not acknowledge (spilled,
        with the reason)."""
        try:
            done, reason = self._send(entries)
        except PublishRefused as refused:
            done, reason = 0, str(refused)
        if done < len(entries):
            log.warning("mqtt sink %s: %s; %d event(s) spilled to journal %s",
                        self._where, reason, len(entries) - done, self._journal.path)
        return entries[done:]

    def _replay_send(self, entries: list[JournalEntry]) -> Sent:
        """A replayed batch, one wait for its PUBACKs; a refusal (``PublishRefused``) restarts the replay."""
        return Sent(*self._send(entries))
