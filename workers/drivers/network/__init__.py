"""Network driver: Linux bridges + VXLAN, DHCP (dnsmasq) and router namespaces, nftables.

No Django here: the driver takes a ``model.NodeState`` and returns a ``model.Report``.
"""
