"""Dashboard forms of the compute panels (the services validate again)."""
from django import forms


class KeyPairForm(forms.Form):
    name = forms.CharField(max_length=255)
    public_key = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}),
                                 help_text="Paste an OpenSSH public key to import it; leave empty to generate a "
                                           "key pair (its private key is shown once, never stored).")


class FlavorForm(forms.Form):
    name = forms.CharField(max_length=255)
    flavor_id = forms.CharField(max_length=255, required=False, label="ID", help_text="Empty: a UUID.")
    vcpus = forms.IntegerField(min_value=1, label="vCPUs", initial=1)
    ram = forms.IntegerField(min_value=1, label="RAM (MB)", initial=512)
    disk = forms.IntegerField(min_value=0, label="Root disk (GB)", initial=1)
    ephemeral = forms.IntegerField(min_value=0, label="Ephemeral disk (GB)", initial=0)
    swap = forms.IntegerField(min_value=0, label="Swap (MB)", initial=0)
    is_public = forms.BooleanField(required=False, initial=True, label="Public")
