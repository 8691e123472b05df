"""Running the real (Java) YCSB when one is available, parsed with the same parser.

Two launchers are recognised: a `ycsb` command on PATH (YCSB's bin/ycsb wrapper), or a
Docker engine that answers `docker info`, running an image (GAIA_YCSB_IMAGE, default
below; configurable with `image=`) whose entry point is that same `ycsb` launcher. The
property file is mounted into the container and the container uses the host network so
that loopback servers are reachable. Bindings map to YCSB's: redis -> `redis`
(redis.host/redis.port), memcached -> `memcached` (memcached.hosts), mariadb -> `jdbc`
(db.url, db.driver, db.user, db.passwd; the image must ship the MariaDB/MySQL JDBC
driver), mongodb -> `mongodb` (mongodb.url).

UNVERIFIED HERE: neither a `ycsb` launcher nor a Docker engine exists on the machines
GAIA was developed on (the Java YCSB needs jars from Maven, which is unreachable). The
command building and the output parsing are tested; the launch itself is not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gaia.errors import GaiaError
from workloads.bindings.endpoint import Endpoint

DEFAULT_IMAGE = os.environ.get("GAIA_YCSB_IMAGE", "ycsb:latest")
YCSB_BINDING = {"redis": "redis", "memcached": "memcached", "mariadb": "jdbc", "mongodb": "mongodb"}


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def launcher() -> str | None:
    """'ycsb' when the launcher is on PATH, 'docker' when a Docker engine answers, else None."""
    if shutil.which("ycsb"):
        return "ycsb"
    if docker_available():
        return "docker"
    return None


def binding_properties(app: str, endpoint: Endpoint, props: dict[str, str]) -> list[str]:
    """The -p settings that point YCSB's own binding at `endpoint`."""
    host, port = endpoint.host, endpoint.port
    if app == "redis":
        return [f"redis.host={host}", f"redis.port={port}"]
    if app == "memcached":
        return [f"memcached.hosts={host}:{port}"]
    if app == "mariadb":
        database = props.get("db.url", "").rsplit("/", 1)[-1] if props.get("db.url") else "ycsb"
        return [
            f"db.url=jdbc:mysql://{host}:{port}/{database}",
            f"db.driver={props.get('db.driver', 'org.mariadb.jdbc.Driver')}",
            f"db.user={props.get('db.user', 'root')}",
            f"db.passwd={props.get('db.passwd', '')}",
        ]
    if app == "mongodb":
        return [f"mongodb.url=mongodb://{host}:{port}/ycsb?w=1"]
    raise GaiaError(f"no YCSB binding for app `{app}`", f"use one of {', '.join(YCSB_BINDING)}")


def command(
    kind: str,
    phase: str,
    app: str,
    workload_file: Path,
    endpoint: Endpoint,
    props: dict[str, str],
    threads: int,
    target: int | None,
    image: str = DEFAULT_IMAGE,
) -> list[str]:
    """The argv of one external YCSB phase (`load` or `run`); the workload's properties
    are in `workload_file`, the binding's endpoint settings are passed with -p."""
    settings = binding_properties(app, endpoint, props)
    tail = [phase, YCSB_BINDING[app], "-P", "WORKLOAD", "-threads", str(threads)]
    if target:
        tail += ["-target", str(target)]
    for item in settings:
        tail += ["-p", item]
    if kind == "ycsb":
        return ["ycsb", *[str(workload_file) if t == "WORKLOAD" else t for t in tail]]
    mount = f"{workload_file.parent.resolve()}:/gaia-workload:ro"
    inside = f"/gaia-workload/{workload_file.name}"
    return [
        "docker",
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        mount,
        image,
        *[inside if t == "WORKLOAD" else t for t in tail],
    ]


def run_phase(
    kind: str,
    phase: str,
    app: str,
    props: dict[str, str],
    endpoint: Endpoint,
    threads: int,
    target: int | None,
    image: str = DEFAULT_IMAGE,
    timeout: float = 3600,
) -> str:
    """Run one phase with the real YCSB; returns its stdout (YCSB's text report)."""
    with tempfile.TemporaryDirectory(prefix="gaia-ycsb-") as tmp:
        workload_file = Path(tmp) / "workload.properties"
        workload_file.write_text(
            "".join(f"{k}={v}\n" for k, v in props.items() if not k.startswith("gaia."))
        )
        argv = command(kind, phase, app, workload_file, endpoint, props, threads, target, image)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GaiaError(
                f"the external YCSB failed to run ({exc})",
                "check the ycsb launcher or the Docker image",
            ) from None
    if done.returncode != 0 or "[OVERALL]" not in done.stdout:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GaiaError(
            f"the external YCSB {phase} phase failed: {last[0]}",
            "run the printed command by hand to see why",
        )
    return done.stdout
