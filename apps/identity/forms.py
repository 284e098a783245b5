"""Forms of the identity panels. They check only the shape of the input; every rule (names,
uniqueness, policy) is the services'. Choices come from selectors, passed in by the views."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

from apps.identity import quotas

Choices = Iterable[tuple[str, str]]


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    domain_id = forms.ChoiceField(label="Domain", required=False)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, domains: Choices = (), editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            # The domain of a project never changes; enabling is a button of the list.
            del self.fields["domain_id"]
            del self.fields["enabled"]
        else:
            self.fields["domain_id"].choices = list(domains)


class _PasswordMixin(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords do not match.")
        return data


class UserCreateForm(_PasswordMixin):
    name = forms.CharField(max_length=255, label="User name")
    email = forms.EmailField(required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(render_value=False,
                                                                       attrs={"autocomplete": "new-password"}))
    confirm_password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    project_id = forms.ChoiceField(label="Primary project", required=False,
                                   help_text="The project the user lands in after logging in.")
    role_id = forms.ChoiceField(label="Role", required=False, help_text="Granted on the primary project.")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, projects: Choices = (), roles: Choices = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_id"].choices = [("", "— none —"), *projects]
        self.fields["role_id"].choices = [("", "— none —"), *roles]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("role_id") and not data.get("project_id"):
            self.add_error("project_id", "Choose the project the role is granted on.")
        return data


class UserEditForm(_PasswordMixin):
    name = forms.CharField(max_length=255, label="User name")
    email = forms.EmailField(required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    project_id = forms.ChoiceField(label="Primary project", required=False)
    password = forms.CharField(strip=False, required=False, label="New password",
                               help_text="Leave empty to keep the current password.",
                               widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    confirm_password = forms.CharField(strip=False, required=False,
                                       widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args: Any, projects: Choices = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_id"].choices = [("", "— none —"), *projects]


class RoleForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class GroupForm(forms.Form):
    name = forms.CharField(max_length=255)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    domain_id = forms.ChoiceField(label="Domain")

    def __init__(self, *args: Any, domains: Choices = (), editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:  # a group never changes domain
            del self.fields["domain_id"]
        else:
            self.fields["domain_id"].choices = list(domains)


class DomainForm(forms.Form):
    name = forms.CharField(max_length=64)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:  # enabling is a button of the list
            del self.fields["enabled"]


class GroupMemberForm(forms.Form):
    user_id = forms.ChoiceField(label="User")

    def __init__(self, *args: Any, users: Choices = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user_id"].choices = [("", "— choose —"), *users]


class ProjectRoleForm(forms.Form):
    """Grant a role to the group on a project."""

    project_id = forms.ChoiceField(label="Project")
    role_id = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, projects: Choices = (), roles: Choices = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_id"].choices = [("", "— choose —"), *projects]
        self.fields["role_id"].choices = list(roles)


class AssignmentForm(forms.Form):
    """Grant a role on the project to a user or a group (``who`` is "user:<id>" or "group:<id>")."""

    who = forms.ChoiceField(label="User or group")
    role_id = forms.ChoiceField(label="Role")

    def __init__(self, *args: Any, users: Choices = (), groups: Choices = (), roles: Choices = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        who: list[Any] = [("", "— choose —")]
        users, groups = list(users), list(groups)
        if users:
            who.append(("Users", [(f"user:{pk}", name) for pk, name in users]))
        if groups:
            who.append(("Groups", [(f"group:{pk}", name) for pk, name in groups]))
        self.fields["who"].choices = who
        self.fields["role_id"].choices = list(roles)

    def actor_kwargs(self) -> dict[str, str]:
        kind, _, pk = self.cleaned_data["who"].partition(":")
        return {"user_id": pk} if kind == "user" else {"group_id": pk}


class QuotaField(forms.Field):
    """A limit in its resource's unit, typed as people read it ("64 GiB", "unlimited"):
    ``quotas.parse_amount`` reads it; whether the figure is allowed is the quota service's rule."""

    def __init__(self, *, unit: str, **kwargs: Any) -> None:
        self.unit = unit
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> int | None:
        text = str(value or "").strip()
        if not text:
            return None
        try:
            return quotas.parse_amount(text[:64], self.unit)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class QuotaForm(forms.Form):
    """A project's limits, one field per registered quota resource, in the overview's groups (compute,
    network, storage) and order; each shows its current limit as an admin would type it and what is
    in use. ``changed()`` is what differs from the current limits (the only ones given to quota_set)."""

    def __init__(self, *args: Any, usage: dict[str, dict[str, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        known = quotas.registered()
        self.current: dict[str, int] = {}
        groups: dict[str, list[tuple[int, str]]] = {name: [] for name in quotas.GROUPS}
        for name, row in usage.items():
            resource = known.get(name)
            if resource is None:
                continue
            unit = "" if resource.unit == "count" else f" ({resource.unit})"
            self.fields[name] = QuotaField(
                unit=resource.unit, label=f"{resource.title}{unit}",
                initial=quotas.exact_amount(row["limit"], resource.unit),
                help_text=f"{resource.amount(row['in_use'])} in use",
                widget=forms.TextInput(attrs={"inputmode": "numeric" if resource.unit == "count" else "text",
                                              "autocomplete": "off", "data-resource": name}))
            self.current[name] = row["limit"]
            groups.setdefault(resource.group, []).append((resource.order, name))
        self.groups = {group: [name for _, name in sorted(names)] for group, names in groups.items() if names}

    @property
    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        """(legend, fields) as the shared form template (dashboard/_form_fields.html) shows them."""
        return [(group, [self[name] for name in names]) for group, names in self.groups.items()]

    def changed(self) -> dict[str, int]:
        return {name: value for name, value in self.cleaned_data.items() if value != self.current.get(name)}
