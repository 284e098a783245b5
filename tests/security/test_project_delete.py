"""Deleting a project used to take its rows with it past the services: servers whose guests still ran
on a node (no one could stop them any more) and volumes whose files stayed on a storage node; with a
snapshot it was a 500 (a protected foreign key). A project that still holds servers, volumes or
snapshots is now refused with Keystone's 409 and nothing changes; an empty one is deleted as before."""
import pytest

from apps.compute.models import Instance
from apps.identity.models import Project
from apps.volumes.models import Snapshot, Volume
from tests.volumes.helpers import new_volume, storage_backend

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "volume"


@pytest.fixture
def cloud(cloud):
    storage_backend()
    return cloud


def _delete(cloud, project):
    return cloud.admin.to("identity").delete(f"projects/{project.id}")


def test_a_project_with_a_volume_and_its_snapshot_is_refused_not_a_500(cloud):
    volume = new_volume(cloud.other)
    Volume.objects.filter(id=volume["id"]).update(status="available")
    assert cloud.other.post("snapshots", {"snapshot": {"volume_id": volume["id"]}}).status_code == 202
    response = _delete(cloud, cloud.other_project)
    assert response.status_code == 409, response.content[:300]
    assert response.json()["error"]["code"] == 409
    assert "volumes" in response.json()["error"]["message"]
    assert Project.objects.filter(pk=cloud.other_project.pk).exists()
    assert Volume.objects.filter(id=volume["id"]).exists() and Snapshot.objects.filter(volume_id=volume["id"]).exists()


def test_a_project_with_a_server_is_refused(cloud):
    server = Instance.objects.create(project=cloud.other_project, name="vm", flavor_ref="1", vcpus=1, memory_mb=64)
    response = _delete(cloud, cloud.other_project)
    assert response.status_code == 409, response.content[:300]
    assert "servers" in response.json()["error"]["message"]
    assert Instance.objects.filter(pk=server.pk).exists()
    Instance.objects.filter(pk=server.pk).update(deleted=True)  # a deleted server's row does not hold it
    assert _delete(cloud, cloud.other_project).status_code == 204
    assert not Project.objects.filter(pk=cloud.other_project.pk).exists()


def test_an_empty_project_is_deleted(cloud):
    assert _delete(cloud, cloud.other_project).status_code == 204
    assert not Project.objects.filter(pk=cloud.other_project.pk).exists()
