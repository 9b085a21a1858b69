"""Why faces yielded no best shot: one line a user can act on, naming the setting to change."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fiqa_stream.cli.display import print_summary
from fiqa_stream.config import Config, parse_config
from fiqa_stream.media.clips import compose_face_clip
from fiqa_stream.stream.drops import DROP_REASONS, _setting, explain
from fiqa_stream.stream.pipeline import RunSummary, SourceStats

FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


@pytest.fixture(scope="module")
def config() -> Config:
    return parse_config({
        "sources": [{"url": "a.mp4"}], "sinks": [{"type": "directory", "path": "out"}],
        "selection": {"min_face_size": 24, "min_track_length": 4}, "tracker": {"new_track_confidence": 0.7},
    })


def test_nothing_dropped_says_nothing(config: Config) -> None:
    assert explain({}, config) == ""
    assert explain({"short_track": 0, "low_confidence": 0}, config) == ""


def test_each_reason_with_a_setting_names_it_and_its_value(config: Config) -> None:
    assert explain({"below_min_face_size": 1175}, config, widest_small_face=15.4) == (
        "1175 narrower than selection.min_face_size = 24.0 px (widest 15 px)"  # after "faces without one: "
    )
    assert explain({"low_confidence": 3}, config) == (
        "3 not tracked (confidence below tracker.new_track_confidence = 0.7)"
    )
    assert explain({"short_track": 5}, config) == "5 in tracks shorter than selection.min_track_length = 4 sightings"


def test_reasons_no_setting_decides_say_what_happened(config: Config) -> None:
    assert explain({"corrupt_frames_only": 7}, config) == "7 only on frames the decoder marked corrupt"
    assert explain({"implausible_box": 2}, config) == (
        "2 not a face (landmarks out of place, or a box inside a surer one)"
    )


def test_reasons_are_listed_most_frequent_first(config: Config) -> None:
    line = explain(Counter(short_track=2, below_min_face_size=40, corrupt_frames_only=9), config, 20.0)
    assert [part.split(" ")[0] for part in line.split("; ")] == ["40", "9", "2"]


def test_every_setting_a_reason_names_exists_in_the_config(config: Config) -> None:
    named = {key for _, key in DROP_REASONS.values() if key is not None}
    assert named == {"selection.min_face_size", "tracker.new_track_confidence", "selection.min_track_length"}
    for key in named:
        assert _setting(config, key) is not None


def test_an_unknown_reason_is_an_error_not_a_silent_omission(config: Config) -> None:
    with pytest.raises(KeyError):
        explain({"cosmic_rays": 1}, config)


def test_a_run_whose_faces_are_all_too_small_says_so_and_names_min_face_size(tmp_path: Path) -> None:
    # One real face, 31 px wide at most, in a 320×240 clip; min_face_size 64 is wider than it ever gets.
    clip = compose_face_clip(tmp_path / "small.mp4", width=320, height=240, fps=15.0, seconds=2.0, faces=1, seed=1)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"sources: [{{url: '{clip.path}', id: lobby}}]\n"
        f"sinks: [{{type: directory, path: '{tmp_path / 'out'}'}}]\n"
        "scorer: {type: heuristic}\n"
        "selection: {min_face_size: 64}\n"
    )
    result = subprocess.run([FIQA_STREAM, "run", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    [line] = [row for row in result.stdout.splitlines() if row.startswith("lobby:")]
    match = re.fullmatch(
        r"lobby: 0 best shots; faces without one: (\d+) narrower than selection\.min_face_size = 64\.0 px "
        r"\(widest (\d+) px\)(; .*)?", line)
    assert match, line
    small, widest = int(match[1]), int(match[2])
    assert small > 0 and 16 <= widest < 64
    # With no best shot at all, every detected face is accounted for by one reason or another.
    [row] = [r for r in result.stdout.splitlines() if r.startswith("│ lobby")]
    faces = int(row.split("│")[3])
    counts = [int(part.split(" ")[0]) for part in line.split("faces without one: ")[1].split("; ")]
    assert sum(counts) == faces and small >= faces / 2
    events = tmp_path / "out" / "events.jsonl"
    assert not events.exists() or events.read_text() == ""


def test_the_summary_gives_each_source_with_drops_its_own_line_with_its_scene_cuts(
    config: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    lobby = SourceStats("lobby", "lobby.mp4", best_shots=2, scene_cuts=3, finished=True,
                        drops=Counter(below_min_face_size=12, short_track=4), widest_small_face=19.6)
    door = SourceStats("door", "door.mp4", best_shots=5, scene_cuts=1, finished=True)
    print_summary(RunSummary([lobby, door], [], 1.0), ["out"], config)
    lines = capsys.readouterr().out.splitlines()
    assert ("lobby: 2 best shots (3 scene cuts); faces without one: 12 narrower than selection.min_face_size = "
            "24.0 px (widest 20 px); 4 in tracks shorter than selection.min_track_length = 4 sightings") in lines
    assert not any(line.startswith("door:") for line in lines)  # nothing dropped, nothing to say


def test_the_drop_line_shows_a_source_id_verbatim(config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    odd = SourceStats("cam[/red]\x1b[2J", "x.mp4", finished=True, drops=Counter(corrupt_frames_only=3))
    print_summary(RunSummary([odd], [], 1.0), ["out"], config)
    out = capsys.readouterr().out
    assert "cam[/red]\\x1b[2J: 0 best shots; faces without one: 3 only on frames the decoder marked corrupt" in out
    assert "\x1b[2J" not in out


def test_an_index_whose_faces_are_all_too_small_says_why_per_video_in_its_summary_report_and_database(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    compose_face_clip(archive / "lobby.mp4", width=320, height=240, fps=15.0, seconds=2.0, faces=1, seed=1)
    config = tmp_path / "index.yaml"
    config.write_text(
        f"sources: [{{url: '{archive}'}}]\n"
        f"sinks: [{{type: directory, path: '{tmp_path / 'unused'}'}}]\n"
        "scorer: {type: heuristic}\n"
        "selection: {min_face_size: 64}\n"
    )
    out = tmp_path / "index"
    result = subprocess.run([FIQA_STREAM, "index", str(archive), "--out", str(out), "--config", str(config)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    [line] = [row for row in result.stdout.splitlines() if "faces without one" in row]
    assert re.fullmatch(r".*lobby\.mp4: 0 best shots; faces without one: \d+ narrower than "
                        r"selection\.min_face_size = 64\.0 px \(widest \d+ px\)(; .*)?", line), line
    with sqlite3.connect(out / "index.sqlite3") as db:
        [(stored,)] = db.execute("SELECT dropped_faces FROM videos").fetchall()
    assert stored == line.split("faces without one: ", 1)[1]
    report = subprocess.run([FIQA_STREAM, "report", str(out)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert f"Faces without a best shot: {stored}" in (out / "report.html").read_text()
