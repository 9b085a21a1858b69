"""Dual-stream cameras: faces are found on the small detect stream, best shots are cut from
the main stream's frame nearest in capture time, boxes scaled; either stream failing is
the camera's outage.

The RTSP tests serve one composed scene twice, 1280×720 (main) and 320×180 (detect), each
frame stamped with its index (``fiqa_stream.media.dual``), so that which main frame a
detect frame was paired with is read from the pixels themselves. The test server plays
each mount from its own PLAY request, a few milliseconds apart, so one capture time may
show neighbouring frames of the scene on the two mounts (a camera's two streams show one
sensor); at 10 frames/s that is at most one frame.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest

from fiqa_stream.config import parse_config
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.clips import ClipTruth, compose_face_clip
from fiqa_stream.media.dual import dual_stream_clips, read_index, stamp_index
from fiqa_stream.scorers.align import loose_crop
from fiqa_stream.stream.buffers import FrameBuffer
from fiqa_stream.stream.config import CropConfig, SelectionConfig, SourceConfig
from fiqa_stream.stream.dual_stream import (
    ARRIVAL_WINDOW,
    MAX_SKEW,
    SENDER_GRACE,
    Alignment,
    CaptureClock,
    MainFrames,
)
from fiqa_stream.stream.live import LiveSource
from fiqa_stream.stream.pipeline import Pipeline
from fiqa_stream.stream.selection import BestShotSelector
from fiqa_stream.stream.source_base import SourceEnd, SourceItem, SourceOutage
from fiqa_stream.types import Frame, FullResolution, Quality

FPS = 10.0


@pytest.fixture(scope="module")
def dual_clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 7 s 1280×720 10 fps scene of two faces as main clip and its 320×180 detect clip,
    frames stamped with their index. Long enough for pairs after the server's first sender
    reports (about 3 s in), and for the second face (from 2.8 s) to be tracked there."""
    folder = tmp_path_factory.mktemp("dual")
    scene = compose_face_clip(folder / "scene.mp4", width=1280, height=720, fps=FPS, seconds=7.0, faces=2, seed=11)
    main, detect = folder / "main.mp4", folder / "detect.mp4"
    dual_stream_clips(scene.path, main, detect, (320, 180))
    return main, detect


def _source(config: SourceConfig) -> tuple[LiveSource, FrameBuffer[SourceItem], threading.Event]:
    buffer: FrameBuffer[SourceItem] = FrameBuffer(256, "block", threading.Condition())
    stop = threading.Event()
    source = LiveSource("cam", config, buffer, stop)
    source.start()
    return source, buffer, stop


def _drain(buffer: FrameBuffer[SourceItem], seconds: float) -> Iterator[SourceItem]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        item = buffer.get_nowait()
        if item is None:
            time.sleep(0.01)
            continue
        yield item
        if isinstance(item, SourceEnd):
            return


# --- over RTSP ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_each_detect_frame_carries_the_main_frame_captured_with_it(
    dual_clips: tuple[Path, Path], rtsp_servers: Callable[..., Any]
) -> None:
    main, detect = dual_clips
    server = rtsp_servers([main, detect])
    config = SourceConfig(url=server.url("/cam"), detect_url=server.url("/cam2"), reconnect={"max_attempts": 1})
    source, buffer, stop = _source(config)
    frames = [item for item in _drain(buffer, 20) if isinstance(item, Frame)]
    stop.set()
    source.join(10)
    alignment = source.alignment
    assert len(frames) >= 20, f"the scene must be paired from the first sender reports (3 s in) on: {alignment}"
    pairs = {}
    for frame in frames:
        assert frame.full is not None and (frame.full.width, frame.full.height) == (1280, 720)
        assert frame.scale == (4.0, 4.0)
        assert read_index(frame.image) == frame.index, "a new stream: its frames count from the scene's first"
        pairs[frame.index] = (read_index(frame.full.image()) - frame.index, round(1000 * frame.full.skew, 1))
    # The same content offset for every pair (the mounts' start offset), each the nearest
    # main frame (within half a frame): no drift, no wrong pick.
    offsets = {offset for offset, _ in pairs.values()}
    assert len(offsets) == 1 and abs(next(iter(offsets))) <= 1, pairs
    assert all(abs(skew) < 500 / FPS for _, skew in pairs.values()), pairs
    assert alignment is not None and alignment.paired == len(frames)
    assert set(alignment.unpaired) <= {"awaiting_sender_clock", "unsynced", "no_pts"}, alignment.unpaired
    assert alignment.bases == {"sender": len(frames)}


@pytest.mark.slow
def test_best_shots_are_cut_from_the_full_resolution_frame(
    dual_clips: tuple[Path, Path], rtsp_servers: Callable[..., Any], out_dir: Path
) -> None:
    main, detect = dual_clips
    server = rtsp_servers([main, detect])
    config = parse_config({
        "sources": [{"url": server.url("/cam"), "detect_url": server.url("/cam2"), "id": "cam",
                     "reconnect": {"max_attempts": 1}}],
        "sinks": [{"type": "directory", "path": str(out_dir), "fsync": False}],
        "selection": {"min_track_length": 2, "min_face_size": 8},
        "crop": {"max_size": 2048},
        "scorer": {"type": "heuristic"},
    })
    summary = Pipeline(config).run()
    events = [json.loads(line) for line in (out_dir / "events.jsonl").read_text().splitlines()]
    finals = [e for e in events if e["kind"] == "final"]
    assert finals, f"the scene's faces must give best shots ({summary.sources[0]})"
    with av.open(str(main)) as container:
        main_frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    with av.open(str(detect)) as container:
        detect_frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    for event in finals:
        crop = cv2.imdecode(np.fromfile(out_dir / event["crop"], np.uint8), cv2.IMREAD_COLOR)
        box = np.array(event["box"], np.float32)
        x1, y1, x2, y2 = box
        assert x1 < x2 and y1 < y2 and x1 < 1280 and y1 < 720 and x2 > 0 and y2 > 0, "a box on the main frame"
        # New streams: frame indexes are the scene's; the main mount's may be one frame off.
        index = event["frame_index"]
        candidates = [loose_crop(main_frames[i], box, CropConfig().margin, 2048) for i in (index - 1, index, index + 1)]
        assert all(crop.shape == c.shape for c in candidates), "the scaled box with its margin, at full resolution"
        # Cut from a main frame: close to it in every pixel, and as sharp (an upscaled
        # detect frame lacks the main stream's detail).
        assert min(np.abs(crop.astype(np.int16) - c).mean() for c in candidates) < 4
        upscaled = cv2.resize(detect_frames[index], (1280, 720), interpolation=cv2.INTER_LINEAR)
        sharpness, upscaled_sharpness = (
            cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_32F).var()
            for image in (crop, loose_crop(upscaled, box, CropConfig().margin, 2048))
        )
        assert sharpness > 3 * upscaled_sharpness, (sharpness, upscaled_sharpness)


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["main", "detect"])
def test_a_stream_that_fails_is_the_cameras_outage_naming_its_url(
    dual_clips: tuple[Path, Path], rtsp_servers: Callable[..., Any], broken: str
) -> None:
    main, detect = dual_clips
    server = rtsp_servers([main, detect], user="admin", password="Secr3t!")
    urls = {"main": server.url("/cam"), "detect": server.url("/cam2")}
    urls[broken] = server.url("/nowhere")
    config = SourceConfig(url=urls["main"], detect_url=urls["detect"], username="admin", password="Secr3t!",
                          open_timeout=3, reconnect={"max_attempts": 1})
    source, buffer, stop = _source(config)
    end = next(item for item in _drain(buffer, 20) if isinstance(item, SourceEnd))
    stop.set()
    source.join(10)
    assert end.error is not None
    message = str(end.error)
    assert f"source 'cam' ({server.url('/nowhere')}): unknown path on the server (404)" in message
    assert "Secr3t" not in message


@pytest.mark.slow
def test_the_main_stream_ending_mid_stream_is_an_outage_of_the_camera(
    dual_clips: tuple[Path, Path], face_clip: ClipTruth, rtsp_servers: Callable[..., Any]
) -> None:
    # The main stream (5 s) ends while the detect stream (7 s) goes on.
    server = rtsp_servers([face_clip.path, dual_clips[1]])
    config = SourceConfig(url=server.url("/cam"), detect_url=server.url("/cam2"), reconnect={"max_attempts": 1})
    source, buffer, stop = _source(config)
    items = list(_drain(buffer, 20))
    stop.set()
    source.join(10)
    outage = next(item for item in items if isinstance(item, SourceOutage))
    assert str(outage.error) == f"source 'cam' ({server.url('/cam')}): the stream ended"
    assert isinstance(items[-1], SourceEnd) and source.decoded < 65, "the outage came before the detect stream ended"


def test_a_detect_url_is_only_for_live_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"sources": [{"url": str(tmp_path / "a.mp4"), "detect_url": "rtsp://cam/sub"}],
                      "sinks": [{"type": "directory", "path": str(tmp_path)}]}, "c.yaml")
    assert str(error.value).startswith("c.yaml: sources[0].detect_url: only a live source")
    with pytest.raises(ConfigError, match=r"sources\[0\].detect_url: expected the URL of the camera's sub-stream"):
        parse_config({"sources": [{"url": "rtsp://cam/main", "detect_url": str(tmp_path / "b.mp4")}],
                      "sinks": [{"type": "directory", "path": str(tmp_path)}]})


def test_a_detect_url_with_an_ambiguous_password_is_refused_without_repeating_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"sources": [{"url": "rtsp://cam/main", "detect_url": "rtsp://admin:se/cret@cam/sub"}],
                      "sinks": [{"type": "directory", "path": str(tmp_path)}]})
    assert "sources[0].detect_url: the password contains" in str(error.value)
    assert "se/cret" not in str(error.value)


# --- pairing -----------------------------------------------------------------------------------


def _arrived(clock: CaptureClock | MainFrames, lag: float, sender_origin: float | None = None,
             pts: float = 0.0) -> None:
    """A packet at ``pts`` that came ``lag`` seconds after it, as one FFmpeg waited for, and
    the sender's wall-clock time of the stream's first packet if a report came."""
    start = None if sender_origin is None else int(sender_origin * 1_000_000)
    clock.arrived(pts, pts + lag, True, start)


def _main_frames(times: list[float], expects_sender: bool = False, **limits: int) -> MainFrames:
    main = MainFrames(expects_sender, **limits)
    for pts in times:
        frame = av.VideoFrame(1280, 720, "yuv420p")
        main.put(pts, frame, False)
    return main


def test_the_main_frame_nearest_in_capture_time_is_paired_not_the_latest() -> None:
    # Each stream counts pts from its own origin: main pts 5.00 and detect pts 0.00 were
    # captured (and, being the fastest of their streams, came) at once, at 100.0.
    main = _main_frames([5.0 + 0.04 * n for n in range(13)])
    _arrived(main, lag=100.0 - 5.0)
    detect = CaptureClock(expects_sender=False)
    _arrived(detect, lag=100.0)
    alignment = Alignment()
    # This detect frame was buffered: the main stream has gone on to pts 5.48 meanwhile.
    paired = main.pair(detect, 0.2, threading.Event(), alignment)
    assert paired is not None
    full, corrupt = paired
    assert full.skew == pytest.approx(0.0, abs=1e-6) and not corrupt
    assert alignment.paired == 1 and alignment.bases["arrival"] == 1
    assert main.pair(detect, 0.21, threading.Event(), alignment) is not None
    assert alignment.skews[-1] == pytest.approx(-0.01, abs=1e-6), "5.20 is nearer 0.21 than 5.24 is"


def test_pairing_prefers_the_senders_clock_when_both_streams_agree_with_their_arrivals() -> None:
    main = _main_frames([10.0 + 0.04 * n for n in range(10)])
    detect = CaptureClock(expects_sender=False)
    # On the sender's wall clock main pts 10.2 and detect pts 0.2 were captured at once
    # (1010.2); on this host's clock (900 s behind) they came 50 and 20 ms later.
    _arrived(main, lag=110.25 - 10.2, sender_origin=1000.0)
    _arrived(detect, lag=110.22 - 0.2, sender_origin=1010.0)
    alignment = Alignment()
    paired = main.pair(detect, 0.2, threading.Event(), alignment)
    assert paired is not None and paired[0].skew == pytest.approx(0.0, abs=1e-6)
    assert alignment.bases["sender"] == 1 and alignment.disagreement == pytest.approx(-0.03, abs=1e-6)


def test_the_senders_clock_wins_over_arrivals_a_starved_thread_got_late() -> None:
    main = _main_frames([0.04 * n for n in range(10)])
    detect = CaptureClock(expects_sender=False)
    # The main stream's decoding thread got its packets half a second late.
    _arrived(main, lag=0.5, sender_origin=1000.0)
    _arrived(detect, lag=0.0, sender_origin=1000.0)
    alignment = Alignment()
    paired = main.pair(detect, 0.2, threading.Event(), alignment)
    assert paired is not None and paired[0].skew == pytest.approx(0.0, abs=1e-6)
    assert alignment.bases["sender"] == 1 and alignment.disagreement == pytest.approx(-0.5)


def test_the_senders_clock_discounts_the_range_start_ffmpeg_adds_to_pts() -> None:
    # A server that joined this client to a stream playing for 1.5 s answered PLAY with
    # npt=1.5-: the main stream's pts start at 1.5, its first packet still at 1000.0.
    main = _main_frames([1.5 + 0.04 * n for n in range(10)])
    main.arrived(1.5, 100.0, True, 1000 * 1_000_000)
    detect = CaptureClock(expects_sender=False)
    detect.arrived(0.0, 100.0, True, 1000 * 1_000_000)
    paired = main.pair(detect, 0.2, threading.Event(), Alignment())
    assert paired is not None and paired[0].skew == pytest.approx(0.0, abs=1e-6)


def test_rtsp_streams_are_paired_on_their_senders_clock_once_it_comes() -> None:
    main = _main_frames([0.04 * n for n in range(10)], expects_sender=True)
    detect = CaptureClock(expects_sender=True)
    _arrived(main, lag=0.0)
    _arrived(detect, lag=0.0)
    alignment = Alignment()
    assert main.pair(detect, 0.2, threading.Event(), alignment) is None
    assert alignment.unpaired == {"awaiting_sender_clock": 1}
    _arrived(main, lag=0.0, sender_origin=1000.0)
    _arrived(detect, lag=0.0, sender_origin=1000.0)
    assert main.pair(detect, 0.2, threading.Event(), alignment) is not None
    assert alignment.bases == {"sender": 1}


def test_rtsp_streams_whose_sender_never_reports_are_paired_on_arrival_after_a_grace() -> None:
    main = _main_frames([SENDER_GRACE + 0.04 * n for n in range(10)], expects_sender=True)
    detect = CaptureClock(expects_sender=True)
    for clock in (main, detect):
        _arrived(clock, lag=0.0)
        _arrived(clock, lag=0.0, pts=SENDER_GRACE)
    alignment = Alignment()
    assert main.pair(detect, SENDER_GRACE + 0.2, threading.Event(), alignment) is not None
    assert alignment.bases == {"arrival": 1}


def test_a_detect_frame_waits_for_the_main_frame_still_on_its_way() -> None:
    main = _main_frames([0.0, 0.04])
    detect = CaptureClock(expects_sender=False)
    _arrived(main, lag=0.0)
    _arrived(detect, lag=0.0)
    late = threading.Timer(0.1, lambda: main.put(0.08, av.VideoFrame(64, 64, "yuv420p"), True))
    late.start()
    alignment = Alignment()
    paired = main.pair(detect, 0.08, threading.Event(), alignment)
    late.join()
    assert paired is not None
    full, corrupt = paired
    assert (full.width, full.skew, corrupt) == (64, pytest.approx(0.0, abs=1e-6), True)


def test_detect_frames_without_a_main_frame_close_enough_are_counted_not_paired() -> None:
    main = _main_frames([0.0])
    detect = CaptureClock(expects_sender=False)
    alignment = Alignment()
    assert main.pair(detect, 0.0, threading.Event(), alignment) is None
    _arrived(main, lag=0.0)
    _arrived(detect, lag=0.0)
    assert main.pair(detect, MAX_SKEW + 0.05, threading.Event(), alignment) is None
    assert main.pair(detect, None, threading.Event(), alignment) is None
    assert alignment.unpaired == {"unsynced": 1, "too_far": 1, "no_pts": 1} and alignment.paired == 0


def test_the_ring_of_main_frames_is_bounded_in_frames_and_bytes() -> None:
    assert len(_main_frames([0.04 * n for n in range(40)], max_frames=25)) == 25
    frame_bytes = 1280 * 720 * 3 // 2
    assert len(_main_frames([0.04 * n for n in range(10)], max_bytes=3 * frame_bytes)) == 3
    assert len(_main_frames([0.0], max_bytes=1)) == 1, "the newest frame is kept whatever its size"
    # The oldest go first: the earliest frame left is the 16th.
    main = _main_frames([0.04 * n for n in range(40)], max_frames=25)
    _arrived(main, lag=0.0)
    detect = CaptureClock(expects_sender=False)
    _arrived(detect, lag=0.0)
    paired = main.pair(detect, 0.0, threading.Event(), Alignment())
    assert paired is None


def test_the_arrival_clock_takes_the_fastest_packet_of_its_window_and_ignores_buffered_ones() -> None:
    clock = CaptureClock(expects_sender=False)
    clock.arrived(0.0, 100.0, False, None)
    assert clock.lag is None, "a packet handed over from a buffer says nothing about when it came"
    clock.arrived(0.0, 100.2, True, None)
    clock.arrived(0.04, 100.1, True, None)
    assert clock.lag == pytest.approx(100.06)
    # Long after, only what came within the window counts: the camera's clock drifts.
    clock.arrived(20.0, 100.06 + 20.0 + ARRIVAL_WINDOW, True, None)
    assert clock.lag == pytest.approx(100.06 + ARRIVAL_WINDOW)


# --- selection ---------------------------------------------------------------------------------


def test_the_best_shot_is_cut_from_the_full_resolution_frame_converted_only_when_it_is_best() -> None:
    selector = BestShotSelector("cam", SelectionConfig(min_track_length=1), CropConfig(max_size=2048), "m",
                                run_id="r", keep_frames=True)
    conversions: list[int] = []

    def full_frame(index: int) -> FullResolution:
        def convert() -> np.ndarray:
            conversions.append(index)
            image = np.zeros((720, 1280, 3), np.uint8)
            stamp_index(image, index)
            return image
        return FullResolution(1280, 720, convert)

    box = np.array([100, 50, 140, 90], np.float32)
    landmarks = np.array([[110, 60], [130, 60], [120, 70], [112, 80], [128, 80]], np.float32)
    for index, score in enumerate([0.5, 0.8, 0.6]):
        frame = Frame("cam", index, index / FPS, None, np.full((180, 320, 3), 90, np.uint8), full=full_frame(index))
        selector.observe(7, frame, box, landmarks, Quality(score))
    (event,) = selector.end(7)
    assert conversions == [0, 1], "only frames that became the best are converted"
    assert event.frame_index == 1
    assert event.box == (400.0, 200.0, 560.0, 360.0) and event.first_box == (400.0, 200.0, 560.0, 360.0)
    assert event.landmarks is not None and event.landmarks[0] == (440.0, 240.0)
    crop = cv2.imdecode(np.frombuffer(event.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (288, 288, 3), "the scaled box (160 px) and its 40 % margin on each side"
    assert event.frame_jpeg is not None
    stored = cv2.imdecode(np.frombuffer(event.frame_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert stored.shape == (720, 1280, 3) and read_index(stored) == 1


def test_a_sub_stream_with_another_aspect_ratio_scales_each_axis_by_its_own_factor() -> None:
    full = FullResolution(2560, 1440, lambda: np.zeros((1440, 2560, 3), np.uint8))
    frame = Frame("cam", 0, 0.0, None, np.zeros((576, 704, 3), np.uint8), full=full)
    assert frame.scale == (2560 / 704, 2.5)
