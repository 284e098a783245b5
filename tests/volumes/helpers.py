"""Cinder's error shape, tempest's strict schemas for the bodies, and a volume and a backend to test with."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from apps.volumes import services

TEMPEST_SITE = sorted((Path(__file__).resolve().parents[2] / ".venv-tempest" / "lib").glob("python*/site-packages"))


def tempest_schema(module: str, name: str) -> dict[str, Any]:
    if not TEMPEST_SITE:
        pytest.skip("the tempest venv (.venv-tempest) is not built")
    if str(TEMPEST_SITE[0]) not in sys.path:
        sys.path.append(str(TEMPEST_SITE[0]))
    return getattr(importlib.import_module(f"tempest.lib.api_schema.response.volume.{module}"), name)


def check(response: Any, module: str, name: str) -> dict[str, Any]:
    schema = tempest_schema(module, name)
    assert response.status_code in schema["status_code"], (response.status_code, response.content[:800])
    body = response.json() if response.content else {}
    if "response_body" in schema:
        jsonschema.Draft4Validator(schema["response_body"],
                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(body)
    return body


def cinder_error(response: Any, status: int, key: str) -> str:
    assert response.status_code == status, (response.status_code, response.content[:600])
    body = response.json()
    assert set(body) == {key} and body[key]["code"] == status and body[key]["message"], body
    return body[key]["message"]


def new_volume(client: Any, **attrs: Any) -> dict:
    """A volume made through the API by ``client`` (an ``ApiClient`` of the volume API)."""
    response = client.post("volumes", {"volume": {"size": 1, "name": "v", **attrs}})
    assert response.status_code == 202, (response.status_code, response.content[:600])
    return response.json()["volume"]


def storage_backend() -> Any:
    """One storage backend that reported in (volumes need one)."""
    return services.backend_report(host="store1", capacity_gb=100, free_gb=90, path="/tmp/x")
