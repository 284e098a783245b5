"""Authentication and tokens (password, token, application credential), the dashboard's session
actor, and application credentials."""
from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import BadRequest, Forbidden, NotFound, Unauthorized
from apps.identity import selectors, token_cache
from apps.identity.models import ApplicationCredential, Domain, Project, Role, RoleAssignment, Token, User
from apps.identity.policy import Actor, require_self_or_admin
from apps.identity.services._common import UNAUTHENTICATED, _name, _save_unique, token_hash

# ---- tokens ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scope:
    """What a token is asked to be scoped to: a project or a domain (Keystone references: ``{"id"}``
    or ``{"name", "domain": {"id"|"name"}}``), or the system."""

    project: Mapping[str, Any] | None = None
    domain: Mapping[str, Any] | None = None
    system: bool = False


@dataclass(frozen=True)
class AuthRequest:
    """A token request: its methods (the first one authenticates) and what that method needs: a user
    reference and password, a token, or an application credential (by id, or by name and user
    reference, with its secret); and the scope asked for (None: none)."""

    methods: tuple[str, ...]
    user_ref: Mapping[str, Any] | None = None
    password: str = ""
    token: str = ""
    app_cred_id: str = ""
    app_cred_name: str = ""
    app_cred_user: Mapping[str, Any] | None = None
    secret: str = ""
    scope: Scope | None = None

    @property
    def method(self) -> str:
        return self.methods[0]


def _locked(user: User, now: Any) -> bool:
    """Keystone's lockout: locked after STRATUS_LOCKOUT_FAILURE_ATTEMPTS wrong passwords in a row,
    for STRATUS_LOCKOUT_DURATION seconds after the last one (then the count starts again)."""
    attempts = settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS
    if attempts <= 0 or user.failed_auth_count < attempts or user.options.get("ignore_lockout_failure_attempts"):
        return False
    if user.failed_auth_at is not None and now - user.failed_auth_at >= timedelta(
            seconds=settings.STRATUS_LOCKOUT_DURATION):
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, failed_auth_at=None)
        user.failed_auth_count, user.failed_auth_at = 0, None
        return False
    return True


def password_authenticate(*, user_ref: Mapping[str, Any], password: str) -> User:
    """The user that ``user_ref`` (Keystone's {"id"} or {"name", "domain"}) names, if ``password`` is
    its password and it may log in; Unauthorized otherwise. The one password check of the Keystone
    API and the dashboard.

    It costs one password hash whatever the outcome (an unknown user is checked against an unusable
    hash, which Django answers after hashing once), so the time taken does not tell whether a user
    exists. A wrong password counts against the user (lockout, when STRATUS_LOCKOUT_FAILURE_ATTEMPTS
    is set); the count is written at once, outside any transaction of the caller's that the
    refusal rolls back: call it outside one."""
    try:
        user = selectors.user_by_name_or_id(ref=dict(user_ref))
    except (NotFound, BadRequest):
        user = None
    if user is None:
        check_password(password, "!")  # same cost as a real check, always False
        raise Unauthorized(UNAUTHENTICATED)
    now = timezone.now()
    locked = _locked(user, now)
    correct = check_password(password, user.password)
    if locked:
        raise Unauthorized(UNAUTHENTICATED)  # Keystone's AccountLocked is this 401 too
    if not correct:
        if settings.STRATUS_LOCKOUT_FAILURE_ATTEMPTS > 0:
            User.objects.filter(pk=user.pk).update(failed_auth_count=F("failed_auth_count") + 1, failed_auth_at=now)
        raise Unauthorized(UNAUTHENTICATED)
    if not user.enabled or not user.domain.enabled:
        raise Unauthorized(UNAUTHENTICATED)
    if user.failed_auth_count:
        User.objects.filter(pk=user.pk).update(failed_auth_count=0, failed_auth_at=None)
        user.failed_auth_count, user.failed_auth_at = 0, None
    return user


def _authenticate_app_cred(auth: AuthRequest) -> ApplicationCredential:
    qs = ApplicationCredential.objects.select_related("user", "user__domain", "project", "project__domain")
    if auth.app_cred_id:
        cred = qs.filter(id=auth.app_cred_id).first()
    else:
        try:
            user = selectors.user_by_name_or_id(ref=dict(auth.app_cred_user or {}))
        except NotFound:
            raise Unauthorized(UNAUTHENTICATED) from None
        cred = qs.filter(user=user, name=auth.app_cred_name).first()
    if cred is None or not check_password(auth.secret, cred.secret_hash):
        raise Unauthorized(UNAUTHENTICATED)
    if cred.expires_at is not None and cred.expires_at <= timezone.now():
        raise Unauthorized(UNAUTHENTICATED)
    if not cred.user.enabled:
        raise Unauthorized(UNAUTHENTICATED)
    return cred


def _resolve_scope(scope: Scope | None) -> tuple[Project | None, Domain | None, bool]:
    if scope is None:
        return None, None, False
    try:
        if scope.project is not None:
            return selectors.project_by_name_or_id(ref=scope.project), None, False
        if scope.domain is not None:
            return None, selectors.domain_by_name_or_id(ref=scope.domain), False
    except NotFound:
        raise Unauthorized(UNAUTHENTICATED) from None
    return None, None, scope.system


def token_issue(*, auth: AuthRequest) -> tuple[str, Actor]:
    """Authenticate (password, token or application credential) and issue a token.

    Returns the token string (shown once, stored only as a hash) and the actor it stands for.
    A password is checked before the token's transaction, so that a wrong one is counted
    (lockout) even though the request fails.
    """
    password_user: User | None = None
    if auth.method == "password":
        password_user = password_authenticate(user_ref=auth.user_ref or {}, password=auth.password)
    return _token_issue(auth=auth, password_user=password_user)


@transaction.atomic
def _token_issue(*, auth: AuthRequest, password_user: User | None) -> tuple[str, Actor]:
    methods = list(auth.methods)
    method = auth.method
    scope = auth.scope
    now = timezone.now()
    expires_at = now + timedelta(seconds=settings.STRATUS_TOKEN_TTL_SECONDS)
    audit_chain = ""
    cred: ApplicationCredential | None = None
    if method == "password":
        assert password_user is not None  # checked by token_issue
        user = password_user
    elif method == "token":
        original = token_validate(token=auth.token, unauthorized=True)
        parent = original.token
        assert parent is not None
        if parent.application_credential_id is not None:
            raise Forbidden("A token made from an application credential cannot be rescoped.")
        if (parent.project_id or parent.domain_id or parent.system) and not scope:
            raise Forbidden("A scoped token cannot be used to make an unscoped one.")
        user = original.user
        expires_at = parent.expires_at
        audit_chain = parent.audit_chain_id or parent.audit_id
        methods = list(dict.fromkeys([*parent.methods, "token"]))
    elif method == "application_credential":
        cred = _authenticate_app_cred(auth)
        if scope:
            raise Unauthorized("An application credential is already scoped: do not give a scope.")
        user = cred.user
        if cred.expires_at is not None:
            expires_at = min(expires_at, cred.expires_at)
    else:
        raise Unauthorized(f"Authentication method '{method}' is not supported.")

    if cred is not None:
        project, domain, system = cred.project, None, False
    else:
        project, domain, system = _resolve_scope(scope)
        if not scope and user.default_project_id:
            default = Project.objects.select_related("domain").filter(id=user.default_project_id).first()
            if default is not None and default.enabled and selectors.effective_roles(user, project=default):
                project = default

    if project is not None and (not project.enabled or not project.domain.enabled):
        raise Unauthorized(f"Project {project.id} is disabled.")
    if domain is not None and not domain.enabled:
        raise Unauthorized(f"Domain {domain.id} is disabled.")

    # never a leading '-': the CLI would read such a token as an option (`openstack token revoke -x...`)
    raw = "s" + secrets.token_urlsafe(48)
    token = Token(id=token_hash(raw), user=user, project=project, domain=domain,
                  system=RoleAssignment.SYSTEM_ALL if system else "", application_credential=cred,
                  methods=methods, audit_id=_audit_id(), audit_chain_id=audit_chain,
                  issued_at=now, expires_at=expires_at)
    actor = _actor_for(token)
    if (project is not None or domain is not None or system) and not actor.roles:
        where = f"project {project.id}" if project else f"domain {domain.id}" if domain else "the system"
        raise Unauthorized(f"User {user.id} has no access to {where}.")
    token.save(force_insert=True)
    return raw, actor


def _audit_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def _actor_for(token: Token) -> Actor:
    roles = selectors.effective_roles(token.user, project=token.project, domain=token.domain,
                                      system=bool(token.system))
    if token.application_credential is not None:
        allowed = set(token.application_credential.roles.values_list("id", flat=True))
        roles = [r for r in roles if r.id in allowed]
    return Actor(user=token.user, project=token.project, domain=token.domain, system=bool(token.system),
                 roles=frozenset(r.name for r in roles), role_ids=frozenset(r.id for r in roles),
                 role_refs=tuple((r.id, r.name) for r in roles), token=token,
                 application_credential=token.application_credential)


def token_validate(*, token: str, unauthorized: bool = False) -> Actor:
    """The actor a token stands for, or NotFound (Unauthorized with ``unauthorized``) when the
    token is unknown, expired, revoked, its user disabled, its password changed or its roles gone."""
    error = Unauthorized(UNAUTHENTICATED) if unauthorized else NotFound("Could not find token.")
    if not token:
        raise error
    digest = token_hash(token)
    # what this worker found last time, unless anything identity changed since (token_cache.py)
    epoch = token_cache.current_epoch()
    cached = token_cache.validated_get(digest, epoch)
    if cached is not None:
        return cached
    actor = _token_check(digest, error)
    assert actor.token is not None
    token_cache.validated_put(digest, epoch, actor, expires_at=actor.token.expires_at.timestamp())
    return actor


def _token_check(digest: str, error: Exception) -> Actor:
    """token_validate's checks in the database."""
    try:
        record = selectors.token_get(token_hash=digest)
    except NotFound:
        raise error from None
    user = record.user
    if record.expires_at <= timezone.now() or not user.enabled or not user.domain.enabled:
        raise error
    if record.application_credential_id is None and record.issued_at < user.password_changed_at:
        raise error
    if record.project is not None and (not record.project.enabled or not record.project.domain.enabled):
        raise error
    actor = _actor_for(record)
    if (record.project_id or record.domain_id or record.system) and not actor.roles:
        raise error
    return actor


def token_inspect(*, actor: Actor, token: str) -> Actor:
    """What ``token`` stands for (GET /auth/tokens), for its own user or an admin; anyone else's
    token is not found, exactly as an unknown one."""
    subject = token_validate(token=token)
    if subject.user_id != actor.user_id and not actor.is_admin:
        raise NotFound("Could not find token.")
    return subject


@transaction.atomic
def token_revoke(*, actor: Actor, token: str) -> None:
    """Revoke a token: one's own, or anyone's for an admin."""
    record = Token.objects.filter(id=token_hash(token)).first()
    if record is None or record.expires_at <= timezone.now():
        raise NotFound("Could not find token.")
    if record.user_id != actor.user_id and not actor.is_admin:
        raise Forbidden("You are not authorized to revoke this token.")
    record.delete()


def token_flush_expired(*, now: datetime | None = None) -> int:
    """Delete tokens past their expiry (a periodic task calls this)."""
    # expired tokens are refused anyway: deleting them revokes nothing, so no per-row signal (which
    # would change the identity epoch once per token, token_cache.py); nothing references a token
    expired = Token.objects.filter(expires_at__lte=now or timezone.now())
    return expired._raw_delete(expired.db)


def actor_for_session(*, user: User, project_id: str | None) -> Actor:
    """The actor the dashboard acts as: the logged-in user in the project chosen by the switcher."""
    project = None
    if project_id:
        project = selectors.projects_for_user(user).filter(id=project_id).first()
    roles = selectors.effective_roles(user, project=project) if project is not None else []
    if project is not None and not roles and user.is_superuser:
        roles = selectors.effective_roles(user, system=True) or list(Role.objects.filter(name="admin"))
    if project is None and user.is_superuser:
        roles = list(Role.objects.filter(name="admin"))
    return Actor(user=user, project=project, roles=frozenset(r.name for r in roles),
                 role_ids=frozenset(r.id for r in roles), role_refs=tuple((r.id, r.name) for r in roles))


# ---- application credentials ----------------------------------------------------------------

@transaction.atomic
def application_credential_create(*, actor: Actor, user_id: str, name: str, description: str = "",
                                  secret: str | None = None, roles: list[Mapping[str, str]] | None = None,
                                  expires_at: datetime | None = None, unrestricted: bool = False
                                  ) -> tuple[ApplicationCredential, str]:
    """Make an application credential of the caller's project; the secret (made here unless
    given) is returned once. ``roles``: Keystone references ({"id"} or {"name"}) to roles the caller
    holds on the project (default: all of them)."""
    if actor.user_id != user_id:
        raise Forbidden("You can only make application credentials for yourself.")
    if actor.project is None:
        raise Forbidden("Application credentials need a project-scoped token.")
    if actor.application_credential is not None and not actor.application_credential.unrestricted:
        raise Forbidden("A restricted application credential cannot make another one.")
    if expires_at is not None and expires_at <= timezone.now():
        raise BadRequest("Invalid input for field 'expires_at': it is in the past.")
    wanted: list[Role] = []
    if roles:
        by_id = {r.id: r for r in Role.objects.filter(id__in=actor.role_ids)}
        by_name = {r.name: r for r in by_id.values()}
        for ref in roles:
            role = by_id.get(str(ref.get("id", ""))) or by_name.get(str(ref.get("name", "")))
            if role is None:
                raise Forbidden(f"You do not hold the role {ref.get('id') or ref.get('name')} on this project.")
            wanted.append(role)
    else:
        wanted = list(Role.objects.filter(id__in=actor.role_ids))
    secret = secret or secrets.token_urlsafe(48)
    cred = ApplicationCredential(user=actor.user, project=actor.project, name=_name(name), description=description,
                                 secret_hash=make_password(secret), expires_at=expires_at, unrestricted=unrestricted)
    _save_unique(cred, "application credential", f"user ID {actor.user_id}")
    cred.roles.set(wanted)
    return cred, secret


@transaction.atomic
def application_credential_delete(*, actor: Actor, user_id: str, app_cred_id: str) -> None:
    require_self_or_admin(actor, user_id, action="delete this application credential")
    user = selectors.user_get(user_id=user_id)
    cred = selectors.application_credential_get(user=user, app_cred_id=app_cred_id)
    if actor.application_credential is not None and not actor.application_credential.unrestricted:
        raise Forbidden("A restricted application credential cannot delete application credentials.")
    cred.delete()
