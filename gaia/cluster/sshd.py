"""sshd inside a namespace host: exercises the SSH path (RemoteHost) on one machine.

A throwaway host key and client key in a directory of the caller's, an sshd config that
allows only that key for root, and `sshd -D` spawned in the namespace on its address.
The returned HostSpec is what an inventory entry for that "remote" host would say.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from gaia.cluster.host import HostProcess
from gaia.cluster.netns import NetnsHost
from gaia.cluster.remote import HostSpec
from gaia.errors import GaiaError, MissingBinaryError
from gaia.net import wait_listening

SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server")


def _keygen(path: Path) -> None:
    if not path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
            check=True,
            capture_output=True,
        )


def ensure_keys(directory: Path) -> tuple[Path, Path]:
    """(host key, client key) in `directory`, generated once; authorized_keys written."""
    if shutil.which("ssh-keygen") is None:
        raise MissingBinaryError("ssh-keygen", "openssh-client")
    directory.mkdir(parents=True, exist_ok=True)
    host_key, client_key = directory / "host_ed25519", directory / "client_ed25519"
    _keygen(host_key)
    _keygen(client_key)
    (directory / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    return host_key, client_key


def start_sshd(host: NetnsHost, directory: Path, port: int = 22) -> tuple[HostProcess, HostSpec]:
    """Run sshd in `host`'s namespace; returns the process and an inventory entry for it."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise MissingBinaryError("sshd", "openssh-server")
    host_key, client_key = ensure_keys(directory)
    sftp = next((s for s in SFTP_SERVERS if Path(s).exists()), "internal-sftp")
    config = directory / f"sshd_{host.name}.conf"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {host.address}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                f"PidFile {directory / f'sshd_{host.name}.pid'}",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "LogLevel ERROR",
                f"Subsystem sftp {sftp}",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
    process = host.spawn(
        f"sshd-{host.name}",
        [sshd, "-D", "-e", "-f", str(config)],
        directory / f"sshd_{host.name}.log",
    )
    if not wait_listening(port, 10, host=host.address):
        tail = process.log_tail()
        process.stop()
        raise GaiaError(f"sshd in {host.namespace} did not start: {tail}", "see the sshd log")
    spec = HostSpec(
        name=host.name,
        address=host.address,
        user="root",
        key_file=str(client_key),
        port=port,
        interface="eth0",
        workdir=str(directory / f"work-{host.name}"),
    )
    return process, spec
