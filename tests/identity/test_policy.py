"""Policy in the services, per role; guardian permissions mirror role assignments; tokens die at
once when what they stand on goes; events are sent on commit only."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from apps.core.access import restrict
from apps.core.errors import Forbidden, NotFound, Unauthorized
from apps.identity import policy, selectors, services
from apps.identity.models import QuotaUsage, Role
from tests.identity import factories

pytestmark = pytest.mark.django_db


# the seeded cloud (tests/conftest.py): rita (reader) and alice (member) of demo, the admin of the admin
# project, olga of "other"
ROLES = {"reader": ("reader_actor", "demo_project"), "member": ("member_actor", "demo_project"),
         "admin": ("admin_actor", "admin_project")}


def _actor(cloud, role: str):
    """The seeded caller with ``role`` and the project where it has it."""
    actor, project = ROLES[role]
    return getattr(cloud, actor), getattr(cloud, project)


@pytest.mark.parametrize(("role", "reads", "writes"), [
    ("reader", True, False),
    ("member", True, True),
    ("admin", True, True),
])
def test_each_role_in_its_own_project(cloud, role, reads, writes):
    actor, own = _actor(cloud, role)
    assert actor.may_read(own.id) is reads
    assert actor.may_write(own.id) is writes
    policy.require_read(actor, own.id)
    if writes:
        policy.require_write(actor, own.id)
    else:
        with pytest.raises(Forbidden):
            policy.require_write(actor, own.id)


@pytest.mark.parametrize("role", ["reader", "member"])
def test_another_projects_objects_are_not_found(cloud, role):
    actor, _ = _actor(cloud, role)
    with pytest.raises(NotFound):
        policy.require_read(actor, cloud.other_project.id)
    with pytest.raises(NotFound):
        policy.require_write(actor, cloud.other_project.id)
    with pytest.raises(NotFound):
        selectors.project_get(actor=actor, project_id=cloud.other_project.id)
    assert selectors.project_get(actor=actor, project_id=cloud.demo_project.id) == cloud.demo_project


def test_admin_does_anything_in_any_project(cloud):
    admin, other = cloud.admin_actor, cloud.other_project
    policy.require_write(admin, other.id)
    assert selectors.project_get(actor=admin, project_id=other.id) == other
    services.project_update(actor=admin, project_id=other.id, description="by the admin")


@pytest.mark.parametrize("role", ["reader", "member"])
def test_identity_administration_is_for_admins(cloud, role):
    actor, _ = _actor(cloud, role)
    with pytest.raises(Forbidden):
        services.project_create(actor=actor, name="nope")
    with pytest.raises(Forbidden):
        services.user_create(actor=actor, name="nope", password="x")
    with pytest.raises(Forbidden):
        services.role_grant(actor=actor, role_id=Role.objects.get(name="admin").id, user_id=actor.user_id,
                            project_id=cloud.demo_project.id)
    with pytest.raises(Forbidden):
        selectors.user_list(actor=actor)


def test_selectors_scope_project_owned_rows_to_the_caller(cloud):
    QuotaUsage.objects.create(project=cloud.demo_project, resource="x", in_use=1)
    QuotaUsage.objects.create(project=cloud.other_project, resource="x", in_use=2)
    QuotaUsage.objects.create(project=cloud.admin_project, resource="x", in_use=3)
    member, admin = cloud.member_actor, cloud.admin_actor
    rows = QuotaUsage.objects.filter(resource="x")  # bootstrap's own rows (e.g. the public network) aside
    assert list(restrict(rows, member, "view").values_list("in_use", flat=True)) == [1]
    assert list(restrict(rows, member, "view", all_projects=True).values_list("in_use", flat=True)) == [1]
    assert list(restrict(rows, admin, "view", all_projects=False).values_list("in_use", flat=True)) == [3]
    assert sorted(restrict(rows, admin, "view", all_projects=True).values_list("in_use", flat=True)) == [1, 2, 3]


def test_guardian_carries_assignments_through_users_and_groups(cloud):
    admin, p1, p2 = cloud.admin_actor, cloud.demo_project, cloud.other_project
    user = services.user_create(actor=admin, name="g-user", password="pw")
    assert list(selectors.projects_for_user(user)) == []
    group = services.group_create(actor=admin, name="team")
    services.group_add_user(actor=admin, group_id=group.id, user_id=user.id)
    member = Role.objects.get(name="member")
    services.role_grant(actor=admin, role_id=member.id, group_id=group.id, project_id=p2.id)
    assert list(selectors.projects_for_user(user)) == [p2]
    assert user.has_perm("identity.project_write", p2)
    assert not user.has_perm("identity.project_write", p1)
    services.role_grant(actor=admin, role_id=Role.objects.get(name="reader").id, user_id=user.id, project_id=p1.id)
    user = selectors.user_get(user_id=user.id)  # fresh permission caches
    assert set(selectors.projects_for_user(user)) == {p1, p2}
    assert user.has_perm("identity.project_read", p1) and not user.has_perm("identity.project_write", p1)
    services.group_remove_user(actor=admin, group_id=group.id, user_id=user.id)
    user = selectors.user_get(user_id=user.id)
    assert list(selectors.projects_for_user(user)) == [p1]
    assert list(selectors.user_projects(user=user)) == [p1]


def test_system_admin_sees_every_project(cloud):
    admin_user = cloud.admin_actor.user
    assert {"admin", "demo", "other"} <= {p.name for p in selectors.projects_for_user(admin_user)}
    # ...but Keystone's "my projects" lists only those with an assignment.
    assert {p.name for p in selectors.user_projects(user=admin_user)} == {"admin"}


def _member_token(cloud):
    return cloud.member_token, cloud.member_actor


def test_token_dies_when_user_is_disabled(cloud):
    token, actor = _member_token(cloud)
    assert services.token_validate(token=token).user_id == actor.user_id
    services.user_update(actor=cloud.admin_actor, user_id=actor.user_id, enabled=False)
    with pytest.raises(NotFound):
        services.token_validate(token=token)
    with pytest.raises(Unauthorized):
        factories.login("alice", cloud.demo_project)


def test_token_dies_when_user_is_deleted(cloud):
    token, actor = _member_token(cloud)
    services.user_delete(actor=cloud.admin_actor, user_id=actor.user_id)
    with pytest.raises(NotFound):
        services.token_validate(token=token)


def test_token_dies_when_password_changes(cloud):
    token, actor = _member_token(cloud)
    services.user_change_password(actor=actor, user_id=actor.user_id, original_password=factories.PASSWORD,
                                  password="new-password")
    with pytest.raises(NotFound):
        services.token_validate(token=token)


def test_token_dies_when_role_is_removed(cloud):
    token, actor = _member_token(cloud)
    services.role_revoke(actor=cloud.admin_actor, role_id=Role.objects.get(name="member").id, user_id=actor.user_id,
                         project_id=cloud.demo_project.id)
    with pytest.raises(NotFound):
        services.token_validate(token=token)
    with pytest.raises(Unauthorized):
        factories.login("alice", cloud.demo_project)


def test_token_dies_when_its_project_is_disabled(cloud):
    token, _ = _member_token(cloud)
    services.project_update(actor=cloud.admin_actor, project_id=cloud.demo_project.id, enabled=False)
    with pytest.raises(NotFound):
        services.token_validate(token=token)


def test_token_is_refused_in_a_project_without_a_role(cloud):
    with pytest.raises(Unauthorized):
        factories.login("alice", cloud.other_project)


def test_a_revoked_token_is_gone_and_only_its_owner_or_an_admin_may_revoke(cloud):
    token, actor = _member_token(cloud)
    reader = cloud.reader_actor
    with pytest.raises(Forbidden):
        services.token_revoke(actor=reader, token=token)
    services.token_revoke(actor=actor, token=token)
    with pytest.raises(NotFound):
        services.token_validate(token=token)


def test_tokens_are_stored_only_as_hashes(cloud):
    token, _ = _member_token(cloud)
    from apps.identity.models import Token

    ids = set(Token.objects.values_list("id", flat=True))
    assert token not in ids
    assert services.token_hash(token) in ids


def test_events_are_sent_on_commit_only(cloud, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("admin", channel)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(RuntimeError), transaction.atomic():
                services.project_create(actor=cloud.admin_actor, name="rolled-back")
                raise RuntimeError
            project = services.project_create(actor=cloud.admin_actor, name="committed")
        message = async_to_sync(layer.receive)(channel)
        assert message["event"] == {"kind": "created", "resource": "project", "id": project.id,
                                    "data": {"name": "committed"}}
    finally:
        async_to_sync(layer.group_discard)("admin", channel)
