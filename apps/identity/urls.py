"""The identity panels, mounted at /dashboard/identity/ (namespace "identity") by apps.py; the paths, views and
URL names follow apps/dashboard/routes.py (the lists are <thing>_list views, at paths without a slash)."""
from apps.dashboard.routes import Resource, urls
from apps.identity import views

urlpatterns = urls(
    views,
    Resource("projects", "project", "project_id", index="project_list", slash=False, new=("create", "act"),
             actions=("edit", "enabled=set_enabled", "delete", "members", "members/act=member_act",
                      "members/remove=member_remove", "quotas")),
    Resource("users", "user", "user_id", index="user_list", slash=False, new=("create", "act"),
             actions=("edit", "enabled=set_enabled", "delete")),
    Resource("roles", "role", "role_id", index="role_list", slash=False, new=("create", "act"), actions=("delete",)),
    Resource("groups", "group", "group_id", index="group_list", slash=False, new=("create", "act"), detail=True,
             actions=("edit", "delete", "members/add=member_add", "members/remove=member_remove",
                      "roles/grant=role_grant", "roles/revoke=role_revoke")),
    Resource("domains", "domain", "domain_id", index="domain_list", slash=False, new=("create", "act"),
             actions=("edit", "enabled=set_enabled", "delete")),
    pages={"": "index"},
)
