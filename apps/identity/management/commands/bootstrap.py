"""python manage.py bootstrap: the Default domain, roles, admin and demo projects and users, the
catalog, and openrc/clouds.yaml files for the real clients. Idempotent."""
from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand

from apps.identity import services


def _password_from_openrc(path: Path) -> str | None:
    if not path.exists():
        return None
    match = re.search(r"^export OS_PASSWORD='([^']*)'$", path.read_text(), re.M)
    return match.group(1) if match else None


def _openrc(*, auth_url: str, user: str, project: str, password: str, region: str) -> str:
    return (
        "# Source this file to use the openstack CLI as "
        f"{user} in project {project}.\n"
        f"export OS_AUTH_URL='{auth_url}'\n"
        "export OS_IDENTITY_API_VERSION=3\n"
        f"export OS_USERNAME='{user}'\n"
        f"export OS_PASSWORD='{password}'\n"
        f"export OS_PROJECT_NAME='{project}'\n"
        "export OS_USER_DOMAIN_NAME='Default'\n"
        "export OS_PROJECT_DOMAIN_NAME='Default'\n"
        f"export OS_REGION_NAME='{region}'\n"
        "export OS_INTERFACE=public\n"
    )


class Command(BaseCommand):
    help = "Create the default domain, roles, admin/demo projects and users, and the service catalog."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--public-url", default=settings.STRATUS_PUBLIC_URL)
        parser.add_argument("--admin-password", default=settings.STRATUS_ADMIN_PASSWORD or None)
        parser.add_argument("--demo-password", default=settings.STRATUS_DEMO_PASSWORD or None)
        parser.add_argument("--region", default=settings.STRATUS_REGION)
        parser.add_argument("--data-dir", default=str(settings.DATA_DIR))

    def handle(self, *args: Any, **opts: Any) -> None:
        data_dir = Path(opts["data_dir"])
        data_dir.mkdir(parents=True, exist_ok=True)
        admin_rc, demo_rc = data_dir / "admin-openrc.sh", data_dir / "demo-openrc.sh"
        admin_password = opts["admin_password"] or _password_from_openrc(admin_rc) or secrets.token_urlsafe(12)
        demo_password = opts["demo_password"] or _password_from_openrc(demo_rc) or secrets.token_urlsafe(12)
        region = opts["region"]
        services.bootstrap(public_url=opts["public_url"], admin_password=admin_password,
                           demo_password=demo_password, region_id=region)

        auth_url = opts["public_url"].rstrip("/") + "/identity/v3"
        clouds: dict[str, Any] = {"clouds": {}}
        for rc, user, project, password in ((admin_rc, "admin", "admin", admin_password),
                                            (demo_rc, "demo", "demo", demo_password)):
            rc.write_text(_openrc(auth_url=auth_url, user=user, project=project, password=password, region=region))
            rc.chmod(0o600)
            clouds["clouds"][f"stratus-{user}"] = {
                "auth": {"auth_url": auth_url, "username": user, "password": password, "project_name": project,
                         "user_domain_name": "Default", "project_domain_name": "Default"},
                "region_name": region, "interface": "public", "identity_api_version": 3,
            }
        clouds_file = data_dir / "clouds.yaml"
        clouds_file.write_text(yaml.safe_dump(clouds, sort_keys=False))
        clouds_file.chmod(0o600)
        self.stdout.write(f"admin password: {admin_password}\n")
        self.stdout.write(f"openrc files: {admin_rc} {demo_rc}\nclouds.yaml: {clouds_file}\n")
