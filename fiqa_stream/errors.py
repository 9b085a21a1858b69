"""The error tree of fiqa-stream.

    FiqaError                 base of every error the project raises on purpose
    ├── ConfigError           fatal: the configuration is wrong (names the key path)
    ├── DependencyError       fatal: an optional dependency is missing (names the extra)
    ├── ModelError            fatal: a model file is missing or will not load
    ├── SourceError           recoverable: one source failed; the others go on
    ├── SinkError             a sink could not take an event
    └── ArchiveIndexError     fatal: an archive index is missing, unreadable or from a newer version

Messages are one line meant for a person: they name the file, key or URL and what
was expected. Errors raised while handling another error are chained with ``from``.
"""

from __future__ import annotations


class FiqaError(Exception):
    """Base of every error fiqa-stream raises on purpose."""


class ConfigError(FiqaError):
    """The configuration is invalid; fatal."""


class DependencyError(FiqaError):
    """An optional dependency is not installed; fatal."""

    @classmethod
    def missing(cls, module: str, extra: str, needed_for: str) -> DependencyError:
        return cls(
            f"{needed_for} needs the Python module '{module}': "
            f"install it with: pip install 'fiqa-stream[{extra}]'"
        )


class ModelError(FiqaError):
    """A model file is missing, corrupt or of the wrong shape; fatal."""


class SourceError(FiqaError):
    """One source cannot be read; recoverable, other sources continue."""


class SinkError(FiqaError):
    """A sink could not accept an event."""


class ArchiveIndexError(FiqaError):
    """An archive index (``fiqa-stream index``) is missing, unreadable or from a newer version; fatal."""
