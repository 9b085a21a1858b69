"""Damaged video: the frames that may show decode garbage are marked corrupt, from the
damage to the next key frame, and no others."""

from __future__ import annotations

import threading
from pathlib import Path

import av
import numpy as np
import pytest

from fiqa_stream.media.faces import face_photos
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.file_source import FileSource
from fiqa_stream.stream.source_base import SourceEnd, SourceItem
from fiqa_stream.types import Frame

FPS = 25
FRAMES = 75
GOP = 30  # key frames at 0, 30 and 60
DAMAGED = 40  # a P-frame in the middle of the second group of pictures


def encode(path: Path) -> Path:
    """75 frames of a real face sliding over a textured background: H.264, g=30, no B-frames."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 256, (240, 320, 3), np.uint8)
    face = face_photos()[0][:96, :96]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"g": str(GOP), "keyint_min": str(GOP), "bf": "0", "sc_threshold": "0"}
        for index in range(FRAMES):
            image = np.roll(background, 4 * index, axis=1)
            image[60:156, 40 + 2 * index : 136 + 2 * index] = face
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode(tmp_path_factory.mktemp("damage") / "clip.mp4")


def packets(path: Path) -> list[tuple[int, int, bool]]:
    """(position in the file, size, key frame) of each video packet, in decode order."""
    with av.open(str(path)) as container:
        return [(int(p.pos), p.size, p.is_keyframe) for p in container.demux(video=0) if p.size]


def damaged_copy(src: Path, dst: Path, packet: int, *, start: int, length: int | None = None) -> Path:
    """A copy of ``src`` with bytes of one packet inverted: from ``start`` on, ``length`` of them
    (all the rest when None); the container stays intact, only that frame's data is damaged."""
    position, size, _ = packets(src)[packet]
    data = bytearray(src.read_bytes())
    stop = position + size if length is None else position + start + length
    for offset in range(position + start, stop):
        data[offset] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def decode(path: Path) -> tuple[list[Frame], SourceEnd, FileSource]:
    stop = threading.Event()
    buffer: FrameBuffer[SourceItem] = FrameBuffer(4, "block", threading.Condition())
    source = FileSource("clip", path, SourceConfig(url=str(path), queue_size=4), buffer, stop)
    source.start()
    frames: list[Frame] = []
    while True:
        item = buffer.get_nowait()
        if item is None:
            threading.Event().wait(0.001)
        elif isinstance(item, SourceEnd):
            source.join(5)
            return frames, item, source
        else:
            frames.append(item)


def number(frame: Frame) -> int:
    """The frame's number in the encoded clip, from its media time (decode indexes skip nothing)."""
    assert frame.pts is not None
    return round(frame.pts * FPS)


def test_the_clip_has_key_frames_every_30_frames_and_decodes_clean(clip: Path) -> None:
    assert [index for index, (_, _, key) in enumerate(packets(clip)) if key] == [0, 30, 60]
    frames, end, source = decode(clip)
    assert end.error is None and source.bad_packets == 0
    assert len(frames) == FRAMES
    assert not any(frame.corrupt for frame in frames)


def test_frames_after_a_packet_that_failed_are_corrupt_until_the_next_key_frame(clip: Path, tmp_path: Path) -> None:
    # Inverting all of a packet's slice data makes the decoder refuse the packet outright.
    bad = damaged_copy(clip, tmp_path / "bad.mp4", DAMAGED, start=8)
    frames, end, source = decode(bad)
    assert end.error is None  # one lost frame of 75 is within the truncation slack
    assert source.bad_packets == 1
    seen = [number(frame) for frame in frames]
    assert DAMAGED not in seen and len(seen) == FRAMES - 1
    corrupt = [number(frame) for frame in frames if frame.corrupt]
    assert corrupt == list(range(DAMAGED + 1, 2 * GOP))  # 41..59: each predicts from the lost one
    assert not any(frame.corrupt for frame in frames if number(frame) >= 2 * GOP)  # the key frame clears it
    assert [frame.index for frame in frames] == list(range(FRAMES - 1))  # decoded frames are counted on


def test_a_frame_the_decoder_conceals_is_corrupt(clip: Path, tmp_path: Path) -> None:
    # Four bytes inverted in the middle of the packet: FFmpeg decodes it, hides the damage and
    # flags the frame corrupt.
    size = packets(clip)[DAMAGED][1]
    bad = damaged_copy(clip, tmp_path / "concealed.mp4", DAMAGED, start=size // 2, length=4)
    frames, _, source = decode(bad)
    assert source.bad_packets == 0 and len(frames) == FRAMES
    assert frames[DAMAGED].corrupt
    assert not any(frame.corrupt for frame in frames[:DAMAGED])
    assert not any(frame.corrupt for frame in frames[2 * GOP :])


def test_damage_the_decoder_conceals_spreads_to_the_next_key_frame(clip: Path, tmp_path: Path) -> None:
    size = packets(clip)[DAMAGED][1]
    bad = damaged_copy(clip, tmp_path / "concealed.mp4", DAMAGED, start=size // 2, length=4)
    frames, _, _ = decode(bad)
    clean, _, _ = decode(clip)
    # The damage is really there in every frame up to the key frame, and gone after it.
    differs = [n for n, (a, b) in enumerate(zip(frames, clean, strict=True))
               if np.abs(a.image.astype(np.int16) - b.image).mean() > 2]
    assert differs == list(range(DAMAGED, 2 * GOP))
    assert [frame.index for frame in frames if frame.corrupt] == list(range(DAMAGED, 2 * GOP))


def test_a_lost_key_frame_taints_its_whole_group_and_the_next_key_frame_clears_it(clip: Path, tmp_path: Path) -> None:
    bad = damaged_copy(clip, tmp_path / "key.mp4", GOP, start=8)
    frames, end, source = decode(bad)
    assert source.bad_packets == 1
    seen = [number(frame) for frame in frames]
    assert seen[:GOP] == list(range(GOP)) and GOP not in seen
    assert all(frame.corrupt == (GOP < number(frame) < 2 * GOP) for frame in frames), [
        (number(frame), frame.corrupt) for frame in frames]
    assert seen[-(FRAMES - 2 * GOP) :] == list(range(2 * GOP, FRAMES))
    # The decoder gives up on frames with nothing to predict from: the file counts as damaged.
    assert end.error is not None and "truncated or damaged" in str(end.error)
