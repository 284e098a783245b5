"""Neutron's error shape, as the networks tests check it."""
from __future__ import annotations

from typing import Any


def neutron_error(response: Any, status: int, kind: str | None = None) -> dict:
    """Neutron's error shape: {"NeutronError": {"type", "message", "detail"}} with the status."""
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert set(body) == {"NeutronError"}, body
    error = body["NeutronError"]
    assert set(error) == {"type", "message", "detail"} and error["message"], error
    if kind is not None:
        assert error["type"] == kind, error
    return error
