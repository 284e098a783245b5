"""The identity lists (projects, users, groups, domains) are live tables (apps/dashboard/tables.py): sorted,
filtered and paged through the identity selectors (Keystone's ``name__icontains`` filter, as the API takes
it) at a constant number of queries, and their row and bulk actions are one identity service call per row,
each row answering its own outcome: the lockout rules of apps/identity/services/admins.py included."""
from __future__ import annotations

import html
import json
import re

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.identity import services
from apps.identity.models import Domain, Group, Project, User
from tests.api_client import SeededCloud
from tests.dashboard.conftest import make_user

ID = "/dashboard/identity"


def _page(client: Client, url: str) -> tuple[list[str], str | None, int]:
    """The rows' names, the next page's link and the queries the page cost."""
    with CaptureQueriesContext(connection) as seen:
        response = client.get(url)
    assert response.status_code == 200, url
    page = response.content.decode()
    names = [html.unescape(n) for n in re.findall(r'<tr data-id="[^"]+" data-name="([^"]*)"', page)]
    links = {kind: html.unescape(href) for href, kind in re.findall(r'href="([^"]+)" data-table-nav data-page="(\w+)"',
                                                                     page)}
    return names, links.get("next"), len(seen.captured_queries)


def _walk(client: Client, url: str) -> tuple[list[str], set[int]]:
    """Every page's names, and what the pages after the first cost (they look their marker up)."""
    names, next_url, _ = _page(client, url)
    counts: set[int] = set()
    while next_url:
        rows, next_url, queries = _page(client, next_url)
        names += rows
        counts.add(queries)
    return names, counts


def _bulk(client: Client, url: str, action: str, ids: list[str]) -> dict[str, dict]:
    answer = client.post(url, {"action": action, "ids": ids}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 200
    return {r["id"]: r for r in json.loads(answer.content)["results"]}


def test_users_are_sorted_filtered_and_paged_at_constant_queries(admin_client: Client, cloud: SeededCloud) -> None:
    made = [services.user_create(actor=cloud.admin_actor, name=f"u-{(i * 7) % 60:02d}",
                                 email=f"{i:02d}@example.org") for i in range(60)]
    names, counts = _walk(admin_client, f"{ID}/users?q=u-&sort=name&dir=desc")
    assert names == sorted((f"u-{i:02d}" for i in range(60)), reverse=True)
    assert len(counts) == 1  # pages 2 and 3 cost the same
    first, following, _ = _page(admin_client, f"{ID}/users?q=U-1&sort=name&dir=asc")  # the filter ignores case
    assert first == [f"u-{i}" for i in range(10, 20)] and following is None
    by_email, _ = _walk(admin_client, f"{ID}/users?q=u-&sort=email&dir=asc")
    assert by_email == [u.name for u in sorted(made, key=lambda u: u.email)]
    # a marker whose row is gone: the first page, not an error
    gone = made[0]
    services.user_delete(actor=cloud.admin_actor, user_id=gone.id)
    assert gone.name == "u-00"
    assert _page(admin_client, f"{ID}/users?q=u-&sort=name&dir=asc&marker={gone.id}")[0][:2] == ["u-01", "u-02"]
    # an unknown sort key: the default order (by name)
    assert _page(admin_client, f"{ID}/users?q=u-0&sort=password")[0] == [f"u-0{i}" for i in range(1, 10)]


def test_every_identity_list_costs_the_same_queries_whatever_its_rows(admin_client: Client,
                                                                      cloud: SeededCloud) -> None:
    urls = [f"{ID}/projects", f"{ID}/users", f"{ID}/groups", f"{ID}/domains"]
    services.group_create(actor=cloud.admin_actor, name="first")  # no list is empty (an empty page asks less)
    before = [_page(admin_client, url)[2] for url in urls]
    admin = cloud.admin_actor
    for i in range(30):
        domain = services.domain_create(actor=admin, name=f"dom{i:02d}")
        project = services.project_create(actor=admin, name=f"p{i:02d}", domain_id=domain.id)
        user = services.user_create(actor=admin, name=f"user{i:02d}", domain_id=domain.id,
                                    default_project_id=project.id)
        group = services.group_create(actor=admin, name=f"team{i:02d}", domain_id=domain.id)
        services.group_add_user(actor=admin, group_id=group.id, user_id=user.id)
    after = [_page(admin_client, url) for url in urls]
    assert [queries for _, _, queries in after] == before
    assert all(len(rows) == 25 and following for rows, following, _ in after)  # full pages, with a next one


def test_bulk_disable_and_delete_of_users_answer_each_row(admin_client: Client, cloud: SeededCloud) -> None:
    me = cloud.admin_user
    second = make_user(cloud, "second", role="admin", project="admin")
    dave, erin = make_user(cloud, "dave", role="member"), make_user(cloud, "erin", role="member")
    results = _bulk(admin_client, f"{ID}/users/act", "disable", [me.id, second.id, dave.id])
    assert results[me.id] == {"id": me.id, "ok": False,
                              "message": "You cannot disable the account you are signed in with."}
    assert results[second.id]["ok"] and results[second.id]["message"] == "Disabled user second."
    assert results[dave.id]["ok"]
    assert User.objects.get(id=me.id).enabled
    assert not User.objects.get(id=second.id).enabled and not User.objects.get(id=dave.id).enabled

    results = _bulk(admin_client, f"{ID}/users/act", "delete", [me.id, erin.id, "no-such-user"])
    assert results[me.id]["message"] == "Refused: admin is the last enabled admin of the cloud. Give another " \
                                        "enabled user the admin role first."  # second is disabled now
    assert results[erin.id] == {"id": erin.id, "ok": True, "message": "Deleted user erin."}
    assert not results["no-such-user"]["ok"] and "Could not find user" in results["no-such-user"]["message"]
    assert User.objects.filter(id=me.id).exists() and not User.objects.filter(id=erin.id).exists()

    results = _bulk(admin_client, f"{ID}/users/act", "enable", [second.id])
    assert results[second.id]["message"] == "Enabled user second." and User.objects.get(id=second.id).enabled
    results = _bulk(admin_client, f"{ID}/users/act", "delete", [me.id])
    assert results[me.id]["message"] == "You cannot delete the account you are signed in with."
    # without script: the same through the form, a message per row, back to the table
    page = admin_client.post(f"{ID}/users/act", {"action": "disable", "ids": [me.id, dave.id]}, follow=True)
    text = page.content.decode()
    assert "You cannot disable the account you are signed in with." in text
    assert admin_client.get(f"{ID}/users").status_code == 200  # still signed in


def test_a_domain_the_services_keep_is_refused_for_its_row_only(admin_client: Client, cloud: SeededCloud) -> None:
    """The default domain (the signed-in admin's own) stays enabled and is not deleted; the others go."""
    admin = cloud.admin_actor
    corp = services.domain_create(actor=admin, name="corp")
    empty = services.domain_create(actor=admin, name="empty", enabled=False)
    results = _bulk(admin_client, f"{ID}/domains/act", "disable", ["default", corp.id])
    assert not results["default"]["ok"] and results[corp.id]["ok"]
    assert Domain.objects.get(id="default").enabled and not Domain.objects.get(id=corp.id).enabled
    results = _bulk(admin_client, f"{ID}/domains/act", "delete", [empty.id, "default"])
    assert results[empty.id] == {"id": empty.id, "ok": True, "message": "Deleted domain empty."}
    assert not results["default"]["ok"] and Domain.objects.filter(id="default").exists()


def test_bulk_actions_on_projects_and_groups(admin_client: Client, cloud: SeededCloud) -> None:
    admin = cloud.admin_actor
    web, db = (services.project_create(actor=admin, name=n) for n in ("web", "db"))
    Project.objects.create(name="child", domain=web.domain, parent=web)
    results = _bulk(admin_client, f"{ID}/projects/act", "disable", [web.id, db.id])
    assert [results[p.id]["message"] for p in (web, db)] == ["Disabled project web.", "Disabled project db."]
    assert not Project.objects.filter(id__in=[web.id, db.id], enabled=True).exists()
    results = _bulk(admin_client, f"{ID}/projects/act", "delete", [web.id, db.id])
    assert not results[web.id]["ok"] and "child projects" in results[web.id]["message"]
    assert results[db.id]["ok"] and not Project.objects.filter(id=db.id).exists()

    ops, devs = (services.group_create(actor=admin, name=n) for n in ("ops", "devs"))
    results = _bulk(admin_client, f"{ID}/groups/act", "delete", [ops.id, devs.id])
    assert all(r["ok"] for r in results.values()) and not Group.objects.filter(name__in=["ops", "devs"]).exists()


def test_the_rows_offer_what_applies_and_name_things(admin_client: Client, cloud: SeededCloud) -> None:
    services.project_update(actor=cloud.admin_actor, project_id=cloud.other_project.id, enabled=False)
    page = admin_client.get(f"{ID}/projects?q=other").content.decode()
    row = re.search(r'<tr data-id="[^"]+" data-name="other">.*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    assert 'data-action="enable"' in row and 'data-action="disable"' not in row
    assert f'href="{ID}/domains?q=Default"' in row  # the domain by name, linked
    assert 'data-bulk-action="disable"' in page and 'data-bulk-action="delete"' in page
    users = admin_client.get(f"{ID}/users?q=demo").content.decode()
    assert f'href="{ID}/projects/{cloud.demo_project.id}/members">demo</a>' in users  # the primary project


def test_a_member_cannot_use_the_bulk_forms(cloud: SeededCloud, demo_client: Client) -> None:
    for url, ids in ((f"{ID}/users/act", [cloud.admin_user.id]), (f"{ID}/projects/act", [cloud.demo_project.id]),
                     (f"{ID}/domains/act", ["default"])):
        assert demo_client.post(url, {"action": "delete", "ids": ids}).status_code == 403, url
    assert User.objects.filter(id=cloud.admin_user.id).exists()
    assert Project.objects.filter(id=cloud.demo_project.id, enabled=True).exists()


def test_the_api_takes_the_same_name_filter(cloud: SeededCloud) -> None:
    services.user_create(actor=cloud.admin_actor, name="Zed-one")
    services.user_create(actor=cloud.admin_actor, name="zed-two")
    body = cloud.admin.get("/identity/v3/users?name__icontains=ZED").json()
    assert sorted(u["name"] for u in body["users"]) == ["Zed-one", "zed-two"]


def test_roles_are_a_table_too(admin_client: Client, cloud: SeededCloud) -> None:
    from apps.identity.models import Role

    admin = cloud.admin_actor
    reader_id = Role.objects.get(name="reader").id
    auditor = services.role_create(actor=admin, name="auditor")
    services.implied_role_create(actor=admin, prior_role_id=auditor.id, implied_role_id=reader_id)
    names, following, queries = _page(admin_client, f"{ID}/roles?sort=name&dir=asc")
    assert names == sorted(names) and {"admin", "member", "reader", "auditor"} <= set(names) and following is None
    for i in range(30):
        role = services.role_create(actor=admin, name=f"role{i:02d}")
        services.implied_role_create(actor=admin, prior_role_id=role.id, implied_role_id=reader_id)
    names, following, more = _page(admin_client, f"{ID}/roles?sort=name&dir=asc")
    assert len(names) == 25 and following and more == queries
    page = admin_client.get(f"{ID}/roles?q=audit").content.decode()
    assert 'data-name="auditor"' in page and 'data-name="member"' not in page
    assert '<span class="chip chip-light">reader</span>' in page  # what it implies
    assert "Delete role auditor? Every assignment of it is removed." in html.unescape(page)
    admin_role = Role.objects.get(name="admin")
    results = _bulk(admin_client, f"{ID}/roles/act", "delete", [auditor.id, admin_role.id])
    assert results[auditor.id] == {"id": auditor.id, "ok": True, "message": "Deleted role auditor."}
    assert not results[admin_role.id]["ok"] and Role.objects.filter(id=admin_role.id).exists()
    assert not Role.objects.filter(id=auditor.id).exists()
