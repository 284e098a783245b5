"""The one routing convention of the dashboard panels: a component's urls.py declares its resources,
and ``urls()`` derives every path, view and URL name from them, so no panel spells a path() by hand.

    from apps.compute import views
    from apps.dashboard.routes import Resource, urls

    urlpatterns = urls(views, Resource("flavors", "flavor", "flavor_id", actions=("delete",)))

A ``Resource(collection, thing, key)`` serves, under /dashboard/<component>/:

    what                 path                          view                     URL name
    index                <collection>/                 <thing>s                 <name>s
    new=("create",)      <collection>/create           <thing>_create           <name>_create
    detail=True          <collection>/<key>/           <thing>_detail           <thing>
    actions=("edit",)    <collection>/<key>/edit       <thing>_edit             <name>_edit

``name`` (the URL names' prefix) defaults to ``thing``; "" names the routes by the action alone
(``extend``). The component's own collection is ``""``: its index is ``""`` named ``index`` (view
``index`` when ``thing`` is "" too). An action is its path below the collection or item
(``gateway/clear`` -> ``<thing>_gateway_clear``), or ``"<path>=<action>"`` where the two differ
(``"interfaces/add=interface_add"``, ``"share/<str:member_id>/remove=unshare"``). ``key`` is the id's
path parameter (``"server_id"``, ``"int:node_id"``). ``pages`` are single pages whose view and URL name
are the same (``{"admin/usage/": "usage"}``).

A view ``urls()`` cannot find in the module is an AttributeError when the URLconf loads, not a 404.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from django.urls import URLPattern, path


@dataclass(frozen=True)
class Resource:
    collection: str
    thing: str
    key: str = ""
    name: str | None = None        # the URL names' prefix (default: thing)
    index: bool | str = True       # serve <collection>/ (a str: its view, when not <thing>s)
    slash: bool = True             # the index path ends with "/"
    detail: bool = False
    new: tuple[str, ...] = ()      # actions on the collection
    actions: tuple[str, ...] = ()  # actions on one item

    def __post_init__(self) -> None:
        if (self.detail or self.actions) and not self.key:
            raise ValueError(f"{self.collection or 'the component'}: a detail page or item actions need a key")

    def routes(self) -> list[tuple[str, str, str]]:
        """(route, view, URL name) for each page, in a fixed order: index, new, detail, actions."""
        prefix = self.thing if self.name is None else self.name
        item = f"{self.collection}/{self._param()}" if self.collection else self._param()
        rows = []
        if self.index:
            view = self.index if isinstance(self.index, str) else f"{self.thing}s" if self.thing else "index"
            route = f"{self.collection}/" if self.collection and self.slash else self.collection
            rows.append((route, view, f"{prefix}s" if self.collection else "index"))
        rows += [self._action(self.collection, spec, prefix) for spec in self.new]
        if self.detail:
            rows.append((f"{item}/", f"{self.thing}_detail", self.thing))
        rows += [self._action(item, spec, prefix) for spec in self.actions]
        return rows

    def _param(self) -> str:
        return f"<{self.key}>" if ":" in self.key else f"<str:{self.key}>"

    def _action(self, base: str, spec: str, prefix: str) -> tuple[str, str, str]:
        route, _, action = spec.partition("=")
        action = action or route.replace("/", "_")
        return (f"{base}/{route}" if base else route, _joined(self.thing, action), _joined(prefix, action))


def _joined(prefix: str, action: str) -> str:
    return f"{prefix}_{action}" if prefix else action


def urls(views: ModuleType, *resources: Resource, pages: dict[str, str | Callable] | None = None) -> list[URLPattern]:
    """The urlpatterns of ``resources`` and ``pages``, their views taken from ``views`` (a page's view may
    also be given as the function, from another module). The component's own collection goes last: its
    ``<key>`` would otherwise take the other collections' and the pages' paths for ids."""
    own = [row for resource in resources if not resource.collection for row in resource.routes()]
    rows = [row for resource in resources if resource.collection for row in resource.routes()]
    rows += [(route, view, view if isinstance(view, str) else view.__name__) for route, view in (pages or {}).items()]
    return [path(route, getattr(views, view) if isinstance(view, str) else view, name=name)
            for route, view, name in rows + own]
