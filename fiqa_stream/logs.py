"""Logging set-up: readable text for people, one JSON object per line for machines.

Every message passes through ``redact_text`` so a URL with a password that reaches a
log line (from FFmpeg or a library) never shows the password. In text logs, control
characters of a message (a newline in a file name, a terminal escape) are written as
escapes such as ``\\n`` and ``\\x1b``, so one record is one line and a name cannot forge
another line or recolour the terminal; JSON logs escape them by JSON's own rules.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from fiqa_stream.redact import redact_text

# C0 controls, DEL, C1 controls and Unicode's line and paragraph separators; a tab is
# harmless and stays.
_CONTROLS = {
    code: {"\n": "\\n", "\r": "\\r"}.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
    if code != 0x09
}


def escape_controls(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\n``, ``\\x1b``): one line,
    and nothing a terminal acts on."""
    return text.translate(_CONTROLS)


class _RedactingFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        # Only the message line; a traceback appended after it keeps its own lines.
        return escape_controls(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry)


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    text = _RedactingFormatter("fiqa-stream: %(levelname)s: %(message)s")
    handler.setFormatter(JsonFormatter() if json_lines else text)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
