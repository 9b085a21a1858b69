"""Still images for `fiqa-stream score` (fiqa_stream/stills.py): their size read from the header,
and an image too large to decode refused before it is."""

from __future__ import annotations

import json
import struct
import zlib
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_stream.cli.main import main
from fiqa_stream.stills import declared_size


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width``×``height`` (8-bit RGB), with no pixels."""
    body = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))


@pytest.mark.parametrize(("suffix", "flags"), [
    (".png", []), (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
])
def test_the_declared_size_of_a_real_png_or_jpeg_is_its_decoded_size(tmp_path: Path, suffix: str,
                                                                       flags: list[int]) -> None:
    path = tmp_path / f"picture{suffix}"
    cv2.imwrite(str(path), np.zeros((300, 500, 3), np.uint8), flags)
    assert declared_size(path) == (500, 300)


def test_a_header_declaring_a_huge_png_is_read_without_its_pixels(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header(40_000, 30_000))
    assert declared_size(path) == (40_000, 30_000)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0\x00\x01", b"BM" + bytes(60)])
def test_other_formats_and_headers_cut_short_declare_nothing(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "other.img"
    path.write_bytes(content)
    assert declared_size(path) is None


def test_score_refuses_an_image_whose_header_declares_more_pixels_than_a_video_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(40_000, 30_000))
    group = files("insightface") / "data/images/t1.jpg"
    assert main(["score", str(bomb), str(group), "--json"]) == 1
    refused, scored = json.loads(capsys.readouterr().out)
    assert refused["error"] == (f"{bomb}: image 40000×30000 has more than 33,177,600 pixels, the most a video "
                                "frame may have")
    assert scored["error"] is None and len(scored["faces"]) == 6
