from django.urls import re_path

from apps.identity.api import views as v

S = "/?$"  # clients send both /x and /x/
ID = r"(?P<pk>[^/]+)"

urlpatterns = [
    re_path(r"^$", v.Version.as_view()),
    re_path(r"^auth/tokens" + S, v.AuthTokens.as_view()),
    re_path(r"^auth/catalog" + S, v.AuthCatalog.as_view()),
    re_path(r"^auth/projects" + S, v.AuthProjects.as_view()),
    re_path(r"^auth/domains" + S, v.AuthDomains.as_view()),
    re_path(r"^auth/system" + S, v.AuthSystem.as_view()),
    re_path(r"^domains" + S, v.Domains.as_view()),
    re_path(rf"^domains/{ID}" + S, v.DomainDetail.as_view()),
    re_path(r"^projects" + S, v.Projects.as_view()),
    re_path(rf"^projects/{ID}" + S, v.ProjectDetail.as_view()),
    re_path(rf"^projects/{ID}/tags" + S, v.ProjectTags.as_view()),
    re_path(rf"^projects/{ID}/tags/(?P<tag>[^/]+)" + S, v.ProjectTag.as_view()),
    re_path(r"^users" + S, v.Users.as_view()),
    re_path(rf"^users/{ID}" + S, v.UserDetail.as_view()),
    re_path(rf"^users/{ID}/password" + S, v.UserPassword.as_view()),
    re_path(rf"^users/{ID}/groups" + S, v.UserGroups.as_view()),
    re_path(rf"^users/{ID}/projects" + S, v.UserProjects.as_view()),
    re_path(r"^users/(?P<user_id>[^/]+)/application_credentials" + S, v.AppCreds.as_view()),
    re_path(rf"^users/(?P<user_id>[^/]+)/application_credentials/{ID}" + S, v.AppCredDetail.as_view()),
    re_path(r"^groups" + S, v.Groups.as_view()),
    re_path(rf"^groups/{ID}" + S, v.GroupDetail.as_view()),
    re_path(rf"^groups/{ID}/users" + S, v.GroupUsers.as_view()),
    re_path(rf"^groups/{ID}/users/(?P<user_id>[^/]+)" + S, v.GroupUser.as_view()),
    re_path(r"^roles" + S, v.Roles.as_view()),
    re_path(rf"^roles/{ID}" + S, v.RoleDetail.as_view()),
    re_path(rf"^roles/{ID}/implies" + S, v.RoleImplies.as_view()),
    re_path(rf"^roles/{ID}/implies/(?P<implied_id>[^/]+)" + S, v.RoleImply.as_view()),
    re_path(r"^role_inferences" + S, v.RoleInferences.as_view()),
    re_path(r"^role_assignments" + S, v.RoleAssignments.as_view()),
    re_path(r"^regions" + S, v.Regions.as_view()),
    re_path(rf"^regions/{ID}" + S, v.RegionDetail.as_view()),
    re_path(r"^services" + S, v.Services.as_view()),
    re_path(rf"^services/{ID}" + S, v.ServiceDetail.as_view()),
    re_path(r"^endpoints" + S, v.Endpoints.as_view()),
    re_path(rf"^endpoints/{ID}" + S, v.EndpointDetail.as_view()),
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
