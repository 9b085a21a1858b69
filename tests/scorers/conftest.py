"""Real faces for the scorer tests: the astronaut and a group photo, with yuface landmarks."""

from __future__ import annotations

import importlib.resources
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import skimage.data
import yuface

from fiqa_stream.scorers.config import HeuristicScorerConfig
from fiqa_stream.scorers.heuristic import HeuristicScorer
from fiqa_stream.types import Face


@dataclass(frozen=True)
class Scene:
    """A real photo and its detected faces (boxes x1, y1, x2, y2; confidences in [0, 1])."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    confidences: np.ndarray
    landmarks: np.ndarray

    def faces(
        self, image: np.ndarray | None = None, scale: float = 1.0, landmarks: bool = True
    ) -> list[Face]:
        """The scene's faces on ``image`` (the photo by default), coordinates times ``scale``."""
        frame = self.image if image is None else image
        return [
            Face(
                image=frame,
                box=(self.boxes[i] * scale).astype(np.float32),
                confidence=float(self.confidences[i]),
                landmarks=(self.landmarks[i] * scale).astype(np.float32) if landmarks else None,
            )
            for i in range(len(self.boxes))
        ]


def detect(name: str, image: np.ndarray) -> Scene:
    with warnings.catch_warnings():
        # yuface warns that big images detect less well; these faces are large enough.
        warnings.filterwarnings("ignore", message="Image size", category=UserWarning)
        confidences, boxes, landmarks = yuface.detect(image, conf=0.5)
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    xyxy[:, 2:] += xyxy[:, :2]
    return Scene(
        name=name,
        image=image,
        boxes=xyxy,
        confidences=np.asarray(confidences, np.float32).reshape(-1) / 100.0,
        landmarks=np.asarray(landmarks, np.float32).reshape(-1, 5, 2),
    )


@pytest.fixture(scope="session")
def astronaut() -> Scene:
    """skimage's astronaut portrait (512×512), one frontal face."""
    scene = detect("astronaut", np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]))
    assert len(scene.boxes) == 1
    return scene


@pytest.fixture(scope="session")
def group() -> Scene:
    """insightface's group photo t1.jpg (1280×886), six faces, one of them turned."""
    path = importlib.resources.files("insightface") / "data/images/t1.jpg"
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    scene = detect("group", image)
    assert len(scene.boxes) == 6
    return scene


@pytest.fixture(params=["astronaut", "group"])
def scene(request: pytest.FixtureRequest) -> Scene:
    """Each real photo in turn."""
    result: Scene = request.getfixturevalue(request.param)
    return result


@pytest.fixture
def scorer() -> HeuristicScorer:
    """The heuristic scorer with its default weights."""
    return HeuristicScorer(HeuristicScorerConfig())
