"""apps/core/pagination.py: the one keyset page (sort keys, a marker scoped to what the caller sees,
nulls) and the links to the next page in each API's shape."""
from __future__ import annotations

from typing import Any

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.core import pagination
from apps.core.errors import BadRequest
from apps.identity.models import DEFAULT_DOMAIN_ID, Domain, Project

pytestmark = pytest.mark.django_db


def _unknown(marker: str) -> Exception:
    return BadRequest(f"Marker {marker} could not be found.")


@pytest.fixture
def projects() -> dict[str, Project]:
    Domain.objects.get_or_create(id=DEFAULT_DOMAIN_ID, defaults={"name": "Default"})
    root = Project.objects.create(name="root", domain_id=DEFAULT_DOMAIN_ID, description="b")
    made = {"root": root}
    for name, description in (("p1", "a"), ("p2", "b"), ("p3", "a")):
        made[name] = Project.objects.create(name=name, domain_id=DEFAULT_DOMAIN_ID, description=description,
                                            parent=root)
    return made


def _names(qs: Any) -> list[str]:
    return [p.name for p in qs]


def test_pages_follow_the_sort_keys_and_the_marker(projects: dict[str, Project]) -> None:
    order = [("description", True), ("name", True)]
    qs = Project.objects.filter(name__in=list(projects))
    assert _names(pagination.keyset(qs, order=order, marker=None, unknown=_unknown)) == ["p1", "p3", "p2", "root"]
    after = pagination.keyset(qs, order=order, marker=projects["p3"].id, unknown=_unknown)
    assert _names(after) == ["p2", "root"]
    backwards = [("description", False), ("name", False)]
    assert _names(pagination.keyset(qs, order=backwards, marker=projects["p2"].id, unknown=_unknown)) == ["p3", "p1"]


def test_a_null_sorts_first_ascending_and_last_descending(projects: dict[str, Project]) -> None:
    qs = Project.objects.filter(name__in=list(projects))
    up = [("parent_id", True), ("name", True)]
    assert _names(pagination.keyset(qs, order=up, marker=None, unknown=_unknown)) == ["root", "p1", "p2", "p3"]
    assert _names(pagination.keyset(qs, order=up, marker=projects["root"].id, unknown=_unknown)) == ["p1", "p2", "p3"]
    down = [("parent_id", False), ("name", False)]
    assert _names(pagination.keyset(qs, order=down, marker=None, unknown=_unknown)) == ["p3", "p2", "p1", "root"]
    assert _names(pagination.keyset(qs, order=down, marker=projects["p1"].id, unknown=_unknown)) == ["root"]
    assert _names(pagination.keyset(qs, order=down, marker=projects["root"].id, unknown=_unknown)) == []


def test_a_marker_the_caller_cannot_see_is_unknown(projects: dict[str, Project]) -> None:
    visible = Project.objects.filter(name__in=["p1", "p2"])
    with pytest.raises(BadRequest, match="Marker nope could not be found"):
        pagination.keyset(visible, order=[("name", True)], marker="nope", unknown=_unknown)
    with pytest.raises(BadRequest):  # an empty marker names nothing either (no marker is None)
        pagination.keyset(visible, order=[("name", True)], marker="", unknown=_unknown)
    with pytest.raises(BadRequest):  # exists, but not among the caller's rows: the same answer
        pagination.keyset(visible, order=[("name", True)], marker=projects["p3"].id, unknown=_unknown)
    # the marker is looked up among the visible rows, the page drawn from the filtered ones
    filtered = visible.filter(name="p2")
    page = pagination.keyset(filtered, order=[("name", True)], marker=projects["p1"].id, unknown=_unknown,
                             marker_in=visible)
    assert _names(page) == ["p2"]


def test_a_marker_may_name_another_field(projects: dict[str, Project]) -> None:
    qs = Project.objects.filter(name__in=list(projects))
    page = pagination.keyset(qs, order=[("name", True)], marker="p2", unknown=_unknown, marker_field="name")
    assert _names(page) == ["p3", "root"]


class _Item:
    def __init__(self, pk: str) -> None:
        self.pk = self.id = pk


def _request(query: str) -> Request:
    return Request(APIRequestFactory().get(f"/x?{query}"))


def test_nova_and_cinder_links_name_the_last_item_when_the_page_is_full() -> None:
    items = [_Item("a"), _Item("b")]
    request = _request("limit=2&marker=z&name=n")
    links = pagination.next_links(request, "things", "http://h/v/things", items, limit=2, marker=lambda i: i.id)
    assert links == {"things_links": [{"rel": "next", "href": "http://h/v/things?limit=2&marker=b&name=n"}]}
    for limit, page in ((3, items), (None, items), (2, [])):
        assert pagination.next_links(request, "things", "http://h/v/things", page, limit=limit,
                                     marker=lambda i: i.id) == {}


def test_neutron_links_go_forward_and_back() -> None:
    items = [_Item("a"), _Item("b")]
    first = pagination.next_previous_links(_request("limit=2"), "http://h/n", items, limit=2, marker=None,
                                           reverse=False)
    assert first == [{"rel": "next", "href": "http://h/n?limit=2&marker=b"}]
    middle = pagination.next_previous_links(_request("marker=x&limit=2"), "http://h/n", items, limit=2,
                                            marker="x", reverse=False)
    assert middle == [{"rel": "next", "href": "http://h/n?limit=2&marker=b"},
                      {"rel": "previous", "href": "http://h/n?limit=2&marker=a&page_reverse=True"}]
    last_back = pagination.next_previous_links(_request("marker=x&limit=3&page_reverse=True"), "http://h/n", items,
                                               limit=3, marker="x", reverse=True)
    assert last_back == [{"rel": "next", "href": "http://h/n?limit=3&marker=b"}]


def test_glance_links_are_first_and_next() -> None:
    query = {"limit": ["2"], "marker": ["m"]}
    assert pagination.first_next_links("/v2/images", query, "b") == {"first": "/v2/images?limit=2",
                                                                     "next": "/v2/images?limit=2&marker=b"}
    assert pagination.first_next_links("/v2/images", {}, None) == {"first": "/v2/images"}
