"""The identity services keep the cloud administrable (apps/identity/services/admins.py): nobody
disables, deletes or takes the admin role from the account they are signed in with (directly, through
a group, by deleting the role or disabling its domain), and no change leaves no enabled admin. A
refused change is rolled back whole: the user, its assignments, permissions and tokens stay."""
from __future__ import annotations

import pytest
from guardian.shortcuts import get_perms

from apps.identity import services
from apps.identity.models import Domain, Project, Role, RoleAssignment, Token, User
from apps.identity.policy import Actor
from apps.identity.services import LastAdmin, SelfLockout
from tests.identity import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def cloud():
    # seeds its own world, not the seeded cloud's: the lockout rules count exactly two admins (admin, second)
    seed = factories.seed()
    admin = factories.admin_actor()
    admin_project = seed["projects"]["admin"]
    second = factories.user_with_role(admin, "second", "admin", admin_project)
    return {"admin": admin, "admin_project": admin_project, "second": second,
            "admin_role": Role.objects.get(name="admin")}


def _admin_names() -> set[str]:
    return set(User.objects.filter(name__in=("admin", "second"), enabled=True).values_list("name", flat=True))


def test_nobody_disables_the_account_they_are_signed_in_with(cloud):
    admin = cloud["admin"]
    with pytest.raises(SelfLockout, match="You cannot disable the account you are signed in with"):
        services.user_update(actor=admin, user_id=admin.user_id, enabled=False)
    assert User.objects.get(id=admin.user_id).enabled
    assert Token.objects.filter(user_id=admin.user_id).exists()  # the revocation was rolled back too
    # another admin may be disabled, and the signed-in one may change its own other fields
    services.user_update(actor=admin, user_id=cloud["second"].id, enabled=False)
    services.user_update(actor=admin, user_id=admin.user_id, description="me", enabled=True)
    assert User.objects.get(id=admin.user_id).description == "me"


def test_nobody_deletes_the_account_they_are_signed_in_with(cloud):
    admin = cloud["admin"]
    with pytest.raises(SelfLockout, match="You cannot delete the account you are signed in with"):
        services.user_delete(actor=admin, user_id=admin.user_id)
    assert RoleAssignment.objects.filter(user_id=admin.user_id, role=cloud["admin_role"]).count() == 2
    services.user_delete(actor=admin, user_id=cloud["second"].id)
    assert not User.objects.filter(name="second").exists()


def test_nobody_removes_the_admin_role_from_themselves(cloud):
    admin, role, project = cloud["admin"], cloud["admin_role"], cloud["admin_project"]
    me = User.objects.get(id=admin.user_id)
    for target in ({"project_id": project.id}, {"system": True}):
        with pytest.raises(SelfLockout, match="You cannot remove the admin role from the account you are signed in"):
            services.role_revoke(actor=admin, role_id=role.id, user_id=admin.user_id, **target)
    assert "project_admin" in get_perms(me, project)
    # another role of one's own, and another admin's admin role, may go
    member = Role.objects.get(name="member")
    services.role_grant(actor=admin, role_id=member.id, user_id=admin.user_id, project_id=project.id)
    services.role_revoke(actor=admin, role_id=member.id, user_id=admin.user_id, project_id=project.id)
    services.role_revoke(actor=admin, role_id=role.id, user_id=cloud["second"].id, project_id=project.id)
    assert not User.objects.get(name="second").is_superuser


def test_nobody_loses_the_admin_role_through_a_group(cloud):
    """``second`` is admin only through a group: leaving it, or deleting it, is refused to them."""
    admin, role, project = cloud["admin"], cloud["admin_role"], cloud["admin_project"]
    second = cloud["second"]
    group = services.group_create(actor=admin, name="operators")
    services.role_grant(actor=admin, role_id=role.id, group_id=group.id, project_id=project.id)
    services.group_add_user(actor=admin, group_id=group.id, user_id=second.id)
    services.role_revoke(actor=admin, role_id=role.id, user_id=second.id, project_id=project.id)
    _, as_second = services.token_issue(auth=factories.password_auth("second", factories.PASSWORD,
                                                                     project="admin"))
    assert as_second.is_admin
    with pytest.raises(SelfLockout):
        services.group_remove_user(actor=as_second, group_id=group.id, user_id=second.id)
    with pytest.raises(SelfLockout):
        services.group_delete(actor=as_second, group_id=group.id)
    with pytest.raises(SelfLockout):
        services.role_revoke(actor=as_second, role_id=role.id, group_id=group.id, project_id=project.id)
    assert User.objects.get(id=second.id).groups.filter(keystone_group=group).exists()
    services.group_remove_user(actor=admin, group_id=group.id, user_id=second.id)  # someone else may


def test_the_last_enabled_admin_is_kept(cloud):
    admin = cloud["admin"]
    services.user_delete(actor=admin, user_id=cloud["second"].id)
    for call in (lambda: services.user_update(actor=admin, user_id=admin.user_id, enabled=False),
                 lambda: services.user_delete(actor=admin, user_id=admin.user_id),
                 lambda: services.role_delete(actor=admin, role_id=cloud["admin_role"].id)):
        with pytest.raises(LastAdmin, match="admin is the last enabled admin of the cloud"):
            call()
    assert User.objects.get(id=admin.user_id).enabled and Role.objects.filter(name="admin").exists()


def test_the_last_admin_is_kept_whoever_asks(cloud):
    """An actor whose token still says admin while the database no longer does (or any caller that
    is not itself an admin) cannot take the last admin away either: the rule reads the outcome."""
    services.user_delete(actor=cloud["admin"], user_id=cloud["second"].id)
    demo = User.objects.get(name="demo")
    stale = Actor(user=demo, project=cloud["admin_project"], roles=frozenset({"admin"}))
    admin_id = cloud["admin"].user_id
    with pytest.raises(LastAdmin):
        services.user_update(actor=stale, user_id=admin_id, enabled=False)
    services.role_revoke(actor=stale, role_id=cloud["admin_role"].id, user_id=admin_id, system=True)  # one of two
    with pytest.raises(LastAdmin):
        services.role_revoke(actor=stale, role_id=cloud["admin_role"].id, user_id=admin_id,
                             project_id=cloud["admin_project"].id)
    assert RoleAssignment.objects.filter(user_id=admin_id, role=cloud["admin_role"]).count() == 1


def test_deleting_the_admin_role_is_refused_while_it_holds_the_callers_admin(cloud):
    with pytest.raises(LastAdmin, match="admin, second are the last enabled admins"):
        services.role_delete(actor=cloud["admin"], role_id=cloud["admin_role"].id)
    assert _admin_names() == {"admin", "second"}


def test_nobody_disables_their_own_domain(cloud):
    admin = cloud["admin"]
    domain = services.domain_create(actor=admin, name="ops")
    project = services.project_create(actor=admin, name="ops-project", domain_id=domain.id)
    boss = services.user_create(actor=admin, name="boss", domain_id=domain.id, password=factories.PASSWORD)
    services.role_grant(actor=admin, role_id=cloud["admin_role"].id, user_id=boss.id, project_id=project.id)
    as_boss = Actor(user=boss, project=project, roles=frozenset({"admin"}))
    with pytest.raises(SelfLockout, match="You cannot disable the domain of the account you are signed in with"):
        services.domain_update(actor=as_boss, domain_id=domain.id, enabled=False)
    assert Domain.objects.get(id=domain.id).enabled
    services.domain_update(actor=admin, domain_id=domain.id, enabled=False)  # another admin may
    assert not Project.objects.get(id=project.id).domain.enabled
