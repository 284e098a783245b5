"""Dashboard forms of the volume panels (the services validate again)."""
from __future__ import annotations

from typing import Any

from django import forms


class VolumeForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False)
    size = forms.IntegerField(min_value=1, initial=1, label="Size (GiB)")
    source = forms.ChoiceField(required=False, label="Source", choices=[("", "No source, empty volume")])
    volume_type = forms.ChoiceField(required=False, label="Type",
                                    help_text="The default type, or the source's type for a snapshot, when empty.")

    def __init__(self, *args: object, images: list[tuple[str, str]] = (), snapshots: list[tuple[str, str]] = (),
                 types: list[tuple[str, str]] = (), **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["volume_type"].choices = [("", "Default"), *types]
        choices = [("", "No source, empty volume")]
        choices += [(f"image:{i}", f"Image {n}") for i, n in images]
        choices += [(f"snapshot:{i}", f"Snapshot {n}") for i, n in snapshots]
        self.fields["source"].choices = choices

    def clean(self) -> dict[str, Any]:
        """The chosen source as the service's ``image_id`` or ``snapshot_id`` (None: a blank volume)."""
        data = super().clean()
        kind, _, source_id = (data.get("source") or "").partition(":")
        data["image_id"] = source_id if kind == "image" else None
        data["snapshot_id"] = source_id if kind == "snapshot" else None
        return data


class ExtendForm(forms.Form):
    new_size = forms.IntegerField(min_value=1, label="New size (GiB)")


class SnapshotForm(forms.Form):
    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False)
    force = forms.BooleanField(required=False, label="Even if in use")


class AttachForm(forms.Form):
    """Attach a volume to one of its project's instances (from the Volumes panel) or one of the
    project's volumes to an instance (from the instance page): the choices are given by the view."""

    server = forms.ChoiceField(label="Instance")
    volume = forms.ChoiceField(label="Volume")
    device = forms.RegexField(regex=r"^/dev/[a-z]+[a-z0-9]*$", max_length=64, required=False,
                              label="Device name", help_text="Optional, e.g. /dev/vdb (the next free one if empty).",
                              error_messages={"invalid": "A device name looks like /dev/vdb."})

    def __init__(self, *args: object, servers: list[tuple[str, str]] | None = None,
                 volumes: list[tuple[str, str]] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name, choices in (("server", servers), ("volume", volumes)):
            if choices is None:
                del self.fields[name]  # fixed by the page (the volume or instance it is on)
            else:
                self.fields[name].choices = [("", "Choose…"), *choices]


class VolumeEditForm(forms.Form):
    """A volume's name, description and bootable flag (Cinder's PUT and os-set_bootable)."""

    name = forms.CharField(max_length=255, required=False)
    description = forms.CharField(max_length=255, required=False, widget=forms.Textarea(attrs={"rows": 3}))
    bootable = forms.BooleanField(required=False, label="Bootable",
                                  help_text="Nova may boot an instance from a bootable volume.")


class VolumeTypeForm(forms.Form):
    """A new volume type (admin): Cinder's name, description and visibility."""

    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    is_public = forms.BooleanField(required=False, initial=True, label="Public",
                                   help_text="Every project may use a public type.")


class VolumeTypeEditForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(max_length=255, required=False)
    is_public = forms.BooleanField(required=False, label="Public")


class ExtraSpecForm(forms.Form):
    key = forms.CharField(max_length=255, help_text="e.g. volume_backend_name")
    value = forms.CharField(max_length=255, required=False)


class UploadImageForm(forms.Form):
    """Upload a volume to a new image (Cinder's os-volume_upload_image); the formats are the services'."""

    image_name = forms.CharField(max_length=255, label="Image name")
    disk_format = forms.ChoiceField(label="Disk format", initial="qcow2",
                                    help_text="qcow2 keeps only the blocks written; raw is the whole disk.")
    visibility = forms.ChoiceField(label="Visibility", initial="private")
    protected = forms.BooleanField(required=False, label="Protected", help_text="Nobody may delete it until unset.")
    force = forms.BooleanField(required=False, label="Even if attached",
                               help_text="An attached volume is copied as it is at the moment, while in use.")

    def __init__(self, *args: object, disk_formats: tuple[str, ...] = (), visibilities: tuple[str, ...] = (),
                 in_use: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["disk_format"].choices = [(f, f) for f in disk_formats]
        self.fields["visibility"].choices = [(v, v.capitalize()) for v in visibilities]
        if not in_use:
            del self.fields["force"]
