"""The configured object storage engine (built once from settings); services and selectors go through it."""
from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from lib.objectstore import ObjectEngine, engine_from_config


def engine_config() -> dict[str, object]:
    if settings.STRATUS_OBJECT_STORE == "s3":
        return {"kind": "s3", **settings.STRATUS_OBJECT_S3}
    return {"kind": "file", "root": settings.STRATUS_OBJECT_DIR}


@lru_cache(maxsize=4)
def _engine(key: tuple[tuple[str, object], ...]) -> ObjectEngine:
    engine = engine_from_config(dict(key))
    ensure = getattr(engine, "ensure_bucket", None)
    if ensure is not None:
        ensure()
    return engine


def get_engine(name: str | None = None) -> ObjectEngine:
    """The engine new objects go to (``name``: the engine an existing object names; one per deployment)."""
    engine = _engine(tuple(sorted(engine_config().items())))
    if name is not None and name != engine.name:
        raise RuntimeError(f"object data in engine {name!r}, but this deployment runs {engine.name!r}")
    return engine


def reset() -> None:
    """Forget the built engine (tests that change the settings call it)."""
    _engine.cache_clear()
