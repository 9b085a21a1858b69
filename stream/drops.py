"""Why detected faces yielded no best shot, in words a user can act on.

The pipeline counts, per source, every detected face that cannot end in a best shot
and the reason; this module names each reason with the setting that decides it, so a
run that reports "0 best shots" also says what to change.
"""

from __future__ import annotations

from collections.abc import Mapping

from fiqa_stream.config import Config

#: Reason -> (what happened, the setting that decides it or None).
DROP_REASONS: dict[str, tuple[str, str | None]] = {
    "below_min_face_size": ("narrower than", "selection.min_face_size"),
    "low_confidence": ("not tracked (confidence below", "tracker.new_track_confidence"),
    "implausible_box": ("not a face (landmarks out of place, or a box inside a surer one)", None),
    "short_track": ("in tracks shorter than", "selection.min_track_length"),
    "corrupt_frames_only": ("only on frames the decoder marked corrupt", None),
}


def _setting(config: Config, key: str) -> object:
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def explain(drops: Mapping[str, int], config: Config, widest_small_face: float = 0.0) -> str:
    """One line: how many faces were dropped and why, e.g. ``1175 faces narrower than
    selection.min_face_size = 16 px (widest 15 px)``; empty when nothing was dropped."""
    parts = []
    for reason, count in sorted(drops.items(), key=lambda item: -item[1]):
        if count <= 0:
            continue
        what, key = DROP_REASONS[reason]
        if key is None:
            parts.append(f"{count} {what}")
            continue
        value = _setting(config, key)
        if reason == "below_min_face_size":
            detail = f" px (widest {widest_small_face:.0f} px)"
        elif reason == "low_confidence":
            detail = ")"
        else:
            detail = " sightings"
        parts.append(f"{count} {what} {key} = {value}{detail}")
    return "; ".join(parts)
