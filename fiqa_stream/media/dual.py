"""One scene as a dual-stream camera sends it: a full-resolution main clip and a small
detect clip (its sub-stream), whose frames carry their index as a block code.

The code lets tests and ``bench/dual_stream.py`` read from any decoded frame, main or
detect, which frame of the scene it shows, so the pairing of the two streams is checked
on the content itself, not on the timestamps it was made from.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

__all__ = ["CODE_BITS", "dual_stream_clips", "read_index", "stamp_index"]

#: Frames ``0 .. 2**CODE_BITS - 1`` get distinct codes; later ones repeat them.
CODE_BITS = 10
# The code is a row of cells along the top edge, each 1/32 of the width and 1/18 of the
# height (square in 16:9), white for a 1 and black for a 0, lowest bit first; the first
# cell is left empty so that no cell touches the frame's corner.
_COLUMNS, _ROWS = 32, 18


def _cells(width: int, height: int) -> list[tuple[int, int, int, int]]:
    return [
        (round((bit + 1) * width / _COLUMNS), 0, round((bit + 2) * width / _COLUMNS), round(height / _ROWS))
        for bit in range(CODE_BITS)
    ]


def stamp_index(image: np.ndarray, index: int) -> None:
    """Draw ``index`` (modulo ``2**CODE_BITS``) into the top row of a BGR image, in place."""
    height, width = image.shape[:2]
    for bit, (x1, y1, x2, y2) in enumerate(_cells(width, height)):
        image[y1:y2, x1:x2] = 255 if index >> bit & 1 else 0


def read_index(image: np.ndarray) -> int:
    """The index ``stamp_index`` drew into a (decoded, so compressed) BGR image: each cell's
    middle half is read as white or black."""
    height, width = image.shape[:2]
    index = 0
    for bit, (x1, y1, x2, y2) in enumerate(_cells(width, height)):
        dx, dy = (x2 - x1) // 4, (y2 - y1) // 4
        if image[y1 + dy : y2 - dy, x1 + dx : x2 - dx].mean() > 127:
            index |= 1 << bit
    return index


def dual_stream_clips(scene: Path, main: Path, detect: Path, detect_size: tuple[int, int] = (320, 180)) -> int:
    """Write the main clip (the scene's size) and the detect clip (``detect_size``) of a
    composed scene, every frame stamped with its index; returns the number of frames.

    Both are H.264 MP4s at the scene's frame rate, a key frame every second and no
    B-frames (as most cameras send), ready for the RTSP test server
    (``scripts/rtsp_test_server.py``).
    """
    with av.open(str(scene)) as source:
        video = source.streams.video[0]
        rate = Fraction(video.average_rate or 25).limit_denominator(1001)
        outputs = [av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) for path in (main, detect)]
        try:
            sizes = [(video.codec_context.width, video.codec_context.height), detect_size]
            streams = []
            for output, (width, height) in zip(outputs, sizes, strict=True):
                stream = output.add_stream("libx264", rate=rate)
                stream.width, stream.height = width, height
                stream.pix_fmt = "yuv420p"
                stream.gop_size = max(1, round(rate))
                stream.options = {"crf": "20", "preset": "ultrafast"}
                streams.append(stream)
            count = 0
            for count, frame in enumerate(source.decode(video), start=1):
                full = frame.to_ndarray(format="bgr24")
                small: np.ndarray = cv2.resize(full, detect_size, interpolation=cv2.INTER_AREA)
                for output, stream, image in zip(outputs, streams, (full, small), strict=True):
                    stamp_index(image, count - 1)
                    encoded = av.VideoFrame.from_ndarray(image, format="bgr24")
                    encoded.pts, encoded.time_base = count - 1, 1 / rate
                    output.mux(stream.encode(encoded))
            for output, stream in zip(outputs, streams, strict=True):
                output.mux(stream.encode(None))
        finally:
            for output in outputs:
                output.close()
    return count
