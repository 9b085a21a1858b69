"""Scoring the faces of still images (``fiqa-stream score``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from fiqa_stream.models import Models
from fiqa_stream.types import Face


def score_images(paths: list[Path], models: Models) -> list[dict[str, Any]]:
    """Detect and score every face of each image; unreadable images get an ``error``."""
    detector, scorer = models.detector, models.scorer
    results: list[dict[str, Any]] = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
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
