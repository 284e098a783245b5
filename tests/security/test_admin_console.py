"""The operators' console (/admin/) writes rows directly, past the services. Who may do what (users,
groups, projects, domains, roles, role assignments) is therefore shown there but changed only through
the API or the dashboard's identity panels, whose services revoke tokens, sync object permissions and
tell live sockets. A role assignment deleted in the console used to leave its user every permission.
"""
import pytest
from django.contrib import admin
from django.test import RequestFactory
from guardian.shortcuts import get_perms

from apps.identity import models
from apps.identity.models import Project, RoleAssignment, User
from tests.identity import factories

pytestmark = pytest.mark.django_db

ACCESS_MODELS = ("domain", "project", "user", "group", "role", "impliedrole", "roleassignment")


@pytest.fixture
def console(client, cloud):
    """The seeded cloud's admin signed in to the console."""
    assert client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pw"}).status_code == 302
    return client


def test_a_role_assignment_is_not_removed_behind_the_services_back(console):
    demo, project = User.objects.get(name="demo"), Project.objects.get(name="demo")
    assignment = RoleAssignment.objects.filter(user=demo, project=project).first()
    assert assignment is not None and get_perms(demo, project)
    response = console.post(f"/admin/identity/roleassignment/{assignment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert RoleAssignment.objects.filter(pk=assignment.pk).exists()


@pytest.mark.parametrize("name", ACCESS_MODELS)
def test_access_is_shown_in_the_console_and_changed_elsewhere(console, name):
    model = next(m for m in (getattr(models, n) for n in dir(models)) if getattr(m, "_meta", None)
                 and m._meta.model_name == name)
    assert console.get(f"/admin/identity/{name}/").status_code == 200
    assert console.get(f"/admin/identity/{name}/add/").status_code == 403
    row = model.objects.first()
    if row is not None:
        assert console.get(f"/admin/identity/{name}/{row.pk}/change/").status_code == 200  # shown, read-only
        assert console.post(f"/admin/identity/{name}/{row.pk}/change/", {}).status_code == 403
        assert console.get(f"/admin/identity/{name}/{row.pk}/delete/").status_code == 403


# ---- service-managed rows are shown, never written; the console's actions call the services ------

STRATUS_APPS = ("core", "identity", "compute", "networks", "volumes", "images")


def _registered() -> list[tuple[type, admin.ModelAdmin]]:
    return [(model, model_admin) for model, model_admin in admin.site._registry.items()
            if model._meta.app_label in STRATUS_APPS]


def test_no_stratus_row_is_added_edited_or_bulk_deleted_in_the_console(console):
    """No raw "Add", no field edit, no "Delete selected": each would skip the services' rules (quota,
    node work, tokens, the last admin). Inlines alike."""
    request = RequestFactory().get("/admin/")
    request.user = User.objects.get(name="admin")
    registered = _registered()
    assert len(registered) >= 40
    for model, model_admin in registered:
        name = model._meta.label
        assert model_admin.has_view_permission(request), name
        assert not model_admin.has_add_permission(request), name
        assert not model_admin.has_change_permission(request), name
        assert not model_admin.has_delete_permission(request), name
        assert "delete_selected" not in model_admin.get_actions(request), name
        for inline in model_admin.get_inline_instances(request):
            assert not (inline.has_add_permission(request, None) or inline.has_change_permission(request)
                        or inline.has_delete_permission(request)), (name, inline)


@pytest.mark.parametrize("label", ["compute.instance", "volumes.volume", "volumes.snapshot", "networks.port",
                                   "networks.network", "identity.token", "identity.quotausage", "images.image",
                                   "compute.computenode", "identity.quotalimit"])
def test_the_console_refuses_raw_writes_over_http(console, label):
    app, name = label.split(".")
    assert console.get(f"/admin/{app}/{name}/").status_code == 200
    assert console.get(f"/admin/{app}/{name}/add/").status_code == 403
    assert console.post(f"/admin/{app}/{name}/add/", {}).status_code == 403
    assert console.post(f"/admin/{app}/{name}/", {"action": "delete_selected", "_selected_action": ["x"]}
                        ).status_code in (200, 302)  # an unknown action: nothing happens


def _act(console, path: str, action: str, ids: list[str]):
    return console.post(path, {"action": action, "_selected_action": ids, "index": 0}, follow=True)


def test_the_console_cannot_lock_its_operator_out(console):
    """Disabling users goes through user_update: the operator's own account is refused (the last
    admin first), another user is disabled."""
    me, demo = User.objects.get(name="admin"), User.objects.get(name="demo")
    page = _act(console, "/admin/identity/user/", "disable_users", [me.id, demo.id])
    text = page.content.decode()
    assert "admin is the last enabled admin of the cloud" in text and "Disabled: demo." in text
    actor = factories.admin_actor()
    second = factories.user_with_role(actor, "second", "admin", Project.objects.get(name="admin"))
    page = _act(console, "/admin/identity/user/", "disable_users", [me.id])
    assert "You cannot disable the account you are signed in with." in page.content.decode()
    me.refresh_from_db()
    demo.refresh_from_db()
    assert me.enabled and not demo.enabled and second.enabled
    assert console.get("/admin/identity/user/").status_code == 200  # still signed in


def test_console_actions_call_the_services(console):
    """"Delete selected networks" is network_delete per row: a network in use is refused with the
    service's words, the other goes."""
    from apps.networks import services as network_services

    actor = factories.admin_actor()
    free = network_services.network_create(actor=actor, name="free")
    busy = network_services.network_create(actor=actor, name="busy")
    network_services.port_create(actor=actor, network_id=busy.id, name="p")
    page = _act(console, "/admin/networks/network/", "delete_networks", [free.id, busy.id]).content.decode()
    assert "Deleted: free." in page and "Busy: Unable to complete operation on network" in page
    from apps.networks.models import Network

    assert set(Network.objects.filter(id__in=[free.id, busy.id]).values_list("name", flat=True)) == {"busy"}
