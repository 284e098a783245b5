"""Bootstrap: what devstack makes (domain, roles, admin and demo, the catalog), idempotent."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone

from apps.identity import signals
from apps.identity.models import (
    DEFAULT_DOMAIN_ID,
    Domain,
    Endpoint,
    ImpliedRole,
    Project,
    Region,
    Role,
    RoleAssignment,
    Service,
    User,
)
from apps.identity.services._common import _role_graph_changed
from apps.identity.services.roles import _after_assignment_change

# ---- bootstrap --------------------------------------------------------------------------------

CATALOG_SERVICES: list[tuple[str, str, str]] = [
    # (type, name, path under the public URL)
    ("identity", "keystone", "/identity"),
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("network", "neutron", "/network"),
    ("block-storage", "cinder", "/volume/v3/$(project_id)s"),
    ("volumev3", "cinderv3", "/volume/v3/$(project_id)s"),
    ("object-store", "swift", "/object-store/v1/AUTH_$(project_id)s"),
    ("s3", "s3", "/s3"),
    ("orchestration", "heat", "/orchestration/v1/$(project_id)s"),
    ("metric", "gnocchi", "/metric"),
    ("alarming", "aodh", "/alarming"),
]


def _ensure_user(*, name: str, domain: Domain, password: str, project: Project) -> User:
    user = User.objects.filter(domain=domain, name=name).first()
    if user is None:
        user = User(name=name, domain=domain, default_project=project)
        user.password = make_password(password)
        user.save()
    elif not check_password(password, user.password):
        user.password = make_password(password)
        user.password_changed_at = timezone.now()
        user.enabled = True
        user.save()
    return user


@transaction.atomic
def bootstrap(*, public_url: str, admin_password: str, demo_password: str, region_id: str = "RegionOne"
              ) -> dict[str, Any]:
    """Make what devstack makes; running it again changes only what differs (idempotent)."""
    domain, _ = Domain.objects.get_or_create(id=DEFAULT_DOMAIN_ID, defaults={
        "name": "Default", "description": "The default domain"})
    roles = {}
    for name in ("admin", "member", "reader"):
        roles[name] = Role.objects.filter(name=name, domain=None).first() or Role.objects.create(name=name)
    ImpliedRole.objects.get_or_create(prior=roles["admin"], implied=roles["member"])
    ImpliedRole.objects.get_or_create(prior=roles["member"], implied=roles["reader"])
    _role_graph_changed()

    projects = {}
    for name, description in (("admin", "Bootstrap project for the cloud's administrators"),
                              ("demo", "A project for trying Stratus")):
        projects[name], _ = Project.objects.get_or_create(domain=domain, name=name,
                                                          defaults={"description": description})
    admin = _ensure_user(name="admin", domain=domain, password=admin_password, project=projects["admin"])
    demo = _ensure_user(name="demo", domain=domain, password=demo_password, project=projects["demo"])
    for user, project, role in ((admin, projects["admin"], "admin"), (demo, projects["demo"], "member")):
        assignment, _ = RoleAssignment.objects.get_or_create(role=roles[role], user=user, project=project)
        _after_assignment_change(assignment)
    system_admin, _ = RoleAssignment.objects.get_or_create(role=roles["admin"], user=admin,
                                                           system=RoleAssignment.SYSTEM_ALL)
    _after_assignment_change(system_admin)

    region, _ = Region.objects.get_or_create(id=region_id)
    base = public_url.rstrip("/")
    for type_, name, path in CATALOG_SERVICES:
        service = Service.objects.filter(type=type_, name=name).first() or Service.objects.create(
            type=type_, name=name, description=f"{name} ({type_})")
        for interface in ("public", "internal", "admin"):
            url = base + path
            endpoint = Endpoint.objects.filter(service=service, interface=interface, region=region).first()
            if endpoint is None:
                Endpoint.objects.create(service=service, interface=interface, region=region, url=url)
            elif endpoint.url != url:
                endpoint.url = url
                endpoint.save(update_fields=["url", "updated_at"])
    result = {"domain": domain, "projects": projects, "admin": admin, "demo": demo, "region": region}
    signals.bootstrapped.send(sender=bootstrap, result=result)
    return result
