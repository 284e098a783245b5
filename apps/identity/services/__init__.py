"""Every write to identity data: validation, policy, state, guardian permissions, events, quotas.

Services are keyword-only. They raise apps.core.errors exceptions; each API renders them in its
own format. The dashboard and the Keystone API call exactly these functions, by their names here
(``services.user_create``); the modules of this package hold them by resource:

- ``projects``: domains, projects and project tags
- ``users``: users, passwords and groups
- ``roles``: roles, inference rules, role assignments (and the guardian permissions they give)
- ``tokens``: authentication, tokens, the dashboard's session actor, application credentials
- ``catalog``: regions, services, endpoints
- ``credentials``: Keystone's credentials, their EC2 view, and EC2-signed requests' authentication
- ``quotas``: every project's limits and usage (other apps go through these)
- ``admins``: the cloud keeps an enabled admin and nobody locks themselves out (``admins_kept``)
- ``bootstrap``: what devstack makes
"""
from apps.identity import selectors
from apps.identity.services._common import UNAUTHENTICATED, token_hash
from apps.identity.services.admins import LastAdmin, SelfLockout
from apps.identity.services.bootstrap import CATALOG_SERVICES, bootstrap
from apps.identity.services.catalog import (
    endpoint_create,
    endpoint_delete,
    endpoint_update,
    region_create,
    region_delete,
    region_update,
    service_create,
    service_delete,
    service_update,
)
from apps.identity.services.credentials import (
    SignatureMismatch,
    UnknownAccessKey,
    credential_create,
    credential_delete,
    credential_update,
    ec2_authenticate,
    ec2_blob,
    ec2_credential_create,
    ec2_credential_delete,
)
from apps.identity.services.projects import (
    domain_create,
    domain_delete,
    domain_update,
    project_create,
    project_delete,
    project_tag_add,
    project_tag_delete,
    project_tags_set,
    project_update,
)
from apps.identity.services.quotas import (
    QUOTA_MAX,
    quota_default_set,
    quota_delete,
    quota_release,
    quota_reserve,
    quota_resources_forget,
    quota_resources_rename,
    quota_set,
)
from apps.identity.services.roles import (
    implied_role_create,
    implied_role_delete,
    project_member_remove,
    role_create,
    role_delete,
    role_grant,
    role_revoke,
    role_update,
)
from apps.identity.services.tokens import (
    AuthRequest,
    Scope,
    actor_for_session,
    application_credential_create,
    application_credential_delete,
    password_authenticate,
    token_flush_expired,
    token_inspect,
    token_issue,
    token_revoke,
    token_validate,
)
from apps.identity.services.users import (
    group_add_user,
    group_create,
    group_delete,
    group_remove_user,
    group_update,
    user_change_password,
    user_create,
    user_delete,
    user_update,
)

__all__ = [
    "CATALOG_SERVICES",
    "QUOTA_MAX",
    "UNAUTHENTICATED",
    "AuthRequest",
    "LastAdmin",
    "Scope",
    "SelfLockout",
    "SignatureMismatch",
    "UnknownAccessKey",
    "actor_for_session",
    "application_credential_create",
    "application_credential_delete",
    "bootstrap",
    "credential_create",
    "credential_delete",
    "credential_update",
    "domain_create",
    "domain_delete",
    "domain_update",
    "ec2_authenticate",
    "ec2_blob",
    "ec2_credential_create",
    "ec2_credential_delete",
    "endpoint_create",
    "endpoint_delete",
    "endpoint_update",
    "group_add_user",
    "group_create",
    "group_delete",
    "group_remove_user",
    "group_update",
    "implied_role_create",
    "implied_role_delete",
    "password_authenticate",
    "project_create",
    "project_delete",
    "project_member_remove",
    "project_tag_add",
    "project_tag_delete",
    "project_tags_set",
    "project_update",
    "quota_default_set",
    "quota_delete",
    "quota_release",
    "quota_reserve",
    "quota_resources_forget",
    "quota_resources_rename",
    "quota_set",
    "region_create",
    "region_delete",
    "region_update",
    "role_create",
    "role_delete",
    "role_grant",
    "role_revoke",
    "role_update",
    "selectors",
    "service_create",
    "service_delete",
    "service_update",
    "token_flush_expired",
    "token_hash",
    "token_inspect",
    "token_issue",
    "token_revoke",
    "token_validate",
    "user_change_password",
    "user_create",
    "user_delete",
    "user_update",
]
