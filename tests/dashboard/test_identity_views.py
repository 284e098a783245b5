"""The identity panels: admins only (through the policy), the services' errors on the forms."""
from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.identity.models import Project, Role, RoleAssignment, User
from tests.api_client import SeededCloud
from tests.dashboard.conftest import make_user, sign_in
from tests.identity import factories

ADMIN_PAGES = [
    "/dashboard/identity/projects",
    "/dashboard/identity/projects/create",
    "/dashboard/identity/users",
    "/dashboard/identity/users/create",
    "/dashboard/identity/roles",
    "/dashboard/identity/roles/create",
]


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_member_gets_403_on_identity_pages(demo_client: Client, url: str) -> None:
    response = demo_client.get(url)
    assert response.status_code == 403
    assert b"not authorized" in response.content


def test_member_cannot_write_through_identity_urls(cloud: SeededCloud, demo_client: Client) -> None:
    demo = cloud.demo_project
    member = Role.objects.get(name="member")
    posts = [
        ("/dashboard/identity/users/create", {"name": "sneaky", "password": "x", "confirm_password": "x"}),
        ("/dashboard/identity/projects/create", {"name": "sneaky"}),
        (f"/dashboard/identity/projects/{demo.id}/enabled", {"enabled": "false"}),
        (f"/dashboard/identity/projects/{demo.id}/delete", {}),
        (f"/dashboard/identity/projects/{demo.id}/members",
         {"who": f"user:{cloud.demo_user.id}", "role_id": member.id}),
        (f"/dashboard/identity/users/{cloud.admin_user.id}/delete", {}),
        (f"/dashboard/identity/roles/{member.id}/delete", {}),
    ]
    for url, data in posts:
        assert demo_client.post(url, data).status_code == 403, url
    assert not User.objects.filter(name="sneaky").exists()
    assert not Project.objects.filter(name="sneaky").exists()
    assert Project.objects.filter(id=demo.id, enabled=True).exists()
    assert Role.objects.filter(id=member.id).exists()


def test_a_reader_is_refused_too(cloud: SeededCloud, client: Client) -> None:
    sign_in(client, "rita", factories.PASSWORD)  # the seeded cloud's reader of demo
    assert client.get("/dashboard/identity/users").status_code == 403


def test_admin_lists(admin_client: Client, cloud: SeededCloud) -> None:
    projects = admin_client.get("/dashboard/identity/projects").content.decode()
    assert 'data-name="admin"' in projects and 'data-name="demo"' in projects
    users = admin_client.get("/dashboard/identity/users").content.decode()
    assert 'data-name="admin"' in users and 'data-name="demo"' in users
    roles = admin_client.get("/dashboard/identity/roles").content.decode()
    assert all(f'data-name="{r}"' in roles for r in ("admin", "member", "reader"))
    partial = admin_client.get("/dashboard/identity/users?partial=1").content.decode()
    assert "<html" not in partial and 'id="users-table"' in partial
    assert admin_client.get("/dashboard/identity/")["Location"] == "/dashboard/identity/projects"


def test_admin_creates_a_user_with_project_and_role(admin_client: Client, cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    member = Role.objects.get(name="member")
    form = admin_client.get("/dashboard/identity/users/create").content.decode()
    assert f'<option value="{member.id}" selected>member</option>' in form
    response = admin_client.post("/dashboard/identity/users/create", {
        "name": "amy", "email": "amy@example.org", "password": "s3cret-pw", "confirm_password": "s3cret-pw",
        "project_id": demo.id, "role_id": member.id, "enabled": "on"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/identity/users"
    amy = User.objects.get(name="amy")
    assert amy.default_project_id == demo.id and amy.check_password("s3cret-pw")
    assert RoleAssignment.objects.filter(user=amy, project=demo, role=member).exists()
    client = Client()
    sign_in(client, "amy", "s3cret-pw")
    assert client.session["project_id"] == demo.id


def test_user_form_errors(admin_client: Client, cloud: SeededCloud) -> None:
    url = "/dashboard/identity/users/create"
    member = Role.objects.get(name="member")
    # the service's uniqueness rule, shown on the name field
    response = admin_client.post(url, {"name": "demo", "password": "a", "confirm_password": "a"})
    assert response.status_code == 400
    assert b"Duplicate entry found with name demo" in response.content
    # form checks
    response = admin_client.post(url, {"name": "ben", "password": "a", "confirm_password": "b"})
    assert response.status_code == 400 and b"The two passwords do not match." in response.content
    response = admin_client.post(url, {"name": "ben", "password": "a", "confirm_password": "a",
                                       "role_id": member.id})
    assert response.status_code == 400 and b"Choose the project the role is granted on." in response.content
    response = admin_client.post(url, {"name": "", "password": "a", "confirm_password": "a"})
    assert response.status_code == 400 and b"This field is required." in response.content
    assert not User.objects.filter(name="ben").exists()


def test_a_failed_grant_leaves_no_user_behind(admin_client: Client, cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    member = Role.objects.get(name="member")
    form = {"name": "carol", "password": "a", "confirm_password": "a", "project_id": demo.id, "role_id": member.id}
    from unittest import mock

    from apps.core.errors import NotFound
    with mock.patch("apps.identity.services.users.role_grant", side_effect=NotFound("Could not find role: x.")):
        response = admin_client.post("/dashboard/identity/users/create", form)
    assert response.status_code == 400 and b"Could not find role" in response.content
    assert not User.objects.filter(name="carol").exists()


def test_admin_edits_disables_and_deletes_a_user(admin_client: Client, cloud: SeededCloud) -> None:
    user = make_user(cloud, "dave", role="member")
    edit = f"/dashboard/identity/users/{user.id}/edit"
    assert b'value="dave"' in admin_client.get(edit).content
    response = admin_client.post(edit, {"name": "david", "email": "d@example.org", "project_id": "",
                                        "password": "", "confirm_password": ""})
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.name, user.email, user.default_project_id) == ("david", "d@example.org", None)
    assert user.check_password("pw-12345678")
    admin_client.post(f"/dashboard/identity/users/{user.id}/enabled", {"enabled": "false"})
    user.refresh_from_db()
    assert not user.enabled
    page = admin_client.post(f"/dashboard/identity/users/{user.id}/delete", follow=True)
    assert b"Deleted user david." in page.content
    assert not User.objects.filter(id=user.id).exists()
    assert admin_client.get(edit).status_code == 404


def test_admin_manages_projects(admin_client: Client, cloud: SeededCloud) -> None:
    response = admin_client.post("/dashboard/identity/projects/create",
                                 {"name": "web", "description": "Web tier", "domain_id": "default", "enabled": "on"})
    assert response.status_code == 302
    web = Project.objects.get(name="web")
    duplicate = admin_client.post("/dashboard/identity/projects/create", {"name": "web", "domain_id": "default"})
    assert duplicate.status_code == 400 and b"Duplicate entry found with name web" in duplicate.content

    assert admin_client.post(f"/dashboard/identity/projects/{web.id}/edit",
                             {"name": "website", "description": ""}).status_code == 302
    admin_client.post(f"/dashboard/identity/projects/{web.id}/enabled", {"enabled": "false"})
    web.refresh_from_db()
    assert (web.name, web.enabled) == ("website", False)
    admin_client.post(f"/dashboard/identity/projects/{web.id}/delete")
    assert not Project.objects.filter(id=web.id).exists()
    assert admin_client.get(f"/dashboard/identity/projects/{web.id}/edit").status_code == 404


def test_service_refusal_becomes_a_message(admin_client: Client, cloud: SeededCloud) -> None:
    parent = cloud.demo_project
    Project.objects.create(name="child", domain=parent.domain, parent=parent)
    page = admin_client.post(f"/dashboard/identity/projects/{parent.id}/delete", follow=True)
    assert b"Cannot delete a project that has child projects" in page.content
    assert Project.objects.filter(id=parent.id).exists()


def test_the_signed_in_admin_cannot_lock_itself_out(admin_client: Client, cloud: SeededCloud) -> None:
    """The services' lockout rule reaches the dashboard as a message on the list (not a 403 page)."""
    me, admin_project = cloud.admin_user, cloud.admin_project
    admin_role = Role.objects.get(name="admin")
    alone = admin_client.post(f"/dashboard/identity/users/{me.id}/enabled", {"enabled": "false"}, follow=True)
    assert b"admin is the last enabled admin of the cloud" in alone.content
    make_user(cloud, "second", role="admin", project="admin")
    for url, data, refusal in (
            (f"/dashboard/identity/users/{me.id}/enabled", {"enabled": "false"}, "disable"),
            (f"/dashboard/identity/users/{me.id}/delete", {}, "delete"),
            (f"/dashboard/identity/projects/{admin_project.id}/members/remove",
             {"user_id": me.id, "role_id": admin_role.id}, "remove the admin role from")):
        page = admin_client.post(url, data, follow=True)
        assert page.status_code == 200, url
        assert f"You cannot {refusal} the account you are signed in with.".encode() in page.content, url
    me.refresh_from_db()
    assert me.enabled and RoleAssignment.objects.filter(user=me, role=admin_role, project=admin_project).exists()
    assert admin_client.get("/dashboard/identity/users").status_code == 200  # still signed in


def test_admin_grants_and_removes_roles_on_a_project(admin_client: Client, cloud: SeededCloud) -> None:
    demo = cloud.demo_project
    reader = Role.objects.get(name="reader")
    user = make_user(cloud, "erin")
    url = f"/dashboard/identity/projects/{demo.id}/members"
    response = admin_client.post(url, {"who": f"user:{user.id}", "role_id": reader.id})
    assert response.status_code == 302
    assert RoleAssignment.objects.filter(user=user, project=demo, role=reader).exists()
    page = admin_client.get(url).content.decode()
    assert f'data-id="user:{user.id}"' in page and f'data-live-project="{demo.id}"' in page
    assert admin_client.post(url, {"who": "", "role_id": reader.id}).status_code == 400
    admin_client.post(f"{url}/remove", {"user_id": user.id, "role_id": reader.id})
    assert not RoleAssignment.objects.filter(user=user, project=demo).exists()
    again = admin_client.post(f"{url}/remove", {"user_id": user.id, "role_id": reader.id})
    assert again.status_code == 404  # the service: no such assignment


def test_admin_creates_and_deletes_a_role(admin_client: Client) -> None:
    assert admin_client.post("/dashboard/identity/roles/create", {"name": "auditor"}).status_code == 302
    role = Role.objects.get(name="auditor")
    duplicate = admin_client.post("/dashboard/identity/roles/create", {"name": "auditor"})
    assert duplicate.status_code == 400 and b"Duplicate entry" in duplicate.content
    admin_client.post(f"/dashboard/identity/roles/{role.id}/delete")
    assert not Role.objects.filter(name="auditor").exists()


def test_identity_pages_do_not_grow_queries_with_rows(admin_client: Client, cloud: SeededCloud,
                                                      django_assert_max_num_queries: Any) -> None:
    for i in range(15):
        make_user(cloud, f"bulk{i}", role="member")
    for url in ("/dashboard/identity/users", "/dashboard/identity/projects",
                f"/dashboard/identity/projects/{cloud.demo_project.id}/members"):
        with django_assert_max_num_queries(30):
            assert admin_client.get(url).status_code == 200
