"""Every model's state field (status, vm_state, task_state, power_state, attach_status) takes its
vocabulary (``choices=``) from its app's states module, and images' transition table lives in
apps/images/states.py (issue 10, item 7)."""
from __future__ import annotations

import pytest
from django.apps import apps

STATE_FIELDS = {"status", "vm_state", "task_state", "power_state", "attach_status"}


def _state_fields():
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.name in STATE_FIELDS and getattr(field, "concrete", False):
                yield f"{model._meta.label}.{field.name}", field


def test_state_fields_are_found():
    names = {name for name, _ in _state_fields()}
    assert {"images.Image.status", "compute.Instance.vm_state", "compute.Instance.task_state",
            "compute.Instance.power_state", "compute.BlockDeviceMapping.status", "volumes.Volume.status",
            "volumes.Snapshot.status", "volumes.VolumeAttachment.status"} <= names


@pytest.mark.parametrize("name,field", list(_state_fields()), ids=lambda v: v if isinstance(v, str) else "")
def test_state_field_has_choices_from_states_module(name, field):
    assert field.choices, f"{name} has no choices="
    if field.has_default() and field.get_default() is not None:
        assert field.get_default() in {value for value, _ in field.choices}, f"{name}'s default is not a choice"


def test_image_transitions_live_in_states_module():
    from apps.images import services, states
    from apps.images.models import Image

    assert set(states.IMAGE_TRANSITIONS) == {value for value, _ in Image._meta.get_field("status").choices}
    assert not hasattr(services, "TRANSITIONS")


def test_choices_are_the_states_modules_vocabularies():
    from apps.compute import states as compute_states
    from apps.core import states as core_states
    from apps.images import states as image_states
    from apps.networks import states as network_states
    from apps.orchestration import states as orchestration_states
    from apps.telemetry import states as telemetry_states
    from apps.volumes import states as volume_states

    expected = {
        "images.Image.status": image_states.IMAGE_STATUSES,
        "images.ImageMember.status": image_states.MEMBER_STATUSES,
        "images.ImageTask.status": image_states.TASK_STATUSES,
        "core.TaskRecord.status": core_states.TASK_STATUSES,
        "compute.Instance.vm_state": compute_states.VM_STATES,
        "compute.Instance.task_state": compute_states.TASK_STATES,
        "compute.Instance.power_state": tuple(compute_states.POWER_STATES),
        "compute.BlockDeviceMapping.status": compute_states.BDM_STATUSES,
        "volumes.Volume.status": volume_states.VOLUME_STATUSES,
        "volumes.Snapshot.status": volume_states.SNAPSHOT_STATUSES,
        "volumes.VolumeAttachment.status": volume_states.ATTACHMENT_STATUSES,
        **{f"networks.{model}.status": network_states.STATUSES
           for model in ("Network", "Port", "Router", "FloatingIP")},
        "telemetry.ReportRun.status": telemetry_states.REPORT_RUN_STATUSES,
        "orchestration.SoftwareDeployment.status": orchestration_states.DEPLOYMENT_STATUSES,
    }
    found = {name: tuple(value for value, _ in field.choices) for name, field in _state_fields()}
    assert found == expected
