"""Config models of the sinks, told apart by ``type``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Self, Union
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from fiqa_stream.configbase import MAX_SECONDS, StrictModel, checked_url


class DirectorySinkConfig(StrictModel):
    """Face crops as JPEG files plus ``events.jsonl`` in one output folder."""

    implementation: ClassVar[str] = "fiqa_stream.sinks.directory:DirectorySink"
    type: Literal["directory"] = "directory"
    path: Path = Field(description="Output folder; created when missing.")
    fsync: bool = Field(
        True, description="fsync every event line and crop, so a power loss loses nothing written.",
    )


def _default_journal(sink: str = "redis") -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "fiqa-stream" / f"{sink}-journal.sqlite3"


class JournalConfig(StrictModel):
    """The on-disk spill journal used while Redis is unreachable."""

    path: Path = Field(default_factory=_default_journal, description="SQLite journal file (created when missing).")
    max_bytes: int = Field(1 << 30, ge=1 << 20, description="Largest journal size in bytes.")
    when_full: Literal["drop_oldest", "block"] = Field(
        "drop_oldest",
        description="drop_oldest: delete the oldest spilled events (counted, logged); "
        "block: make the pipeline wait until Redis takes events again.",
    )

    def for_worker(self, index: int) -> Self:
        """This journal for worker ``index`` of several: a file of its own beside the configured one."""
        path = self.path
        name = f"{path.stem}-worker{index}{path.suffix}" if path.suffix else f"{path.name}-worker{index}"
        return self.model_copy(update={"path": path.with_name(name)})


class RedisSinkConfig(StrictModel):
    """Best shots as entries of Redis Streams (XADD), spilled to a journal while Redis is away."""

    implementation: ClassVar[str] = "fiqa_stream.sinks.redis_streams:RedisSink"
    type: Literal["redis"] = "redis"
    url: str = Field(description="redis://host:port/db, rediss:// for TLS, or unix:///path.sock.")
    username: str | None = Field(None, description="ACL user name (else the URL's).")
    password: SecretStr | None = Field(None, description="Password (else the URL's); use ${ENV}.")
    stream: str = Field(
        "fiqa:bestshots", min_length=1,
        description="Stream key; '{source}' in it gives one stream per source, e.g. 'fiqa:{source}'.",
    )
    maxlen: int | None = Field(
        1_000_000, ge=1, description="Approximate stream length kept (XADD MAXLEN ~); null keeps all.",
    )
    full_frames: bool = Field(False, description="Also store the whole best frame as JPEG under its own key.")
    frame_key: str = Field("fiqa:frame:{event_id}", description="Key of a stored frame; '{event_id}' required.")
    frame_ttl: int = Field(3600, ge=1, description="Seconds a stored frame lives.")
    max_entry_bytes: int = Field(
        2_000_000, ge=1024, description="Largest entry accepted; bigger events are rejected with an error.",
    )
    connect_timeout: float = Field(2.0, gt=0, le=MAX_SECONDS, description="Seconds to wait for a connection.")
    socket_timeout: float = Field(2.0, gt=0, le=MAX_SECONDS, description="Seconds to wait for a reply.")
    health_check_interval: int = Field(
        10, ge=0, le=int(MAX_SECONDS), description="Seconds idle before a connection is checked.",
    )
    retries: int = Field(1, ge=0, le=10, description="Immediate retries (with backoff) before spilling.")
    batch: int = Field(256, ge=1, description="Most entries sent in one round trip when replaying.")
    journal: JournalConfig = Field(default_factory=JournalConfig, description="Spill journal.")

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        url = checked_url(url)
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return url

    @field_validator("stream")
    @classmethod
    def _template(cls, stream: str) -> str:
        try:
            stream.format(source="s")
        except (KeyError, IndexError, ValueError):
            raise ValueError("only '{source}' may be used in braces") from None
        return stream

    @field_validator("frame_key")
    @classmethod
    def _frame_template(cls, key: str) -> str:
        try:
            formatted = key.format(event_id="\0")
        except (KeyError, IndexError, ValueError):
            raise ValueError("only '{event_id}' may be used in braces") from None
        if "\0" not in formatted:
            raise ValueError("must contain '{event_id}'")
        return key


class MqttJournalConfig(JournalConfig):
    """The on-disk spill journal used while the MQTT broker is unreachable."""

    path: Path = Field(
        default_factory=lambda: _default_journal("mqtt"), description="SQLite journal file (created when missing).",
    )
    when_full: Literal["drop_oldest", "block"] = Field(
        "drop_oldest",
        description="drop_oldest: delete the oldest spilled events (counted, logged); "
        "block: make the pipeline wait until the broker takes events again.",
    )


def _topic(value: str, allowed: tuple[str, ...]) -> str:
    """A topic (template) to publish on: no wildcards, only the ``allowed`` fields in braces."""
    try:
        formatted = value.format(**dict.fromkeys(allowed, "x"))
    except (KeyError, IndexError, ValueError):
        fields = ", ".join(f"'{{{name}}}'" for name in allowed)
        raise ValueError(f"only {fields} may be used in braces" if allowed else "braces are not allowed") from None
    if not formatted or "+" in formatted or "#" in formatted or "\0" in formatted:
        raise ValueError("a topic to publish on must be non-empty, without '+', '#' or NUL")
    return value


class MqttTlsConfig(StrictModel):
    """TLS towards the broker (used with an mqtts:// URL)."""

    ca_file: Path | None = Field(None, description="PEM file of the CAs to trust (else the system's).")
    cert_file: Path | None = Field(None, description="Client certificate (PEM) for brokers that require one.")
    key_file: Path | None = Field(None, description="Private key (PEM) of cert_file.")
    verify_hostname: bool = Field(
        True, description="Check that the broker's certificate names the URL's host; off only for test set-ups.",
    )

    @model_validator(mode="after")
    def _key_with_cert(self) -> MqttTlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file needs cert_file")
        return self


class HomeAssistantConfig(StrictModel):
    """Home Assistant MQTT discovery: a quality sensor and a best-shot image entity per source."""

    discovery: bool = Field(False, description="Publish retained discovery configs for each source seen.")
    prefix: str = Field("homeassistant", description="Discovery prefix configured in Home Assistant.")
    image_topic: str = Field(
        "fiqa/{source}/snapshot",
        description="Retained topic holding each source's latest crop, for the image entity; '{source}' required.",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        return _topic(prefix, ())

    @field_validator("image_topic")
    @classmethod
    def _image_topic(cls, topic: str) -> str:
        if "{source}" not in _topic(topic, ("source",)):
            raise ValueError("must contain '{source}'")
        return topic


class MqttSinkConfig(StrictModel):
    """Best shots published to an MQTT broker (QoS 1), spilled to a journal while it is away."""

    implementation: ClassVar[str] = "fiqa_stream.sinks.mqtt:MqttSink"
    type: Literal["mqtt"] = "mqtt"
    url: str = Field(description="mqtt://host[:port] (1883), or mqtts://host[:port] (8883) for TLS.")
    username: str | None = Field(None, description="User name (else the URL's).")
    password: SecretStr | None = Field(None, description="Password (else the URL's); use ${ENV}.")
    client_id: str | None = Field(
        None, min_length=1, max_length=128,
        description="MQTT client id; default 'fiqa-stream-<host>-<pid>' (two clients with one id evict each other).",
    )
    topic: str = Field("fiqa/{source}/best_shot", description="Topic of the event JSON; '{source}' may be used.")
    snapshot_topic: str | None = Field(
        "fiqa/{source}/{track_id}/snapshot",
        description="Retained topic of each event's crop (JPEG); '{source}' and '{track_id}' may be used; "
        "null publishes no crops.",
    )
    availability_topic: str = Field(
        "fiqa/availability", description="Retained 'online' while connected, 'offline' on stop or as last will.",
    )
    keepalive: int = Field(15, ge=5, le=3600, description="Seconds between keep-alive pings; a silent broker "
                           "counts as gone after 1.5 times this.")
    connect_timeout: float = Field(5.0, gt=0, le=MAX_SECONDS, description="Seconds to wait for a connection.")
    ack_timeout: float = Field(
        5.0, gt=0, le=MAX_SECONDS,
        description="Seconds to wait for the broker's PUBACKs; unacknowledged events go to the journal.",
    )
    reconnect_min_delay: float = Field(0.5, gt=0, le=MAX_SECONDS, description="First wait before reconnecting, s.")
    reconnect_max_delay: float = Field(30.0, gt=0, le=MAX_SECONDS, description="Longest wait between reconnects, s.")
    max_inflight: int = Field(
        20, ge=1, le=65535,
        description="Most unacknowledged messages on the wire at once; at most the broker's Receive Maximum.",
    )
    max_payload_bytes: int = Field(
        2_000_000, ge=1024, le=256 << 20,
        description="Largest event (JSON plus crop) accepted; bigger events are refused. At most the broker's "
        "message_size_limit.",
    )
    batch: int = Field(256, ge=1, description="Most events sent before waiting for their PUBACKs when replaying.")
    tls: MqttTlsConfig | None = Field(None, description="TLS settings; mqtts:// without them uses the system's CAs.")
    home_assistant: HomeAssistantConfig = Field(
        default_factory=HomeAssistantConfig, description="Home Assistant MQTT discovery (off by default).",
    )
    journal: MqttJournalConfig = Field(default_factory=MqttJournalConfig, description="Spill journal.")

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, url: str) -> str:
        url = checked_url(url)
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError("expected mqtt://host[:port] or mqtts://host[:port]")
        return url

    @field_validator("topic")
    @classmethod
    def _event_topic(cls, topic: str) -> str:
        return _topic(topic, ("source",))

    @field_validator("snapshot_topic")
    @classmethod
    def _snapshot_topic(cls, topic: str | None) -> str | None:
        return None if topic is None else _topic(topic, ("source", "track_id"))

    @field_validator("availability_topic")
    @classmethod
    def _availability_topic(cls, topic: str) -> str:
        return _topic(topic, ())

    @model_validator(mode="after")
    def _consistent(self) -> MqttSinkConfig:
        if self.tls is not None and not self.url.startswith("mqtts:"):
            raise ValueError("tls settings need an mqtts:// URL")
        if self.reconnect_max_delay < self.reconnect_min_delay:
            raise ValueError("reconnect_max_delay is below reconnect_min_delay")
        if self.home_assistant.discovery and "{source}" not in self.topic:
            raise ValueError("home_assistant.discovery needs '{source}' in topic (one sensor per source)")
        return self


class WebhookJournalConfig(JournalConfig):
    """The on-disk spill journal used while the webhook endpoint is down."""

    path: Path = Field(
        default_factory=lambda: _default_journal("webhook"), description="SQLite journal file (created when missing).",
    )
    when_full: Literal["drop_oldest", "block"] = Field(
        "drop_oldest",
        description="drop_oldest: delete the oldest spilled events (counted, logged); "
        "block: make the pipeline wait until the endpoint takes events again.",
    )


class WebhookSinkConfig(StrictModel):
    """Best shots POSTed one by one to an HTTP endpoint, spilled to a journal while it is down."""

    implementation: ClassVar[str] = "fiqa_stream.sinks.webhook:WebhookSink"
    type: Literal["webhook"] = "webhook"
    url: str = Field(description="http:// or https:// endpoint; a user:password in it is sent as Basic auth.")
    format: Literal["json", "multipart"] = Field(
        "json", description="json: the event with the crop in base64; multipart: the event JSON and the crop JPEG.",
    )
    secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key: each body is signed in 'X-Fiqa-Signature: sha256=<hex>'; use ${ENV}.",
    )
    token: SecretStr | None = Field(None, description="Sent as 'Authorization: Bearer <token>'; use ${ENV}.")
    timeout: float = Field(5.0, gt=0, le=MAX_SECONDS, description="Seconds for the connection and for each read.")
    retries: int = Field(3, ge=0, le=10, description="Retries of a failed delivery before it goes to the journal.")
    backoff: float = Field(
        0.5, gt=0, le=MAX_SECONDS, description="Seconds before the first retry; doubled after each failure.",
    )
    max_backoff: float = Field(30.0, gt=0, le=MAX_SECONDS, description="Longest wait between attempts, in seconds.")
    ca_file: Path | None = Field(None, description="PEM file of the CAs to trust for https (else the system's).")
    journal: WebhookJournalConfig = Field(default_factory=WebhookJournalConfig, description="Spill journal.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = checked_url(url)
        if not url.isascii() or not url.isprintable() or " " in url:
            raise ValueError("contains a space, a control or a non-ASCII character: percent-encode it")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL with a host")
        return url

    @field_validator("secret", "token")
    @classmethod
    def _not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            raise ValueError("is empty (an unset ${VARIABLE:-}?); leave the key out to send without it")
        return value

    @field_validator("token")
    @classmethod
    def _header_safe(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and not all(33 <= ord(c) <= 126 for c in token.get_secret_value()):
            raise ValueError("may hold only visible ASCII characters (no spaces or line breaks)")
        return token


SinkConfig = Annotated[
    Union[DirectorySinkConfig, RedisSinkConfig, WebhookSinkConfig, MqttSinkConfig],  # noqa: UP007
    Field(discriminator="type"),
]


def sink_for_worker(sink: SinkConfig, index: int) -> SinkConfig:
    """The sink of worker ``index`` of several: no two processes share a spill journal."""
    if isinstance(sink, DirectorySinkConfig):
        return sink
    return sink.model_copy(update={"journal": sink.journal.for_worker(index)})
