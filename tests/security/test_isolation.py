"""Tenants apart: the isolation battery (tests/security/battery.py) over every declared resource of
identity, images, networks, compute, volumes, object storage, telemetry and orchestration, against one seeded cloud
per class; and the live socket, which never forwards another project's events."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import Client, override_settings
from django.utils import timezone

from apps.identity import services as identity
from apps.identity.models import Project
from tests.security import battery
from tests.security.battery import Caller, World

ALL_CASES = list(battery.cases())


def _login(name: str, project: Project) -> Caller:
    from tests.identity import factories

    token, actor = factories.login(name, project)
    return Caller(name=name, token=token, project_id=project.id, user_id=actor.user.id)


def _node(host: str) -> Any:
    """A compute node that stays up for the whole battery (on a loaded machine the run outlasts the
    down time: its heartbeat is dated an hour ahead, as the fuzz battery's nodes)."""
    from apps.compute.models import ComputeNode

    return ComputeNode.objects.create(
        host=host, hypervisor_hostname=f"{host}.local", hypervisor_type="QEMU", libvirt_uri="test:///default",
        vcpus=8, memory_mb=16384, local_gb=200, availability_zone="nova", cpu_allocation_ratio=1.0,
        ram_allocation_ratio=1.0, disk_allocation_ratio=1.0,
        last_heartbeat=timezone.now() + timezone.timedelta(hours=1))


def build_world() -> World:
    """Project A (alice member, rita reader) with one of every resource, made through the services
    as the API would; project B (bob member); the admin. Its own world, not the ``cloud`` fixture: it is
    built once per class (``world``) under django_db_blocker, and the ``cloud`` fixture is per test."""
    from apps.compute import services as compute
    from apps.compute import states as compute_states
    from apps.compute.services import server_reports, servers
    from apps.core.models import TaskRecord
    from apps.images import services as images
    from apps.networks import services as networks
    from apps.volumes import services as volumes
    from tests.identity import factories

    factories.seed()
    admin_actor = factories.admin_actor()
    a = identity.project_create(actor=admin_actor, name="iso-a")
    b = identity.project_create(actor=admin_actor, name="iso-b")
    factories.user_with_role(admin_actor, "iso-alice", "member", a)
    factories.user_with_role(admin_actor, "iso-rita", "reader", a)
    factories.user_with_role(admin_actor, "iso-bob", "member", b)
    token, actor = factories.login("iso-alice", a)
    member = Caller(name="alice", token=token, project_id=a.id, user_id=actor.user.id)
    admin_token, _ = identity.token_issue(auth=factories.password_auth("admin", "admin-pw", project="admin"))
    admin = Caller(name="admin", token=admin_token, project_id=admin_actor.project_id, user_id=admin_actor.user.id)
    ids: dict[str, str] = {}
    names: dict[str, str] = {}

    def keep(key: str, obj_id: Any, name: str) -> None:
        ids[key], names[key] = str(obj_id), name

    # identity
    keep("identity.project", a.id, "iso-a")
    keep("identity.user", actor.user.id, "iso-alice")
    cred, _ = identity.application_credential_create(actor=actor, user_id=actor.user.id, name="iso-cred-a")
    keep("identity.application_credential", cred.id, "iso-cred-a")
    keep("identity.application_credential_under_self", cred.id, "iso-cred-a")
    ec2 = identity.ec2_credential_create(actor=actor, user_id=actor.user.id, project_id=a.id)
    keep("identity.credential", ec2.id, "iso-ec2-a")
    access = identity.ec2_blob(ec2)["access"]
    keep("identity.ec2_credential", access, "iso-ec2-a")
    keep("identity.ec2_credential_under_self", access, "iso-ec2-a")
    # images (A's private image, with data)
    image = images.image_create(actor=actor, name="iso-image-a", disk_format="raw", container_format="bare",
                                visibility="private")
    image = images.image_upload(actor=actor, image_id=image.id, chunks=[b"\0" * 1024])
    keep("images.image", image.id, "iso-image-a")
    shared = images.image_create(actor=admin_actor, name="iso-shared-with-a", disk_format="raw",
                                 container_format="bare", visibility="shared")
    shared = images.image_upload(actor=admin_actor, image_id=shared.id, chunks=[b"\0" * 1024])
    images.member_create(actor=admin_actor, image_id=shared.id, member_id=a.id)
    images.member_update(actor=actor, image_id=shared.id, member_id=a.id, status="accepted")
    keep("images.shared_image", shared.id, "iso-shared-with-a")
    # networks
    external = networks.network_create(actor=admin_actor, name="iso-ext", external=True)
    networks.subnet_create(actor=admin_actor, network_id=external.id, cidr="172.31.77.0/24", ip_version=4)
    net = networks.network_create(actor=actor, name="iso-net-a")
    subnet = networks.subnet_create(actor=actor, network_id=net.id, cidr="10.77.0.0/24", ip_version=4,
                                    name="iso-subnet-a")
    pool = networks.subnetpool_create(actor=actor, name="iso-pool-a", prefixes=["10.200.0.0/16"],
                                      default_prefixlen=24)
    port = networks.port_create(actor=actor, network_id=net.id, name="iso-port-a")
    router = networks.router_create(actor=actor, name="iso-router-a")
    fip = networks.floatingip_create(actor=actor, floating_network_id=external.id, description="iso-fip-a")
    group = networks.security_group_create(actor=actor, name="iso-sg-a")
    rule = networks.security_group_rule_create(actor=actor, security_group_id=group.id, direction="ingress",
                                               protocol="tcp", port_range_min=4242, port_range_max=4242,
                                               description="iso-rule-a")
    keep("networks.network", net.id, "iso-net-a")
    keep("networks.subnet", subnet.id, "iso-subnet-a")
    keep("networks.subnetpool", pool.id, "iso-pool-a")
    keep("networks.port", port.id, "iso-port-a")
    keep("networks.router", router.id, "iso-router-a")
    keep("networks.floatingip", fip.id, "iso-fip-a")
    keep("networks.security_group", group.id, "iso-sg-a")
    keep("networks.security_group_rule", rule.id, "iso-rule-a")
    # compute
    _node("iso-node")
    server_net = networks.network_create(actor=actor, name="iso-servers")
    networks.subnet_create(actor=actor, network_id=server_net.id, cidr="10.78.0.0/24", ip_version=4)
    request_id = f"req-{uuid.uuid4()}"
    (server,) = servers.server_create(actor=actor, name="iso-server-a", image_ref=image.id, flavor_ref="1",
                                      networks=[{"uuid": server_net.id}], metadata={"k": "v"}, tags=["red"],
                                      request_id=request_id)
    server_reports.server_spawned(instance_id=server.id, host="iso-node", power_state=compute_states.RUNNING)
    keep("compute.server", server.id, "iso-server-a")
    keypair, _ = compute.keypair_create(actor=actor, name="iso-key-a")
    keep("compute.keypair", keypair.name, "iso-key-a-never-listed")
    names["compute.keypair"] = "iso-key-a"
    server_group = compute.server_group_create(actor=actor, name="iso-group-a", policy="affinity")
    flavor = compute.flavor_create(actor=admin_actor, name="iso-flavor-a", ram=64, vcpus=1, disk=1,
                                   is_public=False)
    compute.flavor_access_add(actor=admin_actor, flavor_id=flavor.flavorid, project_id=a.id)
    compute.flavor_extra_specs_set(actor=admin_actor, flavor_id=flavor.flavorid, specs={"k": "v"})
    keep("compute.private_flavor", flavor.flavorid, "iso-flavor-a")
    keep("compute.server_group", server_group.id, "iso-group-a")
    # volumes
    volumes.backend_report(host="iso-store", capacity_gb=100, free_gb=90, path="/nonexistent")
    volume = volumes.volume_create(actor=actor, size=1, name="iso-volume-a", metadata={"k": "v"})
    volumes.volume_created(volume_id=volume.id)
    snapshot = volumes.snapshot_create(actor=actor, volume_id=volume.id, name="iso-snap-a", metadata={"k": "v"})
    volumes.snapshot_created(snapshot_id=snapshot.id)
    attached = volumes.volume_create(actor=actor, size=1, name="iso-volume-attached")
    volumes.volume_created(volume_id=attached.id)
    attachment = volumes.attachment_create(actor=actor, volume_id=attached.id, instance_uuid=server.id)
    keep("volumes.volume", volume.id, "iso-volume-a")
    keep("volumes.snapshot", snapshot.id, "iso-snap-a")
    keep("volumes.attachment", attachment.id, "iso-volume-attached")
    # object storage: A's container and an object in it (whose bytes name it, so that a GET shows it)
    from apps.objects import services as objects

    objects.container_create(actor=actor, name="iso-cont-a")
    objects.object_put(actor=actor, container="iso-cont-a", name="iso-cont-a.txt",
                       stream=[b"iso-cont-a.txt: A's data"])
    keep("objects.container", "iso-cont-a", "iso-cont-a")
    keep("objects.object", "iso-cont-a.txt", "iso-cont-a.txt")
    # telemetry: A's instance resource with its cpu_util metric, and a metric on no resource
    from apps.telemetry import services as telemetry

    res = telemetry.resource_create(actor=actor, type_name="instance", body={
        "id": str(uuid.uuid4()), "flavor_id": "1", "host": "iso-node", "display_name": "iso-res-a",
        "metrics": {"cpu_util": {}}})
    keep("telemetry.resource", res.id, "iso-res-a")
    keep("telemetry.metric", telemetry.metric_create(actor=actor, name="iso-metric-a").id, "iso-metric-a")
    alarm = telemetry.alarm_create(actor=actor, name="iso-alarm-a", alarm_type="gnocchi_resources_threshold",
                                   rule={"metric": "cpu_util", "resource_type": "instance", "resource_id": str(res.id),
                                         "threshold": 1, "aggregation_method": "mean"}, alarm_actions=["log://"])
    keep("telemetry.alarm", alarm.id, "iso-alarm-a")
    # a scheduled report of A, and one run of it with its files (CSV, HTML, PDF) in the store
    report = telemetry.report_schedule_create(actor=actor, name="iso-report-a", frequency="daily",
                                              recipients=["iso-a@example.com"], project_id=a.id)
    report_run = telemetry.report_run(actor=actor, schedule_id=str(report.id))
    telemetry.report_run_execute(run_id=str(report_run.id))
    keep("telemetry.report_schedule", report.id, "iso-report-a")
    keep("telemetry.report_run", report_run.id, "iso-report-a")
    # orchestration: A's stack, created to its end (the worker's steps, in process)
    from apps.orchestration import services as orchestration
    from apps.orchestration.models import StackResource
    from workers import orchestration as heat_tasks

    stack = orchestration.stack_create(actor=actor, name="iso-stack-a", template={
        "heat_template_version": "2016-10-14", "resources": {"r": {"type": "OS::Heat::RandomString"}},
        "outputs": {"o": {"value": {"get_attr": ["r", "value"]}}}})
    orchestration.stack_advance(stack_id=stack.id)
    heat_tasks.resource_run(StackResource.objects.get(stack=stack).id)
    keep("orchestration.stack", stack.id, "iso-stack-a")
    keep("orchestration.stack-by-id", stack.id, "iso-stack-a")
    config = orchestration.software_config_create(actor=actor, body={
        "name": "iso-config-a", "group": "script", "config": "#!/bin/sh\necho a"})
    deployment = orchestration.software_deployment_create(actor=actor, body={
        "config_id": config.id, "server_id": "iso-server-a", "input_values": {"x": 1}})
    keep("orchestration.software-config", config.id, "iso-config-a")
    keep("orchestration.software-deployment", deployment.id, "iso-server-a")
    # the task log: the record of the work A's volume sent to its storage node
    keep("core.task", TaskRecord.objects.get(project_id=a.id, resource_id=volume.id, action="create").id, volume.id)

    # B's own: a network, a router, a security group, a server, a volume (what B's requests name A's in)
    _, bob = factories.login("iso-bob", b)
    b_net = networks.network_create(actor=bob, name="iso-net-b")
    b_subnet = networks.subnet_create(actor=bob, network_id=b_net.id, cidr="10.79.0.0/24", ip_version=4)
    b_pool = networks.subnetpool_create(actor=bob, name="iso-pool-b", prefixes=["10.201.0.0/16"],
                                        default_prefixlen=24)
    b_port = networks.port_create(actor=bob, network_id=b_net.id, name="iso-port-b")
    compute.keypair_create(actor=bob, name="iso-key-b")
    b_fip = networks.floatingip_create(actor=bob, floating_network_id=external.id)
    b_server_group = compute.server_group_create(actor=bob, name="iso-group-b", policy="affinity")
    b_router = networks.router_create(actor=bob, name="iso-router-b")
    b_group = networks.security_group_create(actor=bob, name="iso-sg-b")
    objects.container_create(actor=bob, name="iso-cont-b")
    b_resource = telemetry.resource_create(actor=bob, type_name="generic", body={
        "id": str(uuid.uuid4()), "metrics": {"cpu_util": {}}})
    b_metric = telemetry.metric_create(actor=bob, name="iso-metric-b")
    public = images.image_create(actor=admin_actor, name="iso-public", disk_format="raw", container_format="bare",
                                 visibility="public")
    public = images.image_upload(actor=admin_actor, image_id=public.id, chunks=[b"\0" * 1024])
    (b_server,) = servers.server_create(actor=bob, name="iso-server-b", image_ref=public.id, flavor_ref="1",
                                        networks=[{"uuid": b_net.id}], request_id=f"req-{uuid.uuid4()}")
    server_reports.server_spawned(instance_id=b_server.id, host="iso-node", power_state=compute_states.RUNNING)
    b_volume = volumes.volume_create(actor=bob, size=1, name="iso-volume-b")
    volumes.volume_created(volume_id=b_volume.id)
    b_snapshot = volumes.snapshot_create(actor=bob, volume_id=b_volume.id, name="iso-snap-b")
    volumes.snapshot_created(snapshot_id=b_snapshot.id)

    values = {"b_network": b_net.id, "b_router": b_router.id, "b_group": b_group.id, "b_server": b_server.id,
              "b_volume": b_volume.id, "image_public": public.id,
              "b_subnet": b_subnet.id, "b_pool": b_pool.id, "b_port": b_port.id, "b_server_group": b_server_group.id,
              "b_snapshot": b_snapshot.id, "b_fip": b_fip.id, "b_metric": str(b_metric.id),
              "b_resource": str(b_resource.id),
              "user": member.user_id, "other_project": b.id, "project": a.id, "image": image.id,
              "network": net.id, "subnet": subnet.id, "device": str(uuid.UUID(int=7)), "mac": port.mac_address,
              "external": external.id, "fip": str(fip.floating_ip_address), "group": group.id,
              "network_name": "iso-servers", "request_id": request_id, "volume": volume.id, "server": server.id,
              "reservation": server.reservation_id}
    dashboard = Client()
    signed_in = dashboard.post("/dashboard/login", {"domain": "Default", "username": "iso-bob",
                                                    "password": factories.PASSWORD})
    assert signed_in.status_code == 302, signed_in.content[:300]
    for own in (f"compute/instances/{b_server.id}/", f"networks/{b_net.id}/", f"volumes/{b_volume.id}/",
                f"networks/routers/{b_router.id}/", f"networks/security-groups/{b_group.id}/"):
        # the control: B's member sees B's own pages (a refusal of A's is not a signed-out redirect)
        shown = dashboard.get(f"/dashboard/{own}")
        assert shown.status_code == 200, (own, shown.status_code)
    return World(member=member, reader=_login("iso-rita", a), outsider=_login("iso-bob", b), admin=admin,
                 ids=ids, names=names, values=values, dashboard=dashboard)


class _Tally:
    """Counts the battery's outcomes and prints one line at the end of the run (make test shows it)."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "test_isolation.py::TestIsolation::" in report.nodeid and (report.when == "call" or report.skipped
                                                                          or report.failed):
            outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        detail = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes.items()))
        terminalreporter.write_line(f"isolation battery: {len(ALL_CASES)} cases over {len(battery.RESOURCES)} "
                                    f"resources and {len(battery.REFERENCES)} references ({detail})")


@pytest.fixture(scope="module", autouse=True)
def _tally(request: pytest.FixtureRequest) -> None:
    manager = request.config.pluginmanager
    if not manager.has_plugin("stratus-isolation-tally"):
        manager.register(_Tally(), "stratus-isolation-tally")


@pytest.fixture(scope="class")
def world(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[World]:
    """One seeded cloud for the whole battery, in a transaction rolled back at the end (each case
    runs in a savepoint of it, so whatever a leak wrote is undone before the next case)."""
    from apps.images import storage
    from apps.objects import storage as object_storage

    image_dir = tmp_path_factory.mktemp("iso-images")
    object_dir = tmp_path_factory.mktemp("iso-objects")
    with django_db_blocker.unblock(), override_settings(STRATUS_IMAGE_STORE="file",
                                                        STRATUS_IMAGE_DIR=str(image_dir),
                                                        STRATUS_OBJECT_STORE="file",
                                                        STRATUS_OBJECT_DIR=str(object_dir)):
        storage.reset()
        object_storage.reset()
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            storage.reset()
            object_storage.reset()


@pytest.mark.django_db
class TestIsolation:
    @pytest.mark.parametrize("case", ALL_CASES)
    def test_case(self, world: World, case: Any) -> None:
        battery.run(world, case)


def test_battery_covers_every_api() -> None:
    """Every API is in the table, and the table is large enough to mean something."""
    apis = {getattr(case.values[0], "api", None) or case.values[0].resource.api for case in ALL_CASES
            if not isinstance(case.values[0], battery.Page)}
    assert apis == {"identity", "images", "networks", "compute", "volumes", "objects", "telemetry",
                    "orchestration"}
    assert len(ALL_CASES) > 300


# ---- the live socket -------------------------------------------------------------------------------

async def _heard(socket: Any, wanted: set[str]) -> set[str]:
    """The ids of the events the socket gets until every one of ``wanted`` came (3 s at most each)."""
    heard: set[str] = set()
    while not wanted <= heard:
        message = await socket.receive_json_from(timeout=3)
        if message.get("type") == "event":
            heard.add(message["event"]["id"])
    return heard


@pytest.mark.django_db(transaction=True)
class TestLiveEvents:
    def test_outsider_receives_none_of_a_projects_events(self, transactional_db: Any, settings: Any,
                                                          tmp_path: Any) -> None:
        """B's member (subscribed, asking to watch A) hears nothing of A's writes, nor of the admin's
        key pair for A's user; A's member hears of them."""
        from asgiref.sync import sync_to_async

        from apps.compute import services as compute
        from apps.images import services as images
        from apps.images import storage
        from apps.networks import services as networks
        from apps.volumes import services as volumes
        from tests.identity import factories
        from tests.live_socket import communicator

        settings.STRATUS_IMAGE_STORE, settings.STRATUS_IMAGE_DIR = "file", str(tmp_path)
        storage.reset()
        # its own world: also a plain member of the admin project (carol), whom the seeded cloud lacks
        seed = factories.seed()
        admin_actor = factories.admin_actor()
        a = identity.project_create(actor=admin_actor, name="live-a")
        b = identity.project_create(actor=admin_actor, name="live-b")
        alice = factories.user_with_role(admin_actor, "live-alice", "member", a)
        bob = factories.user_with_role(admin_actor, "live-bob", "member", b)
        # a plain member of the admin project (no admin role): not an admin, and not in A
        carol = factories.user_with_role(admin_actor, "live-carol", "member", seed["projects"]["admin"])
        _, actor = factories.login("live-alice", a)
        volumes.backend_report(host="live-store", capacity_gb=100, free_gb=90, path="/nonexistent")

        def writes_in_a() -> set[str]:
            net = networks.network_create(actor=actor, name="live-net-a")
            group = networks.security_group_create(actor=actor, name="live-sg-a")
            image = images.image_create(actor=actor, name="live-image-a", disk_format="raw", container_format="bare")
            volume = volumes.volume_create(actor=actor, size=1, name="live-volume-a")
            server_group = compute.server_group_create(actor=actor, name="live-group-a", policy="affinity")
            compute.keypair_create(actor=actor, name="live-key-a")
            compute.keypair_create(actor=admin_actor, name="live-key-by-admin", user_id=alice.id)
            compute.keypair_delete(actor=admin_actor, name="live-key-by-admin", user_id=alice.id)
            return {net.id, group.id, image.id, volume.id, server_group.id, "live-key-a"}

        async def run() -> None:
            owner = communicator(alice, a.id)
            outsiders = [communicator(bob, b.id), communicator(carol, seed["projects"]["admin"].id)]
            for socket in (owner, *outsiders):
                assert (await socket.connect())[0]
                await socket.receive_json_from()  # hello
            for socket in outsiders:
                await socket.send_json_to({"action": "watch", "project_id": a.id})
            made = await sync_to_async(writes_in_a)()
            await _heard(owner, made)  # every write was published (to A's group)...
            for socket in outsiders:   # ...and none of it reached B's member or the admin project's
                await socket.send_json_to({"action": "ping"})
                assert await socket.receive_json_from() == {"type": "pong"}  # the watch of A was not granted
                assert await socket.receive_nothing(timeout=0.5)
                await socket.disconnect()
            await owner.disconnect()

        async_to_sync(run)()
