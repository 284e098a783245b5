"""The Keystone API per role, over HTTP in-process with real tokens: a reader reads its project, a
member also writes it, an admin does anything anywhere, another project answers 404; and a token
stops working at once when what it stands on goes."""
from __future__ import annotations

import pytest

from apps.identity.models import Role, User
from tests.api_client import ApiClient
from tests.identity import factories
from tests.identity.api import assert_error

pytestmark = pytest.mark.django_db


def _client(cloud, who: str) -> ApiClient:
    """MATRIX's columns are the seeded cloud's callers: rita (reader), alice (member), the admin."""
    return getattr(cloud, who)


def _own(cloud, who: str):
    """The project where ``who`` has its role: demo for rita and alice, the admin project for the admin."""
    return cloud.admin_project if who == "admin" else cloud.demo_project


# (method, path template, body, {role: expected status}); {own} is the project where the caller has its
# role, {other} is the seeded cloud's "other" (where none of them has one).
MATRIX = [
    ("GET", "projects/{own}", None, {"reader": 200, "member": 200, "admin": 200}),
    ("GET", "projects/{own}/tags", None, {"reader": 200, "member": 200, "admin": 200}),
    ("PUT", "projects/{own}/tags/blue", None, {"reader": 403, "member": 201, "admin": 201}),
    ("PUT", "projects/{own}/tags", {"tags": ["a", "b"]}, {"reader": 403, "member": 200, "admin": 200}),
    ("DELETE", "projects/{own}/tags", None, {"reader": 403, "member": 204, "admin": 204}),
    ("GET", "projects/{other}", None, {"reader": 404, "member": 404, "admin": 200}),
    ("GET", "projects/{other}/tags", None, {"reader": 404, "member": 404, "admin": 200}),
    ("PUT", "projects/{other}/tags/blue", None, {"reader": 404, "member": 404, "admin": 201}),
    # identity administration: admins only
    ("GET", "projects", None, {"reader": 403, "member": 403, "admin": 200}),
    ("PATCH", "projects/{own}", {"project": {"description": "x"}}, {"reader": 403, "member": 403, "admin": 200}),
    ("PATCH", "projects/{other}", {"project": {"description": "x"}},
     {"reader": 403, "member": 403, "admin": 200}),
    ("POST", "projects", {"project": {"name": "new-{who}"}}, {"reader": 403, "member": 403, "admin": 201}),
    ("GET", "users", None, {"reader": 403, "member": 403, "admin": 200}),
    ("POST", "users", {"user": {"name": "new-{who}", "password": "pw"}},
     {"reader": 403, "member": 403, "admin": 201}),
    ("GET", "role_assignments?scope.project.id={own}", None, {"reader": 403, "member": 403, "admin": 200}),
    # everyone sees itself and its own projects
    ("GET", "auth/projects", None, {"reader": 200, "member": 200, "admin": 200}),
    ("GET", "role_assignments?user.id={me}", None, {"reader": 200, "member": 200, "admin": 200}),
    ("GET", "users/{me}", None, {"reader": 200, "member": 200, "admin": 200}),
    ("GET", "users/{demo}", None, {"reader": 403, "member": 403, "admin": 200}),
]


@pytest.mark.parametrize("who", ["reader", "member", "admin"])
def test_role_matrix(cloud, who):
    """Every row of MATRIX for one role (one cloud per role keeps this fast); all mismatches are
    reported together."""
    client = _client(cloud, who)
    me = client.get("auth/tokens", headers={"X-Subject-Token": client.token}).json()["token"]["user"]["id"]
    values = {"own": _own(cloud, who).id, "other": cloud.other_project.id, "me": me,
              "demo": User.objects.get(name="demo").id, "who": who}
    mismatches = []
    for method, path, body, expected in MATRIX:
        if body is not None:
            body = {k: {f: v.format(**values) if isinstance(v, str) else v for f, v in inner.items()}
                    if isinstance(inner, dict) else inner for k, inner in body.items()}
        response = client.call(method, path.format(**values), body)
        status = expected[who]
        if response.status_code != status:
            mismatches.append(f"{method} {path}: {response.status_code} != {status} {response.content[:200]!r}")
        elif status >= 400:
            error = assert_error(response, status)
            if status == 404:  # never tells whether it exists
                assert cloud.other_project.name not in error["message"]
    assert not mismatches, "\n".join(mismatches)


def test_reader_sees_its_project_and_its_tags_but_cannot_change_them(cloud):
    admin = _client(cloud, "admin")
    assert admin.put(f"projects/{cloud.demo_project.id}/tags/green").status_code == 201
    reader = _client(cloud, "reader")
    assert reader.get(f"projects/{cloud.demo_project.id}/tags/green").status_code == 204
    assert reader.get(f"projects/{cloud.demo_project.id}").json()["project"]["tags"] == ["green"]
    assert_error(reader.delete(f"projects/{cloud.demo_project.id}/tags/green"), 403)
    assert [p["name"] for p in reader.get("auth/projects").json()["projects"]] == ["demo"]


def test_member_writes_its_project_tags_and_the_listing_filters_on_them(cloud):
    member = _client(cloud, "member")
    p1 = cloud.demo_project.id
    assert member.put(f"projects/{p1}/tags", {"tags": ["x", "y"]}).json() == {"tags": ["x", "y"]}
    assert member.put(f"projects/{p1}/tags/z").status_code == 201
    assert member.delete(f"projects/{p1}/tags/x").status_code == 204
    assert_error(member.get(f"projects/{p1}/tags/x"), 404)
    assert member.get(f"projects/{p1}/tags").json() == {"tags": ["y", "z"]}
    assert_error(member.put(f"projects/{p1}/tags/bad,tag"), 400)

    admin = _client(cloud, "admin")
    names = lambda q: sorted(p["name"] for p in admin.get(f"projects?{q}").json()["projects"])  # noqa: E731
    assert names("tags=y,z") == ["demo"]
    assert names("tags=y,nope") == []
    assert names("tags-any=nope,z") == ["demo"]
    assert "demo" not in names("not-tags-any=z") and "other" in names("not-tags-any=z")
    assert "demo" in names("not-tags=y,nope")


def test_admin_of_one_project_administers_every_project(cloud):
    admin = _client(cloud, "admin")
    p2 = cloud.other_project.id
    assert admin.patch(f"projects/{p2}", {"project": {"description": "by the admin"}}).json()["project"][
        "description"] == "by the admin"
    assert {"admin", "demo", "other"} <= {p["name"] for p in admin.get("projects").json()["projects"]}
    user = admin.post("users", {"user": {"name": "made-by-admin", "password": "pw"}}).json()["user"]
    member = Role.objects.get(name="member")
    assert admin.put(f"projects/{p2}/users/{user['id']}/roles/{member.id}").status_code == 204
    assert admin.delete(f"projects/{p2}").status_code == 204


# ---- a token dies at once when what it stands on goes ----------------------------------------

def _works(token: str, project_id: str) -> int:
    return ApiClient(token).get(f"projects/{project_id}").status_code


def _auth(*args, **kwargs) -> dict:
    return {"auth": factories.password_auth_body(*args, **kwargs)}


def _login(name: str, project) -> str:
    return factories.login(name, project)[0]


def test_disabling_a_user_kills_its_tokens_at_once(cloud):
    token, admin, p1 = cloud.member_token, cloud.admin, cloud.demo_project
    user_id = ApiClient(token).get("auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    assert _works(token, p1.id) == 200
    assert admin.patch(f"users/{user_id}", {"user": {"enabled": False}}).status_code == 200
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)
    assert_error(ApiClient().post("auth/tokens", _auth("alice", factories.PASSWORD, project="demo")), 401)
    # enabling the user again does not bring the old token back to life...
    admin.patch(f"users/{user_id}", {"user": {"enabled": True}})
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)
    # ...but the user may log in again
    assert _works(_login("alice", p1), p1.id) == 200


def test_deleting_a_user_kills_its_tokens_at_once(cloud):
    token, admin, p1 = cloud.member_token, cloud.admin, cloud.demo_project
    user_id = ApiClient(token).get("auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    assert admin.delete(f"users/{user_id}").status_code == 204
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)


def test_changing_the_password_kills_the_tokens_at_once(cloud):
    token, p1 = cloud.member_token, cloud.demo_project
    user_id = ApiClient(token).get("auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    anonymous = ApiClient()
    assert_error(anonymous.post(f"users/{user_id}/password", {"user": {"original_password": "wrong",
                                                                       "password": "new-pw"}}), 401)
    assert _works(token, p1.id) == 200
    response = anonymous.post(f"users/{user_id}/password", {"user": {"original_password": factories.PASSWORD,
                                                                     "password": "new-pw"}})
    assert response.status_code == 204
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)
    assert_error(anonymous.post("auth/tokens", _auth("alice", factories.PASSWORD)), 401)
    fresh = anonymous.post("auth/tokens", _auth("alice", "new-pw", project="demo"))
    assert fresh.status_code == 201 and _works(fresh["X-Subject-Token"], p1.id) == 200


def test_removing_the_role_kills_the_tokens_scoped_there_at_once(cloud):
    token, admin, p1 = cloud.member_token, cloud.admin, cloud.demo_project
    user_id = ApiClient(token).get("auth/tokens", headers={"X-Subject-Token": token}).json()["token"]["user"]["id"]
    member = Role.objects.get(name="member")
    assert admin.delete(f"projects/{p1.id}/users/{user_id}/roles/{member.id}").status_code == 204
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)


def test_leaving_the_group_that_gave_the_role_kills_the_tokens_at_once(cloud):
    admin, p2 = cloud.admin, cloud.other_project
    user = admin.post("users", {"user": {"name": "grouped", "password": "pw"}}).json()["user"]
    group = admin.post("groups", {"group": {"name": "team"}}).json()["group"]
    assert admin.put(f"groups/{group['id']}/users/{user['id']}").status_code == 204
    member = Role.objects.get(name="member")
    assert admin.put(f"projects/{p2.id}/groups/{group['id']}/roles/{member.id}").status_code == 204
    login = ApiClient().post("auth/tokens", _auth("grouped", "pw", project="other"))
    token = login["X-Subject-Token"]
    assert {r["name"] for r in login.json()["token"]["roles"]} == {"member", "reader"}
    assert _works(token, p2.id) == 200
    assert admin.delete(f"groups/{group['id']}/users/{user['id']}").status_code == 204
    assert_error(ApiClient(token).get(f"projects/{p2.id}"), 401)
    assert_error(ApiClient().post("auth/tokens", _auth("grouped", "pw", project="other")), 401)


def test_a_revoked_token_is_refused_and_no_longer_validates(cloud):
    token, p1 = cloud.reader_token, cloud.demo_project
    admin = _client(cloud, "admin")
    assert admin.get("auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
    assert admin.call("HEAD", "auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
    assert ApiClient(token).delete("auth/tokens", headers={"X-Subject-Token": token}).status_code == 204
    assert_error(ApiClient(token).get(f"projects/{p1.id}"), 401)
    assert_error(admin.get("auth/tokens", headers={"X-Subject-Token": token}), 404)
    assert_error(admin.delete("auth/tokens", headers={"X-Subject-Token": token}), 404)
