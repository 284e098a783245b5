"""The tests' one API client and one seeded cloud.

``ApiClient`` calls any of the cloud's APIs in-process (Django's test client) with a real token: a
path is taken relative to its API's base (``"servers"`` is ``/compute/v2.1/servers``) unless it starts
with the API's root (``/compute/v2``); ``to(api)`` is the same caller on another API.

``SeededCloud`` is the bootstrap state plus one user per role: in the demo project a member (alice),
a second member (bob) and a reader (rita); in another project ("other") a member (olga); and the
admin. Each has a token, an actor and a client of the cloud's API. The ``cloud`` fixture
(tests/conftest.py) makes one; a folder or module names its API with the ``cloud_api`` fixture.

``assert_refused`` is the per-API role checks' one loop (a reader's writes, another project's
requests), for what the isolation battery (tests/security/battery.py) does not say: the API's own
error names.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.test import Client

JSON = "application/json"
GLANCE_PATCH = "application/openstack-images-v2.1-json-patch"
OCTET = "application/octet-stream"

BASES = {"identity": "/identity/v3", "compute": "/compute/v2.1", "network": "/network/v2.0", "image": "/image/v2",
         "volume": "/volume/v3/{project_id}", "object-store": "/object-store/v1/AUTH_{project_id}",
         "metric": "/metric/v1", "orchestration": "/orchestration/v1/{project_id}", "alarming": "/alarming/v2"}
ROOTS = {base.split("/")[1] for base in BASES.values()}  # a path under one of them is whole


class ApiClient:
    """One caller (a token, or none) on one API (a key of ``BASES``)."""

    def __init__(self, token: str | None = None, *, api: str = "identity", project_id: str | None = None) -> None:
        self.client = Client()
        self.token = token
        self.api = api
        self.project_id = project_id

    def to(self, api: str) -> ApiClient:
        """The same caller on another API."""
        return ApiClient(self.token, api=api, project_id=self.project_id)

    def url(self, path: str) -> str:
        if path.startswith("/") and path.split("/")[1] in ROOTS:
            return path
        return f"{BASES[self.api].format(project_id=self.project_id)}/{path.lstrip('/')}"

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             headers: dict[str, str] | None = None, content_type: str | None = None, raw: bytes | None = None) -> Any:
        """``body`` is sent as JSON, ``raw`` as it is; ``token`` replaces the client's for this call. The
        content type is JSON, but Glance's JSON-patch media type for a PATCH of the image API."""
        if content_type is None:
            content_type = GLANCE_PATCH if method == "PATCH" and self.api == "image" else JSON
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        auth = token if token is not None else self.token
        if auth:
            extra["HTTP_X_AUTH_TOKEN"] = auth
        data: Any = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, self.url(path), data=data, content_type=content_type, **extra)

    def get(self, path: str, **kw: Any) -> Any:
        return self.call("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.call("DELETE", path, **kw)

    # shortcuts that assert success and return what was made

    def create(self, collection: str, member: str | None = None, **attrs: Any) -> dict[str, Any]:
        """``POST collection`` with ``{member: attrs}`` (or ``attrs`` alone), answered 201."""
        response = self.post(collection, {member: attrs} if member else attrs)
        assert response.status_code == 201, (response.status_code, response.content[:600])
        return response.json()[member] if member else response.json()

    def network(self, **attrs: Any) -> dict[str, Any]:
        return self.create("networks", "network", **{"name": "net", **attrs})

    def subnet(self, network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any) -> dict[str, Any]:
        return self.create("subnets", "subnet", network_id=network_id, cidr=cidr,
                           ip_version=6 if ":" in cidr else 4, **attrs)

    def port(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        return self.create("ports", "port", network_id=network_id, **attrs)

    def image(self, **body: Any) -> dict[str, Any]:
        return self.create("images", **{"disk_format": "raw", "container_format": "bare", **body})

    def upload(self, image_id: str, data: bytes, **kw: Any) -> Any:
        return self.put(f"images/{image_id}/file", raw=data, content_type=OCTET, **kw)


Request = tuple[str, str, Any]  # (method, path, body or None)


def assert_refused(client: ApiClient, requests: Iterable[Request], check: Callable[[Any], Any]) -> None:
    """The role checks' one loop: each request of ``client`` is refused as ``check`` (the API's error
    helper with the status, e.g. ``partial(nova_error, status=404, key="itemNotFound")``) asserts."""
    for method, path, body in requests:
        check(client.call(method, path, body))


class SeededCloud:
    """The bootstrap state, alice and bob (members) and rita (reader) of demo, olga (member) of
    another project, and the admin; each with a token, an actor and an ``ApiClient`` of ``api``."""

    def __init__(self, api: str) -> None:
        from apps.identity import services as identity
        from apps.identity.models import Project, User
        from tests.identity import factories

        seed = factories.seed()
        self.api = api
        self.admin_actor = factories.admin_actor()
        self.demo_project: Project = seed["projects"]["demo"]
        self.admin_project: Project = seed["projects"]["admin"]
        self.other_project: Project = identity.project_create(actor=self.admin_actor, name="other")
        self.admin_user: User = seed["admin"]  # the bootstrap's users: admin (password admin-pw) and
        self.demo_user: User = seed["demo"]  # demo (demo-pw, a member of demo)
        factories.user_with_role(self.admin_actor, "alice", "member", self.demo_project)
        factories.user_with_role(self.admin_actor, "bob", "member", self.demo_project)
        factories.user_with_role(self.admin_actor, "rita", "reader", self.demo_project)
        factories.user_with_role(self.admin_actor, "olga", "member", self.other_project)
        self.admin_token, _ = identity.token_issue(auth=factories.password_auth("admin", "admin-pw", project="admin"))
        self.member_token, self.member_actor = factories.login("alice", self.demo_project)
        self.member2_token, self.member2_actor = factories.login("bob", self.demo_project)
        self.reader_token, self.reader_actor = factories.login("rita", self.demo_project)
        self.other_token, self.other_actor = factories.login("olga", self.other_project)
        self.admin = self.client(self.admin_token, self.admin_project)
        self.member = self.client(self.member_token, self.demo_project)
        self.member2 = self.client(self.member2_token, self.demo_project)
        self.reader = self.client(self.reader_token, self.demo_project)
        self.other = self.client(self.other_token, self.other_project)
        self.anonymous = self.client(None, self.demo_project)

    def client(self, token: str | None, project: Any) -> ApiClient:
        return ApiClient(token, api=self.api, project_id=project.id)

    @property
    def public_id(self) -> str:
        """The bootstrap's public (external) network."""
        from apps.networks.models import Network

        return Network.objects.get(name="public", external=True).id
