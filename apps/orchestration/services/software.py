"""Software configs and deployments (Heat's /software_configs and /software_deployments)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from apps.core.errors import BadRequest, Conflict
from apps.identity.policy import Actor, require_write
from apps.orchestration import selectors, states
from apps.orchestration.models import SoftwareConfig, SoftwareDeployment
from apps.orchestration.services.templates import _storable


def _text(body: Mapping[str, Any], key: str, *, default: str = "", max_length: int | None = 255) -> str:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string.")
    if max_length is not None and len(value) > max_length:
        raise BadRequest(f"{key} is longer than {max_length} characters.")
    return value


def _io_list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A config's inputs or outputs: a list of maps, each with a name."""
    value = body.get(key)
    value = [] if value is None else value
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise BadRequest(f"{key} must be a list of maps.")
    for item in value:
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise BadRequest(f"Each of the {key} needs a name.")
    return [dict(item) for item in value]


def _map(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    value = {} if value is None else value
    if not isinstance(value, dict):
        raise BadRequest(f"{key} must be a map.")
    return dict(value)


def software_config_create(*, actor: Actor, body: Mapping[str, Any]) -> SoftwareConfig:
    """A new config in the caller's project (configs are never changed: a change is a new one)."""
    require_write(actor, actor.project_id, what="software config")
    _storable(dict(body), "software config")
    return SoftwareConfig.objects.create(
        project_id=actor.project_id, name=_text(body, "name"),
        group=_text(body, "group", default="Heat::Ungrouped") or "Heat::Ungrouped",
        config=_text(body, "config", max_length=None), inputs=_io_list(body, "inputs"),
        outputs=_io_list(body, "outputs"), options=_map(body, "options"))


def software_config_delete(*, actor: Actor, config_id: str) -> None:
    """Delete a config no deployment uses (Heat refuses one that is referenced)."""
    config = selectors.software_config_get(actor=actor, config_id=config_id, action="change")
    if config.deployments.exists():
        raise Conflict(f"Software config with id {config_id} can not be deleted as it is referenced.")
    config.delete()


def _deployment_fields(actor: Actor, body: Mapping[str, Any], deployment: SoftwareDeployment) -> None:
    if "config_id" in body:
        config_id = body.get("config_id")
        if not isinstance(config_id, str) or not config_id:
            raise BadRequest("config_id must be the id of a software config.")
        deployment.config = selectors.software_config_get(actor=actor, config_id=config_id)
    if "server_id" in body:
        deployment.server_id = _text(body, "server_id")
    if "input_values" in body:
        deployment.input_values = _map(body, "input_values")
    if "output_values" in body:
        deployment.output_values = _map(body, "output_values")
    if "action" in body:
        deployment.action = _text(body, "action") or deployment.action
    if "status" in body:
        status = _text(body, "status")
        if status not in states.DEPLOYMENT_STATUSES:
            raise BadRequest(f"status must be one of {', '.join(states.DEPLOYMENT_STATUSES)}.")
        deployment.status = status
    if "status_reason" in body:
        deployment.status_reason = _text(body, "status_reason", max_length=None)


def software_deployment_create(*, actor: Actor, body: Mapping[str, Any]) -> SoftwareDeployment:
    """Deploy one of the caller's configs (``config_id``) to ``server_id`` with ``input_values``."""
    require_write(actor, actor.project_id, what="software deployment")
    _storable(dict(body), "software deployment")
    if not body.get("config_id"):
        raise BadRequest("config_id is required.")
    if not isinstance(body.get("server_id"), str) or not body["server_id"]:
        raise BadRequest("server_id is required.")
    deployment = SoftwareDeployment(project_id=actor.project_id)
    _deployment_fields(actor, body, deployment)
    deployment.save()
    return deployment


def software_deployment_update(*, actor: Actor, deployment_id: str, body: Mapping[str, Any]) -> SoftwareDeployment:
    """What the server (or a stack) reports: action, status, status_reason, output values; or another
    config or input values."""
    _storable(dict(body), "software deployment")
    with transaction.atomic():
        deployment = selectors.software_deployment_get(actor=actor, deployment_id=deployment_id, action="change",
                                                       lock=True)
        _deployment_fields(actor, body, deployment)
        deployment.save()
    return deployment


def software_deployment_delete(*, actor: Actor, deployment_id: str) -> None:
    selectors.software_deployment_get(actor=actor, deployment_id=deployment_id, action="change").delete()
