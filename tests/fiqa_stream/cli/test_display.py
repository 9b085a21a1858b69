"""The run summary says what motion gating saved and how long analysis fell behind."""

from __future__ import annotations

import pytest

from fiqa_stream.cli.display import print_summary
from fiqa_stream.config import parse_config
from fiqa_stream.stream.pipeline import RunSummary, SourceStats

CONFIG = parse_config({"sources": [{"url": "rtsp://cam/1"}], "sinks": [{"type": "directory", "path": "out"}]})


def test_the_summary_counts_the_frames_gating_kept_from_the_detector(capsys: pytest.CaptureFixture[str]) -> None:
    door = SourceStats("door", "rtsp://cam/1", analysed=100, detection_skipped=70, detection_on_regions=20,
                       detection_whole=10)
    gate = SourceStats("gate", "rtsp://cam/2", analysed=50, detection_skipped=5, detection_on_regions=5,
                       detection_whole=40)
    print_summary(RunSummary([door, gate], [], 1.0), ["out"], CONFIG)
    lines = capsys.readouterr().out.splitlines()
    assert ("motion gating: of 150 analysed frames, 75 needed no detection and 25 were detected on moving "
            "regions only") in lines


def test_a_run_without_gating_or_overload_says_nothing_of_them(capsys: pytest.CaptureFixture[str]) -> None:
    clip = SourceStats("clip", "clip.mp4", analysed=100, detection_whole=100, finished=True)
    print_summary(RunSummary([clip], [], 1.0), ["out"], CONFIG)
    out = capsys.readouterr().out
    assert "motion gating" not in out and "keep up" not in out


def test_the_summary_says_how_long_analysis_could_not_keep_up(capsys: pytest.CaptureFixture[str]) -> None:
    door = SourceStats("door", "rtsp://cam/1", analysed=100)
    print_summary(RunSummary([door], [], 60.0, overloaded_seconds=12.4), ["out"], CONFIG)
    assert ("analysis could not keep up with the live sources for 12 s; every source got an even share"
            in capsys.readouterr().out.splitlines())
