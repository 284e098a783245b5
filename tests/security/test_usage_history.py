"""Usage is computed from what the cloud itself recorded (the lifecycle resources and their history,
apps.telemetry.services.lifecycle): a project's members may read those resources through Gnocchi's API
but not rewrite or erase them (Gnocchi's admin_or_creator), so they cannot hide what they used."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from apps.telemetry import selectors, services
from apps.telemetry.models import Resource, ResourceRevision
from apps.telemetry.services.lifecycle import Record

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
RID = "6b2f0a3e-1c1d-4f57-9a0e-3f4d5e6a7b8c"


@pytest.fixture
def cloud_api() -> str:
    return "metric"


def test_members_cannot_rewrite_or_erase_the_recorded_history(cloud: Any) -> None:
    demo = cloud.demo_project.id
    services.lifecycle_apply(records=[Record(
        kind="instance", resource_id=RID, project_id=demo, user_id="u", event="create", at=T0,
        attributes={"flavor_id": "1", "flavor_name": "m1.tiny", "host": "h", "display_name": "vm", "vcpus": 8,
                    "memory_mb": 512, "root_gb": 1, "ephemeral_gb": 0})])

    def hours() -> float:
        return selectors.usage_summary(caller=cloud.admin_actor, start=T0, end=T0 + dt.timedelta(hours=10),
                                       now=T0 + dt.timedelta(hours=10)).total.vcpu_hours

    assert hours() == pytest.approx(80)
    assert cloud.member.get(f"resource/instance/{RID}").status_code == 200  # theirs to read
    for attempt in (cloud.member.patch(f"resource/instance/{RID}", {"ended_at": T0.isoformat()}),
                    cloud.member.patch(f"resource/instance/{RID}", {"vcpus": 0}),
                    cloud.member.delete(f"resource/instance/{RID}"),
                    cloud.member.delete(f"resource/generic/{RID}")):
        assert attempt.status_code == 403, attempt.content
    erased = cloud.member.call("DELETE", "resource/instance", {"=": {"id": RID}})
    assert erased.status_code == 200 and erased.json() == {"deleted": 0}
    assert cloud.other.delete(f"resource/instance/{RID}").status_code == 404  # another project's: not found
    assert hours() == pytest.approx(80) and not ResourceRevision.objects.exists()
    # the member's own resources stay theirs to change; an admin may correct the recorded ones
    made = cloud.member.post("resource/generic", {"id": "mine"})
    assert made.status_code == 201 and cloud.member.delete("resource/generic/mine").status_code == 204
    assert cloud.admin.patch(f"resource/instance/{RID}", {"vcpus": 4}).status_code == 200
    assert Resource.objects.get(original_resource_id=RID).attributes["vcpus"] == 4
