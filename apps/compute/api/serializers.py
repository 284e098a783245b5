"""Nova v2.1 bodies, per microversion (only what the advertised range needs)."""
from __future__ import annotations

from typing import Any

from apps.compute.models import Flavor, FlavorAccess, KeyPair, ServerGroup

MIN_VERSION = (2, 1)
MAX_VERSION = (2, 31)


def version_str(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _media_types(version: str) -> list[dict[str, str]]:
    return [{"base": "application/json", "type": f"application/vnd.openstack.compute+json;version={version}"}]


def v21_out(base: str, *, media_types: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "v2.1", "status": "CURRENT", "version": version_str(MAX_VERSION),
        "min_version": version_str(MIN_VERSION), "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
    }
    if media_types:
        body["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
        body["media-types"] = _media_types("2.1")
    return body


def v20_out(base: str, *, media_types: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "",
        "updated": "2011-01-21T11:33:21Z", "links": [{"rel": "self", "href": f"{base}/v2/"}],
    }
    if media_types:
        body["links"].append({"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"})
        body["media-types"] = _media_types("2")
    return body


def versions_out(base: str) -> dict[str, Any]:
    return {"versions": [v20_out(base, media_types=False), v21_out(base, media_types=False)]}


# ---- flavors ---------------------------------------------------------------------------------

def _flavor_links(base: str, flavor: Flavor) -> list[dict[str, str]]:
    root = base.rsplit("/v2.1", 1)[0]
    return [{"rel": "self", "href": f"{base}/flavors/{flavor.flavorid}"},
            {"rel": "bookmark", "href": f"{root}/flavors/{flavor.flavorid}"}]


def flavor_brief(flavor: Flavor, base: str) -> dict[str, Any]:
    return {"id": flavor.flavorid, "name": flavor.name, "links": _flavor_links(base, flavor)}


def flavor_out(flavor: Flavor, base: str) -> dict[str, Any]:
    # At 2.1 a flavor carries no description and no extra_specs (2.55 / 2.61).
    return {
        "id": flavor.flavorid, "name": flavor.name, "ram": flavor.memory_mb, "vcpus": flavor.vcpus,
        "disk": flavor.root_gb, "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled, "swap": flavor.swap or "",
        "rxtx_factor": flavor.rxtx_factor, "os-flavor-access:is_public": flavor.is_public,
        "links": _flavor_links(base, flavor),
    }


def flavor_access_out(rows: list[FlavorAccess], flavor_id: str) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": row.project_id} for row in rows]}


# ---- key pairs -------------------------------------------------------------------------------

def keypair_brief(keypair: KeyPair, version: tuple[int, int]) -> dict[str, Any]:
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint}
    if version >= (2, 2):
        body["type"] = keypair.type
    return {"keypair": body}


def keypair_created(keypair: KeyPair, private_key: str | None, version: tuple[int, int]) -> dict[str, Any]:
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint,
            "user_id": keypair.user_id}
    if version >= (2, 2):
        body["type"] = keypair.type
    if private_key is not None:
        body["private_key"] = private_key
    return body


def _iso(value: Any) -> str | None:
    return value.replace(tzinfo=None).isoformat() if value is not None else None


def keypair_out(keypair: KeyPair, version: tuple[int, int]) -> dict[str, Any]:
    body = {"name": keypair.name, "public_key": keypair.public_key, "fingerprint": keypair.fingerprint,
            "user_id": keypair.user_id, "id": keypair.id, "created_at": _iso(keypair.created_at),
            "updated_at": None, "deleted": False, "deleted_at": None}
    if version >= (2, 2):
        body["type"] = keypair.type
    return body


# ---- server groups ---------------------------------------------------------------------------

def server_group_out(group: ServerGroup, *, version: tuple[int, int],
                     members: list[str] | None = None) -> dict[str, Any]:
    # Below 2.64: ``policies`` (a list of one) and ``metadata``; ``members``: its live servers' ids;
    # from 2.13 whose it is (project_id, user_id), for every caller.
    body: dict[str, Any] = {"id": group.id, "name": group.name, "policies": [group.policy],
                            "members": list(members or []), "metadata": {}}
    if version >= (2, 13):
        body["project_id"] = group.project_id
        body["user_id"] = group.user_id or ""
    return body


# ---- quotas and limits -----------------------------------------------------------------------

# Nova's quota keys at 2.1 and where each is counted (floating IPs and security groups are
# Neutron's, shown as Nova did when it proxied them).
QUOTA_KEYS = {
    "instances": "instances", "cores": "cores", "ram": "ram", "floating_ips": "floatingip",
    "fixed_ips": "fixed_ips", "metadata_items": "metadata_items", "injected_files": "injected_files",
    "injected_file_content_bytes": "injected_file_content_bytes",
    "injected_file_path_bytes": "injected_file_path_bytes", "key_pairs": "key_pairs",
    "security_groups": "security_group", "security_group_rules": "security_group_rule",
    "server_groups": "server_groups", "server_group_members": "server_group_members",
}


def quota_set_out(project_id: str, limits: dict[str, int], *, with_id: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id} if with_id else {}
    body.update({key: limits.get(resource, -1) for key, resource in QUOTA_KEYS.items()})
    return body


def quota_detail_out(project_id: str, usage: dict[str, dict[str, int]], in_use: dict[str, int]) -> dict[str, Any]:
    body: dict[str, Any] = {"id": project_id}
    for key, resource in QUOTA_KEYS.items():
        entry = usage.get(resource, {"limit": -1, "in_use": 0})
        body[key] = {"limit": entry["limit"], "in_use": in_use.get(key, entry["in_use"]), "reserved": 0}
    return body


def limits_out(limits: dict[str, int], used: dict[str, int]) -> dict[str, Any]:
    absolute = {
        "maxServerMeta": limits.get("metadata_items", -1), "maxPersonality": limits.get("injected_files", -1),
        "maxPersonalitySize": limits.get("injected_file_content_bytes", -1),
        "maxImageMeta": limits.get("metadata_items", -1), "maxTotalKeypairs": limits.get("key_pairs", -1),
        "maxSecurityGroups": limits.get("security_group", -1),
        "maxSecurityGroupRules": limits.get("security_group_rule", -1),
        "maxTotalInstances": limits.get("instances", -1), "maxTotalCores": limits.get("cores", -1),
        "maxTotalRAMSize": limits.get("ram", -1), "maxServerGroups": limits.get("server_groups", -1),
        "maxServerGroupMembers": limits.get("server_group_members", -1),
        "maxTotalFloatingIps": limits.get("floatingip", -1),
        "totalRAMUsed": used.get("ram", 0), "totalCoresUsed": used.get("cores", 0),
        "totalInstancesUsed": used.get("instances", 0), "totalFloatingIpsUsed": used.get("floatingip", 0),
        "totalSecurityGroupsUsed": used.get("security_group", 0),
        "totalServerGroupsUsed": used.get("server_groups", 0),
    }
    return {"limits": {"rate": [], "absolute": absolute}}
