"""Benchmark: does an added degradation lower the score? Ladders on held-out people's clean faces.

    python bench/ladders.py --data DIR/test [MODEL ...] [--no-write]

Every clean sighting of ``DIR/test`` (held-out people, as ``fiqa-stream dataset DIR``
writes it) goes through each camera degradation at strengths 0, 0.2, …, 1 (the same
random draws at every strength), is brought to the model's input size as the pipeline's
alignment does, and is scored by each model (``fiqa-stream eval``'s names: a shipped
model, or an ONNX file ``fiqa-stream export`` wrote; the default, 8-bit on the CPU, when
none is given). Per model and degradation: the mean Spearman of the score with minus the
strength over the ladders (1: every ladder falls; a ladder scored flat counts 0), and the
share of ladders where a degraded crop scores more than 0.005 above the clean one. A best
shot picked by such a score can be a darkened or noisier frame of the same face. Records a
section in docs/BENCHMARKS.md with the machine.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from fiqa_stream.scorers.config import FiqaScorerConfig  # noqa: E402
from fiqa_stream.scorers.fiqa import FiqaScorer  # noqa: E402
from fiqa_stream.scorers.training.data import read_image  # noqa: E402
from fiqa_stream.scorers.training.degradations import DEGRADATIONS  # noqa: E402
from fiqa_stream.scorers.training.utility import SIGHTINGS_CSV  # noqa: E402

LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
#: Degradations whose strength can be laddered on one crop (occlusion and decode corruption move about).
LADDERED = ("defocus_blur", "motion_blur", "gaussian_noise", "underexposure", "overexposure", "low_light",
            "low_contrast", "low_resolution", "h264")
RISE = 0.005


def ladders(test: Path, size: int) -> tuple[dict[str, np.ndarray], int, int]:
    """Degradation → (ladders × strengths) crops at ``size``; the number of clean crops and of people."""
    with (test / SIGHTINGS_CSV).open(newline="", encoding="utf-8") as handle:
        clean = [row for row in csv.DictReader(handle) if row["degradation"] == "clean"]
    crops = [read_image(test / row["image_name"]) for row in clean]

    def at_size(crop: np.ndarray) -> np.ndarray:
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)

    out = {
        name: np.stack([
            at_size(crop if strength == 0 else DEGRADATIONS[name](crop, strength, np.random.default_rng(k)))
            for k, crop in enumerate(crops) for strength in LADDER
        ])
        for name in LADDERED
    }
    return out, len(crops), len({row["identity"] for row in clean})


def order(scores: np.ndarray) -> tuple[float, float]:
    """Mean Spearman with minus the strength, and the share of ladders with a rise above the clean crop."""
    falling = -np.array(LADDER)
    rho = [float(stats.spearmanr(row, falling)[0]) if np.ptp(row) > 0 else 0.0 for row in scores]
    return float(np.mean(rho)), float(np.mean((scores[:, 1:] > scores[:, :1] + RISE).any(axis=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a held-out folder written by `fiqa-stream dataset`")
    parser.add_argument("models", nargs="*", help="shipped model names or ONNX files (default: the default model)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    args = parser.parse_args()
    models: list[str | None] = args.models or [None]
    scorers = [FiqaScorer(FiqaScorerConfig() if m is None else FiqaScorerConfig(model=m)) for m in models]
    labels = [m if m and m.endswith(".onnx") else s.model for m, s in zip(models, scorers, strict=True)]
    names = [Path(label).name for label in labels]
    labels = names if len(set(names)) == len(names) else labels
    crops, count, people = ladders(args.data, scorers[0].input_size)
    lines = [
        f"`python bench/ladders.py --data {args.data}" + "".join(f" {m}" for m in args.models) + "`",
        f"— {count} clean sightings of {people} held-out people, each through every degradation at strengths "
        f"{', '.join(map(str, LADDER))}. A cell: mean Spearman of the model's score with minus the strength over "
        f"the ladders / share of ladders where a degraded crop scores more than {RISE} above the clean one.",
        "",
        "| model | " + " | ".join(LADDERED) + " | mean |",
        "|---|" + "---:|" * (len(LADDERED) + 1),
    ]
    for label, scorer in zip(labels, scorers, strict=True):
        cells = [order(scorer.model_scores(crops[name]).reshape(count, len(LADDER))) for name in LADDERED]
        mean = np.mean(cells, axis=0)
        lines.append(f"| {label} | " + " | ".join(f"{rho:.3f} / {rise:.2f}" for rho, rise in cells)
                     + f" | {mean[0]:.3f} / {mean[1]:.2f} |")
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        from common import write_section

        write_section("ladders", report)


if __name__ == "__main__":
    main()
