"""The shell's own pages: login, logout, the project switcher and the overview."""
from __future__ import annotations

from typing import Any

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import NotFound
from apps.dashboard.forms import LoginForm
from apps.dashboard.shell import PROJECT_KEY, actor_for, dashboard_view, is_partial, render_page, safe_next
from apps.identity import quotas, selectors
from apps.identity.models import Project
from apps.identity.policy import Actor

BACKEND = "apps.identity.backends.KeystoneBackend"


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.method == "GET":
        return HttpResponseRedirect(safe_next(request, settings.LOGIN_REDIRECT_URL))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(request, username=form.cleaned_data["username"],
                            password=form.cleaned_data["password"], domain=form.cleaned_data["domain"])
        if user is None:
            form.add_error(None, "Invalid credentials: check the domain, user name and password.")
        else:
            login(request, user, backend=BACKEND)
            project = selectors.session_project(user=user)
            request.session[PROJECT_KEY] = project.id if project is not None else None
            if project is None:
                messages.warning(request, "You have no role on any project yet: ask an administrator for one.")
            return HttpResponseRedirect(safe_next(request, settings.LOGIN_REDIRECT_URL))
    status = 400 if request.method == "POST" else 200
    return render(request, "dashboard/login.html", {"form": form, "next": safe_next(request, "")}, status=status)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You have signed out.")
    return HttpResponseRedirect(settings.LOGIN_URL)


@require_POST
@dashboard_view
def switch_project(request: HttpRequest) -> HttpResponse:
    """Act in another project: only one the user may switch to (else 404, never a silent fallback)."""
    project_id = request.POST.get("project_id", "")
    project = selectors.user_project_find(user=request.user, project_id=project_id)  # type: ignore[arg-type]
    if project is None:
        raise NotFound(f"Could not find project: {project_id}.")
    request.session[PROJECT_KEY] = project.id
    messages.success(request, f"Switched to project {project.name}.")
    return HttpResponseRedirect(safe_next(request, reverse("dashboard:overview")))


def _percent(in_use: int, limit: int) -> int:
    if limit < 0:
        return 0
    if limit == 0:
        return 100 if in_use else 0
    return min(100, round(100 * in_use / limit))


def _quota_groups(project: Project) -> list[dict[str, Any]]:
    """The project's usage as the overview shows it: one group per kind of resource (compute,
    network, storage: quotas.GROUPS), each with its headline resources as charts and the others as
    rows, both most-used first. Names, units and groups come from identity's quota registry."""
    known = quotas.registered()
    groups: dict[str, dict[str, Any]] = {name: {"name": name, "charts": [], "rows": []} for name in quotas.GROUPS}
    for name, usage in selectors.quota_usage(project=project).items():
        limit, in_use = usage["limit"], usage["in_use"]
        resource = known.get(name) or quotas.QuotaResource(name=name, default=limit, service="")
        if resource.family and limit < 0:
            continue  # an unlimited per-type row (volumes_<type>...) says nothing its family's total does not
        percent = _percent(in_use, limit)
        item = {"name": name, "title": resource.title, "description": resource.description, "in_use": in_use,
                "limit": limit, "unlimited": limit < 0, "percent": percent, "order": resource.order,
                "in_use_label": resource.amount(in_use), "limit_label": resource.amount(limit),
                "level": "full" if percent >= 100 else "high" if percent >= 80 else "ok"}
        kind = resource.group or "Other"
        group = groups.setdefault(kind, {"name": kind, "charts": [], "rows": []})
        group["charts" if resource.chart else "rows"].append(item)
    for group in groups.values():
        for items in (group["charts"], group["rows"]):
            items.sort(key=lambda i: (-i["percent"], not i["in_use"], i["order"]))
    return [group for group in groups.values() if group["charts"] or group["rows"]]


def _object_usage(actor: Actor) -> Any:
    """The project's object storage (its containers, objects and bytes: two queries), when the objects
    component is installed and the project has a container."""
    if actor.project is None or not django_apps.is_installed("apps.objects"):
        return None
    from apps.objects import selectors as object_selectors

    stat = object_selectors.account_stat(actor=actor, project_id=actor.project.id)
    return stat if stat.container_count else None


@dashboard_view
def overview(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    context = {"project": actor.project, "roles": [name for _, name in actor.role_refs],
               "quota_groups": _quota_groups(actor.project) if actor.project is not None else [],
               # the usage moves with a quota event, or with an event of a resource counted from its rows
               "quota_live": " ".join(["quota", *quotas.counted_names()])}
    if not is_partial(request):
        context["object_usage"] = _object_usage(actor)
    return render_page(request, "dashboard/overview.html", context, partial="dashboard/_quota_table.html")
