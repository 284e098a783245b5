"""The servers API over HTTP (in-process client, real tokens): bodies against tempest's strict 2.1
schemas, errors in Nova's format, scoping, list filters and pagination in constant queries."""
from __future__ import annotations

import importlib
import sys
from functools import partial
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute import states
from apps.compute.api import inputs
from apps.compute.models import Instance
from apps.compute.services import server_metadata, server_reports
from apps.core.errors import BadRequest
from tests.api_client import assert_refused
from tests.compute.helpers import nova_error
from tests.compute.test_servers_support import Env, env_fixture, image_dir_fixture, reload  # noqa: F401

pytestmark = pytest.mark.django_db

TEMPEST_SITE = sorted((Path(__file__).resolve().parents[2] / ".venv-tempest" / "lib").glob("python*/site-packages"))


def tempest_schema(name: str) -> dict[str, Any]:
    """A response schema of tempest's compute v2.1 servers module (the tempest venv has it)."""
    if not TEMPEST_SITE:
        pytest.skip("the tempest venv (.venv-tempest) is not built")
    if str(TEMPEST_SITE[0]) not in sys.path:
        sys.path.append(str(TEMPEST_SITE[0]))
    module = importlib.import_module("tempest.lib.api_schema.response.compute.v2_1.servers")
    return getattr(module, name)


def check(response: Any, schema_name: str) -> dict[str, Any]:
    schema = tempest_schema(schema_name)
    assert response.status_code in schema["status_code"], (response.status_code, response.content[:800])
    body = response.json() if response.content else {}
    if "response_body" in schema:
        jsonschema.Draft4Validator(schema["response_body"],
                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(body)
    return body


def create(env: Env, client: Any = None, **server: Any) -> Any:
    body = {"name": "api-vm", "imageRef": env.image.id, "flavorRef": env.tiny.flavorid,
            "networks": [{"uuid": env.network.id}], **server}
    return (client or env.cloud.member).post("servers", {"server": body})


def boot_active(env: Env, **kw: Any) -> Instance:
    instance = env.boot(**kw)
    server_reports.server_spawned(instance_id=instance.id, host=reload(instance).host, power_state=states.RUNNING)
    return reload(instance)


def test_create_show_list_update_delete(env: Env) -> None:
    response = create(env, metadata={"role": "web"})
    body = check(response, "create_server_with_admin_pass")
    server_id = body["server"]["id"]
    assert response["Location"].endswith(f"/compute/v2.1/servers/{server_id}")
    assert body["server"]["adminPass"] and body["server"]["OS-DCF:diskConfig"] == "MANUAL"
    assert response["x-openstack-request-id"].startswith("req-")

    shown = check(env.cloud.member.get(f"servers/{server_id}"), "get_server")["server"]
    assert shown["status"] == "BUILD" and shown["metadata"] == {"role": "web"}
    assert shown["OS-EXT-STS:task_state"] == "spawning" and "OS-EXT-SRV-ATTR:host" not in shown
    assert len(shown["hostId"]) == 56 and shown["flavor"]["id"] == env.tiny.flavorid
    assert list(shown["addresses"]) == ["private"]
    assert shown["addresses"]["private"][0]["OS-EXT-IPS:type"] == "fixed"
    server_reports.server_spawned(instance_id=server_id, host=Instance.objects.get(pk=server_id).host, power_state=1)
    admin_view = check(env.cloud.admin.get(f"servers/{server_id}"), "get_server")["server"]
    assert admin_view["status"] == "ACTIVE" and admin_view["OS-EXT-SRV-ATTR:host"] in ("node-a", "node-b")
    assert admin_view["OS-EXT-SRV-ATTR:hypervisor_hostname"].endswith(".local")
    assert admin_view["OS-SRV-USG:launched_at"] and admin_view["OS-EXT-AZ:availability_zone"] == "nova"

    check(env.cloud.member.get("servers"), "list_servers")
    detail = check(env.cloud.member.get("servers/detail"), "list_servers_detail")
    assert [s["id"] for s in detail["servers"]] == [server_id]

    updated = check(env.cloud.member.put(f"servers/{server_id}", {"server": {"name": "renamed"}}), "update_server")
    assert updated["server"]["name"] == "renamed"
    nova_error(env.cloud.member.put(f"servers/{server_id}", {"server": {"description": "x"}}), 400, "badRequest")

    check(env.cloud.member.delete(f"servers/{server_id}"), "delete_server")
    assert Instance.objects.get(pk=server_id).task_state == "deleting"


def test_error_server_shows_its_fault(env: Env) -> None:
    from apps.compute.models import ComputeNode

    ComputeNode.objects.all().delete()
    server_id = create(env).json()["server"]["id"]
    shown = check(env.cloud.member.get(f"servers/{server_id}"), "get_server")["server"]
    assert shown["status"] == "ERROR" and shown["hostId"] == ""
    assert shown["fault"]["code"] == 500 and shown["fault"]["message"].startswith("No valid host was found")


def test_create_errors_in_nova_format(env: Env) -> None:
    nova_error(create(env, flavorRef="nope"), 400, "badRequest")
    nova_error(create(env, bogus=1), 400, "badRequest")
    nova_error(env.cloud.reader.post("servers", {"server": {"name": "x", "imageRef": env.image.id, "flavorRef": "1",
                                                            "networks": [{"uuid": env.network.id}]}}), 403, "forbidden")
    from apps.identity import services as identity_services

    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"instances": 0})
    error = nova_error(create(env), 403, "forbidden")
    assert error["message"].startswith("Quota exceeded for instances")
    assert not Instance.objects.exists()


@pytest.mark.parametrize(("server", "message"), [
    ({"name": ""}, "name"),
    ({"user_data": "not base64!"}, "base64"),
    ({"accessIPv4": "::1"}, "accessIPv4"),
])
def test_malformed_create_is_a_400_and_changes_nothing(env: Env, server: dict, message: str) -> None:
    """(The service's checks of what exists are in test_servers_services.test_bad_input_changes_nothing.)"""
    error = nova_error(create(env, **server), 400, "badRequest")
    assert message in error["message"]
    assert not Instance.objects.exists()


def test_multi_create_returns_reservation_id(env: Env) -> None:
    response = create(env, min_count=3, return_reservation_id=True)
    assert response.status_code == 202
    reservation = response.json()["reservation_id"]
    listed = env.cloud.member.get(f"servers?reservation_id={reservation}").json()["servers"]
    assert sorted(s["name"] for s in listed) == ["api-vm-1", "api-vm-2", "api-vm-3"]


def test_other_project_gets_404_and_reader_cannot_write(env: Env) -> None:
    server = boot_active(env)
    assert_refused(env.cloud.other, [("GET", f"servers/{server.id}", None), ("DELETE", f"servers/{server.id}", None),
                                     ("POST", f"servers/{server.id}/action", {"os-stop": None}),
                                     ("GET", f"servers/{server.id}/metadata", None),
                                     ("GET", f"servers/{server.id}/os-instance-actions", None)],
                   partial(nova_error, status=404, key="itemNotFound"))
    assert env.cloud.other.get("servers").json()["servers"] == []
    assert env.cloud.reader.get(f"servers/{server.id}").status_code == 200
    assert_refused(env.cloud.reader, [("POST", f"servers/{server.id}/action", {"os-stop": None}),
                                      ("DELETE", f"servers/{server.id}", None),
                                      ("PUT", f"servers/{server.id}/metadata/a", {"meta": {"a": "b"}})],
                   partial(nova_error, status=403, key="forbidden"))
    assert reload(server).vm_state == "active" and reload(server).task_state is None


def test_actions_and_the_state_machine(env: Env) -> None:
    server = boot_active(env)
    api = env.cloud.member
    assert api.post(f"servers/{server.id}/action", {"reboot": {"type": "HARD"}}).status_code == 202
    assert reload(server).task_state == "rebooting_hard"
    error = nova_error(api.post(f"servers/{server.id}/action", {"os-stop": None}), 409, "conflictingRequest")
    assert "task_state rebooting_hard" in error["message"]
    server_reports.server_task_done(instance_id=server.id, host=server.host, task="rebooting_hard", power_state=1)
    assert api.post(f"servers/{server.id}/action", {"os-stop": None}).status_code == 202
    server_reports.server_task_done(instance_id=server.id, host=server.host, task="powering-off", power_state=4)
    error = nova_error(api.post(f"servers/{server.id}/action", {"pause": None}), 409, "conflictingRequest")
    assert error["message"] == f"Cannot 'pause' instance {server.id} while it is in vm_state stopped"
    nova_error(api.post(f"servers/{server.id}/action", {"reboot": {"type": "WARM"}}), 400, "badRequest")
    nova_error(api.post(f"servers/{server.id}/action", {"fly": None}), 400, "badRequest")
    assert api.post(f"servers/{server.id}/action", {"lock": None}).status_code == 202
    nova_error(api.post(f"servers/{server.id}/action", {"os-start": None}), 409, "conflictingRequest")
    assert api.post(f"servers/{server.id}/action", {"unlock": None}).status_code == 202
    assert api.post(f"servers/{server.id}/action", {"os-start": None}).status_code == 202

    actions = api.get(f"servers/{server.id}/os-instance-actions")
    listed = check(actions, "list_instance_actions")["instanceActions"]
    assert [a["action"] for a in listed] == ["start", "unlock", "lock", "stop", "reboot", "create"]
    reboot = next(a for a in listed if a["action"] == "reboot")
    shown = check(api.get(f"servers/{server.id}/os-instance-actions/{reboot['request_id']}"), "show_instance_action")
    assert "events" not in shown["instanceAction"]
    shown = check(env.cloud.admin.get(f"servers/{server.id}/os-instance-actions/{reboot['request_id']}"),
                  "show_instance_action")
    assert [e["result"] for e in shown["instanceAction"]["events"]] == ["Success"]
    nova_error(api.get(f"servers/{server.id}/os-instance-actions/req-nope"), 404, "itemNotFound")


def test_rebuild_and_create_image_bodies(env: Env) -> None:
    server = boot_active(env)
    api = env.cloud.member
    response = api.post(f"servers/{server.id}/action", {"rebuild": {"imageRef": env.image.id, "name": "again"}})
    body = check(response, "rebuild_server_with_admin_pass")
    assert body["server"]["status"] == "REBUILD" and body["server"]["name"] == "again"
    server_reports.server_task_done(instance_id=server.id, host=server.host, task="rebuild_spawning", power_state=1)
    response = api.post(f"servers/{server.id}/action", {"createImage": {"name": "snap"}})
    assert response.status_code == 202 and "/images/" in response["Location"]


def test_metadata_and_addresses(env: Env) -> None:
    server = boot_active(env, metadata={"a": "1"})
    api = env.cloud.member
    assert api.get(f"servers/{server.id}/metadata").json() == {"metadata": {"a": "1"}}
    assert api.post(f"servers/{server.id}/metadata", {"metadata": {"b": "2"}}).json() == \
        {"metadata": {"a": "1", "b": "2"}}
    assert api.put(f"servers/{server.id}/metadata", {"metadata": {"c": "3"}}).json() == {"metadata": {"c": "3"}}
    assert api.put(f"servers/{server.id}/metadata/d", {"meta": {"d": "4"}}).json() == {"meta": {"d": "4"}}
    nova_error(api.put(f"servers/{server.id}/metadata/d", {"meta": {"e": "4"}}), 400, "badRequest")
    assert api.get(f"servers/{server.id}/metadata/d").json() == {"meta": {"d": "4"}}
    assert api.delete(f"servers/{server.id}/metadata/d").status_code == 204
    nova_error(api.get(f"servers/{server.id}/metadata/d"), 404, "itemNotFound")

    ips = check(api.get(f"servers/{server.id}/ips"), "list_addresses")["addresses"]
    assert list(ips) == ["private"] and ips["private"][0]["version"] == 4
    assert api.get(f"servers/{server.id}/ips/private").json() == {"private": ips["private"]}
    nova_error(api.get(f"servers/{server.id}/ips/nowhere"), 404, "itemNotFound")
    # tags need microversion 2.26 (not advertised yet)
    nova_error(api.get(f"servers/{server.id}/tags"), 404, "itemNotFound")


def test_list_filters_sorting_and_pagination(env: Env) -> None:
    api = env.cloud.member
    web = [boot_active(env, name=f"web{i}") for i in range(3)]
    db = boot_active(env, name="db")
    api.post(f"servers/{db.id}/action", {"os-stop": None})
    server_reports.server_task_done(instance_id=db.id, host=db.host, task="powering-off", power_state=4)

    def names(query: str) -> list[str]:
        response = api.get(f"servers/detail?{query}")
        assert response.status_code == 200, response.content
        return [s["name"] for s in response.json()["servers"]]

    assert names("name=^web") == ["web2", "web1", "web0"]
    assert names("status=SHUTOFF") == ["db"]
    assert names("status=ACTIVE&sort_key=display_name&sort_dir=asc") == ["web0", "web1", "web2"]
    assert names("status=NOPE") == []
    assert names(f"image={env.image.id}&flavor={env.tiny.flavorid}") == ["db", "web2", "web1", "web0"]
    ip = api.get(f"servers/{web[0].id}/ips").json()["addresses"]["private"][0]["addr"]
    assert names(f"ip={ip.replace('.', '[.]')}$") == ["web0"]
    page = api.get("servers?limit=2").json()
    assert [s["name"] for s in page["servers"]] == ["db", "web2"]
    nxt = page["servers_links"][0]["href"]
    assert "marker=" in nxt
    rest = api.get(nxt.split("/compute/v2.1/", 1)[1]).json()
    assert [s["name"] for s in rest["servers"]] == ["web1", "web0"]
    error = nova_error(api.get("servers?marker=nope"), 400, "badRequest")
    assert error["message"] == "marker [nope] not found"
    nova_error(api.get("servers?sort_key=bogus"), 400, "badRequest")
    # host is an admin filter; all_tenants lets an admin see every project
    other = boot_active(env, actor=env.cloud.other_actor, networks="none")
    assert other.id not in [s["id"] for s in env.cloud.admin.get("servers").json()["servers"]]
    everything = env.cloud.admin.get("servers/detail?all_tenants=1").json()["servers"]
    assert len(everything) == 5
    assert len(env.cloud.admin.get(f"servers?all_tenants=1&host={other.host}").json()["servers"]) >= 1
    # deleted servers: hidden, visible to an admin asking for them
    server_reports.server_destroyed(instance_id=db.id, host=db.host)
    assert "db" not in names("")
    deleted = env.cloud.admin.get(f"servers/detail?all_tenants=1&deleted=true&tenant_id={db.project_id}").json()
    assert [s["status"] for s in deleted["servers"]] == ["DELETED"]


def test_detail_list_costs_constant_queries(env: Env) -> None:
    from apps.identity import services as identity_services
    from tests.compute.test_servers_support import make_node

    api = env.cloud.member
    identity_services.quota_set(actor=env.cloud.admin_actor, project_id=env.cloud.demo_project.id,
                                limits={"instances": -1, "cores": -1, "ram": -1, "port": -1})
    make_node("big", vcpus=64, memory_mb=65536)

    def count(n: int) -> int:
        Instance.objects.all().delete()
        for i in range(n):
            boot_active(env, name=f"q{i}", metadata={"i": str(i)})
        api.get("servers/detail")  # warm the token cache
        with CaptureQueriesContext(connection) as ctx:
            response = api.get("servers/detail")
        assert response.status_code == 200 and len(response.json()["servers"]) == n
        return len(ctx.captured_queries)

    assert count(3) == count(30)


def test_console_output_needs_a_live_node_and_admin_sees_any_server(env: Env) -> None:
    from django.utils import timezone

    from apps.compute.models import ComputeNode

    server = boot_active(env)
    shown = env.cloud.admin.get(f"servers/{server.id}")
    assert shown.status_code == 200 and shown.json()["server"]["tenant_id"] == env.cloud.demo_project.id
    ComputeNode.objects.update(last_heartbeat=timezone.now() - timezone.timedelta(hours=1))
    error = nova_error(env.cloud.member.post(f"servers/{server.id}/action", {"os-getConsoleOutput": {"length": 5}}),
                       409, "conflictingRequest")
    assert "not ready" in error["message"]
    nova_error(env.cloud.member.post(f"servers/{server.id}/action", {"os-getConsoleOutput": {"length": "x"}}),
               400, "badRequest")


def test_tags_service(env: Env) -> None:
    from apps.compute.selectors import servers as server_selectors

    server = boot_active(env, tags=["a"])
    actor = env.cloud.member_actor
    assert server_selectors.server_tags(actor=actor, server_id=server.id) == ["a"]
    assert server_metadata.server_tag_add(actor=actor, server_id=server.id, tag="b") is True
    assert server_metadata.server_tag_add(actor=actor, server_id=server.id, tag="b") is False
    assert server_metadata.server_tags_set(actor=actor, server_id=server.id, tags=["z", "y"]) == ["y", "z"]
    server_metadata.server_tag_delete(actor=actor, server_id=server.id, tag="y")
    assert server_selectors.server_tags(actor=actor, server_id=server.id) == ["z"]
    with pytest.raises(BadRequest):
        inputs.tag("a/b")  # the API's parser refuses it before any service runs
    server_metadata.server_tag_delete(actor=actor, server_id=server.id)
    assert server_selectors.server_tags(actor=actor, server_id=server.id) == []


def test_disk_config_and_security_group_actions(env: Env) -> None:
    from apps.networks import services as network_services
    from apps.networks.models import Port

    api = env.cloud.member
    server_id = create(env, **{"OS-DCF:diskConfig": "AUTO"}).json()["server"]["id"]
    assert api.get(f"servers/{server_id}").json()["server"]["OS-DCF:diskConfig"] == "AUTO"
    body = check(api.put(f"servers/{server_id}", {"server": {"OS-DCF:diskConfig": "MANUAL"}}), "update_server")
    assert body["server"]["OS-DCF:diskConfig"] == "MANUAL"
    nova_error(api.put(f"servers/{server_id}", {"server": {"OS-DCF:diskConfig": "SOMETIMES"}}), 400, "badRequest")

    web = network_services.security_group_create(actor=env.cloud.member_actor, name="web")
    assert api.post(f"servers/{server_id}/action", {"addSecurityGroup": {"name": "web"}}).status_code == 202
    port = Port.objects.get(device_id=server_id)
    assert web.id in {g.id for g in port.security_groups.all()}
    assert [g["name"] for g in api.get(f"servers/{server_id}").json()["server"]["security_groups"]] == \
        ["default", "web"]
    nova_error(api.post(f"servers/{server_id}/action", {"addSecurityGroup": {"name": "web"}}), 400, "badRequest")
    for name in ("web", "default"):
        assert api.post(f"servers/{server_id}/action", {"removeSecurityGroup": {"name": name}}).status_code == 202
    assert "security_groups" not in api.get(f"servers/{server_id}").json()["server"]
    assert port.security_groups.count() == 0
    nova_error(api.post(f"servers/{server_id}/action", {"removeSecurityGroup": {"name": "nope"}}), 404,
               "itemNotFound")


def test_server_group_lists_its_members(env: Env) -> None:
    group = env.cloud.member.post("os-server-groups", {"server_group": {"name": "g", "policies": ["affinity"]}})
    group_id = group.json()["server_group"]["id"]
    server_id = create(env, name="member").json()["server"]["id"]
    assert env.cloud.member.get(f"os-server-groups/{group_id}").json()["server_group"]["members"] == []
    response = env.cloud.member.post("servers", {"server": {"name": "in-group", "imageRef": env.image.id,
                                                            "flavorRef": "1", "networks": [{"uuid": env.network.id}]},
                                                 "os:scheduler_hints": {"group": group_id}})
    member_id = response.json()["server"]["id"]
    assert env.cloud.member.get(f"os-server-groups/{group_id}").json()["server_group"]["members"] == [member_id]
    listed = env.cloud.member.get("os-server-groups").json()["server_groups"]
    assert listed[0]["members"] == [member_id] and server_id not in listed[0]["members"]


def test_listed_servers_answer_tags_and_faults_without_queries(env: Env) -> None:
    from django.test.utils import CaptureQueriesContext as Capture

    from apps.compute.models import ComputeNode
    from apps.compute.selectors import servers as server_selectors

    boot_active(env, tags=["x", "a"])
    ComputeNode.objects.all().delete()
    env.boot(name="broken")
    rows = server_selectors.server_list(actor=env.cloud.member_actor, query=server_selectors.ServerQuery())
    with Capture(connection) as ctx:
        seen = {r.name: ([t.tag for t in r.tags.all()], [f.message[:8] for f in r.faults.all()]) for r in rows}
    assert len(ctx.captured_queries) == 0
    assert seen == {"vm": (["a", "x"], []), "broken": ([], ["No valid"])}
