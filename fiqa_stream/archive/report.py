"""A static HTML gallery of an archive index: one self-contained file, no server.

Every thumbnail is embedded as a ``data:`` URI and the style and the sorting script
are inline; a Content-Security-Policy forbids any other source, so opening the page
never reaches the network.
"""

from __future__ import annotations

import base64
import html
import logging
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from fiqa_stream.archive.database import ArchiveIndex, ShotRow, VideoRow
from fiqa_stream.sinks.directory import write_atomically

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #222; background: #fafafa; }
header { position: sticky; top: 0; background: #fafafa; padding: .5rem 0; border-bottom: 1px solid #ddd; }
h1 { font-size: 1.3rem; margin: .3rem 0; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 .2rem; word-break: break-all; }
.meta { color: #555; margin: 0 0 .5rem; }
.error { color: #a00; margin: 0 0 .5rem; }
.drops { color: #555; margin: 0 0 .5rem; }
button { font: inherit; padding: .2rem .7rem; margin-right: .3rem; cursor: pointer; }
button[aria-pressed="true"] { background: #234; color: #fff; }
.shots { display: flex; flex-wrap: wrap; gap: .6rem; }
.shot { margin: 0; padding: .4rem; background: #fff; border: 1px solid #ddd; border-radius: 4px; width: 190px; }
.shot img { display: block; margin: 0 auto .3rem; max-width: 180px; max-height: 180px; }
.shot .head { display: flex; justify-content: space-between; font-weight: 600; }
.bars { width: 100%; border-collapse: collapse; font-size: 12px; }
.bars td { padding: 0 .2rem; white-space: nowrap; }
.bar { background: #e4e8ec; width: 70px; height: 8px; }
.bar span { display: block; height: 8px; background: #4a7ab8; }
"""

_SCRIPT = """
const order = { key: "time", descending: false };
function sortShots(key) {
  order.descending = order.key === key ? !order.descending : key === "quality";
  order.key = key;
  for (const box of document.querySelectorAll(".shots")) {
    const shots = Array.from(box.children);
    shots.sort((a, b) => {
      const d = parseFloat(a.dataset[key]) - parseFloat(b.dataset[key]);
      return (order.descending ? -d : d) || (parseInt(a.dataset.track) - parseInt(b.dataset.track));
    });
    for (const shot of shots) box.appendChild(shot);
  }
  for (const button of document.querySelectorAll("button[data-sort]")) {
    const on = button.dataset.sort === key;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.textContent = button.dataset.label + (on ? (order.descending ? " \\u2193" : " \\u2191") : "");
  }
}
for (const button of document.querySelectorAll("button[data-sort]")) {
  button.addEventListener("click", () => sortShots(button.dataset.sort));
}
"""


def clock(seconds: float | None) -> str:
    """``m:ss.ss`` (or ``h:mm:ss.ss``) of a time in a video."""
    if seconds is None:
        return "?"
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{rest:05.2f}" if hours else f"{minutes}:{rest:05.2f}"


def _thumbnail(index: ArchiveIndex, crop: str, max_side: int) -> str | None:
    """The crop as a small JPEG ``data:`` URI, or None when its file is unreadable."""
    image = cv2.imread(str(index.crop_file(crop)), cv2.IMREAD_COLOR)
    if image is None:
        return None
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode() if ok else None


def _shot_html(index: ArchiveIndex, shot: ShotRow, max_side: int) -> str:
    uri = _thumbnail(index, shot.crop, max_side)
    alt = f"track {shot.track_id} at {clock(shot.time)}"
    picture = (f'<img src="{uri}" alt="{html.escape(alt)}">' if uri
               else f'<p class="error">crop missing: {html.escape(shot.crop)}</p>')
    bars = "".join(
        f'<tr><td>{html.escape(name)}</td><td><div class="bar"><span style="width:{100 * min(1, max(0, v)):.0f}%">'
        f"</span></div></td><td>{v:.2f}</td></tr>"
        for name, v in sorted(shot.components.items())
    )
    return (
        f'<figure class="shot" data-quality="{shot.quality:.6f}" data-time="{shot.time or 0:.3f}" '
        f'data-track="{shot.track_id}">{picture}<figcaption>'
        f'<div class="head"><span class="time">{clock(shot.time)}</span>'
        f'<span class="quality" title="quality">{shot.quality:.3f}</span></div>'
        f'<table class="bars">{bars}</table></figcaption></figure>'
    )


def _video_html(index: ArchiveIndex, video: VideoRow, shots: list[ShotRow], max_side: int) -> str:
    facts = [video.status.value, f"{len(shots)} best shots"]
    if video.duration is not None:
        facts.insert(0, clock(video.duration))
    if video.width and video.height:
        facts.insert(1, f"{video.width}×{video.height}")
    error = f'<p class="error">{html.escape(video.error)}</p>' if video.error else ""
    if video.dropped_faces:
        error += f'<p class="drops">Faces without a best shot: {html.escape(video.dropped_faces)}</p>'
    cards = "".join(_shot_html(index, shot, max_side) for shot in shots)
    return (
        f'<section class="video" data-status="{video.status.value}"><h2>{html.escape(Path(video.path).name)}</h2>'
        f'<p class="meta">{html.escape(video.path)} · {" · ".join(facts)}</p>{error}'
        f'<div class="shots">{cards}</div></section>'
    )


def write_report(index: ArchiveIndex, target: Path | None = None, *, per_video: int | None = None,
                 max_side: int = 160) -> Path:
    """Write the gallery of ``index`` (default ``DIR/report.html``) and return its path.

    ``per_video`` keeps only each video's best shots of highest quality; thumbnails are
    scaled to ``max_side`` pixels at most.
    """
    target = target or index.folder / REPORT_FILE
    by_video: dict[int, list[ShotRow]] = defaultdict(list)
    for shot in index.shots(order="time"):
        by_video[shot.video_id].append(shot)
    sections = []
    videos = index.videos()
    for video in videos:
        shots = by_video.get(video.id, [])
        if per_video is not None and len(shots) > per_video:
            keep = {id(s) for s in sorted(shots, key=lambda s: -s.quality)[:per_video]}
            shots = [s for s in shots if id(s) in keep]
        sections.append(_video_html(index, video, shots, max_side))
    counts = index.counts()
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>fiqa-stream: {html.escape(index.folder.name)}</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>Best shots in {html.escape(str(index.folder))}</h1>"
        f'<p class="meta">{counts["videos"]} videos, {counts["tracks"]} tracks, {counts["best_shots"]} best shots</p>'
        '<div class="controls">Sort each video\'s best shots by: '
        '<button type="button" id="sort-time" data-sort="time" data-label="time" aria-pressed="true">time \u2191'
        '</button><button type="button" id="sort-quality" data-sort="quality" data-label="quality" '
        'aria-pressed="false">quality</button></div></header>'
        f'<main>{"".join(sections)}</main><script>{_SCRIPT}</script></body></html>'
    )
    write_atomically(target, page.encode(), fsync=False)
    log.debug("report of %d videos written to %s", len(videos), target)
    return target
