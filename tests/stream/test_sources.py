"""Video file sources: expansion, frame sampling, threaded decoding, bad input and hardware decoding."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from av.codec.hwaccel import hwdevices_available

from fiqa_stream.config import parse_config
from fiqa_stream.device import cuda_device_count
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.clips import ClipTruth, corrupt_copy, flat_clip, garbage_file
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.decoding import FrameSampler, hardware_decoder
from fiqa_stream.stream.source_base import SourceEnd, SourceItem
from fiqa_stream.stream.sources import SourceSpec, expand_sources, open_source
from fiqa_stream.types import Frame


def decode_all(path: Path, every: int = 1, fps: float | None = None) -> tuple[list[Frame], SourceEnd]:
    return decode_spec(SourceSpec("clip", SourceConfig(url=str(path), every=every, fps=fps, queue_size=4), path))


def decode_spec(spec: SourceSpec) -> tuple[list[Frame], SourceEnd]:
    stop = threading.Event()
    buffer: FrameBuffer[SourceItem] = FrameBuffer(4, "block", threading.Condition())
    source = open_source(spec, buffer, stop)
    source.start()
    frames: list[Frame] = []
    while True:
        item = buffer.get_nowait()
        if item is None:
            threading.Event().wait(0.001)
        elif isinstance(item, SourceEnd):
            source.join(5)
            return frames, item
        else:
            frames.append(item)


def test_every_frame_of_a_file_arrives_in_order_with_index_and_media_time(face_clip: ClipTruth) -> None:
    frames, end = decode_all(face_clip.path)
    assert end.error is None
    assert [f.index for f in frames] == list(range(face_clip.frame_count))
    assert frames[10].pts == pytest.approx(10 / face_clip.fps)
    assert frames[0].image.shape == (face_clip.height, face_clip.width, 3)
    assert all(f.source == "clip" and f.captured_at is None for f in frames)


def test_every_nth_frame_keeps_the_decoded_index(face_clip: ClipTruth) -> None:
    frames, _ = decode_all(face_clip.path, every=5)
    assert [f.index for f in frames] == list(range(0, face_clip.frame_count, 5))


def test_a_target_fps_samples_by_media_time(face_clip: ClipTruth) -> None:
    frames, _ = decode_all(face_clip.path, fps=5.0)
    seconds = face_clip.frame_count / face_clip.fps
    assert abs(len(frames) - seconds * 5) <= 1
    gaps = {round(b.pts - a.pts, 2) for a, b in zip(frames, frames[1:], strict=False)}
    assert gaps == {0.2}


@pytest.mark.parametrize(("every", "fps", "times", "kept"), [
    (3, None, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0, 3, 6]),
    (1, 10.0, [0.0, 0.04, 0.08, 0.12, 0.16, 0.2, 0.24], [0, 3, 5]),
    (1, 10.0, [0.0, 0.3, 0.31, 0.4], [0, 1, 3]),
])
def test_the_sampler(every: int, fps: float | None, times: list[float], kept: list[int]) -> None:
    sampler = FrameSampler(every, fps)
    assert [i for i, t in enumerate(times) if sampler.keep(i, t)] == kept


def test_folders_and_globs_expand_to_one_source_per_video_with_unique_ids(face_clip: ClipTruth, tmp_path: Path) -> None:
    for name in ("a/cam.mp4", "b/cam.mp4", "c.mkv"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(face_clip.path, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a video")
    specs, errors = expand_sources([SourceConfig(url=str(tmp_path)), SourceConfig(url=str(tmp_path / "*.mkv"))])
    assert errors == []
    assert [s.id for s in specs] == ["cam", "cam-2", "c", "c-2"]


def test_sources_that_match_nothing_are_reported_and_the_rest_go_on(face_clip: ClipTruth, tmp_path: Path) -> None:
    specs, unopened = expand_sources([
        SourceConfig(url=str(tmp_path / "missing.mp4")),
        SourceConfig(url=str(tmp_path / "*.webm")),
        SourceConfig(url=str(tmp_path / "lobby.mp4"), id="lobby"),
        SourceConfig(url=str(face_clip.path), id="good"),
    ])
    assert [s.id for s in specs] == ["good"]
    assert [(u.id, str(u.error)) for u in unopened] == [
        ("missing", f"source '{tmp_path / 'missing.mp4'}': file not found"),
        ("webm", f"source '{tmp_path / '*.webm'}': no file matches this pattern"),
        ("lobby", f"source 'lobby' ({tmp_path / 'lobby.mp4'}): file not found"),
    ]


def test_a_file_that_is_not_a_video_ends_its_source_with_a_clear_error(tmp_path: Path) -> None:
    frames, end = decode_all(garbage_file(tmp_path / "garbage.mp4"))
    assert frames == []
    assert end.error is not None
    assert str(end.error).startswith(f"source 'clip' ({tmp_path / 'garbage.mp4'}): cannot open as video")


def test_a_photo_given_as_a_source_ends_it_with_a_pointer_to_score(tmp_path: Path) -> None:
    photo = tmp_path / "portrait.JPG"
    photo.write_bytes(cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))[1].tobytes())
    frames, end = decode_all(photo)
    assert frames == []
    assert str(end.error) == (f"source 'clip' ({photo}): a still image, not a video: "
                              "score its faces with 'fiqa-stream score'")


def test_an_empty_file_ends_its_source_with_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _, end = decode_all(empty)
    assert end.error is not None and "empty.mp4" in str(end.error)


def test_a_truncated_file_gives_an_error_or_the_frames_before_the_damage(face_clip: ClipTruth, tmp_path: Path) -> None:
    frames, end = decode_all(corrupt_copy(face_clip.path, tmp_path / "cut.mp4", keep_fraction=0.5))
    if end.error is None:
        assert 0 < len(frames) < face_clip.frame_count
    else:
        assert "cut.mp4" in str(end.error)


def test_a_frame_larger_than_8k_fails_its_source_before_it_is_decoded(huge_frame_clip: Path) -> None:
    (spec,), _ = expand_sources([SourceConfig(url=str(huge_frame_clip))])
    stop = threading.Event()
    buffer: FrameBuffer[SourceItem] = FrameBuffer(4, "block", threading.Condition())
    source = open_source(spec, buffer, stop)
    source.start()
    source.join(30)
    end = buffer.get_nowait()
    assert isinstance(end, SourceEnd) and source.decoded == 0
    assert str(end.error) == (f"{huge_frame_clip}: frame 16000×16000 is larger than the limit "
                              "(max_frame_pixels 33177600)")


def test_max_frame_pixels_also_holds_when_the_size_grows_mid_stream(tmp_path: Path) -> None:
    clip = flat_clip(tmp_path / "grows.mov", [(320, 240), (320, 240), (640, 360), (320, 240)])
    (spec,), _ = expand_sources([SourceConfig(url=str(clip), max_frame_pixels=100_000)])
    frames, end = decode_spec(spec)
    assert [frame.image.shape for frame in frames] == [(240, 320, 3), (240, 320, 3)]
    assert str(end.error) == f"{clip}: frame 640×360 is larger than the limit (max_frame_pixels 100000)"


def test_max_frame_pixels_is_bounded() -> None:
    data = {"sources": [{"url": "a.mp4", "max_frame_pixels": 0}], "sinks": [{"type": "directory", "path": "out"}]}
    with pytest.raises(ConfigError) as raised:
        parse_config(data, "c.yaml")
    assert str(raised.value) == ("c.yaml: sources[0].max_frame_pixels: Input should be greater than or equal to "
                                 "4096 (got 0)")


def test_hardware_decoding_is_off_by_default() -> None:
    config = SourceConfig(url="video.mp4")
    assert config.hwaccel is None
    assert hardware_decoder(config) is None


def test_a_hwaccel_this_ffmpeg_lacks_fails_that_source_alone(face_clip: ClipTruth) -> None:
    missing = next(name for name in ("videotoolbox", "d3d11va", "mediacodec") if name not in hwdevices_available())
    specs, errors = expand_sources([
        SourceConfig(url=str(face_clip.path), id="hw", hwaccel=missing),
        SourceConfig(url=str(face_clip.path), id="sw"),
    ])
    assert [spec.id for spec in specs] == ["sw"]
    (unopened,) = errors
    assert unopened.id == "hw"
    assert str(unopened.error) == (f"source 'hw' ({face_clip.path}): hwaccel: '{missing}' is not supported by "
                                   f"this FFmpeg build (it has: {', '.join(hwdevices_available()) or 'none'})")


def test_a_malformed_hwaccel_name_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="hwaccel"):
        SourceConfig(url="video.mp4", hwaccel="cuda; rm -rf")


@pytest.mark.skipif("cuda" not in hwdevices_available(), reason="this FFmpeg build has no CUDA hwaccel")
def test_cuda_decoding_gives_every_frame_on_a_gpu_and_a_clear_error_without_one(face_clip: ClipTruth) -> None:
    (spec,), _ = expand_sources([SourceConfig(url=str(face_clip.path), id="hw", hwaccel="cuda")])
    frames, end = decode_spec(spec)
    if cuda_device_count() > 0:
        assert end.error is None
        assert len(frames) == face_clip.frame_count
    else:
        assert end.error is not None
        assert str(end.error).startswith(f"source 'hw' ({face_clip.path}): cannot open with hwaccel 'cuda' "
                                         "(no usable device?): ")


def test_a_playlist_given_as_a_source_is_never_followed(face_clip: ClipTruth, tmp_path: Path) -> None:
    # An HLS playlist would make FFmpeg read whatever local file it names.
    playlist = tmp_path / "evil.m3u8"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{face_clip.path}\n#EXT-X-ENDLIST\n")
    frames, end = decode_all(playlist)
    assert frames == []
    assert end.error is not None and "cannot open as video" in str(end.error)
