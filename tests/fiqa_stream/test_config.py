"""The config file: typed, strict, one-line errors that name the key path."""

from __future__ import annotations

import time
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


def test_an_unknown_key_is_named_with_its_path_and_the_closest_known_key() -> None:
    message = error_of({**MINIMAL, "sources": [{"url": "a.mp4", "evry": 2}]})
    assert message == "c.yaml: sources[0].evry: unknown key (did you mean 'every'?)"


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
    with pytest.raises(ConfigError, match="expected a mapping of keys at the top level, got list"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_config_says_so_and_what_it_needs(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: the config is empty; expected at least 'sources' and 'sinks'"


# Nine nested aliases: 342 bytes that expand to 9**9 (387 million) strings.
ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_a_yaml_alias_bomb_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 0.5
    assert str(caught.value) == f"{path}: YAML aliases expand beyond 100000 nodes (alias bomb?)"


def test_ordinary_aliases_and_merge_keys_still_load(tmp_path: Path) -> None:
    path = tmp_path / "aliases.yaml"
    path.write_text("sources:\n  - &camera {url: a.mp4, every: 2, queue_size: 4}\n  - {<<: *camera, url: b.mp4}\n"
                    "sinks: [{type: directory, path: out}]\n")
    config = load_config(path)
    assert [(s.url, s.every, s.queue_size) for s in config.sources] == [("a.mp4", 2, 4), ("b.mp4", 2, 4)]


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("sinks: [{type: directory, path: out}]\nsources: &s [*s]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: line 2: a YAML alias refers to a node that contains it"


def test_yaml_nested_deeper_than_64_levels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    for depth in (65, 5000):
        path.write_text("sources: " + "[" * depth + "]" * depth + "\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path)
        assert str(caught.value) == f"{path}: YAML nested deeper than 64 levels"


def test_a_config_file_over_one_mib_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("sources: [{url: a.mp4}]\nsinks: [{type: directory, path: out}]\n" + "#" * (1 << 20) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: config file too large (over 1 MiB)"


def test_a_password_of_the_wrong_type_is_named_but_never_echoed() -> None:
    message = error_of({**MINIMAL, "sources": [{"url": "rtsp://cam/1", "password": 98765432}]})
    assert message == "c.yaml: sources[0].password: Input should be a valid string"


def test_a_url_with_a_password_is_echoed_with_the_password_masked() -> None:
    message = error_of({**MINIMAL, "sinks": [{"type": "redis", "url": "http://user:hunter2@localhost:6379/0"}]})
    assert message == ("c.yaml: sinks[0].url: Value error, expected a redis://, rediss:// or unix:// URL "
                       "(got 'http://user:***@localhost:6379/0')")


@pytest.mark.parametrize("password", ["pa/ss", "pa?ss", "pa#ss", "12/34"])
@pytest.mark.parametrize(("section", "url"), [
    ("sources", "rtsp://admin:{}@10.0.0.5:554/cam"),
    ("sinks", "redis://admin:{}@localhost:6379/0"),
])
def test_a_raw_slash_question_mark_or_hash_in_a_url_password_asks_for_percent_encoding(
    section: str, url: str, password: str
) -> None:
    entry = {"url": url.format(password)} | ({"type": "redis"} if section == "sinks" else {})
    message = error_of({**MINIMAL, section: [entry]})
    masked = url.format("***").replace("[", "").replace("]", "")
    assert message == (f"c.yaml: {section}[0].url: the password contains '/', '?' or '#': "
                       f"percent-encode it (%2F, %3F, %23) (got '{masked}')")
    assert password not in message


@pytest.mark.parametrize(("url", "reason"), [
    ("{scheme}://admin:hunter2@[::1/cam", "not a valid URL: Invalid IPv6 URL"),
    ("{scheme}://admin:hunter2@cam:70000/x", "the port is not a number from 0 to 65535"),
    ("{scheme}://admin:hunter2@cam:rtsp/x", "the port is not a number from 0 to 65535"),
])
@pytest.mark.parametrize(("section", "scheme"), [("sources", "rtsp"), ("sinks", "redis")])
def test_a_url_no_parser_can_split_is_refused_at_load_time_without_its_password(
    section: str, scheme: str, url: str, reason: str
) -> None:
    entry = {"url": url.format(scheme=scheme)} | ({"type": "redis"} if section == "sinks" else {})
    message = error_of({**MINIMAL, section: [entry]})
    assert message.startswith(f"c.yaml: {section}[0].url: {reason} (got '{scheme}://admin:***@")
    assert "hunter2" not in message


def test_a_percent_encoded_or_raw_at_sign_password_is_accepted() -> None:
    config = parse_config({**MINIMAL, "sources": [{"url": "rtsp://admin:pa%2Fss@10.0.0.5/cam"},
                                                  {"url": "rtsp://admin:p@ss@10.0.0.5/cam"}]})
    assert len(config.sources) == 2


@pytest.mark.parametrize(("section", "key"), [
    ("pipeline", "shutdown_timeout"), ("metrics", "down_after"), ("selection", "period"),
    ("sources", "read_timeout"), ("sources", "open_timeout"),
])
@pytest.mark.parametrize(("value", "expected"), [
    (".inf", "Input should be a finite number (got inf)"),
    (".nan", "Input should be a finite number (got nan)"),
    ("86401", "Input should be less than or equal to 86400 (got 86401)"),
])
def test_seconds_are_finite_and_at_most_a_day(
    tmp_path: Path, section: str, key: str, value: str, expected: str
) -> None:
    path = tmp_path / "c.yaml"
    where = f"sources: [{{url: a.mp4, {key}: {value}}}]" if section == "sources" else (
        f"sources: [{{url: a.mp4}}]\n{section}: {{{key}: {value}}}")
    path.write_text(f"{where}\nsinks: [{{type: directory, path: out}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    key_path = f"sources[0].{key}" if section == "sources" else f"{section}.{key}"
    assert str(caught.value) == f"{path}: {key_path}: {expected}"


@pytest.mark.parametrize("source_id", [".", ".."])
def test_dot_and_dot_dot_are_not_source_ids(source_id: str) -> None:
    message = error_of({**MINIMAL, "sources": [{"url": "a.mp4", "id": source_id}]})
    assert message == f"c.yaml: sources[0].id: '.' and '..' are not allowed as a source id (got '{source_id}')"


def test_a_plugin_without_type_takes_its_familys_default_type() -> None:
    config = parse_config({**MINIMAL, "detector": {"max_width": 1280}, "scorer": {"batch_size": 8}})
    assert (config.detector.type, config.detector.max_width) == ("yunet", 1280)
    assert (config.scorer.type, config.scorer.batch_size) == ("fiqa", 8)


def test_a_bad_value_in_a_plugin_without_type_is_named_by_its_key() -> None:
    message = error_of({**MINIMAL, "detector": {"max_width": 9999}})
    assert message == "c.yaml: detector.max_width: Input should be less than or equal to 4096 (got 9999)"


@pytest.mark.parametrize("detector", [{"type": "yunet", "confidense": 0.5}, {"confidense": 0.5}])
def test_an_unknown_plugin_key_suggests_the_closest_key_of_that_plugin(detector: dict) -> None:
    message = error_of({**MINIMAL, "detector": detector})
    assert message == "c.yaml: detector.confidense: unknown key (did you mean 'confidence'?)"


def test_a_sink_without_type_has_no_default_and_says_which_types_exist() -> None:
    message = error_of({**MINIMAL, "sinks": [{"path": "out"}]})
    assert message == "c.yaml: sinks[0]: the 'type' key is missing; expected one of: directory, redis, webhook, mqtt"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in DEPLOYMENT_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    assert load_config(path).sources


# What a deployment sets for the shipped configs that take their inputs from the environment.
DEPLOYMENT_ENVIRONMENT = {
    "FIQA_SOURCE": "videos/",
    "FIQA_REDIS_URL": "redis://redis:6379/0",
    "FIQA_MQTT_URL": "mqtt://camera@mosquitto:1883",
    "FIQA_WEBHOOK_URL": "https://recognition.example/hooks/fiqa",
    "FIQA_WEBHOOK_SECRET": "hmac-key",
    "FIQA_CAMERA_1": "rtsp://10.0.0.21:554/stream1",
    "FIQA_CAMERA_2": "rtsp://10.0.0.22:554/stream1",
}
