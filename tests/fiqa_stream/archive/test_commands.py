"""``fiqa-stream index``, ``search`` and ``report`` as a person or a batch system uses them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pytest

if TYPE_CHECKING:
    from conftest import VideoArchive

FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def fiqa_stream(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIQA_STREAM, *map(str, args)], capture_output=True, text=True, timeout=300)


def rows(out: Path, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(out / "index.sqlite3") as db:
        return list(db.execute(query))


def count(out: Path, status: str) -> int:
    """Videos in ``status``; 0 while the index is still being created."""
    try:
        return int(rows(out, f"SELECT COUNT(*) FROM videos WHERE status = '{status}'")[0][0])
    except sqlite3.OperationalError:
        return 0


def videos(out: Path) -> dict[str, tuple[str, str | None]]:
    """File name (relative to the archive) → (status, error)."""
    return {path: (status, error) for path, status, error in rows(out, "SELECT path, status, error FROM videos")}


def shots(out: Path) -> set[tuple[str, int, int, float]]:
    return set(rows(out, "SELECT v.path, s.track_id, s.frame_index, s.quality FROM best_shots s "
                         "JOIN videos v ON v.id = s.video_id"))


def assert_consistent(out: Path) -> None:
    """Every row once, every shot with its track and an existing crop, no stray crop files."""
    assert rows(out, "PRAGMA integrity_check") == [("ok",)]
    assert rows(out, "PRAGMA foreign_key_check") == []
    paths = [p for (p,) in rows(out, "SELECT path FROM videos")]
    assert len(paths) == len(set(paths))
    crops = {c for (c,) in rows(out, "SELECT crop FROM best_shots")}
    assert len(crops) == len(rows(out, "SELECT crop FROM best_shots"))
    files = {p.relative_to(out).as_posix() for p in (out / "crops").rglob("*") if p.is_file()}
    assert files == crops
    unfinished = rows(out, "SELECT COUNT(*) FROM best_shots s JOIN videos v ON v.id = s.video_id "
                           "WHERE v.status NOT IN ('done', 'partial')")
    assert unfinished == [(0,)]


def test_a_photo_named_for_indexing_fails_with_a_pointer_to_score(tmp_path: Path) -> None:
    photo = tmp_path / "portrait.png"
    photo.write_bytes(cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes())
    result = fiqa_stream("index", photo, "--out", tmp_path / "out")
    assert result.returncode == 1, result.stderr
    assert videos(tmp_path / "out") == {
        str(photo): ("failed", f"{photo}: a still image, not a video: score its faces with 'fiqa-stream score'"),
    }


@pytest.fixture(scope="module")
def indexed(video_archive: VideoArchive, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The archive folder plus its text file named explicitly, indexed by one worker."""
    out = tmp_path_factory.mktemp("index")
    result = fiqa_stream("index", video_archive.folder, video_archive.folder / "notes.txt", "--out", out,
                         "--config", video_archive.config, "--workers", "1")
    return out, result


def test_index_records_good_and_bad_files_and_exit_status_says_some_failed(
    indexed: tuple[Path, Any], video_archive: VideoArchive
) -> None:
    out, result = indexed
    assert result.returncode == 1, result.stderr
    folder = video_archive.folder
    found = videos(out)
    assert len(found) == 8  # the folder walk skips notes.txt; naming it explicitly includes it
    for name in video_archive.good:
        assert found[str(folder / name)] == ("done", None)
    assert found[str(folder / "cut.mp4")][0] == "partial"
    assert "truncated or damaged" in found[str(folder / "cut.mp4")][1]
    assert found[str(folder / "zero.mp4")] == ("failed", f"{folder / 'zero.mp4'}: empty file (0 bytes)")
    assert found[str(folder / "noise.mp4")][0] == "failed"
    assert "cannot open as video" in found[str(folder / "noise.mp4")][1]
    assert found[str(folder / "notes.txt")][0] == "failed"
    # Each composed face gives one track with one best shot; the face-free clip none.
    per_video = dict(rows(out, "SELECT v.path, COUNT(s.id) FROM videos v LEFT JOIN best_shots s ON s.video_id = v.id "
                               "GROUP BY v.id"))
    for name, truth in video_archive.good.items():
        assert per_video[str(folder / name)] == len(truth.faces), name
    assert rows(out, "SELECT COUNT(*) FROM tracks") == rows(out, "SELECT COUNT(*) FROM best_shots")
    durations = dict(rows(out, "SELECT path, duration FROM videos WHERE status = 'done'"))
    assert all(d == pytest.approx(3.0, abs=0.1) for d in durations.values())
    assert_consistent(out)
    for bad in (*video_archive.bad, "notes.txt"):
        assert bad in result.stdout  # the summary lists each failure
    assert "4 indexed, 1 partly (damaged), 3 failed" in result.stdout


def test_best_shot_lies_in_the_faces_best_moment(indexed: tuple[Path, Any], video_archive: VideoArchive) -> None:
    out, _ = indexed
    truth = video_archive.good["lobby.mp4"]
    (frame,) = [f for (f,) in rows(out, "SELECT s.frame_index FROM best_shots s JOIN videos v ON v.id = s.video_id "
                                       f"WHERE v.path = '{video_archive.folder / 'lobby.mp4'}'")]
    first, last = truth.faces[0].best_frames
    assert first - 3 <= frame <= last + 3


def test_rerun_skips_indexed_videos_and_duplicates_nothing(
    indexed: tuple[Path, Any], video_archive: VideoArchive
) -> None:
    out, _ = indexed
    before_shots, before_tracks = shots(out), rows(out, "SELECT * FROM tracks")
    result = fiqa_stream("index", video_archive.folder, "--out", out, "--config", video_archive.config,
                         "--log-format", "json")
    assert result.returncode == 1  # the bad files are still bad
    logs = [json.loads(line) for line in result.stderr.splitlines()]
    assert any("5 already indexed" in entry["message"] for entry in logs)
    assert not any(entry["message"].startswith("indexed ") for entry in logs)  # nothing analysed again
    assert shots(out) == before_shots
    assert rows(out, "SELECT * FROM tracks") == before_tracks
    assert_consistent(out)


def test_two_workers_give_the_same_index_as_one(
    indexed: tuple[Path, Any], video_archive: VideoArchive, tmp_path: Path
) -> None:
    out, _ = indexed
    result = fiqa_stream("index", video_archive.folder, video_archive.folder / "notes.txt", "--out", tmp_path,
                         "--config", video_archive.config, "--workers", "2", "--quiet")
    assert result.returncode == 1
    assert result.stdout == ""  # --quiet: no summary
    assert videos(tmp_path) == videos(out)
    assert shots(tmp_path) == shots(out)
    assert_consistent(tmp_path)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_run_killed_mid_way_resumes_into_a_consistent_index(video_archive: VideoArchive, tmp_path: Path) -> None:
    out = tmp_path / "index"
    command = [FIQA_STREAM, "index", str(video_archive.folder), "--out", str(out), "--config",
               str(video_archive.config), "--workers", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (out / "index.sqlite3").exists() and count(out, "done"):
                break
            time.sleep(0.05)
        workers = _children(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        statuses = [s for (s,) in rows(out, "SELECT status FROM videos")]
        assert "done" in statuses and set(statuses) - {"done", "partial", "failed"}  # killed part-way
        assert_consistent(out)
        # The workers notice their parent is gone and leave.
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
                  for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if Path(f"/proc/{pid}/cmdline").exists()
                    and Path(f"/proc/{pid}/cmdline").read_bytes()]
    finally:
        if process.poll() is None:
            process.kill()
    result = fiqa_stream("index", video_archive.folder, "--out", out, "--config", video_archive.config)
    assert result.returncode == 1
    found = videos(out)
    assert len(found) == 7
    assert {status for status, _ in found.values()} == {"done", "partial", "failed"}
    assert_consistent(out)


def test_search_filters_by_quality_video_and_time(indexed: tuple[Path, Any], video_archive: VideoArchive) -> None:
    out, _ = indexed
    everything = json.loads(fiqa_stream("search", out, "--json").stdout)
    assert len(everything) == len(shots(out))
    qualities = [s["quality"] for s in everything]
    assert qualities == sorted(qualities, reverse=True)
    assert all(Path(s["crop"]).is_file() and set(s["components"]) >= {"sharpness", "pose"} for s in everything)

    threshold = qualities[len(qualities) // 2]
    better = json.loads(fiqa_stream("search", out, "--min-quality", str(threshold), "--json").stdout)
    assert better and all(s["quality"] >= threshold for s in better) and len(better) < len(everything)

    gate = json.loads(fiqa_stream("search", out, "--video", "gate.mp4", "--json").stdout)
    assert len(gate) == 2 and {Path(s["video"]).name for s in gate} == {"gate.mp4"}
    nested = json.loads(fiqa_stream("search", out, "--video", "day2/*", "--json").stdout)
    assert {Path(s["video"]).name for s in nested} == {"door.mp4"}

    times = sorted(s["time"] for s in everything)
    middle = times[len(times) // 2]
    window = json.loads(fiqa_stream("search", out, "--between", "0", f"{middle:.4f}", "--json").stdout)
    assert window and all(s["time"] <= middle + 1e-6 for s in window)
    assert len(window) < len(everything)
    clock = json.loads(fiqa_stream("search", out, "--between", "0:00", "0:03", "--video", "lobby*", "--json").stdout)
    assert len(clock) == 1

    table = fiqa_stream("search", out, "--video", "nothing-like-this")
    assert table.returncode == 0 and "no best shot matches" in table.stdout


@pytest.mark.slow
def test_index_does_not_follow_links_out_of_its_folders_unless_asked(
    video_archive: VideoArchive, tmp_path: Path
) -> None:
    archive, outside, out = tmp_path / "archive", tmp_path / "outside", tmp_path / "index"
    archive.mkdir()
    outside.mkdir()
    shutil.copy(video_archive.folder / "lobby.mp4", archive / "lobby.mp4")
    shutil.copy(video_archive.folder / "gate.mp4", outside / "gate.mp4")
    (outside / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (archive / "gate.mp4").symlink_to(outside / "gate.mp4")
    (archive / "passwd.mp4").symlink_to(outside / "passwd")

    result = fiqa_stream("index", archive, "--out", out, "--config", video_archive.config)
    assert result.returncode == 0, result.stderr
    for name in ("gate.mp4", "passwd.mp4"):
        assert (f"fiqa-stream: WARNING: {archive / name}: links outside the archive roots; skipped "
                "(--follow-links to allow)") in result.stderr.splitlines()
    assert result.stdout.splitlines()[-1].endswith(
        f"1 best shots → {out}; 2 link(s) out of the given folders skipped (--follow-links to index them)")
    assert videos(out) == {str(archive / "lobby.mp4"): ("done", None)}

    followed = fiqa_stream("index", archive, "--out", out, "--config", video_archive.config, "--follow-links")
    assert followed.returncode == 1, followed.stderr
    assert "links outside" not in followed.stdout + followed.stderr
    found = videos(out)
    assert found[str(outside / "gate.mp4")] == ("done", None)
    assert found[str(outside / "passwd")][0] == "failed"


def test_search_and_report_name_a_folder_without_an_index(tmp_path: Path) -> None:
    for command in ("search", "report"):
        result = fiqa_stream(command, tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip() == (f"fiqa-stream: error: {tmp_path}: no archive index here (index.sqlite3); "
                                         "run 'fiqa-stream index' first")


@pytest.mark.parametrize("quality", ["1.5", "-0.1", "nan"])
def test_search_refuses_a_minimum_quality_outside_0_to_1(tmp_path: Path, quality: str) -> None:
    result = fiqa_stream("search", tmp_path, "--min-quality", quality)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fiqa-stream: error: search: --min-quality must be between 0 and 1 (got {quality})"


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_search_refuses_a_limit_below_one(tmp_path: Path, limit: str) -> None:
    result = fiqa_stream("search", tmp_path, "--limit", limit)
    assert result.returncode == 2
    assert result.stderr.strip() == f"fiqa-stream: error: search: --limit must be at least 1 (got {limit})"


def test_index_of_nothing_is_a_clear_fatal_error(tmp_path: Path) -> None:
    result = fiqa_stream("index", tmp_path / "missing", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip() == f"fiqa-stream: error: index: no video found: {tmp_path / 'missing'}: file not found"


def test_report_is_one_self_contained_page(indexed: tuple[Path, Any], tmp_path: Path) -> None:
    out, _ = indexed
    result = fiqa_stream("report", out, "--out", tmp_path / "gallery.html")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "gallery.html").read_text()
    assert page.count('src="data:image/jpeg;base64,') == len(shots(out))
    assert "http://" not in page and "https://" not in page
    for name in ("lobby.mp4", "gate.mp4", "door.mp4", "zero.mp4", "empty file (0 bytes)"):
        assert name in page
    assert os.path.getsize(tmp_path / "gallery.html") < 200_000


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(video_archive: VideoArchive, tmp_path: Path) -> None:
    out = tmp_path / "index"
    command = [FIQA_STREAM, "index", str(video_archive.folder), "--out", str(out), "--config",
               str(video_archive.config), "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((out / "index.sqlite3").exists() and count(out, "running")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted: rerun to finish" in stdout
    assert "running" not in {status for status, _ in videos(out).values()}  # handed back as pending
    assert_consistent(out)
    assert fiqa_stream("index", video_archive.folder, "--out", out, "--config", video_archive.config).returncode == 1
    assert {status for status, _ in videos(out).values()} == {"done", "partial", "failed"}
    assert_consistent(out)
