"""``with`` for anything that has a ``close()``: defined once instead of once per class."""

from __future__ import annotations

from typing import Self


class ClosedOnExit:
    """Mix-in: ``with thing:`` hands back ``thing`` and calls its ``close()`` on the way out."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
