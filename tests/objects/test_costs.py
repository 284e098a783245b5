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


# ---- the containers' counters: a folded base plus per-PUT/DELETE changes, exact at every moment -----


def _threads(n: int, work) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _exact(actor, name: str) -> Container:
    """The container as every reader sees it, checked against its objects' rows (and the account's)."""
    row = Container.objects.get(project_id=actor.project_id, name=name)
    stored = Object.objects.filter(container=row)
    assert row.object_count == stored.count()
    assert row.bytes_used == sum(o.size for o in stored)
    return row


def test_counters_are_exact_under_concurrent_puts_deletes_and_folds(cloud):
    from apps.objects import selectors
    from apps.objects.models import CounterChange

    actor = cloud.member_actor
    objects.container_create(actor=actor, name="busy")
    objects.container_create(actor=actor, name="other")
    objects.object_put(actor=actor, container="other", name="x", stream=[b"12345"])
    stop = threading.Event()

    def work(i: int) -> None:
        if i == 6:  # a fold running all along, beside the writers
            while not stop.is_set():
                objects.counters_fold()
            return
        for n in range(6):
            objects.object_put(actor=actor, container="busy", name=f"{i}-{n}", stream=[b"y" * (i * 10 + n)])
        objects.object_put(actor=actor, container="busy", name="shared", stream=[b"z" * (i + 1)])
        for n in range(0, 6, 2):
            objects.object_delete(actor=actor, container="busy", name=f"{i}-{n}")

    def writers(i: int) -> None:
        try:
            work(i)
        finally:
            if i != 6:
                done.wait()
                stop.set()

    done = threading.Barrier(6)
    assert not _threads(7, writers)
    row = _exact(actor, "busy")
    assert row.object_count == 6 * 3 + 1
    stat = selectors.account_stat(actor=actor, project_id=actor.project_id)
    assert (stat.object_count, stat.bytes_used) == (row.object_count + 1, row.bytes_used + 5)
    # more writes without a fold: pending changes, and still exact for every reader
    assert not _threads(4, lambda i: objects.object_put(actor=actor, container="busy", name=f"late-{i}",
                                                        stream=[b"q" * 7]))
    assert CounterChange.objects.filter(container=row).exists()
    row = _exact(actor, "busy")
    assert row.base_count != row.object_count  # read as base + pending
    listed = {c.name: c for c in selectors.container_list(actor=actor, project_id=actor.project_id,
                                                          listing=selectors.Listing())}
    assert (listed["busy"].object_count, listed["busy"].bytes_used) == (row.object_count, row.bytes_used)
    # the fold moves them into the base; a second fold finds nothing; the figures never move
    folded = objects.counters_fold()
    assert folded[row.pk] == [row.object_count - row.base_count, row.bytes_used - row.base_bytes]
    assert not CounterChange.objects.exists()
    assert objects.counters_fold() == {}
    after = _exact(actor, "busy")
    assert (after.base_count, after.base_bytes) == (after.object_count, after.bytes_used) == \
        (row.object_count, row.bytes_used)


def test_a_container_with_pending_changes_deletes_once_empty(cloud):
    from apps.objects.models import CounterChange

    api = cloud.member
    req(api, "PUT", "gone")
    req(api, "PUT", "gone/a", b"abc")
    r = req(api, "HEAD", "gone")
    assert (r["X-Container-Object-Count"], r["X-Container-Bytes-Used"]) == ("1", "3")
    assert req(api, "DELETE", "gone").status_code == 409  # not empty: its pending +1 counts
    assert req(api, "DELETE", "gone/a").status_code == 204
    r = req(api, "HEAD", "gone")
    assert (r["X-Container-Object-Count"], r["X-Container-Bytes-Used"]) == ("0", "0")
    assert CounterChange.objects.filter(container__name="gone").count() == 2
    assert req(api, "DELETE", "gone").status_code == 204
    assert not CounterChange.objects.exists()
    req(api, "PUT", "gone")  # a new container of that name starts at zero
    r = req(api, "HEAD", "gone")
    assert (r["X-Container-Object-Count"], r["X-Container-Bytes-Used"]) == ("0", "0")


def test_listings_of_containers_stay_constant_query_with_pending_changes(cloud):
    from apps.objects import selectors

    api = cloud.member
    actor = cloud.member_actor

    def fill(names: list[str]) -> None:
        for name in names:
            req(api, "PUT", name)
            req(api, "PUT", f"{name}/o", b"x" * 3)

    def cost() -> int:
        with CaptureQueriesContext(connection) as swift:
            r = req(api, "GET", "?format=json")
            assert r.status_code == 200
        with CaptureQueriesContext(connection) as table:
            rows = selectors.container_table(actor=actor, sort_key="object_count")
            assert all(row.object_count == 1 and row.bytes_used == 3 for row in rows)
        return len(swift) + len(table)

    fill(["a", "b"])
    few = cost()
    fill(["c", "d", "e", "f"])
    assert cost() == few
    import json
    listed = json.loads(req(api, "GET", "?format=json").content)
    assert [(c["name"], c["count"], c["bytes"]) for c in listed] == [(n, 1, 3) for n in "abcdef"]


@pytest.mark.parametrize("where", ["container", "account"])
def test_quotas_stay_exact_under_concurrent_puts(cloud, where, monkeypatch):
    import time

    from apps.objects import services
    from apps.objects.services import TooLarge

    checked = services._quota_room

    def slow_check(*args, **kwargs):  # the window between the check and the commit, made wide
        checked(*args, **kwargs)
        time.sleep(0.02)

    monkeypatch.setattr(services, "_quota_room", slow_check)
    actor = cloud.member_actor
    if where == "container":
        objects.container_create(actor=actor, name="q", metadata={"quota-count": "5"})
    else:
        objects.account_update(actor=cloud.admin_actor, project_id=actor.project_id, metadata={"quota-count": "5"})
        objects.container_create(actor=actor, name="q")
        objects.container_create(actor=actor, name="q2")
    refused: list[int] = []

    def put(i: int) -> None:
        for n in range(2):
            try:
                objects.object_put(actor=actor, container="q" if i % 2 or where == "container" else "q2",
                                   name=f"{i}-{n}", stream=[b"x"])
            except TooLarge:
                refused.append(i)

    assert not _threads(6, put)
    stored = Object.objects.filter(container__project_id=actor.project_id)
    assert stored.count() == 5 and len(refused) == 12 - 5
    total = sum(c.object_count for c in Container.objects.filter(project_id=actor.project_id))
    assert total == 5
    _exact(actor, "q")


def test_every_fold_every_th_change_folds_its_container_after_commit(cloud, monkeypatch):
    from apps.objects.models import CounterChange

    monkeypatch.setattr(objects, "FOLD_EVERY", 4)
    actor = cloud.member_actor
    objects.container_create(actor=actor, name="often")
    for n in range(12):
        objects.object_put(actor=actor, container="often", name=str(n), stream=[b"ab"])
        assert CounterChange.objects.count() < 4  # folded at the latest by the 4th change
    row = _exact(actor, "often")
    assert (row.object_count, row.bytes_used) == (12, 24) and row.base_count >= 9
