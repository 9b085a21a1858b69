"""The bounded per-source buffer: what each policy keeps when it is full."""

from __future__ import annotations

import threading

from fiqa_stream.stream.buffers import FrameBuffer


def drained(buffer: FrameBuffer[str]) -> list[str]:
    items = []
    while (item := buffer.get_nowait()) is not None:
        items.append(item)
    return items


def test_a_full_live_buffer_drops_its_oldest_frame_and_counts_it() -> None:
    buffer: FrameBuffer[str] = FrameBuffer(2, "drop_oldest", threading.Condition())
    for frame in ("f1", "f2", "f3"):
        buffer.put(frame, threading.Event())
    assert drained(buffer) == ["f2", "f3"]
    assert buffer.dropped == 1


def test_a_full_live_buffer_never_drops_an_outage_marker_put_with_force() -> None:
    buffer: FrameBuffer[str] = FrameBuffer(2, "drop_oldest", threading.Condition())
    buffer.put("f1", threading.Event())
    buffer.put("outage", threading.Event(), force=True)
    for frame in ("f2", "f3", "f4"):
        buffer.put(frame, threading.Event())
    assert drained(buffer) == ["outage", "f4"]
    assert buffer.dropped == 3


def test_a_full_file_buffer_gives_up_waiting_when_stopped() -> None:
    buffer: FrameBuffer[str] = FrameBuffer(1, "block", threading.Condition())
    stop = threading.Event()
    buffer.put("f1", stop)
    stop.set()
    assert buffer.put("f2", stop) is False
    assert drained(buffer) == ["f1"]
