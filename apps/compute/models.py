"""Nova's tables: flavors (with project access and extra specs), key pairs, server groups, compute
nodes, instances with their tags, faults and action log."""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.compute import states
from apps.core.access import AccessRule, Caller
from apps.core.models import Resource, TimeStamped


def _flavor_view_also(caller: Caller) -> Q:
    """Public flavors, and the private ones given to the caller's project."""
    if caller.project_id is None:
        return Q(is_public=True)
    return Q(is_public=True) | Q(pk__in=FlavorAccess.objects.filter(project_id=caller.project_id).values("flavor_id"))


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

    access_rule = AccessRule(project=None, view_also=_flavor_view_also)

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

    access_rule = AccessRule(project=None, user="user_id")  # a user's own, in any project

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

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.name


# ---- compute nodes, instances and what happens to them ------------------------------------------

def new_uuid() -> str:
    """Nova's server and node ids are dashed UUIDs."""
    return str(uuid.uuid4())


class ComputeNode(TimeStamped):
    """A hypervisor host, registered and kept alive by its agent (workers/agent.py). The integer
    ``id`` is what os-hypervisors/os-services show below microversion 2.53; ``uuid`` from 2.53.

    ``*_used`` are the sums of the claims of the instances placed here; the scheduler changes them
    only under this row's lock (``select_for_update``, or a conditional UPDATE that re-checks the
    capacity on the newest row), so concurrent claims never overcommit."""

    uuid = models.CharField(max_length=36, unique=True, default=new_uuid, editable=False)
    host = models.CharField(max_length=255, unique=True)  # the service host; the queue is compute.<host>
    hypervisor_hostname = models.CharField(max_length=255)
    hypervisor_type = models.CharField(max_length=32, default="QEMU")  # "QEMU", "test"
    hypervisor_version = models.PositiveIntegerField(default=0)
    libvirt_uri = models.CharField(max_length=1024)
    host_ip = models.CharField(max_length=64, blank=True, default="")
    availability_zone = models.CharField(max_length=255, default="nova")
    vcpus = models.PositiveIntegerField(default=0)
    memory_mb = models.PositiveIntegerField(default=0)
    local_gb = models.PositiveIntegerField(default=0)
    cpu_allocation_ratio = models.FloatField(default=16.0)
    ram_allocation_ratio = models.FloatField(default=1.5)
    disk_allocation_ratio = models.FloatField(default=1.0)
    reserved_host_memory_mb = models.PositiveIntegerField(default=0)
    vcpus_used = models.PositiveIntegerField(default=0)
    memory_mb_used = models.PositiveIntegerField(default=0)
    local_gb_used = models.PositiveIntegerField(default=0)
    running_vms = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    forced_down = models.BooleanField(default=False)
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True, default="")
    cpu_info = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.host

    @property
    def queue(self) -> str:
        return f"compute.{self.host}"


class Instance(TimeStamped):
    """A server. Deleted servers keep their row (``deleted``) for usage reports and instance actions,
    as Nova's soft-deleted rows do; selectors hide them unless asked.

    The flavor is copied at boot (``vcpus``, ``memory_mb``, ... and ``flavor`` as Nova embeds it), so
    deleting a flavor never changes a running server; ``new_flavor`` holds the target of a resize until
    it is confirmed or reverted. ``node`` holds the claim: the node's ``*_used`` include this instance's
    vcpus/memory_mb/root_gb+ephemeral_gb+swap while ``node`` is set."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("identity.User", on_delete=models.SET_NULL, null=True, related_name="+")
    name = models.CharField(max_length=255)
    hostname = models.CharField(max_length=255, blank=True, default="")
    description = models.TextField(null=True, blank=True)
    image_id = models.CharField(max_length=64, blank=True, default="", db_index=True)  # "" = booted from volume
    flavor_ref = models.CharField(max_length=255)  # the flavorid asked for
    vcpus = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    root_gb = models.PositiveIntegerField(default=0)
    ephemeral_gb = models.PositiveIntegerField(default=0)
    swap = models.PositiveIntegerField(default=0)
    # as Nova embeds it from 2.47: {"original_name", "vcpus", "ram", "disk", "ephemeral", "swap", "extra_specs"}
    flavor = models.JSONField(default=dict)
    new_flavor = models.JSONField(null=True, blank=True)  # resize target, until confirm/revert
    key_name = models.CharField(max_length=255, null=True, blank=True)
    key_data = models.TextField(null=True, blank=True)
    user_data = models.TextField(null=True, blank=True)  # base64, as sent
    metadata = models.JSONField(default=dict, blank=True)
    security_groups = models.JSONField(default=list, blank=True)  # names asked for at boot
    requested_networks = models.JSONField(default=list, blank=True)  # [{"uuid"|"port"|"fixed_ip"}] or "auto"/"none"
    config_drive = models.BooleanField(default=False)
    availability_zone = models.CharField(max_length=255, null=True, blank=True)  # asked for (None = any)
    server_group = models.ForeignKey(ServerGroup, on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="members")
    reservation_id = models.CharField(max_length=32, blank=True, default="")
    launch_index = models.PositiveIntegerField(default=0)
    vm_state = models.CharField(max_length=32, choices=[(s, s) for s in states.VM_STATES],
                                default=states.BUILDING, db_index=True)
    task_state = models.CharField(max_length=32, choices=[(s, s) for s in states.TASK_STATES], null=True,
                                  blank=True)
    power_state = models.PositiveSmallIntegerField(choices=list(states.POWER_STATES.items()),
                                                   default=states.NOSTATE)
    node = models.ForeignKey(ComputeNode, on_delete=models.SET_NULL, null=True, blank=True, related_name="instances")
    host = models.CharField(max_length=255, null=True, blank=True)  # node.host, kept after the claim is released
    attempts = models.PositiveSmallIntegerField(default=0)
    tried_hosts = models.JSONField(default=list, blank=True)
    locked = models.BooleanField(default=False)
    locked_by = models.CharField(max_length=16, null=True, blank=True)  # "owner" | "admin"
    locked_reason = models.CharField(max_length=255, null=True, blank=True)
    access_ip_v4 = models.CharField(max_length=64, blank=True, default="")
    access_ip_v6 = models.CharField(max_length=64, blank=True, default="")
    disk_config = models.CharField(max_length=8, default="MANUAL")  # OS-DCF:diskConfig: AUTO | MANUAL
    # the screens its domain has, as its node reports them (at the spawn, after a task, in every power sync):
    # libvirt's <graphics> types, comma-separated ("vnc"; "" none); None: not reported yet
    graphics = models.CharField(max_length=64, null=True, blank=True, default=None)
    progress = models.PositiveSmallIntegerField(default=0)
    launched_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False, db_index=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["-created_at", "-id"]
        # the pages of a project's servers and of every project's (admins), newest first, read off the
        # index whatever the page (Nova's default sort: created_at, then id)
        indexes = [models.Index(fields=["project", "deleted", "created_at", "id"], name="compute_inst_proj_page"),
                   models.Index(fields=["deleted", "created_at", "id"], name="compute_inst_page")]

    def __str__(self) -> str:
        return self.name

    @property
    def disk_gb(self) -> int:
        return self.root_gb + self.ephemeral_gb + (self.swap + 1023) // 1024


class InstanceTag(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="tags")
    tag = models.CharField(max_length=60)

    class Meta:
        ordering = ["tag"]
        constraints = [models.UniqueConstraint(fields=["instance", "tag"], name="compute_instance_tag_unique")]

    def __str__(self) -> str:
        return self.tag


class InstanceFault(TimeStamped):
    """Why an instance went to ERROR (the newest one is the server's ``fault``)."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="faults")
    code = models.PositiveSmallIntegerField(default=500)
    message = models.CharField(max_length=255)
    details = models.TextField(blank=True, default="")
    host = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.message


class InstanceAction(TimeStamped):
    """One request on an instance (os-instance-actions): who, what, when, and how it ended."""

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(max_length=32)  # create, delete, reboot, stop, start, pause, ...
    request_id = models.CharField(max_length=64, db_index=True)
    user_id = models.CharField(max_length=64, blank=True, default="")
    project_id = models.CharField(max_length=64, blank=True, default="")
    start_time = models.DateTimeField()
    finish_time = models.DateTimeField(null=True, blank=True)
    message = models.CharField(max_length=255, null=True, blank=True)  # "Error" when an event failed

    class Meta:
        ordering = ["-start_time", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.request_id}"


class InstanceActionEvent(TimeStamped):
    """A step of an action carried out on a node (``compute_reboot_instance`` ...)."""

    action = models.ForeignKey(InstanceAction, on_delete=models.CASCADE, related_name="events")
    event = models.CharField(max_length=64)
    start_time = models.DateTimeField()
    finish_time = models.DateTimeField(null=True, blank=True)
    result = models.CharField(max_length=16, null=True, blank=True)  # "Success" | "Error"
    traceback = models.TextField(null=True, blank=True)
    host = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["start_time", "id"]

    def __str__(self) -> str:
        return self.event


class BlockDeviceMapping(TimeStamped):
    """One block device of an instance that is a Cinder volume (Nova's BDM with destination volume):
    the boot volume of a server booted from volume (``boot_index`` 0) or a volume attached later
    through ``os-volume_attachments``. The volume side's own record is ``volumes.VolumeAttachment``
    (``attachment_id``); this row is what the compute side knows: the device name in the guest, the
    boot order, how the volume came to be and whether deleting the server deletes it."""

    SOURCES = ("image", "volume", "snapshot", "blank")

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="block_devices")
    volume_id = models.CharField(max_length=36, db_index=True)
    attachment_id = models.CharField(max_length=36, null=True, blank=True)
    device_name = models.CharField(max_length=64, null=True, blank=True)  # /dev/vdb
    boot_index = models.SmallIntegerField(null=True, blank=True)  # 0 = the root disk; None = not bootable
    source_type = models.CharField(max_length=16, default="volume", choices=[(s, s) for s in SOURCES])
    image_id = models.CharField(max_length=36, null=True, blank=True)  # source image / snapshot's image
    snapshot_id = models.CharField(max_length=36, null=True, blank=True)
    volume_size = models.PositiveIntegerField(null=True, blank=True)  # GiB asked for
    disk_bus = models.CharField(max_length=16, null=True, blank=True)
    device_type = models.CharField(max_length=16, null=True, blank=True)
    delete_on_termination = models.BooleanField(default=False)
    tag = models.CharField(max_length=60, null=True, blank=True)
    status = models.CharField(max_length=16, choices=[(s, s) for s in states.BDM_STATUSES],
                              default=states.BDM_ATTACHING)

    class Meta:
        ordering = ["instance", "boot_index", "created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["instance", "volume_id"],
                                               name="compute_bdm_instance_volume_unique")]

    def __str__(self) -> str:
        return f"{self.volume_id} on {self.instance_id} ({self.device_name or '?'})"


class ConsoleToken(TimeStamped):
    """A console URL's token (os-remote-consoles, os-getVNCConsole, os-getSerialConsole): stored only as
    its sha256, scoped to one server of one project and to the user who asked, for one ``kind`` of
    console ("vnc" or "serial"); it opens one console socket once (``used_at``) before ``expires_at``."""

    KINDS = ("vnc", "serial")

    id = models.CharField(primary_key=True, max_length=64, editable=False)  # sha256 hex of the token
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey("identity.User", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=[(k, k) for k in KINDS])
    console_type = models.CharField(max_length=16)  # what was asked for: "novnc" or "serial"
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} console token of {self.instance_id}"


NODE_ROLES = ("compute", "network", "storage")


class NodeToken(TimeStamped):
    """A node enrolment token an admin made (``manage.py node_token create``) for one node ``name``
    of one ``role``: stored only as its SHA-256 (``token_hash``), good once (``used_at``) and until
    ``expires_at``, unless ``revoked_at`` (apps/compute/services/node_enrolment.py)."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    name = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=[(r, r) for r in NODE_ROLES])
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.CharField(max_length=255, blank=True, default="")  # who made it (a user id or "manage.py")
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_from = models.CharField(max_length=64, blank=True, default="")  # the address the node gave
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.role} node token for {self.name}"


class EnrolledNode(TimeStamped):
    """A machine that joined with a node token, for one role: its name (the host of its queue
    ``<role>.<name>``) and the address it gave. A compute node also has its ComputeNode row (created
    at enrolment, filled in by its agent's registration)."""

    name = models.CharField(max_length=255)
    role = models.CharField(max_length=16, choices=[(r, r) for r in NODE_ROLES])
    address = models.CharField(max_length=64, blank=True, default="")
    enrolled_at = models.DateTimeField()
    token = models.ForeignKey(NodeToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["role", "name"]
        constraints = [models.UniqueConstraint(fields=["name", "role"], name="enrolled_node_unique_role")]

    def __str__(self) -> str:
        return f"{self.role} node {self.name}"

    @property
    def queue(self) -> str:
        return f"{self.role}.{self.name}"
