"""The configured image store (built once from settings); services and selectors go through it."""
from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from lib.imagestore import ImageStore, store_from_config


def store_config() -> dict[str, object]:
    kind = settings.STRATUS_IMAGE_STORE
    if kind == "s3":
        return {"kind": "s3", **settings.STRATUS_IMAGE_S3}
    return {"kind": "file", "root": settings.STRATUS_IMAGE_DIR}


@lru_cache(maxsize=4)
def _store(key: tuple[tuple[str, object], ...]) -> ImageStore:
    store = store_from_config(dict(key))
    ensure = getattr(store, "ensure_bucket", None)
    if ensure is not None:
        ensure()
    return store


def get_store() -> ImageStore:
    """The store new uploads go to (and that holds existing data: one store per deployment)."""
    return _store(tuple(sorted(store_config().items())))


def reset() -> None:
    """Forget the built store (tests that change the settings call it)."""
    _store.cache_clear()
