"""Every plugin family's registry comes from its config union, and every member resolves."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from fiqa_stream.detectors import DETECTORS
from fiqa_stream.detectors.config import DetectorConfig
from fiqa_stream.errors import ConfigError
from fiqa_stream.registry import config_models, resolve
from fiqa_stream.runtime import Runtime
from fiqa_stream.scorers import SCORERS
from fiqa_stream.scorers.config import ScorerConfig
from fiqa_stream.sinks import SINKS
from fiqa_stream.sinks.config import SinkConfig

FAMILIES = [("detector", DetectorConfig, DETECTORS), ("scorer", ScorerConfig, SCORERS), ("sink", SinkConfig, SINKS)]


@pytest.mark.parametrize(("family", "union", "table"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_config_model_of_a_family_names_a_class_that_imports(family: str, union: Any, table: dict) -> None:
    models = config_models(union)
    assert sorted(table) == sorted(model.model_fields["type"].default for model in models)
    for model in models:
        backend = resolve(family, model.model_fields["type"].default, table)
        assert inspect.isclass(backend) and backend.__name__ == model.implementation.rpartition(":")[2]


@pytest.mark.parametrize(("family", "union", "table"), FAMILIES[:2], ids=["detector", "scorer"])
def test_every_model_backend_is_built_from_its_config_and_a_runtime(family: str, union: Any, table: dict) -> None:
    for model in config_models(union):
        backend = resolve(family, model.model_fields["type"].default, table)
        parameters = list(inspect.signature(backend.__init__).parameters.values())[1:]
        assert [p.name for p in parameters] == ["config", "runtime"], backend
        assert parameters[1].annotation in (Runtime, "Runtime")


def test_an_unknown_name_fails_with_a_did_you_mean_hint() -> None:
    with pytest.raises(ConfigError, match=r"unknown detector 'yunett' \(did you mean 'yunet'\?\); known: centerface"):
        resolve("detector", "yunett", DETECTORS)
