"""Every read of identity data, scoped to the caller. Lists cost a constant number of queries."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from django.core.cache import cache
from django.db import connection
from django.db.models import Case, Count, Exists, Model, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from guardian.shortcuts import get_objects_for_user

from apps.core.access import restrict
from apps.core.errors import BadRequest, NotFound
from apps.core.pagination import keyset
from apps.identity.models import (
    PERM_READ,
    ApplicationCredential,
    Credential,
    Domain,
    Endpoint,
    Group,
    ImpliedRole,
    Project,
    QuotaDefault,
    QuotaLimit,
    QuotaUsage,
    Region,
    Role,
    RoleAssignment,
    Service,
    Token,
    User,
)
from apps.identity.policy import Actor, require_admin, require_read, require_self_or_admin

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class ListPage:
    """One page of a list in a chosen order, as the dashboard's tables read it (Keystone's API lists
    whole): ``sort``, one of the list's sort keys (``*_SORTS``), ``limit`` rows after the one ``marker``
    (an id) names among those the caller sees."""

    sort: str = "name"
    ascending: bool = True
    limit: int | None = None
    marker: str | None = None


DOMAIN_SORTS = {"name": "name", "description": "description", "enabled": "enabled", "id": "id"}
PROJECT_SORTS = {**DOMAIN_SORTS, "domain": "domain__name"}
USER_SORTS = {"name": "name", "email": "email", "domain": "domain__name", "enabled": "enabled", "id": "id",
              "default_project": "default_project__name"}
GROUP_SORTS = {"name": "name", "description": "description", "domain": "domain__name", "id": "id"}
ROLE_SORTS = GROUP_SORTS


def _paged(qs: QuerySet[M], page: ListPage | None, sorts: dict[str, str], what: str) -> QuerySet[M]:
    """``qs`` as ``page`` asks (keyset: constant queries whatever the list's length); unknown sort key:
    BadRequest; a marker the caller cannot see: NotFound, as for an id that names nothing."""
    if page is None:
        return qs
    field = sorts.get(page.sort)
    if field is None:
        raise BadRequest(f"Unknown sort key {page.sort!r} for {what}s.")
    qs = keyset(qs, order=[(field, page.ascending), ("id", page.ascending)], marker=page.marker,
                unknown=lambda marker: NotFound(f"Could not find {what}: {marker}."))
    return qs[:page.limit] if page.limit else qs


# ---- RBAC: the projects a user holds a role on (Project's and Domain's access rule) -------------

def projects_for_user(user: User, *, perm: str = PERM_READ) -> QuerySet[Project]:
    """Projects on which ``user`` holds ``perm`` (through a role on the project, directly or by a
    group; guardian object permissions carry them). An admin sees every project."""
    return get_objects_for_user(
        user, f"identity.{perm}", klass=Project.objects.select_related("domain"), accept_global_perms=True
    ).filter(enabled=True)


def user_project_choices(*, user: User) -> QuerySet[Project]:
    """The projects a dashboard user may act in, by name (the project switcher)."""
    return projects_for_user(user).order_by("name", "id")


def user_project_find(*, user: User, project_id: str | None) -> Project | None:
    """``project_id`` if ``user`` may act in it, else None."""
    return projects_for_user(user).filter(id=project_id).first() if project_id else None


def user_project_ids(*, user: User, project_ids: Iterable[str]) -> frozenset[str]:
    """Those of ``project_ids`` that ``user`` may still act in (one query)."""
    return frozenset(str(p) for p in projects_for_user(user).filter(id__in=list(project_ids))
                     .values_list("id", flat=True))


def session_project(*, user: User, wanted_id: str | None = None) -> Project | None:
    """The project a dashboard session acts in: ``wanted_id`` if the user may act in it, else the
    user's default project if allowed, else the first allowed one by name (None when there is none)."""
    for project_id in (wanted_id, user.default_project_id):
        project = user_project_find(user=user, project_id=project_id)
        if project is not None:
            return project
    return user_project_choices(user=user).first()


# ---- roles -----------------------------------------------------------------------------------

def implied_role_map() -> dict[str, set[str]]:
    mapping: dict[str, set[str]] = {}
    for prior_id, implied_id in ImpliedRole.objects.values_list("prior_id", "implied_id"):
        mapping.setdefault(prior_id, set()).add(implied_id)
    return mapping


def expand_implied(role_ids: Iterable[str], mapping: dict[str, set[str]] | None = None) -> set[str]:
    mapping = implied_role_map() if mapping is None else mapping
    result: set[str] = set()
    stack = list(role_ids)
    while stack:
        rid = stack.pop()
        if rid in result:
            continue
        result.add(rid)
        stack.extend(mapping.get(rid, ()))
    return result


def _target_q(*, project: Project | None = None, domain: Domain | None = None, system: bool = False) -> Q:
    if project is not None:
        return Q(project=project)
    if domain is not None:
        return Q(domain=domain)
    if system:
        return ~Q(system="")
    return Q(pk__in=[])


class RoleRef(NamedTuple):
    id: str
    name: str


ROLE_GRAPH_KEY = "identity:role-graph:v2"


def role_graph() -> dict[str, tuple[str, tuple[str, ...], bool]]:
    """``{role_id: (name, implied role ids, domain-specific)}`` for every role, cached (services
    drop the cache when a role or an inference rule changes); token validation reads it on every
    request."""
    graph = cache.get(ROLE_GRAPH_KEY)
    if graph is None:
        mapping = implied_role_map()
        graph = {rid: (name, tuple(sorted(mapping.get(rid, ()))), domain_id is not None)
                 for rid, name, domain_id in Role.objects.values_list("id", "name", "domain_id")}
        if not connection.in_atomic_block:  # never cache what a transaction may still roll back
            cache.set(ROLE_GRAPH_KEY, graph, 600)
    return graph


def effective_roles(user: User, *, project: Project | None = None, domain: Domain | None = None,
                    system: bool = False) -> list[RoleRef]:
    """Roles ``user`` holds on one target: its own assignments, its groups', and what they imply
    (one query, plus the cached role graph). A domain-specific role only carries what it implies:
    like Keystone, it never shows in a token itself."""
    direct = set(RoleAssignment.objects.filter(
        Q(user=user) | Q(group__auth_group__user=user), _target_q(project=project, domain=domain, system=system)
    ).values_list("role_id", flat=True))
    if not direct:
        return []
    graph = role_graph()
    if not direct <= graph.keys():
        cache.delete(ROLE_GRAPH_KEY)
        graph = role_graph()
    ids = expand_implied(direct, {rid: set(implied) for rid, (_, implied, _) in graph.items()})
    return sorted((RoleRef(rid, graph[rid][0]) for rid in ids if rid in graph and not graph[rid][2]),
                  key=lambda r: r.name)


# ---- who keeps the cloud administrable (services/admins.py's rule) ------------------------------

def _admin_grants() -> QuerySet[RoleAssignment]:
    """Assignments of the admin role, on any target (``User.is_superuser``'s rule)."""
    return RoleAssignment.objects.filter(role__name="admin")


def enabled_admin_names() -> list[str]:
    """The users who can sign in and administer the cloud: enabled, in an enabled domain, holding
    the admin role themselves or through a group (one query)."""
    grants = _admin_grants()
    return list(User.objects.filter(enabled=True, domain__enabled=True).filter(
        Q(id__in=grants.values("user_id")) | Q(groups__keystone_group__in=grants.values("group_id"))
    ).order_by("name").values_list("name", flat=True).distinct())


def admin_grant_ids(*, user_id: str) -> set[int]:
    """The admin role assignments that apply to one user (its own and its groups')."""
    return set(_admin_grants().filter(Q(user_id=user_id) | Q(group__auth_group__user__id=user_id))
               .values_list("id", flat=True))


def user_can_sign_in(*, user_id: str) -> bool:
    return User.objects.filter(id=user_id, enabled=True, domain__enabled=True).exists()


# ---- lookups used by the API and the dashboard -----------------------------------------------

def domain_list(*, actor: Actor, filters: dict[str, str] | None = None,
                page: ListPage | None = None) -> QuerySet[Domain]:
    """Every domain for an admin; the domains of one's projects for anyone else."""
    qs = _apply_filters(restrict(Domain.objects.all(), actor, "view"), filters,
                        {"name": "name", "name__icontains": "name__icontains", "enabled": "enabled"})
    return _paged(qs, page, DOMAIN_SORTS, "domain")


def domain_get(*, domain_id: str, actor: Actor | None = None) -> Domain:
    """A domain; with ``actor``, only one it may see (domain_list's rule), else not found."""
    qs = Domain.objects.all() if actor is None else restrict(Domain.objects.all(), actor, "view")
    return _get(qs, domain_id, "domain")


def domain_contents(*, actor: Actor, domain_ids: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """``{domain_id: {"projects": n, "users": n, "groups": n}}`` for an admin (three queries): what a
    domain's deletion takes with it; of ``domain_ids`` only when given (a page of the list)."""
    require_admin(actor, action="list domains")
    found: dict[str, dict[str, int]] = {}
    for kind, model in (("projects", Project), ("users", User), ("groups", Group)):
        rows = model.objects.all() if domain_ids is None else model.objects.filter(domain_id__in=list(domain_ids))
        for domain_id, count in rows.values("domain_id").annotate(n=Count("id")).values_list("domain_id", "n"):
            found.setdefault(domain_id, {"projects": 0, "users": 0, "groups": 0})[kind] = count
    return found


def domain_visible(*, actor: Actor, domain_id: str) -> bool:
    return restrict(Domain.objects.filter(id=domain_id), actor, "view").exists()


def domain_by_name_or_id(*, ref: dict[str, str] | None) -> Domain:
    if not ref:
        raise NotFound("Could not find domain.")
    if ref.get("id"):
        return _get(Domain.objects.all(), ref["id"], "domain")
    try:
        return Domain.objects.get(name=ref.get("name", ""))
    except Domain.DoesNotExist:
        raise NotFound(f"Could not find domain: {ref.get('name')}.") from None


def project_list(*, actor: Actor, filters: dict[str, str] | None = None,
                 page: ListPage | None = None) -> QuerySet[Project]:
    """Every project (an admin's listing; others ask for their own with user_projects)."""
    require_admin(actor, action="list projects")
    qs = _filter_tags(Project.objects.select_related("domain", "parent"), filters)
    qs = _apply_filters(qs, filters, {"name": "name", "name__icontains": "name__icontains", "domain_id": "domain_id",
                                      "enabled": "enabled", "parent_id": "parent_id", "is_domain": None})
    return _paged(qs, page, PROJECT_SORTS, "project")


def project_user_counts(*, actor: Actor, project_ids: Iterable[str] | None = None) -> dict[str, int]:
    """How many users hold a role on each project the caller sees (of ``project_ids`` when given),
    themselves or through a group (two queries): who loses access when it is disabled."""
    visible = project_list(actor=actor)
    if project_ids is not None:
        visible = visible.filter(id__in=list(project_ids))
    on_visible = RoleAssignment.objects.filter(project__in=visible.values("id"))
    users: dict[str, set[str]] = {}
    for project_id, user_id in [
            *on_visible.filter(user__isnull=False).values_list("project_id", "user_id"),
            *on_visible.filter(group__isnull=False).values_list("project_id", "group__auth_group__user__id")]:
        if user_id:
            users.setdefault(project_id, set()).add(user_id)
    return {project_id: len(ids) for project_id, ids in users.items()}


def project_names(*, actor: Actor, project_ids: Iterable[str] | None = None) -> dict[str, str]:
    """Every project's id → name (an admin's listing, e.g. to label rows of every project); only those
    of ``project_ids`` when given (one query: the projects of a page's rows)."""
    visible = project_list(actor=actor)
    if project_ids is not None:
        visible = visible.filter(id__in=set(project_ids))
    return dict(visible.values_list("id", "name"))


def _filter_tags(qs: QuerySet[M], filters: dict[str, str] | None) -> QuerySet[M]:
    """Keystone's tag filters: ``tags`` (all of), ``tags-any``, ``not-tags`` (not all of),
    ``not-tags-any`` (none of); each a comma-separated list."""
    wanted = {key: [t for t in (filters or {}).get(key, "").split(",") if t]
              for key in ("tags", "tags-any", "not-tags", "not-tags-any")}
    if not any(wanted.values()):
        return qs
    if connection.features.supports_json_field_contains:  # PostgreSQL: JSONB containment in SQL
        def has(tag: str) -> Q:
            return Q(tags__contains=[tag])
        if wanted["tags"]:
            qs = qs.filter(tags__contains=wanted["tags"])
        if wanted["tags-any"]:
            qs = qs.filter(_any(has(t) for t in wanted["tags-any"]))
        if wanted["not-tags"]:
            qs = qs.exclude(tags__contains=wanted["not-tags"])
        if wanted["not-tags-any"]:
            qs = qs.exclude(_any(has(t) for t in wanted["not-tags-any"]))
        return qs

    def keep(tags: list[str]) -> bool:  # SQLite: one query for the ids, then the tests here
        held = set(tags or [])
        return ((not wanted["tags"] or set(wanted["tags"]) <= held)
                and (not wanted["tags-any"] or bool(held & set(wanted["tags-any"])))
                and (not wanted["not-tags"] or not set(wanted["not-tags"]) <= held)
                and (not wanted["not-tags-any"] or not held & set(wanted["not-tags-any"])))
    return qs.filter(pk__in=[pk for pk, tags in qs.values_list("pk", "tags") if keep(tags)])


def _any(conditions: Iterable[Q]) -> Q:
    result = Q(pk__in=[])
    for condition in conditions:
        result |= condition
    return result


def project_has_tag(*, actor: Actor, project_id: str, tag: str) -> bool:
    return tag in project_get(actor=actor, project_id=project_id).tags


def project_get(*, actor: Actor, project_id: str) -> Project:
    """Any project for an admin; one the caller holds a role on for anyone else."""
    return _get(restrict(Project.objects.select_related("domain", "parent"), actor, "view"), project_id, "project")


def project_by_name_or_id(*, ref: dict) -> Project:
    """Resolve a Keystone project reference ({id} or {name, domain: {id|name}})."""
    return _by_name_or_id(Project.objects.select_related("domain"), ref, "project")


def _by_name_or_id(qs: QuerySet[M], ref: dict, what: str) -> M:
    """A Keystone reference to a domain-owned row: ``{id}`` or ``{name, domain: {id|name}}``."""
    if ref.get("id"):
        return _get(qs, ref["id"], what)
    domain = domain_by_name_or_id(ref=ref.get("domain"))
    try:
        return qs.get(domain=domain, name=ref.get("name", ""))
    except qs.model.DoesNotExist:
        raise NotFound(f"Could not find {what}: {ref.get('name')}.") from None


def user_list(*, actor: Actor, filters: dict[str, str] | None = None, page: ListPage | None = None) -> QuerySet[User]:
    require_admin(actor, action="list users")
    qs = _apply_filters(User.objects.select_related("domain", "default_project"), filters,
                        {"name": "name", "name__icontains": "name__icontains", "domain_id": "domain_id",
                         "enabled": "enabled"})
    return _paged(qs, page, USER_SORTS, "user")


def user_name(ref: str) -> Subquery:
    """An annotation: the name of the user whose id the outer query's ``ref`` holds (NULL once that user
    is deleted). For what a user did to something the caller sees (an instance's action log): who
    acted is part of that record, as its user id is in the API."""
    return Subquery(User.objects.filter(pk=OuterRef(ref)).values("name")[:1])


def user_get(*, user_id: str, actor: Actor | None = None) -> User:
    if actor is not None:
        require_self_or_admin(actor, user_id, action="see this user")
    return _get(User.objects.select_related("domain", "default_project"), user_id, "user")


def user_by_name_or_id(*, ref: dict) -> User:
    return _by_name_or_id(User.objects.select_related("domain"), ref, "user")


def user_groups(*, user: User) -> QuerySet[Group]:
    return Group.objects.select_related("domain").filter(auth_group__user=user)


def user_projects(*, user: User) -> QuerySet[Project]:
    """Projects where the user holds a role itself or through a group (Keystone's
    /users/{id}/projects): guardian's object permissions, without the admin shortcut."""
    return get_objects_for_user(user, f"identity.{PERM_READ}", klass=Project.objects.select_related("domain"),
                                with_superuser=False, accept_global_perms=False).filter(enabled=True)


def user_domains(*, user: User) -> QuerySet[Domain]:
    """Domains where the user holds a role itself or through a group (GET /auth/domains)."""
    assigned = RoleAssignment.objects.filter(Q(user=user) | Q(group__auth_group__user=user), domain__isnull=False)
    return Domain.objects.filter(enabled=True, id__in=assigned.values("domain_id"))


def group_list(*, actor: Actor, filters: dict[str, str] | None = None, page: ListPage | None = None) -> QuerySet[Group]:
    require_admin(actor, action="list groups")
    qs = _apply_filters(Group.objects.select_related("domain"), filters,
                        {"name": "name", "name__icontains": "name__icontains", "domain_id": "domain_id"})
    return _paged(qs, page, GROUP_SORTS, "group")


def group_member_counts(*, actor: Actor, group_ids: Iterable[str] | None = None) -> dict[str, int]:
    """How many users each group has (of ``group_ids`` when given; one query): what its row and its
    delete confirmation say."""
    groups = group_list(actor=actor)
    if group_ids is not None:
        groups = groups.filter(id__in=list(group_ids))
    return dict(groups.annotate(members=Count("auth_group__user")).values_list("id", "members"))


def group_get(*, group_id: str, actor: Actor | None = None) -> Group:
    if actor is not None:
        require_admin(actor, action="see groups")
    return _get(Group.objects.select_related("domain", "auth_group"), group_id, "group")


def group_members(*, group: Group) -> QuerySet[User]:
    return User.objects.select_related("domain", "default_project").filter(groups=group.auth_group)


def group_has_member(*, group: Group, user_id: str) -> bool:
    return group_members(group=group).filter(id=user_id).exists()


def role_list(*, filters: dict[str, str] | None = None, page: ListPage | None = None) -> QuerySet[Role]:
    qs = _apply_filters(Role.objects.select_related("domain"), filters,
                        {"name": "name", "name__icontains": "name__icontains", "domain_id": "domain_id"})
    return _paged(qs, page, ROLE_SORTS, "role")


def role_get(*, role_id: str) -> Role:
    return _get(Role.objects.select_related("domain"), role_id, "role")


def implied_role_list(*, prior: Role | None = None, prior_ids: Iterable[str] | None = None) -> QuerySet[ImpliedRole]:
    """The inference rules (of ``prior``, or of the roles of ``prior_ids``: a page of the list, when given)."""
    qs = ImpliedRole.objects.select_related("prior", "implied")
    if prior_ids is not None:
        qs = qs.filter(prior_id__in=list(prior_ids))
    return qs.filter(prior=prior) if prior is not None else qs


def implied_role_get(*, prior_role_id: str, implied_role_id: str) -> ImpliedRole:
    """The rule "``prior_role_id`` implies ``implied_role_id``" (NotFound for an unknown prior role too)."""
    rule = implied_role_list(prior=role_get(role_id=prior_role_id)).filter(implied_id=implied_role_id).first()
    if rule is None:
        raise NotFound(f"Could not find implied role {implied_role_id} of {prior_role_id}.")
    return rule


def _assignments(*, actor: Actor | None, user_id: str | None, group_id: str | None, project_id: str | None,
                 domain_id: str | None, system: bool) -> QuerySet[RoleAssignment]:
    """Assignments on the targets asked for; an admin sees all, anyone else only their own."""
    if actor is not None and not (actor.is_admin or (user_id == actor.user_id and not group_id)):
        require_admin(actor, action="list role assignments")
    qs = RoleAssignment.objects.select_related("role", "user", "user__domain", "group", "group__domain",
                                               "project", "project__domain", "domain")
    if project_id:
        qs = qs.filter(project_id=project_id)
    if domain_id:
        qs = qs.filter(domain_id=domain_id)
    if system:
        qs = qs.exclude(system="")
    return qs


def role_assignment_list(*, actor: Actor | None = None, user_id: str | None = None, group_id: str | None = None,
                         role_id: str | None = None, project_id: str | None = None,
                         domain_id: str | None = None, system: bool = False) -> QuerySet[RoleAssignment]:
    """The assignments as they were made (Keystone's GET /role_assignments without ``effective``)."""
    qs = _assignments(actor=actor, user_id=user_id, group_id=group_id, project_id=project_id,
                      domain_id=domain_id, system=system)
    if user_id:
        qs = qs.filter(user_id=user_id)
    if group_id:
        qs = qs.filter(group_id=group_id)
    if role_id:
        qs = qs.filter(role_id=role_id)
    return qs


MEMBER_SORTS = {"name": "member_name", "kind": "member_kind", "domain": "member_domain"}


def _member_q(key: str) -> Q:
    """The assignments of the member ``key`` names: ``user:<id>`` or ``group:<id>`` (nothing else)."""
    kind, _, pk = key.partition(":")
    return Q(user_id=pk) if kind == "user" else Q(group_id=pk) if kind == "group" else Q(pk__in=[])


def project_member_list(*, actor: Actor, project_id: str, page: ListPage | None = None,
                        search: str = "") -> list[RoleAssignment]:
    """A project's members (admins): the users and groups with a role on it, one row each (its first
    assignment there, with ``member_key`` "user:<id>" or "group:<id>", ``member_name``, ``member_kind``,
    ``member_domain`` and ``member_roles``, every role it holds there), whose name holds ``search``, in
    ``page``'s order (``MEMBER_SORTS``, keyset after the member ``page.marker`` names): two queries."""
    direct = _assignments(actor=actor, user_id=None, group_id=None, project_id=project_id, domain_id=None,
                          system=False).filter(project_id=project_id)
    same = Q(user_id__isnull=False, user_id=OuterRef("user_id")) | Q(group_id__isnull=False,
                                                                     group_id=OuterRef("group_id"))
    earlier = RoleAssignment.objects.filter(same, project_id=OuterRef("project_id"), id__lt=OuterRef("id"))
    members = direct.filter(~Exists(earlier)).annotate(
        member_name=Coalesce("user__name", "group__name"),
        member_domain=Coalesce("user__domain__name", "group__domain__name"),
        member_kind=Case(When(user_id__isnull=False, then=Value("user")), default=Value("group")))
    if search:
        members = members.filter(member_name__icontains=search)
    page = page or ListPage()
    field = MEMBER_SORTS.get(page.sort)
    if field is None:
        raise BadRequest(f"Unknown sort key {page.sort!r} for project members.")
    members = keyset(members, order=[(field, page.ascending), ("id", page.ascending)], marker=page.marker,
                     marker_field=_member_q, unknown=lambda marker: NotFound(f"Could not find member: {marker}."))
    rows = list(members[:page.limit] if page.limit else members)
    roles: dict[tuple[str, str], list[Role]] = {}
    if rows:
        held = direct.filter(Q(user_id__in=[r.user_id for r in rows if r.user_id])
                             | Q(group_id__in=[r.group_id for r in rows if r.group_id]))
        for assignment in held.order_by("role__name", "id"):
            roles.setdefault((assignment.user_id or "", assignment.group_id or ""), []).append(assignment.role)
    for row in rows:
        row.member_key = f"{row.member_kind}:{row.user_id or row.group_id}"  # type: ignore[attr-defined]
        row.member_roles = roles.get((row.user_id or "", row.group_id or ""), [])  # type: ignore[attr-defined]
    return rows


def role_assignment_exists(*, actor: Actor, role_id: str, user_id: str | None = None, group_id: str | None = None,
                           project_id: str | None = None, domain_id: str | None = None, system: bool = False) -> bool:
    """Keystone's grant check (HEAD /projects/{p}/users/{u}/roles/{r} and the like)."""
    return role_assignment_list(actor=actor, role_id=role_id, user_id=user_id, group_id=group_id,
                                project_id=project_id, domain_id=domain_id, system=system).exists()


def role_assignment_list_effective(*, actor: Actor | None = None, user_id: str | None = None,
                                   group_id: str | None = None, role_id: str | None = None,
                                   project_id: str | None = None, domain_id: str | None = None,
                                   system: bool = False) -> list[RoleAssignment]:
    """Keystone's ``?effective``: what each user really holds. A user's filter takes in its
    groups' assignments; group assignments become one per member; implied roles are added and
    domain-specific ones dropped; the role filter applies to the result. Constant queries."""
    if group_id:
        raise BadRequest("Combining effective and group filter will always result in an empty list.")
    qs = _assignments(actor=actor, user_id=user_id, group_id=None, project_id=project_id, domain_id=domain_id,
                      system=system)
    if user_id:
        qs = qs.filter(Q(user_id=user_id)
                       | Q(group_id__in=Group.objects.filter(auth_group__user__id=user_id).values("id")))
    result = effective_assignments(assignments=list(qs), user_id=user_id)
    return [a for a in result if a.role_id == role_id] if role_id else result


def token_get(*, token_hash: str) -> Token:
    return _get(
        Token.objects.select_related("user", "user__domain", "project", "project__domain", "domain",
                                     "application_credential"),
        token_hash, "token")


def application_credential_list(*, user: User, filters: dict[str, str] | None = None
                                ) -> QuerySet[ApplicationCredential]:
    qs = ApplicationCredential.objects.filter(user=user).select_related("project").prefetch_related("roles")
    return _apply_filters(qs, filters, {"name": "name"})


def application_credential_get(*, user: User, app_cred_id: str) -> ApplicationCredential:
    return _get(application_credential_list(user=user), app_cred_id, "application credential")


# ---- credentials (Keystone's /v3/credentials and OS-EC2) ------------------------------------------

def credential_list(*, actor: Actor, filters: dict[str, str] | None = None) -> QuerySet[Credential]:
    """Keystone's policy: an admin lists everyone's credentials, anyone else only their own
    (filters: ``user_id``, ``type``)."""
    qs = Credential.objects.select_related("user", "project")
    if not actor.is_admin:
        qs = qs.filter(user_id=actor.user_id)
    return _apply_filters(qs, filters, {"user_id": "user_id", "type": "type"})


def credential_get(*, actor: Actor, credential_id: str) -> Credential:
    """Someone else's credential is not found, exactly as an unknown one."""
    return _get(credential_list(actor=actor), credential_id, "credential")


def ec2_credential_list(*, actor: Actor, user_id: str) -> QuerySet[Credential]:
    """A user's EC2 credentials (OS-EC2), for the user or an admin."""
    require_self_or_admin(actor, user_id, action="see this user's EC2 credentials")
    return Credential.objects.filter(user_id=user_id, type="ec2").select_related("user", "project")


def ec2_credential_get(*, actor: Actor, user_id: str, access: str) -> Credential:
    from apps.identity.crypto import ec2_credential_id

    try:
        return ec2_credential_list(actor=actor, user_id=user_id).get(pk=ec2_credential_id(access))
    except Credential.DoesNotExist:
        raise NotFound(f"Could not find credential: {access}.") from None


def region_list(*, filters: dict[str, str] | None = None) -> QuerySet[Region]:
    return _apply_filters(Region.objects.all(), filters, {"parent_region_id": "parent_id"})


def region_get(*, region_id: str) -> Region:
    return _get(Region.objects.all(), region_id, "region")


def service_list(*, filters: dict[str, str] | None = None) -> QuerySet[Service]:
    return _apply_filters(Service.objects.all(), filters, {"type": "type", "name": "name"})


def service_get(*, service_id: str) -> Service:
    return _get(Service.objects.all(), service_id, "service")


def endpoint_list(*, filters: dict[str, str] | None = None) -> QuerySet[Endpoint]:
    qs = Endpoint.objects.select_related("service", "region")
    return _apply_filters(qs, filters, {"interface": "interface", "service_id": "service_id",
                                         "region_id": "region_id"})


def endpoint_get(*, endpoint_id: str) -> Endpoint:
    return _get(Endpoint.objects.select_related("service", "region"), endpoint_id, "endpoint")


def catalog(*, project_id: str | None = None) -> list[dict]:
    """The service catalog as Keystone puts it in a token (one query). ``$(project_id)s`` in a URL
    becomes the token's project; without a project such endpoints are left out. Each process builds
    it once per identity epoch (token_cache.py: any catalog change makes every worker build it again)."""
    from apps.identity import token_cache

    return token_cache.catalog_cached(project_id, lambda: _catalog(project_id=project_id))


def _catalog(*, project_id: str | None) -> list[dict]:
    services: dict[str, dict] = {}
    for ep in Endpoint.objects.select_related("service", "region").filter(enabled=True, service__enabled=True):
        url = ep.url
        for placeholder in ("$(project_id)s", "%(project_id)s", "$(tenant_id)s", "%(tenant_id)s"):
            if placeholder in url:
                if project_id is None:
                    url = ""
                    break
                url = url.replace(placeholder, project_id)
        if not url:
            continue
        svc = services.setdefault(ep.service_id, {"id": ep.service_id, "type": ep.service.type,
                                                  "name": ep.service.name, "endpoints": []})
        svc["endpoints"].append({"id": ep.id, "interface": ep.interface, "region": ep.region_id,
                                 "region_id": ep.region_id, "url": url})
    return sorted(services.values(), key=lambda s: (s["type"], s["name"]))


def quota_limits(*, project: Project) -> dict[str, int]:
    """The effective limit of every registered resource for ``project``."""
    from apps.identity import quotas

    limits = {name: res.default for name, res in quotas.registered().items()}
    limits.update({d.resource: d.hard_limit for d in QuotaDefault.objects.filter(resource__in=limits)})
    limits.update(dict(QuotaLimit.objects.filter(project=project, resource__in=limits)
                       .values_list("resource", "hard_limit")))
    return limits


def quota_limits_of(*, project_id: str, resources: Iterable[str]) -> dict[str, int]:
    """The effective limit of each of ``resources`` (registered ones) for one project, in one query:
    the project's own limit, else the cloud's default (QuotaDefault), else the registered default."""
    from apps.identity import quotas

    names = list(resources)
    limits = {}
    for name in names:
        known = quotas.get(name)
        limits[name] = known.default if known is not None else quotas.UNLIMITED
    if not names:
        return limits
    # written out (every create and delete reads it): the cloud's defaults, then the project's own
    marks = ", ".join(["%s"] * len(names))
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT "resource", "hard_limit", 0 FROM "{QuotaDefault._meta.db_table}" '
                       f'WHERE "resource" IN ({marks}) UNION ALL '
                       f'SELECT "resource", "hard_limit", 1 FROM "{QuotaLimit._meta.db_table}" '
                       f'WHERE "project_id" = %s AND "resource" IN ({marks})', [*names, project_id, *names])
        rows = cursor.fetchall()
    for resource, limit, _rank in sorted(rows, key=lambda row: row[2]):
        limits[resource] = limit
    return limits


def quota_project_get(*, actor: Actor, project_id: str) -> Project:
    """A project whose quotas the caller may read: its own, any for an admin (another's is a 404)."""
    require_read(actor, project_id, what=f"project {project_id}")
    return project_get(actor=actor, project_id=project_id)


def quota_defaults() -> dict[str, int]:
    from apps.identity import quotas

    limits = {name: res.default for name, res in quotas.registered().items()}
    limits.update({d.resource: d.hard_limit for d in QuotaDefault.objects.filter(resource__in=limits)})
    return limits


def quota_usage(*, project: Project) -> dict[str, dict[str, int]]:
    """``{resource: {limit, in_use}}`` for every registered resource (three queries, and one for each
    resource counted from its own rows: ports)."""
    from apps.identity import quotas

    limits = quota_limits(project=project)
    used = dict(QuotaUsage.objects.filter(project=project).values_list("resource", "in_use"))
    for name in quotas.counted_names():
        counter = quotas.counter_of(name)
        if counter is not None and name in limits:
            used[name] = counter(project.id)
    return {name: {"limit": limit, "in_use": used.get(name, 0)} for name, limit in sorted(limits.items())}


def quota_projects_with_limits(*, actor: Actor, resources: Iterable[str]) -> list[str]:
    """The ids (sorted) of the projects that hold a limit of their own for any of ``resources`` (admin)."""
    require_admin(actor, action="list every project's quotas")
    return sorted(set(QuotaLimit.objects.filter(resource__in=list(resources)).values_list("project_id", flat=True)))


def quota_resource_name_max() -> int:
    """The longest resource name the quota tables hold (a family's generated names must fit it)."""
    return QuotaUsage._meta.get_field("resource").max_length


# ---- helpers ---------------------------------------------------------------------------------

def _get(qs: QuerySet[M], pk: str, what: str) -> M:
    try:
        return qs.get(pk=pk)
    except (qs.model.DoesNotExist, ValueError):
        raise NotFound(f"Could not find {what}: {pk}.") from None


def _apply_filters(qs: QuerySet[M], filters: dict[str, str] | None, allowed: dict[str, str | None]) -> QuerySet[M]:
    for key, value in (filters or {}).items():
        column = allowed.get(key)
        if column is None:
            continue
        if column in {"enabled"}:
            qs = qs.filter(**{column: str(value).lower() in {"1", "true", "yes"}})
        elif value in ("", "None", "null") and column.endswith("_id"):
            qs = qs.filter(**{column: None})
        else:
            qs = qs.filter(**{column: value})
    return qs


def effective_assignments(*, assignments: list[RoleAssignment], user_id: str | None = None
                          ) -> list[RoleAssignment]:
    """Keystone's ``?effective``: group assignments expanded to their members, implied roles added
    (unsaved RoleAssignment objects; two queries whatever the length)."""
    mapping = implied_role_map()
    group_ids = {a.group_id for a in assignments if a.group_id}
    members: dict[str, list[User]] = {}
    if group_ids:
        for group in Group.objects.filter(id__in=group_ids).prefetch_related("auth_group__user_set__domain"):
            members[group.id] = list(group.auth_group.user_set.all())
    roles = {r.id: r for r in Role.objects.all()} if mapping else {}
    result: list[RoleAssignment] = []
    seen: set[tuple] = set()
    for a in assignments:
        users = [a.user] if a.user_id else members.get(a.group_id or "", [])
        for user in users:
            if user_id and user.id != user_id:
                continue
            for role_id in expand_implied([a.role_id], mapping):
                key = (user.id, role_id, a.project_id, a.domain_id, a.system)
                if key in seen:
                    continue
                seen.add(key)
                role = a.role if role_id == a.role_id else roles[role_id]
                if role.domain_id is not None:
                    continue  # a domain-specific role only carries what it implies
                result.append(RoleAssignment(role=role, user=user, project=a.project, domain=a.domain,
                                             system=a.system))
    return result
