"""Config models of the sinks, told apart by ``type``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from fiqa_stream.configbase import MAX_SECONDS, StrictModel, refuse_ambiguous_credentials


class DirectorySinkConfig(StrictModel):
    """Face crops as JPEG files plus ``events.jsonl`` in one output folder."""

    type: Literal["directory"] = "directory"
    path: Path = Field(description="Output folder; created when missing.")
    fsync: bool = Field(
        True, description="fsync every event line and crop, so a power loss loses nothing written.",
    )


def _default_journal() -> Path:
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "fiqa-stream" / "redis-journal.sqlite3"


class JournalConfig(StrictModel):
    """The on-disk spill journal used while Redis is unreachable."""

    path: Path = Field(default_factory=_default_journal, description="SQLite journal file (created when missing).")
    max_bytes: int = Field(1 << 30, ge=1 << 20, description="Largest journal size in bytes.")
    when_full: Literal["drop_oldest", "block"] = Field(
        "drop_oldest",
        description="drop_oldest: delete the oldest spilled events (counted, logged); "
        "block: make the pipeline wait until Redis takes events again.",
    )


class RedisSinkConfig(StrictModel):
    """Best shots as entries of Redis Streams (XADD), spilled to a journal while Redis is away."""

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
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return refuse_ambiguous_credentials(url)

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


SinkConfig = Annotated[Union[DirectorySinkConfig, RedisSinkConfig], Field(discriminator="type")]  # noqa: UP007
