"""Forms of the shell itself (login, one's own password). Components keep their forms in their own app."""
from __future__ import annotations

from typing import Any

from django import forms

from apps.identity.models import DEFAULT_DOMAIN_ID


class LoginForm(forms.Form):
    domain = forms.CharField(max_length=255, initial="Default",
                             help_text="Domain name or ID", widget=forms.TextInput(attrs={"autocomplete": "off"}))
    username = forms.CharField(max_length=255, label="User name",
                               widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}))
    password = forms.CharField(max_length=4096, strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def clean_domain(self) -> str:
        return self.cleaned_data.get("domain", "").strip() or DEFAULT_DOMAIN_ID


class PasswordChangeForm(forms.Form):
    """One's own password (Settings): the current one proves who asks; the new one's rules are the
    identity service's."""

    current_password = forms.CharField(strip=False, max_length=4096, widget=forms.PasswordInput(
        attrs={"autocomplete": "current-password", "autofocus": True}))
    password = forms.CharField(strip=False, max_length=4096, label="New password",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    confirm_password = forms.CharField(strip=False, max_length=4096, label="Confirm the new password",
                                       widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords do not match.")
        return data
