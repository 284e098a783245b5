"""Heat v1 API: stacks (create, list, show with the lookup's 302, delete, preview), their template,
environment, files, outputs, resources and events; template validate; resource types; template
versions and functions. Views parse, call one service or selector, render; errors in Heat's format."""
from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponseRedirect
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core import parsers
from apps.core.api import OpenStackView
from apps.core.errors import BadRequest, NotFound, QuotaExceeded
from apps.identity.api.authentication import AllowAny
from apps.orchestration import engine, plugins, selectors, services
from apps.orchestration.api import serializers as out
from apps.orchestration.engine import catalog
from apps.orchestration.models import Stack


class HeatView(OpenStackView):
    error_style = "heat"
    request_id_headers = ("x-openstack-request-id",)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        project_id = kwargs.get("project_id")
        if project_id is not None and request.auth is not None and project_id != request.auth.project_id:
            raise NotFound(f"The project {project_id} in the URL is not the token's project.")

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, QuotaExceeded):  # Heat: 400 RequestLimitExceeded, "You have reached the maximum stacks"
            exc = services.StackValidationFailed(
                f"Request limit exceeded: You have reached the maximum stacks per tenant, {exc.limit}. Please "
                f"delete some stacks.", kind="RequestLimitExceeded")
        return super().handle_exception(exc)


def _base(request: Request, project_id: str) -> str:
    return request.build_absolute_uri(f"/orchestration/v1/{project_id}").rstrip("/")


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise BadRequest(f'Unrecognized value "{value}" for "{name}", acceptable values are: true, false.')


def _timeout(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        minutes = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid timeout value {value}") from None
    if minutes <= 0 or minutes > services.MAX_TIMEOUT_MINS:
        raise BadRequest(f"Invalid timeout value {value}")
    return minutes


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [t for t in value.split(",") if t]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return value
    raise BadRequest("tags must be a comma-separated string or a list of strings.")


def _stack_args(body: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a create or a preview from its body (heatclient's fields)."""
    name = body.get("stack_name")
    if not name:
        raise BadRequest("No stack name specified")
    template = body.get("template")
    if template is None and body.get("template_url"):
        raise BadRequest("template_url is not supported: send the template itself.")
    return {"name": name, "template": template, "files": body.get("files"), "environment": body.get("environment"),
            "parameters": body.get("parameters"), "timeout_mins": _timeout(body.get("timeout_mins")),
            "disable_rollback": _bool(body.get("disable_rollback", True), "disable_rollback")}


# ---- version discovery --------------------------------------------------------------------------

class Versions(HeatView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        href = request.build_absolute_uri("/orchestration/v1/")
        return Response({"versions": [{"id": "v1.0", "status": "CURRENT",
                                       "links": [{"rel": "self", "href": href}]}]}, status=300)


# ---- stacks ---------------------------------------------------------------------------------------

class Stacks(HeatView):
    def get(self, request: Request, project_id: str) -> Response:
        query = selectors.parse_stack_query(request.query_params)
        rows = selectors.stack_list(actor=request.auth, query=query)
        base = _base(request, project_id)
        return Response({"stacks": [out.stack_brief(base, s) for s in rows]})

    def post(self, request: Request, project_id: str) -> Response:
        body = _body(request)
        if body.get("adopt_stack_data") is not None:
            args = _stack_args({**body, "template": None})
            args.pop("template")
            stack = services.stack_adopt(actor=request.auth, tags=_tags(body.get("tags")),
                                         adopt_stack_data=body["adopt_stack_data"], **args)
        else:
            stack = services.stack_create(actor=request.auth, tags=_tags(body.get("tags")), **_stack_args(body))
        base = _base(request, project_id)
        return Response({"stack": {"id": stack.id, "links": out.stack_links(base, stack)}}, status=201,
                        headers={"Location": out.stack_url(base, stack)})


class StackPreview(HeatView):
    def post(self, request: Request, project_id: str) -> Response:
        preview = services.stack_preview(actor=request.auth, **_stack_args(_body(request)))
        return Response({"stack": preview})


class _OneStack(HeatView):
    """A view under ``/stacks/{name}/{id}`` or ``/stacks/{name or id}`` (answered directly)."""

    def stack(self, request: Request, kwargs: dict[str, str]) -> Stack:
        if "stack_id" in kwargs:
            return selectors.stack_named(actor=request.auth, name=kwargs["stack_name"], stack_id=kwargs["stack_id"])
        return selectors.stack_lookup(actor=request.auth, ref=kwargs["ref"])


def _update_args(body: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an update or its preview from its body (heatclient's fields)."""
    if body.get("template") is None and body.get("template_url"):
        raise BadRequest("template_url is not supported: send the template itself.")
    return {"template": body.get("template"), "files": body.get("files"), "environment": body.get("environment"),
            "parameters": body.get("parameters"), "clear_parameters": body.get("clear_parameters")}


class _Updatable(_OneStack):
    """PUT (the new template replaces) and PATCH (``--existing``: the stored one kept where not given)."""

    def _update(self, request: Request, kwargs: dict[str, str], *, existing: bool) -> Response:
        stack = self.stack(request, kwargs)
        body = _body(request)
        rollback = body.get("disable_rollback")
        services.stack_update(actor=request.auth, stack_id=stack.id, existing=existing,
                              timeout_mins=_timeout(body.get("timeout_mins")),
                              disable_rollback=None if rollback is None else _bool(rollback, "disable_rollback"),
                              tags=None if body.get("tags") is None else _tags(body.get("tags")),
                              **_update_args(body))
        return Response(status=202)

    def put(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return self._update(request, kwargs, existing=False)

    def patch(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return self._update(request, kwargs, existing=True)


class StackUpdatePreview(_OneStack):
    """``stack update --dry-run``: what the update would add, delete, replace, update or leave alone."""

    def _preview(self, request: Request, kwargs: dict[str, str], *, existing: bool) -> Response:
        stack = self.stack(request, kwargs)
        changes = services.stack_preview_update(actor=request.auth, stack_id=stack.id, existing=existing,
                                                **_update_args(_body(request)))
        return Response({"resource_changes": changes})

    def put(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return self._preview(request, kwargs, existing=False)

    def patch(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return self._preview(request, kwargs, existing=True)


class StackActions(_OneStack):
    """``POST .../actions`` with one of cancel_update, check, suspend, resume."""

    ACTIONS = ("cancel_update", "check", "suspend", "resume")

    def post(self, request: Request, project_id: str, **kwargs: str) -> Response:
        body = _body(request)
        if len(body) != 1:
            raise BadRequest("Multiple actions specified" if body else "No action specified")
        action = next(iter(body))
        if action == "cancel_without_rollback":
            raise services.NotSupported("Cancelling an update without rollback is not supported.")
        if action not in self.ACTIONS:
            raise BadRequest(f"Invalid action {action} specified")
        stack = self.stack(request, kwargs)
        if action == "cancel_update":
            services.stack_cancel_update(actor=request.auth, stack_id=stack.id)
        else:
            services.stack_action(actor=request.auth, stack_id=stack.id, action=action)
        return Response(status=200)


class StackAbandon(_OneStack):
    def delete(self, request: Request, project_id: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        return Response(services.stack_abandon(actor=request.auth, stack_id=stack.id))


class StackLookup(_Updatable):
    """``/stacks/{name or id}``: the 302 to ``/stacks/{name}/{id}``, for a read or a delete alike (Heat's
    lookup; the clients follow it with the same method); an update (PUT/PATCH) is answered here (a client
    follows a 302 of a PUT with a GET)."""

    def get(self, request: Request, project_id: str, ref: str) -> Any:
        stack = self.stack(request, {"ref": ref})
        location = out.stack_url(_base(request, project_id), stack)
        if request.META.get("QUERY_STRING"):
            location += "?" + request.META["QUERY_STRING"]
        response = HttpResponseRedirect(location)
        response.status_code = 302
        return response

    delete = get


class StackDetail(_Updatable):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        resolve = request.query_params.get("resolve_outputs", "true").lower() != "false"
        shown: dict[str, Any] = {}
        if stack.deleted_at is None:
            try:
                shown = out.parameters_shown(stack, services.bind(stack).parameters.shown())
            except BadRequest:
                shown = {}
        outputs = services.stack_outputs(stack) if resolve else None
        return Response({"stack": out.stack_full(_base(request, project_id), stack, parameters=shown,
                                                 outputs=outputs)})

    def delete(self, request: Request, project_id: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        services.stack_delete(actor=request.auth, stack_id=stack.id)
        return Response(status=204)


class StackTemplate(_OneStack):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return Response(self.stack(request, kwargs).template)


class StackEnvironment(_OneStack):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        env = dict(self.stack(request, kwargs).environment or {})
        shown = {"parameters": env.get("parameters", {}), "parameter_defaults": env.get("parameter_defaults", {}),
                 "resource_registry": env.get("resource_registry", {"resources": {}}),
                 "event_sinks": env.get("event_sinks", []),
                 "encrypted_param_names": env.get("encrypted_param_names", [])}
        return Response(shown)


class StackFiles(_OneStack):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        return Response(self.stack(request, kwargs).files or {})


class StackOutputs(_OneStack):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        outputs = services.stack_outputs(self.stack(request, kwargs))
        return Response({"outputs": [{"output_key": o["output_key"], "description": o["description"]}
                                     for o in outputs]})


class StackOutput(_OneStack):
    def get(self, request: Request, project_id: str, key: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        for item in services.stack_outputs(stack):
            if item["output_key"] == key:
                return Response({"output": item})
        raise NotFound(f"Specified output key {key} not found.")


class StackResources(_OneStack):
    def get(self, request: Request, project_id: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        detail = request.query_params.get("with_detail", "false").lower() == "true"
        base = _base(request, project_id)
        depth = selectors.nested_depth(request.query_params)
        if depth:
            found = selectors.resource_list_nested(actor=request.auth, stack=stack, params=request.query_params,
                                                   depth=depth)
            return Response({"resources": [out.resource_body(base, n.stack, n.row, detail=detail,
                                                             parent_resource=n.parent_resource) for n in found]})
        rows = selectors.resource_list(actor=request.auth, stack=stack, params=request.query_params)
        return Response({"resources": [out.resource_body(base, stack, r, detail=detail) for r in rows]})


class StackResourceDetail(_OneStack):
    def get(self, request: Request, project_id: str, resource_name: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        row = selectors.resource_get(actor=request.auth, stack=stack, name=resource_name)
        return Response({"resource": out.resource_body(_base(request, project_id), stack, row, detail=True,
                                                       attributes=selectors.resource_attributes(row=row))})

    def patch(self, request: Request, project_id: str, resource_name: str, **kwargs: str) -> Response:
        """Heat's resource mark-unhealthy: ``{"mark_unhealthy": true, "resource_status_reason": "..."}``."""
        stack = self.stack(request, kwargs)
        body = _body(request)
        if "mark_unhealthy" not in body:
            raise BadRequest("mark_unhealthy is required.")
        services.resource_mark_unhealthy(actor=request.auth, stack_id=stack.id, resource_name=resource_name,
                                         unhealthy=_bool(body["mark_unhealthy"], "mark_unhealthy"),
                                         reason=body.get("resource_status_reason") or "")
        return Response(status=200)


def _signal_details(request: Request) -> Any:
    """A signal's details: its body as JSON whatever its Content-Type (cfn-signal sends none, a guest's
    curl may send a form's), or None when it has none."""
    raw = request._request.body
    if not raw or not raw.strip():
        return None
    try:
        return parsers.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"The signal's body must be JSON: {exc}") from None


class StackResourceSignal(_OneStack):
    def post(self, request: Request, project_id: str, resource_name: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        services.resource_signal(actor=request.auth, stack_id=stack.id, resource_name=resource_name,
                                 details=_signal_details(request))
        return Response(status=200)


class StackResourceMetadata(_OneStack):
    def get(self, request: Request, project_id: str, resource_name: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        return Response({"metadata": services.resource_metadata(actor=request.auth, stack=stack,
                                                                 resource_name=resource_name)})


class TokenSignal(HeatView):
    """The token-free signal URL (``apps.orchestration.signals``): no Keystone token; the resource's own
    secret as ``?token=`` or in X-Auth-Token (Heat's curl_cli form). POST, or cfn-signal's PUT."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def post(self, request: Request, stack_id: str, resource_name: str) -> Response:
        token = request.query_params.get("token") or request.headers.get("X-Auth-Token")
        services.resource_signal_with_token(stack_id=stack_id, resource_name=resource_name, token=token,
                                            details=_signal_details(request),
                                            client=request.META.get("REMOTE_ADDR") or "unknown")
        return Response(status=200)

    put = post


class StackEvents(_OneStack):
    def get(self, request: Request, project_id: str, resource_name: str | None = None, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        root = "nested_depth" in request.query_params
        depth = selectors.nested_depth(request.query_params)
        base = _base(request, project_id)
        if depth and resource_name is None:
            found = selectors.event_list_nested(actor=request.auth, stack=stack, params=request.query_params,
                                                depth=depth)
            return Response({"events": [out.event_body(base, s, e, root=True, root_stack=stack)
                                        for s, e in found]})
        rows = selectors.event_list(actor=request.auth, stack=stack, params=request.query_params,
                                    resource_name=resource_name)
        return Response({"events": [out.event_body(base, stack, e, root=root) for e in rows]})


class StackEvent(_OneStack):
    def get(self, request: Request, project_id: str, resource_name: str, event_id: str, **kwargs: str) -> Response:
        stack = self.stack(request, kwargs)
        event = selectors.event_get(actor=request.auth, stack=stack, resource_name=resource_name, event_id=event_id)
        body = out.event_body(_base(request, project_id), stack, event)
        body["resource_type"] = event.resource_type
        return Response({"event": body})


# ---- templates, resource types ----------------------------------------------------------------------

class Validate(HeatView):
    def post(self, request: Request, project_id: str) -> Response:
        body = _body(request)
        if body.get("template") is None:
            raise BadRequest("No Template provided.")
        return Response(services.template_validate(actor=request.auth, template=body.get("template"),
                                                   files=body.get("files"), environment=body.get("environment"),
                                                   parameters=body.get("parameters")))


class TemplateVersions(HeatView):
    def get(self, request: Request, project_id: str) -> Response:
        return Response({"template_versions": catalog.template_versions()})


class TemplateFunctions(HeatView):
    def get(self, request: Request, project_id: str, version: str) -> Response:
        conditions = request.query_params.get("with_condition_func", "false").lower() == "true"
        try:
            functions = catalog.template_functions(version, with_condition_functions=conditions)
        except engine.InvalidTemplateVersion as exc:
            raise NotFound(str(exc)) from None
        return Response({"template_functions": functions})


class ResourceTypes(HeatView):
    def get(self, request: Request, project_id: str) -> Response:
        names = sorted(plugins.REGISTRY)
        wanted = request.query_params.get("name")
        if wanted:
            names = [n for n in names if wanted in n]
        if request.query_params.get("with_description", "false").lower() == "true":
            return Response({"resource_types": [{"resource_type": n, "description": plugins.REGISTRY[n].description}
                                                for n in names]})
        return Response({"resource_types": names})


def _plugin(type_name: str) -> type[plugins.Plugin]:
    plugin = plugins.plugin_for(type_name)
    if plugin is None:
        raise NotFound(f"The Resource Type ({type_name}) could not be found.")
    return plugin


class ResourceTypeDetail(HeatView):
    def get(self, request: Request, project_id: str, type_name: str) -> Response:
        return Response(_plugin(type_name).schema())


class ResourceTypeTemplate(HeatView):
    def get(self, request: Request, project_id: str, type_name: str) -> Response:
        plugin = _plugin(type_name)
        props = {k: {"type": p.type, "description": p.description} for k, p in plugin.properties_schema.items()}
        name = type_name.rsplit("::", 1)[-1]  # Heat names the one resource after the type's last part
        return Response({"heat_template_version": "2016-10-14", "description": f"Initial template of {type_name}",
                         "parameters": props,
                         "resources": {name: {"type": type_name, "properties": {k: {"get_param": k} for k in props}}},
                         "outputs": {a: {"value": {"get_attr": [name, a]}, "description": d.description}
                                     for a, d in plugin.attributes_schema.items()}})


class Unknown(HeatView):
    def dispatch(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return super().dispatch(request, *args, **kwargs)

    def get(self, request: Request, **kwargs: str) -> Response:
        raise NotFound("The resource could not be found.")

    post = put = patch = delete = get


# ---- software configs and deployments ------------------------------------------------------------

class SoftwareConfigs(HeatView):
    def get(self, request: Request, project_id: str) -> Response:
        rows = selectors.software_config_list(actor=request.auth, limit=request.query_params.get("limit"),
                                              marker=request.query_params.get("marker"))
        return Response({"software_configs": [out.software_config(c, full=False) for c in rows]})

    def post(self, request: Request, project_id: str) -> Response:
        config = services.software_config_create(actor=request.auth, body=_body(request))
        return Response({"software_config": out.software_config(config)})


class SoftwareConfigDetail(HeatView):
    def get(self, request: Request, project_id: str, config_id: str) -> Response:
        config = selectors.software_config_get(actor=request.auth, config_id=config_id)
        return Response({"software_config": out.software_config(config)})

    def delete(self, request: Request, project_id: str, config_id: str) -> Response:
        services.software_config_delete(actor=request.auth, config_id=config_id)
        return Response(status=204)


class SoftwareDeployments(HeatView):
    def get(self, request: Request, project_id: str) -> Response:
        rows = selectors.software_deployment_list(actor=request.auth,
                                                  server_id=request.query_params.get("server_id"))
        return Response({"software_deployments": [out.software_deployment(d) for d in rows]})

    def post(self, request: Request, project_id: str) -> Response:
        deployment = services.software_deployment_create(actor=request.auth, body=_body(request))
        return Response({"software_deployment": out.software_deployment(deployment)})


class SoftwareDeploymentDetail(HeatView):
    def get(self, request: Request, project_id: str, deployment_id: str) -> Response:
        deployment = selectors.software_deployment_get(actor=request.auth, deployment_id=deployment_id)
        return Response({"software_deployment": out.software_deployment(deployment)})

    def put(self, request: Request, project_id: str, deployment_id: str) -> Response:
        deployment = services.software_deployment_update(actor=request.auth, deployment_id=deployment_id,
                                                         body=_body(request))
        return Response({"software_deployment": out.software_deployment(deployment)})

    def delete(self, request: Request, project_id: str, deployment_id: str) -> Response:
        services.software_deployment_delete(actor=request.auth, deployment_id=deployment_id)
        return Response(status=204)


class SoftwareDeploymentMetadata(HeatView):
    def get(self, request: Request, project_id: str, server_id: str) -> Response:
        items = selectors.software_deployment_metadata(actor=request.auth, server_id=server_id)
        return Response({"metadata": [out.deployment_metadata(i) for i in items]})
