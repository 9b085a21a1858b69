"""Credentials never leave in clear: URLs in logs, errors, tables and events are masked."""

from __future__ import annotations

import pytest

from fiqa_stream.redact import ambiguous_credentials, redact_text, redact_url


@pytest.mark.parametrize("password", ["hunter2", "p%2Fss", "p@ss", "pa/ss", "pa?ss", "pa#ss", "12/34", "a/b?c#d@e"])
def test_a_password_is_masked_whatever_characters_it_holds(password: str) -> None:
    url = f"rtsp://admin:{password}@10.0.0.5:554/cam"
    assert redact_url(url) == "rtsp://admin:***@10.0.0.5:554/cam"
    assert redact_text(f"cannot open '{url}': refused") == "cannot open 'rtsp://admin:***@10.0.0.5:554/cam': refused"


@pytest.mark.parametrize("url", [
    "rtsp://10.0.0.5:554/cam", "https://cdn.example/live.m3u8?user=a@b", "demo:", "videos/*.mp4", "rtsp://[::1]:554/c",
])
def test_a_url_without_a_password_is_left_alone(url: str) -> None:
    assert redact_url(url) == url
    assert redact_text(url) == url


def test_only_a_raw_slash_question_mark_or_hash_makes_credentials_ambiguous() -> None:
    assert ambiguous_credentials("rtsp://admin:pa/ss@10.0.0.5/cam")
    assert ambiguous_credentials("redis://u:1?2@localhost:6379/0")
    assert not ambiguous_credentials("rtsp://admin:p@ss@10.0.0.5/cam")
    assert not ambiguous_credentials("rtsp://admin:pa%2Fss@10.0.0.5/cam")
    assert not ambiguous_credentials("https://cdn.example/live.m3u8?user=a@b")
