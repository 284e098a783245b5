"""The signed-in user's own pages, from the user menu: change one's password, and API access (the
service catalog's endpoints, an openrc and a clouds.yaml for the current project). Every user has
them, whatever their role; they name only the user's own account and the session's project."""
from __future__ import annotations

from django.contrib.auth import update_session_auth_hash
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from apps.core.errors import BadRequest, NotFound, StratusError, Unauthorized
from apps.dashboard import apiaccess
from apps.dashboard.forms import PasswordChangeForm
from apps.dashboard.shell import actor_for, dashboard_view, form_action, form_error
from apps.identity import selectors, services
from apps.identity.models import User
from apps.identity.policy import Actor

OPENRC = "-openrc.sh"  # the RC file's name: <project>-openrc.sh, as Horizon names it
WRONG_PASSWORD = ("That is not your current password (or too many wrong tries have locked the account for a "
                  "while).")


def _password_error(form: Form, exc: StratusError) -> None:
    """The service's refusal on the field it is about: the current password (a 401), the new one (a 400)."""
    if isinstance(exc, Unauthorized):
        form.add_error("current_password", WRONG_PASSWORD)
    else:
        form_error(form, exc, "password" if isinstance(exc, BadRequest) else None)


@sensitive_post_parameters("current_password", "password", "confirm_password")
@never_cache
@dashboard_view
def password(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    form = PasswordChangeForm(request.POST or None)

    def change() -> User:
        user = services.user_change_password(actor=actor, user_id=actor.user_id,
                                             original_password=form.cleaned_data["current_password"],
                                             password=form.cleaned_data["password"])
        update_session_auth_hash(request, user)  # this session stays signed in; the user's others end
        return user

    done = form_action(request, form, change, redirect_to=reverse("dashboard:api_access"), show_error=_password_error,
                       success=lambda _: "Your password was changed. You stay signed in here; your other sessions "
                                         "are signed out and your API tokens revoked (application credentials "
                                         "keep working).")
    if done is not None:
        return done
    return render(request, "dashboard/form.html", {
        "section": "Settings", "crumbs": "API access", "back": reverse("dashboard:api_access"), "form": form,
        "title": "Change your password", "submit": "Change password",
        "intro": f"Signed in as {actor.user.name} (domain {actor.user.domain.name}). Changing the password signs "
                 "out your other sessions and revokes your API tokens."}, status=400 if form.errors else 200)


def _credentials(actor: Actor) -> apiaccess.Credentials:
    """What the openrc and clouds.yaml name: the catalog's Keystone URL and region, the user, the
    session's project (none: 404, there is nothing to scope to)."""
    if actor.project is None:
        raise NotFound("You have no project to work in: ask an administrator for a role on one.")
    found = apiaccess.identity_endpoint(selectors.catalog(project_id=actor.project_id))
    if found is None:
        raise NotFound("The service catalog has no public identity endpoint.")
    auth_url, region = found
    project = actor.project
    return apiaccess.Credentials(
        auth_url=auth_url, region=region, username=actor.user.name, user_domain_name=actor.user.domain.name,
        project_id=project.id, project_name=project.name, project_domain_id=project.domain_id,
        project_domain_name=project.domain.name)


@dashboard_view
def api_access(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request)
    catalog = selectors.catalog(project_id=actor.project_id)
    context = {"endpoints": apiaccess.public_endpoints(catalog), "project": actor.project,
               "identity": apiaccess.identity_endpoint(catalog), "cloud_name": apiaccess.CLOUD_NAME,
               "openrc_name": apiaccess.filename(actor.project.name, OPENRC) if actor.project is not None else ""}
    return render(request, "dashboard/api_access.html", context)


def _download(body: str, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["Cache-Control"] = "no-store"
    return response


@dashboard_view
def openrc(request: HttpRequest) -> HttpResponse:
    creds = _credentials(actor_for(request))
    return _download(apiaccess.openrc(creds), apiaccess.filename(creds.project_name, OPENRC),
                     "application/x-sh")


@dashboard_view
def clouds_yaml(request: HttpRequest) -> HttpResponse:
    return _download(apiaccess.clouds_yaml(_credentials(actor_for(request))), "clouds.yaml", "application/x-yaml")
