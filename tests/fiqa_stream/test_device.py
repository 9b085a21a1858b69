"""``device: auto | cpu | cuda[:N]``: what each resolves to, and the error when CUDA is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fiqa_stream.config import load_config, parse_config
from fiqa_stream.device import cuda_device_count, resolve_device
from fiqa_stream.errors import ConfigError
from fiqa_stream.media.clips import ClipTruth
from fiqa_stream.stream.pipeline import Pipeline

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
needs_no_gpu = pytest.mark.skipif(cuda_device_count() > 0, reason="this machine has a CUDA GPU")


def minimal(**extra: object) -> dict[str, object]:
    return {"sources": [{"url": "demo:"}], "sinks": [{"type": "directory", "path": "out"}], **extra}


def test_the_default_is_auto() -> None:
    assert parse_config(minimal()).device == "auto"


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:3"])
def test_every_documented_form_validates(value: str) -> None:
    assert parse_config(minimal(device=value)).device == value


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "CPU", "cuda:0:1"])
def test_other_values_are_a_config_error_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^config: device: String should match pattern"):
        parse_config(minimal(device=value))


def test_cpu_is_always_the_cpu() -> None:
    assert resolve_device("cpu") == "cpu"


@needs_no_gpu
def test_auto_is_the_cpu_without_a_gpu() -> None:
    assert resolve_device("auto") == "cpu"


@needs_no_gpu
@pytest.mark.parametrize("value", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_one_line_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_device(value)
    message = str(caught.value)
    assert message.startswith(f"device: '{value}' asks for a CUDA GPU, but torch sees none")
    assert "\n" not in message


def test_without_torch_auto_is_the_cpu_and_cuda_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    assert cuda_device_count() == 0
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match=r"^device: 'cuda' asks for a CUDA GPU"):
        resolve_device("cuda")


def test_a_gpu_index_beyond_the_machine_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiqa_stream.device.cuda_device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_device("auto") == "cuda:0"
    with pytest.raises(ConfigError, match=r"^device: 'cuda:2' asks for GPU 2, but torch sees 2 \(cuda:0..1\)$"):
        resolve_device("cuda:2")


@needs_no_gpu
def test_a_run_that_asks_for_cuda_stops_before_anything_starts(tmp_path: Path) -> None:
    config = parse_config(minimal(device="cuda", sinks=[{"type": "directory", "path": str(tmp_path)}]))
    with pytest.raises(ConfigError, match=r"^device: 'cuda'"):
        Pipeline(config)


def test_the_gpu_config_validates() -> None:
    config = load_config(CONFIGS / "gpu.yaml")
    assert config.device == "cuda"
    assert config.detector.type == "centerface"


FIQA_STREAM = str(Path(sys.executable).with_name("fiqa-stream"))


def test_check_accepts_the_gpu_config_on_any_machine() -> None:
    result = subprocess.run([FIQA_STREAM, "check", str(CONFIGS / "gpu.yaml")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "detector centerface" in result.stdout


@pytest.mark.gpu
@pytest.mark.slow
def test_the_gpu_config_runs_on_a_gpu(face_clip: ClipTruth, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [FIQA_STREAM, "run", str(CONFIGS / "gpu.yaml"), "--source", str(face_clip.path), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (out / "events.jsonl").read_text().strip()


def test_auto_does_not_import_torch_where_no_nvidia_device_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fiqa_stream.device._surely_no_gpu", lambda: True)
    monkeypatch.setattr("fiqa_stream.device.cuda_device_count", lambda: pytest.fail("torch was probed"))
    assert resolve_device("auto") == "cpu"
