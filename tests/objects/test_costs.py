"""What a 4 KiB object costs (issue 13's bench/objects.py): a Swift PUT is 6 queries (the container with
its account's metadata, then the object's row and the container's counters in one short transaction),
a GET one; the same name PUT from many threads at once leaves one object and counters that add up."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from apps.objects import services as objects
from apps.objects.models import Container, Object
from tests.objects.test_api import body, req

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_put_and_a_get_cost_few_queries(cloud):
    api = cloud.member
    req(api, "PUT", "c")
    req(api, "PUT", "c/warm", b"w")
    with CaptureQueriesContext(connection) as put:
        assert req(api, "PUT", "c/o", b"y" * 4096).status_code == 201
    with CaptureQueriesContext(connection) as get:
        r = req(api, "GET", "c/o")
        assert r.status_code == 200 and body(r) == b"y" * 4096
    assert len(put) <= 6, [q["sql"][:120] for q in put]
    assert len(get) == 1, [q["sql"][:120] for q in get]
    missing = req(api, "GET", "nope/o")
    assert missing.status_code == 404 and req(api, "GET", "c/nope").status_code == 404


def test_concurrent_puts_of_one_name_leave_one_object(cloud):
    actor = cloud.member_actor
    objects.container_create(actor=actor, name="race")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def put(i: int) -> None:
        try:
            start.wait()
            for n in range(3):
                objects.object_put(actor=actor, container="race", name="same", stream=[b"x" * (i + 1)])
                objects.object_put(actor=actor, container="race", name=f"own-{i}-{n}", stream=[b"z"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    row = Container.objects.get(project_id=actor.project_id, name="race")
    stored = Object.objects.filter(container=row)
    assert stored.filter(name="same").count() == 1
    assert row.object_count == stored.count() == 1 + 18
    assert row.bytes_used == sum(o.size for o in stored)


def test_an_s3_get_costs_one_query_once_its_key_is_known(cloud):
    from apps.identity.models import User
    from tests.security.test_s3_signatures import _code, _key, _send

    actor = cloud.member_actor
    objects.container_create(actor=actor, name="bkt")
    creds = _key(actor)
    assert _send("PUT", "/s3/bkt/o", creds, body=b"y" * 4096).status_code == 200
    assert _send("GET", "/s3/bkt/o", creds).getvalue() == b"y" * 4096
    with CaptureQueriesContext(connection) as get:
        r = _send("GET", "/s3/bkt/o", creds)
        assert r.status_code == 200 and r.getvalue() == b"y" * 4096
    assert len(get) == 1, [q["sql"][:120] for q in get]
    bad = type(creds)(creds.access_key, "x" * 40)
    r = _send("GET", "/s3/bkt/o", bad)  # the kept key still checks every signature
    assert r.status_code == 403 and _code(r) == "SignatureDoesNotMatch"
    user = User.objects.get(pk=actor.user_id)
    user.enabled = False
    user.save()
    r = _send("GET", "/s3/bkt/o", creds)  # and a change in identity drops it at once
    assert r.status_code == 403 and _code(r) == "InvalidAccessKeyId"


def test_the_hot_path_reads_what_the_orm_reads(cloud):
    from apps.objects import selectors

    actor = cloud.member_actor
    objects.container_create(actor=actor, name="same", metadata={"color": "blue"})
    objects.object_put(actor=actor, container="same", name="o", stream=[b"abc"], metadata={"k": "v"},
                       headers={"Content-Disposition": "inline"}, delete_at=4102444800)
    got = selectors.object_get(actor=actor, project_id=actor.project_id, container="same", name="o")
    orm = Object.objects.select_related("container").get(container__name="same", name="o")
    for model_row, hot in ((orm, got), (orm.container, got.container)):
        for field in type(model_row)._meta.concrete_fields:
            assert getattr(hot, field.attname) == getattr(model_row, field.attname), field.name
    row = selectors.container_for(actor=actor, project_id=actor.project_id, name="same", need="write",
                                  with_account=True)
    assert row.metadata == {"color": "blue"} and row.account_metadata == {}
