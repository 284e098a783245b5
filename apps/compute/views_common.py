"""What the instance page's buttons share (its actions and its Volumes section)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from apps.compute.models import Instance
from apps.core.access import may_change
from apps.core.errors import Forbidden, StratusError
from apps.identity.policy import Actor

T = TypeVar("T")


def instance_button(request: HttpRequest, *, actor: Actor, instance: Instance, form: Form, back: str,
                    call: Callable[[dict[str, Any]], T], success: Callable[[T], str],
                    passthrough: tuple[type[StratusError], ...] = ()) -> HttpResponse:
    """One button of the instance page: the form's errors, or the service's refusal, as messages
    (nothing changes; a reader's 403, and ``passthrough``, still make their page), else ``success``;
    then back to ``back``."""
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return HttpResponseRedirect(back)
    try:
        result = call(form.cleaned_data)
    except passthrough:
        raise
    except Forbidden as exc:
        if not may_change(actor, instance):
            raise  # a reader: the 403 page
        messages.error(request, exc.shown)  # e.g. unlocking what an administrator locked
    except StratusError as exc:
        messages.error(request, exc.shown)
    else:
        messages.success(request, success(result))
    return HttpResponseRedirect(back)
