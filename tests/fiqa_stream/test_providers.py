"""onnxruntime execution providers for ONNX detectors and scorers: CUDA only where it can run."""

from __future__ import annotations

import logging

import pytest

from fiqa_stream.providers import onnx_providers


def test_providers_are_the_cpu_for_the_cpu_device() -> None:
    assert onnx_providers("cpu", "detector scrfd") == ["CPUExecutionProvider"]


def test_cuda_without_a_cuda_onnxruntime_runs_on_the_cpu_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: ["CPUExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="fiqa_stream.providers"):
        assert onnx_providers("cuda:0", "scorer fiqa") == ["CPUExecutionProvider"]
    assert "scorer fiqa: onnxruntime on the CPU although device is cuda:0" in caplog.text


def test_cuda_with_a_cuda_onnxruntime_asks_for_the_cuda_provider_on_that_gpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    available = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr("onnxruntime.get_available_providers", lambda: available)
    with caplog.at_level(logging.INFO, logger="fiqa_stream.providers"):
        providers = onnx_providers("cuda:1", "detector centerface")
    assert providers == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert "detector centerface: onnxruntime CUDAExecutionProvider on cuda:1" in caplog.text
