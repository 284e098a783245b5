"""The operators' console lists images, members and import tasks, with search and filters."""
import pytest
from django.apps import apps
from django.contrib import admin

from apps.images import services

pytestmark = pytest.mark.django_db


def test_images_models_are_registered_and_browsable(client, cloud):
    actor = cloud.admin_actor
    image = services.image_create(actor=actor, name="console", visibility="shared")
    services.member_create(actor=actor, image_id=image.id, member_id="a" * 32)
    for model in apps.get_app_config("images").get_models():
        assert admin.site.is_registered(model), model
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    for model in apps.get_app_config("images").get_models():
        url = f"/admin/images/{model._meta.model_name}/?q=con"
        assert client.get(url).status_code == 200, url
    page = client.get("/admin/images/image/?status__exact=queued").content.decode()
    assert "console" in page
    assert client.get(f"/admin/images/image/{image.id}/change/").status_code == 200
