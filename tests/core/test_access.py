"""``apps.core.access.restrict``: the one rule for "which rows may this caller see or change", and
the rules the models declare next to them (own project, role, admin, all_projects, and what "view"
admits beyond one's project)."""
from __future__ import annotations

import pytest

from apps.compute.models import Flavor, FlavorAccess, KeyPair
from apps.core.access import AccessRule, restrict, restrict_to_project
from apps.identity.models import Project, Region
from apps.identity.policy import Actor
from apps.images.models import Image, ImageMember
from apps.networks.models import Network, Port, SecurityGroup, SecurityGroupRule, Subnet, SubnetPool
from tests.api_client import SeededCloud

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cloud: SeededCloud) -> dict:
    """The seeded cloud's callers as these tests name them: p1 is demo (rita reader1, alice member1), p2
    is "other" (olga member2), admin1 the admin (of the admin project), unscoped alice without a scope."""
    actors = {"reader1": cloud.reader_actor, "member1": cloud.member_actor, "member2": cloud.other_actor,
              "admin1": cloud.admin_actor}
    return {"p1": cloud.demo_project, "p2": cloud.other_project, "admin_project": cloud.admin_project,
            "users": {name: actor.user for name, actor in actors.items()}, **actors,
            "unscoped": Actor(user=cloud.member_actor.user)}


def _names(qs) -> set[str]:
    return {row.name for row in qs}


def _ports(world) -> None:
    Port.objects.create(project_id=world["p1"].id, name="p1-port", network=_net(world["p1"], "p1-net"),
                        mac_address="fa:16:3e:00:00:01")
    Port.objects.create(project_id=world["p2"].id, name="p2-port", network=_net(world["p2"], "p2-net"),
                        mac_address="fa:16:3e:00:00:02")


def _net(project: Project, name: str, **kw) -> Network:
    return Network.objects.create(project_id=project.id, name=name, **kw)


def test_view_admits_the_callers_project_only(world):
    _ports(world)
    for name in ("reader1", "member1"):
        assert _names(restrict(Port.objects.all(), world[name], "view")) == {"p1-port"}
    assert _names(restrict(Port.objects.all(), world["member2"], "view")) == {"p2-port"}
    assert _names(restrict(Port.objects.all(), world["unscoped"], "view")) == set()


def test_change_needs_a_writing_role(world):
    _ports(world)
    assert _names(restrict(Port.objects.all(), world["reader1"], "change")) == set()
    assert _names(restrict(Port.objects.all(), world["member1"], "change")) == {"p1-port"}


def test_an_admin_sees_every_project_unless_narrowed_to_its_own(world):
    _ports(world)
    admin1 = world["admin1"]
    assert {"p1-port", "p2-port"} <= _names(restrict(Port.objects.all(), admin1, "view"))
    assert {"p1-port", "p2-port"} <= _names(restrict(Port.objects.all(), admin1, "change"))
    Port.objects.create(project_id=world["admin_project"].id, name="admin-port",
                        network=_net(world["admin_project"], "admin-net"), mac_address="fa:16:3e:00:00:03")
    assert _names(restrict(Port.objects.all(), admin1, "view", all_projects=False)) == {"admin-port"}
    # all_projects widens nobody else
    assert _names(restrict(Port.objects.all(), world["member1"], "view", all_projects=True)) == {"p1-port"}


def test_shared_and_external_networks_are_seen_but_not_changed_by_other_projects(world):
    _net(world["p2"], "private")
    shared = _net(world["p2"], "shared", shared=True)
    _net(world["p2"], "external", external=True)
    mine = _net(world["p1"], "mine")
    member1 = world["member1"]
    assert _names(restrict(Network.objects.filter(name__in=["private", "shared", "external", "mine"]),
                           member1, "view")) == {"shared", "external", "mine"}
    assert _names(restrict(Network.objects.filter(name__in=["shared", "mine"]), member1, "change")) == {"mine"}
    assert _names(restrict(Network.objects.filter(name="shared"), world["unscoped"], "view")) == set()
    # a subnet is seen with its network
    Subnet.objects.create(project_id=world["p2"].id, network=shared, name="on-shared", cidr="10.1.0.0/24")
    Subnet.objects.create(project_id=world["p2"].id, network=_net(world["p2"], "p2-only"), name="hidden",
                          cidr="10.2.0.0/24")
    Subnet.objects.create(project_id=world["p2"].id, network=mine, name="on-mine", cidr="10.3.0.0/24")
    assert _names(restrict(Subnet.objects.all(), member1, "view")) >= {"on-shared", "on-mine"}
    assert "hidden" not in _names(restrict(Subnet.objects.all(), member1, "view"))


def test_shared_subnet_pools_are_seen_by_anyone(world):
    for name, shared in (("pool-shared", True), ("pool-private", False)):
        SubnetPool.objects.create(project_id=world["p2"].id, name=name, shared=shared, prefixes=["10.9.0.0/16"],
                                  default_prefixlen=24, min_prefixlen=8, max_prefixlen=30)
    for name in ("member1", "unscoped"):
        assert _names(restrict(SubnetPool.objects.all(), world[name], "view")) == {"pool-shared"}


def test_the_rules_of_ones_security_group_are_seen_whoever_made_them(world):
    group = SecurityGroup.objects.create(project_id=world["p1"].id, name="g")
    rule = SecurityGroupRule.objects.create(project_id=world["p2"].id, security_group=group, direction="ingress")
    assert list(restrict(SecurityGroupRule.objects.filter(pk=rule.pk), world["member1"], "view")) == [rule]
    assert list(restrict(SecurityGroupRule.objects.filter(pk=rule.pk), world["member1"], "change")) == []


def test_images_follow_glances_visibility(world):
    p1, p2 = world["p1"].id, world["p2"].id
    for name, visibility in (("public", Image.PUBLIC), ("community", Image.COMMUNITY), ("private", Image.PRIVATE),
                             ("shared-member", Image.SHARED), ("shared-other", Image.SHARED)):
        Image.objects.create(name=name, owner=p2, visibility=visibility)
    Image.objects.create(name="mine", owner=p1, visibility=Image.PRIVATE)
    ImageMember.objects.create(image=Image.objects.get(name="shared-member"), member=p1, status=ImageMember.PENDING)
    mine = Image.objects.filter(name__in=["public", "community", "private", "shared-member", "shared-other", "mine"])
    expected = {"public", "community", "shared-member", "mine"}
    assert _names(restrict(mine, world["member1"], "view")) == expected
    assert _names(restrict_to_project(mine, project_id=p1)) == expected
    assert _names(restrict(mine, world["member1"], "change")) == {"mine"}
    assert _names(restrict(mine, world["unscoped"], "view")) == {"public", "community"}
    # members: the owner sees every one, a member its own, anyone else none
    members = ImageMember.objects.all()
    assert restrict(members, world["member2"], "view").count() == 1
    assert restrict(members, world["member1"], "view").count() == 1
    ImageMember.objects.create(image=Image.objects.get(name="shared-other"), member=world["p2"].id)
    assert restrict(members, world["member1"], "view").count() == 1
    assert restrict(members, world["member2"], "view").count() == 2


def test_flavors_public_or_given_to_the_project(world):
    def flavor(name: str, public: bool) -> Flavor:
        return Flavor.objects.create(flavorid=name, name=name, vcpus=1, memory_mb=64, is_public=public)

    flavor("f-public", True)
    FlavorAccess.objects.create(flavor=flavor("f-given", False), project=world["p1"])
    FlavorAccess.objects.create(flavor=flavor("f-other", False), project=world["p2"])
    flavors = Flavor.objects.filter(name__startswith="f-")
    assert _names(restrict(flavors, world["member1"], "view")) == {"f-public", "f-given"}
    assert _names(restrict(flavors, world["unscoped"], "view")) == {"f-public"}
    assert _names(restrict(flavors, world["member1"], "change")) == set()
    assert _names(restrict(flavors, world["admin1"], "change")) == {"f-public", "f-given", "f-other"}


def test_key_pairs_belong_to_their_user_in_any_project(world):
    for user in ("member1", "member2"):
        KeyPair.objects.create(user=world["users"][user], name=f"{user}-key", public_key="k", fingerprint="f")
    assert _names(restrict(KeyPair.objects.all(), world["member1"], "view")) == {"member1-key"}
    assert _names(restrict(KeyPair.objects.all(), world["unscoped"], "change")) == {"member1-key"}
    assert _names(restrict(KeyPair.objects.all(), world["admin1"], "view")) >= {"member1-key", "member2-key"}


def test_projects_are_those_one_holds_a_role_on(world):
    projects = Project.objects.filter(name__in=["demo", "other"])
    assert _names(restrict(projects, world["member1"], "view")) == {"demo"}
    assert _names(restrict(projects, world["unscoped"], "view")) == {"demo"}  # RBAC, whatever the scope
    assert _names(restrict(projects, world["member2"], "view")) == {"other"}
    assert _names(restrict(projects, world["admin1"], "view")) == {"demo", "other"}


def test_a_model_without_a_rule_cannot_be_restricted(world):
    assert not isinstance(getattr(Region, "access_rule", None), AccessRule)
    with pytest.raises(TypeError):
        restrict(Region.objects.all(), world["admin1"], "view")


def test_an_unknown_action_is_refused(world):
    with pytest.raises(ValueError):
        restrict(Port.objects.all(), world["admin1"], "delete")  # type: ignore[arg-type]
