"""The real face photos every composed clip and the training set start from."""

from __future__ import annotations

import numpy as np
import yuface

from fiqa_stream.media.faces import face_photos


def test_face_photos_are_real_heads_a_detector_finds() -> None:
    photos = face_photos()
    assert len(photos) == 8
    for photo in photos:
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
        _, boxes, _ = yuface.detect(np.ascontiguousarray(photo), conf=0.5)
        assert len(boxes.reshape(-1, 4)) >= 1
