"""Heat v1's bodies: stacks, resources, events, outputs as python-heatclient reads them."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from apps.orchestration.models import Event, SoftwareConfig, SoftwareDeployment, Stack, StackResource


def when(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def stack_url(base: str, stack: Stack) -> str:
    return f"{base}/stacks/{stack.name}/{stack.id}"


def stack_links(base: str, stack: Stack) -> list[dict[str, str]]:
    return [{"href": stack_url(base, stack), "rel": "self"}]


def parameters_shown(stack: Stack, bound_parameters: dict[str, Any]) -> dict[str, Any]:
    return {k: ("******" if k in stack.hidden else v) for k, v in bound_parameters.items()}


def stack_brief(base: str, stack: Stack) -> dict[str, Any]:
    return {"id": stack.id, "stack_name": stack.name, "description": stack.description,
            "creation_time": when(stack.created_at),
            "updated_time": None if stack.updated_at == stack.created_at else when(stack.updated_at),
            "deletion_time": when(stack.deleted_at), "stack_status": stack.state,
            "stack_status_reason": stack.status_reason, "stack_owner": stack.username, "project": stack.project_id,
            "parent": stack.parent_id, "stack_user_project_id": stack.project_id, "tags": stack.tags or None,
            "links": stack_links(base, stack)}


def stack_full(base: str, stack: Stack, *, parameters: dict[str, Any], outputs: list[dict[str, Any]] | None
               ) -> dict[str, Any]:
    body = stack_brief(base, stack)
    body.update({"template_description": stack.description, "timeout_mins": stack.timeout_mins,
                 "disable_rollback": stack.disable_rollback, "parameters": parameters, "capabilities": [],
                 "notification_topics": []})
    if outputs is not None:
        body["outputs"] = outputs
    return body


def resource_body(base: str, stack: Stack, row: StackResource, *, detail: bool = False,
                  parent_resource: str | None = None, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"{stack_url(base, stack)}/resources/{row.name}"
    body = {"resource_name": row.name, "logical_resource_id": row.name, "physical_resource_id": row.physical_id,
            "resource_type": row.type, "resource_status": row.state, "resource_status_reason": row.status_reason,
            "creation_time": when(row.created_at), "updated_time": when(row.updated_at),
            "required_by": row.required_by,
            "links": [{"href": url, "rel": "self"}, {"href": stack_url(base, stack), "rel": "stack"}]}
    if parent_resource is not None:
        body["parent_resource"] = parent_resource
        body["stack_name"] = stack.name
    if row.data.get("nested"):  # a nested stack's resource links to it
        body["links"].append({"href": f"{base}/stacks/{row.physical_id}", "rel": "nested"})
    if detail:
        body.update({"attributes": row.attributes if attributes is None else attributes, "description": "",
                     "resource_action": row.action,
                     "stack_name": stack.name, "stack_identity": {"stack_name": stack.name, "stack_id": stack.id,
                                                                  "tenant": stack.project_id, "path": ""}})
    return body


def event_body(base: str, stack: Stack, event: Event, *, root: bool = False,
               root_stack: Stack | None = None) -> dict[str, Any]:
    url = stack_url(base, stack)
    links = [{"href": f"{url}/resources/{event.resource_name}/events/{event.id}", "rel": "self"},
             {"href": f"{url}/resources/{event.resource_name}", "rel": "resource"},
             {"href": url, "rel": "stack"}]
    if root:
        links.append({"href": stack_url(base, root_stack or stack), "rel": "root_stack"})
    return {"id": event.id, "event_time": when(event.created_at), "logical_resource_id": event.resource_name,
            "resource_name": event.resource_name, "physical_resource_id": event.physical_id,
            "resource_status": event.state, "resource_status_reason": event.reason, "links": links}


def software_config(config: SoftwareConfig, *, full: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": config.id, "name": config.name, "group": config.group,
                            "creation_time": when(config.created_at), "project": config.project_id}
    if full:
        body.update({"config": config.config, "inputs": config.inputs, "outputs": config.outputs,
                     "options": config.options})
    return body


def software_deployment(deployment: SoftwareDeployment) -> dict[str, Any]:
    return {"id": deployment.id, "config_id": deployment.config_id, "server_id": deployment.server_id,
            "input_values": deployment.input_values, "output_values": deployment.output_values,
            "action": deployment.action, "status": deployment.status, "status_reason": deployment.status_reason,
            "creation_time": when(deployment.created_at),
            "updated_time": None if deployment.updated_at == deployment.created_at else when(deployment.updated_at)}


def deployment_metadata(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "creation_time": when(item["creation_time"]), "updated_time": when(item["updated_time"])}
