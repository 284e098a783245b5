"""Nova's tables for the API foundation: flavors (with project access and extra specs), key pairs
and server groups. Instances and compute nodes come later."""
from __future__ import annotations

from django.db import models

from apps.core.models import Resource, TimeStamped


class Flavor(TimeStamped):
    """A size of instance. ``flavorid`` is the API's id (any string; a UUID when not given)."""

    flavorid = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, unique=True)
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField(default=0)
    ephemeral_gb = models.PositiveIntegerField(default=0)
    swap = models.PositiveIntegerField(default=0)  # MB
    rxtx_factor = models.FloatField(default=1.0)
    is_public = models.BooleanField(default=True)
    disabled = models.BooleanField(default=False)
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["flavorid"]

    def __str__(self) -> str:
        return self.name


class FlavorAccess(TimeStamped):
    """A project allowed to use a private flavor."""

    flavor = models.ForeignKey(Flavor, on_delete=models.CASCADE, related_name="access")
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flavor", "project"], name="compute_flavor_access_unique")]

    def __str__(self) -> str:
        return f"{self.flavor_id} → {self.project_id}"


class FlavorExtraSpec(TimeStamped):
    flavor = models.ForeignKey(Flavor, on_delete=models.CASCADE, related_name="extra_specs")
    key = models.CharField(max_length=255)
    value = models.CharField(max_length=255)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["flavor", "key"], name="compute_flavor_extra_spec_unique")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class KeyPair(TimeStamped):
    """An SSH public key of one user (Nova's key pairs belong to users, not projects). The
    integer id is Nova's. A generated private key is returned once and never stored."""

    TYPE_SSH = "ssh"
    TYPE_X509 = "x509"

    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=8, default=TYPE_SSH, choices=[(TYPE_SSH, "ssh"), (TYPE_X509, "x509")])
    public_key = models.TextField()
    fingerprint = models.CharField(max_length=64)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="compute_keypair_user_name_unique")]

    def __str__(self) -> str:
        return self.name


class ServerGroup(Resource):
    POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")

    name = models.CharField(max_length=255)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, related_name="+")
    policy = models.CharField(max_length=32, choices=[(p, p) for p in POLICIES])
    rules = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name
