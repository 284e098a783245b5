"""OS::Glance::WebImage over the images services: the image registered and its data imported by the
web-download method (the import task fetching from a local HTTP server), the resource complete when
the image is active; a failed or refused import fails it with the reason; a delete removes the image
(and tolerates one already gone)."""
from __future__ import annotations

import hashlib
import os

import pytest

from apps.images import services as images
from apps.images.models import Image
from apps.orchestration import services, states
from apps.orchestration.models import Stack, StackResource
from tests.images.conftest import image_store  # noqa: F401 - each test's own image store
from tests.images.webserver import run_web_downloads, web_server
from tests.orchestration.test_api import create

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud_api() -> str:
    return "orchestration"


@pytest.fixture
def server(settings):
    with web_server() as srv:
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = ["127.0.0.1"]
        settings.STRATUS_IMAGE_IMPORT_ALLOWED_PORTS = [80, 443, srv.port]
        yield srv


def walk(stack_id: str) -> str:
    """The control worker in process: each level's resource tasks and the image import tasks, until
    nothing is pending."""
    from workers import orchestration as tasks

    state = services.stack_advance(stack_id=stack_id)
    for _ in range(50):
        run_web_downloads()
        todo = StackResource.objects.filter(stack_id=stack_id, state__endswith="_IN_PROGRESS")
        if not todo.exists():
            break
        for row in todo:
            tasks.resource_run(row.id)
        state = Stack.objects.get(pk=stack_id).state
    return state


TEMPLATE = """
heat_template_version: 2018-08-31
parameters:
  url: {type: string}
resources:
  img:
    type: OS::Glance::WebImage
    properties:
      name: heat-web-image
      location: {get_param: url}
      disk_format: raw
      container_format: bare
      min_ram: 64
      tags: [web, heat]
      os_distro: cirros
      extra_properties: {purpose: test}
outputs:
  id: {value: {get_resource: img}}
  show: {value: {get_attr: [img, show]}}
"""


def test_web_image_goes_active_and_its_delete_removes_it(cloud, server) -> None:
    data = os.urandom(3 * (1 << 20) + 11)
    server.routes["/cirros.raw"] = (200, {}, data)
    made = create(cloud.member, "imgs", TEMPLATE, parameters={"url": server.url("/cirros.raw")})
    assert walk(made["id"]) == states.CREATE_COMPLETE
    image_id = StackResource.objects.get(stack_id=made["id"], name="img").physical_id
    image = Image.objects.get(pk=image_id)
    assert (image.status, image.size, image.checksum) == ("active", len(data), hashlib.md5(data).hexdigest())
    assert image.name == "heat-web-image" and image.visibility == "private" and image.min_ram == 64
    assert sorted(image.tags) == ["heat", "web"] and image.owner == cloud.demo_project.id
    assert image.properties["os_distro"] == "cirros" and image.properties["purpose"] == "test"
    outputs = {o["output_key"]: o["output_value"] for o in Stack.objects.get(pk=made["id"]).outputs}
    assert outputs["id"] == image_id
    assert outputs["show"]["status"] == "active" and outputs["show"]["size"] == len(data)
    types = set(cloud.member.get("resource_types").json()["resource_types"])
    assert "OS::Glance::WebImage" in types
    schema = cloud.member.get("resource_types/OS::Glance::WebImage").json()
    assert schema["properties"]["location"]["required"] and schema["properties"]["disk_format"]["required"]

    cloud.member.delete(f"stacks/imgs/{made['id']}")
    assert walk(made["id"]) == states.DELETE_COMPLETE
    assert not Image.objects.filter(pk=image_id).exists()


def test_a_delete_tolerates_an_image_already_gone(cloud, server) -> None:
    server.routes["/a.raw"] = (200, {}, b"x" * 4096)
    made = create(cloud.member, "gone", TEMPLATE, parameters={"url": server.url("/a.raw")})
    assert walk(made["id"]) == states.CREATE_COMPLETE
    image_id = StackResource.objects.get(stack_id=made["id"], name="img").physical_id
    images.image_delete(actor=cloud.member_actor, image_id=image_id)
    cloud.member.delete(f"stacks/gone/{made['id']}")
    assert walk(made["id"]) == states.DELETE_COMPLETE


def test_a_failed_import_fails_the_resource_with_the_reason(cloud, server) -> None:
    made = create(cloud.member, "broken", TEMPLATE, parameters={"url": server.url("/missing.raw")})
    assert walk(made["id"]) == states.CREATE_FAILED
    row = StackResource.objects.get(stack_id=made["id"], name="img")
    assert "404" in row.status_reason, row.status_reason
    assert Image.objects.get(pk=row.physical_id).status == "queued"
    cloud.member.delete(f"stacks/broken/{made['id']}")
    assert walk(made["id"]) == states.DELETE_COMPLETE
    assert not Image.objects.filter(pk=row.physical_id).exists()


def test_a_refused_location_fails_and_leaves_no_image(cloud, settings) -> None:
    settings.STRATUS_IMAGE_IMPORT_ALLOWED_HOSTS = []
    before = Image.objects.count()
    made = create(cloud.member, "meta", TEMPLATE, parameters={"url": "http://169.254.169.254/latest/meta-data/"})
    assert walk(made["id"]) == states.CREATE_FAILED
    assert "not allowed" in StackResource.objects.get(stack_id=made["id"], name="img").status_reason
    assert Image.objects.count() == before


def test_unsupported_properties_are_refused(cloud) -> None:
    bad = TEMPLATE.replace("os_distro: cirros", "os_secure_boot: required")
    r = cloud.member.post("stacks", {"stack_name": "bad", "template": bad, "parameters": {"url": "http://x/"}})
    assert r.status_code == 400 and "os_secure_boot" in r.content.decode()
    bad = TEMPLATE.replace("disk_format: raw", "disk_format: floppy")
    r = cloud.member.post("stacks", {"stack_name": "bad", "template": bad, "parameters": {"url": "http://x/"}})
    assert r.status_code == 400 and "floppy" in r.content.decode()
