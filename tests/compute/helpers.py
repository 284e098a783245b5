"""Nova's error shape, as the compute tests check it."""
from __future__ import annotations

from typing import Any


def nova_error(response: Any, status: int, key: str | None = None) -> dict:
    """Nova's error shape: {"<name>": {"code", "message"}} with the status."""
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert len(body) == 1, body
    name, error = next(iter(body.items()))
    assert set(error) == {"code", "message"} and error["code"] == status and error["message"], body
    if key is not None:
        assert name == key, body
    return error
