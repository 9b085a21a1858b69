"""The whole run configuration: typed models, YAML loading, ``${ENV}`` interpolation.

Every error is one line naming the file and the key path, e.g.
``config.yaml: detector.max_width: Input should be less than or equal to 4096 (got 9999)``.
"""

from __future__ import annotations

import os
import re
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError

from fiqa_stream.archive.config import IndexConfig
from fiqa_stream.configbase import MAX_SECONDS, StrictModel
from fiqa_stream.detectors.config import DetectorConfig, YuNetConfig
from fiqa_stream.device import DEVICE_PATTERN
from fiqa_stream.errors import ConfigError
from fiqa_stream.redact import redact_text
from fiqa_stream.registry import did_you_mean
from fiqa_stream.scorers.config import FiqaScorerConfig, ScorerConfig
from fiqa_stream.sinks.config import SinkConfig
from fiqa_stream.stream.config import CropConfig, MotionConfig, SelectionConfig, SourceConfig, TrackerConfig


class PipelineConfig(StrictModel):
    """How the analysis loop batches work and reports progress."""

    batch_frames: int = Field(
        8, ge=1, le=256,
        description="Most frames (across sources) detected and scored in one batch: enough to keep every "
        "detector process busy (8 analysed 16 gated cameras about a quarter faster than 4 on 2 cores).",
    )
    max_wait_ms: float = Field(
        0.0, ge=0.0, le=1000.0,
        description="Once a frame is ready, wait up to this long for frames of other sources to fill the "
        "batch (0: analyse what is ready at once). Raises throughput with many live cameras on a GPU.",
    )
    sink_queue: int = Field(
        256, ge=1, description="Events buffered for the sinks; analysis waits when it is full.",
    )
    progress: Literal["auto", "on", "off"] = Field(
        "auto", description="Progress display: auto shows it only when stderr is a terminal.",
    )
    workers: int = Field(
        1, ge=1, le=64,
        description="Processes to shard the sources over (round-robin); each runs its own detector and scorer.",
    )
    shutdown_timeout: float = Field(
        10.0, gt=0, le=MAX_SECONDS,
        description="On SIGTERM/SIGINT: seconds allowed for flushing tracks and draining sinks.",
    )


class MetricsConfig(StrictModel):
    """The Prometheus endpoint and the health check."""

    enabled: bool = Field(False, description="Serve /metrics and /healthz over HTTP.")
    address: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 for all).")
    port: int = Field(9108, ge=0, le=65535, description="Port to listen on (0: any free port).")
    down_after: float = Field(
        60.0, gt=0, le=MAX_SECONDS,
        description="/healthz turns unhealthy when a live source has been down this long (s).",
    )


class LoggingConfig(StrictModel):
    """How fiqa-stream logs."""

    format: Literal["text", "json"] = Field("text", description="json: one JSON object per line.")
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Least severity logged.")


class Config(StrictModel):
    """A run: where frames come from, how faces are found, judged and chosen, where they go."""

    sources: list[SourceConfig] = Field(min_length=1, description="Videos to analyse.")
    device: str = Field(
        "auto", pattern=DEVICE_PATTERN,
        description="Where detection and scoring run: auto (CUDA when torch sees a GPU, else CPU), cpu, "
        "cuda or cuda:N (an error when there is no such GPU).",
    )
    detector: DetectorConfig = Field(default_factory=YuNetConfig, description="Face detector.")
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Multi-face tracker.")
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gating of detection.")
    scorer: ScorerConfig = Field(default_factory=FiqaScorerConfig, description="Quality scorer.")
    selection: SelectionConfig = Field(default_factory=SelectionConfig, description="Best-shot policy.")
    crop: CropConfig = Field(default_factory=CropConfig, description="Face crop in events.")
    sinks: list[SinkConfig] = Field(min_length=1, description="Where best shots go.")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, description="Batching and display.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Prometheus and health.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log format and level.")
    index: IndexConfig = Field(
        default_factory=IndexConfig, description="Archive indexing ('fiqa-stream index'): coarse-to-fine.",
    )


_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: Any, path: str, origin: str) -> Any:
    """Replace ``${NAME}`` and ``${NAME:-default}`` in every string of the tree."""
    if isinstance(value, dict):
        return {key: _interpolate(item, f"{path}.{key}" if path else str(key), origin)
                for key, item in value.items()}
    if isinstance(value, list):
        return [_interpolate(item, f"{path}[{i}]", origin) for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{origin}: {path}: environment variable {name} is not set")

    return _ENV_REFERENCE.sub(substitute, value)


def _key_path(location: tuple[int | str, ...], data: Any) -> str:
    """Render a pydantic error location as ``a.b[0].c``, walking the input data so that
    the tags pydantic inserts for discriminated unions (``detector.yunet.x``) are dropped,
    also where the tag is the family's default and the input has no ``type``."""
    text, node = "", data
    for index, part in enumerate(location):
        if isinstance(node, dict) and part not in node and (
            node.get("type") == part or ("type" not in node and index < len(location) - 1)
        ):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return text or "(top level)"


def _candidates(annotation: Any) -> list[Any]:
    """The types a field may hold: Annotated, Optional and unions unwrapped."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _candidates(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [member for arg in get_args(annotation) for member in _candidates(arg)]
    return [annotation]


def _plugin_tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def _type_at(schema: Any, location: tuple[int | str, ...]) -> Any:
    """The declared type at an error location (union tags followed), or None if unknown."""
    node = schema
    for part in location:
        for member in _candidates(node):
            if isinstance(part, int) and get_origin(member) is list:
                node = get_args(member)[0]
                break
            if isinstance(member, type) and issubclass(member, BaseModel):
                if part in member.model_fields:
                    node = member.model_fields[str(part)].annotation
                    break
                if _plugin_tag(member) == part:
                    node = member
                    break
        else:
            return None
    return node


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _candidates(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


# Keys whose values are never echoed in an error, whatever the error.
_SECRET_KEY = re.compile(r"password|passwd|secret|token", re.IGNORECASE)


def _message(item: Any, schema: Any = None) -> str:
    kind, location = item["type"], tuple(item["loc"])
    if kind == "extra_forbidden":
        models = _models(_type_at(schema, location[:-1])) if schema is not None else []
        known = [name for model in models[:1] for name in model.model_fields]
        return f"unknown key{did_you_mean(str(location[-1]), known)}"
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_invalid":
        tag, expected = item["ctx"]["tag"], item["ctx"]["expected_tags"]
        known = [name.strip(" '") for name in expected.split(",")]
        return f"unknown type '{tag}'{did_you_mean(tag, known)}; expected one of: {', '.join(known)}"
    if kind == "union_tag_not_found":
        tags = [_plugin_tag(m) for m in _models(_type_at(schema, location))] if schema is not None else []
        listed = f"; expected one of: {', '.join(map(str, tags))}" if tags else ""
        return f"the 'type' key is missing{listed}"
    message = str(item["msg"])
    if _SECRET_KEY.search(".".join(map(str, location))):
        return message
    if "input" in item and not isinstance(item["input"], dict | list):
        # A URL given where something else was expected may carry a password.
        message += f" (got {redact_text(repr(item['input']))})"
    return message


def describe_validation_error(error: ValidationError, data: Any, origin: str, schema: Any = None) -> str:
    """One line per the house rule: file, key path, what was expected, what was given.

    With ``schema`` (the type ``data`` was validated against) an unknown key suggests the
    closest known one and a missing plugin ``type`` lists the types. Values under a key
    named like a secret (password, secret, token) are never repeated.
    """
    parts = [f"{_key_path(item['loc'], data)}: {_message(item, schema)}" for item in error.errors()]
    more = f" (and {len(parts) - 1} more: {'; '.join(parts[1:])})" if len(parts) > 1 else ""
    return f"{origin}: {parts[0]}{more}"


def parse_config(data: Any, origin: str = "config") -> Config:
    """Validate a parsed YAML tree (after ``${ENV}`` interpolation) into a Config."""
    if data is None:
        raise ConfigError(f"{origin}: the config is empty; expected at least 'sources' and 'sinks'")
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of keys at the top level, got {type(data).__name__}")
    data = _interpolate(data, "", origin)
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, data, origin, Config)) from None


MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


class _YamlLimit(Exception):
    """A YAML document beyond what a config may be; the message lacks the file name."""


def _expanded_size(root: yaml.Node) -> int:
    """Values in the document once every alias is expanded, counted on the composed node
    graph (aliases share nodes), so it costs one visit per distinct node."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _YamlLimit(f"line {node.start_mark.line + 1}: a YAML alias refers to a node that contains it")
        if depth > MAX_YAML_DEPTH:
            raise _YamlLimit(f"YAML nested deeper than {MAX_YAML_DEPTH} levels")
        open_nodes.add(key)
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item, depth + 1) for item in node.value)
        else:
            total = 1
        open_nodes.discard(key)
        if total > MAX_YAML_NODES:
            if len(sizes) < MAX_YAML_NODES:
                raise _YamlLimit(f"YAML aliases expand beyond {MAX_YAML_NODES} nodes (alias bomb?)")
            raise _YamlLimit(f"more than {MAX_YAML_NODES} YAML nodes")
        sizes[key] = total
        return total

    return size(root, 0)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing documents that alias expansion would make huge: nine
    nested aliases in 500 bytes parse at once but take minutes and gigabytes to walk."""

    def construct_document(self, node: yaml.Node) -> Any:
        _expanded_size(node)
        return super().construct_document(node)


def load_config(path: str | Path, defaults: dict[str, Any] | None = None) -> Config:
    """Read, interpolate and validate a YAML config file; top-level keys the file lacks
    are taken from ``defaults`` (commands that supply sources and sinks themselves).

    Files over ``MAX_CONFIG_BYTES``, and YAML whose aliases expand beyond
    ``MAX_YAML_NODES`` values or that nests deeper than ``MAX_YAML_DEPTH``, are refused.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_CONFIG_BYTES + 1)
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read the config file: {error}") from error
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file too large (over {MAX_CONFIG_BYTES >> 20} MiB)")
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except _YamlLimit as error:
        raise ConfigError(f"{path}: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested deeper than {MAX_YAML_DEPTH} levels") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if defaults and isinstance(data, dict):
        data = {**defaults, **data}
    return parse_config(data, str(path))
