"""Keep credentials out of logs, errors, metrics and events."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Greedy up to the last "@" before the path: passwords sometimes hold a raw "@".
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>[^/\s]*)@", re.I)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (the user name is kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in free text with the password replaced."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
