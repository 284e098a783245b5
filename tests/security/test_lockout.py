"""No lockout through the Keystone API (issue 11): an admin cannot disable (PATCH enabled=false),
delete, or remove the admin role from the account its token belongs to (403), and nobody takes away
the last enabled admin (409). Real Keystone lets a user disable itself; Stratus refuses, as Horizon
does, because the only admin of a fresh cloud would otherwise need the database to come back. Each
refusal is in Keystone's error format, changes nothing, and the caller's token keeps working."""
from __future__ import annotations

import pytest

from apps.identity import services
from apps.identity.models import Role, User
from tests.api_client import ApiClient
from tests.identity import factories
from tests.identity.api import assert_error

pytestmark = pytest.mark.django_db

SELF = "the account you are signed in with"


@pytest.fixture
def cloud():
    # seeds its own world, not the seeded cloud's: the lockout rules count exactly two admins (admin, second)
    seed = factories.seed()
    admin_project = seed["projects"]["admin"]
    second = factories.user_with_role(factories.admin_actor(), "second", "admin", admin_project)
    admin_token, _ = services.token_issue(auth=factories.password_auth("admin", "admin-pw", project="admin"))
    second_token, _ = factories.login("second", admin_project)
    return {"api": ApiClient(admin_token), "second_api": ApiClient(second_token), "me": seed["admin"],
            "second": second, "project": admin_project, "admin_role": Role.objects.get(name="admin")}


def _still_signed_in(api: ApiClient, me: User) -> None:
    assert api.get(f"users/{me.id}").status_code == 200
    assert User.objects.get(id=me.id).enabled


def test_an_admin_cannot_disable_itself(cloud):
    api, me = cloud["api"], cloud["me"]
    error = assert_error(api.patch(f"users/{me.id}", {"user": {"enabled": False}}), 403)
    assert error["message"] == f"You cannot disable {SELF}."
    _still_signed_in(api, me)


def test_an_admin_cannot_delete_itself(cloud):
    api, me = cloud["api"], cloud["me"]
    error = assert_error(api.delete(f"users/{me.id}"), 403)
    assert error["message"] == f"You cannot delete {SELF}."
    _still_signed_in(api, me)


@pytest.mark.parametrize("target", ["projects/{project}", "system"])
def test_an_admin_cannot_remove_its_own_admin_role(cloud, target):
    api, me, role = cloud["api"], cloud["me"], cloud["admin_role"]
    path = f"{target.format(project=cloud['project'].id)}/users/{me.id}/roles/{role.id}"
    error = assert_error(api.delete(path), 403)
    assert error["message"] == f"You cannot remove the admin role from {SELF}."
    assert api.call("HEAD", path).status_code == 204
    _still_signed_in(api, me)


def test_another_admin_may_be_disabled_deleted_and_demoted(cloud):
    """The rule is about one's own account: the same requests on another admin succeed."""
    api, second, role = cloud["api"], cloud["second"], cloud["admin_role"]
    assert api.patch(f"users/{second.id}", {"user": {"enabled": False}}).status_code == 200
    assert api.patch(f"users/{second.id}", {"user": {"enabled": True}}).status_code == 200
    assert api.delete(f"projects/{cloud['project'].id}/users/{second.id}/roles/{role.id}").status_code == 204
    assert api.delete(f"users/{second.id}").status_code == 204


def test_the_last_enabled_admin_stays(cloud):
    api, me, role = cloud["api"], cloud["me"], cloud["admin_role"]
    assert api.delete(f"users/{cloud['second'].id}").status_code == 204
    for method, path, body in (("PATCH", f"users/{me.id}", {"user": {"enabled": False}}),
                               ("DELETE", f"users/{me.id}", None),
                               ("DELETE", f"roles/{role.id}", None)):
        error = assert_error(api.call(method, path, body), 409)
        assert "admin is the last enabled admin of the cloud" in error["message"], (method, path, error)
    # one of its two admin assignments is not the last admin, but it is still its own
    assert_error(api.delete(f"system/users/{me.id}/roles/{role.id}"), 403)
    _still_signed_in(api, me)


def test_deleting_the_admin_role_is_refused(cloud):
    """Deleting the role would take it from every admin, the caller included."""
    api, role = cloud["api"], cloud["admin_role"]
    error = assert_error(api.delete(f"roles/{role.id}"), 409)
    assert "the last enabled admins" in error["message"]
    assert Role.objects.filter(id=role.id).exists()


def test_the_other_admin_is_refused_alike(cloud):
    """Whichever admin signs in, its own account is the one it cannot lock."""
    api, second = cloud["second_api"], cloud["second"]
    assert_error(api.patch(f"users/{second.id}", {"user": {"enabled": False}}), 403)
    assert api.patch(f"users/{cloud['me'].id}", {"user": {"enabled": False}}).status_code == 200
