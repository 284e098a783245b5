"""A directory of files: each image one file, written as ``<key>.partial`` and renamed on commit."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from lib.filechunks import file_chunks
from lib.imagestore.base import StoreError

KEY = re.compile(r"^[A-Za-z0-9._-]+$")


class FilesystemWriter:
    def __init__(self, final: Path) -> None:
        self.final = final
        self.partial = final.with_name(final.name + ".partial")
        try:
            self.fh = open(self.partial, "wb")  # noqa: SIM115 - closed by commit/abort
        except OSError as exc:
            raise StoreError(f"cannot write {self.partial}: {exc}") from exc
        self.done = False

    def write(self, chunk: bytes) -> None:
        try:
            self.fh.write(chunk)
        except OSError as exc:
            raise StoreError(f"cannot write {self.partial}: {exc}") from exc

    def commit(self) -> str:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.partial, self.final)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot store {self.final}: {exc}") from exc
        self.done = True
        return self.final.name

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.fh.close()
        finally:
            self.partial.unlink(missing_ok=True)


class FilesystemStore:
    name = "file"

    def __init__(self, *, root: str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if not KEY.match(key) or key.endswith(".partial"):
            raise StoreError(f"bad object key {key!r}")
        return self.root / key

    def writer(self, key: str) -> FilesystemWriter:
        return FilesystemWriter(self._path(key))

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 20) -> Iterator[bytes]:
        return file_chunks(self._path(location), offset=offset, length=length, chunk_size=chunk_size, error=StoreError)

    def delete(self, location: str) -> None:
        self._path(location).unlink(missing_ok=True)

    def exists(self, location: str) -> bool:
        return self._path(location).is_file()

    def describe(self) -> dict[str, str]:
        return {"id": "file", "description": f"Local filesystem ({self.root})"}
