"""Keystone v3 API. Views parse the request, call one service or selector, and render."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core import resources, validators
from apps.core.api import OpenStackView
from apps.core.errors import BadRequest, NotFound
from apps.identity import selectors, services
from apps.identity.api import parsers
from apps.identity.api import serializers as out
from apps.identity.api.authentication import AllowAny
from apps.identity.policy import Actor

VERSION_ID = "v3.14"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def version_doc(request: Request) -> dict[str, Any]:
    return {"id": VERSION_ID, "status": "stable", "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": request.build_absolute_uri("/identity/v3/")}],
            "media-types": MEDIA_TYPES}


class Versions(OpenStackView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"versions": {"values": [version_doc(request)]}}, status=300)


class Version(OpenStackView):
    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def get(self, request: Request) -> Response:
        return Response({"version": version_doc(request)})


# ---- tokens ---------------------------------------------------------------------------------

class AuthTokens(OpenStackView):
    """POST issues (anonymous); GET/HEAD validate and DELETE revokes the X-Subject-Token."""

    def get_authenticators(self) -> list:
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    def get_permissions(self) -> list:
        if self.request is not None and self.request.method == "POST":
            return [AllowAny()]
        return super().get_permissions()

    def post(self, request: Request) -> Response:
        raw, actor = services.token_issue(auth=parsers.auth(parsers.member(request.data, "auth")))
        nocatalog = "nocatalog" in request.query_params
        body = out.token_out(actor, None if nocatalog else selectors.catalog(project_id=actor.project_id))
        response = Response(body, status=201)
        response["X-Subject-Token"] = raw
        return response

    def get(self, request: Request) -> Response:
        subject = request.META.get("HTTP_X_SUBJECT_TOKEN", "")
        if not subject:
            raise BadRequest("X-Subject-Token is required.")
        actor = services.token_inspect(actor=request.auth, token=subject)
        nocatalog = "nocatalog" in request.query_params
        response = Response(out.token_out(actor, None if nocatalog else selectors.catalog(
            project_id=actor.project_id)))
        response["X-Subject-Token"] = subject
        return response

    def head(self, request: Request) -> HttpResponse:
        self.get(request)
        return HttpResponse(status=200)

    def delete(self, request: Request) -> HttpResponse:
        subject = request.META.get("HTTP_X_SUBJECT_TOKEN", "")
        services.token_revoke(actor=request.auth, token=subject)
        return HttpResponse(status=204)


class AuthCatalog(OpenStackView):
    def get(self, request: Request) -> Response:
        return Response({"catalog": selectors.catalog(project_id=request.auth.project_id),
                         "links": out.collection_links(request)})


class AuthProjects(OpenStackView):
    def get(self, request: Request) -> Response:
        projects = selectors.user_projects(user=request.auth.user)
        return Response({"projects": [out.project_out(p, request) for p in projects],
                         "links": out.collection_links(request)})


class AuthDomains(OpenStackView):
    def get(self, request: Request) -> Response:
        domains = selectors.user_domains(user=request.auth.user)
        return Response({"domains": [out.domain_out(d, request) for d in domains],
                         "links": out.collection_links(request)})


class AuthSystem(OpenStackView):
    def get(self, request: Request) -> Response:
        actor: Actor = request.auth
        has = bool(selectors.effective_roles(actor.user, system=True))
        return Response({"system": [{"all": True}] if has else [], "links": out.collection_links(request)})


# ---- generic collections and members ----------------------------------------------------------

class Collection(resources.Collection, resources.Creatable):
    """GET lists (filtered from the query string), POST creates from ``{key: {...}}``, through the
    selector ``<key>_list`` and the service ``<key>_create`` fed by the parser of the same name."""

    output: ClassVar[Callable[..., dict]]
    scoped: ClassVar[bool] = True  # whether the resource's selectors take the caller (an actor=)

    def rows(self, request: Request) -> Any:
        scope = {"actor": request.auth} if self.scoped else {}
        return getattr(selectors, f"{self.key}_list")(filters=parsers.query_filters(request), **scope)

    def render(self, request: Request, row: Any) -> dict[str, Any]:
        return type(self).output(row, request)

    def links(self, request: Request, rows: Any) -> dict[str, Any]:
        return {"links": out.collection_links(request)}

    def create(self, request: Request) -> dict[str, Any]:
        fields = getattr(parsers, f"{self.key}_create")(parsers.member(request.data, self.key))
        return type(self).output(getattr(services, f"{self.key}_create")(actor=request.auth, **fields), request)


class Member(resources.Member, resources.Patchable, resources.Deletable):
    """GET shows, PATCH updates from ``{key: {...}}``, DELETE deletes one, through the selector
    ``<key>_get`` and the services ``<key>_update`` (fed by the parser of the same name) and
    ``<key>_delete``, each given ``<key>_id``."""

    output: ClassVar[Callable[..., dict]]
    scoped: ClassVar[bool] = True

    def show(self, request: Request, pk: str) -> Any:
        scope = {"actor": request.auth} if self.scoped else {}
        return getattr(selectors, f"{self.key}_get")(**{f"{self.key}_id": pk}, **scope)

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return type(self).output(row, request)

    def update(self, request: Request, pk: str) -> dict[str, Any]:
        fields = getattr(parsers, f"{self.key}_update")(parsers.member(request.data, self.key))
        obj = getattr(services, f"{self.key}_update")(actor=request.auth, **{f"{self.key}_id": pk}, **fields)
        return type(self).output(obj, request)


def resource_views(key: str, plural: str, render: Callable[..., dict], *, scoped: bool = True
                   ) -> tuple[type[Collection], type[Member]]:
    """The collection and member views of one Keystone resource."""
    attrs = {"key": key, "output": render, "scoped": scoped}
    return (type(plural.title(), (Collection,), {**attrs, "plural": plural}),
            type(f"{key.title()}Detail", (Member,), {**attrs, "arg": f"{key}_id",
                                                      "deleter": getattr(services, f"{key}_delete")}))


Domains, DomainDetail = resource_views("domain", "domains", out.domain_out)


Projects, ProjectDetail = resource_views("project", "projects", out.project_out)


class ProjectTags(OpenStackView):
    """GET lists, PUT replaces ({"tags": [...]}), DELETE clears a project's tags."""

    def get(self, request: Request, pk: str) -> Response:
        return Response({"tags": selectors.project_get(actor=request.auth, project_id=pk).tags})

    def put(self, request: Request, pk: str) -> Response:
        project = services.project_tags_set(actor=request.auth, project_id=pk, tags=parsers.project_tags(request.data))
        return Response({"tags": project.tags})

    def delete(self, request: Request, pk: str) -> HttpResponse:
        services.project_tag_delete(actor=request.auth, project_id=pk)
        return HttpResponse(status=204)


class ProjectTag(OpenStackView):
    """GET/HEAD check (204 or 404), PUT adds (201), DELETE removes one tag."""

    def get(self, request: Request, pk: str, tag: str) -> HttpResponse:
        if not selectors.project_has_tag(actor=request.auth, project_id=pk, tag=tag):
            raise NotFound(f"Could not find tag {tag} on project {pk}.")
        return HttpResponse(status=204)

    head = get

    def put(self, request: Request, pk: str, tag: str) -> HttpResponse:
        project = services.project_tag_add(actor=request.auth, project_id=pk, tag=parsers.tag(tag))
        response = HttpResponse(status=201)
        response["Location"] = f"{out.base_url(request)}/projects/{project.id}/tags/{tag}"
        return response

    def delete(self, request: Request, pk: str, tag: str) -> HttpResponse:
        services.project_tag_delete(actor=request.auth, project_id=pk, tag=tag)
        return HttpResponse(status=204)


Users, UserDetail = resource_views("user", "users", out.user_out)


class UserPassword(OpenStackView):
    """Self-service password change: the original password is the proof, no token is needed
    (Keystone leaves this call unenforced, so an admin's token changes nothing either)."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def post(self, request: Request, pk: str) -> HttpResponse:
        services.user_change_password(actor=None, user_id=pk,
                                      **parsers.user_password(parsers.member(request.data, "user")))
        return HttpResponse(status=204)


class UserGroups(OpenStackView):
    def get(self, request: Request, pk: str) -> Response:
        user = selectors.user_get(user_id=pk, actor=request.auth)
        return Response({"groups": [out.group_out(g, request) for g in selectors.user_groups(user=user)],
                         "links": out.collection_links(request)})


class UserProjects(OpenStackView):
    def get(self, request: Request, pk: str) -> Response:
        user = selectors.user_get(user_id=pk, actor=request.auth)
        return Response({"projects": [out.project_out(p, request) for p in selectors.user_projects(user=user)],
                         "links": out.collection_links(request)})


Groups, GroupDetail = resource_views("group", "groups", out.group_out)


class GroupUsers(OpenStackView):
    def get(self, request: Request, pk: str) -> Response:
        group = selectors.group_get(group_id=pk, actor=request.auth)
        return Response({"users": [out.user_out(u, request) for u in selectors.group_members(group=group)],
                         "links": out.collection_links(request)})


class GroupUser(OpenStackView):
    def put(self, request: Request, pk: str, user_id: str) -> HttpResponse:
        services.group_add_user(actor=request.auth, group_id=pk, user_id=user_id)
        return HttpResponse(status=204)

    def head(self, request: Request, pk: str, user_id: str) -> HttpResponse:
        group = selectors.group_get(group_id=pk, actor=request.auth)
        if not selectors.group_has_member(group=group, user_id=user_id):
            raise NotFound(f"Could not find user {user_id} in group {pk}.")
        return HttpResponse(status=204)

    get = head

    def delete(self, request: Request, pk: str, user_id: str) -> HttpResponse:
        services.group_remove_user(actor=request.auth, group_id=pk, user_id=user_id)
        return HttpResponse(status=204)


Roles, RoleDetail = resource_views("role", "roles", out.role_out, scoped=False)


class RoleImplies(OpenStackView):
    def get(self, request: Request, pk: str) -> Response:
        prior = selectors.role_get(role_id=pk)
        rules = selectors.implied_role_list(prior=prior)
        return Response({"role_inference": {"prior_role": out.role_ref(prior, request),
                                            "implies": [out.role_ref(r.implied, request) for r in rules]},
                         "links": out.collection_links(request)})


class RoleImply(OpenStackView):
    def put(self, request: Request, pk: str, implied_id: str) -> Response:
        rule = services.implied_role_create(actor=request.auth, prior_role_id=pk, implied_role_id=implied_id)
        return Response({"role_inference": out.implied_out(rule, request)}, status=201)

    def get(self, request: Request, pk: str, implied_id: str) -> Response:
        rule = selectors.implied_role_get(prior_role_id=pk, implied_role_id=implied_id)
        return Response({"role_inference": out.implied_out(rule, request)})

    def head(self, request: Request, pk: str, implied_id: str) -> HttpResponse:
        self.get(request, pk, implied_id)
        return HttpResponse(status=204)

    def delete(self, request: Request, pk: str, implied_id: str) -> HttpResponse:
        services.implied_role_delete(actor=request.auth, prior_role_id=pk, implied_role_id=implied_id)
        return HttpResponse(status=204)


class RoleInferences(OpenStackView):
    def get(self, request: Request) -> Response:
        grouped: dict[str, dict[str, Any]] = {}
        for rule in selectors.implied_role_list():
            entry = grouped.setdefault(rule.prior_id, {"prior_role": out.role_ref(rule.prior, request),
                                                       "implies": []})
            entry["implies"].append(out.role_ref(rule.implied, request))
        return Response({"role_inferences": list(grouped.values()), "links": out.collection_links(request)})


# ---- role assignments -----------------------------------------------------------------------

def _target(kwargs: dict[str, str]) -> dict[str, Any]:
    if "project_id" in kwargs:
        return {"project_id": kwargs["project_id"]}
    if "domain_id" in kwargs:
        return {"domain_id": kwargs["domain_id"]}
    return {"system": True}


def _who(kwargs: dict[str, str]) -> dict[str, Any]:
    return {"user_id": kwargs["user_id"]} if "user_id" in kwargs else {"group_id": kwargs["group_id"]}


class GrantList(OpenStackView):
    """GET /{projects|domains|system}/.../{users|groups}/{id}/roles"""

    def get(self, request: Request, **kwargs: str) -> Response:
        target = _target(kwargs)
        assignments = selectors.role_assignment_list(actor=request.auth, **_who(kwargs), **target)
        roles = {a.role_id: a.role for a in assignments}
        return Response({"roles": [out.role_out(r, request) for r in roles.values()],
                         "links": out.collection_links(request)})


class Grant(OpenStackView):
    """PUT grants, HEAD/GET checks, DELETE revokes one role."""

    def put(self, request: Request, role_id: str, **kwargs: str) -> HttpResponse:
        services.role_grant(actor=request.auth, role_id=role_id, **_who(kwargs), **_target(kwargs))
        return HttpResponse(status=204)

    def head(self, request: Request, role_id: str, **kwargs: str) -> HttpResponse:
        if not selectors.role_assignment_exists(actor=request.auth, role_id=role_id, **_who(kwargs),
                                                **_target(kwargs)):
            raise NotFound(f"Could not find role assignment with role: {role_id}.")
        return HttpResponse(status=204)

    get = head

    def delete(self, request: Request, role_id: str, **kwargs: str) -> HttpResponse:
        services.role_revoke(actor=request.auth, role_id=role_id, **_who(kwargs), **_target(kwargs))
        return HttpResponse(status=204)


class RoleAssignments(OpenStackView):
    def get(self, request: Request) -> Response:
        q = request.query_params
        actor: Actor = request.auth
        select = selectors.role_assignment_list_effective if validators.flag(q.get("effective"), bare=True) \
            else selectors.role_assignment_list
        assignments = select(actor=actor, user_id=q.get("user.id"), group_id=q.get("group.id"),
                             role_id=q.get("role.id"), project_id=q.get("scope.project.id"),
                             domain_id=q.get("scope.domain.id"), system="scope.system" in q)
        include_names = validators.flag(q.get("include_names"), bare=True)
        return Response({"role_assignments": [out.assignment_out(a, request, include_names=include_names)
                                              for a in assignments],
                         "links": out.collection_links(request)})


# ---- application credentials ----------------------------------------------------------------

class AppCreds(resources.Collection, resources.Creatable):
    """A user's application credentials: the list, and the create (its secret shown this once)."""

    key, plural = "application_credential", "application_credentials"

    def rows(self, request: Request, user_id: str) -> Any:
        user = selectors.user_get(user_id=user_id, actor=request.auth)
        return selectors.application_credential_list(user=user, filters=parsers.query_filters(request))

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.app_cred_out(row, request)

    def links(self, request: Request, rows: Any, **ids: str) -> dict[str, Any]:
        return {"links": out.collection_links(request)}

    def create(self, request: Request, user_id: str) -> dict[str, Any]:
        body = parsers.member(request.data, "application_credential")
        cred, secret = services.application_credential_create(
            actor=request.auth, user_id=user_id, **parsers.application_credential_create(body))
        return out.app_cred_out(cred, request, secret=secret)


class AppCredDetail(resources.Member, resources.Deletable):
    key = "application_credential"
    render = AppCreds.render

    def show(self, request: Request, user_id: str, pk: str) -> Any:
        user = selectors.user_get(user_id=user_id, actor=request.auth)
        return selectors.application_credential_get(user=user, app_cred_id=pk)

    def remove(self, request: Request, user_id: str, pk: str) -> None:
        services.application_credential_delete(actor=request.auth, user_id=user_id, app_cred_id=pk)


# ---- credentials ----------------------------------------------------------------------------

# Keystone's /v3/credentials: the caller's own (everyone's for an admin), filtered by user_id and type
Credentials, CredentialDetail = resource_views("credential", "credentials", out.credential_out)


class Ec2Credentials(resources.Collection, resources.Creatable):
    """A user's EC2 credentials (OS-EC2): what `openstack ec2 credentials create/list` call."""

    key, plural = "credential", "credentials"

    def rows(self, request: Request, user_id: str) -> Any:
        return selectors.ec2_credential_list(actor=request.auth, user_id=user_id)

    def render(self, request: Request, row: Any, **ids: str) -> dict[str, Any]:
        return out.ec2_credential_out(row, request)

    def links(self, request: Request, rows: Any, **ids: str) -> dict[str, Any]:
        return {"links": out.collection_links(request)}

    def create(self, request: Request, user_id: str) -> dict[str, Any]:
        cred = services.ec2_credential_create(actor=request.auth, user_id=user_id,
                                              **parsers.ec2_credential_create(request.data))
        return out.ec2_credential_out(cred, request)


class Ec2CredentialDetail(resources.Member, resources.Deletable):
    key, id = "credential", "access"
    render = Ec2Credentials.render

    def show(self, request: Request, user_id: str, access: str) -> Any:
        return selectors.ec2_credential_get(actor=request.auth, user_id=user_id, access=access)

    def remove(self, request: Request, user_id: str, access: str) -> None:
        services.ec2_credential_delete(actor=request.auth, user_id=user_id, access=access)


# ---- catalog --------------------------------------------------------------------------------

Regions, _RegionDetail = resource_views("region", "regions", out.region_out, scoped=False)


class RegionDetail(_RegionDetail):
    """Keystone also makes a region of a chosen id with PUT."""

    def put(self, request: Request, pk: str) -> Response:
        region = services.region_create(actor=request.auth, region_id=pk,
                                        **parsers.region_update(parsers.member(request.data, "region")))
        return Response({"region": out.region_out(region, request)}, status=201)


Services, ServiceDetail = resource_views("service", "services", out.service_out, scoped=False)


Endpoints, EndpointDetail = resource_views("endpoint", "endpoints", out.endpoint_out, scoped=False)


class Unknown(OpenStackView):
    """Any other path under /identity/v3: Keystone's 404, in its JSON format."""

    authentication_classes: ClassVar[list] = []
    permission_classes: ClassVar[list] = [AllowAny]

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("The resource could not be found.")

    def get(self, request: Request, **kwargs: str) -> Response:
        raise NotFound("The resource could not be found.")

    post = put = patch = delete = head = get
