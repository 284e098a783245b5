"""A directory tree of blobs: ``<root>/<k[0:2]>/<k[2:4]>/<key>``, each written under ``<root>/tmp``,
fsynced, then renamed into place (so no partial blob is ever visible under its key)."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from lib.filechunks import file_chunks
from lib.objectstore.base import EngineError

KEY = re.compile(r"^[0-9a-f]{32}$")


class FilesystemWriter:
    def __init__(self, engine: FilesystemEngine) -> None:
        self.engine = engine
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        try:
            fd, name = tempfile.mkstemp(dir=engine.tmp, prefix="put-")
        except OSError as exc:
            raise EngineError(f"cannot write under {engine.tmp}: {exc}") from exc
        self.partial = Path(name)
        self.fh = os.fdopen(fd, "wb")
        self.done = False

    def write(self, chunk: bytes) -> None:
        try:
            self.fh.write(chunk)
        except OSError as exc:
            raise EngineError(f"cannot write {self.partial}: {exc}") from exc
        self._md5.update(chunk)
        self.size += len(chunk)

    def md5(self) -> str:
        return self._md5.hexdigest()

    def commit(self) -> str:
        key = uuid.uuid4().hex
        final = self.engine.path(key)
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.partial, final)
        except OSError as exc:
            self.abort()
            raise EngineError(f"cannot store {final}: {exc}") from exc
        self.done = True
        return key

    def abort(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.fh.close()
        finally:
            self.partial.unlink(missing_ok=True)


class FilesystemEngine:
    name = "file"

    def __init__(self, *, root: str) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not KEY.match(key):
            raise EngineError(f"bad blob key {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def writer(self) -> FilesystemWriter:
        return FilesystemWriter(self)

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 16) -> Iterator[bytes]:
        return file_chunks(self.path(location), offset=offset, length=length, chunk_size=chunk_size, error=EngineError)

    def delete(self, location: str) -> None:
        self.path(location).unlink(missing_ok=True)

    def exists(self, location: str) -> bool:
        return self.path(location).is_file()
