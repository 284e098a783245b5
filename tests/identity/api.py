"""Calling the Keystone API in-process with a real token (issued by services.token_issue)."""
from __future__ import annotations

import json
from typing import Any

from django.test import Client

BASE = "/identity/v3"


class KeystoneClient:
    """A thin HTTP client for /identity/v3 that sends X-Auth-Token and JSON bodies."""

    def __init__(self, token: str | None = None) -> None:
        self.client = Client()
        self.token = token

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None) -> Any:
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        auth = token if token is not None else self.token
        if auth:
            extra["HTTP_X_AUTH_TOKEN"] = auth
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, f"{BASE}/{path.lstrip('/')}", data=data,
                                   content_type="application/json", **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)


def assert_error(response: Any, status: int) -> dict:
    """Keystone's error shape: {"error": {"code", "message", "title"}} with the matching status."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == status and body["error"]["message"] and body["error"]["title"], body
    return body["error"]
