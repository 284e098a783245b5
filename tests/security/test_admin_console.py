"""The operators' console (/admin/) writes rows directly, past the services. Who may do what (users,
groups, projects, domains, roles, role assignments) is therefore shown there but changed only through
the API or the dashboard's identity panels, whose services revoke tokens, sync object permissions and
tell live sockets. A role assignment deleted in the console used to leave its user every permission.
"""
import pytest
from guardian.shortcuts import get_perms

from apps.identity import models
from apps.identity.models import Project, RoleAssignment, User
from tests.identity import factories

pytestmark = pytest.mark.django_db

ACCESS_MODELS = ("domain", "project", "user", "group", "role", "impliedrole", "roleassignment")


@pytest.fixture
def console(client):
    factories.seed()
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
