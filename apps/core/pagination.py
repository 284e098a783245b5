"""One pagination for every API (issue 10, item 4): a page of a caller-scoped queryset after a
marker (keyset: ``limit``, ``marker``, sort keys), and the links to the next page in each API's
shape (Nova's and Cinder's ``<collection>_links``, Neutron's next/previous, Glance's first/next).

The marker is looked up among the rows the caller may see, so another project's id answers exactly
as an id that names nothing (no existence oracle)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.core.exceptions import FieldDoesNotExist
from django.db.models import F, Model, Q, QuerySet
from rest_framework.request import Request

M = TypeVar("M", bound=Model)

Order = Sequence[tuple[str, bool]]  # (field, ascending), most significant first


def keyset(qs: QuerySet[M], *, order: Order, marker: str | None, unknown: Callable[[str], Exception],
           marker_in: QuerySet[M] | None = None, marker_field: str | Callable[[str], Q] = "pk") -> QuerySet[M]:
    """``qs`` sorted by ``order``, from the row after the one ``marker`` names (by ``marker_field``,
    or the filter it makes of the marker when the marker may name a row several ways, looked up in
    ``marker_in``, the caller's visible rows, ``qs`` unless given); ``unknown(marker)``
    is raised when it names none of them (``""`` included: no marker is ``None``). A null sorts
    before any value (after it, descending), in the order as in the marker's filter, whatever the
    database's default; ``order`` should end with a unique field so that the marker names one place."""
    if marker is not None:
        named = marker_field(marker) if callable(marker_field) else Q(**{marker_field: marker})
        row = (qs if marker_in is None else marker_in).prefetch_related(None).filter(
            named).values(*[field for field, _ in order]).first()
        if row is None:
            raise unknown(marker)
        after = Q(pk__in=[])
        equal = Q()
        for field, ascending in order:
            value = row[field]
            if value is None:
                step = Q(**{f"{field}__isnull": False}) if ascending else Q(pk__in=[])
                after |= equal & step
                equal &= Q(**{f"{field}__isnull": True})
            else:
                step = Q(**{f"{field}__gt" if ascending else f"{field}__lt": value})
                if not ascending:
                    step |= Q(**{f"{field}__isnull": True})
                after |= equal & step
                equal &= Q(**{field: value})
        qs = qs.filter(after)
    return qs.order_by(*[_ordered(qs.model, field, ascending) for field, ascending in order])


def _ordered(model: type[Model], field: str, ascending: bool) -> Any:
    """The ORDER BY term of ``field``: a column that cannot be null is sorted plainly, so that a btree
    index on it serves the page in either direction (an explicit NULLS FIRST/LAST that differs from
    the index's own order makes PostgreSQL sort the whole table instead); a nullable one (or one across a
    relation, which a LEFT JOIN may make null) keeps nulls first ascending, last descending."""
    column = None
    if "__" not in field:
        try:
            column = model._meta.get_field("id" if field == "pk" else field)
        except FieldDoesNotExist:
            column = None
    if column is not None and not getattr(column, "null", True):
        return F(field).asc() if ascending else F(field).desc()
    return F(field).asc(nulls_first=True) if ascending else F(field).desc(nulls_last=True)


def next_links(request: Request, collection: str, url: str, items: Sequence[Any], *, limit: int | None,
               marker: Callable[[Any], Any]) -> dict[str, list[dict[str, str]]]:
    """Nova's and Cinder's ``{"<collection>_links": [next]}`` to add to a list's body when the page is
    full (``limit`` items; else nothing): the request's query with ``marker`` set to the last item's."""
    if limit is None or not items or len(items) < limit:
        return {}
    params = request.query_params.copy()
    params["marker"] = str(marker(items[-1]))
    return {f"{collection}_links": [{"rel": "next", "href": f"{url}?{params.urlencode()}"}]}


def _without(query: Iterable[tuple[str, Sequence[str]]], *keys: str) -> list[tuple[str, str]]:
    return [(k, v) for k, values in query if k not in keys for v in values]


def next_previous_links(request: Request, url: str, items: Sequence[Any], *, limit: int, marker: str | None,
                        reverse: bool) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links``: "next" while there are more forward, "previous" while there
    are more backward (``page_reverse``); markers are the ends' ids."""
    params = _without(request.query_params.lists(), "marker", "page_reverse")
    links = []
    full = len(items) >= limit
    forward_more = full if not reverse else bool(marker)
    backward_more = bool(marker) if not reverse else full
    if items and forward_more:
        links.append({"rel": "next", "href": f"{url}?{urlencode([*params, ('marker', items[-1].pk)])}"})
    if items and backward_more:
        back = [*params, ("marker", items[0].pk), ("page_reverse", "True")]
        links.append({"rel": "previous", "href": f"{url}?{urlencode(back)}"})
    return links


def first_next_links(path: str, query: dict[str, list[str]], next_marker: str | None) -> dict[str, str]:
    """Glance's ``first`` and ``next`` (a marker while there are more)."""
    params = _without(query.items(), "marker")
    links = {"first": path + (f"?{urlencode(params)}" if params else "")}
    if next_marker:
        links["next"] = f"{path}?" + urlencode([*params, ("marker", next_marker)])
    return links
