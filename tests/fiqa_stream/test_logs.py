"""Log lines as a person and a log collector read them: one record, one line."""

from __future__ import annotations

import json
import logging

import pytest

from fiqa_stream.logs import configure_logging

HOSTILE = "cam\nfiqa-stream: ERROR: forged\r\x1b[31mred\x07\x85\u2028\tend"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield None
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_text_log_line_shows_control_characters_escaped_so_a_name_cannot_forge_a_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("info")
    logging.getLogger("fiqa_stream").error("%s: cannot open as video", HOSTILE)
    assert capsys.readouterr().err == (
        "fiqa-stream: ERROR: cam\\nfiqa-stream: ERROR: forged\\r\\x1b[31mred\\x07\\x85\\u2028\tend: "
        "cannot open as video\n"
    )


def test_a_json_log_line_holds_the_message_exactly_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", json_lines=True)
    logging.getLogger("fiqa_stream").error("%s: cannot open as video", HOSTILE)
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == f"{HOSTILE}: cannot open as video"
