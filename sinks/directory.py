"""Directory sink: ``OUT/events.jsonl`` plus ``OUT/crops/<source>/<run_id>-<track:06d>-<seq>-<kind>.jpg``.

Crash safety: each crop is written to a temporary file and renamed into place before
its event line is appended, and each line is one ``write`` on an ``O_APPEND`` file, so
after a crash every event line points at a whole crop and no line is half written. A
crash between the two leaves a hidden ``.NAME.jpg.tmp`` behind; the sink removes those
when it starts (and a writer whose temporary file such a clean-up took writes it again,
so sinks of several worker processes can share one folder).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from fiqa_stream.closing import ClosedOnExit
from fiqa_stream.errors import SinkError
from fiqa_stream.sinks.config import DirectorySinkConfig
from fiqa_stream.sinks.events import crop_name, event_fields
from fiqa_stream.types import BestShot

log = logging.getLogger(__name__)

# Temporary crops as ``write_atomically`` names them; nothing else in ``crops/`` matches.
TEMPORARY_CROPS = ".*.jpg.tmp"
_ATTEMPTS = 3


def write_atomically(path: Path, data: bytes, fsync: bool) -> None:
    """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    for attempt in range(1, _ATTEMPTS + 1):
        with open(temporary, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        try:
            os.replace(temporary, path)
            return
        except FileNotFoundError:
            # Another sink starting on the same folder took it for a crash's leftover.
            if attempt == _ATTEMPTS:
                raise
            log.debug("%s: temporary file removed before its rename; writing it again", temporary)


def remove_temporary_crops(crops: Path) -> int:
    """Delete the temporary crops a crash left under ``crops``; returns how many."""
    removed = 0
    for leftover in crops.rglob(TEMPORARY_CROPS):
        if leftover.is_file() and not leftover.is_symlink():
            leftover.unlink(missing_ok=True)
            removed += 1
    return removed


class DirectorySink(ClosedOnExit):
    """Writes best shots into one output folder."""

    name = "directory"

    def __init__(self, config: DirectorySinkConfig) -> None:
        self._root = config.path
        self._fsync = config.fsync
        try:
            (self._root / "crops").mkdir(parents=True, exist_ok=True)
            removed = remove_temporary_crops(self._root / "crops")
            self._events = os.open(
                self._root / "events.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        except OSError as error:
            raise SinkError(f"directory sink '{self._root}': cannot write there: {error.strerror}") from error
        if removed:
            log.info("directory sink '%s': removed %d temporary crop file(s) left by an earlier crash",
                     self._root, removed)

    def publish(self, events: Sequence[BestShot]) -> None:
        lines = []
        for event in events:
            relative = Path("crops") / crop_name(event)
            target = self._root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, event.crop_jpeg, self._fsync)
            fields = event_fields(event)
            fields["crop"] = relative.as_posix()
            lines.append(json.dumps(fields, separators=(",", ":")) + "\n")
        if lines:
            pending = memoryview("".join(lines).encode())
            while pending:
                pending = pending[os.write(self._events, pending) :]
            if self._fsync:
                os.fsync(self._events)

    def close(self) -> None:
        if self._events >= 0:
            os.close(self._events)
            self._events = -1
