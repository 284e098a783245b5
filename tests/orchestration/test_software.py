"""Heat's software configs and deployments (/software_configs, /software_deployments and a server's
deployment metadata) in-process: what heatclient's `openstack software config/deployment` commands and
heat-tempest-plugin's API tests send; Heat's errors for bad input (nothing stored); another project's
config or deployment is not found; lists cost a constant number of queries."""
from __future__ import annotations

from typing import Any

import pytest

from apps.orchestration.models import SoftwareConfig, SoftwareDeployment
from tests.orchestration.test_api import heat_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


def make_config(client: Any, name: str = "hello", **extra: Any) -> dict:
    r = client.post("software_configs", {"name": name, "group": "script", "config": "#!/bin/sh -x\necho hello",
                                         **extra})
    assert r.status_code == 200, r.content[:500]
    return r.json()["software_config"]


def test_config_and_deployment_lifecycle(cloud) -> None:
    config = make_config(cloud.member, inputs=[{"name": "greeting", "default": "hi"}, {"name": "who"}],
                         outputs=[{"name": "result"}], options={"retries": 2})
    assert config["group"] == "script" and config["inputs"][0]["name"] == "greeting" and config["creation_time"]
    shown = cloud.member.get(f"software_configs/{config['id']}").json()["software_config"]
    assert shown["config"] == "#!/bin/sh -x\necho hello" and shown["options"] == {"retries": 2}
    listed = cloud.member.get("software_configs").json()["software_configs"]
    assert [c["id"] for c in listed] == [config["id"]] and "config" not in listed[0]
    plain = make_config(cloud.member, name="", group=None)  # Heat's default group
    assert plain["group"] == "Heat::Ungrouped"

    r = cloud.member.post("software_deployments", {"config_id": config["id"], "server_id": "vm-1",
                                                   "action": "CREATE", "status": "IN_PROGRESS",
                                                   "input_values": {"who": "world"}})
    assert r.status_code == 200, r.content[:500]
    deployment = r.json()["software_deployment"]
    assert (deployment["action"], deployment["status"], deployment["server_id"]) == ("CREATE", "IN_PROGRESS", "vm-1")
    default = cloud.member.post("software_deployments", {"config_id": plain["id"], "server_id": "vm-1"}).json()
    assert (default["software_deployment"]["action"], default["software_deployment"]["status"]) == ("INIT", "COMPLETE")

    # what the server's agent reads: each config with its inputs' values, by the configs' names
    metadata = cloud.member.get("software_deployments/metadata/vm-1").json()["metadata"]
    assert [m["name"] for m in metadata] == ["", "hello"]
    hello = metadata[1]
    assert hello["group"] == "script" and hello["config"].startswith("#!/bin/sh")
    assert {i["name"]: i["value"] for i in hello["inputs"]} == {"greeting": "hi", "who": "world"}
    assert cloud.member.get("software_deployments/metadata/vm-2").json()["metadata"] == []

    # the server reports its outcome
    r = cloud.member.put(f"software_deployments/{deployment['id']}", {
        "action": "CREATE", "status": "COMPLETE", "status_reason": "Outputs received",
        "output_values": {"result": "ok", "deploy_status_code": 0}})
    assert r.status_code == 200, r.content[:500]
    updated = r.json()["software_deployment"]
    assert updated["status"] == "COMPLETE" and updated["output_values"]["result"] == "ok" and updated["updated_time"]
    assert [d["id"] for d in cloud.member.get("software_deployments?server_id=vm-1").json()[
        "software_deployments"]] == [deployment["id"], default["software_deployment"]["id"]]

    # a config in use is not deleted; once its deployment is gone, it is
    heat_error(cloud.member.delete(f"software_configs/{config['id']}"), 409)
    assert cloud.member.delete(f"software_deployments/{deployment['id']}").status_code == 204
    assert cloud.member.delete(f"software_configs/{config['id']}").status_code == 204
    heat_error(cloud.member.get(f"software_configs/{config['id']}"), 404)
    heat_error(cloud.member.get(f"software_deployments/{deployment['id']}"), 404)


@pytest.mark.parametrize(("path", "body"), [
    ("software_configs", {"name": 5}),
    ("software_configs", {"name": "x", "inputs": {"a": 1}}),
    ("software_configs", {"name": "x", "inputs": [{"default": 1}]}),
    ("software_configs", {"name": "x", "options": []}),
    ("software_configs", {"name": "x", "config": "a\x00b"}),
    ("software_configs", {"name": "x" * 256}),
    ("software_deployments", {"server_id": "vm"}),
    ("software_deployments", {"config_id": "CONFIG"}),
    ("software_deployments", {"config_id": "CONFIG", "server_id": "vm", "status": "DONE"}),
    ("software_deployments", {"config_id": "CONFIG", "server_id": "vm", "input_values": [1]}),
])
def test_bad_input_is_a_400_and_stores_nothing(cloud, path: str, body: dict) -> None:
    config = make_config(cloud.member)
    body = {k: (config["id"] if v == "CONFIG" else v) for k, v in body.items()}
    before = (SoftwareConfig.objects.count(), SoftwareDeployment.objects.count())
    heat_error(cloud.member.post(path, body), 400)
    assert (SoftwareConfig.objects.count(), SoftwareDeployment.objects.count()) == before


def test_other_projects_and_readers(cloud) -> None:
    config = make_config(cloud.member)
    deployment = cloud.member.post("software_deployments", {"config_id": config["id"], "server_id": "vm-1"}).json()[
        "software_deployment"]
    # another project: not found, its lists empty, and it may not deploy the config
    heat_error(cloud.other.get(f"software_configs/{config['id']}"), 404, "EntityNotFound")
    heat_error(cloud.other.delete(f"software_configs/{config['id']}"), 404)
    heat_error(cloud.other.put(f"software_deployments/{deployment['id']}", {"status": "FAILED"}), 404)
    heat_error(cloud.other.post("software_deployments", {"config_id": config["id"], "server_id": "vm-1"}), 404)
    assert cloud.other.get("software_configs").json()["software_configs"] == []
    assert cloud.other.get("software_deployments").json()["software_deployments"] == []
    assert cloud.other.get("software_deployments/metadata/vm-1").json()["metadata"] == []
    # a reader reads and changes nothing
    assert cloud.reader.get(f"software_configs/{config['id']}").status_code == 200
    heat_error(cloud.reader.post("software_configs", {"name": "r"}), 403)
    heat_error(cloud.reader.put(f"software_deployments/{deployment['id']}", {"status": "FAILED"}), 403)
    assert SoftwareDeployment.objects.get(pk=deployment["id"]).status == "COMPLETE"


def test_lists_cost_constant_queries(cloud, django_assert_max_num_queries) -> None:
    def read() -> None:
        assert cloud.member.get("software_configs").status_code == 200
        assert cloud.member.get("software_deployments").status_code == 200
        assert cloud.member.get("software_deployments/metadata/vm-1").status_code == 200

    config = make_config(cloud.member)
    cloud.member.post("software_deployments", {"config_id": config["id"], "server_id": "vm-1"})
    read()  # (the token warmed)
    with django_assert_max_num_queries(9) as one:
        read()
    queries = len(one.captured_queries)  # (read now: each request clears the connection's query log)
    for i in range(15):
        extra = make_config(cloud.member, name=f"c{i}")
        cloud.member.post("software_deployments", {"config_id": extra["id"], "server_id": "vm-1"})
    with django_assert_max_num_queries(queries):
        read()
    page = cloud.member.get(f"software_configs?limit=5&marker={config['id']}").json()["software_configs"]
    assert [c["name"] for c in page] == ["c0", "c1", "c2", "c3", "c4"]
