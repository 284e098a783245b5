"""The identity panels of the dashboard (admins): projects (their members and quotas), users, roles,
groups (their members and roles) and domains.

Views only parse, call the same services and selectors as the Keystone API, and render; the
services decide (policy, validation, uniqueness) and their errors are shown on the form or as a
message. The whole section is for admins: ``identity_admin`` asks the policy (require_admin) for
the session's actor, so a member gets a 403 whatever the URL.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core import validators
from apps.core.errors import Conflict, NotFound, StratusError
from apps.core.validators import UNSET
from apps.dashboard.shell import actor_for, dashboard_view, form_action, form_error, render_page, run_action
from apps.dashboard.tables import Action, Column, Table, TableQuery, deleting, nested_action_view
from apps.identity import selectors, services
from apps.identity.forms import (
    AssignmentForm,
    DomainForm,
    GroupForm,
    GroupMemberForm,
    ProjectForm,
    ProjectRoleForm,
    QuotaForm,
    RoleForm,
    UserCreateForm,
    UserEditForm,
)
from apps.identity.models import User
from apps.identity.policy import Actor, require_admin

View = Callable[..., HttpResponse]


def identity_admin(view: View) -> View:
    @dashboard_view
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        require_admin(actor_for(request), action="administer identity")
        return view(request, *args, **kwargs)

    return wrapper


def _run(request: HttpRequest, action: Callable[[], Any], *, success: str, redirect_to: str) -> HttpResponse:
    """A button's service call. ``identity_admin`` let only admins in, so a Forbidden here is one of
    the services' rules (one's own account, the last admin, a built-in role): a message on the list
    the admin came from, not a 403 page."""
    return run_action(request, action, success=success, redirect_to=redirect_to, passthrough=(NotFound,))


def _show_error(form: Any, exc: StratusError) -> None:
    form_error(form, exc, "name" if isinstance(exc, Conflict) and "name" in form.fields else None)


def _form_page(request: HttpRequest, form: Any, *, title: str, submit: str, back: str, object_id: str = "",
               intro: str = "") -> HttpResponse:
    """The one form page of the section (400 when the form shows an error)."""
    context = {"section": "Identity", "crumbs": "back to the list", "form": form, "title": title, "submit": submit,
               "back": back, "intro": intro}
    if object_id:
        context["object_id"] = object_id
    return render(request, "dashboard/form.html", context, status=400 if form.errors else 200)


def _project_choices(actor: Actor) -> list[tuple[str, str]]:
    return [(p.id, p.name if p.domain_id == "default" else f"{p.name} ({p.domain.name})")
            for p in selectors.project_list(actor=actor)]


def _role_choices() -> list[tuple[str, str]]:
    return [(r.id, r.name) for r in selectors.role_list()]


# ---- the lists: one live table each (apps/dashboard/tables.py) ---------------------------------

def _list_args(page: TableQuery) -> dict[str, Any]:
    """A table's page as the identity list selectors take it: Keystone's inexact name filter
    (``name__icontains``, as the API's), the order, the marker and the limit."""
    return {"filters": {"name__icontains": page.search} if page.search else None,
            "page": selectors.ListPage(sort=page.sort, ascending=page.ascending, limit=page.limit,
                                       marker=page.marker)}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _switch(noun: str, get: Callable[..., Any], update: Callable[..., Any], *, enabled: bool,
            confirm: Callable[[Any], str] | str = "") -> Action:
    """The Enable or Disable action of a list: ``get`` (the selector) then ``update(enabled=)`` (the
    service, which holds the rules: one's own account and domain, the last admin, the default
    domain); its refusals are the row's outcome (a message), not a 403 page."""
    key = f"{noun}_id"
    verb = "Enable" if enabled else "Disable"

    def call(actor: Actor, pk: str) -> Any:
        thing = get(actor=actor, **{key: pk})
        update(actor=actor, **{key: thing.id}, enabled=enabled)
        return thing

    return Action(verb.lower(), verb, call=call, success=lambda thing: f"{verb}d {noun} {thing.name}.",
                  allowed=lambda row: row.enabled != enabled, bulk=True, confirm=confirm, raises=(NotFound,))


def _deleting(noun: str, get: Callable[..., Any], delete: Callable[..., Any], confirm: Callable[[Any], str]) -> Action:
    return replace(deleting(get, delete, f"{noun}_id", noun=noun, success=lambda thing: f"Deleted {noun} {thing.name}.",
                            allowed=lambda _row: True), confirm=confirm, raises=(NotFound,))


def _table(noun: str, *, page: Callable[[Actor, TableQuery], list[Any]], columns: tuple[Column, ...],
           actions: tuple[Action, ...], live: str, empty: str) -> Table:
    return Table(name=f"{noun}s", url_name=f"identity:{noun}s", act_name=f"identity:{noun}_act", page=page,
                 row_template=f"identity/_{noun}_row.html", columns=columns, default_sort="name",
                 default_ascending=True, live=live, actions=actions, search_label=f"Filter {noun}s by name",
                 empty=empty)


def _views(table: Table, template: str, context: Callable[[Actor], dict[str, Any]]) -> tuple[View, ...]:
    """A list's views: the page, the bulk form's, ``<id>/enabled`` (when it has Enable/Disable) and
    ``<id>/delete``; all for admins only (a member gets a 403 before any service is called)."""
    names = {a.name for a in table.actions}
    page = identity_admin(table.page_view(template, context))
    act = identity_admin(table.action_view())
    delete = identity_admin(table.action_view("delete"))
    if "enable" not in names:
        return page, act, delete
    on, off = table.action_view("enable"), table.action_view("disable")

    @require_POST
    @identity_admin
    def set_enabled(request: HttpRequest, **url: str) -> HttpResponse:
        return (on if validators.flag(request.POST.get("enabled")) else off)(request, **url)

    return page, act, delete, set_enabled


# ---- the create and edit pages of projects, groups and domains: one shape -------------------------

@dataclass(frozen=True)
class _Kind:
    """A thing of the section whose pages are a name and a description (and, when ``in_domain``, the
    domain it is made in): its form, selector and services; a save leads to ``page`` (the URL name of
    its own page: a group's) or else its list."""

    noun: str
    form: Callable[..., Any]
    get: Callable[..., Any]
    create: Callable[..., Any]
    update: Callable[..., Any]
    in_domain: bool = True
    page: str = ""

    def after(self, thing: Any) -> str:
        return reverse(self.page, args=[thing.id]) if self.page else self.listed()

    def listed(self) -> str:
        return reverse(f"identity:{self.noun}s")


def _created(form: Any) -> dict[str, Any]:
    """The form's fields as the create service takes them (no domain chosen: the default's)."""
    data = dict(form.cleaned_data)
    if "domain_id" in data:
        data["domain_id"] = data["domain_id"] or None
    return data


def _create_view(kind: _Kind) -> View:
    @identity_admin
    def view(request: HttpRequest) -> HttpResponse:
        actor = actor_for(request)
        if kind.in_domain:
            form = kind.form(request.POST or None, domains=[(d.id, d.name) for d in selectors.domain_list(actor=actor)],
                             initial={"domain_id": actor.project.domain_id if actor.project else "default"})
        else:
            form = kind.form(request.POST or None)
        done = form_action(request, form, lambda: kind.create(actor=actor, **_created(form)),
                           success=lambda thing: f"Created {kind.noun} {thing.name}.", redirect_to=kind.after,
                           show_error=_show_error)
        if done is not None:
            return done
        return _form_page(request, form, title=f"Create {kind.noun}", submit=f"Create {kind.noun}",
                          back=kind.listed())

    return view


def _edit_view(kind: _Kind) -> View:
    key = f"{kind.noun}_id"

    @identity_admin
    def view(request: HttpRequest, **url: str) -> HttpResponse:
        actor = actor_for(request)
        thing = kind.get(actor=actor, **url)
        form = kind.form(request.POST or None, editing=True,
                         initial={"name": thing.name, "description": thing.description})
        done = form_action(request, form, lambda: kind.update(actor=actor, **{key: thing.id}, **form.cleaned_data),
                           success=lambda _: f"Saved {kind.noun} {form.cleaned_data['name']}.",
                           redirect_to=kind.after(thing), show_error=_show_error)
        if done is not None:
            return done
        return _form_page(request, form, title=f"Edit {kind.noun} {thing.name}", submit="Save",
                          back=kind.after(thing), object_id=thing.id)

    return view


PROJECT = _Kind("project", ProjectForm, selectors.project_get, services.project_create, services.project_update)
GROUP = _Kind("group", GroupForm, selectors.group_get, services.group_create, services.group_update,
              page="identity:group")
DOMAIN = _Kind("domain", DomainForm, selectors.domain_get, services.domain_create, services.domain_update,
               in_domain=False)
project_create, project_edit = _create_view(PROJECT), _edit_view(PROJECT)
group_create, group_edit = _create_view(GROUP), _edit_view(GROUP)
domain_create, domain_edit = _create_view(DOMAIN), _edit_view(DOMAIN)


# ---- projects -------------------------------------------------------------------------------

@identity_admin
def index(request: HttpRequest) -> HttpResponse:  # noqa: ARG001
    return HttpResponseRedirect(reverse("identity:projects"))


def _project_page(actor: Actor, page: TableQuery) -> list[Any]:
    projects = list(selectors.project_list(actor=actor, **_list_args(page)))
    counts = selectors.project_user_counts(actor=actor, project_ids=[p.id for p in projects])
    for project in projects:  # what the Disable button's confirmation names
        project.user_count = counts.get(project.id, 0)  # type: ignore[attr-defined]
    return projects


def _project_disable_question(project: Any) -> str:
    count = project.user_count
    who = f"Its {_plural(count, 'user')} {'loses' if count == 1 else 'lose'} access to it" if count else \
        "Nobody can work in it"
    return f"Disable project {project.name}? {who} until it is enabled again."


PROJECTS = _table(
    "project", page=_project_page, live="project", empty="No projects yet.",
    columns=(Column("Name", sort="name"), Column("Description", sort="description"), Column("Domain", sort="domain"),
             Column("Status", sort="enabled"), Column("ID", sort="id")),
    actions=(_switch("project", selectors.project_get, services.project_update, enabled=True),
             _switch("project", selectors.project_get, services.project_update, enabled=False,
                     confirm=_project_disable_question),
             _deleting("project", selectors.project_get, services.project_delete,
                       lambda p: f"Delete project {p.name}? Everything it owns goes with it.")))
project_list, project_act, project_delete, project_set_enabled = _views(
    PROJECTS, "identity/projects.html", lambda actor: {"current": actor.project_id})


@identity_admin
def project_quotas(request: HttpRequest, project_id: str) -> HttpResponse:
    """A project's limits (Horizon's Modify Quotas): only the changed ones go to quota_set, which
    decides what is allowed (a limit below what is in use is refused, with its words)."""
    actor = actor_for(request)
    project = selectors.project_get(actor=actor, project_id=project_id)
    form = QuotaForm(request.POST or None, usage=selectors.quota_usage(project=project))
    done = form_action(
        request, form, lambda: services.quota_set(actor=actor, project_id=project.id, limits=form.changed()),
        success=lambda _: f"Saved the quotas of project {project.name}.", redirect_to=reverse("identity:projects"))
    if done is not None:
        return done
    return _form_page(request, form, title=f"Quotas of project {project.name}", submit="Save quotas",
                      back=reverse("identity:projects"), object_id=project.id,
                      intro="Sizes take a unit (50 GiB, 1 TiB); -1 or \"unlimited\" lifts a limit. Only the limits "
                            "you change are written; the others stay as they are.")


# ---- project members (role assignments): a live table inside the project's page -------------------

def _members_page(project: Any) -> Callable[[Actor, TableQuery], list[Any]]:
    def page(actor: Actor, query: TableQuery) -> list[Any]:
        return selectors.project_member_list(
            actor=actor, project_id=project.id, search=query.search,
            page=selectors.ListPage(sort=query.sort, ascending=query.ascending, limit=query.limit,
                                    marker=query.marker))

    return page


def _member_remove(project: Any) -> Action:
    """Remove a member (every role it holds on ``project``): one identity service call, whose lockout
    rules (one's own admin role, the last enabled admin) are that row's outcome, not a 403 page."""
    def call(actor: Actor, key: str) -> str:
        kind, _, pk = key.partition(":")
        if kind not in ("user", "group"):
            raise NotFound(f"Could not find member: {key}.")
        who = selectors.user_get(user_id=pk) if kind == "user" else selectors.group_get(group_id=pk)
        roles = services.project_member_remove(actor=actor, project_id=project.id, **{f"{kind}_id": who.id})
        return f"Removed {kind} {who.name} from project {project.name} (roles {', '.join(roles)})."

    return Action("remove", "Remove", call=call, success=lambda message: message, bulk=True, danger=True,
                  icon="trash", raises=(NotFound,), confirm=lambda row: (
                      f"Remove {row.member_kind} {row.member_name} from project {project.name}? Its roles "
                      f"there ({', '.join(r.name for r in row.member_roles)}) are revoked."))


MEMBERS = Table(
    name="members", url_name="identity:project_members", act_name="identity:project_member_act",
    page=lambda _actor, _query: [], row_template="identity/_member_row.html", key="member_key",
    row_data=lambda row: {"name": row.member_name, "kind": row.member_kind},
    columns=(Column("User or group", sort="name"), Column("Kind", sort="kind"), Column("Domain", sort="domain"),
             Column("Roles on this project")),
    default_sort="name", default_ascending=True, live="role_assignment user",
    search_label="Filter members by name", empty="Nobody has a role on this project yet.")


def _members_table(project: Any) -> Table:
    return replace(MEMBERS, page=_members_page(project), url_args=(project.id,), actions=(_member_remove(project),))


project_member_act = identity_admin(nested_action_view(
    lambda actor, project_id: _members_table(selectors.project_get(actor=actor, project_id=project_id))))


@identity_admin
def project_members(request: HttpRequest, project_id: str) -> HttpResponse:
    actor = actor_for(request)
    project = selectors.project_get(actor=actor, project_id=project_id)
    users = [(u.id, u.name) for u in selectors.user_list(actor=actor)]
    groups = [(g.id, g.name) for g in selectors.group_list(actor=actor)]
    roles = _role_choices()
    member = next((pk for pk, name in roles if name == "member"), None)
    form = AssignmentForm(request.POST or None, users=users, groups=groups, roles=roles, initial={"role_id": member})
    done = form_action(
        request, form, lambda: services.role_grant(actor=actor, role_id=form.cleaned_data["role_id"],
                                                   project_id=project.id, **form.actor_kwargs()),
        success=lambda _: "Role granted.", redirect_to=reverse("identity:project_members", args=[project.id]),
        show_error=_show_error)
    if done is not None:
        return done
    return _members_table(project).render(request, "identity/members.html", {"project": project, "form": form},
                                          status=400 if form.errors else 200)


@require_POST
@identity_admin
def project_member_remove(request: HttpRequest, project_id: str) -> HttpResponse:
    who = {"user_id": request.POST.get("user_id") or None, "group_id": request.POST.get("group_id") or None}
    role_id = request.POST.get("role_id", "")
    return _run(
        request,
        lambda: services.role_revoke(actor=actor_for(request), role_id=role_id, project_id=project_id, **who),
        success="Role removed.", redirect_to=reverse("identity:project_members", args=[project_id]))


# ---- users ----------------------------------------------------------------------------------

def _user_page(actor: Actor, page: TableQuery) -> list[Any]:
    users = list(selectors.user_list(actor=actor, **_list_args(page)))
    for user in users:  # what the confirmations say of one's own row
        user.is_me = user.id == actor.user_id  # type: ignore[attr-defined]
    return users


def _you(user: Any) -> str:
    return f"{user.name} (you)" if user.is_me else user.name


USERS = _table(
    "user", page=_user_page, live="user", empty="No users yet.",
    columns=(Column("Name", sort="name"), Column("Email", sort="email"),
             Column("Primary project", sort="default_project"), Column("Domain", sort="domain"),
             Column("Status", sort="enabled")),
    actions=(_switch("user", selectors.user_get, services.user_update, enabled=True),
             _switch("user", selectors.user_get, services.user_update, enabled=False,
                     confirm=lambda u: f"Disable user {_you(u)}? They can no longer sign in, and their tokens are "
                                       "revoked."),
             _deleting("user", selectors.user_get, services.user_delete,
                       lambda u: f"Delete user {_you(u)}? Their role assignments and application credentials go "
                                 "with them.")))
user_list, user_act, user_delete, user_set_enabled = _views(
    USERS, "identity/users.html", lambda actor: {"me": actor.user_id})


@identity_admin
def user_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    roles = _role_choices()
    member = next((pk for pk, name in roles if name == "member"), "")
    form = UserCreateForm(request.POST or None, projects=_project_choices(actor), roles=roles,
                          initial={"project_id": actor.project_id or "", "role_id": member})

    def create() -> User:
        data = form.cleaned_data
        return services.user_create(actor=actor, name=data["name"], password=data["password"], email=data["email"],
                                    description=data["description"], enabled=data["enabled"],
                                    default_project_id=data["project_id"] or None,
                                    default_project_role_id=data["role_id"] or None)

    done = form_action(request, form, create, success=lambda user: f"Created user {user.name}.",
                       redirect_to=reverse("identity:users"), show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title="Create user", submit="Create user", back=reverse("identity:users"))


@identity_admin
def user_edit(request: HttpRequest, user_id: str) -> HttpResponse:
    actor = actor_for(request)
    user = selectors.user_get(actor=actor, user_id=user_id)
    form = UserEditForm(request.POST or None, projects=_project_choices(actor), initial={
        "name": user.name, "email": user.email, "description": user.description,
        "project_id": user.default_project_id or ""})

    def update() -> None:
        data = form.cleaned_data
        services.user_update(actor=actor, user_id=user.id, name=data["name"], email=data["email"],
                             description=data["description"], default_project_id=data["project_id"],
                             password=data["password"] or UNSET)

    done = form_action(request, form, update, success=lambda _: f"Saved user {form.cleaned_data['name']}.",
                       redirect_to=reverse("identity:users"), show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title=f"Edit user {user.name}", submit="Save", back=reverse("identity:users"),
                      object_id=user.id)


# ---- roles ----------------------------------------------------------------------------------

def _role_page(_actor: Actor, page: TableQuery) -> list[Any]:
    roles = list(selectors.role_list(**_list_args(page)))
    implies: dict[str, list[str]] = {}
    for rule in selectors.implied_role_list(prior_ids=[r.id for r in roles]):
        implies.setdefault(rule.prior_id, []).append(rule.implied.name)
    for role in roles:
        role.implied_names = sorted(implies.get(role.id, []))  # type: ignore[attr-defined]
    return roles


def _role_delete(actor: Actor, pk: str) -> Any:
    role = selectors.role_get(role_id=pk)
    services.role_delete(actor=actor, role_id=role.id)
    return role


ROLES = _table(
    "role", page=_role_page, live="role", empty="No roles yet.",
    columns=(Column("Name", sort="name"), Column("Implies"), Column("Domain", sort="domain"),
             Column("Description", sort="description"), Column("ID", sort="id")),
    actions=(Action("delete", "Delete", call=_role_delete, success=lambda role: f"Deleted role {role.name}.",
                    bulk=True, danger=True, icon="trash", raises=(NotFound,),
                    confirm="Delete role {name}? Every assignment of it is removed."),))
role_list, role_act, role_delete = _views(ROLES, "identity/roles.html", lambda _actor: {})


@identity_admin
def role_create(request: HttpRequest) -> HttpResponse:
    form = RoleForm(request.POST or None)
    done = form_action(
        request, form, lambda: services.role_create(actor=actor_for(request), name=form.cleaned_data["name"],
                                                    description=form.cleaned_data["description"]),
        success=lambda role: f"Created role {role.name}.", redirect_to=reverse("identity:roles"),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title="Create role", submit="Create role", back=reverse("identity:roles"))


# ---- groups ---------------------------------------------------------------------------------

def _group_back(group_id: str) -> str:
    return reverse("identity:group", args=[group_id])


def _group_rows(actor: Actor, page: TableQuery) -> list[Any]:
    groups = list(selectors.group_list(actor=actor, **_list_args(page)))
    counts = selectors.group_member_counts(actor=actor, group_ids=[g.id for g in groups])
    for group in groups:  # what the row and the Delete button's confirmation say
        group.member_count = counts.get(group.id, 0)  # type: ignore[attr-defined]
    return groups


def _group_delete_question(group: Any) -> str:
    count = group.member_count
    lose = f"Its {_plural(count, 'member')} {'loses' if count == 1 else 'lose'} the roles it gives them." if count \
        else "It has no members."
    return f"Delete group {group.name}? {lose}"


GROUPS = _table(
    "group", page=_group_rows, live="group user", empty="No groups yet: a group gives its members the roles it holds.",
    columns=(Column("Name", sort="name"), Column("Description", sort="description"), Column("Domain", sort="domain"),
             Column("Members", css="num")),
    actions=(_deleting("group", selectors.group_get, services.group_delete, _group_delete_question),))
group_list, group_act, group_delete = _views(GROUPS, "identity/groups.html", lambda _actor: {})


def _group_page(request: HttpRequest, group_id: str, *, member_form: GroupMemberForm | None = None,
                role_form: ProjectRoleForm | None = None) -> HttpResponse:
    """A group's page: its members (add, remove) and its role assignments (grant on a project, revoke),
    with ``member_form``/``role_form`` (bound, with their errors) in place of the empty ones."""
    actor = actor_for(request)
    group = selectors.group_get(actor=actor, group_id=group_id)
    members = list(selectors.group_members(group=group))
    inside = {user.id for user in members}
    roles = _role_choices()
    assignments = sorted(selectors.role_assignment_list(actor=actor, group_id=group.id),
                         key=lambda a: (a.project is None, (a.project or a.domain or a.role).name.lower(), a.role.name))
    context = {
        "group": group, "members": members, "assignments": assignments, "me": actor.user_id,
        "member_form": member_form or GroupMemberForm(
            users=[(u.id, u.name) for u in selectors.user_list(actor=actor) if u.id not in inside]),
        "role_form": role_form or ProjectRoleForm(projects=_project_choices(actor), roles=roles, initial={
            "role_id": next((pk for pk, name in roles if name == "member"), None)}),
    }
    return render_page(request, "identity/group_detail.html", context,
                       status=400 if member_form is not None or role_form is not None else 200)


@identity_admin
def group_detail(request: HttpRequest, group_id: str) -> HttpResponse:
    return _group_page(request, group_id)


@require_POST
@identity_admin
def group_member_add(request: HttpRequest, group_id: str) -> HttpResponse:
    actor = actor_for(request)
    group = selectors.group_get(actor=actor, group_id=group_id)
    form = GroupMemberForm(request.POST, users=[(u.id, u.name) for u in selectors.user_list(actor=actor)])
    done = form_action(
        request, form, lambda: services.group_add_user(actor=actor, group_id=group.id,
                                                       user_id=form.cleaned_data["user_id"]),
        success=lambda _: f"Added {dict(form.fields['user_id'].choices)[form.cleaned_data['user_id']]} to group "
                          f"{group.name}.", redirect_to=_group_back(group.id))
    return done or _group_page(request, group.id, member_form=form)


@require_POST
@identity_admin
def group_member_remove(request: HttpRequest, group_id: str) -> HttpResponse:
    user_id = request.POST.get("user_id", "")
    return _run(request, lambda: services.group_remove_user(actor=actor_for(request), group_id=group_id,
                                                            user_id=user_id),
                success="Removed the user from the group.", redirect_to=_group_back(group_id))


@require_POST
@identity_admin
def group_role_grant(request: HttpRequest, group_id: str) -> HttpResponse:
    actor = actor_for(request)
    group = selectors.group_get(actor=actor, group_id=group_id)
    form = ProjectRoleForm(request.POST, projects=_project_choices(actor), roles=_role_choices())
    done = form_action(
        request, form, lambda: services.role_grant(actor=actor, role_id=form.cleaned_data["role_id"], group_id=group.id,
                                                   project_id=form.cleaned_data["project_id"]),
        success=lambda a: f"Granted role {a.role.name} on project {a.project.name} to group {group.name}.",
        redirect_to=_group_back(group.id), show_error=_show_error)
    return done or _group_page(request, group.id, role_form=form)


@require_POST
@identity_admin
def group_role_revoke(request: HttpRequest, group_id: str) -> HttpResponse:
    target = {"project_id": request.POST.get("project_id") or None, "domain_id": request.POST.get("domain_id") or None,
              "system": validators.flag(request.POST.get("system")),
              "inherited": validators.flag(request.POST.get("inherited"))}
    role_id = request.POST.get("role_id", "")
    return _run(request, lambda: services.role_revoke(actor=actor_for(request), role_id=role_id, group_id=group_id,
                                                      **target),
                success="Role removed from the group.", redirect_to=_group_back(group_id))


# ---- domains --------------------------------------------------------------------------------

def _domain_page(actor: Actor, page: TableQuery) -> list[Any]:
    domains = list(selectors.domain_list(actor=actor, **_list_args(page)))
    contents = selectors.domain_contents(actor=actor, domain_ids=[d.id for d in domains])
    for domain in domains:  # what the Disable and Delete buttons' confirmations name
        domain.contents = contents.get(domain.id, {"projects": 0, "users": 0, "groups": 0})  # type: ignore[attr-defined]
        domain.is_mine = domain.id == actor.user.domain_id  # type: ignore[attr-defined]
    return domains


def _domain_disable_question(domain: Any) -> str:
    users, projects = domain.contents["users"], domain.contents["projects"]
    return (f"Disable domain {domain.name}{' (yours)' if domain.is_mine else ''}? Its {_plural(users, 'user')} can no "
            f"longer sign in and its {_plural(projects, 'project')} cannot be used until it is enabled again.")


def _domain_delete_question(domain: Any) -> str:
    n = domain.contents
    return (f"Delete domain {domain.name}? Its {_plural(n['projects'], 'project')}, {_plural(n['users'], 'user')} "
            f"and {_plural(n['groups'], 'group')} are deleted with it.")


DOMAINS = _table(
    "domain", page=_domain_page, live="domain", empty="No domains.",
    columns=(Column("Name", sort="name"), Column("Description", sort="description"), Column("Projects", css="num"),
             Column("Users", css="num"), Column("Groups", css="num"), Column("Status", sort="enabled")),
    actions=(_switch("domain", selectors.domain_get, services.domain_update, enabled=True),
             _switch("domain", selectors.domain_get, services.domain_update, enabled=False,
                     confirm=_domain_disable_question),
             _deleting("domain", selectors.domain_get, services.domain_delete, _domain_delete_question)))
domain_list, domain_act, domain_delete, domain_set_enabled = _views(
    DOMAINS, "identity/domains.html", lambda actor: {"mine": actor.user.domain_id})
