"""Objects kept in an S3-compatible bucket: the image store's S3 driver (multipart, one part buffered at
a time, abort leaves nothing) under fresh keys, with the md5 computed while streaming."""
from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

from lib.imagestore import StoreError
from lib.imagestore.s3 import S3Store, S3Writer
from lib.objectstore.base import EngineError


class S3EngineWriter:
    def __init__(self, engine: S3Engine) -> None:
        self.key = uuid.uuid4().hex
        self.inner: S3Writer = engine.store.writer(self.key)
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)

    def write(self, chunk: bytes) -> None:
        try:
            self.inner.write(chunk)
        except StoreError as exc:
            raise EngineError(str(exc)) from exc
        self._md5.update(chunk)
        self.size += len(chunk)

    def md5(self) -> str:
        return self._md5.hexdigest()

    def commit(self) -> str:
        try:
            self.inner.commit()
        except StoreError as exc:
            raise EngineError(str(exc)) from exc
        return self.key

    def abort(self) -> None:
        self.inner.abort()


class S3Engine:
    name = "s3"

    def __init__(self, *, bucket: str, endpoint_url: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str | None = None, prefix: str = "") -> None:
        self.store = S3Store(bucket=bucket, endpoint_url=endpoint_url, access_key=access_key,
                             secret_key=secret_key, region=region, prefix=prefix)

    def ensure_bucket(self) -> None:
        try:
            self.store.ensure_bucket()
        except StoreError as exc:
            raise EngineError(str(exc)) from exc

    def _key(self, location: str) -> str:
        return f"{self.store.prefix}{location}"

    def writer(self) -> S3EngineWriter:
        return S3EngineWriter(self)

    def reader(self, location: str, *, offset: int = 0, length: int | None = None,
               chunk_size: int = 1 << 16) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        try:
            return self.store.reader(self._key(location), offset=offset, length=length, chunk_size=chunk_size)
        except StoreError as exc:
            raise EngineError(str(exc)) from exc

    def delete(self, location: str) -> None:
        try:
            self.store.delete(self._key(location))
        except StoreError as exc:
            raise EngineError(str(exc)) from exc

    def exists(self, location: str) -> bool:
        return self.store.exists(self._key(location))
