"""Keep credentials out of logs, errors, metrics and events."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Greedy up to the last "@" before white space: passwords sometimes hold a raw "@", "/",
# "?" or "#". A path or query holding an "@" is masked too: better too much than a password.
_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<password>\S*)@", re.I)
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.I)


def ambiguous_credentials(url: str) -> bool:
    """Whether ``scheme://user:pass@host`` has a raw '/', '?' or '#' in its password, so
    that URL parsers (urllib, redis-py, FFmpeg) end the host early and take part of the
    password for the host, the path or the query."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return False
    rest = url[scheme.end():]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return "@" not in authority and ":" in authority and "@" in rest[len(authority):]


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (the user name is kept).

    When the password holds a raw '/', '?' or '#' (see ``ambiguous_credentials``),
    everything from the user name's ':' to the last '@' is masked.
    """
    if ambiguous_credentials(url):
        return redact_text(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in free text with the password replaced."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
