"""Keystone's tables: domains, projects, users, groups, roles, assignments, tokens, application
credentials, the service catalog, and the quota tables every component reserves against."""
from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import Group as AuthGroup
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.access import NOTHING, AccessRule, Caller
from apps.core.models import Resource, TimeStamped

DEFAULT_DOMAIN_ID = "default"

# What a role on a project lets its holder do, as guardian object permissions on Project.
PERM_READ = "project_read"
PERM_WRITE = "project_write"
PERM_ADMIN = "project_admin"


def _projects_of(caller: Caller, column: str) -> Q:
    """RBAC: rows whose ``column`` is a project the caller's user holds a role on (guardian)."""
    from apps.identity.selectors import projects_for_user

    if caller.user is None:
        return NOTHING
    return Q(id__in=projects_for_user(caller.user).values(column))


class Domain(Resource):
    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    tags = models.JSONField(default=list, blank=True)

    # the domains of the projects the caller holds a role on
    access_rule = AccessRule(project=None, view_also=lambda caller: _projects_of(caller, "domain_id"))

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(Resource):
    name = models.CharField(max_length=64)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="projects")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    tags = models.JSONField(default=list, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    # the projects the caller holds a role on, directly or through a group (whichever it is scoped to)
    access_rule = AccessRule(project=None, view_also=lambda caller: _projects_of(caller, "id"))

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="project_name_unique_in_domain")]
        permissions = [
            (PERM_READ, "Read the project's resources"),
            (PERM_WRITE, "Create, change and delete the project's resources"),
            (PERM_ADMIN, "Administer the project"),
        ]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str) -> User:
        domain_id, _, name = username.rpartition("/")
        return self.get(domain_id=domain_id or DEFAULT_DOMAIN_ID, name=name)


class User(AbstractBaseUser, PermissionsMixin):
    """A Keystone user; also Django's user, so the dashboard and the admin console log in with it.

    ``is_superuser``/``is_staff`` are not columns: they follow the user's admin role assignments.
    """

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="users")
    default_project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    description = models.TextField(blank=True, default="")
    email = models.CharField(max_length=255, blank=True, default="")
    enabled = models.BooleanField(default=True)
    extra = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    password_changed_at = models.DateTimeField(default=timezone.now)
    # Keystone's lockout (STRATUS_LOCKOUT_FAILURE_ATTEMPTS): wrong passwords in a row, and the last one
    failed_auth_count = models.PositiveIntegerField(default=0)
    failed_auth_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    is_superuser = None  # type: ignore[assignment]  # replaced by the property below

    objects = UserManager()

    USERNAME_FIELD = "id"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="user_name_unique_in_domain")]

    def __str__(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        """What Django's admin greets the user by ("Welcome, admin"), not the id it signs in with."""
        return self.name

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        if not self.id:
            from apps.core.models import new_id

            self.id = new_id()
        super().save(*args, **kwargs)

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.enabled

    @property
    def is_superuser(self) -> bool:  # noqa: F811
        """Holds the admin role somewhere: Stratus's admin does anything in any project."""
        cached = getattr(self, "_is_admin_cache", None)
        if cached is None:
            cached = RoleAssignment.objects.filter(
                Q(user=self) | Q(group__auth_group__user=self), role__name="admin"
            ).exists()
            self._is_admin_cache = cached
        return cached

    @property
    def is_staff(self) -> bool:
        return self.enabled and self.is_superuser


class Group(Resource):
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, on_delete=models.PROTECT, related_name="groups")
    description = models.TextField(blank=True, default="")
    # Membership lives on Django's group, so guardian's group permissions apply to members.
    auth_group = models.OneToOneField(AuthGroup, on_delete=models.CASCADE, related_name="keystone_group")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="group_name_unique_in_domain")]

    def __str__(self) -> str:
        return self.name


class Role(Resource):
    name = models.CharField(max_length=255)
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="roles")
    description = models.TextField(blank=True, default="")
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name"], condition=Q(domain__isnull=True), name="global_role_name_unique"),
            models.UniqueConstraint(fields=["domain", "name"], name="domain_role_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class ImpliedRole(TimeStamped):
    """Holding ``prior`` also grants ``implied`` (admin implies member implies reader)."""

    prior = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="implies")
    implied = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="implied_by")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prior", "implied"], name="implied_role_unique")]

    def __str__(self) -> str:
        return f"{self.prior} implies {self.implied}"


class RoleAssignment(TimeStamped):
    """One role for one actor (user or group) on one target (project, domain or the system)."""

    SYSTEM_ALL = "all"

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="assignments")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="assignments")
    system = models.CharField(max_length=16, blank=True, default="")
    inherited = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False, group__isnull=True) | Q(user__isnull=True, group__isnull=False)),
                name="assignment_one_actor",
            ),
            models.CheckConstraint(
                condition=(
                    Q(project__isnull=False, domain__isnull=True, system="")
                    | Q(project__isnull=True, domain__isnull=False, system="")
                    | Q(project__isnull=True, domain__isnull=True) & ~Q(system="")
                ),
                name="assignment_one_target",
            ),
            *[
                models.UniqueConstraint(
                    fields=["role", actor, target, "inherited"],
                    condition=Q(**{f"{actor}__isnull": False}) & (
                        ~Q(system="") if target == "system" else Q(**{f"{target}__isnull": False})),
                    name=f"assignment_unique_{actor}_{target}",
                )
                for actor in ("user", "group")
                for target in ("project", "domain", "system")
            ],
        ]

    def __str__(self) -> str:
        who = f"user {self.user_id}" if self.user_id else f"group {self.group_id}"
        where = (f"project {self.project_id}" if self.project_id
                 else f"domain {self.domain_id}" if self.domain_id else f"system {self.system}")
        return f"{self.role} for {who} on {where}"


class Token(models.Model):
    """An issued token. Only the SHA-256 of the token string is stored."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)  # sha256 hex of the token
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="tokens")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=16, blank=True, default="")
    application_credential = models.ForeignKey("ApplicationCredential", null=True, blank=True,
                                               on_delete=models.CASCADE, related_name="tokens")
    methods = models.JSONField(default=list)
    audit_id = models.CharField(max_length=32)
    audit_chain_id = models.CharField(max_length=32, blank=True, default="")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"token {self.audit_id} of {self.user_id}"


class ApplicationCredential(Resource):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="application_credentials")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="application_credentials")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    secret_hash = models.CharField(max_length=255)
    roles = models.ManyToManyField(Role, related_name="application_credentials")
    expires_at = models.DateTimeField(null=True, blank=True)
    unrestricted = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="app_cred_name_unique_per_user")]

    def __str__(self) -> str:
        return self.name


class Credential(TimeStamped):
    """Keystone's credential: a blob of some ``type`` kept for a user (and a project). An ``ec2``
    credential's blob holds an access key and its secret, which the S3 face needs in clear to check
    request signatures (HMAC), so the blob is stored encrypted (apps/identity/crypto.py) and its id
    is the SHA-256 of the access key, as Keystone makes it."""

    id = models.CharField(primary_key=True, max_length=64, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="credentials")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="credentials")
    type = models.CharField(max_length=255)
    encrypted_blob = models.TextField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} credential {self.id} of {self.user_id}"

    @property
    def blob(self) -> str:
        """The blob in clear ("" when this deployment's key cannot read it)."""
        from apps.identity.crypto import decrypt

        return decrypt(self.encrypted_blob) or ""


class Region(TimeStamped):
    id = models.CharField(primary_key=True, max_length=255)
    description = models.TextField(blank=True, default="")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class Service(Resource):
    type = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["type", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class Endpoint(Resource):
    INTERFACES = [("public", "public"), ("internal", "internal"), ("admin", "admin")]

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="endpoints")
    region = models.ForeignKey(Region, null=True, blank=True, on_delete=models.SET_NULL, related_name="endpoints")
    interface = models.CharField(max_length=8, choices=INTERFACES)
    url = models.CharField(max_length=1024)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["service__type", "interface"]

    def __str__(self) -> str:
        return f"{self.interface} {self.url}"


class QuotaDefault(TimeStamped):
    """An operator's override of a resource's built-in default limit."""

    resource = models.CharField(primary_key=True, max_length=64)
    hard_limit = models.BigIntegerField()

    class Meta:
        ordering = ["resource"]

    def __str__(self) -> str:
        return f"{self.resource} = {self.hard_limit}"


class QuotaLimit(TimeStamped):
    """A project's own limit for one resource (-1 means unlimited)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quota_limits")
    resource = models.CharField(max_length=64)
    hard_limit = models.BigIntegerField()

    class Meta:
        ordering = ["project", "resource"]
        constraints = [models.UniqueConstraint(fields=["project", "resource"], name="quota_limit_unique")]

    def __str__(self) -> str:
        return f"{self.project_id} {self.resource} <= {self.hard_limit}"


class QuotaUsage(TimeStamped):
    """What a project holds of one resource; changed only under a row lock, in the same
    transaction as the resource rows it counts. A resource counted from its own rows
    (``quotas.register(counter=)``: ports) has none."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="quota_usages")
    resource = models.CharField(max_length=64)
    in_use = models.BigIntegerField(default=0)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["project", "resource"]
        constraints = [
            models.UniqueConstraint(fields=["project", "resource"], name="quota_usage_unique"),
            models.CheckConstraint(condition=Q(in_use__gte=0), name="quota_usage_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.resource} = {self.in_use}"

