"""The Keystone v3 API's routes (mounted at /identity/v3/ by portal/urls.py), from each resource's
declaration (apps/core/resources.Routes)."""
from django.urls import re_path

from apps.core.resources import Routes, routes
from apps.identity.api import views as v

S = "/?$"  # clients send both /x and /x/

urlpatterns = [
    re_path(r"^$", v.Version.as_view()),
    *routes(
        "^",
        ("auth/tokens", v.AuthTokens), ("auth/catalog", v.AuthCatalog), ("auth/projects", v.AuthProjects),
        ("auth/domains", v.AuthDomains), ("auth/system", v.AuthSystem),
        Routes("domains", v.Domains, v.DomainDetail),
        Routes("projects", v.Projects, v.ProjectDetail, below={"tags": v.ProjectTags, "tags/{tag}": v.ProjectTag}),
        Routes("users", v.Users, v.UserDetail,
               below={"password": v.UserPassword, "groups": v.UserGroups, "projects": v.UserProjects}),
        Routes("users/{user_id}/application_credentials", v.AppCreds, v.AppCredDetail),
        Routes("users/{user_id}/credentials/OS-EC2", v.Ec2Credentials, v.Ec2CredentialDetail),
        Routes("credentials", v.Credentials, v.CredentialDetail),
        Routes("groups", v.Groups, v.GroupDetail, below={"users": v.GroupUsers, "users/{user_id}": v.GroupUser}),
        Routes("roles", v.Roles, v.RoleDetail, below={"implies": v.RoleImplies, "implies/{implied_id}": v.RoleImply}),
        ("role_inferences", v.RoleInferences), ("role_assignments", v.RoleAssignments),
        Routes("regions", v.Regions, v.RegionDetail), Routes("services", v.Services, v.ServiceDetail),
        Routes("endpoints", v.Endpoints, v.EndpointDetail),
    ),
]

# Role grants: {projects|domains}/{id}/{users|groups}/{id}/roles[/{role}] and system/{users|groups}/{id}/roles
for target in (r"projects/(?P<project_id>[^/]+)", r"domains/(?P<domain_id>[^/]+)", r"system"):
    for who in (r"users/(?P<user_id>[^/]+)", r"groups/(?P<group_id>[^/]+)"):
        urlpatterns += [
            re_path(rf"^{target}/{who}/roles" + S, v.GrantList.as_view()),
            re_path(rf"^{target}/{who}/roles/(?P<role_id>[^/]+)" + S, v.Grant.as_view()),
        ]

# Anything else is Keystone's JSON 404 (never Django's HTML page).
urlpatterns.append(re_path(r"^.*$", v.Unknown.as_view()))
