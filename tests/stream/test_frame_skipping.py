"""Decoding only what is analysed: a file source that skips frames, seeks to spans or
takes key frames alone gives each frame it yields the index, time and pixels a full
decode gives it, and decodes fewer frames to do so."""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from fiqa_stream.media.clips import compose_nonface_clip
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import FrameSampler, Timeline, live_frame_skip
from fiqa_stream.stream.file_source import FileSource, scan_timeline
from fiqa_stream.stream.source_base import SourceEnd, SourceItem, SourceOutage
from fiqa_stream.types import Frame

FRAMES = 150
GOP = 20


def encode(path: Path, codec: str, container_format: str) -> Path:
    """150 frames of a textured background with a bar sliding down it, at a variable frame
    rate (30-50 ms apart); H.264 with three B-frames between references, or another codec."""
    rng = np.random.default_rng(1)
    background = rng.integers(0, 256, (240, 320, 3), np.uint8)
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        stream.gop_size = GOP
        if codec == "libx264":
            stream.options = {"bframes": "3", "preset": "veryfast"}
        pts = 0
        for index in range(FRAMES):
            image = background.copy()
            image[(3 * index) % 220 : (3 * index) % 220 + 20] = 255
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            pts += int(rng.choice([30, 40, 50]))
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def bframes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(tmp_path_factory.mktemp("skip") / "bframes.mp4", "libx264", "mp4")


@pytest.fixture(scope="module")
def bframes_mkv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(tmp_path_factory.mktemp("skip") / "bframes.mkv", "libx264", "matroska")


@pytest.fixture(scope="module")
def mpeg4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(tmp_path_factory.mktemp("skip") / "part2.mp4", "mpeg4", "mp4")


def decode(path: Path, *, key_frame_gap: float | None = None, max_width: int | None = None,
           **sampling: Any) -> tuple[list[SourceItem], FileSource]:
    """Everything a file source puts in its buffer, up to and without its end marker."""
    config = SourceConfig(url=str(path), queue_size=4, **sampling)
    buffer: FrameBuffer[SourceItem] = FrameBuffer(4, "block", threading.Condition())
    source = FileSource("clip", path, config, buffer, threading.Event(), key_frame_gap=key_frame_gap,
                        max_width=max_width)
    source.start()
    items: list[SourceItem] = []
    while True:
        item = buffer.get_nowait()
        if item is None:
            threading.Event().wait(0.001)
        elif isinstance(item, SourceEnd):
            source.join(5)
            assert item.error is None, item.error
            return items, source
        else:
            items.append(item)


def frames_of(items: list[SourceItem]) -> list[Frame]:
    return [item for item in items if isinstance(item, Frame)]


def assert_as_decoded_whole(frames: list[Frame], whole: list[Frame], indexes: list[int]) -> None:
    """``frames`` are exactly frames ``indexes`` of the full decode: index, time and pixels."""
    assert [f.index for f in frames] == indexes
    for frame in frames:
        reference = whole[frame.index]
        assert frame.pts == reference.pts
        assert np.array_equal(frame.image, reference.image), f"frame {frame.index} differs"


@pytest.mark.parametrize("clip", ["bframes", "bframes_mkv"])
@pytest.mark.parametrize(("every", "fps"), [(3, None), (1, 5.0)])
def test_a_thinning_sampler_gets_the_frames_of_a_full_decode_from_fewer_decoded(
    clip: str, every: int, fps: float | None, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(clip)
    whole, _ = decode(path)
    assert [f.index for f in frames_of(whole)] == list(range(FRAMES))
    sampler = FrameSampler(every, fps)
    kept = [f.index for f in frames_of(whole) if sampler.keep(f.index, f.pts)]
    items, source = decode(path, every=every, fps=fps)
    assert_as_decoded_whole(frames_of(items), frames_of(whole), kept)
    # Non-reference B-frames that are not analysed were never decoded.
    assert len(kept) < source.decoded < FRAMES


def test_spans_seek_and_keep_the_index_a_full_decode_gives(bframes: Path) -> None:
    whole = frames_of(decode(bframes)[0])
    spans = [(1.0, 1.6), (3.9, 4.5)]  # both start between key frames
    items, source = decode(bframes, spans=spans)
    inside = [f.index for f in whole if f.pts is not None and any(a <= f.pts <= b for a, b in spans)]
    assert_as_decoded_whole(frames_of(items), whole, inside)
    # Between the spans the tracks end: one marker, between the last frame of one and the first of the other.
    assert [type(item) for item in items].count(SourceOutage) == 1
    gap = next(i for i, item in enumerate(items) if isinstance(item, SourceOutage))
    assert all(spans[0][0] <= f.pts <= spans[0][1] for f in frames_of(items[:gap]))
    assert all(spans[1][0] <= f.pts <= spans[1][1] for f in frames_of(items[gap:]))
    assert source.decoded < FRAMES // 2


def test_spans_and_every_combine_as_in_a_full_pass(bframes: Path) -> None:
    whole = frames_of(decode(bframes)[0])
    spans = [(0.5, 2.0), (4.0, 5.5)]
    items, _ = decode(bframes, spans=spans, every=4)
    kept = [f.index for f in whole if f.index % 4 == 0 and any(a <= f.pts <= b for a, b in spans)]
    assert_as_decoded_whole(frames_of(items), whole, kept)


def test_key_frames_alone_are_decoded_and_nothing_else(bframes: Path) -> None:
    whole = frames_of(decode(bframes)[0])
    timeline = scan_timeline(bframes)
    assert timeline is not None
    items, source = decode(bframes, key_frame_gap=0.0)
    assert_as_decoded_whole(frames_of(items), whole, [int(k) for k in timeline.keys])
    assert source.decoded == len(timeline.keys) < FRAMES // 10


def test_dense_key_frames_are_thinned_to_the_gap_asked(bframes: Path) -> None:
    whole = frames_of(decode(bframes)[0])
    timeline = scan_timeline(bframes)
    assert timeline is not None
    items, source = decode(bframes, key_frame_gap=2.0)
    frames = frames_of(items)
    assert {f.index for f in frames} < {int(k) for k in timeline.keys}
    times = [f.pts for f in frames] + [whole[-1].pts]
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) <= 2.0
    assert source.decoded == len(frames)


def test_key_frames_can_be_converted_smaller_for_detection(bframes: Path) -> None:
    items, _ = decode(bframes, key_frame_gap=0.0, max_width=160)
    assert {f.image.shape for f in frames_of(items)} == {(120, 160, 3)}


def test_a_codec_whose_packets_do_not_place_frames_is_decoded_whole_and_counted(mpeg4: Path) -> None:
    assert scan_timeline(mpeg4) is None
    whole = frames_of(decode(mpeg4)[0])
    spans = [(1.0, 2.0), (4.0, 5.0)]
    items, source = decode(mpeg4, spans=spans, every=2)
    kept = [f.index for f in whole if f.index % 2 == 0 and any(a <= f.pts <= b for a, b in spans)]
    assert_as_decoded_whole(frames_of(items), whole, kept)
    assert [type(item) for item in items].count(SourceOutage) == 1
    assert source.decoded == FRAMES


def test_a_file_decoded_whole_reads_no_timeline_and_skips_nothing(tmp_path: Path) -> None:
    clip = compose_nonface_clip(tmp_path / "still.mp4", width=320, height=240, fps=10.0, seconds=2.0)
    items, source = decode(clip.path)
    assert [f.index for f in frames_of(items)] == list(range(clip.frame_count))
    assert source.decoded == clip.frame_count


def test_the_timeline_refuses_packets_it_cannot_place() -> None:
    base = Fraction(1, 1000)
    assert Timeline.of([(0, True), (None, False)], base) is None
    assert Timeline.of([(0, True), (40, False), (40, False)], base) is None
    timeline = Timeline.of([(0, True), (80, False), (40, False), (120, True), (160, False)], base)
    assert timeline is not None
    assert timeline.index(80) == 2 and timeline.index(81) is None
    assert timeline.key_before(2) == 0 and timeline.key_before(3) == 3 and timeline.key_before(4) == 3
    assert timeline.seconds(4) == 0.16
    assert timeline.ranges([(0.03, 0.09), (0.5, 0.6)]) == [(1, 2)]


def test_key_frames_are_spread_as_few_as_keep_the_gap() -> None:
    # A frame every 0.2 s to 3.0 s; key frames at 0, 0.4, 0.8, 1.2, 2.6 and 3.0 s.
    keys = {0, 2, 4, 6, 13, 15}
    timeline = Timeline.of([(200 * i, i in keys) for i in range(16)], Fraction(1, 1000))
    assert timeline is not None
    # From 0 s the furthest within 1 s is 0.8 s, then 1.2 s; 2.6 s is out of reach but next;
    # from there the end (3.0 s) is near enough.
    assert timeline.spread_keys(1.0).tolist() == [0, 4, 6, 13]
    assert timeline.spread_keys(0.0).tolist() == sorted(keys)


@pytest.mark.parametrize(("every", "fps", "rate", "skip"), [
    (1, 5.0, Fraction(25), "NONREF"),
    (1, 12.5, Fraction(25), "NONREF"),
    (1, 20.0, Fraction(25), "DEFAULT"),  # most frames are analysed: skipping B-frames would cost some
    (1, 5.0, None, "DEFAULT"),  # the stream's rate is not known
    (5, None, Fraction(25), "DEFAULT"),  # every counts decoded frames: skipping would thin twice
    (1, None, Fraction(25), "DEFAULT"),
])
def test_a_live_stream_skips_non_reference_frames_when_fps_keeps_at_most_half(
    every: int, fps: float | None, rate: Fraction | None, skip: str
) -> None:
    config = SourceConfig(url="rtsp://camera/stream", every=every, fps=fps)
    assert live_frame_skip(config, rate) == skip
