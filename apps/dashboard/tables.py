"""The one live table of the dashboard: every list panel declares a ``Table`` (its columns with the
sort keys of its API, the selector call that reads one page, its row and bulk actions, the live
events it follows) and renders it with ``{% include "dashboard/_table.html" %}``.

    INSTANCES = Table(
        name="instances", url_name="compute:instances", live="instance",
        columns=(Column("Name", sort="display_name"), Column("Status", sort="vm_state"), ...),
        page=instance_page,                  # (actor, TableQuery) -> rows, through the API's selector
        row_template="compute/_instance_row.html", default_sort="created_at",
        actions=(Action("delete", "Delete", call=instance_delete, success=..., bulk=True, ...),))

    @dashboard_view
    def instances(request):
        return INSTANCES.render(request, "compute/instances.html", {...})

Sorting, filtering and paging happen in the selector (constant queries whatever the list's length):
a page is ``page_size`` rows after a marker in the chosen order (keyset, ``apps/core/pagination``),
one more row tells whether there is a next page; the previous page is read backwards from the
page's first row (Horizon's way). The partial (``?partial=1``, with the same query) is what the live
script fetches on every event and on every (re)connection of the socket.

An action is one service call for one row. Its view (``Table.action_view``) serves both a row's
button (``<pk>/delete``: a message, then back) and the bulk form (``ids`` repeated: one call per row,
each row's outcome, as JSON for static/dashboard/table.js, or messages without it). A table inside an
object's page (a security group's rules) is built per request (``replace(TABLE, url_args=..., actions=...)``)
and its actions served by ``nested_action_view``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core.access import may_change
from apps.core.errors import Forbidden, NotFound, StratusError
from apps.dashboard.shell import View, actor_for, dashboard_view, is_partial, render_page, safe_next
from apps.identity import selectors as identity_selectors
from apps.identity.policy import Actor

MAX_PAGE = 100
MAX_BULK = 200


@dataclass(frozen=True)
class TableQuery:
    """One page as a selector is asked for it: the API's sort key and direction, the filter text,
    ``limit`` rows after ``marker`` (the key of the row before them, in this order: its id, or what
    ``Table.key`` names, a key pair's name, a flavor's flavorid)."""

    sort: str
    ascending: bool
    search: str = ""
    limit: int = 26
    marker: str | None = None

    @property
    def direction(self) -> str:
        return "asc" if self.ascending else "desc"


@dataclass(frozen=True)
class Column:
    """A header; ``sort`` is the API's sort key for it (None: not sortable); ``when`` names a
    context flag the column needs (``all_projects``, ``is_admin``)."""

    label: str
    sort: str | None = None
    when: str | None = None
    css: str = ""


@dataclass(frozen=True)
class Action:
    """One service call on one row. ``call(actor, pk)`` makes it (and returns what ``success``
    names); ``allowed(row)`` says whether a row offers it (the service checks again); ``bulk``:
    also a button of the selection's bar; ``confirm``: a question naming the row (``{name}``), or
    ``confirm(row)`` making it; ``raises``: the errors a row's own URL (``<pk>/<action>``) lets through
    as a 403/404 page (the others, and every error in a bulk, are that row's outcome)."""

    name: str
    label: str
    call: Callable[[Actor, str], Any]
    success: Callable[[Any], str]
    allowed: Callable[[Any], bool] = lambda _row: True
    bulk: bool = False
    danger: bool = False
    confirm: str | Callable[[Any], str] = ""
    icon: str = ""
    row: bool = True
    raises: tuple[type[StratusError], ...] = (Forbidden, NotFound)

    def question(self, row: Any, name: str) -> str:
        return self.confirm(row) if callable(self.confirm) else self.confirm.format(name=name)


@dataclass
class Page:
    rows: list[Any]
    query: TableQuery
    previous: str | None = None  # query strings of the neighbour pages
    next: str | None = None
    first: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    url_name: str
    columns: tuple[Column, ...]
    page: Callable[[Actor, TableQuery], list[Any]]
    row_template: str
    act_name: str  # the URL name of its action view (the bulk form's, the row buttons')
    default_sort: str
    default_ascending: bool = False
    live: str = ""
    actions: tuple[Action, ...] = ()
    page_size: int = 25
    search_label: str = "Filter by name"
    empty: str = "Nothing here yet."
    row_data: Callable[[Any], Mapping[str, Any]] = lambda row: {"name": getattr(row, "name", "") or ""}
    url_args: tuple[Any, ...] = field(default=())
    key: str = "pk"  # the row's attribute that names it: its actions' ``pk``, the pages' marker (``name``...)
    params: tuple[tuple[str, str], ...] = ()  # query parameters every link of the table keeps (a folder's prefix)
    action_column: bool = True  # False: its rows have nothing to act on (no Actions header, no cell)

    # ---- reading a page ---------------------------------------------------------------------

    def sort_keys(self) -> set[str]:
        return {c.sort for c in self.columns if c.sort}

    def query(self, request: HttpRequest) -> tuple[TableQuery, bool]:
        """The page the request asks for (unknown sort keys and sizes fall back to the defaults),
        and whether it is read backwards (``rev``: the page before ``marker``)."""
        params = request.GET
        sort = params.get("sort", "")
        if sort not in self.sort_keys():
            sort = self.default_sort
        direction = params.get("dir", "")
        ascending = direction == "asc" if direction in ("asc", "desc") else (
            self.default_ascending if sort == self.default_sort else True)
        search = params.get("q", "").strip()[:100]
        marker = params.get("marker") or None
        return TableQuery(sort=sort, ascending=ascending, search=search, limit=self.page_size + 1,
                          marker=marker), bool(params.get("rev")) and marker is not None

    def read(self, actor: Actor, request: HttpRequest) -> Page:
        query, backwards = self.query(request)
        asked = replace(query, ascending=not query.ascending) if backwards else query
        try:
            rows = list(self.page(actor, asked))
        except StratusError:  # a marker row that is gone (deleted meanwhile): the first page
            if query.marker is None:
                raise
            rows, backwards, query = self._first(actor, query)
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        if backwards:
            rows.reverse()
        page = Page(rows=rows, query=query)
        base = {**dict(self.params), "sort": query.sort, "dir": query.direction,
                **({"q": query.search} if query.search else {})}
        pk = self._pk
        if rows and (more if not backwards else True):
            page.next = urlencode({**base, "marker": pk(rows[-1])})
        if rows and (more if backwards else query.marker is not None):
            page.previous = urlencode({**base, "marker": pk(rows[0]), "rev": 1})
        if page.previous is not None:
            page.first = urlencode(base)
        return page

    def _first(self, actor: Actor, query: TableQuery) -> tuple[list[Any], bool, TableQuery]:
        query = replace(query, marker=None)
        return list(self.page(actor, query)), False, query

    def _pk(self, row: Any) -> str:
        return str(getattr(row, self.key))

    # ---- rendering ----------------------------------------------------------------------------

    def url(self) -> str:
        return reverse(self.url_name, args=self.url_args)

    def action_url(self) -> str:
        return reverse(self.act_name, args=self.url_args)

    def context(self, request: HttpRequest, extra: Mapping[str, Any]) -> dict[str, Any]:
        page = self.read(actor_for(request), request)
        query = page.query
        flags = {k for k, v in extra.items() if v is True}
        columns = [c for c in self.columns if c.when is None or c.when in flags]
        headers = []
        for column in columns:
            link = None
            if column.sort:
                ascending = not query.ascending if column.sort == query.sort else True
                params = {**dict(self.params), "sort": column.sort, "dir": "asc" if ascending else "desc",
                          **({"q": query.search} if query.search else {})}
                link = urlencode(params)
            headers.append({"column": column, "link": link, "sorted": column.sort == query.sort,
                            "ascending": query.ascending})
        bulk = [a for a in self.actions if a.bulk]
        rows = []
        for row in page.rows:
            data = self.row_data(row)
            label = data.get("name") or self._pk(row)
            actions = [{"name": a.name, "label": a.label, "danger": a.danger, "icon": a.icon,
                        "confirm": a.question(row, label)}
                       for a in self.actions if a.row and a.allowed(row)]
            rows.append({"row": row, "pk": self._pk(row), "data": data, "actions": actions,
                         "selectable": any(a.allowed(row) for a in bulk)})
        state = {**dict(self.params), "sort": query.sort, "dir": query.direction,
                 **({"q": query.search} if query.search else {})}
        if query.marker:
            state.update({"marker": query.marker, **({"rev": 1} if request.GET.get("rev") else {})})
        return {**extra, "table": {
            "name": self.name, "headers": headers, "rows": rows, "page": page, "row_template": self.row_template,
            "bulk": bulk, "live": self.live, "search": query.search, "search_label": self.search_label,
            "empty": self.empty, "url": self.url(), "action_url": self.action_url(), "state": urlencode(state),
            "width": len(columns) + 1 + (1 if self.action_column else 0) + (1 if bulk else 0),
            "params": self.params, "action_column": self.action_column,
        }}

    def render(self, request: HttpRequest, template: str, extra: Mapping[str, Any], *,
               status: int = 200) -> HttpResponse:
        """The page, or (``?partial=1``) only the table's live part."""
        context = self.context(request, extra)
        if is_partial(request):
            return render_page(request, template, context, partial="dashboard/_table_live.html", status=status)
        return render_page(request, template, context, status=status)

    def page_view(self, template: str, context: Callable[[Actor], Mapping[str, Any]]) -> View:
        """The list page of a panel that shows the table and ``context(actor)`` (its flags, a form)."""

        @dashboard_view
        def view(request: HttpRequest) -> HttpResponse:
            return self.render(request, template, context(actor_for(request)))

        return view

    # ---- actions ------------------------------------------------------------------------------

    def action_view(self, only: str | None = None) -> View:
        """POST ``action`` with ``ids`` (the bulk form, the row buttons), or, for the view of
        action ``only``, a ``pk`` from the URL (``<id>/delete``): one service call per row. JSON
        (``{"results": [{"id", "ok", "message"}]}``) when asked for it, else a message per row and
        back to ``next`` or the table."""

        @require_POST
        @dashboard_view
        def view(request: HttpRequest, **url: str) -> HttpResponse:
            return self.act(request, only, list(url.values())[-1] if url else None)

        return view

    def act(self, request: HttpRequest, only: str | None, pk: str | None) -> HttpResponse:
        """What ``action_view`` answers: ``pk`` is the row of a row's own URL (None: the bulk form's ``ids``)."""
        by_name = {a.name: a for a in self.actions}
        actor = actor_for(request)
        name = only or request.POST.get("action", "")
        action = by_name.get(name)
        single = pk is not None
        ids = [pk] if pk is not None else request.POST.getlist("ids")[:MAX_BULK]
        wants_json = "application/json" in request.headers.get("Accept", "")
        if action is None or (not single and not action.bulk):
            if wants_json:
                return JsonResponse({"error": f"Unknown action {name!r}."}, status=400)
            messages.error(request, f"Unknown action {name!r}.")
            return HttpResponseRedirect(safe_next(request, self.url()))
        results = [self._run(actor, action, row, single=single) for row in ids]
        if wants_json:
            return JsonResponse({"results": results})
        if not ids:
            messages.info(request, "Nothing was selected.")
        for result in results:
            (messages.success if result["ok"] else messages.error)(request, result["message"])
        return HttpResponseRedirect(safe_next(request, self.url()))

    @staticmethod
    def _run(actor: Actor, action: Action, pk: str, *, single: bool) -> dict[str, Any]:
        """One row's call and its outcome. A row's own URL lets ``action.raises`` through (by default
        Forbidden and NotFound: a 403/404 page, as any view); in a bulk each row says what happened to it."""
        passthrough = action.raises if single else ()
        try:
            result = action.call(actor, pk)
        except passthrough:
            raise
        except StratusError as exc:
            return {"id": pk, "ok": False, "message": exc.shown}
        return {"id": pk, "ok": True, "message": action.success(result)}


def nested_action_view(make: Callable[..., Table], only: str | None = None, *, key: str = "pk") -> View:
    """The action view of a table inside an object's page (a security group's rules, a project's
    members): ``make(actor, **url)`` reads the page's object through its selector (a 404 for what the
    caller may not see) and builds its table (``url_args``, actions bound to that object) from the URL's
    arguments but ``key``, the row of a row's own URL (``<group>/rules/<rule_id>/delete``); without
    it, the bulk form's ``ids``. Then as ``Table.action_view``: one service call per row."""

    @require_POST
    @dashboard_view
    def view(request: HttpRequest, **url: str) -> HttpResponse:
        pk = url.pop(key, None)
        return make(actor_for(request), **url).act(request, only, pk)

    return view


def deleting(get: Callable[..., Any], delete: Callable[..., Any], key: str, *, noun: str,
             success: Callable[[Any], str],
             allowed: Callable[[Any], bool] = lambda row: bool(getattr(row, "can_write", False))) -> Action:
    """The delete action of a table (a row's button and a bulk action): ``get(actor=, <key>=pk)``, the
    selector (a 404 for what the caller may not see), then ``delete(actor=, <key>=pk)``, the service;
    ``success(row)`` is its message; it asks "Delete <noun> <name>?" first."""
    def call(actor: Actor, pk: str) -> Any:
        row = get(actor=actor, **{key: pk})
        delete(actor=actor, **{key: pk})
        return row

    return Action("delete", "Delete", call=call, success=success, allowed=allowed, bulk=True, danger=True,
                  confirm=f"Delete {noun} {{name}}?", icon="trash")


def writable(actor: Actor, rows: list[Any]) -> list[Any]:
    """``rows`` with ``can_write``: whether ``actor`` may change each (access.may_change, no query)."""
    for row in rows:
        row.can_write = may_change(actor, row)
    return rows



def with_project_names(actor: Actor, rows: list[Any], *, attr: str = "project_id") -> list[Any]:
    """``rows`` with ``project_name``, the name of each one's project (the id in ``attr``), for the admins'
    Project column (templates/dashboard/_project_cell.html): one query for the page's projects, whatever
    its length; nothing is read for anyone else (they have no such column)."""
    ids = {getattr(row, attr) for row in rows if getattr(row, attr, None)}
    names = identity_selectors.project_names(actor=actor, project_ids=ids) if actor.is_admin and ids else {}
    for row in rows:
        row.project_name = names.get(getattr(row, attr, None) or "", "")
    return rows
