"""Keystone v3 request bodies → the typed keyword arguments of the identity services, one parser per
operation. Types, lengths and shapes are checked here with apps/core/validators (a 400 in Keystone's
format); the services check the rules (uniqueness, policy, what may change).

Each parser takes the object the body wraps (``{"user": {...}}`` → ``{...}``, see ``member``) and
returns only what the body gives, so that a service's defaults apply on create and what is absent
stays unchanged on update.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework.request import Request

from apps.core import validators
from apps.core.errors import BadRequest, Forbidden
from apps.identity.services import AuthRequest, Scope

Check = Callable[[Any], Any]


def query_filters(request: Request) -> dict[str, str]:
    """A list's filters: the query string, one value each."""
    return dict(request.query_params.items())


def member(data: Any, key: str) -> dict[str, Any]:
    """The object a Keystone body wraps under ``key``."""
    return validators.member(data, key)


def _string(field: str, *, max_length: int | None = 255, null: str | None = "") -> Check:
    """A string; null gives ``null`` ("" by default), or is refused (with a blank string) when
    ``null`` is None."""
    def check(value: Any) -> str | None:
        if value is None and null is not None:
            return null
        return validators.text(value, field=field, max_length=max_length, required=null is None)
    return check


def _boolean(field: str) -> Check:
    return lambda value: validators.boolean(value, field=field, strict=True)


def _object(field: str) -> Check:
    """A JSON object; null is an empty one."""
    return lambda value: {} if value is None else validators.obj(value, field=field)


def tags(value: Any) -> list[str]:
    """Keystone's tags: strings of 1 to 255 characters without '/' or ',' (at most MAX_TAGS of them,
    which the services check as a project's tags are added to)."""
    return validators.tags(value, forbidden="/,")


def tag(value: str) -> str:
    return validators.tag(value, forbidden="/,")


def _id(field: str) -> Check:
    """A reference to another row: a string ("" or null: none)."""
    return _string(field, null="")


NAME = _string("name", null=None)
DESCRIPTION = _string("description", max_length=None)
ENABLED = _boolean("enabled")


def _read(body: Mapping[str, Any], checks: Mapping[str, Check], *, required: tuple[str, ...] = ()
          ) -> dict[str, Any]:
    """What ``body`` gives of ``checks``' fields, each checked; a missing required one is a 400."""
    for field in required:
        if field not in body:
            raise BadRequest(f"Invalid input for field/attribute {field}: '{field}' is a required property.")
    return {field: check(body[field]) for field, check in checks.items() if field in body}


def _extra(body: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """Keystone keeps the attributes it does not know as the resource's own ("extra")."""
    return {key: value for key, value in body.items() if key not in known}


# ---- tokens -----------------------------------------------------------------------------------

def _ref(ref: Any, field: str) -> Mapping[str, Any]:
    """A Keystone reference is an object ({id} or {name, domain: {id|name}})."""
    if not isinstance(ref, Mapping) or ("domain" in ref and not isinstance(ref["domain"], Mapping)):
        raise BadRequest(f"Invalid input for field '{field}': expected an object with an id, or a name and "
                         "a domain object.")
    return ref


def _scope(scope: Any) -> Scope | None:
    if not scope:
        return None
    if not isinstance(scope, Mapping):
        raise BadRequest("Invalid input for field 'auth/scope'.")
    refs = {kind: _ref(scope[kind], f"auth/scope/{kind}") for kind in ("project", "domain", "system") if kind in scope}
    if "project" in refs:
        return Scope(project=refs["project"])
    if "domain" in refs:
        return Scope(domain=refs["domain"])
    if "system" in refs:
        if refs["system"].get("all") is True:
            return Scope(system=True)
        raise BadRequest("Invalid input for field 'auth/scope/system': only {'all': true} is supported.")
    if "OS-TRUST:trust" in scope:
        raise Forbidden("Trusts are not supported.")
    raise BadRequest("Invalid input for field 'auth/scope'.")


def auth(body: Mapping[str, Any]) -> AuthRequest:
    """POST /auth/tokens: ``{"auth": {"identity": {"methods": [...], <method>: {...}}, "scope": ...}}``
    (``body`` is the "auth" object)."""
    identity = body.get("identity")
    if not isinstance(identity, Mapping) or not isinstance(identity.get("methods"), list) or not identity["methods"]:
        raise BadRequest("Invalid input for field 'identity': 'methods' is a required property.")
    methods = tuple(str(m) for m in identity["methods"])
    given = identity.get(methods[0])
    if not isinstance(given, Mapping):
        raise BadRequest(f"Invalid input for field 'identity': '{methods[0]}' is a required object.")
    scope = _scope(body.get("scope"))
    if methods[0] == "password":
        user = given.get("user")
        if not isinstance(user, Mapping) or "password" not in user:
            raise BadRequest("Invalid input for field 'identity/password/user': expected a user and a password.")
        return AuthRequest(methods=methods, user_ref=_ref(user, "identity/password/user"),
                           password=str(user["password"]), scope=scope)
    if methods[0] == "token":
        return AuthRequest(methods=methods, token=str(given.get("id", "")), scope=scope)
    if methods[0] == "application_credential":
        if not isinstance(given.get("secret"), str):
            raise BadRequest("Invalid input for field 'identity/application_credential/secret'.")
        if given.get("id"):
            return AuthRequest(methods=methods, app_cred_id=str(given["id"]), secret=given["secret"], scope=scope)
        user = _ref(given.get("user"), "identity/application_credential/user")
        return AuthRequest(methods=methods, app_cred_user=user, app_cred_name=str(given.get("name", "")),
                           secret=given["secret"], scope=scope)
    return AuthRequest(methods=methods, scope=scope)  # the service refuses the method (401)


# ---- domains and projects ---------------------------------------------------------------------

DOMAIN = {"name": _string("name", max_length=64, null=None), "description": DESCRIPTION, "enabled": ENABLED,
          "tags": tags}


def domain_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, DOMAIN, required=("name",))


def domain_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, DOMAIN)


PROJECT = {**DOMAIN, "domain_id": _id("domain_id")}
# a project's attributes (its representation shows these, never an "extra" of the same name)
PROJECT_OWN = {"name", "description", "enabled", "tags", "domain_id", "parent_id", "is_domain", "id", "links",
               "options"}


def project_create(body: Mapping[str, Any]) -> dict[str, Any]:
    if body.get("is_domain"):
        raise BadRequest("Projects acting as domains are not supported; create a domain instead.")
    return {**_read(body, {**PROJECT, "parent_id": _id("parent_id")}, required=("name",)),
            "extra": _extra(body, PROJECT_OWN)}


def project_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return {**_read(body, PROJECT), "extra": _extra(body, PROJECT_OWN)}


def project_tags(data: Any) -> list[str]:
    """PUT /projects/{id}/tags: ``{"tags": [...]}``."""
    if not isinstance(data, Mapping) or "tags" not in data:
        raise BadRequest("Invalid input for field 'tags': the request body needs a 'tags' list.")
    return tags(data["tags"])


# ---- users and groups -------------------------------------------------------------------------

PASSWORD = _string("password", max_length=4096)  # "" (or null) is refused by the services
USER = {"name": NAME, "domain_id": _id("domain_id"), "enabled": ENABLED, "email": _string("email"),
        "description": DESCRIPTION, "default_project_id": _id("default_project_id"), "password": PASSWORD,
        "options": _object("options")}
# a user's attributes (its representation shows these, never an "extra" of the same name); Keystone
# keeps a "federated" given on update as an extra
USER_OWN = {*USER, "id", "links", "password_expires_at"}


def user_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """A null password is none (the user cannot log in with one)."""
    checks = {**USER, "password": lambda value: None if value is None else PASSWORD(value)}
    return {**_read(body, checks, required=("name",)), "extra": _extra(body, USER_OWN | {"federated"})}


def user_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return {**_read(body, USER), "extra": _extra(body, USER_OWN)}


def user_password(body: Mapping[str, Any]) -> dict[str, Any]:
    """POST /users/{id}/password: ``{"user": {"original_password", "password"}}``."""
    return {"original_password": _string("original_password", max_length=4096)(body.get("original_password", "")),
            "password": PASSWORD(body.get("password"))}


GROUP = {"name": NAME, "domain_id": _id("domain_id"), "description": DESCRIPTION}


def group_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, GROUP, required=("name",))


def group_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, GROUP)


# ---- roles ------------------------------------------------------------------------------------

ROLE = {"name": NAME, "description": DESCRIPTION, "options": _object("options")}


def role_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, {**ROLE, "domain_id": _id("domain_id")}, required=("name",))


def role_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, ROLE)


# ---- application credentials --------------------------------------------------------------------

def _secret(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise BadRequest("Invalid input for field 'secret': must be a non-empty string.")
    return value


def _role_refs(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        raise BadRequest("Invalid input for field 'roles': must be a list of {id} or {name} objects.")
    return [{key: str(ref[key]) for key in ("id", "name") if ref.get(key)} for ref in value]


def expiry(value: Any) -> datetime | None:
    """An ISO 8601 date-time (UTC when it names no zone); null or "" for none."""
    if value in (None, ""):
        return None
    parsed = parse_datetime(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
    if parsed is None:
        raise BadRequest(f"Invalid input for field 'expires_at': {value!r} is not a date-time.")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def application_credential_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, {"name": NAME, "description": DESCRIPTION, "secret": _secret, "roles": _role_refs,
                        "expires_at": expiry, "unrestricted": _boolean("unrestricted")}, required=("name",))


# ---- credentials --------------------------------------------------------------------------------

CREDENTIAL = {"user_id": _string("user_id", null=None), "type": _string("type", null=None),
              "blob": _string("blob", max_length=65535, null=None), "project_id": _id("project_id")}


def credential_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, CREDENTIAL, required=("user_id", "type", "blob"))


def credential_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, CREDENTIAL)


def ec2_credential_create(data: Any) -> dict[str, Any]:
    """OS-EC2's create body: ``{"tenant_id": ...}`` (``project_id`` is taken too)."""
    body = validators.obj(data, field="body") if data is not None else {}
    project = body.get("tenant_id", body.get("project_id"))
    return {"project_id": _string("tenant_id", null=None)(project)}


# ---- catalog ----------------------------------------------------------------------------------

REGION = {"description": DESCRIPTION, "parent_region_id": _id("parent_region_id")}


def region_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """A region's id is the client's to choose (or made by the service)."""
    fields = _read(body, {**REGION, "id": _id("id")})
    if "id" in fields:
        fields["region_id"] = fields.pop("id")
    return fields


def region_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, REGION)


SERVICE = {"type": _string("type", null=None), "name": _string("name"), "description": DESCRIPTION,
           "enabled": ENABLED}


def service_create(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, SERVICE, required=("type",))


def service_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _read(body, SERVICE)


ENDPOINT = {"interface": _string("interface", null=None), "url": _string("url", max_length=1024, null=None),
            "service_id": _string("service_id", null=None), "region_id": _id("region_id"), "enabled": ENABLED}


def _endpoint(body: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint's fields; Keystone's older ``region`` names the region when ``region_id`` does not."""
    if not body.get("region_id") and "region" in body:
        body = {**body, "region_id": body["region"]}
    return _read(body, ENDPOINT)


def endpoint_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """Without a service, interface or URL the service refuses it (404, 400)."""
    return {"service_id": "", "interface": "", "url": "", **_endpoint(body)}


def endpoint_update(body: Mapping[str, Any]) -> dict[str, Any]:
    return _endpoint(body)
