"""Config models of the sinks, told apart by ``type``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from fiqa_stream.configbase import StrictModel


class DirectorySinkConfig(StrictModel):
    """Face crops as JPEG files plus ``events.jsonl`` in one output folder."""

    type: Literal["directory"] = "directory"
    path: Path = Field(description="Output folder; created when missing.")
    fsync: bool = Field(
        True, description="fsync every event line and crop, so a power loss loses nothing written.",
    )


# A one-member Union still gives the "unknown type" error its tag; more sinks join it.
SinkConfig = Annotated[Union[DirectorySinkConfig], Field(discriminator="type")]  # noqa: UP007
