"""The base of every config model: strict (unknown keys are errors) and immutable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

from fiqa_stream.redact import ambiguous_credentials

# The longest time any seconds field accepts: bounded so a typo such as ``.inf`` fails
# validation instead of overflowing a timer or a socket call at run time.
MAX_SECONDS = 86400.0


class StrictModel(BaseModel):
    # No infinities or NaN in any float field: none of them means anything there.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def default_type(name: str) -> Callable[[Any], Any]:
    """A before-validator for a plugin family's union: a mapping without ``type`` gets the
    family's default type, as when the whole section is left out."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            return {"type": name, **value}
        return value

    return fill


def checked_url(url: str) -> str:
    """A URL field's validator: refuse a password holding a raw '/', '?' or '#', which
    parsers take in part for the host or path (connecting elsewhere and printing it), and
    a URL that urllib cannot split (an unclosed '[' of an IPv6 host, a port that is not a
    number from 0 to 65535). A plain path (no '://') passes as it is."""
    if ambiguous_credentials(url):
        raise PydanticCustomError(
            "ambiguous_credentials", "the password contains '/', '?' or '#': percent-encode it (%2F, %3F, %23)",
        )
    if "://" in url:
        try:
            parts = urlsplit(url)
        except ValueError as error:
            raise PydanticCustomError("malformed_url", "not a valid URL: {reason}", {"reason": str(error)}) from None
        try:
            _ = parts.port
        except ValueError:
            raise PydanticCustomError("malformed_url", "the port is not a number from 0 to 65535") from None
    return url
