"""Benchmark of the shipped FIQA models: held-out accuracy, cost and CPU throughput.

    python bench/models.py [--data DIR] [--teacher FILE.safetensors] [--no-write]

For each shipped model: SRCC and PLCC on the held-out faces (``DIR/test``, as
written by ``fiqa-stream dataset DIR``; built in a temporary folder when not given),
parameters, GMACs at its input size, and crops/s at batch 1, 32 and 64 with
onnxruntime (what the pipeline runs) and with torch, on this machine's CPU. Records
a section in docs/BENCHMARKS.md with the machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BATCHES = (1, 32, 64)
MIN_SECONDS = 1.5


def throughput(run, batch: int) -> float:
    """Crops per second of ``run(batch)``, timed over at least ``MIN_SECONDS`` after a warm-up call."""
    run(batch)
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < MIN_SECONDS or calls < 3:
        run(batch)
        calls += 1
    return calls * batch / elapsed


def measure(name: str, model, input_size: int, onnx_path: Path | None, test) -> dict:
    import numpy as np
    import onnxruntime
    import torch

    from fiqa_stream.scorers.models.complexity import count
    from fiqa_stream.scorers.training.metrics import evaluate
    from fiqa_stream.scorers.training.trainer import predict

    predictions = predict(model, [item.path for item in test], input_size, torch.device("cpu"))
    metrics = evaluate(predictions, [item.score for item in test])
    cost = count(model, input_size)
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, 3, input_size, input_size)).astype(np.float32) for b in BATCHES}
    row = {"name": name, "srcc": metrics.srcc, "plcc": metrics.plcc, "params": cost.params, "gmacs": cost.gmacs,
           "input_size": input_size}
    with torch.no_grad():
        row["torch"] = {b: throughput(lambda n: model(torch.from_numpy(inputs[n])), b) for b in BATCHES}
    if onnx_path is not None:
        session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        row["onnxruntime"] = {b: throughput(lambda n: session.run(None, {"input": inputs[n]}), b) for b in BATCHES}
    return row


def scorer_rate(name: str) -> float:
    """Faces/s of the whole fiqa scorer (alignment, weight-free components, model) on 32 real faces per call."""
    import importlib.resources
    import warnings

    import cv2
    import numpy as np
    import yuface

    from fiqa_stream.scorers.config import FiqaScorerConfig
    from fiqa_stream.scorers.fiqa import FiqaScorer
    from fiqa_stream.types import Face

    photo = (importlib.resources.files("insightface") / "data/images/t1.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(photo, np.uint8), cv2.IMREAD_COLOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _, boxes, landmarks = yuface.detect(image, conf=0.5)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    boxes[:, 2:] += boxes[:, :2]
    points = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    faces = [Face(image, boxes[i % len(boxes)], 0.9, points[i % len(boxes)]) for i in range(32)]
    scorer = FiqaScorer(FiqaScorerConfig(model=name))
    return throughput(lambda _: scorer.score(faces), 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="data root written by `fiqa-stream dataset` (default: build one)")
    parser.add_argument("--teacher", type=Path, help="also measure this trained teacher (.safetensors)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = parser.parse_args()

    import torch

    from fiqa_stream.scorers.models.io import load_weights
    from fiqa_stream.scorers.training.data import scored_images
    from fiqa_stream.scorers.training.degradation_set import write_training_folders
    from fiqa_stream.scorers.weights import SHIPPED, load_shipped

    with tempfile.TemporaryDirectory() as work:
        data = args.data
        if data is None:
            data = Path(work)
            write_training_folders(data)
        test = scored_images(data / "test")
        rows = [measure(s.version, load_shipped(n), s.input_size, s.onnx, test) for n, s in SHIPPED.items()]
        for row, name in zip(rows, SHIPPED, strict=True):
            row["scorer"] = scorer_rate(name)
        if args.teacher is not None:
            teacher, metadata = load_weights(args.teacher)
            rows.append(measure("teacher (not shipped)", teacher, int(metadata["input_size"]), None, test))

    def rates(row: dict, backend: str) -> str:
        return " / ".join(f"{row[backend][b]:.0f}" for b in BATCHES) if backend in row else "-"

    lines = [
        "### FIQA models: held-out accuracy and CPU throughput",
        "",
        f"`python bench/models.py{' --data DATA' if args.data else ''}"
        f"{' --teacher TEACHER' if args.teacher else ''}` — {len(test)} held-out images of "
        f"{len({item.path.name.split('_')[0] for item in test})} faces never seen in training "
        f"(degradation set, split by face); torch {torch.__version__} with {torch.get_num_threads()} threads, "
        "onnxruntime with its default threads; crops/s at batch " + " / ".join(map(str, BATCHES)) + ".",
        "",
        "| model | input | params | GMACs | SRCC (MS-SSIM labels) | PLCC (MS-SSIM labels) | onnxruntime crops/s "
        "| torch crops/s | scorer faces/s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['name']} | {r['input_size']} | {r['params'] / 1e6:.2f} M | {r['gmacs']:.3f} | {r['srcc']:.4f} | "
            f"{r['plcc']:.4f} | {rates(r, 'onnxruntime')} | {rates(r, 'torch')} | "
            f"{format(r['scorer'], '.0f') if 'scorer' in r else '-'} |"
            for r in rows
        ),
        "",
        "SRCC/PLCC: agreement with the degradation set's MS-SSIM labels, pooled over both held-out faces (per "
        "face see scorers/weights/MODEL_CARD.md). The `-utility` models learnt recognition utility instead, which "
        "ranks darkness and noise far lower than MS-SSIM does, so their agreement here is low by design; how they "
        "predict recognition is in the quality section (`bench/quality.py`). onnxruntime crops/s: the float model "
        "file. \"scorer faces/s\": the whole `fiqa` scorer (ArcFace alignment, weight-free components, model on "
        "onnxruntime, its 8-bit integer file where the model ships one, as on any CPU by default) on 32 real faces "
        "per call, the pipeline's cost per face beyond detection.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("models", report)


if __name__ == "__main__":
    main()
