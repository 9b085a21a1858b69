"""Optional hardware decoding (``sources[].hwaccel``): off by default, a clear error when unusable."""

from __future__ import annotations

import threading

import pytest
from av.codec.hwaccel import hwdevices_available

from fiqa_stream.device import cuda_device_count
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import SourceConfig
from fiqa_stream.stream.sources import FileSource, SourceEnd, expand_sources, hardware_decoder
from fiqa_stream.stream.synthetic import ClipTruth
from fiqa_stream.types import Frame


def test_it_is_off_by_default() -> None:
    config = SourceConfig(url="video.mp4")
    assert config.hwaccel is None
    assert hardware_decoder(config) is None


def test_a_device_type_this_ffmpeg_lacks_fails_that_source_alone(face_clip: ClipTruth) -> None:
    missing = next(name for name in ("videotoolbox", "d3d11va", "mediacodec") if name not in hwdevices_available())
    specs, errors = expand_sources([
        SourceConfig(url=str(face_clip.path), id="hw", hwaccel=missing),
        SourceConfig(url=str(face_clip.path), id="sw"),
    ])
    assert [spec.id for spec in specs] == ["sw"]
    (error,) = errors
    assert str(error) == (f"{face_clip.path}: hwaccel: '{missing}' is not supported by this FFmpeg build "
                          f"(it has: {', '.join(hwdevices_available()) or 'none'})")


def test_a_malformed_name_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="hwaccel"):
        SourceConfig(url="video.mp4", hwaccel="cuda; rm -rf")


def decode(config: SourceConfig) -> tuple[int, SourceEnd]:
    (spec,), _ = expand_sources([config])
    stop = threading.Event()
    buffer: FrameBuffer[Frame | SourceEnd] = FrameBuffer(4, "block", threading.Condition())
    source = FileSource(spec, buffer, stop)
    source.start()
    frames = 0
    while True:
        item = buffer.get_nowait()
        if item is None:
            threading.Event().wait(0.001)
        elif isinstance(item, SourceEnd):
            source.join(5)
            return frames, item
        else:
            frames += 1


@pytest.mark.skipif("cuda" not in hwdevices_available(), reason="this FFmpeg build has no CUDA hwaccel")
def test_cuda_decoding_gives_every_frame_on_a_gpu_and_a_clear_error_without_one(face_clip: ClipTruth) -> None:
    frames, end = decode(SourceConfig(url=str(face_clip.path), id="hw", hwaccel="cuda"))
    if cuda_device_count() > 0:
        assert end.error is None
        assert frames == face_clip.frame_count
    else:
        assert end.error is not None
        assert str(end.error).startswith(f"source 'hw' ({face_clip.path}): cannot open with hwaccel 'cuda' "
                                         "(no usable device?): ")
