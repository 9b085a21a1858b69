"""Config models of the stream stages: sources, tracker, best-shot selection, crops."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fiqa_stream.configbase import MAX_SECONDS, StrictModel, checked_url

# 8K UHD. Larger frames fail their source before they are decoded: one 16000×16000 frame
# is 768 MB as BGR, and a source buffers several.
DEFAULT_MAX_FRAME_PIXELS = 7680 * 4320


class ReconnectConfig(StrictModel):
    """How a live source comes back after an outage: exponential backoff with jitter."""

    initial_delay: float = Field(
        1.0, gt=0, le=MAX_SECONDS, description="Seconds before the first reconnection attempt.",
    )
    max_delay: float = Field(
        30.0, gt=0, le=MAX_SECONDS, description="Longest wait between attempts, in seconds.",
    )
    jitter: float = Field(0.25, ge=0, le=1, description="Random spread of each wait, as a fraction of it.")
    max_attempts: int | None = Field(
        None, ge=1, description="Attempts in a row before the source is given up; null: retry forever.",
    )


class SourceConfig(StrictModel):
    """A video source: a file, a glob, a folder of videos, ``demo:`` (composed clip), or a
    live stream (rtsp://, rtsps://, rtmp://, http(s):// incl. HLS, srt://, udp://, or
    ``device:/dev/video0`` for a local capture device)."""

    url: str = Field(
        description="Path, glob or folder of video files, 'demo:', a stream URL, or 'device:PATH'.",
    )
    detect_url: str | None = Field(
        None,
        description="Live sources: URL of the camera's low-resolution sub-stream. Faces are detected, tracked "
        "and scored on it; each best shot is cut from the frame of 'url' (the main stream) nearest in capture "
        "time, its box scaled (stream/dual_stream.py). Same credentials, timeouts and decoding settings as "
        "'url'; 'every' and 'fps' apply to it. null: one stream does everything.",
    )
    id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._-]+$",
        description="Source id used in events; default: the file's stem (globs and folders: each file's stem).",
    )
    every: int = Field(1, ge=1, description="Analyse every Nth decoded frame.")
    fps: float | None = Field(
        None, gt=0, description="Analyse at most this many frames per second of media time (overrides 'every').",
    )
    spans: list[tuple[float, float]] | None = Field(
        None,
        description="Files only: decode and analyse only these [start, end] stretches of media seconds (in "
        "order, not overlapping); frames keep the index and time they have in the whole file, and open "
        "tracks end between two stretches. null: the whole file. 'index' sets it for its second, fine pass.",
    )
    queue_size: int = Field(
        8, ge=1, le=1024,
        description="Decoded frames buffered ahead of analysis. Files wait when it is full; live sources "
        "drop their oldest frame (the freshest wins; drops are counted).",
    )
    live_queue_size: int = Field(
        2, ge=1, le=64, description="Live sources: frames buffered; small keeps latency bounded.",
    )
    transport: Literal["tcp", "udp"] = Field("tcp", description="RTSP transport.")
    username: str | None = Field(None, description="Stream user name (kept out of logs and events).")
    password: SecretStr | None = Field(None, description="Stream password; use ${ENV}. Never logged.")
    open_timeout: float = Field(10.0, gt=0, le=MAX_SECONDS, description="Live: seconds to wait for a stream to open.")
    read_timeout: float = Field(
        5.0, gt=0, le=MAX_SECONDS, description="Live: seconds without data after which the stream counts as stalled.",
    )
    reconnect: ReconnectConfig = Field(default_factory=ReconnectConfig, description="Live: reconnection.")
    hwaccel: str | None = Field(
        None, pattern=r"^[a-z0-9_]+$",
        description="Hardware decoding through FFmpeg (e.g. cuda, vaapi, qsv); null: software decoding. "
        "The source fails when this FFmpeg build or machine lacks it; codecs the device cannot decode "
        "fall back to software.",
    )
    max_frame_pixels: int = Field(
        DEFAULT_MAX_FRAME_PIXELS, ge=64 * 64, le=16384 * 16384,
        description="Largest frame (width × height, in pixels) the source may have; default 8K (7680×4320). "
        "A file or stream whose frames are larger fails with an error that names its size, before they "
        "are decoded, so hostile or careless input cannot take gigabytes of memory; other sources go on.",
    )

    _url_credentials = field_validator("url")(checked_url)

    @field_validator("detect_url")
    @classmethod
    def _sub_stream_of_a_camera(cls, detect_url: str | None, info: ValidationInfo) -> str | None:
        if detect_url is None:
            return None
        checked_url(detect_url)
        # sources.py imports this module; its rule of what is live is looked up when needed.
        from fiqa_stream.stream.sources import is_live

        url = info.data.get("url")
        if url is not None and not is_live(url):
            raise PydanticCustomError(
                "detect_url_not_live", "only a live source (a stream URL or 'device:PATH' in 'url') has a detect "
                "stream; files, globs, folders and 'demo:' have one stream each",
            )
        if not is_live(detect_url):
            raise PydanticCustomError(
                "detect_url_not_a_stream", "expected the URL of the camera's sub-stream (rtsp://, ...)",
            )
        return detect_url

    @field_validator("id")
    @classmethod
    def _not_a_folder_name(cls, source_id: str | None) -> str | None:
        # Crops are written under a folder named by the id: '.' and '..' would escape it.
        if source_id in (".", ".."):
            raise PydanticCustomError("reserved_id", "'.' and '..' are not allowed as a source id")
        return source_id

    @field_validator("spans")
    @classmethod
    def _ordered_spans(cls, spans: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        ends = [bound for span in spans or () for bound in span]
        if any(bound < 0 for bound in ends) or ends != sorted(ends):
            raise PydanticCustomError(
                "unordered_spans", "each stretch must start at or after 0 and before it ends, after the one before it",
            )
        return spans


class TrackerConfig(StrictModel):
    """ByteTrack: Kalman motion model, two-stage association on high/low confidences."""

    high_confidence: float = Field(
        0.6, ge=0.0, le=1.0, description="Detections at or above this join the first association.",
    )
    low_confidence: float = Field(
        0.1, ge=0.0, le=1.0, description="Detections between this and high_confidence join the second.",
    )
    new_track_confidence: float = Field(
        0.6, ge=0.0, le=1.0, description="Lowest confidence of an unmatched detection that starts a track.",
    )
    match_iou: float = Field(
        0.2, gt=0.0, le=1.0, description="Lowest IoU of a first-stage match (second stage uses 0.5 cost)."
    )
    min_hits: int = Field(3, ge=1, description="Consecutive sightings before a tentative track is confirmed.")
    lost_frames: int = Field(
        50, ge=0, description="Analysed frames a lost track is kept for re-association before it ends.",
    )
    appearance_min_similarity: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Lowest appearance similarity (16×16 grey patch correlation) of a track and the "
        "detection it is matched to; a worse match is refused and the face starts a new track. 0 turns "
        "appearance off (motion alone, and no re-identification).",
    )
    reid_min_similarity: float = Field(
        0.75, ge=0.0, le=1.0,
        description="A lost track resumes on a detection its motion no longer predicts when their "
        "appearance is at least this similar (and the detection lies within reid_max_distance).",
    )
    reid_max_distance: float = Field(
        2.0, ge=0.0, le=100.0,
        description="How far from a lost track's predicted box a re-identified face may be, in box widths.",
    )
    scene_cut_threshold: float = Field(
        0.1, ge=0.0, le=1.0,
        description="Scene-cut sensitivity: the change (median over an 8×6 grid of a 64×48 grey thumbnail, "
        "0-1) from the previous analysed frame that ends every open track of the source. 0 turns it off.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> TrackerConfig:
        if self.low_confidence > self.high_confidence:
            raise ValueError("low_confidence must not exceed high_confidence")
        return self


class SelectionConfig(StrictModel):
    """Which sightings of a track become events, and when."""

    policy: Literal["on_end", "periodic", "early"] = Field(
        "on_end",
        description="on_end: one final event when the track ends; periodic: update events when the best "
        "improved, at most every 'period' seconds; early: emit once the score passes 'threshold', then "
        "only on an improvement of 'margin'.",
    )
    period: float = Field(5.0, gt=0, le=MAX_SECONDS, description="periodic: least seconds between two update events.")
    threshold: float = Field(0.7, ge=0.0, le=1.0, description="early: score that triggers the first event.")
    margin: float = Field(0.05, ge=0.0, le=1.0, description="early: improvement that triggers another event.")
    min_track_length: int = Field(
        3, ge=1, description="Tracks with fewer scored sightings never produce an event.",
    )
    min_face_size: float = Field(
        16.0, ge=0.0, description="Sightings whose face box is narrower than this (pixels) are ignored.",
    )


class CropConfig(StrictModel):
    """How the face crop in an event is cut out of the best frame."""

    mode: Literal["aligned", "loose"] = Field(
        "loose", description="aligned: 112×112 similarity-aligned face; loose: the box with a margin.",
    )
    margin: float = Field(0.4, ge=0.0, le=2.0, description="loose: margin added on every side, as a box fraction.")
    max_size: int = Field(256, ge=32, le=2048, description="loose: longest side of the crop in pixels.")
    jpeg_quality: int = Field(90, ge=10, le=100, description="JPEG quality of the crop.")


class MotionConfig(StrictModel):
    """Motion gating: detect faces only where and when something moves (stream/motion.py).

    Each analysed frame is compared, as a small blurred grey copy, with a running-average
    background. Without motion and without a face being tracked the detector is not
    called; with motion it sees only the moving regions and the boxes of the faces being
    tracked; now and then, and whenever the whole picture changes, it sees the whole frame.
    """

    enabled: Literal["auto", "on", "off"] = Field(
        "auto", description="auto: gate live sources (cameras mostly film still scenes), detect every analysed "
        "frame of files whole; on: gate every source; off: detect every analysed frame whole.",
    )
    frame_height: int = Field(
        120, ge=32, le=720, description="Height in pixels of the grey copy motion is measured on (aspect kept).",
    )
    threshold: int = Field(
        25, ge=1, le=255, description="Least grey-level difference (0-255) from the background that counts as motion.",
    )
    learning_rate: float = Field(
        0.05, gt=0.0, le=1.0,
        description="Weight of each analysed frame in the running-average background: at 0.05 something "
        "that stops moving fades into the background over about 20 analysed frames.",
    )
    min_area: float = Field(
        0.0005, ge=0.0, le=1.0, description="Moving blobs smaller than this share of the frame are ignored (noise).",
    )
    reseed_share: float = Field(
        0.5, gt=0.0, le=1.0,
        description="When at least this share of the frame moved at once (a scene cut, lights switched), the "
        "background is taken anew from that frame and the whole frame is detected.",
    )
    region_margin: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Added on every side of a moving region, as a fraction of the frame height.",
    )
    track_margin: float = Field(
        1.0, ge=0.0, le=10.0,
        description="Added on every side of a tracked face's last box, in box sizes: room for the face to "
        "move until the next analysed frame, and the context the detector needs.",
    )
    min_region: float = Field(
        0.2, gt=0.0, le=1.0, description="Least side of a detected region, as a fraction of the frame height.",
    )
    max_region_share: float = Field(
        0.5, gt=0.0, le=1.0,
        description="When the regions of a frame cover more than this share of it, the whole frame is detected.",
    )
    full_frame_interval: float = Field(
        2.0, gt=0.0, le=MAX_SECONDS,
        description="Seconds (capture time for live sources, media time for files) between two whole-frame "
        "detections of a gated source: a face that never moved is found within this long.",
    )
    track_hold: float = Field(
        1.0, ge=0.0, le=MAX_SECONDS,
        description="Seconds a tracked face's last box stays a detected region after it was last found.",
    )
