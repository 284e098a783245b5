"""apps/core/microversion.py: the one negotiation of ``OpenStack-API-Version`` (Nova's and Cinder's)."""
from __future__ import annotations

import re

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from apps.core.errors import BadRequest
from apps.core.microversion import NotAcceptable, negotiate

INVALID = "Invalid version {wanted}"


def _asked(**headers: str) -> tuple[int, int]:
    request = Request(APIRequestFactory().get("/", **headers))
    return negotiate(request, service="compute", minimum=(2, 1), maximum=(2, 40), invalid=INVALID,
                     legacy_header="HTTP_X_OPENSTACK_NOVA_API_VERSION")


def test_nothing_asked_is_the_minimum_and_latest_the_maximum() -> None:
    assert _asked() == (2, 1)
    assert _asked(HTTP_OPENSTACK_API_VERSION="compute latest") == (2, 40)
    assert _asked(HTTP_OPENSTACK_API_VERSION="compute LATEST") == (2, 40)


def test_the_services_own_entry_counts_and_the_legacy_header_after_it() -> None:
    assert _asked(HTTP_OPENSTACK_API_VERSION="volume 3.10, compute 2.26") == (2, 26)
    assert _asked(HTTP_OPENSTACK_API_VERSION="volume 3.10") == (2, 1)
    assert _asked(HTTP_X_OPENSTACK_NOVA_API_VERSION="2.11") == (2, 11)
    assert _asked(HTTP_OPENSTACK_API_VERSION="compute 2.3", HTTP_X_OPENSTACK_NOVA_API_VERSION="2.11") == (2, 3)


def test_malformed_is_400_and_out_of_range_406() -> None:
    with pytest.raises(BadRequest, match=re.escape("Invalid version 2.x")):
        _asked(HTTP_OPENSTACK_API_VERSION="compute 2.x")
    for outside in ("2.0", "2.41", "3.1"):
        with pytest.raises(NotAcceptable, match=re.escape(
                f"Version {outside} is not supported by the API. Minimum is 2.1 and maximum is 2.40.")):
            _asked(HTTP_OPENSTACK_API_VERSION=f"compute {outside}")


def test_without_a_legacy_header_only_the_service_entry_counts() -> None:
    request = Request(APIRequestFactory().get("/", HTTP_X_OPENSTACK_NOVA_API_VERSION="3.5"))
    assert negotiate(request, service="volume", minimum=(3, 0), maximum=(3, 44), invalid=INVALID) == (3, 0)
