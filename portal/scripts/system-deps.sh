#!/usr/bin/env bash
# Install the Debian packages Stratus needs, and only the missing ones: a machine that has them
# all never runs apt. Usage: portal/scripts/system-deps.sh run|test|bench
set -euo pipefail

profile="${1:-run}"

# To build the venv (psycopg2 and libvirt-python compile) and to run the embedded cloud.
packages=(python3 python3-venv python3-dev build-essential pkg-config libpq-dev libvirt-dev
          redis-server iproute2 ca-certificates
          dnsmasq-base nftables busybox-static  # the network agent: DHCP, NAT/security groups, udhcpc
          qemu-utils  # qemu-img: the demo image, instance disks, volumes
          genisoimage)  # config drives (ISO9660, label config-2); isoinfo reads them back
case "$profile" in
  run) [ "${STRATUS_HYPERVISOR:-test}" = test ] || packages+=(qemu-system-x86 libvirt-daemon-system libvirt-clients) ;;
  # xmllint: domain XML against libvirt's schema; qemu + libvirtd: the real-guest e2e test (tests/qemu_support.py)
  # rabbitmq-server: the RabbitMQ broker tests (tests/workers/test_rabbitmq_broker.py, per-node users)
  test) packages+=(postgresql chromium libxml2-utils qemu-system-x86 libvirt-daemon-system libvirt-clients
                   rabbitmq-server) ;;
  bench) packages+=(postgresql wrk) ;;
  *) echo "usage: $0 run|test|bench" >&2; exit 2 ;;
esac

if ! command -v dpkg >/dev/null 2>&1; then
  echo "system-deps: no dpkg here (not Debian?); make sure these are installed: ${packages[*]}" >&2
  exit 0
fi

missing=()
for pkg in "${packages[@]}"; do
  # "install ok installed": a package removed but not purged does not count.
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "system-deps: missing ${missing[*]} and not root (no sudo): install them first" >&2
    exit 1
  fi
fi

echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
