"""Attacks with a node's own RabbitMQ credentials (lib/rabbitmq.py, made at enrolment):
a node cannot read, purge, delete, rebind or write into another node's queue or the control queue, cannot
publish through the default exchange, cannot listen to or forge anyone else's replies; a revoked node's
broker user is gone, a re-enrolled node's old password no longer works, and its password is never stored
nor logged. Real RabbitMQ, a vhost per test (tests/rabbitmq.py)."""
from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

import amqp
import pytest
from amqp.exceptions import AccessRefused

from apps.compute.models import EnrolledNode, NodeToken
from apps.compute.services import node_enrolment as enrol
from lib.rabbitmq import REPLY_EXCHANGE, REPORTS_EXCHANGE, node_user
from tests.capabilities import needs
from tests.rabbitmq import Vhost, rabbitmq_missing

pytestmark = needs(rabbitmq_missing())

CONTROL = "control-sec"


def celery_layout(vhost: Vhost, *queues: str) -> None:
    """What the control tier's Celery declares on RabbitMQ (portal/settings.py): each queue durable, bound
    to a durable topic exchange of its own name with its name as key; and the reply exchange."""
    conn = vhost.connect()
    try:
        ch = conn.channel()
        for q in queues:
            ch.exchange_declare(q, "topic", durable=True, auto_delete=False)
            ch.queue_declare(q, durable=True, auto_delete=False)
            ch.queue_bind(q, q, q)
        ch.exchange_declare(REPLY_EXCHANGE, "topic", durable=True, auto_delete=False)
        ch.exchange_declare(REPORTS_EXCHANGE, "topic", durable=True, auto_delete=False)
        ch.queue_bind(CONTROL, REPORTS_EXCHANGE, CONTROL)  # as the control worker does (portal/celery.py)
    finally:
        conn.close()


def put(vhost: Vhost, queue: str, body: str) -> None:
    conn = vhost.connect()
    try:
        conn.channel().basic_publish(amqp.Message(body), exchange=queue, routing_key=queue)
    finally:
        conn.close()


def refused(conn: amqp.Connection, attempt: Callable[[Any], Any]) -> bool:
    """Whether ``attempt(channel)`` is refused (403) by the broker: each try on a fresh channel, since a
    refusal closes it. A publish is refused asynchronously: a confirm makes the broker answer."""
    ch = conn.channel()
    ch.confirm_select()
    try:
        attempt(ch)
        ch.basic_qos(0, 1, False)  # a round trip: an asynchronous refusal arrives before its answer
    except AccessRefused:
        return True
    if ch.is_open:
        ch.close()
    return False


@pytest.fixture
def nodes(rabbit_vhost: Vhost) -> dict[str, tuple[str, str]]:
    a, b = f"a{secrets.token_hex(4)}", f"b{secrets.token_hex(4)}"
    celery_layout(rabbit_vhost, CONTROL, f"compute.{a}", f"compute.{b}", f"network.{a}", f"network.{b}")
    return {"a": (a, *rabbit_vhost.node_user("compute", a, control_queue=CONTROL)),
            "b": (b, *rabbit_vhost.node_user("compute", b, control_queue=CONTROL))}


def test_a_node_cannot_take_or_touch_another_nodes_queue_or_the_control_queue(rabbit_vhost: Vhost,
                                                                             nodes: dict) -> None:
    a, user, password = nodes["a"]
    b = nodes["b"][0]
    mine, theirs = f"compute.{a}", f"compute.{b}"
    put(rabbit_vhost, theirs, "a task for b")
    put(rabbit_vhost, CONTROL, "a report")
    put(rabbit_vhost, mine, "a task for a")
    conn = rabbit_vhost.connect(user, password)
    try:
        # what its worker does works: its own queue (declare, bind, consume), reports, heartbeat events
        ch = conn.channel()
        ch.exchange_declare(mine, "topic", durable=True, auto_delete=False)
        ch.queue_declare(mine, durable=True, auto_delete=False)
        ch.queue_bind(mine, mine, mine)
        got = ch.basic_get(mine)
        assert got is not None and got.body in ("a task for a", b"a task for a")
        ch.basic_ack(got.delivery_tag)
        assert not refused(conn, lambda c: c.basic_publish(amqp.Message("report"), exchange=REPORTS_EXCHANGE,
                                                           routing_key=CONTROL))
        assert not refused(conn, lambda c: c.basic_publish(amqp.Message("retry"), exchange=mine, routing_key=mine))
        assert not refused(conn, lambda c: c.exchange_declare("celeryev", "topic", durable=True, auto_delete=False))

        # its machine's L2 network agent's queue too (`up --role compute` runs it with the node's user)
        own_network = f"network.{a}"
        put(rabbit_vhost, own_network, "a state for a's L2 agent")
        ch = conn.channel()
        ch.exchange_declare(own_network, "topic", durable=True, auto_delete=False)
        ch.queue_declare(own_network, durable=True, auto_delete=False)
        ch.queue_bind(own_network, own_network, own_network)
        got = ch.basic_get(own_network)
        assert got is not None and got.body in ("a state for a's L2 agent", b"a state for a's L2 agent")
        ch.basic_ack(got.delivery_tag)

        # nothing of another node's, nor of the control tier's
        for target in (theirs, CONTROL, f"network.{b}"):
            assert refused(conn, lambda c, t=target: c.basic_get(t)), f"read {target}"
            assert refused(conn, lambda c, t=target: c.basic_consume(t, callback=print)), f"consume {target}"
            assert refused(conn, lambda c, t=target: c.queue_purge(t)), f"purge {target}"
            assert refused(conn, lambda c, t=target: c.queue_delete(t)), f"delete {target}"
            assert refused(conn, lambda c, t=target: c.exchange_delete(t)), f"delete exchange {target}"
            assert refused(conn, lambda c, t=target: c.queue_declare(t, durable=False, auto_delete=True)), target
            # its own queue bound to their exchange: a copy of their tasks
            assert refused(conn, lambda c, t=target: c.queue_bind(mine, t, t)), f"snoop {target}"
        assert refused(conn, lambda c: c.queue_bind(theirs, mine, "x")), "their queue bound to its exchange"
        # forging tasks for the other node: through its exchange, or the default exchange by queue name
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("forged"), exchange=theirs, routing_key=theirs))
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("forged"), exchange="", routing_key=theirs))
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("forged"), exchange="", routing_key=CONTROL))
        # the reports exchange takes its reports only, not another routing key; the control tier's own
        # exchange takes nothing from it, and it cannot bind the control queue anywhere
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("x"), exchange=REPORTS_EXCHANGE,
                                                       routing_key=theirs))
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("x"), exchange=CONTROL, routing_key=CONTROL))
        assert refused(conn, lambda c: c.queue_bind(CONTROL, mine, mine))
        assert refused(conn, lambda c: c.queue_bind(mine, REPORTS_EXCHANGE, CONTROL))
        assert refused(conn, lambda c: c.exchange_delete(REPORTS_EXCHANGE))
        # a queue of its own choosing, outside its names
        assert refused(conn, lambda c: c.queue_declare(f"compute.{a}x", durable=False, auto_delete=True))
    finally:
        conn.close()
    queues = rabbit_vhost.queues()
    assert queues[theirs] == (1, 0) and queues[CONTROL] == (2, 0)  # b's task and the reports untouched


def test_a_node_hears_only_its_own_replies_and_answers_only_the_control_tier(rabbit_vhost: Vhost,
                                                                           nodes: dict) -> None:
    """Replies (portal/celery_rpc.py): each process's reply queue ``reply.<its queue>.<uuid>`` bound to
    ``stratus.reply`` with its own name; topic permissions keep a node to its own."""
    a, user, password = nodes["a"]
    b = nodes["b"][0]
    control_reply = f"reply.{CONTROL}.{secrets.token_hex(8)}"
    admin = rabbit_vhost.connect()
    ach = admin.channel()
    ach.queue_declare(control_reply, durable=False, auto_delete=False)
    ach.queue_bind(control_reply, REPLY_EXCHANGE, control_reply)
    conn = rabbit_vhost.connect(user, password)
    try:
        own = f"reply.compute.{a}.{secrets.token_hex(8)}"
        ch = conn.channel()
        ch.exchange_declare(REPLY_EXCHANGE, "topic", durable=True, auto_delete=False, passive=True)
        ch.queue_declare(own, durable=False, auto_delete=True)
        ch.queue_bind(own, REPLY_EXCHANGE, own)
        # a task's result, to the control tier's reply queue
        assert not refused(conn, lambda c: c.basic_publish(amqp.Message("result"), exchange=REPLY_EXCHANGE,
                                                           routing_key=control_reply))
        # eavesdropping: its queue bound with the control tier's key, or any key at all
        assert refused(conn, lambda c: c.queue_bind(own, REPLY_EXCHANGE, control_reply))
        assert refused(conn, lambda c: c.queue_bind(own, REPLY_EXCHANGE, "#"))
        assert refused(conn, lambda c: c.queue_bind(own, REPLY_EXCHANGE, f"reply.compute.{b}.#"))
        # another node's replies: neither readable nor forgeable
        assert refused(conn, lambda c: c.queue_declare(f"reply.compute.{b}.x", durable=False, auto_delete=True))
        assert refused(conn, lambda c: c.basic_publish(amqp.Message("forged"), exchange=REPLY_EXCHANGE,
                                                       routing_key=f"reply.compute.{b}.x"))
        assert refused(conn, lambda c: c.basic_get(control_reply))
        assert refused(conn, lambda c: c.exchange_delete(REPLY_EXCHANGE))
        # the pidbox (remote control of every worker) is out of reach
        assert refused(conn, lambda c: c.exchange_declare("celery.pidbox", "fanout", durable=False,
                                                          auto_delete=False))
    finally:
        conn.close()
    assert rabbit_vhost.queues()[control_reply] == (1, 0)
    admin.close()


def test_a_node_cannot_send_a_report_as_another_node(rabbit_vhost: Vhost, nodes: dict) -> None:
    """A report's sender is its ``user_id``, which RabbitMQ checks against the connection's user: node a
    cannot name b (nor the control tier) as the sender, and a report naming itself goes through. The
    control worker then refuses a node's report about another host (tests/security/test_report_sender.py,
    tests/workers/test_rabbitmq_broker.py)."""
    from amqp.exceptions import PreconditionFailed

    _, user, password = nodes["a"]
    b_user = node_user("compute", nodes["b"][0])
    conn = rabbit_vhost.connect(user, password)
    try:
        for forged in (b_user, "guest"):
            ch = conn.channel()
            ch.confirm_select()
            with pytest.raises(PreconditionFailed, match="user_id"):
                ch.basic_publish(amqp.Message("forged", user_id=forged), exchange=REPORTS_EXCHANGE,
                                 routing_key=CONTROL)
                ch.basic_qos(0, 1, False)
        ch = conn.channel()
        ch.confirm_select()
        ch.basic_publish(amqp.Message("mine", user_id=user), exchange=REPORTS_EXCHANGE, routing_key=CONTROL)
        ch.close()
    finally:
        conn.close()
    ch = rabbit_vhost.connect().channel()
    got = ch.basic_get(CONTROL)
    assert got is not None and got.body in ("mine", b"mine") and got.properties["user_id"] == user
    assert ch.basic_get(CONTROL) is None  # nothing forged got through


def _connects(vhost: Vhost, user: str, password: str) -> bool:
    try:
        vhost.connect(user, password).close()
    except AccessRefused:
        return False
    return True


@pytest.mark.django_db
def test_enrolment_makes_a_user_revoking_deletes_it_and_the_password_is_never_kept(
        rabbit_vhost: Vhost, settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    from urllib.parse import unquote, urlsplit

    caplog.set_level(logging.DEBUG)
    settings.STRATUS_RABBITMQ_MANAGE = "rabbitmqctl"
    settings.STRATUS_NODE_BROKER_URL = rabbit_vhost.url()
    settings.CELERY_TASK_DEFAULT_QUEUE = CONTROL
    name = f"n{secrets.token_hex(4)}"
    user = node_user("compute", name)
    rabbit_vhost.users.append(user)  # deleted at the end whatever happens
    first = enrol.node_token_create(actor=None, role="compute", name=name)
    join = enrol.node_enrol(token=first.token)
    url = urlsplit(join.broker_url)
    password = unquote(url.password or "")
    assert unquote(url.username or "") == user == join.broker_user and len(password) >= 32
    assert url.hostname == "127.0.0.1" and unquote(url.path[1:]) == rabbit_vhost.name
    assert join.environment()["CELERY_BROKER_URL"] == join.broker_url
    assert "STRATUS_CELERY_KEYPREFIX" not in join.environment()
    assert _connects(rabbit_vhost, user, password)
    # never stored, never logged
    stored = json.dumps([list(NodeToken.objects.values()), list(EnrolledNode.objects.values())], default=str)
    assert password not in stored and password not in caplog.text

    # enrolled again (a new token): a new password, the old one refused
    second = enrol.node_token_create(actor=None, role="compute", name=name)
    password2 = unquote(urlsplit(enrol.node_enrol(token=second.token).broker_url).password or "")
    assert password2 != password
    assert not _connects(rabbit_vhost, user, password) and _connects(rabbit_vhost, user, password2)
    # revoking the token it no longer stands on leaves it; revoking its current one deletes its user
    enrol.node_token_revoke(actor=None, token_id=first.record.id)
    assert rabbit_vhost.ctl.user_exists(user)
    enrol.node_token_revoke(actor=None, token_id=second.record.id)
    assert not rabbit_vhost.ctl.user_exists(user)
    assert not _connects(rabbit_vhost, user, password2)


@pytest.mark.django_db
def test_a_broker_failure_enrols_nothing_and_leaves_the_token_usable(rabbit_vhost: Vhost, settings: Any) -> None:
    from apps.core.errors import StratusError

    settings.STRATUS_RABBITMQ_MANAGE = "rabbitmqctl"
    settings.STRATUS_NODE_BROKER_URL = rabbit_vhost.url()
    settings.STRATUS_RABBITMQCTL = "/nonexistent/rabbitmqctl"
    issued = enrol.node_token_create(actor=None, role="compute", name=f"n{secrets.token_hex(4)}")
    with pytest.raises(StratusError) as caught:
        enrol.node_enrol(token=issued.token)
    assert caught.value.status == 503
    assert not EnrolledNode.objects.exists()
    assert NodeToken.objects.get().used_at is None


def test_names_that_are_not_node_names_never_reach_rabbitmqctl(rabbit_vhost: Vhost) -> None:
    for role, host in [("compute", "a;rm -rf /"), ("compute", "-p"), ("admin", "x"), ("compute", "a b"),
                       ("compute", "a$(id)"), ("compute", "x" * 64), ("compute", "A.b")]:
        with pytest.raises(ValueError):
            rabbit_vhost.ctl.node_user_put(vhost=rabbit_vhost.name, role=role, host=host, password="p",
                                           control_queue=CONTROL)
    with pytest.raises(ValueError):
        rabbit_vhost.ctl.node_user_put(vhost="x y", role="compute", host="ok", password="p", control_queue=CONTROL)
    with pytest.raises(ValueError):
        rabbit_vhost.ctl.user_delete("guest")  # only node users are ever deleted
    with pytest.raises(ValueError):
        rabbit_vhost.ctl.node_user_put(vhost=rabbit_vhost.name, role="compute", host="ok", password="p",
                                       control_queue="-x")
