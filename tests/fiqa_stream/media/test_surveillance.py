"""Surveillance recordings: a fixed camera's noisy view, faces only while people visit."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import yuface

from fiqa_stream.media.surveillance import compose_surveillance_clip, spread_visits


def faces_in(image: np.ndarray) -> int:
    confidences, _, _ = yuface.detect(np.ascontiguousarray(image), conf=0.5)
    return len(confidences)


def test_a_face_is_there_during_its_visit_only_and_at_its_best_inside_it(tmp_path: Path) -> None:
    truth = compose_surveillance_clip(tmp_path / "hall.mp4", width=320, height=240, fps=10.0, seconds=12.0,
                                      visits=[(6.0, 3.0)], passers=[(1.0, 3.0)], seed=2)
    (face,) = truth.faces
    assert (face.first_frame, face.last_frame) == (60, 89)
    assert sorted(face.centers) == list(range(60, 90))
    assert 60 <= face.best_frames[0] <= face.best_frames[1] <= 89
    with av.open(str(truth.path)) as container:
        frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    assert len(frames) == truth.frame_count == 120
    best = sum(face.best_frames) // 2
    assert faces_in(frames[best]) == 1
    # The passer-by is seen from behind: no face while only they cross.
    assert all(faces_in(frames[i]) == 0 for i in range(10, 40, 5))
    # Sensor noise: no two frames of the empty hall are the same.
    assert not np.array_equal(frames[45], frames[46])


def test_visits_are_spread_one_at_a_time_away_from_the_ends() -> None:
    visits = spread_visits(600.0, 12, 5.0, seed=18)
    assert len(visits) == 12 and all(length == 5.0 for _, length in visits)
    starts = [start for start, _ in visits]
    assert starts == sorted(starts) and starts[0] >= 2.0 and starts[-1] + 5.0 <= 598.0
    assert all(b - a >= 6.0 for a, b in zip(starts, starts[1:], strict=False))
    with pytest.raises(ValueError, match="do not fit"):
        spread_visits(30.0, 6, 5.0)


def test_a_visit_outside_the_clip_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="visit 0"):
        compose_surveillance_clip(tmp_path / "x.mp4", width=320, height=240, fps=10.0, seconds=5.0,
                                  visits=[(4.5, 2.0)])
