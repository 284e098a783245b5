"""The block storage panels through Django's test client: they render for a member and an admin, the
forms go through the services (create blank and from a snapshot, extend, snapshot, delete; attach to
an instance and detach, from the Volumes panel and from the instance page), a reader changes nothing,
another project's volume or instance is a 404 page, a refusal of a service is a message, the lists
cost constant queries, the overview shows the volume quotas.

Attaching on real rows: a compute node registered with a fresh heartbeat and no agent, so the node's
reports are made by calling the compute side's report services as its task would."""
from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.compute import states as compute_states
from apps.compute.models import BlockDeviceMapping, Flavor, Instance
from apps.compute.services import volumes as attach_services
from apps.compute.services.server_reports import server_spawned
from apps.compute.services.servers import server_create
from apps.images import services as image_services
from apps.networks import services as network_services
from apps.volumes import services, states
from apps.volumes.models import Snapshot, Volume
from tests.api_client import SeededCloud
from tests.compute.test_servers_support import image_dir_fixture, make_node  # noqa: F401
from tests.dashboard.conftest import sign_in
from tests.identity import factories
from tests.images.disks import qcow2_bytes

pytestmark = pytest.mark.django_db
D = "/dashboard/volumes"


def client_for(name: str, password: str = factories.PASSWORD) -> Client:
    client = Client()
    assert sign_in(client, name, password).status_code == 302
    return client


def test_volume_panels(cloud: SeededCloud) -> None:
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
    snapshots_page = alice.get(f"{D}/snapshots/").content.decode()
    assert "dash-s" in snapshots_page and f'href="{D}/{volume.id}/"' in snapshots_page  # its volume's page
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


# ---- attaching and detaching ---------------------------------------------------------------------

C = "/dashboard/compute/instances"


def messages_of(response: Any) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', response.content.decode()))


def boot(cloud: SeededCloud, actor: Any, name: str, project_network: str) -> Instance:
    """A server of ``actor``'s project, spawned on node-a as the node would report it."""
    from apps.images.models import Image

    image = Image.objects.get(name="cirros")
    created = server_create(
        actor=actor, name=name, image_ref=image.id, flavor_ref=Flavor.objects.get(name="m1.tiny").flavorid,
        networks=[{"uuid": project_network}], request_id=f"req-{uuid.uuid4()}")[0]
    server_spawned(instance_id=created.id, host=created.host, power_state=compute_states.RUNNING)
    return Instance.objects.get(pk=created.pk)


def available(actor: Any, name: str, size: int = 1) -> Volume:
    volume = services.volume_create(actor=actor, size=size, name=name)
    services.volume_created(volume_id=volume.id)
    return Volume.objects.get(pk=volume.id)


def node_attaches(server: Instance, volume: Volume) -> None:
    """What workers.compute_volumes.attach_volume reports once the disk is in the domain."""
    assert attach_services.server_volume_connecting(instance_id=server.id, volume_id=volume.id, host=server.host)
    assert attach_services.server_volume_attached(instance_id=server.id, volume_id=volume.id, host=server.host)


def node_detaches(server: Instance, volume: Volume) -> None:
    assert attach_services.server_volume_detached(instance_id=server.id, volume_id=volume.id, host=server.host)


@pytest.fixture
def servers(cloud: SeededCloud, image_dir: Any) -> dict[str, Instance]:
    """vm1 and vm2 in demo, vm-o in other; one compute node up."""
    image = image_services.image_create(actor=cloud.admin_actor, name="cirros", disk_format="qcow2",
                                        container_format="bare", visibility="public")
    image_services.image_upload(actor=cloud.admin_actor, image_id=image.id, chunks=[qcow2_bytes()])
    make_node("node-a")
    made = {}
    for actor, names in ((cloud.member_actor, ("vm1", "vm2")), (cloud.other_actor, ("vm-o",))):
        network = network_services.network_create(actor=actor, name=f"net-{names[0]}")
        network_services.subnet_create(actor=actor, network_id=network.id, cidr="10.0.0.0/24", ip_version=4,
                                       name=f"sub-{names[0]}")
        for name in names:
            made[name] = boot(cloud, actor, name, network.id)
    return made


def test_attach_and_detach_from_the_volumes_panel(cloud: SeededCloud, servers: dict[str, Instance]) -> None:
    vm1 = servers["vm1"]
    data = available(cloud.member_actor, "data-1", size=2)
    alice = client_for("alice")
    row = alice.get(f"{D}/").content.decode()
    assert f'href="{D}/{data.id}/attach"' in row
    form = alice.get(f"{D}/{data.id}/attach")
    assert form.status_code == 200
    page = form.content.decode()
    assert f'value="{vm1.id}"' in page and f'value="{servers["vm2"].id}"' in page
    assert servers["vm-o"].id not in page  # only the volume's project's instances
    # a bad device name is the form's error; nothing changes
    bad = alice.post(f"{D}/{data.id}/attach", {"server": vm1.id, "device": "vdb; rm"})
    assert bad.status_code == 400 and b"A device name looks like /dev/vdb." in bad.content
    assert Volume.objects.get(pk=data.id).status == states.AVAILABLE
    response = alice.post(f"{D}/{data.id}/attach", {"server": vm1.id, "device": ""}, follow=True)
    assert response.status_code == 200
    assert "Attaching volume data-1 to instance vm1 on /dev/vdb." in messages_of(response)
    bdm = BlockDeviceMapping.objects.get(instance=vm1, volume_id=data.id)
    assert bdm.status == "attaching" and bdm.device_name == "/dev/vdb"
    assert Volume.objects.get(pk=data.id).status == states.RESERVED
    # the service refuses a second attach (not available): the form shows its message, no traceback
    again = alice.post(f"{D}/{data.id}/attach", {"server": servers["vm2"].id})
    assert again.status_code == 400 and b"status must be &#x27;available&#x27;" in again.content
    node_attaches(vm1, data)
    assert Volume.objects.get(pk=data.id).status == states.IN_USE
    # the table: the instance's name linked with the device, a detach button, no attach link
    table = alice.get(f"{D}/?partial=1").content.decode()
    row = re.search(rf'<tr data-id="{data.id}".*?</tr>', table, re.S).group(0)  # type: ignore[union-attr]
    assert 'data-status="in-use"' in row and f'href="{C}/{vm1.id}/"' in row and ">vm1</a>" in row
    assert "/dev/vdb" in row and 'data-action="detach"' in row and 'data-action="attach"' not in row
    # the volume's page: its attachment with the instance linked and the device
    detail = alice.get(f"{D}/{data.id}/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert 'id="attachments-table"' in html and f'href="{C}/{vm1.id}/">vm1</a>' in html and "/dev/vdb" in html
    assert "data-live=\"volume\"" in html
    # a reader sees the page but may not detach; another project's volume is a 404
    rita = client_for("rita")
    assert rita.get(f"{D}/{data.id}/").status_code == 200
    assert rita.post(f"{D}/{data.id}/detach", {"server": vm1.id}).status_code == 403
    assert rita.get(f"{D}/{data.id}/attach").status_code == 403
    olga = client_for("olga")
    for url in (f"{D}/{data.id}/", f"{D}/{data.id}/attach"):
        assert olga.get(url).status_code == 404
    assert olga.post(f"{D}/{data.id}/detach", {"server": vm1.id}).status_code == 404
    assert olga.post(f"{D}/{data.id}/attach", {"server": servers["vm-o"].id}).status_code == 404
    # detach: not from an instance it is not on (a message), then from vm1
    wrong = alice.post(f"{D}/{data.id}/detach", {"server": servers["vm2"].id}, follow=True)
    assert "is not attached to instance" in messages_of(wrong)
    done = alice.post(f"{D}/{data.id}/detach", {"server": vm1.id}, follow=True)
    assert "Detaching volume data-1." in messages_of(done)
    assert Volume.objects.get(pk=data.id).status == states.DETACHING
    assert BlockDeviceMapping.objects.get(instance=vm1, volume_id=data.id).status == "detaching"
    node_detaches(vm1, data)
    assert Volume.objects.get(pk=data.id).status == states.AVAILABLE
    assert not BlockDeviceMapping.objects.filter(volume_id=data.id).exists()
    assert "Not attached." in alice.get(f"{D}/{data.id}/").content.decode()


def test_the_instance_page_shows_attaches_and_detaches_volumes(cloud: SeededCloud,
                                                              servers: dict[str, Instance]) -> None:
    vm1 = servers["vm1"]
    data = available(cloud.member_actor, "data-2", size=3)
    spare = available(cloud.member_actor, "spare")
    theirs = available(cloud.other_actor, "theirs")
    alice = client_for("alice")
    html = alice.get(f"{C}/{vm1.id}/").content.decode()
    assert 'id="instance-volumes"' in html and "No volumes attached." in html
    assert f'data-live-src="{C}/{vm1.id}/volumes/"' in html
    form = re.search(r'<form[^>]*id="attach-volume-form".*?</form>', html, re.S).group(0)  # type: ignore[union-attr]
    assert f'value="{data.id}"' in form and f'value="{spare.id}"' in form and theirs.id not in form
    # attach from the page: a message, the mapping and the volume move
    response = alice.post(f"{C}/{vm1.id}/volumes/attach", {"volume": data.id, "device": "/dev/vdc"}, follow=True)
    assert "Attaching volume data-2 to instance vm1 on /dev/vdc." in messages_of(response)
    assert BlockDeviceMapping.objects.get(instance=vm1, volume_id=data.id).device_name == "/dev/vdc"
    node_attaches(vm1, data)
    section = alice.get(f"{C}/{vm1.id}/volumes/").content.decode()  # the live section alone
    assert "<html" not in section
    row = re.search(rf'<tr data-id="{data.id}".*?</tr>', section, re.S).group(0)  # type: ignore[union-attr]
    assert 'data-device="/dev/vdc"' in row and "3 GiB" in row and "in-use" in row and 'data-action="detach"' in row
    assert f'value="{data.id}"' not in section.split('id="attach-volume-form"')[1]  # no longer available
    # refusals of the service are messages on the page, nothing changes
    busy = alice.post(f"{C}/{vm1.id}/volumes/attach", {"volume": data.id}, follow=True)
    assert busy.status_code == 200 and "already attached" in messages_of(busy)
    taken = alice.post(f"{C}/{vm1.id}/volumes/attach", {"volume": spare.id, "device": "/dev/vdc"}, follow=True)
    assert "is in use" in messages_of(taken)
    assert Volume.objects.get(pk=spare.id).status == states.AVAILABLE
    empty = alice.post(f"{C}/{vm1.id}/volumes/attach", {"volume": ""}, follow=True)
    assert "This field is required." in messages_of(empty)
    # another project's volume or instance: 404 pages
    assert alice.post(f"{C}/{vm1.id}/volumes/attach", {"volume": theirs.id}).status_code == 404
    olga = client_for("olga")
    assert olga.get(f"{C}/{vm1.id}/volumes/").status_code == 404
    assert olga.post(f"{C}/{vm1.id}/volumes/attach", {"volume": theirs.id}).status_code == 404
    assert olga.post(f"{C}/{vm1.id}/volumes/{data.id}/detach").status_code == 404
    # a reader sees the section without forms and may not act
    rita = client_for("rita")
    reader_html = rita.get(f"{C}/{vm1.id}/").content.decode()
    assert 'id="instance-volumes"' in reader_html and 'id="attach-volume-form"' not in reader_html
    assert rita.post(f"{C}/{vm1.id}/volumes/{data.id}/detach").status_code == 403
    # detach from the page
    done = alice.post(f"{C}/{vm1.id}/volumes/{data.id}/detach", follow=True)
    assert "Detaching volume data-2 from instance vm1." in messages_of(done)
    assert Volume.objects.get(pk=data.id).status == states.DETACHING
    node_detaches(vm1, data)
    assert "No volumes attached." in alice.get(f"{C}/{vm1.id}/volumes/").content.decode()
    # the admin acts on demo's instance from its page too
    admin = client_for("admin", "admin-pw")
    assert admin.get(f"{C}/{vm1.id}/").status_code == 200
    admin.post(f"{C}/{vm1.id}/volumes/attach", {"volume": spare.id})
    assert Volume.objects.get(pk=spare.id).status == states.RESERVED


def test_the_volume_lists_cost_constant_queries_with_attachments(cloud: SeededCloud,
                                                                 servers: dict[str, Instance]) -> None:
    vm1 = servers["vm1"]
    alice = client_for("alice")

    def attach(name: str) -> None:
        volume = available(cloud.member_actor, name)
        # no request id: the service gives the action log one (the instance page links each action by it)
        attach_services.server_volume_attach(actor=cloud.member_actor, server_id=vm1.id, volume_id=volume.id)
        node_attaches(vm1, volume)

    def count(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert alice.get(url).status_code == 200
        return len(ctx.captured_queries)

    attach("first")
    one = (count(f"{D}/?partial=1"), count(f"{C}/{vm1.id}/volumes/"), count(f"{C}/{vm1.id}/"))
    for index in range(4):
        attach(f"more-{index}")
    available(cloud.member_actor, "loose")
    five = (count(f"{D}/?partial=1"), count(f"{C}/{vm1.id}/volumes/"), count(f"{C}/{vm1.id}/"))
    assert five == one
    html = alice.get(f"{C}/{vm1.id}/volumes/").content.decode()
    assert all(f"/dev/vd{letter}" in html for letter in "bcdef")


def test_the_overview_shows_the_volume_quotas(cloud: SeededCloud) -> None:
    available(cloud.member_actor, "q1", size=3)
    volume = available(cloud.member_actor, "q2", size=2)
    services.snapshot_create(actor=cloud.member_actor, volume_id=volume.id, name="q-snap")
    html = client_for("alice").get("/dashboard/").content.decode()
    chart = r'<figure class="donut-card" data-id="(\w+)" data-resource="\w+" data-in-use="(\d+)" data-limit="(-?\d+)"'
    charts = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(chart, html)}
    numbers = {name: charts[name] for name in ("volumes", "gigabytes", "snapshots")}
    assert numbers == {"volumes": ("2", "10"), "gigabytes": ("7", "1000"), "snapshots": ("1", "10")}, numbers
    assert "7 GiB of 1,000 GiB" in html
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-id="(\w+)".*?</tr>', html, re.S)}
    # a volume type's own rows (volumes___DEFAULT__ ...) show only once an admin limits them
    assert not [name for name in rows if name.endswith("__DEFAULT__")], sorted(rows)
    services.volume_quota_update(actor=cloud.admin_actor, project_id=cloud.demo_project.id,
                                 limits={"gigabytes___DEFAULT__": 50})
    html = client_for("alice").get("/dashboard/").content.decode()
    rows = {m.group(1): m.group(0) for m in re.finditer(r'<tr data-id="(\w+)".*?</tr>', html, re.S)}
    assert [name for name in rows if name.endswith("__DEFAULT__")] == ["gigabytes___DEFAULT__"], sorted(rows)
    assert re.findall(r'<td class="num">([^<]*)</td>', rows["gigabytes___DEFAULT__"]) == ["7 GiB", "50 GiB"]
