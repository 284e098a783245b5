"""What the dashboard's API access page offers for the current project: the public endpoints of the
service catalog, and an openrc (Keystone v3) and a clouds.yaml naming the cloud, region, user and
project, with no password in either (the openrc asks for it, as Horizon's does).

Names come from users (any character is allowed in a project's or a user's name), so every value is
quoted for its format: ``shlex.quote`` for the shell (a name such as ``$(rm -rf ~)`` stays a name),
``yaml.safe_dump`` for YAML. The functions take plain values; the view reads them from the selectors.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

CLOUD_NAME = "openstack"  # the cloud's name in clouds.yaml (Horizon's): `openstack --os-cloud openstack`


@dataclass(frozen=True)
class Credentials:
    auth_url: str
    region: str
    username: str
    user_domain_name: str
    project_id: str
    project_name: str
    project_domain_id: str
    project_domain_name: str


def public_endpoints(catalog: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per service and region: its type, name, region and public URL (the catalog's order)."""
    return [{"type": service["type"], "name": service["name"], "region": endpoint["region"], "url": endpoint["url"]}
            for service in catalog for endpoint in service["endpoints"] if endpoint["interface"] == "public"]


def identity_endpoint(catalog: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(Keystone v3 URL, region) from the catalog's public identity endpoint; None when it has none."""
    for row in public_endpoints(catalog):
        if row["type"] == "identity":
            url = row["url"].rstrip("/")
            return (url if re.search(r"/v3(\.\d+)?$", url) else f"{url}/v3"), row["region"]
    return None


def filename(name: str, suffix: str) -> str:
    """A download's file name from a project name (only safe characters kept)."""
    return (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "project") + suffix


def openrc(creds: Credentials) -> str:
    """Keystone v3 environment for the CLI and SDKs; ``source``-ing it asks for the password."""
    q = shlex.quote
    return f"""#!/usr/bin/env bash
# OpenStack RC file (Identity API v3) for project {_comment(creds.project_name)} as user {_comment(creds.username)}.
# Source it in a shell (`source <this file>`): it asks for your password, which it keeps only in
# that shell's environment, then the openstack CLI and the SDKs work against this cloud.
export OS_AUTH_URL={q(creds.auth_url)}
export OS_PROJECT_ID={q(creds.project_id)}
export OS_PROJECT_NAME={q(creds.project_name)}
export OS_PROJECT_DOMAIN_ID={q(creds.project_domain_id)}
export OS_USER_DOMAIN_NAME={q(creds.user_domain_name)}
unset OS_TENANT_ID
unset OS_TENANT_NAME
unset OS_PROJECT_DOMAIN_NAME
unset OS_USER_DOMAIN_ID
unset OS_TOKEN
unset OS_CLOUD
export OS_USERNAME={q(creds.username)}
echo "Please enter your OpenStack Password for project $OS_PROJECT_NAME as user $OS_USERNAME: "
read -sr OS_PASSWORD_INPUT
export OS_PASSWORD="$OS_PASSWORD_INPUT"
unset OS_PASSWORD_INPUT
export OS_REGION_NAME={q(creds.region)}
if [ -z "$OS_REGION_NAME" ]; then unset OS_REGION_NAME; fi
export OS_INTERFACE=public
export OS_IDENTITY_API_VERSION=3
"""


def clouds_yaml(creds: Credentials) -> str:
    """A clouds.yaml with this cloud as ``openstack``; the password is not in it (the CLI asks for it,
    or add ``password:`` under ``auth``, or keep it in secure.yaml)."""
    cloud = {"auth": {"auth_url": creds.auth_url, "username": creds.username,
                      "user_domain_name": creds.user_domain_name, "project_id": creds.project_id,
                      "project_name": creds.project_name, "project_domain_id": creds.project_domain_id},
             "region_name": creds.region, "interface": "public", "identity_api_version": 3}
    head = ("# clouds.yaml for project {} as user {}: put it in ~/.config/openstack/ (or the current\n"
            "# directory) and run `openstack --os-cloud {}`; the password is not in it: the CLI asks for it.\n")
    return head.format(_comment(creds.project_name), _comment(creds.username), CLOUD_NAME) + \
        yaml.safe_dump({"clouds": {CLOUD_NAME: cloud}}, sort_keys=False, allow_unicode=True)


def _comment(text: str) -> str:
    """A name inside a comment line: on one line."""
    return " ".join(text.split())
