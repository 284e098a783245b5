from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm

from apps.core.admin import ShownOnly, deletes, service_action
from apps.identity import models, services


class AccessShownOnly(ShownOnly):
    """Who may do what is shown to operators here and changed only through the API or the dashboard's
    identity panels: the console writes rows past the services, which revoke tokens, keep object
    permissions in step and tell live sockets (a role assignment deleted here kept every permission)."""


@admin.register(models.Domain)
class DomainAdmin(AccessShownOnly):
    list_display = ("name", "id", "enabled", "created_at")
    list_filter = ("enabled",)
    search_fields = ("name", "id", "description")


@admin.register(models.Project)
class ProjectAdmin(AccessShownOnly):
    list_display = ("name", "id", "domain", "parent", "enabled", "created_at")
    list_filter = ("enabled", "domain")
    search_fields = ("name", "id", "description")


@admin.register(models.User)
class UserAdmin(AccessShownOnly):
    """Users, with enable and disable through ``user_update`` (which keeps the cloud's last enabled
    admin and refuses to disable the operator's own account, like the API and the dashboard)."""

    actions = [
        service_action("disable_users", "Disable selected users",
                       lambda actor, user: services.user_update(actor=actor, user_id=user.id, enabled=False),
                       done="Disabled"),
        service_action("enable_users", "Enable selected users",
                       lambda actor, user: services.user_update(actor=actor, user_id=user.id, enabled=True),
                       done="Enabled"),
    ]
    list_display = ("name", "id", "domain", "email", "enabled", "default_project", "created_at")
    list_filter = ("enabled", "domain")
    search_fields = ("name", "id", "email")
    exclude = ("password", "user_permissions", "groups")
    readonly_fields = ("last_login", "password_changed_at")


@admin.register(models.Group, models.Role)
class NamedInDomainAdmin(AccessShownOnly):
    """Groups and roles: a name, maybe in a domain."""

    list_display = ("name", "id", "domain", "created_at")
    list_filter = ("domain",)
    search_fields = ("name", "id")


@admin.register(models.ImpliedRole)
class ImpliedRoleAdmin(AccessShownOnly):
    list_display = ("prior", "implied", "created_at")
    list_filter = ("prior",)
    search_fields = ("prior__name", "implied__name")


@admin.register(models.RoleAssignment)
class RoleAssignmentAdmin(AccessShownOnly):
    list_display = ("role", "user", "group", "project", "domain", "system", "inherited", "created_at")
    list_filter = ("role", "inherited")
    search_fields = ("user__name", "group__name", "project__name", "role__name")
    list_select_related = ("role", "user", "group", "project", "domain")


@admin.register(models.Token)
class TokenAdmin(ShownOnly):
    """Tokens, shown: they die with their user's password, enabled flag or roles (the services)."""

    list_display = ("audit_id", "user", "project", "domain", "system", "issued_at", "expires_at")
    list_filter = ("system",)
    search_fields = ("audit_id", "user__name", "project__name")
    list_select_related = ("user", "project", "domain")
    readonly_fields = ("id",)


@admin.register(models.ApplicationCredential)
class ApplicationCredentialAdmin(ShownOnly):
    actions = [deletes(services.application_credential_delete,
                       {"user_id": "user_id", "app_cred_id": "id"}, "application credentials")]

    list_display = ("name", "id", "user", "project", "unrestricted", "expires_at")
    list_filter = ("unrestricted",)
    search_fields = ("name", "id", "user__name")
    exclude = ("secret_hash",)


@admin.register(models.Credential)
class CredentialAdmin(ShownOnly):
    """Credentials, shown without their blob (an EC2 secret signs S3 requests)."""

    actions = [deletes(services.credential_delete, "credential_id", "credentials")]

    list_display = ("id", "type", "user", "project", "created_at")
    list_filter = ("type",)
    search_fields = ("id", "user__name", "project__name")
    list_select_related = ("user", "project")
    exclude = ("encrypted_blob",)


@admin.register(models.Region)
class RegionAdmin(ShownOnly):
    actions = [deletes(services.region_delete, "region_id", "regions")]

    list_display = ("id", "description", "parent")
    search_fields = ("id", "description")


@admin.register(models.Service)
class ServiceAdmin(ShownOnly):
    actions = [deletes(services.service_delete, "service_id", "services")]

    list_display = ("name", "type", "id", "enabled")
    list_filter = ("enabled", "type")
    search_fields = ("name", "type", "id")


@admin.register(models.Endpoint)
class EndpointAdmin(ShownOnly):
    actions = [deletes(services.endpoint_delete, "endpoint_id", "endpoints")]

    list_display = ("service", "interface", "region", "url", "enabled")
    list_filter = ("interface", "region", "enabled")
    search_fields = ("url", "service__name", "service__type")
    list_select_related = ("service", "region")


@admin.register(models.QuotaDefault)
class QuotaDefaultAdmin(ShownOnly):
    list_display = ("resource", "hard_limit", "updated_at")
    search_fields = ("resource",)


class ProjectResourceAdmin(ShownOnly):
    """A row per project and quota resource."""

    list_filter = ("resource",)
    search_fields = ("project__name", "resource")


@admin.register(models.QuotaLimit)
class QuotaLimitAdmin(ProjectResourceAdmin):
    actions = [service_action(
        "reset_quota_limits", "Reset selected limits to the default",
        lambda actor, limit: services.quota_delete(actor=actor, project_id=limit.project_id,
                                                   resources=[limit.resource]),
        done="Reset")]
    list_display = ("project", "resource", "hard_limit", "updated_at")


@admin.register(models.QuotaUsage)
class QuotaUsageAdmin(ProjectResourceAdmin):
    """What each project uses: the services that reserve and release it keep it exact."""

    list_display = ("project", "resource", "in_use", "updated_at")


class ConsoleLoginForm(AdminAuthenticationForm):
    """Operators log in with their Keystone user name (Default domain) and password."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "User name"
        self.fields["username"].max_length = 255
        self.fields["username"].widget.attrs["maxlength"] = 255


admin.site.login_form = ConsoleLoginForm
admin.site.site_header = "Stratus admin console"
admin.site.site_title = "Stratus admin"
admin.site.index_title = "Operate the cloud"
