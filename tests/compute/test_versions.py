"""Version discovery and microversion negotiation."""
import pytest

from apps.compute.api.serializers import MAX_VERSION, version_str
from tests.api_client import ApiClient
from tests.compute.helpers import nova_error

pytestmark = pytest.mark.django_db
MAX = version_str(MAX_VERSION)  # the highest microversion whose whole history is implemented
ABOVE = f"2.{MAX_VERSION[1] + 1}"


def test_versions_root_lists_v20_then_v21_with_only_the_nova_keys():
    for path in ("/compute/", "/compute"):
        response = ApiClient(api="compute").get(path)
        assert response.status_code == 200, response.content
        versions = response.json()["versions"]
        assert [v["id"] for v in versions] == ["v2.0", "v2.1"]
        for version in versions:
            assert set(version) == {"id", "links", "status", "updated", "version", "min_version"}
        assert versions[1]["version"] == MAX and versions[1]["min_version"] == "2.1"
        assert versions[1]["status"] == "CURRENT"
        assert versions[1]["links"][0] == {"rel": "self", "href": "http://testserver/compute/v2.1/"}


def test_version_document_with_and_without_slash():
    for path in ("/compute/v2.1", "/compute/v2.1/"):
        response = ApiClient(api="compute").get(path)
        assert response.status_code == 200
        version = response.json()["version"]
        assert version["id"] == "v2.1" and version["version"] == MAX and version["min_version"] == "2.1"
        assert version["media-types"][0]["type"] == "application/vnd.openstack.compute+json;version=2.1"
    assert ApiClient(api="compute").get("/compute/v2").json()["version"]["id"] == "v2.0"


def test_api_without_token_is_401_in_nova_shape():
    nova_error(ApiClient(api="compute").get("flavors"), 401, "unauthorized")


@pytest.mark.parametrize(("headers", "answered"), [
    ({}, "2.1"), ({"OpenStack-API-Version": "compute 2.1"}, "2.1"), ({"X-OpenStack-Nova-API-Version": "2.1"}, "2.1"),
    ({"OpenStack-API-Version": "compute latest"}, MAX), ({"X-OpenStack-Nova-API-Version": "latest"}, MAX),
    ({"OpenStack-API-Version": "volume 3.5, compute 2.1"}, "2.1"), ({"OpenStack-API-Version": "compute 2.2"}, "2.2"),
    ({"X-OpenStack-Nova-API-Version": MAX}, MAX),
])
def test_microversion_negotiated_and_echoed(cloud, headers, answered):
    response = cloud.member.get("flavors", headers=headers)
    assert response.status_code == 200
    assert response["OpenStack-API-Version"] == f"compute {answered}"
    assert response["X-OpenStack-Nova-API-Version"] == answered
    assert "OpenStack-API-Version" in response["Vary"] and "X-OpenStack-Nova-API-Version" in response["Vary"]


@pytest.mark.parametrize("headers", [
    {"OpenStack-API-Version": f"compute {ABOVE}"}, {"OpenStack-API-Version": "compute 2.0"},
    {"X-OpenStack-Nova-API-Version": "3.0"}, {"OpenStack-API-Version": "compute 2.100"},
])
def test_microversion_out_of_range_is_406(cloud, headers):
    nova_error(cloud.member.get("flavors", headers=headers), 406)


def test_new_header_wins_over_legacy(cloud):
    response = cloud.member.get("flavors", headers={"OpenStack-API-Version": "compute 2.1",
                                                    "X-OpenStack-Nova-API-Version": "2.99"})
    assert response.status_code == 200


def test_malformed_microversion_is_400(cloud):
    nova_error(cloud.member.get("flavors", headers={"OpenStack-API-Version": "compute two"}), 400, "badRequest")


def test_error_shapes_use_nova_names(cloud):
    nova_error(cloud.member.get("flavors/nope"), 404, "itemNotFound")
    nova_error(cloud.member.post("flavors", {"flavor": {"name": "x", "ram": 1, "vcpus": 1, "disk": 1}}), 403,
               "forbidden")
    nova_error(cloud.admin.post("flavors", {"flavor": {"name": "m1.tiny", "ram": 1, "vcpus": 1, "disk": 1}}),
               409, "conflictingRequest")
    nova_error(cloud.admin.post("flavors", {"flavor": {"name": "x", "ram": "lots", "vcpus": 1, "disk": 1}}),
               400, "badRequest")
