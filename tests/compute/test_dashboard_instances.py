"""The Instances panel, the instance page, the launch wizard and the admin compute panels through
Django's test client, on real rows: compute nodes registered with a fresh heartbeat (no node agent
runs, so the node reports are made by calling S's report services as a node would)."""
from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.compute import states
from apps.compute.models import ComputeNode, Instance, InstanceAction
from apps.compute.services.server_lifecycle import server_lock
from apps.compute.services.server_reports import server_spawned, server_task_done
from apps.identity import services as identity_services
from apps.identity.models import Project
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, make_node, reload  # noqa: F401
from tests.dashboard.conftest import sign_in
from tests.identity import factories

pytestmark = pytest.mark.django_db(transaction=False)

D = "/dashboard/compute"


def client_for(name: str) -> Client:
    client = Client()
    password = {"admin": "admin-pw", "demo": "demo-pw"}.get(name, factories.PASSWORD)
    assert sign_in(client, name, password).status_code == 302
    return client


def messages_of(response: Any) -> str:
    return " ".join(re.findall(r'class="alert[^"]*"[^>]*>([^<]*)<', response.content.decode()))


def spawned(instance: Instance) -> Instance:
    server_spawned(instance_id=instance.id, host=instance.host, power_state=states.RUNNING)
    return reload(instance)


def row(html: str, instance: Instance) -> str:
    match = re.search(rf'<tr data-id="{instance.id}".*?</tr>', html, re.S)
    assert match, f"no row for {instance.name}"
    return match.group(0)


# ---- the list --------------------------------------------------------------------------------------

def test_instances_list_shows_the_columns_and_only_the_project(env: Env) -> None:
    mine = spawned(env.boot(name="web-1"))
    other_net = Project.objects.get(name="other")
    assert other_net
    alice = client_for("alice")
    html = alice.get(D + "/instances/").content.decode()
    assert 'data-section="Compute"' in html and "<span>Instances</span>" in html
    assert 'data-live="instance"' in html  # live refresh of the table by the socket's instance events
    r = row(html, mine)
    assert 'data-status="ACTIVE"' in r and "cirros" in r and "m1.tiny" in r and "Running" in r
    assert "10.0.0." in r and "private" in r and "nova" in r
    assert 'data-action="stop"' in r and 'data-action="start"' not in r
    # olga (another project) sees nothing of it, and its page is a 404
    olga = client_for("olga")
    assert mine.id not in olga.get(D + "/instances/").content.decode()
    assert olga.get(f"{D}/instances/{mine.id}/").status_code == 404
    # the partial the live script fetches
    partial = alice.get(D + "/instances/?partial=1").content.decode()
    assert "<html" not in partial and mine.id in partial


def _list_queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(D + "/instances/?partial=1")
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_instances_list_costs_constant_queries(env: Env) -> None:
    alice = client_for("alice")
    for i in range(3):
        spawned(env.boot(name=f"a{i}"))
    small = _list_queries(alice)
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"instances": 50, "cores": 50, "ram": 100000})
    for i in range(17):
        spawned(env.boot(name=f"b{i}"))
    assert Instance.objects.filter(deleted=False).count() == 20
    large = _list_queries(alice)
    assert large == small, (small, large)
    admin = client_for("admin")
    with CaptureQueriesContext(connection) as ctx:
        html = admin.get(D + "/admin/instances/?partial=1").content.decode()
    assert html.count("<tr data-id=") == 20 and len(ctx.captured_queries) <= small + 3


# ---- the instance page and its actions -------------------------------------------------------------

def test_instance_page_overview_log_and_allowed_buttons(env: Env) -> None:
    inst = spawned(env.boot(name="web", metadata={"role": "frontend"}))
    alice = client_for("alice")
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="instance-status">ACTIVE<' in html and "frontend" in html and "default" in html
    assert 'id="actions-table"' in html and 'data-action="create"' in html
    for shown in ("stop", "reboot_soft", "reboot_hard", "pause", "suspend", "lock", "snapshot", "rebuild",
                  "resize", "delete"):
        assert f'id="action-{shown}"' in html, shown
    for hidden in ("start", "unpause", "resume", "confirm_resize", "revert_resize", "unlock"):
        assert f'id="action-{hidden}"' not in html, hidden
    assert 'data-instance-id="' + inst.id in html and "compute/instance.js" in html


def act(client: Client, inst: Instance, action: str, **extra: str) -> Any:
    return client.post(f"{D}/instances/{inst.id}/action", {"action": action, **extra}, follow=True)


def test_actions_follow_the_state_machine_and_refusals_are_messages(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    alice = client_for("alice")
    response = act(alice, inst, "stop")
    assert "Shutting off instance web." in messages_of(response)
    inst = reload(inst)
    assert inst.task_state == states.POWERING_OFF
    html = response.content.decode()
    assert 'id="action-start"' not in html and 'id="action-stop"' not in html  # busy: no state action
    # pressing start anyway: the state machine refuses, nothing changes
    response = act(alice, inst, "start")
    assert "while it is in" in messages_of(response)
    assert reload(inst).task_state == states.POWERING_OFF
    server_task_done(instance_id=inst.id, host=inst.host, task=states.POWERING_OFF, power_state=states.SHUTDOWN)
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="instance-status">SHUTOFF<' in html and 'id="action-start"' in html and 'id="action-stop"' not in html
    act(alice, inst, "start")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.POWERING_ON, power_state=states.RUNNING)
    act(alice, inst, "reboot_hard")
    assert reload(inst).task_state == states.REBOOTING_HARD
    server_task_done(instance_id=inst.id, host=inst.host, task=states.REBOOTING_HARD, power_state=states.RUNNING)
    act(alice, inst, "pause")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.PAUSING, power_state=states.PAUSED_POWER)
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="instance-status">PAUSED<' in html and 'id="action-unpause"' in html
    act(alice, inst, "unpause")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.UNPAUSING, power_state=states.RUNNING)
    act(alice, inst, "suspend")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.SUSPENDING,
                     power_state=states.SUSPENDED_POWER)
    assert 'id="action-resume"' in alice.get(f"{D}/instances/{inst.id}/").content.decode()
    act(alice, inst, "resume")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.RESUMING, power_state=states.RUNNING)
    assert reload(inst).vm_state == states.ACTIVE
    records = list(InstanceAction.objects.filter(instance=inst).values_list("action", flat=True))
    for name in ("create", "stop", "start", "reboot", "pause", "unpause", "suspend", "resume"):
        assert name in records, name
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert html.count('<tr data-action="') == len(records)


def test_lock_snapshot_rebuild_resize_confirm_and_delete(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    alice, bob = client_for("alice"), client_for("bob")
    assert "Locked instance web." in messages_of(act(alice, inst, "lock"))
    assert reload(inst).locked
    # a locked instance refuses bob's stop with the service's message
    assert "is locked" in messages_of(act(bob, inst, "stop"))
    assert reload(inst).task_state is None
    act(alice, inst, "unlock")
    assert not reload(inst).locked
    # snapshot needs a name
    assert "Choose the snapshot name" in messages_of(act(alice, inst, "snapshot"))
    response = act(alice, inst, "snapshot", name="snap-1")
    assert "Snapshot snap-1 requested" in messages_of(response)
    server_task_done(instance_id=inst.id, host=inst.host, task=states.IMAGE_UPLOADING, power_state=states.RUNNING)
    assert reload(inst).task_state is None
    # rebuild with the same image
    act(alice, inst, "rebuild", image=env.image.id)
    assert reload(inst).task_state == states.REBUILDING
    server_task_done(instance_id=inst.id, host=inst.host, task=states.REBUILD_SPAWNING,
                     power_state=states.RUNNING)
    # resize to m1.small, then confirm
    from apps.compute.models import Flavor

    small = Flavor.objects.get(name="m1.small")
    act(alice, inst, "resize", flavor=small.flavorid)
    assert reload(inst).task_state == states.RESIZE_PREP
    server_task_done(instance_id=inst.id, host=inst.host, task=states.RESIZE_FINISH, power_state=states.RUNNING)
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="instance-status">VERIFY_RESIZE<' in html and 'id="action-confirm_resize"' in html
    assert 'id="action-revert_resize"' in html
    act(alice, inst, "confirm_resize")
    server_task_done(instance_id=inst.id, host=inst.host, task=states.RESIZE_CONFIRMING,
                     power_state=states.RUNNING)
    inst = reload(inst)
    assert inst.vm_state == states.ACTIVE and inst.flavor_ref == small.flavorid
    # a reader sees no buttons and cannot act
    rita = client_for("rita")
    html = rita.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="action-stop"' not in html and 'id="action-delete"' not in html
    assert rita.post(f"{D}/instances/{inst.id}/action", {"action": "stop"}).status_code == 403
    assert reload(inst).task_state is None
    # delete
    response = alice.post(f"{D}/instances/{inst.id}/delete", follow=True)
    assert "Deletion of instance web requested" in messages_of(response)
    assert reload(inst).task_state == states.DELETING


def test_fault_is_shown_and_console_refusal_is_a_message(env: Env) -> None:
    for node in ComputeNode.objects.all():
        node.enabled = False
        node.save()
    inst = env.boot(name="doomed")
    alice = client_for("alice")
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    assert 'id="instance-status">ERROR<' in html and 'id="instance-fault"' in html and "No valid host" in html
    assert "No valid host" in row(alice.get(D + "/instances/").content.decode(), inst)
    html = alice.get(f"{D}/instances/{inst.id}/console").content.decode()
    assert 'id="console-error"' in html and "not" in html


# ---- the launch wizard -----------------------------------------------------------------------------

def test_launch_wizard_shows_choices_and_quota_and_creates_through_the_service(env: Env) -> None:
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"cores": 2, "ram": 4096})
    alice = client_for("alice")
    html = alice.get(D + "/instances/launch").content.decode()
    assert "cirros" in html and "private" in html and 'id="flavor-table"' in html
    assert re.search(r'data-flavor="m1.tiny"[^>]*class=""', html)
    assert re.search(r'data-flavor="m1.large"[^>]*class="over-quota"', html)  # 4 vCPUs > 2 left
    assert 'data-quota="cores" data-left="2"' in html
    security_default = re.search(r'value="([^"]+)"[^>]*id="id_security_groups_\d+"[^>]*checked', html) or \
        re.search(r'<input[^>]*name="security_groups" value="([^"]+)"[^>]*checked', html)
    assert security_default, "the default security group is chosen"
    from apps.compute.models import Flavor

    tiny = Flavor.objects.get(name="m1.tiny")
    data = {"name": "wiz", "count": "2", "source": "image", "image": env.image.id, "flavor": tiny.flavorid,
            "networks": [env.network.id], "security_groups": [security_default.group(1)], "key_name": "",
            "user_data": "#!/bin/sh\necho hi\n", "availability_zone": "nova"}
    response = alice.post(D + "/instances/launch", data, follow=True)
    assert "Launched 2 instances: wiz-1, wiz-2" in messages_of(response)
    made = list(Instance.objects.filter(name__startswith="wiz").order_by("name"))
    assert [i.name for i in made] == ["wiz-1", "wiz-2"]
    assert all(i.host in ("node-a", "node-b") and i.task_state == states.SPAWNING for i in made)
    assert base64.b64decode(made[0].user_data).decode() == "#!/bin/sh\necho hi\n"
    assert made[0].availability_zone == "nova"
    # over the quota: the service's refusal is on the form, nothing is made
    data.update(name="big", count="1", flavor=Flavor.objects.get(name="m1.small").flavorid)
    response = alice.post(D + "/instances/launch", data)
    assert response.status_code == 400 and 'id="launch-error"' in response.content.decode()
    assert "Quota exceeded" in response.content.decode()
    assert not Instance.objects.filter(name="big").exists()
    # bad input (no image) changes nothing
    response = alice.post(D + "/instances/launch", {**data, "image": "", "name": "x"})
    assert response.status_code == 400 and not Instance.objects.filter(name="x").exists()


# ---- admin panels ----------------------------------------------------------------------------------

ADMIN_PAGES = ["/admin/instances/", "/admin/hypervisors/", "/admin/services/", "/admin/usage/", "/flavors/"]


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_panels_are_forbidden_for_members(env: Env, page: str) -> None:
    alice = client_for("alice")
    assert alice.get(D + page).status_code == 403
    html = alice.get(D + "/instances/").content.decode()
    for name in ("All instances", "Hypervisors", "Compute services"):
        assert f"<span>{name}</span>" not in html
    assert f'href="{D}/admin/usage/"' not in html  # the project's own Usage (telemetry) is theirs to see
    assert Client().get(D + page).status_code == 302  # signed out: to the login page


def test_admin_panels_show_nodes_services_all_instances_and_usage(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    admin = client_for("admin")
    html = admin.get(D + "/admin/hypervisors/").content.decode()
    for name in ("All instances", "Hypervisors", "Compute services", "Usage"):
        assert f"<span>{name}</span>" in html
    node = ComputeNode.objects.get(host=inst.host)
    node_row = re.search(rf'<tr data-id="{node.id}".*?</tr>', html, re.S).group(0)
    assert "badge-ok\">up" in node_row and "enabled" in node_row and "1 / 8" in node_row
    html = admin.get(D + "/admin/instances/").content.decode()
    assert "demo" in row(html, inst) and f'data-live-project="{inst.project_id}"' in html
    # disable with a reason, then enable
    response = admin.post(f"{D}/admin/services/{node.id}/update", {"status": "disabled",
                                                                 "disabled_reason": "maintenance"}, follow=True)
    assert f"Compute service on {node.host} disabled" in messages_of(response)
    node.refresh_from_db()
    assert not node.enabled and node.disabled_reason == "maintenance"
    assert "maintenance" in response.content.decode()
    admin.post(f"{D}/admin/services/{node.id}/update", {"status": "enabled"})
    node.refresh_from_db()
    assert node.enabled and node.disabled_reason == ""
    # usage of this month has the demo project with its instance
    html = admin.get(D + "/admin/usage/").content.decode()
    usage_row = re.search(r'<tr data-id="[^"]+" data-project="demo">.*?</tr>', html, re.S)
    assert usage_row and "<td>1</td>" in usage_row.group(0)
    old = admin.get(D + "/admin/usage/?start=2020-01-01&end=2020-01-31").content.decode()
    assert not re.search(r'<tr data-id="[^"]+" data-project="demo">', old) and "No usage in this period" in old
    assert admin.get(D + "/admin/usage/?start=2020-02-01&end=2020-01-01").status_code == 400
    # a member cannot update a service
    alice = client_for("alice")
    assert alice.post(f"{D}/admin/services/{node.id}/update", {"status": "disabled"}).status_code == 403
    node.refresh_from_db()
    assert node.enabled


def test_unlock_refused_by_the_service_is_a_message(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    server_lock(actor=env.cloud.admin_actor, server_id=inst.id, request_id="req-adm")
    alice = client_for("alice")
    response = act(alice, inst, "unlock")
    assert response.status_code == 200 and "locked by an administrator" in messages_of(response)
    assert reload(inst).locked


def test_action_log_entry_shows_its_events(env: Env) -> None:
    inst = spawned(env.boot(name="web"))
    action = InstanceAction.objects.get(instance=inst, action="create")
    alice = client_for("alice")
    html = alice.get(f"{D}/instances/{inst.id}/").content.decode()
    url = f"{D}/instances/{inst.id}/actions/{action.request_id}"
    assert url in html
    html = alice.get(url).content.decode()
    assert 'data-event="compute__do_build_and_run_instance"' in html and "Success" in html
    assert "<th>Traceback</th>" not in html
    assert "<th>Traceback</th>" in client_for("admin").get(url).content.decode()
    assert alice.get(f"{D}/instances/{inst.id}/actions/req-nope").status_code == 404
    assert client_for("olga").get(url).status_code == 404
