"""The one place that turns a BestShot into the documented event fields."""

from __future__ import annotations

from typing import Any

from fiqa_stream.types import BestShot


def event_fields(event: BestShot) -> dict[str, Any]:
    """The event's JSON-ready fields (docs/EVENTS.md), without the crop itself."""
    return {
        "event_id": event.event_id,
        "run_id": event.run_id,
        "schema": event.schema,
        "kind": event.kind.value,
        "source": event.source,
        "track_id": event.track_id,
        "frame_index": event.frame_index,
        "pts": event.pts,
        "captured_at": event.captured_at.isoformat() if event.captured_at else None,
        "first_seen": event.first_seen,
        "last_seen": event.last_seen,
        "box": [round(v, 2) for v in event.box],
        "first_frame_index": event.first_frame_index,
        "first_box": [round(v, 2) for v in event.first_box] if event.first_box else None,
        "landmarks": (
            [[round(x, 2), round(y, 2)] for x, y in event.landmarks] if event.landmarks else None
        ),
        "quality": round(event.quality, 6),
        "components": {name: round(value, 6) for name, value in event.components.items()},
        "model": event.model,
        "sightings": event.sightings,
        "decided_at": event.decided_at.isoformat(),
    }


def crop_path(source: str, run_id: str, track_id: int, seq: str, kind: str) -> str:
    """Path of a crop below ``crops/``, from its event's fields: ``<source>/<run_id>-<track:06d>-<seq>-<kind>.jpg``.

    The one layout of crops, for the directory sink and ``fiqa-stream consume`` alike. The
    callers check that each part is a plain file name (``crop_name``: the config's id rules;
    the consumer: ``check_crop_fields``)."""
    return f"{source}/{run_id}-{track_id:06d}-{seq}-{kind}.jpg"


def crop_name(event: BestShot) -> str:
    """File name of the event's crop, unique per event id and safe on every filesystem; a run's
    crops sort together, runs in the order they started."""
    seq = event.event_id.rsplit(":", 1)[1]
    return crop_path(event.source, event.run_id, event.track_id, seq, event.kind.value)
