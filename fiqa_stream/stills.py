"""Scoring the faces of still images (``fiqa-stream score``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from fiqa_stream.models import Models
from fiqa_stream.stream.config import DEFAULT_MAX_FRAME_PIXELS
from fiqa_stream.stream.decoding import frame_too_large
from fiqa_stream.types import Face

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless, ...): not DHT (C4), JPG (C8) or DAC (CC).
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def declared_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as a PNG or JPEG file's header declares it, read without decoding;
    None for other formats or a header that does not parse."""
    with open(path, "rb") as handle:
        head = handle.read(24)
        if head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR":
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if head[:2] != b"\xff\xd8":
            return None
        handle.seek(2)
        while (marker := handle.read(2))[:1] == b"\xff" and len(marker) == 2:
            length = int.from_bytes(handle.read(2), "big")
            if marker[1] in _JPEG_FRAME_MARKERS:
                frame = handle.read(5)  # precision, height, width
                if len(frame) < 5:
                    return None
                return int.from_bytes(frame[3:5], "big"), int.from_bytes(frame[1:3], "big")
            if length < 2:
                return None
            handle.seek(length - 2, 1)
    return None


def score_images(paths: list[Path], models: Models) -> list[dict[str, Any]]:
    """Detect and score every face of each image; unreadable images, and PNG or JPEG files
    that declare more pixels than a video frame may have (decoding them would take
    gigabytes), get an ``error``."""
    detector, scorer = models.detector, models.scorer
    results: list[dict[str, Any]] = []
    for path in paths:
        readable = path.is_file()
        size = declared_size(path) if readable else None
        if size is not None and frame_too_large(*size, DEFAULT_MAX_FRAME_PIXELS) is not None:
            error = (f"{path}: image {size[0]}×{size[1]} has more than {DEFAULT_MAX_FRAME_PIXELS:,} pixels, the most "
                     "a video frame may have")
            results.append({"image": str(path), "error": error, "faces": []})
            continue
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if readable else None
        if image is None:
            reason = "file not found" if not path.exists() else "not a readable image"
            results.append({"image": str(path), "error": f"{path}: {reason}", "faces": []})
            continue
        found = detector.detect([image])[0]
        faces = [
            Face(image, found.boxes[i], float(found.scores[i]),
                 None if found.landmarks is None else found.landmarks[i])
            for i in range(len(found))
        ]
        qualities = scorer.score(faces) if faces else []
        results.append({
            "image": str(path),
            "error": None,
            "model": scorer.model,
            "faces": [
                {
                    "box": [round(float(v), 1) for v in face.box],
                    "confidence": round(face.confidence, 4),
                    "quality": round(quality.score, 4),
                    "components": {k: round(v, 4) for k, v in quality.components.items()},
                }
                for face, quality in sorted(zip(faces, qualities, strict=True), key=lambda fq: -fq[1].score)
            ],
        })
    return results
