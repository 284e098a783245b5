"""The identity panels of the dashboard (admins): projects (their members and quotas), users, roles,
groups (their members and roles) and domains.

Views only parse, call the same services and selectors as the Keystone API, and render; the
services decide (policy, validation, uniqueness) and their errors are shown on the form or as a
message. The whole section is for admins: ``identity_admin`` asks the policy (require_admin) for
the session's actor, so a member gets a 403 whatever the URL.
"""
from __future__ import annotations

from collections.abc import Callable
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


# ---- projects -------------------------------------------------------------------------------

@identity_admin
def index(request: HttpRequest) -> HttpResponse:  # noqa: ARG001
    return HttpResponseRedirect(reverse("identity:projects"))


@identity_admin
def project_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    projects = list(selectors.project_list(actor=actor))
    counts = selectors.project_user_counts(actor=actor)
    for project in projects:  # what the Disable button's confirmation names
        project.user_count = counts.get(project.id, 0)  # type: ignore[attr-defined]
    return render_page(request, "identity/projects.html", {"projects": projects, "current": actor.project_id},
                       partial="identity/_projects_table.html")


@identity_admin
def project_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    domains = [(d.id, d.name) for d in selectors.domain_list(actor=actor)]
    form = ProjectForm(request.POST or None, domains=domains,
                       initial={"domain_id": actor.project.domain_id if actor.project else "default"})
    done = form_action(
        request, form, lambda: services.project_create(
            actor=actor, name=form.cleaned_data["name"], description=form.cleaned_data["description"],
            domain_id=form.cleaned_data["domain_id"] or None, enabled=form.cleaned_data["enabled"]),
        success=lambda project: f"Created project {project.name}.", redirect_to=reverse("identity:projects"),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title="Create project", submit="Create project",
                      back=reverse("identity:projects"))


@identity_admin
def project_edit(request: HttpRequest, project_id: str) -> HttpResponse:
    actor = actor_for(request)
    project = selectors.project_get(actor=actor, project_id=project_id)
    form = ProjectForm(request.POST or None, editing=True,
                       initial={"name": project.name, "description": project.description})
    done = form_action(
        request, form, lambda: services.project_update(actor=actor, project_id=project.id,
                                                    name=form.cleaned_data["name"],
                                                    description=form.cleaned_data["description"]),
        success=lambda _: f"Saved project {form.cleaned_data['name']}.", redirect_to=reverse("identity:projects"),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title=f"Edit project {project.name}", submit="Save",
                      back=reverse("identity:projects"), object_id=project.id)


@require_POST
@identity_admin
def project_set_enabled(request: HttpRequest, project_id: str) -> HttpResponse:
    enabled = validators.flag(request.POST.get("enabled"))
    return _run(
        request,
        lambda: services.project_update(actor=actor_for(request), project_id=project_id, enabled=enabled),
        success=f"Project {'enabled' if enabled else 'disabled'}.", redirect_to=reverse("identity:projects"))


@require_POST
@identity_admin
def project_delete(request: HttpRequest, project_id: str) -> HttpResponse:
    return _run(request, lambda: services.project_delete(actor=actor_for(request), project_id=project_id),
                      success="Project deleted.", redirect_to=reverse("identity:projects"))


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


# ---- project members (role assignments) ------------------------------------------------------

def _member_rows(actor: Actor, project_id: str) -> list[dict[str, Any]]:
    """Direct assignments on the project, one row per user or group with its roles."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for a in sorted(selectors.role_assignment_list(actor=actor, project_id=project_id), key=lambda a: a.role.name):
        if a.user_id:
            key, name, domain = ("user", a.user_id), a.user.name, a.user.domain.name
        else:
            key, name, domain = ("group", a.group_id or ""), a.group.name, a.group.domain.name  # type: ignore[union-attr]
        row = rows.setdefault(key, {"kind": key[0], "id": key[1], "name": name, "domain": domain, "roles": []})
        row["roles"].append(a.role)
    return sorted(rows.values(), key=lambda r: (r["kind"] != "user", r["name"].lower()))


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
    context = {"project": project, "rows": _member_rows(actor, project.id), "form": form}
    return render_page(request, "identity/members.html", context, partial="identity/_members_table.html",
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

@identity_admin
def user_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    users = selectors.user_list(actor=actor)
    return render_page(request, "identity/users.html", {"users": users, "me": actor.user_id},
                       partial="identity/_users_table.html")


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


@require_POST
@identity_admin
def user_set_enabled(request: HttpRequest, user_id: str) -> HttpResponse:
    enabled = validators.flag(request.POST.get("enabled"))
    return _run(
        request, lambda: services.user_update(actor=actor_for(request), user_id=user_id, enabled=enabled),
        success=f"User {'enabled' if enabled else 'disabled'}.", redirect_to=reverse("identity:users"))


@require_POST
@identity_admin
def user_delete(request: HttpRequest, user_id: str) -> HttpResponse:
    return _run(request, lambda: services.user_delete(actor=actor_for(request), user_id=user_id),
                      success="User deleted.", redirect_to=reverse("identity:users"))


# ---- roles ----------------------------------------------------------------------------------

@identity_admin
def role_list(request: HttpRequest) -> HttpResponse:
    roles = selectors.role_list()
    implies: dict[str, list[str]] = {}
    for rule in selectors.implied_role_list():
        implies.setdefault(rule.prior_id, []).append(rule.implied.name)
    rows = [{"role": r, "implies": sorted(implies.get(r.id, []))} for r in roles]
    return render_page(request, "identity/roles.html", {"rows": rows}, partial="identity/_roles_table.html")


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


@require_POST
@identity_admin
def role_delete(request: HttpRequest, role_id: str) -> HttpResponse:
    return _run(request, lambda: services.role_delete(actor=actor_for(request), role_id=role_id),
                      success="Role deleted.", redirect_to=reverse("identity:roles"))


# ---- groups ---------------------------------------------------------------------------------

def _group_back(group_id: str) -> str:
    return reverse("identity:group", args=[group_id])


@identity_admin
def group_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    groups = list(selectors.group_list(actor=actor))
    counts = selectors.group_member_counts(actor=actor)
    for group in groups:  # what the row and the Delete button's confirmation say
        group.member_count = counts.get(group.id, 0)  # type: ignore[attr-defined]
    return render_page(request, "identity/groups.html", {"groups": groups}, partial="identity/_groups_table.html")


@identity_admin
def group_create(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = GroupForm(request.POST or None, domains=[(d.id, d.name) for d in selectors.domain_list(actor=actor)],
                     initial={"domain_id": actor.project.domain_id if actor.project else "default"})
    done = form_action(
        request, form, lambda: services.group_create(actor=actor, name=form.cleaned_data["name"],
                                                     description=form.cleaned_data["description"],
                                                     domain_id=form.cleaned_data["domain_id"]),
        success=lambda group: f"Created group {group.name}.", redirect_to=lambda group: _group_back(group.id),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title="Create group", submit="Create group", back=reverse("identity:groups"))


@identity_admin
def group_edit(request: HttpRequest, group_id: str) -> HttpResponse:
    actor = actor_for(request)
    group = selectors.group_get(actor=actor, group_id=group_id)
    form = GroupForm(request.POST or None, editing=True, initial={"name": group.name, "description": group.description})
    done = form_action(
        request, form, lambda: services.group_update(actor=actor, group_id=group.id, name=form.cleaned_data["name"],
                                                     description=form.cleaned_data["description"]),
        success=lambda saved: f"Saved group {saved.name}.", redirect_to=_group_back(group.id), show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title=f"Edit group {group.name}", submit="Save", back=_group_back(group.id),
                      object_id=group.id)


@require_POST
@identity_admin
def group_delete(request: HttpRequest, group_id: str) -> HttpResponse:
    return _run(request, lambda: services.group_delete(actor=actor_for(request), group_id=group_id),
                success="Group deleted.", redirect_to=reverse("identity:groups"))


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

@identity_admin
def domain_list(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    domains = list(selectors.domain_list(actor=actor))
    contents = selectors.domain_contents(actor=actor)
    for domain in domains:  # what the Disable and Delete buttons' confirmations name
        domain.contents = contents.get(domain.id, {"projects": 0, "users": 0, "groups": 0})  # type: ignore[attr-defined]
    return render_page(request, "identity/domains.html", {"domains": domains, "mine": actor.user.domain_id},
                       partial="identity/_domains_table.html")


@identity_admin
def domain_create(request: HttpRequest) -> HttpResponse:
    form = DomainForm(request.POST or None)
    done = form_action(
        request, form, lambda: services.domain_create(actor=actor_for(request), name=form.cleaned_data["name"],
                                                      description=form.cleaned_data["description"],
                                                      enabled=form.cleaned_data["enabled"]),
        success=lambda domain: f"Created domain {domain.name}.", redirect_to=reverse("identity:domains"),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title="Create domain", submit="Create domain", back=reverse("identity:domains"))


@identity_admin
def domain_edit(request: HttpRequest, domain_id: str) -> HttpResponse:
    actor = actor_for(request)
    domain = selectors.domain_get(actor=actor, domain_id=domain_id)
    form = DomainForm(request.POST or None, editing=True,
                      initial={"name": domain.name, "description": domain.description})
    done = form_action(
        request, form, lambda: services.domain_update(actor=actor, domain_id=domain.id, name=form.cleaned_data["name"],
                                                      description=form.cleaned_data["description"]),
        success=lambda saved: f"Saved domain {saved.name}.", redirect_to=reverse("identity:domains"),
        show_error=_show_error)
    if done is not None:
        return done
    return _form_page(request, form, title=f"Edit domain {domain.name}", submit="Save",
                      back=reverse("identity:domains"), object_id=domain.id)


@require_POST
@identity_admin
def domain_set_enabled(request: HttpRequest, domain_id: str) -> HttpResponse:
    enabled = validators.flag(request.POST.get("enabled"))
    return _run(
        request, lambda: services.domain_update(actor=actor_for(request), domain_id=domain_id, enabled=enabled),
        success=f"Domain {'enabled' if enabled else 'disabled'}.", redirect_to=reverse("identity:domains"))


@require_POST
@identity_admin
def domain_delete(request: HttpRequest, domain_id: str) -> HttpResponse:
    return _run(request, lambda: services.domain_delete(actor=actor_for(request), domain_id=domain_id),
                success="Domain deleted.", redirect_to=reverse("identity:domains"))
