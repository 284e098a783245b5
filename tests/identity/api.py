"""Keystone's error shape, as the identity tests check it."""
from __future__ import annotations

from typing import Any


def assert_error(response: Any, status: int) -> dict:
    """Keystone's error shape: {"error": {"code", "message", "title"}} with the matching status."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == status and body["error"]["message"] and body["error"]["title"], body
    return body["error"]
