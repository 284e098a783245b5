"""The network topology picture: the project's networks, routers and devices as plain values
(``topology_data``, also served as JSON) and their positions in the SVG (``topology_layout``)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from apps.dashboard.shell import actor_for, dashboard_view, render_page
from apps.identity.policy import Actor
from apps.networks import selectors
from apps.networks.models import (
    DEVICE_OWNER_DHCP,
    DEVICE_OWNER_FLOATINGIP,
    DEVICE_OWNER_ROUTER_GATEWAY,
    DEVICE_OWNER_ROUTER_INTERFACE,
)
from apps.networks.views import subnets_by_network

# ---- layout ------------------------------------------------------------------------------

COLUMN = 240     # distance between two network bars
BAR = 22         # a network bar's width
GAP = 72         # between a bar and the box right of it (room for an address)
LEFT = 24
TOP = 78         # where the bars start (names above)
ROW = 66         # one device per row
BOX_W, BOX_H = 130, 44


def _device_kind(owner: str) -> str:
    if owner == DEVICE_OWNER_DHCP:
        return "dhcp"
    if owner.startswith("compute:"):
        return "instance"
    return "port"


def topology_data(actor: Actor) -> dict[str, Any]:
    """The project's networks (external and shared ones too), routers with their gateway and
    interfaces, and the other ports grouped by device (compute:* ports make one box per instance).
    Plain values, from a constant number of selector calls."""
    networks = sorted(selectors.network_list(actor=actor), key=lambda n: (not n.external, n.name, n.id))
    subnets = subnets_by_network(selectors.subnet_list(actor=actor))
    routers = list(selectors.router_list(actor=actor))
    ports = list(selectors.port_list(actor=actor))
    nets = [{"id": n.id, "name": n.name or n.id[:8], "external": n.external, "shared": n.shared,
             "cidrs": [s.cidr for s in subnets.get(n.id, [])], "url": reverse("networks:network", args=[n.id])}
            for n in networks]
    devices: list[dict[str, Any]] = []
    router_links: dict[str, list[dict[str, Any]]] = defaultdict(list)
    others: dict[tuple[str, str], dict[str, Any]] = {}
    for port in ports:
        ips = [a.ip_address for a in port.fixed_ips.all()]
        link = {"network": port.network_id, "ips": ips, "port": port.id, "role": port.device_owner or "port"}
        if port.device_owner == DEVICE_OWNER_ROUTER_INTERFACE:
            router_links[port.device_id].append(link)
        elif port.device_owner in (DEVICE_OWNER_ROUTER_GATEWAY, DEVICE_OWNER_FLOATINGIP):
            continue  # gateways come with their router; floating IP ports are addresses, not devices
        else:
            kind = _device_kind(port.device_owner)
            key = (port.device_owner, port.device_id) if kind != "port" or port.device_id else ("", port.id)
            device = others.get(key)
            if device is None:
                label = {"dhcp": "DHCP", "instance": f"instance {port.device_id[:8]}"}.get(
                    kind, port.name or port.id[:8])
                device = others[key] = {"id": port.device_id or port.id, "kind": kind, "name": label,
                                        "owner": port.device_owner, "links": [], "url": reverse("networks:ports")}
            device["links"].append(link)
    for router in routers:
        links = []
        if router.gw_port is not None:
            links.append({"network": router.gw_port.network_id, "ips": [a.ip_address for a in
                                                                         router.gw_port.fixed_ips.all()],
                          "port": router.gw_port.id, "role": DEVICE_OWNER_ROUTER_GATEWAY})
        devices.append({"id": router.id, "kind": "router", "name": router.name or router.id[:8],
                        "owner": "router", "links": links + router_links.get(router.id, []),
                        "url": reverse("networks:router", args=[router.id])})
    order = {"instance": 0, "port": 1, "dhcp": 2}
    devices += sorted(others.values(), key=lambda d: (order.get(d["kind"], 3), d["name"]))
    return {"networks": nets, "devices": devices}


def topology_layout(data: dict[str, Any]) -> dict[str, Any]:
    """Positions for the SVG: networks are vertical bars side by side, each device a box on its own
    row just right of the leftmost network it joins, with a line to every network it joins."""
    column = {n["id"]: i for i, n in enumerate(data["networks"])}
    rows = max(1, len(data["devices"]))
    height = TOP + rows * ROW + 24
    width = LEFT + max(1, len(data["networks"])) * COLUMN + GAP + BOX_W
    bars = [{**n, "x": LEFT + i * COLUMN, "y": TOP - 10, "h": height - TOP, "label_x": LEFT + i * COLUMN,
             "short": n["name"] if len(n["name"]) <= 24 else n["name"][:23] + "…"}
            for i, n in enumerate(data["networks"])]
    boxes = []
    for r, device in enumerate(data["devices"]):
        cols = sorted({column[link["network"]] for link in device["links"] if link["network"] in column})
        first = cols[0] if cols else 0
        x = LEFT + first * COLUMN + BAR + GAP
        y = TOP + r * ROW
        mid = y + BOX_H / 2
        lines = []
        for link in device["links"]:
            c = column.get(link["network"])
            if c is None:
                continue
            bar_x = LEFT + c * COLUMN
            # the address is written in the gap left of the box, or just right of a farther bar
            x1, x2 = (x, bar_x + BAR) if c == first else (x + BOX_W, bar_x)
            lines.append({**link, "x1": x1, "x2": x2, "y": mid, "label": link["ips"][0] if link["ips"] else "",
                          "label_x": (x1 + x2) / 2 if c == first else bar_x + BAR + 4,
                          "anchor": "middle" if c == first else "start", "all_ips": ", ".join(link["ips"])})
        short = device["name"] if len(device["name"]) <= 18 else device["name"][:17] + "…"
        boxes.append({**device, "x": x, "y": y, "w": BOX_W, "h": BOX_H, "lines": lines, "short": short,
                      "text_x": x + BOX_W / 2, "text_y": y + 19, "sub_y": y + 34})
    return {"width": width, "height": height, "bars": bars, "boxes": boxes, "bar_w": BAR}


@dashboard_view
def topology(request: HttpRequest) -> HttpResponse:
    data = topology_data(actor_for(request))
    context = {"layout": topology_layout(data), "data": data}
    return render_page(request, "networks/topology.html", context, partial="networks/_topology_svg.html")


@dashboard_view
def topology_json(request: HttpRequest) -> HttpResponse:
    return JsonResponse(topology_data(actor_for(request)))
