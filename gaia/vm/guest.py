"""Build a small guest from Debian packages: a cloud kernel and an initramfs that brings
up eth0 with a static address and starts one server (redis-server, memcached, mariadbd,
or a MongoDB-wire server on CPython).

Why this way: no disk image, no network beyond apt, nothing but Debian packages. The
kernel comes from `apt-get download linux-image-<ver>-cloud-amd64` (unpacked with
dpkg-deb -x; its virtio modules go into the initramfs), the userland is busybox-static
plus the host's server binary and the shared libraries `ldd` names, plus an app's
payload (MariaDB: message files and a prepared datadir; MongoDB: the CPython files the
server opened when traced on the host). Everything is cached under $GAIA_CACHE/vm
(default ~/.cache/gaia/vm) keyed by content, so a second build is free. The guest's IP
address comes from the kernel command line (`gaia.ip=`), so one initramfs serves every
replica. Guest files live on the rootfs (tmpfs): a server's data is in guest RAM, which
is what the page sync replicates.
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
from gaia.vm import guest_mariadb, guest_python

BUSYBOX = Path("/bin/busybox")
KERNEL_MODULES = ("virtio_pci", "virtio_net")  # and their dependencies
READY_MARK = "GAIA-READY"
NET_MARK = "GAIA-NET-UP"


def cache_dir() -> Path:
    root = Path(os.environ.get("GAIA_CACHE", Path.home() / ".cache" / "gaia"))
    return root / "vm"


Progress = Callable[[str], None]
# (host path, guest path) pairs an app adds to the initramfs (a host directory makes an
# empty guest directory); computed at build time, so it may build and cache things.
Payload = Callable[[Progress], list[tuple[Path, str]]]


@dataclass(frozen=True)
class GuestApp:
    """A server the guest runs: binary on the host, its Debian package, how to start it."""

    name: str
    binary: str
    package: str
    port: int
    start: str  # shell line run in the guest, in the background
    files: dict[str, str] = field(default_factory=dict)  # guest path -> content
    payload: Payload | None = None
    mem_mib: int = 256  # guest RAM the app needs (initramfs + server)
    boot_timeout: float = 180.0  # seconds until READY under TCG on a busy 2-core host
    # YCSB binding properties the guest implies ({host}/{port} are filled in)
    client_props: dict[str, str] = field(default_factory=dict)
    cpu: str = ""  # QEMU CPU model under TCG ("" = QEMU's default)


APPS: dict[str, GuestApp] = {
    "redis": GuestApp(
        "redis",
        "/usr/bin/redis-server",
        "redis-server",
        6379,
        "redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no "
        "--enable-debug-command yes --daemonize no --logfile '' >/dev/null 2>&1 &",
        # A sync holds inputs for up to ~1 s (longer on a loaded host): Jedis's 2 s
        # default timeout would turn a sync into a client error.
        client_props={"redis.timeout": "30000"},
    ),
    "memcached": GuestApp(
        "memcached",
        "/usr/bin/memcached",
        "memcached",
        11211,
        "memcached -u root -l 0.0.0.0 -p 11211 -t 1 -m 64 >/dev/null 2>&1 &",
    ),
    "mariadb": GuestApp(
        "mariadb",
        "/usr/sbin/mariadbd",
        "mariadb-server",
        3306,
        f"mkdir -p /run; mariadbd {' '.join(guest_mariadb.server_args())} "
        ">/dev/console 2>&1 &",
        payload=guest_mariadb.payload,
        mem_mib=320,
        boot_timeout=300.0,
        client_props={
            "db.user": guest_mariadb.BENCH_USER,
            "db.passwd": "",
            "db.url": f"jdbc:mysql://{{host}}:{{port}}/{guest_mariadb.DATABASE}",
        },
    ),
    "mongodb": GuestApp(
        "mongodb",
        str(guest_python.VENV_PYTHON),
        "secantusdb (PyPI)",
        27017,
        f"{guest_python.start_line()} >/dev/console 2>&1 &",
        files={guest_python.CONFIG: "# GAIA passes every setting on the command line\n"},
        payload=guest_python.payload,
        mem_mib=guest_python.MEM_MIB,
        # a SYN sync holds a new connection's first reply; pymongo's 2 s server
        # selection can run out on a busy host (honoured once the binding reads URL
        # options, as YCSB's Java binding does)
        client_props={"mongodb.url": "mongodb://{host}:{port}/ycsb?serverSelectionTimeoutMS=30000"},
        boot_timeout=420.0,
        cpu="max",
    ),
}


def binding_props(name: str, host: str, port: int) -> dict[str, str]:
    """The YCSB binding properties for app `name`'s guest reached at host:port."""
    return {k: v.format(host=host, port=port) for k, v in app(name).client_props.items()}


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

    def _entry(self, name: str, mode: int, data: bytes = b"", mtime: int = 0) -> None:
        name = name.lstrip("/")
        if name in self.seen:
            return
        self.seen.add(name)
        fields = [self.ino, mode, 0, 0, 1, mtime, len(data), 0, 0, 0, 0, len(name) + 1, 0]
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

    def file(self, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        self.directory(str(Path(name).parent))
        self._entry(name, 0o100000 | mode, data, mtime)

    def symlink(self, name: str, target: str) -> None:
        self.directory(str(Path(name).parent))
        self._entry(name, 0o120777, target.encode())

    def host_file(self, path: Path, guest_path: str | None = None, keep_mtime: bool = False) -> None:
        """Copy a host file (following symlinks: libraries are usually links). With
        `keep_mtime` the guest file keeps the host's mtime (CPython trusts a compiled
        module only when its source's mtime matches the one recorded in it)."""
        real = path.resolve()
        st = real.stat()
        mtime = int(st.st_mtime) if keep_mtime else 0
        self.file(guest_path or str(path), real.read_bytes(), st.st_mode & 0o777, mtime)

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


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def build_initramfs(
    guest_app: GuestApp, modules: list[Path], payload: list[tuple[Path, str]] = ()
) -> bytes:
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
    for host, guest_path in payload:
        if host.is_dir():
            archive.directory(guest_path)
            continue
        archive.host_file(host, guest_path, keep_mtime=True)
        if (host.suffix == ".so" or ".so." in host.name) and _is_elf(host):
            for lib in shared_libraries(host):  # an extension module's libraries
                archive.host_file(lib)
    for guest_path, content in guest_app.files.items():
        archive.file(guest_path, content.encode())
    archive.file("/init", init_script(guest_app, [m.name for m in modules]).encode(), 0o755)
    return gzip.compress(archive.finish(), compresslevel=1, mtime=0)


def _fingerprint(
    guest_app: GuestApp, kernel: Path, modules: list[Path], payload: list[tuple[Path, str]]
) -> str:
    h = hashlib.sha256()
    if payload:
        h.update(repr([guest for _, guest in payload]).encode())
    for p in [Path(guest_app.binary), BUSYBOX, kernel, *modules, *(host for host, _ in payload)]:
        st = p.stat() if p.exists() else None
        h.update(f"{p}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}".encode())
    h.update(init_script(guest_app, [m.name for m in modules]).encode())
    h.update(repr(sorted(guest_app.files.items())).encode())
    return h.hexdigest()[:16]


def build_guest(app_name: str = "redis", progress: Progress = lambda msg: None) -> Guest:
    """Kernel + initramfs for `app_name`, from the cache when already built."""
    guest_app = app(app_name)
    if not Path(guest_app.binary).exists():
        raise MissingBinaryError(guest_app.binary, guest_app.package)
    kernel, modules = fetch_kernel(progress=progress)
    payload = guest_app.payload(progress) if guest_app.payload else []
    key = _fingerprint(guest_app, kernel, modules, payload)
    initrd = cache_dir() / "initramfs" / f"{guest_app.name}-{key}.cpio.gz"
    if not initrd.exists():
        progress(f"initramfs for {guest_app.name}")
        initrd.parent.mkdir(parents=True, exist_ok=True)
        tmp = initrd.with_suffix(".tmp")
        tmp.write_bytes(build_initramfs(guest_app, modules, payload))
        tmp.replace(initrd)
    return Guest(kernel, initrd, guest_app)
