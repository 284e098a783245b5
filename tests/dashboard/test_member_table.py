"""A project's members are the one live table inside its page (apps/dashboard/tables.py, url_args the
project): one row per user or group with a role there, sorted, filtered and keyset-paged by
identity.selectors.project_member_list at a constant number of queries whatever the number of members;
remove is a row's button and a bulk action, one identity service call per row (project_member_remove,
every role of that member), the lockout rules of apps/identity/services/admins.py staying in the services
and each refused row answering its own outcome."""
from __future__ import annotations

import json

from django.test import Client

from apps.identity import services
from apps.identity.models import Group, Role, RoleAssignment
from tests.api_client import SeededCloud
from tests.dashboard.conftest import make_user, sign_in
from tests.dashboard.table_pages import table_page, walk, walk_back
from tests.identity import factories


def _grow(cloud: SeededCloud, project_id: str, start: int, count: int) -> None:
    admin = cloud.admin_actor
    roles = {r.name: r.id for r in Role.objects.all()}
    for i in range(start, start + count):  # names out of creation order; some with two roles; some groups
        name = f"m-{(i * 37) % 100:02d}-{i}"
        if i % 5 == 0:
            group = services.group_create(actor=admin, name=name)
            services.role_grant(actor=admin, role_id=roles["reader"], group_id=group.id, project_id=project_id)
            continue
        user = services.user_create(actor=admin, name=name, password="pw-12345678")
        services.role_grant(actor=admin, role_id=roles["member"], user_id=user.id, project_id=project_id)
        if i % 2:
            services.role_grant(actor=admin, role_id=roles["reader"], user_id=user.id, project_id=project_id)


def _names(pages: list) -> list[str]:
    return [n for p in pages for n in p.names]


def test_members_sort_filter_and_page_with_constant_queries(admin_client: Client, cloud: SeededCloud) -> None:
    project = services.project_create(actor=cloud.admin_actor, name="big")
    url = f"/dashboard/identity/projects/{project.id}/members"
    _grow(cloud, project.id, 0, 30)
    admin_client.get(url)
    first_small = table_page(admin_client, f"{url}?sort=name&dir=asc")
    _pages, small = walk(admin_client, first_small.next)
    _grow(cloud, project.id, 30, 30)

    first = table_page(admin_client, f"{url}?sort=name&dir=asc")
    assert first.queries == first_small.queries and len(first.ids) == 25 and first.previous is None
    pages, large = walk(admin_client, first.next)
    every = sorted(f"m-{(i * 37) % 100:02d}-{i}" for i in range(60))
    assert first.names + _names(pages) == every  # one row per member, whatever its roles
    assert large == small and len(large) == 1, (small, large)
    back = walk_back(admin_client, pages[-1].previous)
    assert _names(back) + pages[-1].names == every
    # the row is the member: its key, its kind, its roles on this project
    group = Group.objects.get(name="m-00-0")
    assert f'<tr data-id="group:{group.id}" data-name="m-00-0" data-kind="group">' in first.html
    assert "reader<button" in first.html and "member<button" in first.html

    by_kind, counts = walk(admin_client, f"{url}?sort=kind&dir=desc")
    kinds = [n for p in by_kind for n in p.names]
    assert counts == large and len(kinds) == 60
    assert kinds[:48] and all(not Group.objects.filter(name=n).exists() for n in kinds[:48])  # users, then groups
    assert all(Group.objects.filter(name=n).exists() for n in kinds[48:])
    assert table_page(admin_client, f"{url}?q=M-1").names == sorted(n for n in every if n.startswith("m-1"))[:25]
    assert 'data-live="role_assignment user"' in first.html and f'data-live-project="{project.id}"' in first.html
    assert f'action="{url}/act"' in first.html and 'id="members-filter"' in first.html
    assert table_page(admin_client, f"{url}?marker=user:gone").names == every[:25]
    assert table_page(admin_client, f"{url}?sort=roles").names == every[:25]


def test_members_bulk_remove_each_row_told_and_the_lockout_kept(admin_client: Client, cloud: SeededCloud) -> None:
    me, project = cloud.admin_user, cloud.admin_project
    admin_role, member = Role.objects.get(name="admin"), Role.objects.get(name="member")
    services.role_grant(actor=cloud.admin_actor, role_id=member.id, user_id=me.id, project_id=project.id)
    second = make_user(cloud, "second", role="admin", project="admin")
    erin = make_user(cloud, "erin", role="member", project="admin")
    services.role_grant(actor=cloud.admin_actor, role_id=Role.objects.get(name="reader").id, user_id=erin.id,
                        project_id=project.id)
    ops = services.group_create(actor=cloud.admin_actor, name="ops")
    services.role_grant(actor=cloud.admin_actor, role_id=member.id, group_id=ops.id, project_id=project.id)
    url = f"/dashboard/identity/projects/{project.id}/members"
    page = admin_client.get(url).content.decode()
    assert 'data-confirm="Remove user erin from project admin? Its roles there (member, reader) are revoked."' in page
    assert f'name="ids" value="group:{ops.id}"' in page

    keys = [f"user:{erin.id}", f"user:{me.id}", f"group:{ops.id}", "user:nope", "robot:x"]
    answer = admin_client.post(f"{url}/act", {"action": "remove", "ids": keys}, HTTP_ACCEPT="application/json")
    results = {r["id"]: r for r in json.loads(answer.content)["results"]}
    assert answer.status_code == 200 and list(results) == keys
    assert results[f"user:{erin.id}"] == {"id": f"user:{erin.id}", "ok": True,
                                          "message": "Removed user erin from project admin (roles member, reader)."}
    assert results[f"group:{ops.id}"]["ok"] and not results["user:nope"]["ok"] and not results["robot:x"]["ok"]
    refused = results[f"user:{me.id}"]
    assert not refused["ok"] and refused["message"] == ("You cannot remove the admin role from the account you "
                                                        "are signed in with.")
    # all or nothing: the refused row keeps every role it had; the others are gone
    assert set(RoleAssignment.objects.filter(user=me, project=project).values_list("role__name", flat=True)) == {
        "admin", "member"}
    assert not RoleAssignment.objects.filter(project=project, user=erin).exists()
    assert not RoleAssignment.objects.filter(project=project, group=ops).exists()
    # another admin may go (one is left); without script: a message per row and back
    done = admin_client.post(f"{url}/act", {"action": "remove", "ids": [f"user:{second.id}"], "next": url})
    assert done.status_code == 302 and done["Location"] == url
    assert not RoleAssignment.objects.filter(project=project, user=second, role=admin_role).exists()
    # a member of the cloud: the section is the admins' (403), nothing changes
    alice = Client()
    assert sign_in(alice, "alice", factories.PASSWORD).status_code == 302
    assert alice.post(f"{url}/act", {"action": "remove", "ids": [f"user:{me.id}"]}).status_code == 403
    assert RoleAssignment.objects.filter(user=me, project=project, role=admin_role).exists()
