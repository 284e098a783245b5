"""Every networking model is in the operators' console, with working lists, filters and search."""
import pytest
from django.apps import apps
from django.contrib import admin

pytestmark = pytest.mark.django_db


def test_every_networks_model_is_registered():
    for model in apps.get_app_config("networks").get_models():
        assert admin.site.is_registered(model), model


def test_admin_browses_every_changelist_and_change_page(client, cloud):
    net = cloud.member.network(name="consoled")
    cloud.member.subnet(net["id"], "10.33.0.0/24")
    port = cloud.member.port(net["id"])
    router = cloud.member.create("routers", "router", name="r", external_gateway_info={"network_id": cloud.public_id})
    fip = cloud.member.create("floatingips", "floatingip", floating_network_id=cloud.public_id)
    group = cloud.member.get("security-groups").json()["security_groups"][0]
    from apps.networks import services

    agent = services.network_agent_report(host="n1", vtep_ip="192.0.2.1", capable=True)
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    for model in apps.get_app_config("networks").get_models():
        url = f"/admin/networks/{model._meta.model_name}/?q=a"
        assert client.get(url).status_code == 200, url
    for name, pk in (("network", net["id"]), ("port", port["id"]), ("router", router["id"]),
                     ("floatingip", fip["id"]), ("securitygroup", group["id"]), ("networkagent", agent.id)):
        url = f"/admin/networks/{name}/{pk}/change/"
        assert client.get(url).status_code == 200, url
