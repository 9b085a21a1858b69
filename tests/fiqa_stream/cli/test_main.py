"""The command line as a person uses it: the installed ``fiqa-stream`` script."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.scorers.weights import SHIPPED

if TYPE_CHECKING:
    from conftest import VideoArchive

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# The script installed beside this interpreter, found without relying on PATH.
FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def statuses(summary: str) -> dict[str, str]:
    """Source -> status, from the rows of the summary table ``run`` prints."""
    rows = [row.split("│") for row in summary.splitlines() if row.startswith("│")]
    return {cells[1].strip(): cells[-2].strip() for cells in rows if cells[1].strip() != "source"}


def measured(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """``fiqa-stream ARGS`` and its peak resident memory in MB: the largest of its own and its
    worker processes' (``wait4`` reports this one command, not the test's other children)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([FIQA_STREAM, *args], stdout=out, stderr=err, text=True)
        watchdog = threading.Timer(300, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(process.args, process.returncode, out.read(), err.read())
    return result, usage.ru_maxrss / 1024


def fiqa_stream(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FIQA_STREAM, *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


def test_help_explains_every_command() -> None:
    result = fiqa_stream("--help")
    assert result.returncode == 0
    for command in ("run", "check", "score"):
        assert command in result.stdout
    assert "exit status" in result.stdout
    assert "--source" in fiqa_stream("run", "--help").stdout


def test_check_accepts_a_good_config_and_says_what_it_holds() -> None:
    result = fiqa_stream("check", str(CONFIGS / "demo.yaml"))
    assert result.returncode == 0
    assert "demo.yaml: ok" in result.stdout and "detector yunet" in result.stdout


def test_check_rejects_a_bad_config_with_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [{url: a.mp4}]\nsinks: [{type: directory, path: out}]\ndetector: {type: yunet, conf: 1}\n")
    result = fiqa_stream("check", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == f"fiqa-stream: error: {bad}: detector.conf: unknown key"


def test_a_missing_config_file_is_exit_2() -> None:
    result = fiqa_stream("run", "no-such-config.yaml")
    assert result.returncode == 2
    assert "no-such-config.yaml: config file not found" in result.stderr


def test_run_without_a_config_needs_source_and_out() -> None:
    result = fiqa_stream("run", "--source", "x.mp4")
    assert result.returncode == 2 and "--source and --out" in result.stderr


@pytest.mark.slow
def test_run_with_source_and_out_writes_best_shots_and_a_summary(face_clip: ClipTruth, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = fiqa_stream("run", "--source", str(face_clip.path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert len(events) == len(face_clip.faces)
    assert f"{face_clip.frame_count} frames in" in result.stdout
    assert f"{len(face_clip.faces)} best shots" in result.stdout


def test_a_bad_source_gives_exit_1_and_names_the_file(tmp_path: Path) -> None:
    result = fiqa_stream("run", "--source", str(tmp_path / "gone.mp4"), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "gone.mp4': file not found" in result.stderr


@pytest.mark.slow
def test_the_demo_config_runs_on_its_composed_clip(tmp_path: Path) -> None:
    result = fiqa_stream("run", str(CONFIGS / "demo.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    events = (tmp_path / "out" / "demo" / "events.jsonl").read_text().splitlines()
    assert len(events) >= 3


@pytest.mark.slow
def test_the_folder_config_takes_its_folder_and_output_from_the_environment(
    face_clip: ClipTruth, tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(face_clip.path, videos / "one.mp4")
    shutil.copy(face_clip.path, videos / "two.mp4")
    out = tmp_path / "out"
    result = fiqa_stream("run", str(CONFIGS / "folder-to-directory.yaml"),
                         env={"FIQA_VIDEOS": str(videos), "FIQA_OUT": str(out)})
    assert result.returncode == 0, result.stderr
    finals = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    finals = [e for e in finals if e["kind"] == "final"]
    assert {e["source"] for e in finals} == {"one", "two"}


@pytest.mark.slow
def test_the_centerface_config_runs(face_clip: ClipTruth, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = fiqa_stream("run", str(CONFIGS / "centerface.yaml"), "--source", str(face_clip.path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    faces_hit = [_face_under(face_clip, event) for event in events]
    # CenterFace wants head context: on the composed clip's tightly cut grey face it stays
    # below its thresholds, so two of the three faces is its honest result here.
    assert None not in faces_hit
    assert len(faces_hit) == len(set(faces_hit)) >= 2


def _face_under(clip: ClipTruth, event: dict[str, Any]) -> int | None:
    x1, y1, x2, y2 = event["box"]
    for face in clip.faces:
        centre = face.centers.get(event["frame_index"])
        if centre and x1 <= centre[0] <= x2 and y1 <= centre[1] <= y2:
            return face.face_id
    return None


def test_sigterm_flushes_open_tracks_then_exits_130_and_says_interrupted(face_clip: ClipTruth, tmp_path: Path) -> None:
    out = tmp_path / "out"
    looped = tmp_path / "many"
    looped.mkdir()
    for n in range(6):
        shutil.copy(face_clip.path, looped / f"part{n}.mp4")
    process = subprocess.Popen([FIQA_STREAM, "run", "--source", str(looped), "--out", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = out / "events.jsonl"
    deadline = time.monotonic() + 120
    # The first face of the first file has ended; the clip's two later faces are still open.
    while not (events.exists() and events.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    before_signal = len(events.read_text().splitlines())
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "SIGTERM: flushing open tracks" in stderr
    assert "fiqa-stream run: interrupted" in stdout and "interrupted, open tracks flushed" in stdout
    assert set(statuses(stdout).values()) == {"interrupted"}, stdout
    finals = [json.loads(line) for line in events.read_text().splitlines()]
    assert before_signal >= 1 and len(finals) > before_signal, "the open tracks were flushed as final events"
    assert all(event["kind"] == "final" for event in finals)


@pytest.mark.slow
def test_a_truncated_file_fails_run_with_exit_1_by_the_same_rule_and_words_as_index(
    video_archive: VideoArchive, tmp_path: Path
) -> None:
    cut, good = video_archive.folder / "cut.mp4", video_archive.folder / "lobby.mp4"
    run = fiqa_stream("run", "--source", str(cut), "--source", str(good), "--out", str(tmp_path / "out"))
    index = fiqa_stream("index", str(cut), "--out", str(tmp_path / "index"), "--config", str(video_archive.config))
    assert run.returncode == 1 and index.returncode == 1, run.stderr + index.stderr
    [message] = [line.removeprefix("failed: ") for line in index.stdout.splitlines() if line.startswith("failed: ")]
    assert message.startswith(f"{cut}: truncated or damaged: decoded ")
    assert f"fiqa-stream: ERROR: {message}" in run.stderr.splitlines()
    assert statuses(run.stdout) == {"cut": "failed", "lobby": "done"}
    assert "failed: 1 source(s) (each error is in the log above)" in run.stdout.splitlines()


@pytest.mark.slow
def test_run_prints_a_failed_sources_error_once_the_log_line_and_its_row_says_failed_even_if_it_never_opened(
    video_archive: VideoArchive, tmp_path: Path
) -> None:
    missing, cut = tmp_path / "gone.mp4", video_archive.folder / "cut.mp4"
    good = video_archive.folder / "lobby.mp4"
    run = fiqa_stream("run", "--source", str(cut), "--source", str(missing), "--source", str(good),
                      "--out", str(tmp_path / "out"))
    assert run.returncode == 1, run.stderr
    both = run.stdout + run.stderr
    for error in (f"{cut}: truncated or damaged: decoded ", f"source '{missing}': file not found"):
        assert both.count(error) == 1, both
        assert any(line.startswith(f"fiqa-stream: ERROR: {error}") for line in run.stderr.splitlines())
    assert statuses(run.stdout) == {"cut": "failed", "gone": "failed", "lobby": "done"}
    assert "failed: 2 source(s) (each error is in the log above)" in run.stdout.splitlines()


@pytest.mark.slow
def test_run_index_and_search_finish_whatever_the_file_names_hold(video_archive: VideoArchive, tmp_path: Path) -> None:
    # "[/]" is rich's closing tag; a newline in a name could forge a log line.
    archive = tmp_path / "cam[" / "]era"
    archive.mkdir(parents=True)
    clip = archive / "lobby.mp4"
    shutil.copy(video_archive.folder / "lobby.mp4", clip)
    forger = archive / "x\nfiqa-stream: INFO: forged line.mp4"
    forger.write_bytes(b"not a video, just a name that forges a log line")
    escaped = str(forger).replace("\n", "\\n")
    out, index = tmp_path / "out[/]put", tmp_path / "index[/]"

    run = fiqa_stream("run", "--source", str(clip), "--source", str(forger), "--out", str(out))
    assert run.returncode == 1, run.stderr
    assert statuses(run.stdout) == {"lobby": "done", "x_fiqa-stream_INFO_forged_line": "failed"}
    assert f"1 best shots → {out}" in run.stdout
    assert (f"fiqa-stream: ERROR: source 'x_fiqa-stream_INFO_forged_line' ({escaped}): cannot open as video: "
            "Invalid data found when processing input") in run.stderr.splitlines()

    indexed = fiqa_stream("index", str(archive.parent.parent), "--out", str(index), "--config",
                          str(video_archive.config))
    assert indexed.returncode == 1, indexed.stderr
    lines = indexed.stdout.splitlines()
    assert f"failed: {escaped}: cannot open as video: Invalid data found when processing input" in lines
    assert lines[-1].startswith("2 videos: 1 indexed, 0 partly (damaged), 1 failed") and lines[-1].endswith(str(index))
    assert f"fiqa-stream: INFO: indexed {clip}: 1 best shots" in indexed.stderr

    found = fiqa_stream("search", str(index))
    assert found.returncode == 0, found.stderr
    assert "1 best shots" in found.stdout and "lobby.mp4" in found.stdout
    for output in (run.stdout, run.stderr, indexed.stdout, indexed.stderr):
        assert not any(line.startswith("fiqa-stream: INFO: forged") for line in output.splitlines()), output


@pytest.mark.slow
def test_a_frame_larger_than_8k_fails_its_video_in_run_and_index_without_taking_its_memory(
    huge_frame_clip: Path, video_archive: VideoArchive, tmp_path: Path
) -> None:
    lobby = video_archive.folder / "lobby.mp4"
    too_large = f"{huge_frame_clip}: frame 16000×16000 is larger than the limit (max_frame_pixels 33177600)"
    _, baseline = measured("run", "--source", str(lobby), "--out", str(tmp_path / "baseline"))

    run, run_peak = measured("run", "--source", str(huge_frame_clip), "--source", str(lobby),
                             "--out", str(tmp_path / "out"))
    assert run.returncode == 1, run.stderr
    assert statuses(run.stdout) == {"huge": "failed", "lobby": "done"}
    assert f"fiqa-stream: ERROR: {too_large}" in run.stderr.splitlines()

    index, index_peak = measured("index", str(huge_frame_clip), str(lobby), "--out", str(tmp_path / "index"),
                                 "--config", str(video_archive.config))
    assert index.returncode == 1, index.stderr
    assert f"failed: {too_large}" in index.stdout.splitlines()
    assert "2 videos: 1 indexed, 0 partly (damaged), 1 failed" in index.stdout
    # FFmpeg decodes the first frame (256 MB of grey) when it opens the file, to learn its
    # pixel format; the frame as BGR would be 768 MB more, and a source buffers several.
    assert run_peak - baseline < 400 and index_peak - baseline < 400, (baseline, run_peak, index_peak)


def test_score_prints_each_face_as_json() -> None:
    group = files("insightface") / "data/images/t1.jpg"
    result = fiqa_stream("score", str(group), "--json")
    assert result.returncode == 0, result.stderr
    [image] = json.loads(result.stdout)
    assert image["error"] is None and len(image["faces"]) == 6
    face = image["faces"][0]
    assert 0 <= face["quality"] <= 1
    assert set(face["components"]) == {"model", "sharpness", "exposure", "pose", "size", "confidence"}
    qualities = [f["quality"] for f in image["faces"]]
    assert qualities == sorted(qualities, reverse=True)


def test_score_prints_paths_as_they_are_never_as_markup(tmp_path: Path) -> None:
    (tmp_path / "a[").mkdir()
    group = tmp_path / "a[" / "]b.jpg"  # the path holds "[/]", rich's closing tag
    group.write_bytes((files("insightface") / "data/images/t1.jpg").read_bytes())
    junk = tmp_path / "junk[red]:smile:.jpg"
    junk.write_bytes(b"not an image")
    result = fiqa_stream("score", str(junk), str(group))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert f"{junk}: not a readable image" in lines
    assert f"{group}: 6 face(s), model {SHIPPED['student-utility'].version}+int8" in lines


def test_score_reports_an_unreadable_image_and_goes_on(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    group = files("insightface") / "data/images/t1.jpg"
    result = fiqa_stream("score", str(junk), str(group))
    assert result.returncode == 1
    assert "junk.jpg: not a readable image" in result.stdout
    assert "6 face(s)" in result.stdout


@pytest.mark.slow
def test_the_camera_to_redis_config_feeds_redis_and_a_folder_from_the_environment(
    face_clip: ClipTruth, tmp_path: Path, redis_server: Any
) -> None:
    out = tmp_path / "out"
    result = fiqa_stream("run", str(CONFIGS / "camera-to-redis.yaml"), env={
        "FIQA_SOURCE": str(face_clip.path), "FIQA_SOURCE_ID": "lobby", "FIQA_REDIS_URL": redis_server.url,
        "FIQA_OUT": str(out), "FIQA_JOURNAL": str(tmp_path / "journal.sqlite3"),
    })
    assert result.returncode == 0, result.stderr
    on_disk = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    received = tmp_path / "received"
    consumed = fiqa_stream("consume", "--url", redis_server.url, "--group", "g", "--out", str(received),
                           "--idle-exit", "1")
    assert consumed.returncode == 0, consumed.stderr
    in_redis = [json.loads(line) for line in (received / "events.jsonl").read_text().splitlines()]
    assert [e["event_id"] for e in in_redis] == [e["event_id"] for e in on_disk]
    assert len(on_disk) == len(face_clip.faces) and all(e["event_id"].startswith("lobby:") for e in on_disk)
    # One layout: the consumer writes each crop where the directory sink wrote it.
    assert [e["crop"] for e in in_redis] == [e["crop"] for e in on_disk]
    for e in on_disk:
        seq = e["event_id"].rsplit(":", 1)[1]
        assert e["crop"] == f"crops/lobby/{e['run_id']}-{e['track_id']:06d}-{seq}-final.jpg"
        assert (received / e["crop"]).read_bytes() == (out / e["crop"]).read_bytes()


def test_check_refuses_a_yaml_alias_bomb_at_once_with_exit_2(tmp_path: Path) -> None:
    levels = "abcdefghi"
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
        f"{name}: &{name} [{','.join(['*' + below] * 9)}]\n" for below, name in zip(levels, levels[1:], strict=False)
    ))
    started = time.monotonic()
    result = fiqa_stream("check", str(bomb))
    assert time.monotonic() - started < 10  # was 36 s and 1.2 GB; the refusal itself takes milliseconds
    assert result.returncode == 2
    assert result.stderr == f"fiqa-stream: error: {bomb}: YAML aliases expand beyond 100000 nodes (alias bomb?)\n"


def test_check_warns_about_a_missing_source_file_and_still_says_ok(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"sources: [{{url: {tmp_path}/gone.mp4}}, {{url: '{tmp_path}/*.mkv'}}, {{url: 'demo:'}}]\n"
                      "sinks: [{type: directory, path: out}]\n")
    result = fiqa_stream("check", str(config))
    assert result.returncode == 0
    assert result.stderr == (f"fiqa-stream: warning: {config}: sources[0].url: no such file: {tmp_path}/gone.mp4\n"
                             f"fiqa-stream: warning: {config}: sources[1].url: no file matches: {tmp_path}/*.mkv\n")
    assert result.stdout.startswith(f"{config}: ok (3 source(s)")


def test_a_raw_slash_in_a_url_password_is_refused_by_check_and_run_without_showing_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sources: [{url: 'rtsp://admin:Sl/sh99@127.0.0.1:9/cam'}]\n"
                      "sinks: [{type: redis, url: 'redis://u:Qu?st99@127.0.0.1:9/0'}]\n")
    for command in ("check", "run"):
        result = fiqa_stream("-v", command, str(config))
        assert result.returncode == 2
        assert result.stderr == (
            f"fiqa-stream: error: {config}: sources[0].url: the password contains '/', '?' or '#': percent-encode "
            "it (%2F, %3F, %23) (got 'rtsp://admin:***@127.0.0.1:9/cam') (and 1 more: sinks[0].url: the password "
            "contains '/', '?' or '#': percent-encode it (%2F, %3F, %23) (got 'redis://u:***@127.0.0.1:9/0'))\n"
        )
        for secret in ("Sl/sh99", "sh99", "Qu?st99", "st99"):
            assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(("url", "reason"), [
    ("redis://u:Hidden99@[::1", "not a valid URL: Invalid IPv6 URL"),
    ("redis://u:Hidden99@127.0.0.1:99999/0", "the port is not a number from 0 to 65535"),
    ("http://u:Hidden99@127.0.0.1:9/", "expected a redis://, rediss:// or unix:// URL"),
])
def test_consume_refuses_a_url_it_cannot_use_in_one_line_without_the_password(
    url: str, reason: str, tmp_path: Path
) -> None:
    result = fiqa_stream("consume", "--url", url, "--out", str(tmp_path / "got"))
    assert result.returncode == 2
    assert result.stderr == f"fiqa-stream: error: consume --url {url.replace('Hidden99', '***')}: {reason}\n"
    assert "Hidden99" not in result.stdout + result.stderr


def test_no_password_shows_in_the_logs_or_summary_of_a_camera_that_fails(tmp_path: Path, unused_port: int) -> None:
    config = tmp_path / "c.yaml"
    live = "{open_timeout: 1, read_timeout: 1, reconnect: {max_attempts: 1, initial_delay: 0.1}"
    config.write_text(
        f"sources:\n  - {live}, url: 'rtsp://admin:En%2Fc0ded@127.0.0.1:{unused_port}/one'}}\n"
        f"  - {live}, url: 'rtsp://127.0.0.1:{unused_port}/two', username: admin, password: 'F/i?e#l@d1'}}\n"
        "  - {url: 'rtsp://admin:98765432@127.0.0.1:9/three', password: 98765432}\n"
        f"sinks: [{{type: directory, path: {tmp_path / 'out'}}}]\n"
    )
    result = fiqa_stream("-v", "run", str(config))
    assert result.returncode == 2
    assert result.stderr.endswith("sources[2].password: Input should be a valid string\n")
    assert "98765432" not in result.stdout + result.stderr
    config.write_text("\n".join(line for line in config.read_text().splitlines() if "three" not in line) + "\n")
    result = fiqa_stream("-v", "run", str(config))
    assert result.returncode == 1, result.stderr
    assert f"(rtsp://admin:***@127.0.0.1:{unused_port}/one): host unreachable" in result.stderr
    for secret in ("En%2Fc0ded", "En/c0ded", "c0ded", "F/i?e#l@d1", "F%2Fi%3Fe%23l%40d1", "l@d1", "l%40d1"):
        assert secret not in result.stdout + result.stderr


def test_a_metrics_port_in_use_is_one_line_naming_metrics_port_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(f"sources: [{{url: 'demo:'}}]\nsinks: [{{type: directory, path: {tmp_path / 'out'}}}]\n"
                          f"metrics: {{enabled: true, port: {port}}}\n")
        result = fiqa_stream("run", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"fiqa-stream: error: metrics.port: 127.0.0.1:{port} is already in use; choose another port (0: any free port)"
    )
    assert "Traceback" not in result.stderr
