"""Flavors: list/detail with filters, sorting and pagination; create/delete (admin); access for
private flavors; extra specs; bootstrap's defaults."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.compute import services
from apps.compute.models import Flavor
from tests.compute.helpers import nova_error

pytestmark = pytest.mark.django_db

V21_FLAVOR_KEYS = {"id", "name", "ram", "vcpus", "disk", "links", "OS-FLV-EXT-DATA:ephemeral",
                   "OS-FLV-DISABLED:disabled", "swap", "rxtx_factor", "os-flavor-access:is_public"}


def _create(cloud, **attrs):
    body = {"name": "f", "ram": 64, "vcpus": 1, "disk": 1, **attrs}
    response = cloud.admin.post("flavors", {"flavor": body})
    assert response.status_code == 200, response.content
    return response.json()["flavor"]


def test_bootstrap_creates_the_usual_flavors_idempotently(cloud):
    names = {f.name: (f.vcpus, f.memory_mb, f.root_gb) for f in Flavor.objects.all()}
    assert names["m1.tiny"] == (1, 512, 1) and names["m1.small"] == (1, 2048, 20)
    assert names["m1.medium"] == (2, 4096, 40) and names["m1.large"] == (4, 8192, 80)
    assert names["m1.nano"] == (1, 128, 1)
    services.flavor_defaults_ensure()
    assert Flavor.objects.count() == len(names)


def test_list_brief_and_detail_bodies_at_21(cloud):
    brief = cloud.reader.get("flavors").json()["flavors"]
    assert brief and all(set(f) == {"id", "name", "links"} for f in brief)
    detail = cloud.reader.get("flavors/detail").json()["flavors"]
    assert all(set(f) == V21_FLAVOR_KEYS for f in detail)
    tiny = next(f for f in detail if f["name"] == "m1.tiny")
    assert tiny["swap"] == "" and tiny["ram"] == 512 and tiny["OS-FLV-EXT-DATA:ephemeral"] == 0
    assert tiny["links"][0]["href"] == f"http://testserver/compute/v2.1/flavors/{tiny['id']}"
    shown = cloud.member.get(f"flavors/{tiny['id']}").json()["flavor"]
    assert shown == tiny


def test_show_by_name_is_404_so_the_cli_falls_back(cloud):
    nova_error(cloud.member.get("flavors/m1.tiny"), 404, "itemNotFound")


def test_create_full_body_and_conflicts(cloud):
    flavor = _create(cloud, name="big", id="big-1", ram=1024, vcpus=2, disk=10, swap=512, rxtx_factor=2.0,
                     **{"OS-FLV-EXT-DATA:ephemeral": 5, "os-flavor-access:is_public": False})
    assert flavor["id"] == "big-1" and flavor["swap"] == 512 and flavor["rxtx_factor"] == 2.0
    assert flavor["OS-FLV-EXT-DATA:ephemeral"] == 5 and flavor["os-flavor-access:is_public"] is False
    nova_error(cloud.admin.post("flavors", {"flavor": {"name": "big", "ram": 1, "vcpus": 1, "disk": 1}}), 409)
    nova_error(cloud.admin.post("flavors", {"flavor": {"name": "b2", "id": "big-1", "ram": 1, "vcpus": 1,
                                                       "disk": 1}}), 409)
    generated = _create(cloud, name="auto")
    assert len(generated["id"]) == 36


@pytest.mark.parametrize("bad", [{"ram": 0}, {"vcpus": 0}, {"disk": -1}, {"name": "  "}, {"ram": True},
                                 {"swap": "x"}, {"rxtx_factor": 0}, {"id": " lead"}, {"name": None}])
def test_create_bad_input_is_400_and_changes_nothing(cloud, bad):
    before = Flavor.objects.count()
    body = {"name": "f", "ram": 64, "vcpus": 1, "disk": 1, **bad}
    nova_error(cloud.admin.post("flavors", {"flavor": body}), 400, "badRequest")
    assert Flavor.objects.count() == before


def test_members_cannot_create_or_delete(cloud):
    nova_error(cloud.member.post("flavors", {"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}}), 403)
    nova_error(cloud.member.delete("flavors/1"), 403)
    assert cloud.admin.delete("flavors/1").status_code == 202
    nova_error(cloud.admin.get("flavors/1"), 404)


def test_is_public_filter_and_private_access(cloud):
    private = _create(cloud, name="secret", **{"os-flavor-access:is_public": False})
    admin_default = {f["name"] for f in cloud.admin.get("flavors").json()["flavors"]}
    assert "secret" not in admin_default
    assert {f["name"] for f in cloud.admin.get("flavors?is_public=None").json()["flavors"]} == \
        admin_default | {"secret"}
    assert {f["name"] for f in cloud.admin.get("flavors?is_public=false").json()["flavors"]} == {"secret"}
    # not visible to the demo project until access is given
    assert "secret" not in {f["name"] for f in cloud.member.get("flavors?is_public=None").json()["flavors"]}
    nova_error(cloud.member.get(f"flavors/{private['id']}"), 404)
    response = cloud.admin.post(f"flavors/{private['id']}/action",
                                {"addTenantAccess": {"tenant": cloud.demo_project.id}})
    assert response.status_code == 200
    assert response.json() == {"flavor_access": [{"flavor_id": private["id"], "tenant_id": cloud.demo_project.id}]}
    nova_error(cloud.admin.post(f"flavors/{private['id']}/action",
                                {"addTenantAccess": {"tenant": cloud.demo_project.id}}), 409)
    assert "secret" in {f["name"] for f in cloud.member.get("flavors").json()["flavors"]}
    assert cloud.member.get(f"flavors/{private['id']}").status_code == 200
    nova_error(cloud.other.get(f"flavors/{private['id']}"), 404)
    assert cloud.admin.get(f"flavors/{private['id']}/os-flavor-access").json()["flavor_access"][0]["tenant_id"] \
        == cloud.demo_project.id
    nova_error(cloud.member.post(f"flavors/{private['id']}/action",
                                 {"removeTenantAccess": {"tenant": cloud.demo_project.id}}), 403)
    response = cloud.admin.post(f"flavors/{private['id']}/action",
                                {"removeTenantAccess": {"tenant": cloud.demo_project.id}})
    assert response.json() == {"flavor_access": []}
    nova_error(cloud.member.get(f"flavors/{private['id']}"), 404)
    nova_error(cloud.admin.post(f"flavors/{private['id']}/action",
                                {"removeTenantAccess": {"tenant": cloud.demo_project.id}}), 404)
    nova_error(cloud.admin.get("flavors/1/os-flavor-access"), 404)
    # a public flavor refuses access grants from microversion 2.7 (409); before it Nova recorded the grant
    nova_error(cloud.admin.post("flavors/1/action", {"addTenantAccess": {"tenant": cloud.demo_project.id}},
                                headers={"OpenStack-API-Version": "compute 2.7"}), 409)
    granted = cloud.admin.post("flavors/1/action", {"addTenantAccess": {"tenant": cloud.demo_project.id}},
                               headers={"OpenStack-API-Version": "compute 2.6"})
    assert granted.status_code == 200, granted.content
    assert granted.json() == {"flavor_access": [{"flavor_id": "1", "tenant_id": cloud.demo_project.id}]}
    nova_error(cloud.admin.post(f"flavors/{private['id']}/action", {"addTenantAccess": {"tenant": "nope"}}), 400)


def test_min_filters_sort_and_pagination(cloud):
    names = [f["name"] for f in cloud.member.get("flavors/detail?minRam=2048&minDisk=40").json()["flavors"]]
    assert sorted(names) == ["m1.large", "m1.medium"]
    by_ram = [f["ram"] for f in cloud.member.get("flavors/detail?sort_key=memory_mb&sort_dir=desc").json()["flavors"]]
    assert by_ram == sorted(by_ram, reverse=True)
    ids = [f["id"] for f in cloud.member.get("flavors").json()["flavors"]]
    assert ids == sorted(ids)
    page = cloud.member.get("flavors?limit=2").json()
    assert [f["id"] for f in page["flavors"]] == ids[:2]
    assert "marker=" in page["flavors_links"][0]["href"]
    rest = cloud.member.get(f"flavors?marker={ids[1]}").json()["flavors"]
    assert [f["id"] for f in rest] == ids[2:]
    nova_error(cloud.member.get("flavors?marker=nope"), 400)
    nova_error(cloud.member.get("flavors?minRam=lots"), 400)
    nova_error(cloud.member.get("flavors?sort_key=bogus"), 400)
    nova_error(cloud.admin.get("flavors?is_public=maybe"), 400)


def test_extra_specs_crud(cloud):
    path = "flavors/1/os-extra_specs"
    response = cloud.admin.post(path, {"extra_specs": {"hw:cpu_policy": "dedicated", "quota:disk_read_bytes_sec": 1}})
    assert response.status_code == 200
    assert response.json()["extra_specs"] == {"hw:cpu_policy": "dedicated", "quota:disk_read_bytes_sec": "1"}
    assert cloud.member.get(path).json() == {"extra_specs": {"hw:cpu_policy": "dedicated",
                                                             "quota:disk_read_bytes_sec": "1"}}
    assert cloud.reader.get(f"{path}/hw:cpu_policy").json() == {"hw:cpu_policy": "dedicated"}
    assert cloud.admin.put(f"{path}/hw:cpu_policy", {"hw:cpu_policy": "shared"}).json() == {"hw:cpu_policy": "shared"}
    nova_error(cloud.admin.put(f"{path}/hw:cpu_policy", {"other": "x"}), 400)
    nova_error(cloud.member.post(path, {"extra_specs": {"a": "b"}}), 403)
    nova_error(cloud.member.delete(f"{path}/hw:cpu_policy"), 403)
    assert cloud.admin.delete(f"{path}/hw:cpu_policy").status_code == 200
    nova_error(cloud.admin.get(f"{path}/hw:cpu_policy"), 404)
    nova_error(cloud.admin.post(path, {"extra_specs": {"bad key!": "x"}}), 400)
    # extra specs are not part of the 2.1 flavor body
    assert "extra_specs" not in cloud.member.get("flavors/1").json()["flavor"]


def test_flavor_list_costs_constant_queries(cloud):
    def count() -> int:
        cloud.admin.get("flavors/detail?is_public=None")  # warm the token cache
        with CaptureQueriesContext(connection) as ctx:
            assert cloud.admin.get("flavors/detail?is_public=None").status_code == 200
        return len(ctx)

    few = count()
    for i in range(15):
        flavor = _create(cloud, name=f"q{i}", **{"os-flavor-access:is_public": i % 2 == 0})
        cloud.admin.post(f"flavors/{flavor['id']}/os-extra_specs", {"extra_specs": {"k": "v"}})
    assert count() == few


def test_member_flavor_list_with_private_access_costs_constant_queries(cloud):
    def count() -> int:
        cloud.member.get("flavors/detail")  # warm the token cache
        with CaptureQueriesContext(connection) as ctx:
            assert cloud.member.get("flavors/detail").status_code == 200
        return len(ctx)

    few = count()
    for i in range(8):
        flavor = _create(cloud, name=f"p{i}", **{"os-flavor-access:is_public": False})
        cloud.admin.post(f"flavors/{flavor['id']}/action", {"addTenantAccess": {"tenant": cloud.demo_project.id}})
        cloud.admin.post(f"flavors/{flavor['id']}/action", {"addTenantAccess": {"tenant": cloud.other_project.id}})
    assert len(cloud.member.get("flavors/detail").json()["flavors"]) == 5 + 8
    assert count() == few
