"""The images panel: list (admins see every image), register + streamed upload through the
dashboard endpoint, edit, share/accept, delete; all through the same services as the API."""
from __future__ import annotations

import hashlib
import os

from apps.images import services
from apps.images.models import Image, ImageMember
from tests.dashboard.conftest import signed_in


def test_panel_is_in_the_compute_section(cloud):
    page = signed_in("demo", "demo-pw").get("/dashboard/images/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/dashboard/images/"' in html and "Upload an image" in html


def test_upload_flow_edit_and_delete(cloud, django_capture_on_commit_callbacks):
    demo = signed_in("demo", "demo-pw")
    created = demo.post("/dashboard/images/create", {
        "name": "dash-img", "disk_format": "raw", "container_format": "bare", "visibility": "private",
        "min_disk": 0, "min_ram": 0}, HTTP_ACCEPT="application/json")
    assert created.status_code == 201, created.content
    image_id = created.json()["id"]
    data = os.urandom(1_500_000)
    uploaded = demo.generic("PUT", created.json()["upload"], data=data, content_type="application/octet-stream")
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.json()["status"] == "active" and uploaded.json()["checksum"] == hashlib.md5(data).hexdigest()
    again = demo.generic("PUT", created.json()["upload"], data=b"x", content_type="application/octet-stream")
    assert again.status_code == 409
    listing = demo.get("/dashboard/images/?partial=1").content.decode()
    assert "dash-img" in listing and image_id[:8] in listing

    edited = demo.post(f"/dashboard/images/{image_id}/edit", {"name": "dash-img-2", "visibility": "shared",
                                                              "min_disk": 1, "min_ram": 64, "protected": "on"})
    assert edited.status_code == 302
    row = Image.objects.get(pk=image_id)
    assert (row.name, row.visibility, row.min_disk, row.min_ram, row.protected) == ("dash-img-2", "shared", 1, 64, True)
    refused = demo.post(f"/dashboard/images/{image_id}/delete", follow=True)
    assert "protected" in refused.content.decode() and Image.objects.filter(pk=image_id).exists()
    demo.post(f"/dashboard/images/{image_id}/edit", {"name": "dash-img-2", "visibility": "shared",
                                                      "min_disk": 1, "min_ram": 64})
    with django_capture_on_commit_callbacks(execute=True):
        assert demo.post(f"/dashboard/images/{image_id}/delete").status_code == 302
    assert not Image.objects.filter(pk=image_id).exists()


def test_member_cannot_publicize_and_admin_sees_all(cloud):
    demo = signed_in("demo", "demo-pw")
    refused = demo.post("/dashboard/images/create", {"name": "pub", "disk_format": "raw", "container_format": "bare",
                                                     "visibility": "public", "min_disk": 0, "min_ram": 0})
    assert refused.status_code == 400 and not Image.objects.exists()
    demo.post("/dashboard/images/create", {"name": "priv-demo", "disk_format": "raw", "container_format": "bare",
                                           "visibility": "private", "min_disk": 0, "min_ram": 0})
    admin_page = signed_in("admin", "admin-pw").get("/dashboard/images/").content.decode()
    assert "priv-demo" in admin_page


def test_share_and_accept_in_the_dashboard(cloud):
    admin = cloud.admin_actor
    demo_project = cloud.demo_project
    image = services.image_create(actor=admin, name="gift", visibility="shared")
    admin_client = signed_in("admin", "admin-pw")
    page = admin_client.get(f"/dashboard/images/{image.id}/share")
    assert page.status_code == 200 and "demo" in page.content.decode()  # admins pick a project by name
    assert admin_client.post(f"/dashboard/images/{image.id}/share", {"member": demo_project.id}).status_code == 302
    demo = signed_in("demo", "demo-pw")
    index = demo.get("/dashboard/images/").content.decode()
    assert "waiting for an answer" in index and "gift" in index
    demo.post(f"/dashboard/images/{image.id}/answer", {"status": "accepted"})
    assert ImageMember.objects.get(image=image).status == "accepted"
    assert "gift" in demo.get("/dashboard/images/?partial=1").content.decode()
    # the member cannot manage the image's members
    assert demo.post(f"/dashboard/images/{image.id}/share/{demo_project.id}/remove").status_code == 403
    assert admin_client.post(f"/dashboard/images/{image.id}/share/{demo_project.id}/remove").status_code == 302
    assert not ImageMember.objects.exists()


def test_other_projects_private_image_is_404(cloud):
    admin = cloud.admin_actor
    image = services.image_create(actor=admin, name="secret", visibility="private")
    demo = signed_in("demo", "demo-pw")
    assert demo.get(f"/dashboard/images/{image.id}/edit").status_code == 404
    assert demo.post(f"/dashboard/images/{image.id}/delete").status_code == 404
