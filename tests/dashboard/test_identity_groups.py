"""The identity panels' groups (members, roles on projects) and domains (issue 11, item 6): admins only,
every change through identity's services, whose refusals (the lockout rule of services/admins.py, the
default domain, a domain still enabled) are shown as messages."""
from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from apps.identity import selectors, services
from apps.identity.models import Domain, Group, Project, Role, RoleAssignment, User
from tests.api_client import SeededCloud
from tests.dashboard.conftest import make_user, sign_in

ADMIN_PAGES = [
    "/dashboard/identity/groups",
    "/dashboard/identity/groups/create",
    "/dashboard/identity/domains",
    "/dashboard/identity/domains/create",
]


MESSAGE = re.compile(r'<div class="alert alert-\w+" role="(?:status|alert)">([^<]*)<')


def _messages(page: str) -> list[str]:
    return [html.unescape(m) for m in MESSAGE.findall(page)]


def _confirms(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r'data-confirm="([^"]*)"', page)]


@pytest.fixture
def ops(cloud: SeededCloud) -> Group:
    return services.group_create(actor=cloud.admin_actor, name="ops", description="Operators")


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_a_member_gets_403_on_the_group_and_domain_pages(demo_client: Client, url: str) -> None:
    assert demo_client.get(url).status_code == 403


def test_a_member_cannot_write_through_group_or_domain_urls(cloud: SeededCloud, demo_client: Client,
                                                            ops: Group) -> None:
    demo, member = cloud.demo_project, Role.objects.get(name="member")
    base = f"/dashboard/identity/groups/{ops.id}"
    assert demo_client.get(f"{base}/").status_code == 403
    assert demo_client.get(f"{base}/edit").status_code == 403
    posts = [
        ("/dashboard/identity/groups/create", {"name": "sneaky", "domain_id": "default"}),
        (f"{base}/edit", {"name": "sneaky"}),
        (f"{base}/members/add", {"user_id": cloud.demo_user.id}),
        (f"{base}/members/remove", {"user_id": cloud.demo_user.id}),
        (f"{base}/roles/grant", {"project_id": demo.id, "role_id": member.id}),
        (f"{base}/roles/revoke", {"project_id": demo.id, "role_id": member.id}),
        (f"{base}/delete", {}),
        ("/dashboard/identity/domains/create", {"name": "sneaky", "enabled": "on"}),
        ("/dashboard/identity/domains/default/edit", {"name": "sneaky"}),
        ("/dashboard/identity/domains/default/enabled", {"enabled": "false"}),
        ("/dashboard/identity/domains/default/delete", {}),
    ]
    for url, data in posts:
        assert demo_client.post(url, data).status_code == 403, url
    assert Group.objects.filter(id=ops.id, name="ops").exists() and not Group.objects.filter(name="sneaky").exists()
    assert not selectors.group_has_member(group=ops, user_id=cloud.demo_user.id)
    assert not RoleAssignment.objects.filter(group=ops).exists()
    assert not Domain.objects.filter(name="sneaky").exists() and Domain.objects.get(id="default").enabled


def test_admin_creates_edits_and_deletes_a_group(admin_client: Client, cloud: SeededCloud) -> None:
    response = admin_client.post("/dashboard/identity/groups/create",
                                 {"name": "devs", "description": "Developers", "domain_id": "default"})
    devs = Group.objects.get(name="devs")
    assert response.status_code == 302 and response["Location"] == f"/dashboard/identity/groups/{devs.id}/"
    duplicate = admin_client.post("/dashboard/identity/groups/create", {"name": "devs", "domain_id": "default"})
    assert duplicate.status_code == 400 and b"Duplicate entry found with name devs" in duplicate.content
    response = admin_client.post(f"/dashboard/identity/groups/{devs.id}/edit", {"name": "developers",
                                                                                "description": "All of them"})
    assert response.status_code == 302
    devs.refresh_from_db()
    assert (devs.name, devs.description) == ("developers", "All of them")
    page = admin_client.get("/dashboard/identity/groups").content.decode()
    assert 'data-name="developers"' in page and "Delete group developers? It has no members." in _confirms(page)
    page = admin_client.post(f"/dashboard/identity/groups/{devs.id}/delete", follow=True).content.decode()
    assert "Deleted group developers." in _messages(page) and not Group.objects.filter(id=devs.id).exists()
    assert admin_client.get(f"/dashboard/identity/groups/{devs.id}/").status_code == 404


def test_admin_manages_members_and_project_roles(admin_client: Client, cloud: SeededCloud, ops: Group) -> None:
    demo, member = cloud.demo_project, Role.objects.get(name="member")
    amy = make_user(cloud, "amy")
    base = f"/dashboard/identity/groups/{ops.id}"
    page = admin_client.get(f"{base}/").content.decode()
    assert f'<option value="{amy.id}">amy</option>' in page and "No members yet." in page

    page = admin_client.post(f"{base}/members/add", {"user_id": amy.id}, follow=True).content.decode()
    assert "Added amy to group ops." in _messages(page)
    assert selectors.group_has_member(group=ops, user_id=amy.id)
    assert 'data-name="amy"' in page and f'<option value="{amy.id}">' not in page  # not offered twice
    assert "Remove amy from group ops? They lose the roles the group gives them." in _confirms(page)

    page = admin_client.post(f"{base}/roles/grant", {"project_id": demo.id, "role_id": member.id},
                             follow=True).content.decode()
    assert "Granted role member on project demo to group ops." in _messages(page)
    assert RoleAssignment.objects.filter(group=ops, project=demo, role=member).exists()
    assert "Remove role member on project demo from group ops?" in _confirms(page)
    assert selectors.user_project_find(user=amy, project_id=demo.id) is not None  # the group's role reaches amy
    members = admin_client.get(f"/dashboard/identity/projects/{demo.id}/members").content.decode()
    assert 'data-id="group:' + ops.id + '"' in members
    groups = admin_client.get("/dashboard/identity/groups").content.decode()
    assert "Delete group ops? Its 1 member loses the roles it gives them." in _confirms(groups)

    page = admin_client.post(f"{base}/roles/revoke", {"project_id": demo.id, "role_id": member.id},
                             follow=True).content.decode()
    assert "Role removed from the group." in _messages(page)
    assert not RoleAssignment.objects.filter(group=ops).exists()
    page = admin_client.post(f"{base}/members/remove", {"user_id": amy.id}, follow=True).content.decode()
    assert "Removed the user from the group." in _messages(page)
    assert not selectors.group_has_member(group=ops, user_id=amy.id)
    again = admin_client.post(f"{base}/members/remove", {"user_id": amy.id})  # not a member any more
    assert again.status_code == 404 and b"Could not find user" in again.content


def test_the_forms_say_what_is_missing(admin_client: Client, ops: Group) -> None:
    base = f"/dashboard/identity/groups/{ops.id}"
    response = admin_client.post(f"{base}/members/add", {"user_id": ""})
    assert response.status_code == 400 and b"This field is required." in response.content
    response = admin_client.post(f"{base}/roles/grant", {"project_id": "nope", "role_id": "nope"})
    assert response.status_code == 400 and b"Select a valid choice." in response.content
    assert not RoleAssignment.objects.filter(group=ops).exists()


def test_removing_oneself_from_the_group_that_makes_one_admin_is_refused(admin_client: Client,
                                                                          cloud: SeededCloud, ops: Group) -> None:
    """services/admins.py: the group's admin role is one of the signed-in admin's grants."""
    admin = cloud.admin_actor
    services.role_grant(actor=admin, role_id=Role.objects.get(name="admin").id, group_id=ops.id,
                        project_id=cloud.admin_project.id)
    services.group_add_user(actor=admin, group_id=ops.id, user_id=cloud.admin_user.id)
    base = f"/dashboard/identity/groups/{ops.id}"
    page = admin_client.get(f"{base}/").content.decode()
    assert "Remove admin (you) from group ops? They lose the roles the group gives them." in _confirms(page)
    page = admin_client.post(f"{base}/members/remove", {"user_id": cloud.admin_user.id}, follow=True).content.decode()
    assert "You cannot remove the admin role from the account you are signed in with." in _messages(page)
    assert selectors.group_has_member(group=ops, user_id=cloud.admin_user.id)
    page = admin_client.post(f"{base}/delete", follow=True).content.decode()
    assert "You cannot remove the admin role from the account you are signed in with." in _messages(page)
    assert Group.objects.filter(id=ops.id).exists()


def test_admin_creates_edits_disables_and_deletes_a_domain(admin_client: Client, cloud: SeededCloud) -> None:
    response = admin_client.post("/dashboard/identity/domains/create",
                                 {"name": "corp", "description": "Corporate", "enabled": "on"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/identity/domains"
    corp = Domain.objects.get(name="corp")
    services.project_create(actor=cloud.admin_actor, name="hr", domain_id=corp.id)
    duplicate = admin_client.post("/dashboard/identity/domains/create", {"name": "corp", "enabled": "on"})
    assert duplicate.status_code == 400 and b"Duplicate entry found with name corp" in duplicate.content
    assert admin_client.post(f"/dashboard/identity/domains/{corp.id}/edit",
                             {"name": "corporate", "description": "HQ"}).status_code == 302
    corp.refresh_from_db()
    assert (corp.name, corp.description, corp.enabled) == ("corporate", "HQ", True)

    page = admin_client.get("/dashboard/identity/domains").content.decode()
    confirms = _confirms(page)
    assert "Disable domain corporate? Its 0 users can no longer sign in and its 1 project cannot be used until " \
           "it is enabled again." in confirms
    assert "Delete domain corporate? Its 1 project, 0 users and 0 groups are deleted with it." in confirms
    assert any(c.startswith("Disable domain Default (yours)?") for c in confirms)

    page = admin_client.post(f"/dashboard/identity/domains/{corp.id}/delete", follow=True).content.decode()
    assert "Cannot delete a domain that is enabled, please disable it first." in _messages(page)
    page = admin_client.post(f"/dashboard/identity/domains/{corp.id}/enabled", {"enabled": "false"},
                             follow=True).content.decode()
    assert "Disabled domain corporate." in _messages(page)
    assert not Domain.objects.get(id=corp.id).enabled
    page = admin_client.post(f"/dashboard/identity/domains/{corp.id}/delete", follow=True).content.decode()
    assert "Deleted domain corporate." in _messages(page)
    assert not Domain.objects.filter(id=corp.id).exists() and not Project.objects.filter(name="hr").exists()


def test_the_default_domain_and_ones_own_domain_stay_enabled(admin_client: Client, cloud: SeededCloud) -> None:
    page = admin_client.post("/dashboard/identity/domains/default/enabled", {"enabled": "false"},
                             follow=True).content.decode()
    assert "The default domain cannot be disabled." in _messages(page)
    admin = cloud.admin_actor
    corp = services.domain_create(actor=admin, name="corp")
    boss = services.user_create(actor=admin, name="boss", domain_id=corp.id, password="boss-pw-1234")
    services.role_grant(actor=admin, role_id=Role.objects.get(name="admin").id, user_id=boss.id,
                        project_id=cloud.admin_project.id)
    client = Client()
    assert sign_in(client, "boss", "boss-pw-1234", domain="corp").status_code == 302
    page = client.post(f"/dashboard/identity/domains/{corp.id}/enabled", {"enabled": "false"},
                       follow=True).content.decode()
    assert "You cannot disable the domain of the account you are signed in with." in _messages(page)
    assert Domain.objects.get(id=corp.id).enabled
    assert client.get("/dashboard/identity/domains").status_code == 200  # still signed in
    assert User.objects.get(id=boss.id).enabled


def test_the_new_panels_are_in_the_admins_navigation_only(admin_client: Client, demo_client: Client) -> None:
    nav = admin_client.get("/dashboard/").content.decode()
    assert 'href="/dashboard/identity/groups"' in nav and 'href="/dashboard/identity/domains"' in nav
    nav = demo_client.get("/dashboard/").content.decode()
    assert "/dashboard/identity/groups" not in nav and "/dashboard/identity/domains" not in nav


def _queries(client: Client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as seen:
        assert client.get(url).status_code == 200
    return len(seen)


def test_the_pages_cost_the_same_queries_whatever_their_rows(admin_client: Client, cloud: SeededCloud,
                                                             ops: Group) -> None:
    admin = cloud.admin_actor
    member = Role.objects.get(name="member")
    urls = ["/dashboard/identity/groups", "/dashboard/identity/domains", f"/dashboard/identity/groups/{ops.id}/"]
    before = [_queries(admin_client, url) for url in urls]
    for i in range(6):
        user = make_user(cloud, f"bulk{i}")
        services.group_add_user(actor=admin, group_id=ops.id, user_id=user.id)
        services.group_create(actor=admin, name=f"team{i}")
        services.domain_create(actor=admin, name=f"dom{i}")
        project = services.project_create(actor=admin, name=f"p{i}")
        services.role_grant(actor=admin, role_id=member.id, group_id=ops.id, project_id=project.id)
    assert [_queries(admin_client, url) for url in urls] == before


def test_the_grant_form_offers_member_first(admin_client: Client, ops: Group) -> None:
    page = admin_client.get(f"/dashboard/identity/groups/{ops.id}/").content.decode()
    assert f'<option value="{Role.objects.get(name="member").id}" selected>member</option>' in page
