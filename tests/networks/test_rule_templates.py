"""The rule add form's templates (Horizon's "Rule" dropdown): the list lives in
apps/networks/rule_templates.py, the form offers every entry, a template gives the rule its protocol
and ports through the same service as Neutron's API, and bad input is a clear error on the form."""
from __future__ import annotations

import pytest

from apps.networks import rule_templates, services
from apps.networks.forms import RuleForm
from apps.networks.models import SecurityGroup, SecurityGroupRule
from tests.api_client import SeededCloud
from tests.networks.test_dashboard import D, Setup

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(cloud: SeededCloud) -> Setup:
    return Setup(cloud)


def _form(**data: str) -> RuleForm:
    return RuleForm({"direction": "ingress", "ethertype": "IPv4", "remote": "cidr", **data}, groups=[])


@pytest.mark.parametrize(("key", "expected"), [
    ("ssh", ("tcp", 22, 22)), ("http", ("tcp", 80, 80)), ("https", ("tcp", 443, 443)), ("rdp", ("tcp", 3389, 3389)),
    ("mysql", ("tcp", 3306, 3306)), ("dns", ("udp", 53, 53)), ("all_icmp", ("icmp", None, None)),
    ("all_tcp", ("tcp", 1, 65535)),
])
def test_a_template_gives_its_protocol_and_ports(key: str, expected: tuple) -> None:
    form = _form(rule=key, protocol="udp", port_range_min="9", port_range_max="10")  # the custom fields are ignored
    assert form.is_valid(), form.errors
    kwargs = form.rule_kwargs()
    assert (kwargs["protocol"], kwargs["port_range_min"], kwargs["port_range_max"]) == expected
    assert kwargs["direction"] == "ingress" and kwargs["remote_ip_prefix"] is None


def test_the_dropdown_is_the_one_list() -> None:
    choices = dict(RuleForm(groups=[]).fields["rule"].choices)
    assert next(iter(choices)) == rule_templates.CUSTOM
    assert set(choices) == {rule_templates.CUSTOM} | set(rule_templates.BY_KEY)
    assert choices["ssh"] == "SSH (TCP 22)" and choices["all_icmp"] == "All ICMP (ICMP)"
    assert choices["all_tcp"] == "All TCP (TCP 1-65535)"


def test_icmp_over_ipv6_is_ipv6_icmp() -> None:
    form = _form(rule="all_icmp", ethertype="IPv6")
    assert form.is_valid() and form.rule_kwargs()["protocol"] == "ipv6-icmp"


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"rule": "custom", "protocol": ""}, "protocol", "Choose a protocol"),
    ({"rule": "custom", "protocol": "other"}, "other_protocol", "Name the protocol"),
    ({"rule": "ssh", "remote": "group"}, "remote_group", "Choose the security group"),
    ({"rule": "telnet"}, "rule", "Select a valid choice"),
    ({"rule": "custom", "protocol": "tcp", "port_range_min": "70000"}, "port_range_min", "less than or equal"),
])
def test_bad_input_is_a_clear_error(data: dict, field: str, message: str) -> None:
    form = _form(**data)
    assert not form.is_valid()
    assert message in " ".join(form.errors[field]), form.errors


def test_templated_rules_through_the_page(env: Setup) -> None:
    demo = env.client("demo")
    group = services.security_group_create(actor=env.demo, name="web")
    url = f"{D}/security-groups/{group.id}"
    page = demo.get(url + "/").content.decode()
    assert '<option value="ssh">SSH (TCP 22)</option>' in page and '<option value="rdp">RDP (TCP 3389)</option>' in page
    for key in ("ssh", "https", "all_icmp"):
        response = demo.post(url + "/rules/add", {"rule": key, "direction": "ingress", "ethertype": "IPv4",
                                                  "protocol": "tcp", "remote": "cidr", "remote_ip_prefix": "0.0.0.0/0"})
        assert response.status_code == 302, response.content.decode()
    rules = {(r.protocol, r.port_range_min, r.port_range_max)
             for r in SecurityGroupRule.objects.filter(security_group=group, direction="ingress")}
    assert rules == {("tcp", 22, 22), ("tcp", 443, 443), ("icmp", None, None)}
    again = demo.post(url + "/rules/add", {"rule": "ssh", "direction": "ingress", "ethertype": "IPv4",
                                           "remote": "cidr", "remote_ip_prefix": "0.0.0.0/0"})
    assert again.status_code == 400 and "already exists" in again.content.decode()
    missing = demo.post(url + "/rules/add", {"rule": "ssh", "direction": "ingress", "ethertype": "IPv4",
                                             "remote": "group", "remote_group": ""})
    assert missing.status_code == 400 and "Choose the security group" in missing.content.decode()
    # another project's group is not among the remote choices, nor may it be named
    theirs = services.security_group_create(actor=env.other, name="theirs")
    assert theirs.id not in demo.get(url + "/").content.decode()
    foreign = demo.post(url + "/rules/add", {"rule": "ssh", "direction": "ingress", "ethertype": "IPv4",
                                             "remote": "group", "remote_group": theirs.id})
    assert foreign.status_code == 400 and "Select a valid choice" in foreign.content.decode()
    assert SecurityGroup.objects.get(pk=theirs.id).rules.filter(direction="ingress").count() == 0
