"""Keystone v3 representations: the ``*_out`` functions produce exactly the shapes the Keystone
reference gives (request bodies are read by ``parsers``)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from rest_framework.request import Request

from apps.identity.models import (
    ApplicationCredential,
    Credential,
    Domain,
    Endpoint,
    Group,
    ImpliedRole,
    Project,
    Region,
    Role,
    RoleAssignment,
    Service,
    User,
)
from apps.identity.policy import Actor
from apps.identity.services import ec2_blob


def base_url(request: Request) -> str:
    return request.build_absolute_uri("/identity/v3").rstrip("/")


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _self(request: Request, path: str) -> dict[str, str]:
    return {"self": f"{base_url(request)}/{path}"}


def collection_links(request: Request) -> dict[str, Any]:
    return {"self": request.build_absolute_uri(), "previous": None, "next": None}


def domain_out(d: Domain, request: Request) -> dict[str, Any]:
    return {"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled, "tags": d.tags,
            "options": {}, "links": _self(request, f"domains/{d.id}")}


def project_out(p: Project, request: Request) -> dict[str, Any]:
    return {**p.extra, "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id, "is_domain": False, "tags": p.tags,
            "options": {}, "links": _self(request, f"projects/{p.id}")}


def user_out(u: User, request: Request) -> dict[str, Any]:
    out = {**u.extra, "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
           "password_expires_at": None, "options": u.options, "links": _self(request, f"users/{u.id}")}
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.email:
        out["email"] = u.email
    if u.description:
        out["description"] = u.description
    return out


def group_out(g: Group, request: Request) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": _self(request, f"groups/{g.id}")}


def role_out(r: Role, request: Request) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description,
            "options": r.options, "links": _self(request, f"roles/{r.id}")}


def role_ref(r: Role, request: Request) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": _self(request, f"roles/{r.id}")}


def implied_out(rule: ImpliedRole, request: Request) -> dict[str, Any]:
    return {"prior_role": role_ref(rule.prior, request), "implies": role_ref(rule.implied, request)}


def assignment_out(a: RoleAssignment, request: Request, *, include_names: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"role": {"id": a.role_id}}
    if a.user_id:
        out["user"] = {"id": a.user_id}
        actor_path = f"users/{a.user_id}"
    else:
        out["group"] = {"id": a.group_id}
        actor_path = f"groups/{a.group_id}"
    if a.project_id:
        out["scope"] = {"project": {"id": a.project_id}}
        target_path = f"projects/{a.project_id}"
    elif a.domain_id:
        out["scope"] = {"domain": {"id": a.domain_id}}
        target_path = f"domains/{a.domain_id}"
    else:
        out["scope"] = {"system": {"all": True}}
        target_path = "system"
    if include_names:
        out["role"]["name"] = a.role.name
        if a.user_id:
            out["user"].update(name=a.user.name, domain={"id": a.user.domain_id, "name": a.user.domain.name})
        else:
            out["group"].update(name=a.group.name, domain={"id": a.group.domain_id, "name": a.group.domain.name})
        if a.project_id:
            out["scope"]["project"].update(name=a.project.name, domain={"id": a.project.domain_id,
                                                                        "name": a.project.domain.name})
        elif a.domain_id:
            out["scope"]["domain"]["name"] = a.domain.name
    out["links"] = {"assignment": f"{base_url(request)}/{target_path}/{actor_path}/roles/{a.role_id}"}
    return out


def region_out(r: Region, request: Request) -> dict[str, Any]:
    return {"id": r.id, "description": r.description, "parent_region_id": r.parent_id,
            "links": _self(request, f"regions/{r.id}")}


def service_out(s: Service, request: Request) -> dict[str, Any]:
    return {"id": s.id, "type": s.type, "name": s.name, "description": s.description, "enabled": s.enabled,
            "links": _self(request, f"services/{s.id}")}


def endpoint_out(e: Endpoint, request: Request) -> dict[str, Any]:
    return {"id": e.id, "service_id": e.service_id, "interface": e.interface, "url": e.url,
            "region": e.region_id, "region_id": e.region_id, "enabled": e.enabled,
            "links": _self(request, f"endpoints/{e.id}")}


def app_cred_out(c: ApplicationCredential, request: Request, *, secret: str | None = None) -> dict[str, Any]:
    out = {"id": c.id, "name": c.name, "description": c.description or None, "project_id": c.project_id,
           "user_id": c.user_id,
           # Keystone gives an application credential's expiry back as it was set: no zone suffix.
           "expires_at": c.expires_at.strftime("%Y-%m-%dT%H:%M:%S.%f") if c.expires_at else None,
           "unrestricted": c.unrestricted,
           "access_rules": [], "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id}
                                         for r in c.roles.all()],
           "links": _self(request, f"users/{c.user_id}/application_credentials/{c.id}")}
    if secret is not None:
        out["secret"] = secret
    return out


def credential_out(c: Credential, request: Request) -> dict[str, Any]:
    """Keystone's credential: the blob is given back in clear, as stored (to its owner or an admin)."""
    return {"id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type, "blob": c.blob,
            "links": _self(request, f"credentials/{c.id}")}


def ec2_credential_out(c: Credential, request: Request) -> dict[str, Any]:
    """The OS-EC2 view of an EC2 credential (python-keystoneclient's and the CLI's ``tenant_id``)."""
    blob = ec2_blob(c)
    return {"user_id": c.user_id, "tenant_id": c.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id"), "app_cred_id": blob.get("app_cred_id"),
            "access_token_id": blob.get("access_token_id"),
            "links": _self(request, f"users/{c.user_id}/credentials/OS-EC2/{blob.get('access')}")}


def token_out(actor: Actor, catalog: list[dict] | None) -> dict[str, Any]:
    token = actor.token
    assert token is not None
    user = actor.user
    body: dict[str, Any] = {
        "methods": token.methods,
        "expires_at": iso(token.expires_at),
        "issued_at": iso(token.issued_at),
        "audit_ids": [token.audit_id] + ([token.audit_chain_id] if token.audit_chain_id else []),
        "user": {"id": user.id, "name": user.name, "domain": {"id": user.domain_id, "name": user.domain.name},
                 "password_expires_at": None},
    }
    if actor.project is not None:
        body["project"] = {"id": actor.project.id, "name": actor.project.name,
                           "domain": {"id": actor.project.domain_id, "name": actor.project.domain.name}}
        body["is_domain"] = False
    elif actor.domain is not None:
        body["domain"] = {"id": actor.domain.id, "name": actor.domain.name}
    elif actor.system:
        body["system"] = {"all": True}
    if actor.project is not None or actor.domain is not None or actor.system:
        body["roles"] = [{"id": rid, "name": name} for rid, name in actor.role_refs]
        if catalog is not None:
            body["catalog"] = catalog
    if actor.application_credential is not None:
        cred = actor.application_credential
        body["application_credential"] = {"id": cred.id, "name": cred.name, "restricted": not cred.unrestricted}
    return {"token": body}
