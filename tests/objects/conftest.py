"""Fixtures of the object storage tests: the seeded cloud speaking Swift, and an engine directory per test."""
from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def cloud_api() -> str:
    return "object-store"


@pytest.fixture(autouse=True)
def object_engine(settings: Any, tmp_path: Any) -> Any:
    """Each test keeps object data in a directory of its own."""
    from apps.objects import storage

    settings.STRATUS_OBJECT_STORE = "file"
    settings.STRATUS_OBJECT_DIR = str(tmp_path / "objects")
    storage.reset()
    yield settings.STRATUS_OBJECT_DIR
    storage.reset()
