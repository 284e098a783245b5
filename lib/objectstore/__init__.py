"""Object storage engines: where the bytes of Swift objects (and S3 objects, the same rows) live.
No Django here: an engine is built from plain settings (``engine_from_config``) and moves bytes in
chunks, never a whole object at once. The index (names, sizes, etags, metadata) is the database's;
an engine only knows opaque keys.

- ``file``: a directory tree under STRATUS_DATA_DIR (``FilesystemEngine``): each object written to a
  temporary file, fsynced, then renamed into place, so a partial object is never visible.
- ``s3``: an S3-compatible bucket (Ceph RGW, MinIO, AWS) through boto3 (``lib.imagestore.s3``'s store:
  multipart uploads holding at most one part in memory).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.objectstore.base import EngineError, ObjectEngine, ObjectWriter
from lib.objectstore.filesystem import FilesystemEngine

__all__ = ["EngineError", "FilesystemEngine", "ObjectEngine", "ObjectWriter", "engine_from_config"]


def engine_from_config(config: Mapping[str, Any]) -> ObjectEngine:
    """``{"kind": "file", "root": path}`` or ``{"kind": "s3", "endpoint_url", "bucket", "access_key",
    "secret_key", "region", "prefix"}``."""
    kind = config.get("kind", "file")
    if kind == "file":
        return FilesystemEngine(root=str(config["root"]))
    if kind == "s3":
        from lib.objectstore.s3 import S3Engine

        return S3Engine(endpoint_url=config.get("endpoint_url") or None, bucket=str(config["bucket"]),
                        access_key=config.get("access_key") or None, secret_key=config.get("secret_key") or None,
                        region=config.get("region") or None, prefix=str(config.get("prefix") or ""))
    raise ValueError(f"unknown object storage engine {kind!r}")
