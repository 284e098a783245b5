"""The shell: login/logout, the project switcher, the overview and the navigation."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.dashboard.shell import PROJECT_KEY
from apps.identity import quotas
from tests.api_client import SeededCloud
from tests.dashboard.conftest import ADMIN_PW, DEMO_PW, make_user, sign_in


def test_pages_need_a_login(cloud: SeededCloud, client: Client) -> None:
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/login?next=/dashboard/"
    assert client.get("/dashboard/identity/users")["Location"].startswith("/dashboard/login")


def test_login_refuses_a_wrong_password_then_accepts_the_right_one(cloud: SeededCloud, client: Client) -> None:
    page = client.get("/dashboard/login")
    assert page.status_code == 200
    assert b'value="Default"' in page.content  # the domain field defaults to Default

    response = sign_in(client, "admin", "not-the-password")
    assert response.status_code == 400
    assert b"Invalid credentials" in response.content
    assert "_auth_user_id" not in client.session

    response = sign_in(client, "admin", ADMIN_PW)
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.session[PROJECT_KEY] == cloud.admin_project.id


def test_login_by_domain_id_and_unknown_domain(cloud: SeededCloud, client: Client) -> None:
    assert client.post("/dashboard/login", {"domain": "nowhere", "username": "demo",
                                            "password": DEMO_PW}).status_code == 400
    response = client.post("/dashboard/login", {"domain": "default", "username": "demo", "password": DEMO_PW})
    assert response.status_code == 302
    assert client.session[PROJECT_KEY] == cloud.demo_project.id


def test_login_goes_to_next_only_on_this_site(cloud: SeededCloud, client: Client) -> None:
    assert sign_in(client, "demo", DEMO_PW, next="/dashboard/?x=1")["Location"] == "/dashboard/?x=1"
    client.post("/dashboard/logout")
    assert sign_in(client, "demo", DEMO_PW, next="https://evil.example/")["Location"] == "/dashboard/"


def test_a_disabled_user_cannot_sign_in(cloud: SeededCloud, client: Client) -> None:
    user = make_user(cloud, "gone", role="member")
    user.enabled = False
    user.save()
    assert sign_in(client, "gone", "pw-12345678").status_code == 400


def test_logout_is_a_post(admin_client: Client) -> None:
    assert admin_client.get("/dashboard/logout").status_code == 405
    response = admin_client.post("/dashboard/logout")
    assert response.status_code == 302 and response["Location"] == "/dashboard/login"
    assert admin_client.get("/dashboard/").status_code == 302


def test_forms_need_the_csrf_token(cloud: SeededCloud) -> None:
    client = Client(enforce_csrf_checks=True)
    assert sign_in(client, "admin", ADMIN_PW).status_code == 403
    page = client.get("/dashboard/login")
    token = page.cookies["csrftoken"].value
    response = client.post("/dashboard/login", {"domain": "Default", "username": "admin", "password": ADMIN_PW,
                                                "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.post("/dashboard/identity/projects/create", {"name": "x"}).status_code == 403


def test_default_project_is_the_users_default_if_allowed_else_the_first(cloud: SeededCloud,
                                                                        client: Client) -> None:
    user = make_user(cloud, "wanderer", role="member", project="demo")
    # Default project set to one without a role: the session falls back to a project it may use.
    user.default_project = cloud.admin_project
    user.save()
    sign_in(client, "wanderer", "pw-12345678")
    assert client.session[PROJECT_KEY] == cloud.demo_project.id


def test_a_user_without_any_project_gets_a_plain_overview(cloud: SeededCloud, client: Client) -> None:
    make_user(cloud, "lonely")
    response = sign_in(client, "lonely", "pw-12345678")
    assert response.status_code == 302
    page = client.get("/dashboard/")
    assert page.status_code == 200
    assert b"No project yet" in page.content


def test_switcher_offers_and_accepts_only_the_users_projects(cloud: SeededCloud, admin_client: Client,
                                                            demo_client: Client) -> None:
    admin_id, demo_id = cloud.admin_project.id, cloud.demo_project.id
    page = demo_client.get("/dashboard/").content.decode()
    assert f'value="{demo_id}"' in page and f'value="{admin_id}"' not in page

    refused = demo_client.post("/dashboard/switch", {"project_id": admin_id})
    assert refused.status_code == 404
    assert demo_client.session[PROJECT_KEY] == demo_id
    assert demo_client.post("/dashboard/switch", {"project_id": "no-such-project"}).status_code == 404

    response = admin_client.post("/dashboard/switch", {"project_id": demo_id, "next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert admin_client.session[PROJECT_KEY] == demo_id
    overview = admin_client.get("/dashboard/").content.decode()
    assert 'id="overview-project">demo<' in overview
    assert admin_client.get("/dashboard/switch").status_code == 405


def test_session_follows_a_revoked_role(cloud: SeededCloud, client: Client) -> None:
    """A project the user lost its role on is not kept in the session."""
    from apps.identity import services
    from apps.identity.models import Role

    user = make_user(cloud, "temp", role="member", project="demo")
    sign_in(client, "temp", "pw-12345678")
    assert client.session[PROJECT_KEY] == cloud.demo_project.id
    admin = services.actor_for_session(user=cloud.admin_user, project_id=cloud.admin_project.id)
    services.role_revoke(actor=admin, role_id=Role.objects.get(name="member").id, user_id=user.id,
                         project_id=cloud.demo_project.id)
    page = client.get("/dashboard/")
    assert b"No project yet" in page.content
    assert client.session[PROJECT_KEY] is None


def test_overview_shows_roles_and_says_when_no_resource_is_counted(admin_client: Client, monkeypatch: Any) -> None:
    monkeypatch.setattr(quotas, "_REGISTRY", {})  # as before any component registers its resources
    page = admin_client.get("/dashboard/").content.decode()
    assert 'id="overview-project">admin<' in page
    assert "No resources are counted yet" in page
    for role in ("admin", "member", "reader"):
        assert f'chip-{role}">{role}<' in page


@pytest.fixture
def widgets() -> Any:
    quotas.register("floating_ips", default=10, service="network", description="Floating IP addresses",
                    label="Floating IPs")
    quotas.register("gadgets", default=-1, service="test")
    yield
    quotas.unregister("floating_ips")
    quotas.unregister("gadgets")


def test_overview_quota_table_and_its_partial(cloud: SeededCloud, demo_client: Client, widgets: Any) -> None:
    from django.db import transaction

    from apps.identity import services

    with transaction.atomic():
        services.quota_reserve(project_id=cloud.demo_project.id, deltas={"floating_ips": 9})
    page = demo_client.get("/dashboard/").content.decode()
    assert "Floating IPs" in page and "unlimited" in page
    assert 'aria-valuenow="90"' in page and "bar-high" in page
    partial = demo_client.get("/dashboard/?partial=1").content.decode()
    assert "<html" not in partial and 'data-resource="floating_ips"' in partial


def test_navigation_hides_the_identity_section_from_members(admin_client: Client, demo_client: Client) -> None:
    admin_page = admin_client.get("/dashboard/").content.decode()
    demo_page = demo_client.get("/dashboard/").content.decode()
    for page in (admin_page, demo_page):
        assert 'href="/dashboard/"' in page  # Overview
    assert 'data-section="Identity"' in admin_page and 'href="/dashboard/identity/users"' in admin_page
    assert 'data-section="Identity"' not in demo_page and "/dashboard/identity/" not in demo_page
