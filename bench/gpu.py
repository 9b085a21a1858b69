"""GPU benchmark (issue 6): copy bandwidth, batched preprocessing, scorer throughput.

    python bench/gpu.py [--no-write] [--max-batch 1024] [--compile]

Runs in one call on a CUDA machine with torch and CuPy, and records a ``gpu`` section
in docs/BENCHMARKS.md with the device's name:

* device copy bandwidth: a 1 GiB device-to-device CuPy copy (read + write bytes per
  second) and a pinned host-to-device copy;
* preprocessing of 256 and of 4,096 faces over 16 1080p frames to 224×224 fp16
  channels-last: faces/s and achieved GB/s (frame bytes read once per output pixel and
  channel, plus the fp16 output written) as a share of the measured copy bandwidth, on
  frames already uploaded and with the frame upload;
* every model of ``scorers/models``: crops/s for batch sizes 1..1024 in fp16
  channels-last, eager and replayed as a CUDA graph per batch size (``--compile``:
  torch.compile instead of graphs), and the batch-1 latency. Shipped weights under
  ``scorers/weights/`` are loaded when present; otherwise the model is randomly
  initialised, which costs the same time, and the table says so.

On a machine without a CUDA GPU it prints why and exits with status 0, measuring nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

FACES = 256
#: A larger batch shows how much of the 256-face call is fixed per-call cost rather than kernel work.
LARGE_BATCH = 4096
FRAMES = 16
SIZE = 224
WEIGHTS = Path(__file__).resolve().parents[1] / "scorers" / "weights"


def gpu_or_reason() -> tuple[Any, Any, str | None]:
    """torch and cupy, or the reason this machine cannot run the benchmark."""
    try:
        import torch
    except ImportError:
        return None, None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, None, f"torch {torch.__version__} sees no CUDA GPU"
    try:
        import cupy
    except ImportError:
        return None, None, "CuPy is not installed (pip install 'fiqa-stream[gpu]' or a cupy-cudaXXx wheel)"
    return torch, cupy, None


def timed(run: Callable[[], None], torch: Any, least_seconds: float = 0.3, least_runs: int = 5) -> float:
    """Seconds per call of ``run`` (GPU work included), after two warm-up calls."""
    run()
    run()
    torch.cuda.synchronize()
    runs, started = 0, time.perf_counter()
    while runs < least_runs or time.perf_counter() - started < least_seconds:
        run()
        runs += 1
        if runs % 8 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / runs


def copy_bandwidth(cupy: Any, torch: Any) -> dict[str, float]:
    nbytes = 1 << 30
    source, target = cupy.empty(nbytes, cupy.uint8), cupy.empty(nbytes, cupy.uint8)
    source.fill(1)
    device_seconds = timed(lambda: target.data.copy_from_device_async(source.data, nbytes), torch)
    pinned = np.frombuffer(cupy.cuda.alloc_pinned_memory(nbytes // 4), np.uint8, nbytes // 4)
    pinned.fill(1)
    upload = target[: nbytes // 4]
    upload_seconds = timed(lambda: upload.set(pinned), torch)
    return {"device_gbs": 2 * nbytes / device_seconds / 1e9, "upload_gbs": nbytes / 4 / upload_seconds / 1e9}


def preprocessing(cupy: Any, torch: Any, count: int = FACES) -> dict[str, float]:
    from fiqa_stream.scorers.align import ARCFACE_TEMPLATE
    from fiqa_stream.scorers.prep import layout_faces
    from fiqa_stream.scorers.prep_cuda import CudaPreprocessor
    from fiqa_stream.types import Face

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (1080, 1920, 3), np.uint8) for _ in range(FRAMES)]
    template = ARCFACE_TEMPLATE / 112.0 - 0.5
    faces = []
    for i in range(count):
        side = rng.uniform(40, 240)
        centre = rng.uniform([side, side], [1920 - side, 1080 - side])
        points = (template * side + centre).astype(np.float32)
        box = np.array([*(centre - side / 2), *(centre + side / 2)], np.float32)
        faces.append(Face(frames[i % FRAMES], box, 0.9, points))
    layout = layout_faces(faces, SIZE)
    with CudaPreprocessor(SIZE, "cuda:0", channels_last=True) as prep:
        pixels = cupy.empty(layout.nbytes, cupy.uint8)
        host = np.empty(layout.nbytes, np.uint8)
        layout.pack_into(host)
        pixels.set(host)
        kernels = timed(lambda: prep.prepare_uploaded(layout, pixels), torch)
        with_upload = timed(lambda: prep.prepare_packed(layout), torch)
    moved = count * SIZE * SIZE * 3 * (1 + 2)  # one frame byte read and one fp16 written per value
    return {
        "faces_per_s": count / kernels,
        "gbs": moved / kernels / 1e9,
        "faces_per_s_upload": count / with_upload,
        "upload_mb": layout.nbytes / 1e6,
    }


def load_model(name: str, torch: Any) -> tuple[Any, str]:
    """The model with shipped weights when a safetensors file of its architecture exists."""
    from fiqa_stream.scorers.models import build_model

    paths = sorted(WEIGHTS.glob("*.safetensors"))
    if paths:
        try:
            from fiqa_stream.scorers.models.io import load_weights, read_metadata
        except ImportError as error:
            return build_model(name), f"random init ({error.name} missing: weights not read)"
        for path in paths:
            if read_metadata(path).get("architecture") == name:
                return load_weights(path)[0], f"weights {path.name}"
    return build_model(name), "random init (no shipped weights found)"


def scorer(name: str, torch: Any, sizes: list[int], compile_model: bool) -> dict[str, Any]:
    from fiqa_stream.scorers.models import model_spec

    spec = model_spec(name)
    model, source = load_model(name, torch)
    model = model.eval().cuda().half().to(memory_format=torch.channels_last)
    runner = torch.compile(model, dynamic=False) if compile_model else model
    rows: dict[int, tuple[float, float | None]] = {}
    for size in sizes:
        try:
            batch = torch.randn(size, 3, spec.input_size, spec.input_size, device="cuda", dtype=torch.half)
            batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                eager = timed(lambda b=batch, run=runner: run(b), torch)
                graphed = None if compile_model else graph_seconds(model, batch, torch)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        rows[size] = (eager, graphed)
    return {"source": source, "rows": rows, "input": spec.input_size, "shipped": spec.shipped}


def graph_seconds(model: Any, batch: Any, torch: Any) -> float:
    """Seconds per replay of the model captured as one CUDA graph at this batch size."""
    static = batch.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            model(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model(static)
    return timed(graph.replay, torch)


def report(torch: Any, cupy: Any, args: argparse.Namespace) -> str:
    from fiqa_stream.scorers.models import MODELS

    properties = torch.cuda.get_device_properties(0)
    lines = [
        f"### GPU path on {properties.name} ({properties.total_memory / 2**30:.0f} GiB)",
        "",
        f"`python bench/gpu.py{' --compile' if args.compile else ''}`; torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, CuPy {cupy.__version__}",
        "",
    ]
    copy = copy_bandwidth(cupy, torch)
    lines += [
        "| copy | GB/s |",
        "|---|---|",
        f"| device to device (1 GiB, read + write) | {copy['device_gbs']:.0f} |",
        f"| pinned host to device | {copy['upload_gbs']:.1f} |",
        "",
    ]
    lines += [
        f"Preprocessing over {FRAMES} 1080p frames to {SIZE}×{SIZE} fp16 channels-last (warp + normalise in one "
        "launch, sharpness/exposure in a second). On uploaded frames, a call holds the two launches plus the "
        "copy of the face tables, the output allocation and the Python around them. With upload, the frames "
        "are also packed into pinned memory and copied:",
        "",
        "| faces per call | on uploaded frames: faces/s | GB/s | share of the copy bandwidth (target ≥ 50%) "
        "| with the frame upload: faces/s |",
        "|---|---|---|---|---|",
    ]
    for count in (FACES, LARGE_BATCH):
        prep = preprocessing(cupy, torch, count)
        share = 100 * prep["gbs"] / copy["device_gbs"]
        lines.append(f"| {count:,} | {prep['faces_per_s']:,.0f} | {prep['gbs']:.0f} | {share:.0f}% "
                     f"| {prep['faces_per_s_upload']:,.0f} ({prep['upload_mb']:.0f} MB pinned) |")
        print(lines[-1], flush=True)
    lines.append("")
    sizes = [2**k for k in range(11) if 2**k <= args.max_batch]
    mode = "torch.compile" if args.compile else "CUDA graph"
    lines += [
        f"Scorers, fp16 channels-last, crops/s (eager / {mode}); the target for the default student "
        "is ≥ 20,000 crops/s at batch 256:",
        "",
        "| model | weights | batch-1 latency | " + " | ".join(str(s) for s in sizes) + " |",
        "|---|---|---|" + "---|" * len(sizes),
    ]
    for name in MODELS:
        result = scorer(name, torch, sizes, args.compile)
        torch.cuda.empty_cache()
        rows = result["rows"]
        cells = []
        for size in sizes:
            if size not in rows:
                cells.append("OOM")
                continue
            eager, graphed = rows[size]
            cells.append(f"{size / eager:,.0f}" + ("" if graphed is None else f" / {size / graphed:,.0f}"))
        latency = ""
        if 1 in rows:
            eager, graphed = rows[1]
            latency = f"{1000 * eager:.2f} ms" + ("" if graphed is None else f" / {1000 * graphed:.2f} ms")
        shipped = "" if result["shipped"] else " (not shipped)"
        lines.append(f"| {name}{shipped} | {result['source']} | {latency} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "End-to-end streams per GPU is not measured here: the pipeline has no batched GPU scorer "
        "or cross-stream batching yet.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    parser.add_argument("--max-batch", type=int, default=1024, help="largest scorer batch measured")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models instead of CUDA graphs")
    args = parser.parse_args()
    torch, cupy, reason = gpu_or_reason()
    if reason is not None:
        print(f"bench/gpu.py: no GPU benchmark on this machine: {reason}", file=sys.stderr)
        return 0
    torch.backends.cudnn.benchmark = True
    text = report(torch, cupy, args)
    print(text)
    if not args.no_write:
        from common import write_section

        write_section("gpu", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
