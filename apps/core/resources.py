"""The API toolkit's generic collection and member views and their routes (issue 10, item 4).

Every OpenStack API serves most of its resources the same way: a collection (GET lists, POST
creates; Nova and Cinder add a detailed list under ``<path>/detail`` where POST is a 405), a member
(GET shows, PUT or PATCH updates, DELETE deletes), a member's ``/action`` and the views below a
member (``metadata``, ``tags``, ...). The views here do the common part (the bodies' keys, the
statuses, the 405 of a detailed list) and leave an API's view its own hooks: which rows, how one
renders, the page links, what a create or an update calls. An API's flavour (its error format, its
microversions) comes from its own base view (a subclass of ``OpenStackView``), named before these.

The write verbs are mixins (``Creatable``, ``Updatable``/``Patchable``, ``Deletable``), so a view
answers only the methods it declares (and the fuzz battery finds only those).

``Routes`` declares where one resource's views are served; ``routes()`` makes an API's URL patterns
from its declarations, so an API's urls module lists resources, not path tables.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django.urls import URLPattern, re_path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import OpenStackView

# ---- views --------------------------------------------------------------------------------------


class Collection(OpenStackView):
    """GET: ``{plural: [render(row) for row in rows()], **links(rows)}``. ``detail`` is the
    detailed list's flag (``<path>/detail``: the same view with ``detail = True``, which
    ``Routes(detail=True)`` makes as ``<Collection>Detail``)."""

    key: ClassVar[str]
    plural: ClassVar[str]
    detail: ClassVar[bool] = False

    def rows(self, request: Request, **kwargs: str) -> Sequence[Any]:
        raise NotImplementedError

    def render(self, request: Request, row: Any, **kwargs: str) -> dict[str, Any]:
        raise NotImplementedError

    def links(self, request: Request, rows: Sequence[Any], **kwargs: str) -> dict[str, Any]:
        """What the list's body has beside the items (the page links); nothing by default."""
        return {}

    def get(self, request: Request, **kwargs: str) -> Response:
        rows = self.rows(request, **kwargs)
        return Response({self.plural: [self.render(request, row, **kwargs) for row in rows],
                         **self.links(request, rows, **kwargs)})


class Creatable:
    """POST: ``{key: create()}`` with ``created_status``; a 405 (in the API's format) on a detailed list."""

    created_status: ClassVar[int] = 201

    def create(self, request: Request, **kwargs: str) -> dict[str, Any]:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: str) -> Response:
        if self.detail:
            self.http_method_not_allowed(request)
        return Response({self.key: self.create(request, **kwargs)}, status=self.created_status)


class Member(OpenStackView):
    """GET: ``{key: render(show())}``; the URL's keywords (the ids) reach every hook. The member is
    the URL keyword ``id``; ``show`` is the selector ``lookup(actor=, <arg>=<id>)`` unless overridden
    (``arg``, the selector's and the services' name for the id, is ``id`` unless given)."""

    key: ClassVar[str]
    id: ClassVar[str] = "pk"
    arg: ClassVar[str | None] = None
    lookup: ClassVar[Callable[..., Any]]

    def ident(self, kwargs: Mapping[str, str]) -> dict[str, str]:
        """The member's id as the selectors and services take it."""
        return {self.arg or self.id: kwargs[self.id]}

    def show(self, request: Request, **kwargs: str) -> Any:
        return type(self).lookup(actor=request.auth, **self.ident(kwargs))

    def render(self, request: Request, row: Any, **kwargs: str) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request, **kwargs: str) -> Response:
        return Response({self.key: self.render(request, self.show(request, **kwargs), **kwargs)})


class _Updates:
    updated_status: ClassVar[int] = 200

    def update(self, request: Request, **kwargs: str) -> dict[str, Any]:
        """The updated member's body."""
        raise NotImplementedError

    def _updated(self, request: Request, **kwargs: str) -> Response:
        return Response({self.key: self.update(request, **kwargs)}, status=self.updated_status)


class Updatable(_Updates):
    """PUT: ``{key: update()}``."""

    def put(self, request: Request, **kwargs: str) -> Response:
        return self._updated(request, **kwargs)


class Patchable(_Updates):
    """PATCH: ``{key: update()}`` (Keystone)."""

    def patch(self, request: Request, **kwargs: str) -> Response:
        return self._updated(request, **kwargs)


class Deletable:
    """DELETE: ``remove()`` (the service ``deleter(actor=, <arg>=<id>)`` unless overridden), answered
    by ``deleted_status`` and ``deleted_body()`` (none by default)."""

    deleted_status: ClassVar[int] = 204
    deleter: ClassVar[Callable[..., Any]]

    def remove(self, request: Request, **kwargs: str) -> Any:
        return type(self).deleter(actor=request.auth, **self.ident(kwargs))

    def delete(self, request: Request, **kwargs: str) -> Response:
        return Response(self.deleted_body(request, self.remove(request, **kwargs)), status=self.deleted_status)

    def deleted_body(self, request: Request, removed: Any) -> Any:
        return None


# ---- routes -------------------------------------------------------------------------------------

View = type[APIView]


@dataclass(frozen=True)
class Routes:
    """Where one resource is served, below an API's prefix: ``path`` (a regex piece) is the
    collection, ``path/detail`` the detailed list (with ``detail``), ``beside`` other views next to the members
    (``summary``, ``default``), ``path/{id}`` the member and, below it, ``action`` and ``below``
    (``{"metadata": ..., "metadata/{key}": ...}``). ``{name}`` in a path is a URL keyword; the
    member's is ``id``, else the member view's ``id``.
    ``collection_end`` replaces the API's end for the collection (Cinder's ``volumes`` takes no
    trailing slash: ``volumes/`` is its 404)."""

    path: str
    collection: View | None = None
    member: View | None = None
    id: str | None = None
    detail: bool = False
    action: View | None = None
    beside: Mapping[str, View] = field(default_factory=dict)
    below: Mapping[str, View] = field(default_factory=dict)
    collection_end: str | None = None

    def views(self) -> list[tuple[str, View, str | None]]:
        """(path, view, end) in matching order: fixed names before the member's ``{id}``."""
        member = f"{self.path}/{{{self.id or getattr(self.member, 'id', 'pk')}}}"
        detailed = None
        if self.detail and self.collection is not None:
            detailed = type(f"{self.collection.__name__}Detail", (self.collection,), {"detail": True})
        found: list[tuple[str, View | None, str | None]] = [
            (self.path, self.collection, self.collection_end), (f"{self.path}/detail", detailed, None),
            *((f"{self.path}/{sub}", view, None) for sub, view in self.beside.items()),
            (f"{member}/action", self.action, None),
            *((f"{member}/{sub}", view, None) for sub, view in self.below.items()),
            (member, self.member, None)]
        return [(path, view, end) for path, view, end in found if view is not None]


Route = Routes | tuple[str, View]

_KEYWORD = re.compile(r"\{(\w+)\}")


def routes(prefix: str, *declared: Route, end: str = r"/?$", ident: str = r"[^/]+") -> list[URLPattern]:
    """The URL patterns of ``declared`` (``Routes``, or ``(path, view)`` for a lone view), each path
    after ``prefix`` and before ``end``, a ``{name}`` in it matching ``ident``."""
    patterns = []
    for route in declared:
        views = route.views() if isinstance(route, Routes) else [(route[0], route[1], None)]
        for path, view, own_end in views:
            regex = prefix + _KEYWORD.sub(rf"(?P<\1>{ident})", path) + (end if own_end is None else own_end)
            patterns.append(re_path(regex, view.as_view()))
    return patterns
