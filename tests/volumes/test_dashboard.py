"""The block storage panels through Django's test client: they render for a member and an admin, the
forms go through the services (create blank and from a snapshot, extend, snapshot, delete), a reader
changes nothing, another project's volume is a 404 page, the list costs constant queries."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.volumes import services, states
from apps.volumes.models import Snapshot, Volume
from tests.dashboard.conftest import sign_in
from tests.identity import factories
from tests.volumes.helpers import Cloud

pytestmark = pytest.mark.django_db
D = "/dashboard/volumes"


def client_for(name: str, password: str = factories.PASSWORD) -> Client:
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


def test_volume_panels(cloud: Cloud) -> None:
    alice = client_for("alice")
    page = alice.get(f"{D}/")
    assert page.status_code == 200 and b"Create a volume" in page.content
    response = alice.post(f"{D}/create", {"name": "dash-v", "size": "2", "source": ""})
    assert response.status_code == 302, response.content[:500]
    volume = Volume.objects.get(name="dash-v")
    assert volume.size == 2 and volume.status == states.CREATING
    assert b"dash-v" in alice.get(f"{D}/").content
    services.volume_created(volume_id=volume.id)
    assert alice.post(f"{D}/{volume.id}/extend", {"new_size": "1"}).status_code == 400  # not larger
    assert alice.post(f"{D}/{volume.id}/extend", {"new_size": "3"}).status_code == 302
    services.volume_extended(volume_id=volume.id, size_gb=3)
    assert alice.post(f"{D}/{volume.id}/snapshot", {"name": "dash-s"}).status_code == 302
    snap = Snapshot.objects.get(name="dash-s")
    services.snapshot_created(snapshot_id=snap.id)
    assert b"dash-s" in alice.get(f"{D}/snapshots/").content
    form_page = alice.get(f"{D}/").content.decode()
    assert f"snapshot:{snap.id}" in form_page
    assert alice.post(f"{D}/create", {"name": "from-snap", "size": "3", "source": f"snapshot:{snap.id}"}
                      ).status_code == 302
    assert Volume.objects.get(name="from-snap").snapshot_id == snap.id
    # refused by the service: a message, nothing changes
    alice.post(f"{D}/{volume.id}/delete")
    assert Volume.objects.get(pk=volume.id).status == states.AVAILABLE
    # a reader sees, changes nothing; another project's volume is a 404 page
    rita = client_for("rita")
    assert rita.get(f"{D}/").status_code == 200
    assert rita.post(f"{D}/{volume.id}/delete").status_code == 403
    olga = client_for("olga")
    assert olga.get(f"{D}/{volume.id}/extend").status_code == 404
    assert b"dash-v" not in olga.get(f"{D}/").content
    # delete the snapshot, then the volume
    assert alice.post(f"{D}/snapshots/{snap.id}/delete").status_code == 302
    assert Snapshot.objects.get(pk=snap.id).status == states.DELETING
    # admins see the backends
    admin = client_for("admin", "admin-pw")
    assert b"dash-v" in admin.get(f"{D}/").content  # every project's volumes for an admin
    backends = admin.get(f"{D}/backends/")
    assert backends.status_code == 200 and b"store1@file#file" in backends.content
    assert alice.get(f"{D}/backends/").status_code == 403
    with CaptureQueriesContext(connection) as one:
        alice.get(f"{D}/?partial=1")
    for index in range(5):
        services.volume_create(actor=cloud.member_actor, size=1, name=f"more-{index}")
    with CaptureQueriesContext(connection) as six:
        alice.get(f"{D}/?partial=1")
    assert len(six) == len(one)
