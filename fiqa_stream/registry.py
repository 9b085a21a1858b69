"""Explicit, lazy name → implementation registries for the pluggable families."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Mapping
from typing import Any

from fiqa_stream.errors import ConfigError


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


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
