"""A scene as a dual-stream camera sends it: two sizes of one scene, each frame telling its index."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.media.dual import CODE_BITS, dual_stream_clips, read_index, stamp_index


@pytest.mark.parametrize(("width", "height"), [(320, 180), (704, 576), (1920, 1080)])
def test_a_stamped_index_reads_back_at_any_size(width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    for index in (0, 1, 513, 2**CODE_BITS - 1):
        image = rng.integers(0, 256, (height, width, 3), np.uint8)
        stamp_index(image, index)
        assert read_index(image) == index


def test_both_clips_show_the_scene_and_every_frame_tells_its_index(nonface_clip: ClipTruth, tmp_path: Path) -> None:
    main, detect = tmp_path / "main.mp4", tmp_path / "detect.mp4"
    count = dual_stream_clips(nonface_clip.path, main, detect, (320, 180))
    assert count == nonface_clip.frame_count
    for path, size in ((main, (640, 360)), (detect, (320, 180))):
        with av.open(str(path)) as container:
            frames = list(container.decode(video=0))
        assert [(f.width, f.height) for f in frames] == [size] * count
        assert [read_index(f.to_ndarray(format="bgr24")) for f in frames] == list(range(count))
        assert PictureType.B not in {f.pict_type for f in frames}, "no B-frames, as most cameras send"
