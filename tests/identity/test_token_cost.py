"""Token validation runs on every API request: two queries (the token with its user and scope,
and the assignments), the role graph coming from the cache, which role changes drop at once."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import services
from apps.identity.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


def test_validation_costs_two_queries_and_follows_role_changes(cloud):
    admin, token = cloud.admin_actor, cloud.member_token  # alice, a member of demo
    services.token_validate(token=token)  # warms the role graph cache
    with CaptureQueriesContext(connection) as ctx:
        actor = services.token_validate(token=token)
    assert len(ctx) == 2
    assert actor.roles == {"member", "reader"}

    auditor = services.role_create(actor=admin, name="auditor")
    services.implied_role_create(actor=admin, prior_role_id=Role.objects.get(name="member").id,
                                 implied_role_id=auditor.id)
    assert services.token_validate(token=token).roles == {"member", "reader", "auditor"}
    services.implied_role_delete(actor=admin, prior_role_id=Role.objects.get(name="member").id,
                                 implied_role_id=auditor.id)
    assert services.token_validate(token=token).roles == {"member", "reader"}
