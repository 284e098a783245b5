"""Heat's tables: stacks (a template bound to parameters, in one state of ``apps.orchestration.states``),
their resources (one row per enabled resource of the template, with its creation level and what it
depends on) and events (one row per state change of the stack or of a resource)."""
from __future__ import annotations

import uuid

from django.db import models

from apps.core.access import AccessRule
from apps.core.models import TimeStamped
from apps.orchestration import states


def new_uuid() -> str:
    """Heat's ids are dashed UUIDs."""
    return str(uuid.uuid4())


class Stack(TimeStamped):
    STATES = [(s, s) for s in states.STACK_STATES]

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    name = models.CharField(max_length=255, db_index=True)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    user_id = models.CharField(max_length=64)
    username = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=32, choices=STATES, default=states.CREATE_IN_PROGRESS)
    status_reason = models.TextField(blank=True, default="")
    description = models.TextField(blank=True, default="")
    template = models.JSONField(default=dict)
    environment = models.JSONField(default=dict)
    files = models.JSONField(default=dict)
    parameters = models.JSONField(default=dict)  # the values given (hidden ones included: shown masked)
    hidden = models.JSONField(default=list)  # names of the hidden parameters
    outputs = models.JSONField(null=True, blank=True)  # the outputs, resolved when the stack completed
    timeout_mins = models.PositiveIntegerField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True, db_index=True)
    disable_rollback = models.BooleanField(default=True)
    tags = models.JSONField(default=list)
    # an update: the template (with its environment, files, parameters) it replaced, what a rollback goes
    # back to; ``template_version`` counts the templates the stack had (the parsed template's cache key)
    previous = models.JSONField(null=True, blank=True)
    template_version = models.IntegerField(default=0)
    # the walk under way besides create and delete: {"op": "update" | "rollback" | "check" | "suspend" |
    # "resume", "phase": "forward" | "cleanup"} (empty: a create, its rollback, or a delete)
    walk = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    # the walk through the resources' levels: the level being worked on and how many of its resources
    # have not reported yet (decremented in the report's transaction, with the stack row locked)
    level = models.IntegerField(default=0)
    pending = models.IntegerField(default=0)
    deleted_at = models.DateTimeField(null=True, blank=True)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [models.Index(fields=["project", "name"]), models.Index(fields=["state", "deadline"])]

    def __str__(self) -> str:
        return self.name

    @property
    def action(self) -> str:
        return states.split(self.state)[0]

    @property
    def status(self) -> str:
        return states.split(self.state)[1]


class StackResource(TimeStamped):
    STATES = [(s, s) for s in states.RESOURCE_STATES]

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="resources")
    name = models.CharField(max_length=255)  # the logical name in the template
    type = models.CharField(max_length=255)
    physical_id = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=32, choices=STATES, default=states.INIT_COMPLETE)
    status_reason = models.TextField(blank=True, default="")
    level = models.IntegerField(default=0)  # its creation level (engine's Stack.levels())
    requires = models.JSONField(default=list)  # names of the resources it depends on
    required_by = models.JSONField(default=list)
    attributes = models.JSONField(default=dict)  # what get_attr reads
    data = models.JSONField(default=dict)  # the plugin's own (a wait's deadline, ...)
    deletion_policy = models.CharField(max_length=16, default="Delete")
    properties = models.JSONField(null=True, blank=True)  # as resolved by its last create or update
    # an update's bookkeeping: "" (the stack's resource), "removed" (not in the new template: deleted when
    # the update ends, shown until then), "replaced" (a row of the same name replaces it: deleted when the
    # update ends, put back by its rollback; hidden), "stale" (replaced by an earlier update that did not
    # roll back: deleted at the end of the next walk; hidden)
    retire = models.CharField(max_length=16, blank=True, default="")

    access_rule = AccessRule(project="stack__project_id")

    SHOWN = ("", "removed")

    class Meta:
        ordering = ["level", "name"]
        constraints = [models.UniqueConstraint(fields=["stack", "name"], name="orchestration_resource_name",
                                               condition=models.Q(retire__in=("", "removed")))]

    def __str__(self) -> str:
        return self.name

    @property
    def action(self) -> str:
        return states.split(self.state)[0]

    @property
    def status(self) -> str:
        return states.split(self.state)[1]


class Event(models.Model):
    """One state change: of the stack (``resource_name`` is the stack's name, ``physical_id`` its id,
    as heatclient's ``--wait`` looks for it) or of one of its resources. ``seq`` orders them."""

    seq = models.BigAutoField(primary_key=True)
    id = models.CharField(max_length=36, default=new_uuid, unique=True, editable=False)
    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="events")
    resource_name = models.CharField(max_length=255)
    resource_type = models.CharField(max_length=255, default="OS::Heat::Stack")
    physical_id = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=32)
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    access_rule = AccessRule(project="stack__project_id")

    class Meta:
        ordering = ["seq"]

    @property
    def action(self) -> str:
        return states.split(self.state)[0]

    @property
    def status(self) -> str:
        return states.split(self.state)[1]


class SoftwareConfig(TimeStamped):
    """Heat's software config (``/software_configs``, OS::Heat::SoftwareConfig): a script, a cloud-config
    or any text a tool on the server (``group``) applies, with the inputs and outputs it declares.
    Immutable once made, as in Heat: a change is a new config."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255, blank=True, default="")
    group = models.CharField(max_length=255, default="Heat::Ungrouped")
    config = models.TextField(blank=True, default="")
    inputs = models.JSONField(default=list)
    outputs = models.JSONField(default=list)
    options = models.JSONField(default=dict)

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["project", "created_at"])]

    def __str__(self) -> str:
        return self.name or self.id


class SoftwareDeployment(TimeStamped):
    """Heat's software deployment (``/software_deployments``): a config applied to a server, with the
    values of its inputs, and the outcome the server reports (action, status, output values)."""

    id = models.CharField(primary_key=True, max_length=36, default=new_uuid, editable=False)
    project = models.ForeignKey("identity.Project", on_delete=models.CASCADE, related_name="+")
    config = models.ForeignKey(SoftwareConfig, on_delete=models.PROTECT, related_name="deployments")
    server_id = models.CharField(max_length=255, db_index=True)
    input_values = models.JSONField(default=dict)
    output_values = models.JSONField(default=dict)
    action = models.CharField(max_length=255, default="INIT")
    status = models.CharField(max_length=32, choices=[(s, s) for s in states.DEPLOYMENT_STATUSES],
                              default=states.COMPLETE)
    status_reason = models.TextField(blank=True, default="")

    access_rule = AccessRule(project="project_id")

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.config_id} on {self.server_id}"
