"""Quota reset across services: each API's quota DELETE returns only its OWN resources to the
defaults. Nova's os-quota-sets DELETE used to call identity's quota_delete for every resource, so an
admin resetting a project's compute limits silently dropped the limits set through Cinder, Neutron
and Glance too (a project held to 1 volume could then make the default number)."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.identity import quotas
from apps.identity import selectors as identity_selectors
from apps.identity import services as identity_services
from apps.identity.models import QuotaLimit
from tests.api_client import SeededCloud

# one limit per service, each away from its default
LIMITS = {"compute": {"instances": 3, "cores": 5}, "volume": {"volumes": 2, "gigabytes": 7},
          "network": {"network": 4, "port": 9}, "image": {"images": 6}}


@pytest.fixture
def cloud_api() -> str:
    return "compute"


def _limits(project_id: str) -> dict[str, int]:
    return dict(QuotaLimit.objects.filter(project_id=project_id).values_list("resource", "hard_limit"))


def _set_all(cloud: SeededCloud) -> str:
    project_id = cloud.other_project.id
    identity_services.quota_set(actor=cloud.admin_actor, project_id=project_id,
                                limits={r: v for limits in LIMITS.values() for r, v in limits.items()})
    assert _limits(project_id) == {r: v for limits in LIMITS.values() for r, v in limits.items()}
    return project_id


def _delete(cloud: SeededCloud, service: str, project_id: str) -> Any:
    admin_project = cloud.admin_project.id
    url = {"compute": f"/compute/v2.1/os-quota-sets/{project_id}",
           "volume": f"/volume/v3/{admin_project}/os-quota-sets/{project_id}",
           "network": f"/network/v2.0/quotas/{project_id}"}[service]
    return Client().delete(url, HTTP_X_AUTH_TOKEN=cloud.admin_token)


@pytest.mark.parametrize("service", ["compute", "volume", "network"])
def test_quota_delete_resets_only_the_apis_own_resources(cloud: SeededCloud, service: str) -> None:
    project_id = _set_all(cloud)
    response = _delete(cloud, service, project_id)
    assert response.status_code in (200, 202, 204), response.content[:400]
    kept = {r: v for other, limits in LIMITS.items() if other != service for r, v in limits.items()}
    assert _limits(project_id) == kept  # its own are gone, every other service's stay
    defaults = identity_selectors.quota_defaults()
    effective = identity_selectors.quota_limits(project=cloud.other_project)
    for resource in LIMITS[service]:
        assert effective[resource] == defaults[resource]


def test_quota_delete_names_the_resources_it_resets(cloud: SeededCloud) -> None:
    """The identity service resets only what it is told (no "every resource" default), and each
    service's resource names come from the quota registry."""
    project_id = _set_all(cloud)
    identity_services.quota_delete(actor=cloud.admin_actor, project_id=project_id,
                                   resources=quotas.service_resources("compute"))
    assert set(_limits(project_id)) == {r for s, limits in LIMITS.items() if s != "compute" for r in limits}
    assert {"instances", "cores", "ram"} <= set(quotas.service_resources("compute"))
    assert not {"volumes", "network", "images", "floatingip"} & set(quotas.service_resources("compute"))
    with pytest.raises(TypeError):
        identity_services.quota_delete(actor=cloud.admin_actor, project_id=project_id)  # type: ignore[call-arg]


def test_quota_delete_is_admin_only(cloud: SeededCloud) -> None:
    project_id = _set_all(cloud)
    response = Client().delete(f"/compute/v2.1/os-quota-sets/{project_id}", HTTP_X_AUTH_TOKEN=cloud.other_token)
    assert response.status_code == 403
    assert len(_limits(project_id)) == sum(len(v) for v in LIMITS.values())
