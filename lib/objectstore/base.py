"""The interface every object storage engine implements."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class EngineError(Exception):
    """The engine could not write, read or delete (the message says why)."""


class ObjectWriter(Protocol):
    size: int

    def write(self, chunk: bytes) -> None:
        """Append one chunk (the writer keeps at most a bounded buffer); ``size`` counts the bytes."""

    def md5(self) -> str:
        """The hex md5 of what was written so far (computed while streaming)."""

    def commit(self) -> str:
        """Make the data visible under a new key; returns that key (the object's location)."""

    def abort(self) -> None:
        """Forget everything written; nothing is left in the engine. Safe to call twice."""


class ObjectEngine(Protocol):
    name: str

    def writer(self) -> ObjectWriter:
        """A writer for a new blob; nothing is visible until commit()."""

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most ``chunk_size``, from ``offset``, ``length`` of them."""

    def delete(self, location: str) -> None:
        """Remove the blob (no error when it is already gone)."""

    def exists(self, location: str) -> bool:
        """Is there a blob at ``location``?"""
