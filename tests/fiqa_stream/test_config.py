"""The config file: typed, strict, one-line errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiqa_stream.config import load_config, parse_config
from fiqa_stream.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
MINIMAL = {"sources": [{"url": "a.mp4"}], "sinks": [{"type": "directory", "path": "out"}]}


def error_of(data: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "c.yaml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_minimal_config_takes_every_default() -> None:
    config = parse_config(MINIMAL)
    assert config.detector.type == "yunet"
    assert config.scorer.type == "fiqa"
    assert config.selection.policy == "on_end"
    assert str(config.sinks[0].path) == "out"


def test_an_unknown_key_is_named_with_its_path() -> None:
    message = error_of({**MINIMAL, "sources": [{"url": "a.mp4", "evry": 2}]})
    assert message == "c.yaml: sources[0].evry: unknown key"


def test_a_wrong_type_names_the_key_the_expectation_and_the_value() -> None:
    message = error_of({**MINIMAL, "tracker": {"min_hits": "three"}})
    assert message.startswith("c.yaml: tracker.min_hits: Input should be a valid integer")
    assert "'three'" in message


def test_an_out_of_range_value_inside_a_plugin_is_named_without_the_union_tag() -> None:
    message = error_of({**MINIMAL, "detector": {"type": "yunet", "max_width": 99999}})
    assert message.startswith("c.yaml: detector.max_width: Input should be less than or equal to 4096")


def test_an_unknown_plugin_type_suggests_the_closest_name() -> None:
    message = error_of({**MINIMAL, "detector": {"type": "yunett"}})
    assert "unknown type 'yunett' (did you mean 'yunet'?)" in message
    assert "centerface" in message


def test_a_missing_required_key_is_named() -> None:
    assert error_of({"sources": [{"url": "a.mp4"}]}) == "c.yaml: sinks: required key is missing"


def test_environment_variables_are_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAMERA_PATH", "/videos/cam.mp4")
    config = parse_config({**MINIMAL, "sources": [{"url": "${CAMERA_PATH}"}]})
    assert config.sources[0].url == "/videos/cam.mp4"


def test_an_unset_environment_variable_uses_its_default_or_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIQA_UNSET", raising=False)
    config = parse_config({**MINIMAL, "sources": [{"url": "${FIQA_UNSET:-fallback.mp4}"}]})
    assert config.sources[0].url == "fallback.mp4"
    message = error_of({**MINIMAL, "sources": [{"url": "${FIQA_UNSET}"}]})
    assert message == "c.yaml: sources[0].url: environment variable FIQA_UNSET is not set"


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found$"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("sources:\n  - url: a.mp4\n   bad: [\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+: invalid YAML"):
        load_config(path)


def test_the_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of keys at the top level"):
        load_config(path)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEPLOYMENT_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert load_config(path).sources


# What a deployment sets for the shipped configs that take their inputs from the environment.
DEPLOYMENT_ENVIRONMENT = {
    "FIQA_SOURCE": "videos/",
    "FIQA_REDIS_URL": "redis://redis:6379/0",
    "FIQA_CAMERA_1": "rtsp://10.0.0.21:554/stream1",
    "FIQA_CAMERA_2": "rtsp://10.0.0.22:554/stream1",
}
