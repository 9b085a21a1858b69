"""Soak: N live 720p cameras for T minutes; is the process's memory flat?

    python bench/soak.py [--cameras 4] [--minutes 30] [--interval 10] [--recycle-growth-mb MB] [--no-write]

Serves a composed 1280×720 25 fps clip of real faces from a local GStreamer RTSP
server (one mount per camera, looping; needs Debian's gir1.2-gst-rtsp-server-1.0 and
python3-gi), runs ``fiqa-stream run`` on them as a user would (every camera at
``fps: 5``, best shots into a folder), and every ``--interval`` seconds samples the
whole process tree of that run (the run and its detector child): resident memory,
threads and open files. The first minute is warm-up (models load, buffers and
allocator pools fill); growth is judged after it.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))
WARMUP_S = 60.0
WINDOW_S = 300.0
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float
    run_rss_mb: float
    threads: int
    open_files: int
    processes: int


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def sample(root: int, seconds: float) -> Sample:
    rss = run_rss = threads = files = processes = 0
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/statm") as statm:
                resident = int(statm.read().split()[1]) * PAGE
            rss += resident
            run_rss += resident if pid == root else 0
            threads += len(os.listdir(f"/proc/{pid}/task"))
            files += len(os.listdir(f"/proc/{pid}/fd"))
            processes += 1
        except OSError:
            continue  # it ended between the listing and the read
    return Sample(seconds, rss / 2**20, run_rss / 2**20, threads, files, processes)


def slope_mb_per_hour(samples: list[Sample]) -> float:
    """Least-squares trend of resident memory."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(s.seconds for s in samples) / n
    mean_m = sum(s.rss_mb for s in samples) / n
    covariance = sum((s.seconds - mean_t) * (s.rss_mb - mean_m) for s in samples)
    variance = sum((s.seconds - mean_t) ** 2 for s in samples)
    return 3600.0 * covariance / variance if variance else 0.0


def soak(clip: Path, cameras: int, minutes: float, interval: float, recycle_growth_mb: float | None,
         work: Path) -> tuple[list[Sample], str]:
    from common import serve_rtsp, stop_rtsp

    server, urls = serve_rtsp([clip] * cameras)
    detector = ("" if recycle_growth_mb is None
                else f"detector: {{type: yunet, recycle_growth_mb: {recycle_growth_mb}}}\n")
    config = work / "soak.yaml"
    config.write_text(
        "sources:\n" + "".join(f"  - {{url: '{url}', id: cam{n}, fps: 5}}\n" for n, url in enumerate(urls))
        + f"sinks: [{{type: directory, path: '{work / 'out'}', fsync: false}}]\n"
        + "pipeline: {progress: 'off'}\n" + detector
    )
    samples: list[Sample] = []
    try:
        with open(work / "run.log", "w") as log:
            run = subprocess.Popen([FIQA_STREAM, "run", str(config)], stdout=log, stderr=subprocess.STDOUT)
            start = time.monotonic()
            try:
                while (elapsed := time.monotonic() - start) < 60 * minutes:
                    if run.poll() is not None:
                        sys.exit(f"fiqa-stream run ended early (exit {run.returncode}); see {work / 'run.log'}")
                    samples.append(sample(run.pid, elapsed))
                    print(samples[-1], flush=True)
                    time.sleep(max(0.0, interval - (time.monotonic() - start - elapsed)))
            finally:
                run.send_signal(signal.SIGTERM)
                run.wait(120)
    finally:
        stop_rtsp(server)
    written = work / "out" / "events.jsonl"
    events = len(written.read_text().splitlines()) if written.exists() else 0
    summary = f"exit {run.returncode} after SIGTERM, {events} best shots written"
    return samples, summary


def report(samples: list[Sample], args: argparse.Namespace, summary: str) -> str:
    steady = [s for s in samples if s.seconds >= WARMUP_S]
    if not steady:
        sys.exit("the soak ended before its first minute: nothing to judge")
    # Frames in flight (decoder queues, batches) make RSS swing by tens of MB from one
    # sample to the next: growth compares medians of windows, not single samples.
    window = min(WINDOW_S, (steady[-1].seconds - steady[0].seconds) / 2)
    early = [s.rss_mb for s in steady if s.seconds < steady[0].seconds + window]
    late = [s.rss_mb for s in steady if s.seconds > steady[-1].seconds - window]
    growth = statistics.median(late) - statistics.median(early)
    highest, lowest = max(s.rss_mb for s in steady), min(s.rss_mb for s in steady)
    detector = ("default detector config" if args.recycle_growth_mb is None
                else f"`recycle_growth_mb: {args.recycle_growth_mb:g}`")
    every = max(1, len(samples) // 12)
    rows = [s for i, s in enumerate(samples) if i % every == 0 or s is samples[-1]]
    flag = "" if args.recycle_growth_mb is None else f" --recycle-growth-mb {args.recycle_growth_mb:g}"
    return "\n".join([
        f"### Soak: {args.cameras} live RTSP cameras, 1280×720 25 fps, 5 analysed frames/s each, "
        f"{args.minutes:g} minutes ({detector})",
        "",
        f"`python bench/soak.py --cameras {args.cameras} --minutes {args.minutes:g} "
        f"--interval {args.interval:g}{flag}` "
        "(`fiqa-stream run` as a user runs it; RSS, threads and open files summed over its process tree: the run "
        f"and its detector child; sampled every {args.interval:g} s; {summary})",
        "",
        "| minute | RSS (MB), all | of which the run's own process | threads | open files | processes |",
        "|---|---|---|---|---|---|",
        *(f"| {s.seconds / 60:.1f} | {s.rss_mb:.1f} | {s.run_rss_mb:.1f} | {s.threads} | {s.open_files} "
          f"| {s.processes} |" for s in rows),
        "",
        f"After the first minute: median RSS {statistics.median(early):.1f} MB over its first {window / 60:.0f} "
        f"minutes, {statistics.median(late):.1f} MB over the last {window / 60:.0f}: **growth {growth:+.1f} MB** "
        f"(target ≤ 20 MB); trend {slope_mb_per_hour(steady):+.1f} MB/hour (least squares over {len(steady)} "
        f"samples); samples ranged {lowest:.1f}–{highest:.1f} MB. Threads "
        f"{min(s.threads for s in steady)}–{max(s.threads for s in steady)}, open files "
        f"{min(s.open_files for s in steady)}–{max(s.open_files for s in steady)}.",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--recycle-growth-mb", type=float, default=None,
                        help="YuNet's recycle_growth_mb (0: yuface in the run's own process); default: the config's")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    from fiqa_stream.media.clips import compose_face_clip

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        # Faces come and go all the time; at the end of the file the test server restarts
        # the stream, so every camera also reconnects once every 90 s.
        clip = compose_face_clip(work / "soak.mp4", width=1280, height=720, fps=25.0, seconds=90, faces=12, seed=5)
        samples, summary = soak(clip.path, args.cameras, args.minutes, args.interval, args.recycle_growth_mb, work)
    text = report(samples, args, summary)
    print(text)
    if not args.no_write:
        from common import write_section

        name = "soak" if args.recycle_growth_mb is None else f"soak-recycle-{args.recycle_growth_mb:g}"
        write_section(name, text)


if __name__ == "__main__":
    main()
