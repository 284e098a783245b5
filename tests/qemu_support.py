"""A real hypervisor for tests: libvirtd + virtlogd started by hand, and a tiny guest built from Debian packages.

* ``skip_reason()``: why real qemu guests cannot run here ("" when they can): root, qemu-system-x86_64,
  libvirtd/virtlogd, ``ip netns``. A libvirtd that already runs is no reason: the test uses it.
* ``Libvirtd(netns)``: first takes the machine's test lock (``LOCK_PATH``), waiting up to
  ``STRATUS_TEST_LIBVIRTD_WAIT_SECONDS`` (default 1200) while another test run holds it (that run stops
  the libvirtd it started before it lets go). Then, when the machine's own libvirtd runs
  (/run/libvirtd.pid), it uses that one (``external``): it starts virtlogd only if none runs, and at the
  end removes only the domains it made itself (those whose files lie under a directory given to
  ``own_dir``, which also lets the daemon's qemu user through: o+x from / down); the guests' taps are
  then made in the daemon's namespace, and the network agent adopts them into its node's namespace.
  Otherwise it starts virtlogd and libvirtd (no systemd: ``-d`` daemons) inside network namespace
  ``netns`` — so the guests' taps are made in that namespace, where the test's network agent works —
  and stops them (and every domain they run) at the end. ``ip netns exec`` hides the cgroup v1 mounts,
  so the daemons start in a shell that mounts a tmpfs on /sys/fs/cgroup and each controller first.
* ``guest_image()``: ``linux-image-cloud-amd64``'s kernel (``apt-get download`` + ``dpkg -x``) and a
  busybox-static initramfs whose /init plays cloud-init (``GUEST_INIT``): loads the virtio, IDE cdrom and
  isofs modules, brings eth0 up with udhcpc (with the lease's static routes), reads the config drive
  (label config-2) or else the metadata service, asks the metadata service too (busybox nc: this static
  busybox's wget dies in the guest), prints ``STRATUS-*`` markers (hostname, instance uuid, key
  fingerprint, fixed IP, the metadata service's uuid, block devices) on the serial console, starts the
  config drive's user data when it is a script (``#!``, in the background), then stays up, reporting
  block devices that come or go, with a shell on its serial console (``guest# ``: what the interactive
  console types into). Built once per machine under ``GUEST_CACHE`` (keyed by
  busybox's version and the init's text; the kernel is the candidate of the day it was built).
* The daemons get their own qemu.conf (``QEMU_CONF``: qemu as root, no relabelling), bind-mounted over
  /etc/libvirt/qemu.conf in their mount namespace only: nothing of the machine's configuration changes.

Domains run as type ``qemu`` (TCG): /dev/kvm exists on this machine kind but hangs guests.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from portal.launcher import LIBVIRT_QEMU_CONF
from tests.capabilities import missing

GUEST_CACHE = Path(os.environ.get("STRATUS_TEST_GUEST_CACHE", "/var/cache/stratus-test-guest"))
LOCK_PATH = "/run/stratus-test-libvirtd.lock"
LIBVIRTD_PID = "/run/libvirtd.pid"
VIRTLOGD_PID = "/run/virtlogd.pid"
# How long a test waits for another test run's libvirtd (the lock) before it gives up (skips).
WAIT_SECONDS = float(os.environ.get("STRATUS_TEST_LIBVIRTD_WAIT_SECONDS", "1200"))
LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"
# The daemon's own qemu.conf (the one `make run` gives the libvirtd it starts), bind-mounted over
# /etc/libvirt/qemu.conf in its mount namespace only: qemu runs as root (it reads the instances' files
# under the test's temporary directories and the storage agent's volume files, so a hot-plugged volume
# needs no chown), and libvirt's capability cache stays valid: as libvirt-qemu, /dev/kvm (0600 root) made
# it re-probe qemu on every domain start, about 50 s each under load.
QEMU_CONF = LIBVIRT_QEMU_CONF
CGROUP_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")
# The kernel's modules the initramfs loads, in dependency order (the cloud kernel has them as modules).
GUEST_MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci",
                 "virtio_blk", "failover", "net_failover", "virtio_net", "scsi_common", "scsi_mod", "libata",
                 "ata_piix", "cdrom", "sr_mod", "isofs")
GUEST_CMDLINE = "console=ttyS0 loglevel=4 panic=-1"

GUEST_INIT = r"""#!/bin/sh
# Stratus test guest: what cloud-init does, in busybox sh.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do
  insmod /lib/modules/$m.ko 2>/dev/null || echo "STRATUS-MODULE-FAILED=$m"
done
echo "STRATUS-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
ip link set lo up
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ip link set eth0 up
udhcpc -i eth0 -n -q -t 20 -T 1 -A 1 -O staticroutes -s /etc/udhcpc.sh >/dev/null 2>&1 || echo "STRATUS-DHCP-FAILED"
ip4=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}')
echo "STRATUS-IP=$ip4"
# GET the metadata service's meta_data.json into $1 (busybox nc and a hand-written request: this static
# busybox's wget dies in the guest); a few tries while the network agent wires the proxy
fetch_md() {
  n=0
  [ -n "$ip4" ] || return 1
  while [ $n -lt 10 ]; do
    printf 'GET /openstack/latest/meta_data.json HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' \
      | nc -w 3 169.254.169.254 80 > /tmp/md.http 2>&1
    if head -n1 /tmp/md.http | grep -q ' 200 '; then sed '1,/^\r*$/d' /tmp/md.http > "$1"; return 0; fi
    n=$((n+1)); sleep 1
  done
  return 1
}
meta=""
mkdir -p /config
i=0
while [ $i -lt 30 ]; do
  dev=$(findfs LABEL=config-2 2>/dev/null)
  [ -n "$dev" ] && break
  sleep 0.1; i=$((i+1))
done
if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /config 2>/dev/null; then
  meta=/config/openstack/latest/meta_data.json
  echo "STRATUS-SOURCE=config-drive $dev"
elif fetch_md /tmp/meta_data.json; then
  meta=/tmp/meta_data.json
  echo "STRATUS-SOURCE=metadata-service"
else
  echo "STRATUS-SOURCE=none"
fi
field() { tr ',{}' '\n\n\n' < "${2:-$meta}" | sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n1; }
if [ -n "$meta" ]; then
  host=$(field hostname)
  hostname "$host"
  echo "STRATUS-HOSTNAME=$host"
  echo "STRATUS-UUID=$(field uuid)"
  # the first public key: "public_keys": {"<name>": "ssh-... <base64> comment"}
  key=$(tr ',{}' '\n\n\n' < "$meta" | sed -n 's/^ *"[^"]*": *"\(ssh-[a-z0-9-]* [A-Za-z0-9+\/=]*\).*/\1/p' | head -n1)
  if [ -n "$key" ]; then
    fp=$(echo "$key" | cut -d' ' -f2 | base64 -d | md5sum | cut -c1-32 | sed 's/../&:/g; s/:$//')
    echo "STRATUS-KEY-FINGERPRINT=$fp"
  fi
fi
# the metadata service as well (through the DHCP namespace's proxy, by the lease's static route)
if fetch_md /tmp/md.json; then
  echo "STRATUS-METADATA-SERVICE-UUID=$(field uuid /tmp/md.json)"
else
  echo "STRATUS-METADATA-SERVICE-FAILED $(head -n1 /tmp/md.http 2>/dev/null); routes: $(ip route | tr '\n' ';')"
fi
blocks() { awk 'NR>2 && $4 !~ /^(ram|loop)/ {print $4}' /proc/partitions | sort | tr '\n' ' '; }
seen=$(blocks)
echo "STRATUS-BLOCK-DEVICES=$seen"
echo "STRATUS-READY"
# user data that is a script (#!) runs once, in the background, its output on the console (as cloud-init's
# scripts-user does); the config drive's copy
ud=/config/openstack/latest/user_data
if [ -f "$ud" ] && [ "$(head -c 2 "$ud")" = "#!" ]; then
  cp "$ud" /tmp/user_data && chmod +x /tmp/user_data
  echo "STRATUS-USER-DATA=started"
  /tmp/user_data </dev/null &
fi
# in the background: report block devices that come or go (a line of their own, after any prompt)
while true; do
  sleep 1
  now=$(blocks)
  if [ "$now" != "$seen" ]; then printf '\nSTRATUS-BLOCK-DEVICES=%s\n' "$now"; seen=$now; fi
done &
# a shell on the serial console (its controlling tty), for the interactive console; again when it exits
export PS1='guest# '
while true; do setsid cttyhack sh; sleep 1; done
"""

UDHCPC_SCRIPT = r"""#!/bin/sh
case "$1" in
  deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    set -- $staticroutes
    while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
    ;;
esac
exit 0
"""


def _run(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} → {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc


def _pid_alive(pidfile: str) -> int | None:
    """The pid in ``pidfile`` if that process runs (a zombie does not: nothing may reap it here)."""
    try:
        pid = int(Path(pidfile).read_text().strip())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return None if state in ("Z", "X") else pid
    except (OSError, ValueError, IndexError):
        return None


def skip_reason() -> str:
    """Why real qemu guests cannot run here, as tests.capabilities.missing() says it; "" when they can."""
    return missing(_skip_reason())


def _skip_reason() -> str:
    if os.geteuid() != 0:
        return f"not root (euid {os.geteuid()}): libvirtd, taps and namespaces need root"
    for tool, pkg in (("qemu-system-x86_64", "qemu-system-x86"), ("libvirtd", "libvirt-daemon-system"),
                      ("virtlogd", "libvirt-daemon-system"), ("apt-get", "apt"), ("dpkg", "dpkg"),
                      ("busybox", "busybox-static"), ("genisoimage", "genisoimage"), ("qemu-img", "qemu-utils")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package {pkg}; portal/scripts/system-deps.sh test installs it)"
    probe = f"sq{os.getpid()}"
    proc = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"`ip netns add` fails here: {proc.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return ""


class LibvirtdBusy(RuntimeError):
    """Another test run held the machine's libvirtd longer than the wait allowed."""


def _virsh(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=False,
                          timeout=timeout)


def let_others_through(path: str | os.PathLike[str]) -> None:
    """o+x on ``path`` and every directory above it (the daemon's qemu user must reach the files in it)."""
    target = Path(path).resolve()
    for directory in (target, *target.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)


class Libvirtd:
    """virtlogd + libvirtd for ``qemu:///system``: the machine's own when one runs (``external``), else
    started inside network namespace ``netns``."""

    def __init__(self, netns: str, *, wait_seconds: float | None = None) -> None:
        self.netns = netns
        self.wait_seconds = WAIT_SECONDS if wait_seconds is None else wait_seconds
        self.start_seconds = 0.0
        self.waited_seconds = 0.0
        self.external = False
        self.owned_dirs: list[Path] = []
        self._started_virtlogd = False
        self._lock_fd: int | None = None
        self._conf_dir: Path | None = None

    def _lock(self) -> None:
        """Take the machine's test lock, waiting (bounded) while another test run holds it."""
        fd = os.open(LOCK_PATH, os.O_CREAT | os.O_RDWR, 0o600)
        started = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() - started >= self.wait_seconds:
                    os.close(fd)
                    raise LibvirtdBusy(f"another test run held libvirtd on this machine for {self.wait_seconds:.0f} s "
                                       "(STRATUS_TEST_LIBVIRTD_WAIT_SECONDS)") from exc
                time.sleep(0.5)
        self.waited_seconds = time.monotonic() - started
        self._lock_fd = fd

    def own_dir(self, path: str | os.PathLike[str]) -> Path:
        """A directory the test's domains keep their files in: the daemon's qemu user may reach it, and
        the domains whose files lie under it are removed at the end (the machine's daemon: only those)."""
        target = Path(path).resolve()
        if self.external:
            let_others_through(target)
        self.owned_dirs.append(target)
        return target

    def _answers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _virsh("version", timeout=timeout).returncode == 0:
                return True
            time.sleep(0.2)
        return False

    def start(self, timeout: float = 60) -> Libvirtd:
        self._lock()
        started = time.monotonic()
        if _pid_alive(LIBVIRTD_PID):
            # the machine's own libvirtd (another test run's would have been stopped before its lock went)
            self.external = True
            try:
                if not _pid_alive(VIRTLOGD_PID):
                    _run("virtlogd", "-d", timeout=timeout)
                    self._started_virtlogd = True
                if not self._answers(timeout):
                    raise RuntimeError(f"the machine's libvirtd did not answer on qemu:///system within {timeout}s")
            except Exception:
                self.stop()
                raise
            self.start_seconds = time.monotonic() - started
            return self
        mounts = "mount -t tmpfs cgroup_root /sys/fs/cgroup && " + " && ".join(
            f"mkdir -p /sys/fs/cgroup/{c} && mount -t cgroup -o {c} cgroup /sys/fs/cgroup/{c}"
            for c in CGROUP_CONTROLLERS) + " && mkdir -p /sys/fs/cgroup/systemd && " \
            "mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd"
        conf = Path(tempfile.mkdtemp(prefix="stratus-libvirtd-")) / "qemu.conf"
        conf.write_text(QEMU_CONF)
        self._conf_dir = conf.parent
        # a virtlogd that runs without libvirtd is the machine's: it serves ours too (and stays)
        logd = "" if _pid_alive(VIRTLOGD_PID) else "virtlogd -d && "
        self._started_virtlogd = bool(logd)
        script = f"{mounts} && mount --bind {conf} /etc/libvirt/qemu.conf && {logd}libvirtd -d"
        try:
            _run("ip", "netns", "exec", self.netns, "sh", "-c", script, timeout=timeout)
        except Exception:
            self.stop()
            raise
        if self._answers(timeout):
            self.start_seconds = time.monotonic() - started
            return self
        self.stop()
        raise RuntimeError(f"libvirtd did not answer on qemu:///system within {timeout}s")

    def _ours(self, name: str) -> bool:
        """The domain ``name`` keeps a file under one of ``owned_dirs`` (its disks, console, kernel)."""
        xml = _virsh("dumpxml", "--inactive", name).stdout
        return any(f"'{d}/" in xml or f"'{d}'" in xml for d in self.owned_dirs)

    def stop(self) -> None:
        """Destroy the domains that are the test's (all of them on a daemon it started; on the machine's
        own, only those under ``owned_dirs``), then stop the daemons it started (their pid files)."""
        with contextlib.suppress(Exception):
            names = _virsh("list", "--all", "--name").stdout.split()
            for name in names:
                if self.external and not self._ours(name):
                    continue
                _virsh("destroy", name)
                _virsh("undefine", name, "--nvram")
        pidfiles = [] if self.external else [LIBVIRTD_PID]
        if self._started_virtlogd:
            pidfiles.append(VIRTLOGD_PID)
        for pidfile in pidfiles:
            pid = _pid_alive(pidfile)
            if pid is None:
                continue
            os.kill(pid, 15)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _pid_alive(pidfile) == pid:
                time.sleep(0.1)
            if _pid_alive(pidfile) == pid:
                os.kill(pid, 9)
        if self._conf_dir is not None:
            shutil.rmtree(self._conf_dir, ignore_errors=True)
            self._conf_dir = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# ---- the guest image -------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuestImage:
    kernel: Path
    initramfs: Path
    disk: Path  # a small blank qcow2: the machine image the kernel/ramdisk properties hang on
    cmdline: str
    build_seconds: float  # 0 when it came from the cache
    key: str


def _kernel_package() -> tuple[str, str]:
    """(the versioned kernel package linux-image-cloud-amd64 depends on, its candidate version)."""
    deps = _run("apt-cache", "depends", "linux-image-cloud-amd64").stdout
    pkg = next((line.split(":", 1)[1].strip() for line in deps.splitlines()
                if line.strip().startswith("Depends:") and "linux-image-" in line), "")
    if not pkg:
        raise RuntimeError(f"apt-cache depends linux-image-cloud-amd64 names no kernel:\n{deps}")
    policy = _run("apt-cache", "policy", pkg).stdout
    version = next((line.split(":", 1)[1].strip() for line in policy.splitlines()
                    if line.strip().startswith("Candidate:")), "")
    return pkg, version


def _cpio_newc(root: Path, out: Path) -> None:
    """Write ``root`` as a newc cpio archive (what the kernel unpacks as initramfs), gzip-less."""
    entries = sorted(p for p in root.rglob("*"))
    ino = 1
    with open(out, "wb") as fh:
        def header(name: str, mode: int, size: int, nlink: int = 1) -> None:
            nonlocal ino
            fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name) + 1, 0]
            data = b"070701" + b"".join(f"{v:08x}".encode() for v in fields) + name.encode() + b"\0"
            fh.write(data + b"\0" * (-len(data) % 4))
            ino += 1

        for path in entries:
            name = str(path.relative_to(root))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path).encode()
                header(name, st.st_mode, len(target))
                fh.write(target + b"\0" * (-len(target) % 4))
            elif stat.S_ISDIR(st.st_mode):
                header(name, st.st_mode, 0, 2)
            else:
                body = path.read_bytes()
                header(name, st.st_mode, len(body))
                fh.write(body + b"\0" * (-len(body) % 4))
        header("TRAILER!!!", 0, 0)


def guest_image(cache: Path = GUEST_CACHE) -> GuestImage:
    """The test guest (kernel, initramfs, blank disk), built once per machine into ``cache``: the cache
    key is busybox's version and the init's text (apt is asked for the kernel only when building)."""
    busybox_version = _run("dpkg-query", "-W", "-f=${Version}", "busybox-static").stdout.strip()
    key = hashlib.sha256("\0".join((busybox_version, GUEST_INIT, UDHCPC_SCRIPT, " ".join(GUEST_MODULES))
                                    ).encode()).hexdigest()[:16]
    final = cache / key
    image = GuestImage(kernel=final / "vmlinuz", initramfs=final / "initrd.img", disk=final / "disk.qcow2",
                       cmdline=GUEST_CMDLINE, build_seconds=0.0, key=key)
    if (final / "complete").exists():
        return image
    started = time.monotonic()
    kernel_pkg, kernel_version = _kernel_package()
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)
    with tempfile.TemporaryDirectory(prefix="guest-", dir=cache) as tmp:
        work = Path(tmp)
        _run("apt-get", "download", f"{kernel_pkg}={kernel_version}", cwd=work, timeout=300)
        deb = next(work.glob("*.deb"))
        _run("dpkg", "-x", str(deb), str(work / "x"))
        vmlinuz = next((work / "x" / "boot").glob("vmlinuz-*"))
        moddir = next((work / "x").glob("lib/modules/*/kernel"))
        root = work / "root"
        for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "config", "lib/modules"):
            (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", root / "bin" / "busybox")
        applets = _run(str(root / "bin" / "busybox"), "--list").stdout.split()
        for applet in applets:
            if applet != "busybox" and not (root / "bin" / applet).exists():
                (root / "bin" / applet).symlink_to("busybox")
        for name in GUEST_MODULES:
            found = next(moddir.rglob(f"{name}.ko"), None)
            if found is None:
                raise RuntimeError(f"module {name} is not in {kernel_pkg}")
            shutil.copy(found, root / "lib" / "modules" / f"{name}.ko")
        (root / "etc" / "modules").write_text("\n".join(GUEST_MODULES) + "\n")
        for path, text in ((root / "init", GUEST_INIT), (root / "etc" / "udhcpc.sh", UDHCPC_SCRIPT)):
            path.write_text(text)
            path.chmod(0o755)
        out = work / "out"
        out.mkdir()
        shutil.copy(vmlinuz, out / "vmlinuz")
        _cpio_newc(root, out / "initrd.img")
        _run("qemu-img", "create", "-q", "-f", "qcow2", str(out / "disk.qcow2"), "64M")
        for f in out.iterdir():
            f.chmod(0o644)
        out.chmod(0o755)
        (out / "complete").write_text(f"{kernel_pkg} {kernel_version} busybox-static {busybox_version} "
                                      f"built in {time.monotonic() - started:.2f} s\n")
        if final.exists():
            shutil.rmtree(final)
        out.rename(final)
    return GuestImage(kernel=image.kernel, initramfs=image.initramfs, disk=image.disk, cmdline=GUEST_CMDLINE,
                      build_seconds=time.monotonic() - started, key=key)
