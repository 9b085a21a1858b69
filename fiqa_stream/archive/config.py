"""The ``index`` section of a config: how ``fiqa-stream index`` reads each video."""

from __future__ import annotations

from pydantic import Field

from fiqa_stream.configbase import StrictModel


class IndexConfig(StrictModel):
    """Coarse-to-fine indexing (``archive/coarse.py``). Archives are mostly empty of faces:
    a first pass detects faces on a few frames of each video, and the pipeline then
    decodes and analyses, at the first source's ``every``/``fps``, only the stretches
    around the frames with faces, so most of a quiet recording is never decoded at all."""

    coarse: bool = Field(
        True,
        description="On: a coarse pass finds the stretches with faces and only those are analysed (the same "
        "frames a whole pass analyses there, with the same indexes and times); a video without faces ends "
        "after it. Off: every video is decoded and analysed whole. Files whose frames cannot be placed "
        "without decoding them all (no packet times, MPEG-4 part 2, ...) are always analysed whole.",
    )
    min_seconds: float = Field(
        30.0, ge=0.0, le=86400.0,
        description="Videos shorter than this are analysed whole: around each face the fine pass decodes "
        "several seconds anyway (the gaps to the neighbouring coarse frames, the margins), so a coarse pass "
        "would save little there and could only lose a face.",
    )
    key_frame_gap: float = Field(
        1.25, ge=0.0, le=60.0,
        description="The coarse pass decodes key frames alone (nothing else) when no two lie further apart "
        "than this many seconds (the default takes a key frame every second, also at 23.976 frames/s), and "
        "of them only as many as keep the frames it detects at most this far apart (encoders add key frames "
        "at every scene change); otherwise it decodes coarse_fps frames per second. 0: never key frames alone.",
    )
    coarse_fps: float = Field(
        2.0, gt=0.0, le=60.0,
        description="Frames per second the coarse pass detects when it does not take key frames alone.",
    )
    coarse_motion: bool = Field(
        True,
        description="The coarse pass detects a sample only when something moved since the samples before "
        "(thresholds of the 'motion' section), a face was found in the sample detected before, or "
        "still_interval has passed: a face cannot come into a picture where nothing moves. Off: every sample "
        "is detected.",
    )
    still_interval: float = Field(
        10.0, gt=0.0, le=3600.0,
        description="With coarse_motion, seconds after which a sample is detected even though nothing moved: "
        "a face the detector missed while it came in, and that has not moved since, is looked for again.",
    )
    coarse_width: int = Field(
        640, ge=64, le=8192,
        description="The coarse pass converts wider frames to this width before detecting (only whether a "
        "face is there matters); keep it at least the detector's max_width, or small faces are missed.",
    )
    margin: float = Field(
        0.5, ge=0.0, le=60.0,
        description="Seconds added on both sides of each stretch with faces, beyond the gap to the "
        "neighbouring coarse frames (a face may come and go between two) and the analysed frames a track "
        "needs before it counts (tracker.min_hits + selection.min_track_length).",
    )
