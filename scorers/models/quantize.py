"""8-bit integer versions of the exported models, for CPUs.

``quantize_int8`` rewrites an exported float ONNX model (``io.export_onnx``) as a
static QDQ model: weights int8 per output channel, activations uint8 with ranges
calibrated on real aligned face crops; the stem's first convolutions and the final
projection to the score stay float. The weights use 7 of their 8 bits: on x86 CPUs
without VNNI (AVX2 only), onnxruntime's integer kernels add two uint8 × int8 products in
16 bits, which full-range weights overflow (an mspt export scored 0.2 lower on average
there than its own graph says).
onnxruntime's CPU provider then runs the other convolutions as integer kernels
(the fused scorer 1.3 times as fast on the development machine's 2 cores; the model
card gives the speed and the cost to the ranking). A CUDA device keeps the float
model. Needs the ``onnx`` package (``train`` extra); running the result needs only
onnxruntime.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fiqa_stream.scorers.models.preprocess import crops_to_array

if TYPE_CHECKING:
    from onnx import GraphProto

CALIBRATION_BATCH = 32
#: Convolutions at the input kept in float. An under-exposed face carries its whole signal
#: in a few grey levels; quantising the stem's activations to the ranges of ordinary crops
#: erased it (fiqa-student-utility-3 then ranked six strengths of darkness on a held-out
#: face at Spearman 0.58; 0.93 with its first five convolutions in float).
FLOAT_STEM_CONVS = 5


def stem_nodes(graph: GraphProto, convolutions: int = FLOAT_STEM_CONVS) -> list[str]:
    """Names of the graph's nodes up to and including its ``convolutions``-th Conv, in graph order."""
    names: list[str] = []
    seen = 0
    for node in graph.node:
        if seen == convolutions:
            break
        names.append(node.name)
        seen += node.op_type == "Conv"
    return names


def score_nodes(graph: GraphProto) -> list[str]:
    """Names of the nodes that make the score out of the last features: each final projection to
    one value (a Gemm whose weight has one row) and every node fed by them, in graph order.

    Quantised, they hand out the score on a grid of 256 steps whose top is coarse where good
    faces crowd (fiqa-student-utility-6 scored the best quarter of the held-out sightings
    with 17 distinct values), so the best shot among a track's good frames came down to ties.
    """
    rows = {weight.name: list(weight.dims)[:1] for weight in graph.initializer}
    names: list[str] = []
    produced: set[str] = set()
    for node in graph.node:
        projection = node.op_type == "Gemm" and len(node.input) > 1 and rows.get(node.input[1]) == [1]
        if projection or produced.intersection(node.input):
            names.append(node.name)
            produced.update(node.output)
    return names


def quantize_int8(source: Path, target: Path, crops: np.ndarray) -> Path:
    """Write the int8 QDQ version of the float ONNX model ``source`` to ``target``.

    Args:
        source: a float model written by ``export_onnx`` (input N×3×S×S).
        target: the file to write.
        crops: N×S×S×3 uint8 BGR aligned face crops (``align_face``) at the model's
            input side, whose activations fix the quantisation ranges.

    Raises:
        ValueError: no crops to calibrate on.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(crops) == 0:
        raise ValueError("int8 quantisation needs calibration crops, got none")

    class Batches(CalibrationDataReader):
        def __init__(self, name: str) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = (
                {name: crops_to_array(crops[i : i + CALIBRATION_BATCH])}
                for i in range(0, len(crops), CALIBRATION_BATCH)
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        # Folds batch norms and infers shapes, as onnxruntime's quantisation guide asks.
        quant_pre_process(str(source), str(prepared))
        graph = onnx.load(str(prepared)).graph
        quantize_static(str(prepared), str(target), Batches(graph.input[0].name), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=[*stem_nodes(graph), *score_nodes(graph)])
    return target
