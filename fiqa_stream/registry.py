"""Explicit, lazy name → implementation registries for the pluggable families.

A family's registry is derived from its config union: each config model names its
backend's type (``type: Literal[...]``) and implementation (``implementation:
ClassVar[str] = "module:Class"``), so a backend is declared in one place only.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Annotated, Any, get_args, get_origin

from fiqa_stream.errors import ConfigError


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def config_models(union: Any) -> tuple[Any, ...]:
    """The config models of a (possibly ``Annotated``) discriminated union."""
    if get_origin(union) is Annotated:
        union = get_args(union)[0]
    return get_args(union)


def implementations(union: Any) -> dict[str, str]:
    """``type`` name → "module:Class" of every config model in ``union``."""
    return {model.model_fields["type"].default: model.implementation for model in config_models(union)}


def resolve(family: str, name: str, table: Mapping[str, str]) -> Any:
    """Import and return the class registered under ``name`` as "module:Class"."""
    try:
        target = table[name]
    except KeyError:
        known = sorted(table)
        raise ConfigError(
            f"unknown {family} '{name}'{did_you_mean(name, known)}; known: {', '.join(known)}"
        ) from None
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name)
