"""Image stores: where image data lives. No Django here: a store is built from plain settings
(``store_from_config``) and moves bytes in chunks, never a whole image at once."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lib.imagestore.base import ImageStore, StoreError, StoreWriter
from lib.imagestore.filesystem import FilesystemStore

__all__ = ["FilesystemStore", "ImageStore", "StoreError", "StoreWriter", "store_from_config"]


def store_from_config(config: Mapping[str, Any]) -> ImageStore:
    """``{"kind": "file", "root": path}`` or ``{"kind": "s3", "endpoint_url", "bucket", "access_key",
    "secret_key", "region", "prefix"}``."""
    kind = config.get("kind", "file")
    if kind == "file":
        return FilesystemStore(root=str(config["root"]))
    if kind == "s3":
        from lib.imagestore.s3 import S3Store

        return S3Store(endpoint_url=config.get("endpoint_url") or None, bucket=str(config["bucket"]),
                       access_key=config.get("access_key") or None, secret_key=config.get("secret_key") or None,
                       region=config.get("region") or None, prefix=str(config.get("prefix") or ""))
    raise ValueError(f"unknown image store {kind!r}")
