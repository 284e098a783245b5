"""The interface every image store implements."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class StoreError(Exception):
    """The store could not write, read or delete (the message says why)."""


class StoreWriter(Protocol):
    def write(self, chunk: bytes) -> None:
        """Append one chunk (the writer keeps at most a bounded buffer)."""

    def commit(self) -> str:
        """Make the data visible under its key; returns the location."""

    def abort(self) -> None:
        """Forget everything written; nothing is left in the store. Safe to call twice."""


class ImageStore(Protocol):
    name: str

    def writer(self, key: str) -> StoreWriter:
        """A writer for a new object ``key``; nothing is visible until commit()."""

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in chunks of at most ``chunk_size``, from ``offset``, ``length`` of them."""

    def delete(self, location: str) -> None:
        """Remove the object (no error when it is already gone)."""

    def exists(self, location: str) -> bool:
        """Is there an object at ``location``?"""

    def describe(self) -> dict[str, str]:
        """What /info/stores shows."""
