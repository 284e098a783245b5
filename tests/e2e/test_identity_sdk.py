"""Keystone's breadth with openstacksdk (in the test process, against the running cloud): CRUD of
every identity resource, role assignments and their filters, application credentials, token
validation and revocation, and the error statuses and shapes clients rely on."""
from __future__ import annotations

import hashlib
import secrets

import openstack
import pytest
import requests
from openstack import exceptions as sdk_exc

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:::openstack")]


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def admin(live_cloud):
    return live_cloud.sdk()


@pytest.fixture(scope="module")
def demo(live_cloud):
    return live_cloud.sdk(user="demo")


@pytest.fixture(scope="module")
def roles(admin) -> dict[str, str]:
    return {r.name: r.id for r in admin.identity.roles()}


class Raw:
    """Plain HTTP to /identity/v3, to see exactly what the server answers."""

    def __init__(self, cloud, token: str | None = None) -> None:
        self.base, self.token = cloud.auth_url, token

    def __call__(self, method: str, path: str, json: object = None, headers: dict | None = None,
                 token: str | None = None) -> requests.Response:
        hdrs = dict(headers or {})
        if token or self.token:
            hdrs["X-Auth-Token"] = token or self.token
        return requests.request(method, f"{self.base}/{path}", json=json, headers=hdrs, timeout=30)


def _error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"] and body["error"]["code"] == status, body
    assert body["error"]["message"] and body["error"]["title"], body
    return body["error"]


def _password_auth(user: str, password: str, project: str | None = None) -> dict:
    auth: dict = {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def _login(cloud, user: str, password: str, project: str | None = None) -> requests.Response:
    return Raw(cloud)("POST", "auth/tokens", _password_auth(user, password, project))


# ---- CRUD -------------------------------------------------------------------------------------

def test_domain_create_update_list_then_disable_and_delete(admin):
    name = _name("dom")
    domain = admin.identity.create_domain(name=name, description="first")
    assert domain.is_enabled and domain.description == "first"
    assert [d.id for d in admin.identity.domains(name=name)] == [domain.id]
    assert admin.identity.find_domain(name).id == domain.id
    admin.identity.update_domain(domain, description="second")
    assert admin.identity.get_domain(domain.id).description == "second"

    with pytest.raises(sdk_exc.ForbiddenException):
        admin.identity.delete_domain(domain)  # an enabled domain cannot go
    admin.identity.update_domain(domain, is_enabled=False)
    admin.identity.delete_domain(domain)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_domain(domain.id)
    assert admin.identity.get_domain("default").is_enabled


def test_project_crud_and_lookup_by_name(admin):
    domain = admin.identity.create_domain(name=_name("dom"))
    name = _name("proj")
    project = admin.identity.create_project(name=name, domain_id=domain.id, description="d", tags=["x"])
    assert (project.domain_id, project.parent_id, project.is_enabled) == (domain.id, domain.id, True)
    child = admin.identity.create_project(name=_name("child"), domain_id=domain.id, parent_id=project.id)
    assert child.parent_id == project.id
    # name lookups: GET /projects/<name> answers 404, then the client filters the list by name
    assert admin.identity.find_project(name, domain_id=domain.id).id == project.id
    assert {p.id for p in admin.identity.projects(domain_id=domain.id)} == {project.id, child.id}
    assert [p.id for p in admin.identity.projects(parent_id=project.id)] == [child.id]
    assert [p.id for p in admin.identity.projects(tags="x", domain_id=domain.id)] == [project.id]

    updated = admin.identity.update_project(project, name=name + "-new", description="e", is_enabled=False)
    assert (updated.name, updated.description, updated.is_enabled) == (name + "-new", "e", False)
    with pytest.raises(sdk_exc.ForbiddenException):
        admin.identity.delete_project(project)  # it has a child
    admin.identity.delete_project(child)
    admin.identity.delete_project(project)
    assert admin.identity.find_project(project.id) is None
    admin.identity.update_domain(domain, is_enabled=False)
    admin.identity.delete_domain(domain)


def test_user_crud(admin, live_cloud):
    project = admin.identity.create_project(name=_name("proj"), domain_id="default")
    name = _name("user")
    user = admin.identity.create_user(name=name, password="pw-1", default_project_id=project.id,
                                      email="a@example.org", description="first")
    assert (user.domain_id, user.default_project_id, user.is_enabled) == ("default", project.id, True)
    assert admin.identity.find_user(name).id == user.id
    assert user.id in {u.id for u in admin.identity.users(domain_id="default")}
    assert [u.id for u in admin.identity.users(name=name)] == [user.id]

    admin.identity.update_user(user, email="b@example.org", is_enabled=False)
    fetched = admin.identity.get_user(user.id)
    assert (fetched.email, fetched.is_enabled) == ("b@example.org", False)
    assert [u.id for u in admin.identity.users(name=name, is_enabled=False)] == [user.id]
    admin.identity.update_user(user, is_enabled=True, password="pw-2")
    _error(_login(live_cloud, name, "pw-1"), 401)
    assert _login(live_cloud, name, "pw-2").status_code == 201

    admin.identity.delete_user(user)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_user(user.id)
    admin.identity.delete_project(project)


def test_groups_and_membership(admin, live_cloud, roles):
    project = admin.identity.create_project(name=_name("proj"), domain_id="default")
    user = admin.identity.create_user(name=_name("user"), password="pw")
    group = admin.identity.create_group(name=_name("group"), description="team")
    assert admin.identity.find_group(group.name).id == group.id
    admin.identity.update_group(group, description="the team")
    assert admin.identity.get_group(group.id).description == "the team"

    admin.identity.add_user_to_group(user, group)
    assert admin.identity.check_user_in_group(user, group)
    assert [u.id for u in admin.identity.group_users(group)] == [user.id]
    assert [g.id for g in admin.identity.user_groups(user)] == [group.id]

    admin.identity.assign_project_role_to_group(project, group, roles["member"])
    token = _login(live_cloud, user.name, "pw", project.name)
    assert token.status_code == 201
    assert {r["name"] for r in token.json()["token"]["roles"]} == {"member", "reader"}
    assert project.id in {p["id"] for p in Raw(live_cloud, token.headers["X-Subject-Token"])(
        "GET", "auth/projects").json()["projects"]}

    admin.identity.remove_user_from_group(user, group)
    assert not admin.identity.check_user_in_group(user, group)
    _error(_login(live_cloud, user.name, "pw", project.name), 401)
    admin.identity.delete_group(group)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_group(group.id)
    admin.identity.delete_user(user)
    admin.identity.delete_project(project)


def test_roles_and_implied_roles(admin, live_cloud, roles):
    raw = Raw(live_cloud, admin.auth_token)
    prior = admin.identity.create_role(name=_name("prior"), description="p")
    implied = admin.identity.create_role(name=_name("implied"))
    assert admin.identity.find_role(prior.name).id == prior.id
    admin.identity.update_role(prior, description="q")
    assert admin.identity.get_role(prior.id).description == "q"
    assert {prior.name, implied.name} <= {r.name for r in admin.identity.roles()}
    assert [r.id for r in admin.identity.roles(name=prior.name)] == [prior.id]

    rule = raw("PUT", f"roles/{prior.id}/implies/{implied.id}")
    assert rule.status_code == 201
    assert rule.json()["role_inference"]["implies"]["id"] == implied.id
    assert raw("HEAD", f"roles/{prior.id}/implies/{implied.id}").status_code == 204
    listed = raw("GET", f"roles/{prior.id}/implies").json()["role_inference"]
    assert [r["id"] for r in listed["implies"]] == [implied.id]
    assert any(r["prior_role"]["id"] == prior.id for r in raw("GET", "role_inferences").json()["role_inferences"])
    _error(raw("PUT", f"roles/{implied.id}/implies/{prior.id}"), 400)  # no loops

    user = admin.identity.create_user(name=_name("user"), password="pw")
    admin.identity.assign_project_role_to_user(admin.identity.find_project("demo"), user, prior)
    token = _login(live_cloud, user.name, "pw", "demo").json()["token"]
    assert {r["name"] for r in token["roles"]} == {prior.name, implied.name}

    assert raw("DELETE", f"roles/{prior.id}/implies/{implied.id}").status_code == 204
    _error(raw("GET", f"roles/{prior.id}/implies/{implied.id}"), 404)
    token = _login(live_cloud, user.name, "pw", "demo").json()["token"]
    assert {r["name"] for r in token["roles"]} == {prior.name}
    admin.identity.delete_role(prior)
    admin.identity.delete_role(implied)
    _error(_login(live_cloud, user.name, "pw", "demo"), 401)  # its only role is gone
    admin.identity.delete_user(user)


def test_regions_services_and_endpoints(admin, live_cloud):
    region = admin.identity.create_region(id=_name("region"), description="r")
    child = admin.identity.create_region(id=_name("child"), parent_region_id=region.id)
    assert [r.id for r in admin.identity.regions(parent_region_id=region.id)] == [child.id]
    admin.identity.update_region(region, description="rr")
    assert admin.identity.get_region(region.id).description == "rr"

    service = admin.identity.create_service(type=_name("type"), name=_name("svc"), description="s")
    assert admin.identity.find_service(service.name).id == service.id
    admin.identity.update_service(service, description="ss")
    assert [s.id for s in admin.identity.services(type=service.type)] == [service.id]

    url = "http://svc.example/v1/$(project_id)s"
    endpoint = admin.identity.create_endpoint(service_id=service.id, interface="public", url=url,
                                              region_id=region.id)
    assert (endpoint.region_id, endpoint.url, endpoint.is_enabled) == (region.id, url, True)
    assert [e.id for e in admin.identity.endpoints(service_id=service.id, interface="public")] == [endpoint.id]
    # a new token's catalog carries it, with the project filled in
    token = _login(live_cloud, "admin", live_cloud.admin_password, "admin").json()["token"]
    entry = next(s for s in token["catalog"] if s["type"] == service.type)
    assert entry["endpoints"][0]["url"] == f"http://svc.example/v1/{token['project']['id']}"
    assert entry["endpoints"][0]["region_id"] == entry["endpoints"][0]["region"] == region.id

    admin.identity.update_endpoint(endpoint, interface="internal", is_enabled=False)
    assert admin.identity.get_endpoint(endpoint.id).interface == "internal"
    admin.identity.delete_endpoint(endpoint)
    admin.identity.delete_service(service)
    with pytest.raises(sdk_exc.ForbiddenException):
        admin.identity.delete_region(region)  # it has a child
    admin.identity.delete_region(child)
    admin.identity.delete_region(region)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.get_region(region.id)


def test_role_assignments_and_their_filters(admin, roles):
    project = admin.identity.create_project(name=_name("proj"), domain_id="default")
    user = admin.identity.create_user(name=_name("user"), password="pw")
    group = admin.identity.create_group(name=_name("group"))
    admin.identity.add_user_to_group(user, group)
    admin.identity.assign_project_role_to_user(project, user, roles["reader"])
    admin.identity.assign_project_role_to_group(project, group, roles["member"])
    assert admin.identity.validate_user_has_project_role(project, user, roles["reader"])

    def seen(**query) -> set[tuple]:
        return {(a.role["id"], (a.user or {}).get("id"), (a.group or {}).get("id"))
                for a in admin.identity.role_assignments(**query)}

    assert seen(scope_project_id=project.id) == {(roles["reader"], user.id, None),
                                                 (roles["member"], None, group.id)}
    assert seen(user_id=user.id) == {(roles["reader"], user.id, None)}
    assert seen(group_id=group.id) == {(roles["member"], None, group.id)}
    assert seen(scope_project_id=project.id, role_id=roles["member"]) == {(roles["member"], None, group.id)}
    # effective: the group's role arrives as the user's, and member implies reader
    assert seen(user_id=user.id, scope_project_id=project.id, effective=True) == {
        (roles["reader"], user.id, None), (roles["member"], user.id, None)}
    named = list(admin.identity.role_assignments(user_id=user.id, scope_project_id=project.id, effective=True,
                                                 include_names=True))
    assert {a.role["name"] for a in named} == {"member", "reader"}
    assert {a.user["name"] for a in named} == {user.name}
    assert {a.scope["project"]["name"] for a in named} == {project.name}
    assert {a.scope["project"]["domain"]["name"] for a in named} == {"Default"}

    admin.identity.unassign_project_role_from_user(project, user, roles["reader"])
    assert seen(user_id=user.id) == set()
    admin.identity.delete_group(group)
    admin.identity.delete_user(user)
    admin.identity.delete_project(project)


def test_application_credentials(demo, live_cloud):
    user_id = demo.current_user_id
    name = _name("cred")
    cred = demo.identity.create_application_credential(user_id, name, description="ci",
                                                       roles=[{"name": "reader"}])
    assert cred.secret and [r["name"] for r in cred.roles] == ["reader"]
    assert demo.identity.get_application_credential(user_id, cred.id).name == name
    assert name in {c.name for c in demo.identity.application_credentials(user_id)}
    assert demo.identity.find_application_credential(user_id, name).id == cred.id

    conn = openstack.connect(auth_url=live_cloud.auth_url, auth_type="v3applicationcredential",
                             application_credential_id=cred.id, application_credential_secret=cred.secret,
                             region_name="RegionOne", identity_api_version="3")
    token = Raw(live_cloud)("GET", "auth/tokens", token=conn.auth_token,
                            headers={"X-Subject-Token": conn.auth_token}).json()["token"]
    assert token["methods"] == ["application_credential"]
    assert [r["name"] for r in token["roles"]] == ["reader"]
    assert token["application_credential"]["id"] == cred.id
    # a restricted application credential cannot make another one
    _error(Raw(live_cloud, conn.auth_token)("POST", f"users/{user_id}/application_credentials",
                                            {"application_credential": {"name": _name("nested")}}), 403)

    demo.identity.delete_application_credential(user_id, cred)
    _error(Raw(live_cloud)("POST", "auth/tokens", {"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": cred.id, "secret": cred.secret}}}}), 401)


def test_token_validate_and_revoke(admin, live_cloud):
    subject = _login(live_cloud, "demo", live_cloud.demo_password, "demo")
    token = subject.headers["X-Subject-Token"]
    validated = admin.identity.validate_token(token)
    assert validated.user["name"] == "demo" and validated.project["name"] == "demo"
    assert {r["name"] for r in validated.roles} == {"member", "reader"}
    assert admin.identity.check_token(token)
    # a user validates its own token; another user's is not found for it
    demo_raw = Raw(live_cloud, token)
    assert demo_raw("GET", "auth/tokens", headers={"X-Subject-Token": token}).status_code == 200
    _error(demo_raw("GET", "auth/tokens", headers={"X-Subject-Token": admin.auth_token}), 404)

    admin.identity.revoke_token(token)
    assert not admin.identity.check_token(token)
    with pytest.raises(sdk_exc.NotFoundException):
        admin.identity.validate_token(token)
    _error(demo_raw("GET", "auth/catalog"), 401)


# ---- errors -----------------------------------------------------------------------------------

def test_400_for_bad_bodies(admin, live_cloud):
    raw = Raw(live_cloud, admin.auth_token)
    _error(raw("POST", "projects", {"name": "no-wrapper"}), 400)
    _error(raw("POST", "projects", {"project": {"name": ""}}), 400)
    _error(raw("POST", "projects", {"project": {"name": "x" * 65}}), 400)
    _error(raw("POST", "users", {"user": {"name": _name("u"), "enabled": "yes"}}), 400)
    _error(raw("POST", "endpoints", {"endpoint": {"service_id": "x", "interface": "sideways", "url": "http://a"}}),
           400)
    _error(Raw(live_cloud)("POST", "auth/tokens", {"auth": {}}), 400)
    _error(Raw(live_cloud)("POST", "auth/tokens", {"nothing": True}), 400)
    _error(raw("GET", "auth/tokens"), 400)  # no X-Subject-Token


def test_401_for_bad_password_expired_and_revoked_tokens(admin, live_cloud):
    response = _error(_login(live_cloud, "demo", "wrong"), 401)
    assert "requires authentication" in response["message"]
    no_token = Raw(live_cloud)("GET", "projects")
    _error(no_token, 401)
    assert no_token.headers["WWW-Authenticate"].startswith("Keystone uri=")
    _error(Raw(live_cloud, "garbage")("GET", "auth/catalog"), 401)

    token = _login(live_cloud, "demo", live_cloud.demo_password, "demo").headers["X-Subject-Token"]
    assert Raw(live_cloud, token)("GET", "auth/catalog").status_code == 200
    digest = hashlib.sha256(token.encode()).hexdigest()
    # a raw UPDATE sends no signal: it tells the web workers' token caches itself (apps/identity/token_cache.py)
    live_cloud.manage("shell", "-c", "from datetime import timedelta; from django.utils import timezone; "
                      "from apps.identity.models import Token; from apps.identity import token_cache; "
                      f"Token.objects.filter(id='{digest}').update(expires_at=timezone.now() - timedelta(seconds=1)); "
                      "token_cache.epoch_bump()")
    _error(Raw(live_cloud, token)("GET", "auth/catalog"), 401)
    _error(Raw(live_cloud, admin.auth_token)("GET", "auth/tokens", headers={"X-Subject-Token": token}), 404)


def test_403_when_a_member_does_admin_things(demo, live_cloud, roles):
    with pytest.raises(sdk_exc.ForbiddenException):
        demo.identity.create_project(name=_name("nope"), domain_id="default")
    with pytest.raises(sdk_exc.ForbiddenException):
        list(demo.identity.users())
    raw = Raw(live_cloud, demo.auth_token)
    _error(raw("POST", "roles", {"role": {"name": _name("nope")}}), 403)
    _error(raw("POST", "domains", {"domain": {"name": _name("nope")}}), 403)
    _error(raw("PUT", f"projects/{demo.current_project_id}/users/{demo.current_user_id}/roles/{roles['admin']}"),
           403)
    _error(raw("DELETE", f"projects/{demo.current_project_id}"), 403)


COLLECTIONS = ["domains", "projects", "users", "groups", "roles", "regions", "services", "endpoints"]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_404_for_unknown_ids_and_names(admin, live_cloud, collection):
    raw = Raw(live_cloud, admin.auth_token)
    # names are not ids: GET /projects/demo must answer 404 (the CLI then filters the list by name)
    for ref in ("0123456789abcdef0123456789abcdef", "a-name-not-an-id", "demo", "admin", "Default", "RegionTwo"):
        _error(raw("GET", f"{collection}/{ref}"), 404)
    _error(raw("PATCH", f"{collection}/does-not-exist", {collection[:-1]: {"description": "x"}}), 404)
    _error(raw("DELETE", f"{collection}/does-not-exist"), 404)


def test_404_for_unknown_paths_and_other_projects(demo, live_cloud, admin):
    _error(Raw(live_cloud)("GET", "no/such/thing"), 404)
    _error(Raw(live_cloud, admin.auth_token)("POST", "OS-TRUST/trusts", {"trust": {}}), 404)  # not built
    admin_project = admin.identity.find_project("admin").id
    _error(Raw(live_cloud, demo.auth_token)("GET", f"projects/{admin_project}"), 404)
    assert Raw(live_cloud, demo.auth_token)("GET", f"projects/{demo.current_project_id}").status_code == 200


def test_409_for_duplicate_names(admin, live_cloud):
    raw = Raw(live_cloud, admin.auth_token)
    for collection, body in (("domains", {"name": _name("dup")}), ("projects", {"name": _name("dup")}),
                             ("users", {"name": _name("dup")}), ("groups", {"name": _name("dup")}),
                             ("roles", {"name": _name("dup")})):
        key = collection[:-1]
        assert raw("POST", collection, {key: body}).status_code == 201
        error = _error(raw("POST", collection, {key: body}), 409)
        assert "Duplicate" in error["message"]
    region = _name("dup")
    assert raw("POST", "regions", {"region": {"id": region}}).status_code == 201
    _error(raw("POST", "regions", {"region": {"id": region}}), 409)
