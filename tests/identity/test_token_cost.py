"""Token validation runs on every API request: two queries (the token with its user and scope,
and the assignments), the role graph coming from the cache, which role changes drop at once; and
none at all while nothing in identity changed (apps/identity/token_cache.py)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.identity import services, token_cache
from apps.identity.models import Role

pytestmark = pytest.mark.django_db(transaction=True)


def test_validation_costs_two_queries_and_follows_role_changes(cloud):
    admin, token = cloud.admin_actor, cloud.member_token  # alice, a member of demo
    services.token_validate(token=token)  # warms the role graph cache
    token_cache.epoch_bump()  # forget the validation: the next one goes to the database
    with CaptureQueriesContext(connection) as ctx:
        actor = services.token_validate(token=token)
    assert len(ctx) == 2
    assert actor.roles == {"member", "reader"}
    with CaptureQueriesContext(connection) as ctx:  # the same epoch: this worker's cache answers
        again = services.token_validate(token=token)
    assert len(ctx) == 0
    assert again == actor and again is not actor and again.user is not actor.user  # a copy per request

    auditor = services.role_create(actor=admin, name="auditor")
    services.implied_role_create(actor=admin, prior_role_id=Role.objects.get(name="member").id,
                                 implied_role_id=auditor.id)
    assert services.token_validate(token=token).roles == {"member", "reader", "auditor"}
    services.implied_role_delete(actor=admin, prior_role_id=Role.objects.get(name="member").id,
                                 implied_role_id=auditor.id)
    assert services.token_validate(token=token).roles == {"member", "reader"}
