"""What every dashboard view shares: the session's project and actor, the login requirement, the
rendering of service errors, and partial (live-refreshed) rendering.

Component views use it like this:

    @dashboard_view
    def port_detail(request: HttpRequest, port_id: str) -> HttpResponse:
        port = selectors.port_get(actor=actor_for(request), port_id=port_id)
        return render_page(request, "networks/port_detail.html", {"port": port}, partial="networks/_port_detail.html")

(a list panel declares a live table instead: apps/dashboard/tables.py).

``request.actor`` is what services.actor_for_session returns for the logged-in user in the project
chosen by the switcher. Forbidden and NotFound raised by a service or selector become a 403/404
page; other service errors are for the view to show (see ``form_error`` and ``run_action``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from apps.core.errors import Forbidden, NotFound, StratusError
from apps.identity import selectors, services
from apps.identity.policy import Actor

PROJECT_KEY = "project_id"

View = Callable[..., HttpResponse]
T = TypeVar("T")


def session_actor(request: HttpRequest) -> Actor:
    """The actor of this request (computed once); keeps session["project_id"] pointing at a
    project the user may still use."""
    cached: Actor | None = getattr(request, "_stratus_actor", None)
    if cached is not None:
        return cached
    wanted = request.session.get(PROJECT_KEY)
    project = selectors.session_project(user=request.user, wanted_id=wanted)  # type: ignore[arg-type]
    project_id = project.id if project is not None else None
    if wanted != project_id:
        request.session[PROJECT_KEY] = project_id
    actor = services.actor_for_session(user=request.user, project_id=project_id)  # type: ignore[arg-type]
    request._stratus_actor = actor  # type: ignore[attr-defined]
    return actor


def socket_actor(*, user: Any, session: Any) -> Actor | None:
    """The actor of a socket opened by a dashboard page: its session's user (as the database has it
    now) in the session's project, as ``session_actor`` says for a request (without writing the
    session); None when the user is gone, disabled or not signed in."""
    if user is None or not user.is_authenticated:
        return None
    try:
        fresh = selectors.user_get(user_id=str(user.pk))
    except NotFound:
        return None
    if not fresh.is_active:
        return None
    wanted = session.get(PROJECT_KEY) if session is not None else None
    project = selectors.session_project(user=fresh, wanted_id=wanted)
    return services.actor_for_session(user=fresh, project_id=project.id if project is not None else None)


def actor_for(request: HttpRequest) -> Actor:
    """The actor ``dashboard_view`` set on this request (the one way views get it)."""
    return request.actor  # type: ignore[attr-defined,no-any-return]


def dashboard_view(view: View) -> View:
    """Login required; sets ``request.actor``; Forbidden/NotFound from services become 403/404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.actor = session_actor(request)  # type: ignore[attr-defined]
        try:
            return view(request, *args, **kwargs)
        except Forbidden as exc:
            return error_page(request, exc, status=403)
        except NotFound as exc:
            return error_page(request, exc, status=404)

    return wrapper


def error_page(request: HttpRequest, exc: StratusError, *, status: int) -> HttpResponse:
    title = "Not allowed" if status == 403 else "Not found"
    return render(request, "dashboard/error.html", {"title": title, "message": exc.shown, "status": status},
                  status=status)


def is_partial(request: HttpRequest) -> bool:
    return bool(request.GET.get("partial"))


def render_page(request: HttpRequest, template: str, context: dict[str, Any], *, partial: str | None = None,
                status: int = 200) -> HttpResponse:
    """Render the page, or only ``partial`` when the live script asks for it (``?partial=1``)."""
    if partial is not None and is_partial(request):
        return render(request, partial, context, status=status)
    return render(request, template, context, status=status)


def form_error(form: Form, exc: StratusError, field: str | None = None) -> None:
    """Show a service's refusal on the form (on ``field`` when given, else above the form)."""
    form.add_error(field, exc.shown)


def form_action(request: HttpRequest, form: Form, call: Callable[[], T], *, success: Callable[[T], str],
                redirect_to: str | Callable[[T], str], show_error: Callable[[Form, StratusError], None] = form_error,
                passthrough: tuple[type[StratusError], ...] = ()) -> HttpResponse | None:
    """The one form block: on a valid POST run ``call`` (the service); a StratusError (other than
    ``passthrough``, which propagates: e.g. Forbidden for a 403 page) goes on the form through
    ``show_error``; else ``success(result)`` as a message and a redirect to ``redirect_to`` (or
    ``redirect_to(result)``). None: show the form (again)."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        result = call()
    except passthrough:
        raise
    except StratusError as exc:
        show_error(form, exc)
        return None
    messages.success(request, success(result))
    return HttpResponseRedirect(redirect_to(result) if callable(redirect_to) else redirect_to)


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return fallback


def run_action(request: HttpRequest, action: Callable[[], Any], *, success: str, redirect_to: str,
               passthrough: tuple[type[StratusError], ...] = (Forbidden, NotFound)) -> HttpResponse:
    """Run one service call for a button (enable, delete, ...): a message either way, then back to
    ``redirect_to`` (or a safe ``next``). ``passthrough`` errors propagate: by default Forbidden and
    NotFound make a 403/404 page; a view whose URL object was read first may show a NotFound of
    another object (a subnet chosen in the form, ...) as a message instead."""
    try:
        action()
    except passthrough:
        raise
    except StratusError as exc:
        messages.error(request, exc.shown)
    else:
        messages.success(request, success)
    return HttpResponseRedirect(safe_next(request, redirect_to))


@dataclass(frozen=True)
class DetailPage:
    """An object's page whose forms and buttons post to views of their own (a flavor's, a volume type's):
    ``render(request, actor, object_id, **forms)`` draws it, with bound ``forms`` (their errors) in place of
    the empty ones (a 400); ``url_name`` is its URL (it takes the object's id), where a success goes back."""

    render: Callable[..., HttpResponse]
    url_name: str
    passthrough: tuple[type[StratusError], ...] = ()  # refusals a form does not show (e.g. Forbidden: the 403)

    def back(self, object_id: str) -> str:
        return reverse(self.url_name, args=[object_id])

    def posted(self, request: HttpRequest, object_id: str, slot: str, form: Form,
               call: Callable[[Actor, dict[str, Any]], T], *, success: Callable[[T], str]) -> HttpResponse:
        """A form of the page, posted: ``call(actor, form.cleaned_data)`` (the service), then back to the
        page with ``success(result)``; or the page again with the form in its ``slot`` and its errors."""
        actor = actor_for(request)
        done = form_action(request, form, lambda: call(actor, form.cleaned_data), success=success,
                           redirect_to=self.back(object_id), passthrough=self.passthrough)
        return done or self.render(request, actor, object_id, **{slot: form})

    def button(self, request: HttpRequest, object_id: str, call: Callable[[Actor], object], *, success: str,
               passthrough: tuple[type[StratusError], ...] = (Forbidden, NotFound)) -> HttpResponse:
        """A button of the page: ``call(actor)`` (the service), its message either way, back to the page
        (``run_action``)."""
        return run_action(request, lambda: call(actor_for(request)), success=success,
                          redirect_to=self.back(object_id), passthrough=passthrough)


def specs_set_message(specs: Mapping[str, str]) -> str:
    """What setting extra specs says (a flavor's, a volume type's)."""
    return "Set extra spec " + ", ".join(f"{key}={value}" for key, value in specs.items()) + "."
