"""Security groups and rules: the default group, validation, duplicates, in-use groups, quotas."""
from __future__ import annotations

import pytest

from tests.networks.helpers import neutron_error

pytestmark = pytest.mark.django_db


def test_default_group_on_first_need(cloud):
    groups = cloud.member.get("security-groups").json()["security_groups"]
    assert [g["name"] for g in groups] == ["default"]
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"]) for r in groups[0]["security_group_rules"]}
    gid = groups[0]["id"]
    assert rules == {("egress", "IPv4", None), ("egress", "IPv6", None), ("ingress", "IPv4", gid),
                     ("ingress", "IPv6", gid)}
    assert cloud.member.get("security-groups").json()["security_groups"][0]["id"] == gid  # only one
    neutron_error(cloud.member.post("security-groups", {"security_group": {"name": "default"}}), 409)
    neutron_error(cloud.member.delete(f"security-groups/{gid}"), 409, "SecurityGroupCannotRemoveDefault")
    neutron_error(cloud.member.put(f"security-groups/{gid}", {"security_group": {"name": "x"}}), 409)


def test_new_group_allows_egress_only(cloud):
    group = cloud.member.create("security-groups", "security_group", name="web", description="d")
    assert {(r["direction"], r["ethertype"]) for r in group["security_group_rules"]} == {
        ("egress", "IPv4"), ("egress", "IPv6")}
    assert group["stateful"] is True and group["description"] == "d"


@pytest.mark.parametrize("rule,message", [
    ({"direction": "sideways"}, "direction"),
    ({"direction": "ingress", "ethertype": "IPv5"}, "ethertype"),
    ({"direction": "ingress", "protocol": "bogus"}, "protocol"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": -16, "port_range_max": 80},
     "Invalid value for port -16"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 79},
     "port_range_min must be <= port_range_max"),
    ({"direction": "ingress", "protocol": "tcp", "port_range_max": 6}, "port_range_min must be <= port_range_max"),
    ({"direction": "ingress", "protocol": "icmp", "port_range_min": 1, "port_range_max": 256},
     "Invalid value for ICMP code"),
    ({"direction": "ingress", "protocol": "icmp", "port_range_max": 6}, "ICMP type (port-range-min) is missing"),
    ({"direction": "ingress", "port_range_min": 22, "port_range_max": 22}, "protocol"),
    ({"direction": "ingress", "remote_ip_prefix": "fd00::/64"}, "Conflicting value ethertype"),
    ({"direction": "ingress", "remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "x"}, "Only remote"),
])
def test_rule_validation(cloud, rule, message):
    group = cloud.member.create("security-groups", "security_group", name="g")
    error = neutron_error(cloud.member.post("security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], **rule}}), 400)
    assert message in error["message"], error


def test_rules_duplicates_and_remote_groups(cloud):
    group = cloud.member.create("security-groups", "security_group", name="g")
    body = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "remote_ip_prefix": "10.0.0.7"}
    rule = cloud.member.create("security-group-rules", "security_group_rule", **body)
    assert rule["remote_ip_prefix"] == "10.0.0.7/32" and rule["ethertype"] == "IPv4"
    neutron_error(cloud.member.post("security-group-rules", {"security_group_rule": body}), 409,
                  "SecurityGroupRuleExists")
    neutron_error(cloud.member.post("security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "remote_group_id": "nope"}}), 404,
        "SecurityGroupNotFound")
    other = cloud.other.create("security-groups", "security_group", name="theirs")
    neutron_error(cloud.member.post("security-group-rules", {"security_group_rule": {
        "security_group_id": other["id"], "direction": "ingress"}}), 404)
    listed = cloud.member.get(f"security-group-rules?security_group_id={group['id']}&direction=ingress").json()
    assert [r["id"] for r in listed["security_group_rules"]] == [rule["id"]]
    assert cloud.member.delete(f"security-group-rules/{rule['id']}").status_code == 204
    neutron_error(cloud.member.get(f"security-group-rules/{rule['id']}"), 404, "SecurityGroupRuleNotFound")


def test_group_in_use_and_port_security(cloud):
    group = cloud.member.create("security-groups", "security_group", name="g")
    net = cloud.member.network()
    cloud.member.subnet(net["id"], "10.90.0.0/24")
    port = cloud.member.port(net["id"], security_groups=[group["id"]])
    assert port["security_groups"] == [group["id"]]
    neutron_error(cloud.member.delete(f"security-groups/{group['id']}"), 409, "SecurityGroupInUse")
    neutron_error(cloud.member.put(f"ports/{port['id']}", {"port": {"port_security_enabled": False}}), 409)
    off = cloud.member.put(f"ports/{port['id']}", {"port": {"port_security_enabled": False,
                                                            "security_groups": []}}).json()["port"]
    assert off["port_security_enabled"] is False and off["security_groups"] == []
    assert cloud.member.delete(f"security-groups/{group['id']}").status_code == 204
    bare = cloud.member.port(net["id"], port_security_enabled=False)
    assert bare["security_groups"] == []
    neutron_error(cloud.member.post("ports", {"port": {"network_id": net["id"], "port_security_enabled": False,
                                                       "allowed_address_pairs": [{"ip_address": "1.2.3.4"}]}}), 409)


def test_quotas_api(cloud):
    pid = cloud.demo_project.id
    quota = cloud.member.get(f"quotas/{pid}").json()["quota"]
    assert quota["network"] == 100 and quota["port"] == 500 and quota["security_group_rule"] == 100
    neutron_error(cloud.member.put(f"quotas/{pid}", {"quota": {"network": 1}}), 403)
    assert cloud.admin.put(f"quotas/{pid}", {"quota": {"network": 1}}).json()["quota"]["network"] == 1
    cloud.member.network()
    error = neutron_error(cloud.member.post("networks", {"network": {"name": "two"}}), 409, "OverQuota")
    assert "network" in error["message"]
    details = cloud.member.get(f"quotas/{pid}/details").json()["quota"]["network"]
    assert details == {"limit": 1, "used": 1, "reserved": 0}
    assert cloud.member.get(f"quotas/{pid}/default").json()["quota"]["network"] == 100
    assert pid in [q["project_id"] for q in cloud.admin.get("quotas").json()["quotas"]]
    neutron_error(cloud.member.get("quotas"), 403)
    assert cloud.admin.delete(f"quotas/{pid}").status_code == 204
    assert cloud.member.get(f"quotas/{pid}").json()["quota"]["network"] == 100
    neutron_error(cloud.member.get(f"quotas/{cloud.other_project.id}"), 403)
    neutron_error(cloud.admin.put(f"quotas/{pid}", {"quota": {"bananas": 1}}), 400)
