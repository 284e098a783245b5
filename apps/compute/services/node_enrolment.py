"""Node enrolment (issue 16, first step): an admin makes a token for one node of one role
(``manage.py node_token create``); the node exchanges it once, before it expires, at
``POST /v1/nodes/enrol`` for what it needs to join: the broker URL, its queue, the control queue, the
controller's URL and CA. The token is stored only as its SHA-256 (the identity app's ``token_hash``,
as API tokens are). A revoked, expired, used or unknown token is refused and changes nothing.

What a node is given does not yet let it run without the database: its tasks still call services
(the refactor that moves them to specs and reports is the rest of issue 16), so a node's environment
needs DATABASE_URL as well, which this exchange does not hand out.

Broker credentials: with RabbitMQ and settings STRATUS_RABBITMQ_MANAGE=rabbitmqctl, the exchange creates
a RabbitMQ user for the node (``stratus-<role>-<name>``, a random password that is only in the answer's
broker URL, never stored) allowed its own queue and the control queue's exchange only
(lib/rabbitmq.py); enrolling the node again resets it with a new password, and revoking
the token it enrolled with deletes it. Otherwise (Redis, or management off) every node gets the
controller's STRATUS_NODE_BROKER_URL as it is."""
from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.compute.models import NODE_ROLES, ComputeNode, EnrolledNode, NodeToken
from apps.compute.selectors import node_enrolment as enrol_selectors
from apps.core.errors import BadRequest, Forbidden, NotFound, StratusError, Unauthorized
from apps.identity.policy import Actor, require_admin
from apps.identity.services import token_hash
from lib.rabbitmq import BrokerError, RabbitMQCtl, node_user

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "stn_"  # so a leaked one is recognisable (and greppable) as a Stratus node token
MAX_HOURS = 24 * 30
NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.I)  # a host name label: it names a queue
REFUSED = "The node token is not valid (unknown, expired, revoked or already used)."


class BrokerUnavailable(StratusError):
    status = 503


@dataclass(frozen=True)
class IssuedNodeToken:
    record: NodeToken
    token: str  # shown once, never stored


@dataclass(frozen=True)
class NodeJoin:
    """What an enrolled node is given."""

    node: EnrolledNode
    broker_url: str
    queue: str
    control_queue: str
    controller_url: str
    ca_pem: str | None  # None: the controller serves plain HTTP (no CA to trust)
    keyprefix: str
    broker_user: str = ""  # its own RabbitMQ user ("" = the controller's broker URL as it is)
    metadata_secret: str = ""  # a network node's: its metadata proxies sign the guests' requests with it

    def environment(self) -> dict[str, str]:
        """The node's settings, as the environment ``manage.py up --role <role>`` reads. A network node
        also gets the metadata service's URL on the controller and the secret its metadata proxies sign
        the guests' requests with (as Neutron's metadata_proxy_shared_secret): the guests of every
        compute node reach the metadata service through the network node."""
        env = {"STRATUS_NODE_ROLE": self.node.role, "STRATUS_HOST": self.node.name,
               "CELERY_BROKER_URL": self.broker_url, "STRATUS_CONTROL_QUEUE": self.control_queue,
               "STRATUS_PUBLIC_URL": self.controller_url}
        if self.node.role == "network" and self.metadata_secret:
            env["STRATUS_METADATA_URL"] = f"{self.controller_url}/metadata/"
            env["STRATUS_METADATA_SECRET"] = self.metadata_secret
        if self.broker_url.startswith(("redis://", "rediss://")):
            env["REDIS_URL"] = self.broker_url
        if self.keyprefix:
            env["STRATUS_CELERY_KEYPREFIX"] = self.keyprefix
        if self.broker_url.split("://", 1)[0] in ("amqp", "amqps", "pyamqp"):
            env.pop("STRATUS_CELERY_KEYPREFIX", None)  # Redis only: on RabbitMQ the vhost isolates
        if self.node.role == "compute":
            env["STRATUS_COMPUTE_HOST"] = self.node.name
        return env


def _role(role: str) -> str:
    if role not in NODE_ROLES:
        raise BadRequest(f"Invalid node role {role!r}: one of {', '.join(NODE_ROLES)} expected.")
    return role


def _node_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise BadRequest(f"Invalid node name {name!r}: a host name label (letters, digits, '-', at most 63) "
                         "expected.")
    return name


def _address(address: str) -> str:
    if address == "":
        return ""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise BadRequest(f"Invalid node address {address!r}: an IPv4 or IPv6 address expected.") from None


def node_token_create(*, actor: Actor | None, role: str, name: str, expires_hours: float = 24,
                      created_by: str = "") -> IssuedNodeToken:
    """A new enrolment token for the node ``name`` of ``role``, good once within ``expires_hours``.
    ``actor`` None is the operator's shell (``manage.py node_token``); an actor must be an admin."""
    if actor is not None:
        require_admin(actor, action="create node enrolment tokens")
        created_by = created_by or actor.user_id
    _role(role)
    _node_name(name)
    if isinstance(expires_hours, bool) or not 0 < float(expires_hours) <= MAX_HOURS:
        raise BadRequest(f"Invalid expiry: more than 0 and at most {MAX_HOURS} hours expected.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = NodeToken(name=name, role=role, token_hash=token_hash(token), created_by=created_by or "manage.py",
                       expires_at=timezone.now() + timedelta(hours=float(expires_hours)))
    record.full_clean()
    record.save()
    logger.info("node token %s created for %s node %s by %s", record.id, role, name, record.created_by)
    return IssuedNodeToken(record=record, token=token)


def node_token_revoke(*, actor: Actor | None, token_id: str) -> NodeToken:
    """Revoke a token (by its id): it is refused from now on. Revoking twice is harmless."""
    if actor is not None:
        require_admin(actor, action="revoke node enrolment tokens")
    with transaction.atomic():
        record = NodeToken.objects.select_for_update().filter(pk=token_id).first()
        if record is None:
            raise NotFound(f"Node token {token_id} could not be found.")
        if record.revoked_at is None:
            record.revoked_at = timezone.now()
            record.save(update_fields=["revoked_at", "updated_at"])
        node = EnrolledNode.objects.filter(token=record).first()
        if node is not None and broker_managed():
            # the node enrolled with this token (and not since with another) loses its broker user
            try:
                deleted = _rabbitmqctl().user_delete(node_user(node.role, node.name))
            except BrokerError as exc:
                raise BrokerUnavailable(f"The broker user of {node} could not be deleted: {exc}") from exc
            logger.info("broker user of %s deleted (%s)", node, "it existed" if deleted else "it was gone")
    logger.info("node token %s (%s node %s) revoked", record.id, record.role, record.name)
    return record


def broker_managed() -> bool:
    """Whether enrolment makes per-node broker users (RabbitMQ, STRATUS_RABBITMQ_MANAGE=rabbitmqctl)."""
    return settings.STRATUS_RABBITMQ_MANAGE == "rabbitmqctl" and \
        settings.STRATUS_NODE_BROKER_URL.split("://", 1)[0] in ("amqp", "amqps", "pyamqp")


def _rabbitmqctl() -> RabbitMQCtl:
    return RabbitMQCtl(command=settings.STRATUS_RABBITMQCTL)


def _broker_vhost(url: str) -> str:
    """The vhost of an AMQP URL, as kombu reads it (no path, or "/", is the vhost "/")."""
    return unquote(urlsplit(url).path[1:]) or "/"


def _with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _node_broker_user(node: EnrolledNode) -> tuple[str, str]:
    """Create (or reset) the node's RabbitMQ user; returns (user, broker URL with its password)."""
    password = secrets.token_urlsafe(32)
    url = settings.STRATUS_NODE_BROKER_URL
    try:
        user = _rabbitmqctl().node_user_put(vhost=_broker_vhost(url), role=node.role, host=node.name,
                                            password=password, control_queue=settings.CELERY_TASK_DEFAULT_QUEUE)
    except BrokerError as exc:
        logger.error("broker user for %s not made: %s", node, exc)
        raise BrokerUnavailable("The broker could not make this node's credentials; try again later.") from exc
    return user, _with_credentials(url, user, password)


def _ca_pem() -> str | None:
    path = settings.STRATUS_NODE_CA_FILE
    if not path:
        return None
    return Path(path).read_text()


def node_enrol(*, token: str, name: str | None = None, role: str | None = None, address: str = "") -> NodeJoin:
    """Exchange ``token`` for what the node needs to join; record the node (and, for a compute node,
    its ComputeNode row, which its agent's registration fills in). The token is spent by one
    conditional UPDATE, so two exchanges at once cannot both succeed. Refused (401) when the token is
    unknown, expired, revoked or used; refused (403) when ``name`` or ``role`` is not what it was made
    for. A refusal changes nothing."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
        raise Unauthorized(REFUSED)
    address = _address(address)
    now = timezone.now()
    with transaction.atomic():
        record = enrol_selectors.node_token_usable(token_hash=token_hash(token), now=now)
        if record is None:
            logger.warning("node enrolment refused: %s", REFUSED)
            raise Unauthorized(REFUSED)
        if (name is not None and name != record.name) or (role is not None and role != record.role):
            raise Forbidden(f"This node token is for the {record.role} node {record.name}.")
        spent = NodeToken.objects.filter(pk=record.pk, used_at__isnull=True, revoked_at__isnull=True,
                                         expires_at__gt=now).update(used_at=now, used_from=address, updated_at=now)
        if not spent:  # another exchange won, or it was revoked meanwhile
            raise Unauthorized(REFUSED)
        node, _ = EnrolledNode.objects.update_or_create(
            name=record.name, role=record.role, defaults={"address": address, "enrolled_at": now, "token": record})
        if record.role == "compute":
            compute, created = ComputeNode.objects.get_or_create(
                host=record.name, defaults={"hypervisor_hostname": record.name, "host_ip": address})
            if not created and address:
                ComputeNode.objects.filter(pk=compute.pk).update(host_ip=address, updated_at=now)
        # last, inside the transaction: a broker failure rolls the enrolment back (the token stays usable)
        broker_user, broker_url = _node_broker_user(node) if broker_managed() else \
            ("", settings.STRATUS_NODE_BROKER_URL)
    logger.info("%s node %s enrolled from %s with token %s%s", node.role, node.name, address or "?", record.id,
                f", broker user {broker_user}" if broker_user else "")
    return NodeJoin(node=node, broker_url=broker_url, queue=node.queue,
                    control_queue=settings.CELERY_TASK_DEFAULT_QUEUE,
                    controller_url=settings.STRATUS_PUBLIC_URL.rstrip("/"), ca_pem=_ca_pem(),
                    keyprefix=settings.STRATUS_CELERY_KEYPREFIX, broker_user=broker_user,
                    metadata_secret=settings.STRATUS_METADATA_SECRET if node.role == "network" else "")
