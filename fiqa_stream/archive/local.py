"""Archive indexing on one machine: N worker processes take videos from one queue.

Each worker builds its detector and scorer once and analyses video after video, so
untrusted files are decoded outside the process that writes the index. A worker that
dies (a crash in a decoder, the OOM killer) fails only the video it held and is
replaced. Workers exit by themselves when the parent dies, even by SIGKILL.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as ProcessEvent

from fiqa_stream.archive.analysis import (
    Finished,
    Progress,
    RunnerMessage,
    Started,
    VideoJob,
    VideoResult,
    analyse_video,
    peak_rss_mb,
)
from fiqa_stream.archive.database import VideoOutcome, VideoStatus
from fiqa_stream.config import Config
from fiqa_stream.errors import FiqaError
from fiqa_stream.models import build_models
from fiqa_stream.stream.worker_bootstrap import start_worker

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class _WorkerFailed:
    """A worker could not start (its detector or scorer would not load): fatal for the run."""

    error: FiqaError


def _worker(index: int, config: Config, threads: int, jobs: Queue, messages: Queue, stop: ProcessEvent) -> None:
    # Nothing to flush when the parent is gone: it alone writes the index.
    local_stop, _ = start_worker(config.logging, threads, stop.is_set, grace=0.0)
    name = f"worker-{index}"
    try:
        models = build_models(config.detector, config.scorer, config.device, threads)
    except Exception as error:  # noqa: BLE001 - handed to the parent, which stops the run
        messages.put(_WorkerFailed(error if isinstance(error, FiqaError) else FiqaError(f"{name}: {error}")))
        return

    def progress(fingerprint: str, decoded: int, expected: int | None) -> None:
        messages.put(Progress(fingerprint, decoded, expected))

    try:
        while not stop.is_set():
            job = jobs.get()
            if job is None:
                break
            messages.put(Started(job.fingerprint, name))
            try:
                result = analyse_video(job, config, models, local_stop, name, progress)
            except Exception as error:  # noqa: BLE001 - one video's bug must not end the worker
                log.exception("%s: analysis failed", job.path)
                outcome = VideoOutcome(job.fingerprint, VideoStatus.FAILED, f"{job.path}: analysis failed: {error}")
                result = VideoResult(outcome, job.path, name, peak_rss_mb())
            messages.put(Finished(result))
    finally:
        models.close()


class LocalRunner:
    """Runs videos over ``workers`` local processes."""

    def __init__(self, config: Config, workers: int) -> None:
        self._config = config
        self._workers = workers

    def run(self, jobs: list[VideoJob], stop: threading.Event) -> Iterator[RunnerMessage]:
        """Messages until every job finished, or, after ``stop``, until every worker left.
        Jobs with no ``Finished`` message were not analysed."""
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        job_queue: Queue = context.Queue()
        messages: Queue = context.Queue()
        process_stop = context.Event()
        count = min(self._workers, len(jobs))
        threads = max(1, (os.cpu_count() or 1) // count)
        for job in jobs:
            job_queue.put(job)
        for _ in range(count):
            job_queue.put(None)

        def start(index: int) -> BaseProcess:
            process = context.Process(
                target=_worker, args=(index, self._config, threads, job_queue, messages, process_stop),
                name=f"fiqa-index-{index}", daemon=True,
            )
            process.start()
            return process

        processes = {f"worker-{i}": start(i) for i in range(count)}
        holding: dict[str, VideoJob | None] = dict.fromkeys(processes)
        by_fingerprint = {job.fingerprint: job for job in jobs}
        remaining = len(jobs)

        def note(message: RunnerMessage) -> RunnerMessage:
            nonlocal remaining
            if isinstance(message, Started):
                holding[message.worker] = by_fingerprint[message.fingerprint]
            elif isinstance(message, Finished):
                holding[message.result.worker] = None
                remaining -= 1
            return message

        try:
            while remaining and processes:
                if stop.is_set():
                    process_stop.set()
                try:
                    message = messages.get(timeout=0.2)
                except queue.Empty:
                    message = None
                if isinstance(message, _WorkerFailed):
                    raise message.error
                if message is not None:
                    yield note(message)
                    continue
                dead = [name for name, process in processes.items() if not process.is_alive()]
                if not dead:
                    continue
                # A worker's last messages may still be in the pipe when it is seen dead.
                while True:
                    try:
                        message = messages.get_nowait()
                    except queue.Empty:
                        break
                    if isinstance(message, _WorkerFailed):
                        raise message.error
                    yield note(message)
                for name in dead:
                    process = processes.pop(name)
                    held = holding[name]
                    if held is None:
                        continue
                    holding[name] = None
                    log.error("%s: worker process died (exit code %s) while analysing it", held.path, process.exitcode)
                    outcome = VideoOutcome(
                        held.fingerprint, VideoStatus.FAILED,
                        f"{held.path}: the worker process died (exit code {process.exitcode}) while analysing it",
                    )
                    yield note(Finished(VideoResult(outcome, held.path, name, 0.0)))
                    if not stop.is_set():
                        processes[name] = start(int(name.rsplit("-", 1)[1]))
        finally:
            process_stop.set()
            job_queue.cancel_join_thread()
            for process in processes.values():
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
                    process.join(timeout=5)
