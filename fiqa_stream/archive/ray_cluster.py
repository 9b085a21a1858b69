"""Archive indexing on an existing Ray cluster: one Ray task per video.

Each task analyses one file (the path must be readable at the same place on every
node, e.g. a shared mount) and returns its outcome, crops included, to the driver,
which alone writes the index: the layout is the same as a local run's. Tasks ask for
one CPU, and one GPU when the config puts a model on CUDA. Ray retries a task whose
worker process or node dies (``max_retries``); a video whose retries are exhausted is
recorded as failed. Progress travels through a small Ray queue actor. Each Ray worker
process keeps the detector and scorer of its last config, so consecutive tasks on
it skip loading them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

from fiqa_stream.archive.analysis import (
    Finished,
    Progress,
    RunnerMessage,
    Started,
    VideoJob,
    VideoResult,
    analyse_video,
)
from fiqa_stream.archive.database import VideoOutcome, VideoStatus
from fiqa_stream.config import Config
from fiqa_stream.errors import DependencyError
from fiqa_stream.models import Models, build_models
from fiqa_stream.stream.threads import limit_threads

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

MAX_RETRIES = 3
_PROGRESS_INTERVAL_S = 0.5


_loaded: tuple[tuple[object, ...], Models] | None = None


def _models(config: Config) -> Models:
    """The models of the task's config; a Ray worker keeps those of its last config."""
    global _loaded
    key = (config.device, config.detector, config.scorer)
    if _loaded is None or _loaded[0] != key:
        if _loaded is not None:
            _loaded[1].close()
        _loaded = (key, build_models(config.detector, config.scorer, config.device, threads=1))
    return _loaded[1]


def gpus_per_task(config: Config) -> int:
    """What a task asks Ray for: one GPU when the config puts the models on CUDA."""
    return 1 if config.device.lower().startswith("cuda") else 0


def index_video_task(job: VideoJob, config: Config, progress_queue: Any) -> VideoResult:
    """The body of one Ray task (module level, so Ray imports it by name on the workers)."""
    import ray

    limit_threads(1)
    worker = f"ray:{ray.get_runtime_context().get_node_id()[:8]}"
    last = 0.0

    def progress(fingerprint: str, decoded: int, expected: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= _PROGRESS_INTERVAL_S:
            last = now
            # Progress is best effort: a full queue drops it.
            with contextlib.suppress(Exception):
                progress_queue.put_nowait(Progress(fingerprint, decoded, expected))

    return analyse_video(job, config, _models(config), threading.Event(), worker, progress)


class RayRunner:
    """Runs videos as tasks on the Ray cluster at ``address``."""

    def __init__(self, config: Config, address: str) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise DependencyError.missing("ray", "ray", "--ray") from None
        self._config = config
        self._address = address
        self._gpus = gpus_per_task(config)

    def run(self, jobs: list[VideoJob], stop: threading.Event) -> Iterator[RunnerMessage]:
        """Messages until every job finished, or after ``stop`` once running tasks are cancelled."""
        import ray
        from ray.util.queue import Queue as RayQueue

        if not jobs:
            return
        ray.init(address=self._address, logging_level=logging.WARNING, log_to_driver=False)
        try:
            progress_queue = RayQueue(maxsize=10_000, actor_options={"num_cpus": 0})
            task = ray.remote(index_video_task).options(
                num_cpus=1, num_gpus=self._gpus, max_retries=MAX_RETRIES, retry_exceptions=False,
            )
            # A bounded window of tasks in flight keeps stopping prompt and the driver's memory small.
            window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            waiting = list(jobs)
            in_flight: dict[Any, VideoJob] = {}
            while waiting or in_flight:
                if stop.is_set():
                    for ref in in_flight:
                        ray.cancel(ref, force=True)
                    return
                while waiting and len(in_flight) < window:
                    job = waiting.pop(0)
                    in_flight[task.remote(job, self._config, progress_queue)] = job
                    yield Started(job.fingerprint, "ray")
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.25)
                yield from progress_queue.get_nowait_batch(progress_queue.qsize())
                for ref in ready:
                    job = in_flight.pop(ref)
                    yield Finished(self._result(ref, job))
        finally:
            ray.shutdown()

    @staticmethod
    def _result(ref: Any, job: VideoJob) -> VideoResult:
        import ray
        from ray.exceptions import RayError

        try:
            result: VideoResult = ray.get(ref)
            return result
        except RayError as error:
            # The message opens with the task's name and pid and ends with the exception that
            # killed it, after the remote traceback: that last line is the reason.
            lines = [line.strip() for line in _ANSI.sub("", str(error)).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(error).__name__
            log.error("%s: Ray task failed after %d retries: %s", job.path, MAX_RETRIES, reason)
            outcome = VideoOutcome(job.fingerprint, VideoStatus.FAILED, f"{job.path}: Ray task failed: {reason}")
            return VideoResult(outcome, job.path, "ray", 0.0)
