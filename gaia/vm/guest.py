"""Build a small guest from Debian packages: a cloud kernel and an initramfs that brings
up eth0 with a static address and starts one server (redis-server, memcached).

Why this way: no disk image, no network beyond apt, nothing but Debian packages. The
kernel comes from `apt-get download linux-image-<ver>-cloud-amd64` (unpacked with
dpkg-deb -x; its virtio modules go into the initramfs), the userland is busybox-static
plus the host's server binary and the shared libraries `ldd` names. Everything is cached
under $GAIA_CACHE/vm (default ~/.cache/gaia/vm) keyed by content, so a second build is
free. The guest's IP address comes from the kernel command line (`gaia.ip=`), so one
initramfs serves every replica.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gaia.errors import GaiaError, MissingBinaryError

BUSYBOX = Path("/bin/busybox")
KERNEL_MODULES = ("virtio_pci", "virtio_net")  # and their dependencies
READY_MARK = "GAIA-READY"
NET_MARK = "GAIA-NET-UP"


def cache_dir() -> Path:
    root = Path(os.environ.get("GAIA_CACHE", Path.home() / ".cache" / "gaia"))
    return root / "vm"


@dataclass(frozen=True)
class GuestApp:
    """A server the guest runs: binary on the host, its Debian package, how to start it."""

    name: str
    binary: str
    package: str
    port: int
    start: str  # shell line run in the guest, in the background
    files: dict[str, str] = field(default_factory=dict)  # guest path -> content


APPS: dict[str, GuestApp] = {
    "redis": GuestApp(
        "redis",
        "/usr/bin/redis-server",
        "redis-server",
        6379,
        "redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no "
        "--enable-debug-command yes --daemonize no --logfile '' >/dev/null 2>&1 &",
    ),
    "memcached": GuestApp(
        "memcached",
        "/usr/bin/memcached",
        "memcached",
        11211,
        "memcached -u root -l 0.0.0.0 -p 11211 -t 1 -m 64 >/dev/null 2>&1 &",
    ),
}


def app(name: str) -> GuestApp:
    try:
        return APPS[name]
    except KeyError:
        raise GaiaError(
            f"no VM guest recipe for app {name!r}", f"choose one of {', '.join(sorted(APPS))}"
        ) from None


@dataclass(frozen=True)
class Guest:
    """A built guest: what QEMU's -kernel/-initrd need, and the app it runs."""

    kernel: Path
    initrd: Path
    app: GuestApp

    def cmdline(self, ip_cidr: str) -> str:
        return (
            "console=ttyS0 panic=-1 loglevel=3 mitigations=off tsc=reliable "
            f"random.trust_cpu=on gaia.ip={ip_cidr}"
        )


# ----------------------------------------------------------------------------- kernel
def _run(argv: list[str], cwd: Path | None = None) -> str:
    if shutil.which(argv[0]) is None:
        raise MissingBinaryError(
            argv[0], {"apt-get": "apt", "apt-cache": "apt"}.get(argv[0], "dpkg")
        )
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        raise GaiaError(
            f"`{' '.join(argv)}` failed: {done.stderr.strip()[-300:]}",
            "check that apt can reach its package sources (`apt-get update`)",
        )
    return done.stdout


def newest_cloud_kernel_package() -> str:
    """The newest `linux-image-<ver>-cloud-amd64` package apt knows."""
    out = _run(["apt-cache", "search", "--names-only", r"^linux-image-[0-9.]+-[0-9]+-cloud-amd64$"])
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    if not names:
        raise GaiaError(
            "apt knows no linux-image-*-cloud-amd64 package",
            "run `apt-get update` (Debian 12 sources), or set GAIA_VM_KERNEL_PACKAGE",
        )

    def version_key(name: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", name))

    return max(names, key=version_key)


def _cached_kernel_package() -> str:
    """A kernel already in the cache (no apt query), else the newest apt knows."""
    cached = sorted((cache_dir() / "kernel").glob("*/.done"))
    return cached[-1].parent.name if cached else newest_cloud_kernel_package()


def fetch_kernel(
    package: str | None = None, progress: Callable[[str], None] = lambda msg: None
) -> tuple[Path, list[Path]]:
    """Download + unpack the kernel package once; return vmlinuz and ordered modules."""
    package = package or os.environ.get("GAIA_VM_KERNEL_PACKAGE") or _cached_kernel_package()
    root = cache_dir() / "kernel" / package
    done = root / ".done"
    if not done.exists():
        progress(f"kernel {package}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o755)  # apt's _apt user must be able to write the .deb
            _run(["apt-get", "download", "-q", package], cwd=Path(tmp))
            debs = list(Path(tmp).glob("*.deb"))
            if not debs:
                raise GaiaError(f"apt-get download {package} produced no .deb", "")
            _run(["dpkg-deb", "-x", str(debs[0]), str(root / "tree")])
        done.write_text(package)
    vmlinuz = next((root / "tree" / "boot").glob("vmlinuz-*"))
    mod_root = next((root / "tree" / "lib" / "modules").iterdir())
    return vmlinuz, module_closure(mod_root, KERNEL_MODULES)


def _module_depends(path: Path) -> list[str]:
    """The `depends=` field of a module's .modinfo section (modules.dep is not shipped
    in the .deb: depmod writes it at install time)."""
    match = re.search(rb"depends=([^\0]*)\0", path.read_bytes())
    return [d for d in (match.group(1).decode().split(",") if match else []) if d]


def module_closure(mod_root: Path, wanted: Iterable[str]) -> list[Path]:
    """Module files for `wanted` and their dependencies, in a loadable order."""
    by_name = {p.name.split(".ko")[0].replace("-", "_"): p for p in mod_root.rglob("*.ko")}
    order: list[Path] = []

    def visit(name: str) -> None:
        path = by_name.get(name.replace("-", "_"))
        if path is None:
            raise GaiaError(f"kernel module {name} not found under {mod_root}", "")
        if path in order:
            return
        for dep in _module_depends(path):
            visit(dep)
        order.append(path)

    for name in wanted:
        visit(name)
    return order


# ----------------------------------------------------------------------------- initramfs
class Cpio:
    """A newc-format cpio archive (what the kernel unpacks as the initramfs)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.seen: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.lstrip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.buf.write(name.encode() + b"\0")
        self.buf.write(b"\0" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def directory(self, name: str) -> None:
        parts = Path(name.lstrip("/")).parts
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self.directory(str(Path(name).parent))
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self.directory(str(Path(name).parent))
        self._entry(name, 0o120777, target.encode())

    def host_file(self, path: Path, guest_path: str | None = None) -> None:
        """Copy a host file (following symlinks: libraries are usually links)."""
        real = path.resolve()
        mode = real.stat().st_mode & 0o777
        self.file(guest_path or str(path), real.read_bytes(), mode)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def shared_libraries(binary: Path) -> list[Path]:
    """The libraries `ldd` resolves for `binary`, the dynamic loader included."""
    out = _run(["ldd", str(binary)])
    libs = []
    for line in out.splitlines():
        match = re.search(r"(/\S+) \(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


def init_script(guest_app: GuestApp, modules: list[str]) -> str:
    """PID 1 of the guest: mount, load virtio, configure eth0, start the server."""
    loads = "\n".join(f"insmod /lib/modules/{m}" for m in modules)
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /tmp /var/run
{loads}
ip=$(sed -n 's/.*gaia\\.ip=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
ip link set lo up
ip link set eth0 up
ip addr add "$ip" dev eth0
echo {NET_MARK} > /dev/console
{guest_app.start}
while ! netstat -ltn 2>/dev/null | grep -q ":{guest_app.port} "; do sleep 0.1; done
echo {READY_MARK} > /dev/console
while true; do sleep 3600; done
"""


def build_initramfs(guest_app: GuestApp, modules: list[Path]) -> bytes:
    binary = Path(guest_app.binary)
    if not binary.exists():
        raise MissingBinaryError(guest_app.binary, guest_app.package)
    if not BUSYBOX.exists():
        raise MissingBinaryError("busybox", "busybox-static")
    archive = Cpio()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "etc", "root"):
        archive.directory(d)
    archive.host_file(BUSYBOX, "/bin/busybox")
    archive.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    archive.file("/etc/group", b"root:x:0:\n")
    for mod in modules:
        archive.host_file(mod, f"/lib/modules/{mod.name}")
    archive.host_file(binary)
    for lib in shared_libraries(binary):
        archive.host_file(lib)
    for guest_path, content in guest_app.files.items():
        archive.file(guest_path, content.encode())
    archive.file("/init", init_script(guest_app, [m.name for m in modules]).encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=1, mtime=0)


def _fingerprint(guest_app: GuestApp, kernel: Path, modules: list[Path]) -> str:
    h = hashlib.sha256()
    for p in [Path(guest_app.binary), BUSYBOX, kernel, *modules]:
        st = p.stat() if p.exists() else None
        h.update(f"{p}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}".encode())
    h.update(init_script(guest_app, [m.name for m in modules]).encode())
    h.update(repr(sorted(guest_app.files.items())).encode())
    return h.hexdigest()[:16]


def build_guest(
    app_name: str = "redis", progress: Callable[[str], None] = lambda msg: None
) -> Guest:
    """Kernel + initramfs for `app_name`, from the cache when already built."""
    guest_app = app(app_name)
    if not Path(guest_app.binary).exists():
        raise MissingBinaryError(guest_app.binary, guest_app.package)
    kernel, modules = fetch_kernel(progress=progress)
    initrd = (
        cache_dir()
        / "initramfs"
        / f"{guest_app.name}-{_fingerprint(guest_app, kernel, modules)}.cpio.gz"
    )
    if not initrd.exists():
        progress(f"initramfs for {guest_app.name}")
        initrd.parent.mkdir(parents=True, exist_ok=True)
        tmp = initrd.with_suffix(".tmp")
        tmp.write_bytes(build_initramfs(guest_app, modules))
        tmp.replace(initrd)
    return Guest(kernel, initrd, guest_app)
