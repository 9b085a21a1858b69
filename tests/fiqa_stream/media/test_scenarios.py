"""Issue 13, as a specification: hard tracking situations, run end to end with default
settings and judged against exact ground truth.

Targets: no identity switch (a final's best shot shows the face its track began on), no
best shot on a corrupted frame, recall >= 0.95, at most 1.1 finals per face, the first
final inside the face's clean best window for >= 85 % of the faces over the suite, no
best shot from another shot than the track's first sighting, and faces below the
minimum size dropped and counted (``SourceStats.drops["below_min_face_size"]``).

All clips (and Debian opencv-doc's Megamind clips where installed) run as the sources of
one pipeline run: sources are tracked and selected independently, and one run saves
loading the models once per clip.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.config import Config, parse_config
from fiqa_stream.media.scenarios import (
    MEGAMIND_BUGY_CORRUPTED,
    MEGAMIND_BUGY_FAINT,
    MEGAMIND_CUTS,
    SCENARIOS,
    ScenarioFace,
    ScenarioScore,
    ScenarioTruth,
    megamind_truth,
    score_events,
    small_faces,
)
from fiqa_stream.stream.drops import explain
from fiqa_stream.stream.pipeline import Pipeline, RunSummary, SourceStats

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
MEGAMIND_BUGY = MEGAMIND.with_name("Megamind_bugy.avi")
# Each situation with its own seed, so the suite shows several different people.
SEEDS = {"scene_cut": 1, "same_place_swap": 2, "crossing": 3, "occlusion": 4, "corrupted": 5, "small_faces": 6}
SITUATIONS = ("scene_cut", "same_place_swap", "crossing", "occlusion", "corrupted")


# ----------------------------------------------------------------------------- the judge


def _face(face_id: int, identity: str, frames: range, x: float, window: tuple[int, int]) -> ScenarioFace:
    boxes = {i: (x, 100.0, x + 50.0, 160.0) for i in frames}
    return ScenarioFace(face_id, identity, boxes, dict.fromkeys(frames, 1.0), window, sum(window) // 2)


@pytest.fixture
def two_faces() -> ScenarioTruth:
    """A at x 100-150 on frames 0-49, B at x 110-160 (the same place) on frames 50-99; a cut
    at 50; frame 20 corrupted."""
    return ScenarioTruth(
        "hand-made", Path("none.mp4"), 640, 360, 25.0, 100,
        (_face(0, "photo-1", range(50), 100.0, (10, 16)), _face(1, "photo-2", range(50, 100), 110.0, (70, 76))),
        cut_frames=(50,), corrupted_frames=(20,),
    )


def final(frame: int, x: float, first: int, first_x: float, track: int = 1, kind: str = "final") -> dict:
    return {"kind": kind, "track_id": track, "frame_index": frame, "box": [x, 100.0, x + 50.0, 160.0],
            "first_frame_index": first, "first_box": [first_x, 100.0, first_x + 50.0, 160.0]}


def test_the_judge_passes_one_clean_final_per_face_in_its_window(two_faces: ScenarioTruth) -> None:
    score = score_events([final(12, 101.0, 0, 100.0, 1), final(75, 112.0, 50, 110.0, 2)], two_faces)
    assert (score.identity_switches, score.corrupt_best_shots, score.cross_cut_finals) == (0, 0, 0)
    assert (score.recall, score.first_final_in_window, score.finals_per_face) == (1.0, 1.0, 1.0)
    assert [c.face for c in score.checks] == [0, 1] and all(c.in_window for c in score.checks)


def test_a_track_that_runs_from_one_face_into_another_is_an_identity_switch_across_a_cut(
    two_faces: ScenarioTruth,
) -> None:
    score = score_events([final(75, 110.0, 0, 100.0)], two_faces)
    assert score.identity_switches == 1 and score.cross_cut_finals == 1
    assert score.recall == 0.5 and score.faces_found == 1 and score.first_final_in_window == 0.5
    check = score.checks[0]
    assert (check.face, check.first_face, check.identity_switch) == (1, 0, True)


def test_a_best_shot_on_a_corrupted_frame_is_counted(two_faces: ScenarioTruth) -> None:
    score = score_events([final(20, 100.0, 0, 100.0)], two_faces)
    assert score.corrupt_best_shots == 1 and score.identity_switches == 0
    assert score.first_final_in_window == 0.0, "frame 20 lies outside A's window 10-16"


def test_two_finals_of_one_face_count_against_finals_per_face_and_only_the_first_is_judged(
    two_faces: ScenarioTruth,
) -> None:
    # A's first final (emitted first) misses its window; the second would have been in it.
    score = score_events([final(30, 100.0, 0, 100.0, 1), final(12, 100.0, 5, 100.0, 2),
                          final(75, 110.0, 50, 110.0, 3)], two_faces)
    assert score.finals_per_face == 1.5 and score.recall == 1.0
    assert score.faces_in_window == 1 and score.first_final_in_window == 0.5


def test_boxes_that_overlap_no_face_enough_show_no_face_and_updates_are_ignored(two_faces: ScenarioTruth) -> None:
    # IoU of x 400-450 with A is 0; x 130-180 overlaps A (100-150) by IoU 0.25 < 0.3.
    score = score_events([final(12, 400.0, 0, 100.0, 1), final(13, 130.0, 0, 100.0, 2),
                          final(12, 100.0, 0, 100.0, 3, kind="update")], two_faces)
    assert score.finals == 2 and score.unmatched_finals == 2 and score.recall == 0.0
    assert score.identity_switches == 0, "an unknown face is no identity switch; it is counted as unmatched"


def test_the_judge_reads_event_objects_as_well_as_dicts(two_faces: ScenarioTruth) -> None:
    event = SimpleNamespace(**final(75, 110.0, 0, 100.0))
    assert score_events([event], two_faces).identity_switches == 1


def test_the_judge_counts_only_visible_faces(two_faces: ScenarioTruth) -> None:
    hidden = replace(two_faces.faces[0], visibility=dict.fromkeys(range(50), 0.0))
    truth = replace(two_faces, faces=(hidden, two_faces.faces[1]))
    assert score_events([final(12, 100.0, 0, 100.0)], truth).unmatched_finals == 1


# ----------------------------------------------------------------------------- the truth


@dataclass(frozen=True)
class SuiteRun:
    truths: dict[str, ScenarioTruth]
    events: dict[str, list[dict]]
    stats: dict[str, SourceStats]
    summary: RunSummary
    config: Config

    def score(self, name: str) -> ScenarioScore:
        return score_events(self.events[name], self.truths[name])


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScenarioTruth]:
    folder = tmp_path_factory.mktemp("scenarios")
    return {name: SCENARIOS[name](folder / f"{name}.mp4", seed=SEEDS[name]) for name in SCENARIOS}


@pytest.mark.slow
def test_scene_cut_truth_changes_background_and_person_at_the_same_place(clips: dict[str, ScenarioTruth]) -> None:
    truth = clips["scene_cut"]
    (cut,) = truth.cut_frames
    a, b = truth.faces
    assert a.identity != b.identity
    assert max(a.boxes) == cut - 1 and min(b.boxes) == cut
    before, after = a.boxes[cut - 1], b.boxes[cut]
    assert abs((before[0] + before[2]) - (after[0] + after[2])) / 2 < 5, "B appears where A was"
    assert 0.8 < (after[2] - after[0]) / (before[2] - before[0]) < 1.25, "at a similar size"
    assert a.best_window[1] < cut <= b.best_window[0]


@pytest.mark.slow
def test_crossing_truth_hides_the_farther_face_behind_the_nearer(clips: dict[str, ScenarioTruth]) -> None:
    far, near = clips["crossing"].faces
    crossed = [i for i in far.boxes if i in near.boxes and far.visibility[i] < 0.5
               and far.boxes[i][0] > 0 and far.boxes[i][2] < clips["crossing"].width]
    assert crossed, "while they overlap the nearer face hides most of the farther one"
    assert far.visibility[max(far.boxes)] < 1.0 and near.visibility[max(near.boxes)] < 1.0, "they walk out"


@pytest.mark.slow
def test_occlusion_truth_hides_the_face_completely_for_one_to_two_seconds(clips: dict[str, ScenarioTruth]) -> None:
    truth = clips["occlusion"]
    (face,) = truth.faces
    hidden = [i for i, share in face.visibility.items() if share == 0.0]
    assert hidden == list(range(hidden[0], hidden[-1] + 1))
    assert 1.0 <= len(hidden) / truth.fps <= 2.0
    assert face.best_window[0] > hidden[-1], "the best moment comes after the occlusion"


@pytest.mark.slow
def test_corrupted_truth_puts_the_garbage_on_each_faces_best_moment(clips: dict[str, ScenarioTruth]) -> None:
    truth = clips["corrupted"]
    for face in truth.faces:
        assert all(i in truth.corrupted_frames for i in range(face.best_frame - 2, face.best_frame + 3))
        first, last = face.best_window
        clean = [i for i in range(first, last + 1) if i not in truth.corrupted_frames]
        assert clean and min(abs(i - face.best_frame) for i in clean) == 3
        assert first < face.best_frame - 2 and last > face.best_frame + 2


@pytest.mark.slow
def test_small_faces_truth_is_12_to_15_px_wide(clips: dict[str, ScenarioTruth]) -> None:
    widths = sorted(round(face.width) for face in clips["small_faces"].faces)
    assert widths[0] >= 11 and widths[-1] <= 15 and len(set(f.identity for f in clips["small_faces"].faces)) == 5
    assert not any(face.expects_shot for face in clips["small_faces"].faces)


def test_the_same_seed_composes_the_same_clip_and_truth(tmp_path: Path) -> None:
    one = small_faces(tmp_path / "a.mp4", seconds=1.0, seed=3)
    two = small_faces(tmp_path / "b.mp4", seconds=1.0, seed=3)
    assert one.faces == two.faces
    # The composed pixels are the same; multi-threaded x264 encodes them a little differently
    # from run to run (mean absolute differences of about 0.3 of 255 after 25 frames).
    for a, b in zip(frames_of(one.path), frames_of(two.path), strict=True):
        assert np.abs(a.astype(np.int16) - b).mean() < 1.0


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


@pytest.mark.slow
def test_the_megamind_truth_is_what_the_files_hold() -> None:
    """Cuts: a 32×24 thumbnail changes by far more than anywhere else. Corruption: a 16×16
    block of Megamind_bugy.avi differs from Megamind.avi by a mean of more than 20 (clean
    frames: at most 9)."""
    if not (MEGAMIND.is_file() and MEGAMIND_BUGY.is_file()):
        pytest.skip(f"{MEGAMIND} or {MEGAMIND_BUGY.name} is missing (Debian package opencv-doc)")
    clean, bugy = frames_of(MEGAMIND), frames_of(MEGAMIND_BUGY)
    assert len(clean) == len(bugy) == megamind_truth(MEGAMIND).frame_count
    thumbs = [cv2.resize(f, (32, 24), interpolation=cv2.INTER_AREA).astype(np.float32) / 255 for f in clean]
    change = [float(np.abs(thumbs[i] - thumbs[i - 1]).mean()) for i in range(2, len(thumbs))]
    assert tuple(i + 2 for i, c in enumerate(change) if c > 0.05) == MEGAMIND_CUTS  # frame 1 fades in from black
    worst_block = []
    for a, b in zip(clean, bugy, strict=True):
        diff = np.abs(a.astype(np.int16) - b).mean(axis=2)
        h, w = diff.shape[0] // 16 * 16, diff.shape[1] // 16 * 16
        worst_block.append(float(diff[:h, :w].reshape(h // 16, 16, w // 16, 16).mean(axis=(1, 3)).max()))
    assert tuple(i for i, d in enumerate(worst_block) if d > 20) == MEGAMIND_BUGY_CORRUPTED
    assert max(d for i, d in enumerate(worst_block) if i not in MEGAMIND_BUGY_CORRUPTED + MEGAMIND_BUGY_FAINT) < 10


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def suite(clips: dict[str, ScenarioTruth], tmp_path_factory: pytest.TempPathFactory) -> Iterator[SuiteRun]:
    truths = dict(clips)
    for path in (MEGAMIND, MEGAMIND_BUGY):
        if path.is_file():
            truths[path.stem.lower()] = megamind_truth(path)
    out = tmp_path_factory.mktemp("scenario-events")
    config = parse_config({
        "sources": [{"url": str(truth.path), "id": name} for name, truth in truths.items()],
        "sinks": [{"type": "directory", "path": str(out), "fsync": False}],
        "pipeline": {"progress": "off"},
    })
    summary = Pipeline(config).run()
    lines = (out / "events.jsonl").read_text().splitlines() if (out / "events.jsonl").exists() else []
    events: dict[str, list[dict]] = {name: [] for name in truths}
    for line in lines:
        event = json.loads(line)
        events[event["source"]].append(event)
    yield SuiteRun(truths, events, {s.id: s for s in summary.sources}, summary, config)


def describe(score: ScenarioScore) -> str:
    rows = [f"  track {c.track_id}: best frame {c.frame_index} shows face {c.face} (IoU {c.iou:.2f}), "
            f"first frame {c.first_frame_index} shows face {c.first_face}; switch={c.identity_switch} "
            f"corrupt={c.corrupt} cross_cut={c.cross_cut} in_window={c.in_window}" for c in score.checks]
    return (f"finals {score.finals}, switches {score.identity_switches}, corrupt {score.corrupt_best_shots}, "
            f"recall {score.recall}, finals/face {score.finals_per_face}, unmatched {score.unmatched_finals}\n"
            + "\n".join(rows))


@pytest.mark.slow
@pytest.mark.parametrize("name", SITUATIONS)
def test_each_situation_meets_the_issue_13_targets(suite: SuiteRun, name: str) -> None:
    assert suite.summary.ok and suite.stats[name].analysed == suite.truths[name].frame_count
    score = suite.score(name)
    why = f"{name}: {describe(score)}"
    assert score.identity_switches == 0, why
    assert score.corrupt_best_shots == 0, why
    assert score.cross_cut_finals == 0, why
    assert score.recall is not None and score.recall >= 0.95, why
    assert score.finals_per_face is not None and score.finals_per_face <= 1.1, why


@pytest.mark.slow
def test_the_first_final_lies_in_the_clean_best_window_for_85_percent_of_the_faces(suite: SuiteRun) -> None:
    scores = {name: suite.score(name) for name in SITUATIONS}
    in_window = sum(s.faces_in_window for s in scores.values())
    expected = sum(s.faces_expected for s in scores.values())
    misses = {name: [(c.face, c.frame_index, suite.truths[name].faces[c.face].best_window) for c in s.checks
                     if c.face is not None and not c.in_window] for name, s in scores.items()}
    unfound = {name: [f.face_id for f in suite.truths[name].faces if f.face_id not in {c.face for c in s.checks}]
               for name, s in scores.items()}
    assert in_window / expected >= 0.85, (
        f"{in_window}/{expected}; (face, best frame, window) outside: {misses}; faces without a final: {unfound}"
    )


@pytest.mark.slow
def test_faces_below_the_minimum_size_give_no_best_shot_and_are_counted_as_drops(suite: SuiteRun) -> None:
    stats = suite.stats["small_faces"]
    finals = [e for e in suite.events["small_faces"] if e["kind"] == "final"]
    assert stats.best_shots == 0 and not finals, (
        f"{len(finals)} best shots of faces {sorted(round(e['box'][2] - e['box'][0]) for e in finals)} px wide"
    )
    # YuNet finds faces this small only now and then, and then at low confidence: every
    # one it found is counted under a reason the summary names with its setting.
    assert stats.faces > 0 and sum(stats.drops.values()) == stats.faces, stats.drops
    assert explain(stats.drops, suite.config), stats.drops


def megamind(suite: SuiteRun, path: Path) -> tuple[ScenarioTruth, list[dict]]:
    name = path.stem.lower()
    if name not in suite.truths:
        pytest.skip(f"{path} is missing (Debian package opencv-doc)")
    assert suite.stats[name].analysed == suite.truths[name].frame_count
    return suite.truths[name], suite.events[name]


@pytest.mark.slow
@pytest.mark.parametrize("path", [MEGAMIND, MEGAMIND_BUGY], ids=lambda p: p.stem)
def test_real_footage_best_shots_stay_in_the_shot_their_track_began_in(suite: SuiteRun, path: Path) -> None:
    truth, events = megamind(suite, path)
    assert truth.cut_frames == MEGAMIND_CUTS
    score = score_events(events, truth)
    crossing_cuts = [(c.track_id, c.first_frame_index, c.frame_index) for c in score.checks if c.cross_cut]
    assert score.finals > 0
    assert not crossing_cuts, f"(track, first frame, best frame) across the cuts at {MEGAMIND_CUTS}: {crossing_cuts}"


@pytest.mark.slow
def test_real_footage_best_shots_avoid_corrupted_frames(suite: SuiteRun) -> None:
    truth, events = megamind(suite, MEGAMIND_BUGY)
    assert truth.corrupted_frames == MEGAMIND_BUGY_CORRUPTED
    score = score_events(events, truth)
    corrupt = [(c.track_id, c.frame_index) for c in score.checks if c.corrupt]
    assert score.finals > 0
    assert not corrupt, f"(track, best frame) on corrupted frames: {corrupt}"
