"""First-run installer: Debian packages, a virtualenv, then hand over to invoke.

`python3 tasks.py <task> ...` lands here on a fresh clone. It must run with nothing but
the standard library, be idempotent (a second run installs nothing), say what it does,
and fail with one line that names the fix (never a traceback) when it cannot proceed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
STAMP = VENV / ".gaia-install-stamp"

# Debian package -> a file whose presence shows it is installed (cheaper than dpkg -s).
DEBIAN_PACKAGES: dict[str, str] = {
    "redis-server": "/usr/bin/redis-server",
    "redis-tools": "/usr/bin/redis-benchmark",
    "memcached": "/usr/bin/memcached",
    "libmemcached-tools": "/usr/bin/memcslap",
    "mariadb-server": "/usr/sbin/mariadbd",
    "mariadb-backup": "/usr/bin/mariadb-backup",
    "etcd-server": "/usr/bin/etcd",
    "zookeeperd": "/usr/share/zookeeper/bin/zkServer.sh",
    "sysbench": "/usr/bin/sysbench",
    "qemu-system-x86": "/usr/bin/qemu-system-x86_64",
    "busybox-static": "/bin/busybox",
    "cpio": "/usr/bin/cpio",
    "gcc": "/usr/bin/gcc",
    "libc6-dev": "/usr/include/stdio.h",
    "nftables": "/usr/sbin/nft",
    "iproute2": "/usr/sbin/ip",
    "openssh-server": "/usr/sbin/sshd",
    "strace": "/usr/bin/strace",
    "procps": "/usr/bin/pgrep",
    "git": "/usr/bin/git",
}


def say(message: str) -> None:
    print(f"[gaia setup] {message}", flush=True)


class SetupError(Exception):
    """A problem the user can fix; printed as one line with the fix."""


def missing_debian_packages() -> list[str]:
    return [pkg for pkg, probe in DEBIAN_PACKAGES.items() if not Path(probe).exists()]


def install_debian_packages() -> None:
    missing = missing_debian_packages()
    if not missing:
        say("Debian packages: all present")
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SetupError(
            "missing Debian packages: " + " ".join(missing)
            + " — fix: run as root, or `sudo apt-get install -y " + " ".join(missing) + "`"
        )
    say("installing Debian packages with apt-get: " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Package post-install scripts would start redis, mariadb, etcd ... as system services on
    # their default ports; GAIA starts its own instances, so forbid that for this install.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        run(["apt-get", "update", "-q"], env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env)
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    still = missing_debian_packages()
    if still:
        raise SetupError("apt-get did not install: " + " ".join(still) + " — fix: check /var/log/apt/term.log")
    stop_distribution_services()


def stop_distribution_services() -> None:
    """Stop services a package may have started anyway (e.g. when policy-rc.d pre-existed)."""
    for name in ("redis-server", "memcached", "mariadb", "etcd", "zookeeper"):
        if shutil.which("service"):
            subprocess.run(["service", name, "stop"], capture_output=True, check=False)


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-20:])
        raise SetupError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{tail}")


def install_stamp() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(Path(__file__).read_bytes())  # a changed install recipe reinstalls
    digest.update(sys.version.encode())
    return digest.hexdigest()


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_virtualenv() -> None:
    if not venv_python().exists():
        say(f"creating virtualenv {VENV}")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as exc:  # Debian without python3-venv raises CalledProcessError
            shutil.rmtree(VENV, ignore_errors=True)
            if os.geteuid() == 0 and shutil.which("apt-get"):
                say("python3-venv is missing; installing it")
                run(["apt-get", "install", "-y", "-q", "python3-venv"],
                    dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
                venv.EnvBuilder(with_pip=True).create(VENV)
            else:
                raise SetupError(
                    f"cannot create a virtualenv ({exc}) — fix: `sudo apt-get install python3-venv`"
                ) from exc
    stamp = install_stamp()
    if STAMP.exists() and STAMP.read_text() == stamp:
        say("Python dependencies: up to date")
        return
    say("installing Python dependencies into .venv (numba, seaborn, redis, ...)")
    pip = [str(venv_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "--upgrade", "pip"])
    run([*pip, "-e", f"{REPO}[dev,remote]"])
    STAMP.write_text(stamp)
    say("Python dependencies: installed")


def setup() -> None:
    install_debian_packages()
    ensure_virtualenv()


def main(argv: list[str] | None = None) -> int:
    """Install what is missing, then run `invoke <argv>` inside the virtualenv."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        setup()
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args or args == ["setup"]:
        say("ready; next: `python3 tasks.py --list` shows every task")
        return 0
    invoke = VENV / "bin" / "invoke"
    os.chdir(REPO)
    os.execv(str(invoke), [str(invoke), *args])
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
