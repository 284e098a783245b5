"""The operators' console at /admin/: admins log in with their Keystone password; every model is there."""
import pytest
from django.apps import apps
from django.contrib import admin

from apps.identity import services

pytestmark = pytest.mark.django_db


def test_every_stratus_model_is_registered():
    for model in apps.get_models():
        if model._meta.app_label in {"identity", "core", "dashboard"}:
            assert admin.site.is_registered(model), model


def test_admin_logs_in_and_browses_every_changelist(client, cloud):
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"})
    assert response.status_code == 302, response.content[:500]
    for model in apps.get_app_config("identity").get_models():
        url = f"/admin/identity/{model._meta.model_name}/?q=a"
        assert client.get(url).status_code == 200, url


def test_a_member_is_not_let_into_the_console(client, cloud):
    assert client.post("/admin/login/", {"username": "demo", "password": "demo-pw"}).status_code == 200
    assert client.get("/admin/identity/user/").status_code == 302


def test_a_disabled_admin_is_not_let_in(client, cloud):
    admin_actor = cloud.admin_actor
    other = services.user_create(actor=admin_actor, name="admin2", password="pw2")
    from apps.identity.models import Role

    services.role_grant(actor=admin_actor, role_id=Role.objects.get(name="admin").id, user_id=other.id, system=True)
    assert client.post("/admin/login/", {"username": "admin2", "password": "pw2"}).status_code == 302
    client.logout()
    services.user_update(actor=admin_actor, user_id=other.id, enabled=False)
    assert client.post("/admin/login/", {"username": "admin2", "password": "pw2"}).status_code == 200
