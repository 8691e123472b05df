"""What a MariaDB guest carries besides mariadbd and its libraries: the server's message
and character-set files, and a datadir ready to serve YCSB.

Why a prepared datadir: mariadb-install-db is a shell script around `mariadbd
--bootstrap` and a dozen SQL files; running it inside a TCG guest at every boot would
take tens of seconds. Instead the host makes one datadir (apps.mariadb's installed
template), starts it once to add the `ycsb` database and a passwordless `bench` user
that may log in from any host (the client reaches the guest from the tap side, not
from localhost), shuts it down cleanly, and caches it. The initramfs carries it; in the
guest it lives on the rootfs (tmpfs), so InnoDB's writes stay in guest RAM — which is
what the page sync replicates.

Passwordless because the login scramble is random (DESIGN.md): the leader's and the
backup's guests would otherwise need the same scramble for the same client reply.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pymysql

from gaia.errors import GaiaError, MissingBinaryError

GUEST_DATADIR = "/var/lib/mysql"
SHARE = Path("/usr/share/mysql")
DATABASE = "ycsb"
BENCH_USER = "bench"
SETUP_SQL = (
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'%'",
    f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{BENCH_USER}'@'%'",
)


def mariadbd_path() -> Path:
    for candidate in ("/usr/sbin/mariadbd", shutil.which("mariadbd") or ""):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise MissingBinaryError("mariadbd", "mariadb-server")


def server_args() -> list[str]:
    """mariadbd's arguments in the guest (no config file is read): apps.mariadb's InnoDB
    sizing and one-thread pool (determinism), so guests run the host replicas' setup."""
    from apps.mariadb import _DETERMINISTIC_ARGS, _INNODB_ARGS

    return [
        "--no-defaults",
        "--user=root",
        f"--datadir={GUEST_DATADIR}",
        "--socket=/run/mysqld.sock",
        "--pid-file=/run/mysqld.pid",
        "--port=3306",
        "--skip-networking=0",
        "--bind-address=0.0.0.0",
        "--skip-name-resolve",
        "--performance-schema=0",
        "--max-connections=64",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--default-time-zone=+00:00",
        "--innodb-flush-method=fsync",  # the rootfs is tmpfs: no O_DIRECT
        *_INNODB_ARGS,
        *_DETERMINISTIC_ARGS,
    ]


def _cache_root() -> Path:
    from gaia.vm.guest import cache_dir

    return cache_dir() / "mariadb"


def prepared_datadir(progress: Callable[[str], None] = lambda msg: None) -> Path:
    """The cached datadir (template + ycsb database + bench@'%'), made once per binary."""
    binary = mariadbd_path()
    st = binary.stat()
    key = hashlib.sha256(repr((st.st_size, st.st_mtime_ns, SETUP_SQL)).encode()).hexdigest()[:16]
    target = _cache_root() / f"datadir-{key}"
    if (target / "mysql").is_dir():
        return target
    progress("MariaDB datadir for the guest")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="datadir-tmp-", dir=target.parent))
    try:
        _make_datadir(work)
        try:
            (work / "db").rename(target)
        except OSError:
            if not (target / "mysql").is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _make_datadir(work: Path) -> None:
    from apps.mariadb import MariaDB

    server = MariaDB(port=0, data_dir=work)
    server.start(timeout=120)
    try:
        conn = pymysql.connect(unix_socket=str(server.admin_socket), user="root",
                               autocommit=True, connect_timeout=10)
        with conn, conn.cursor() as cur:
            for statement in SETUP_SQL:
                cur.execute(statement)
    finally:
        server.stop(60)  # SIGTERM: a clean shutdown, the datadir is consistent
    if server.alive():
        raise GaiaError("the host mariadbd preparing the guest datadir did not stop", "")


def payload(progress: Callable[[str], None] = lambda msg: None) -> list[tuple[Path, str]]:
    """(host path, guest path) pairs: message/charset files and the prepared datadir."""
    if not (SHARE / "english" / "errmsg.sys").exists():
        raise MissingBinaryError(str(SHARE / "english" / "errmsg.sys"), "mariadb-server-core")
    pairs = [(SHARE / "english" / "errmsg.sys", str(SHARE / "english" / "errmsg.sys"))]
    pairs += [(p, str(p)) for p in sorted((SHARE / "charsets").iterdir()) if p.is_file()]
    datadir = prepared_datadir(progress)
    for root, dirs, files in os.walk(datadir):
        rel = Path(root).relative_to(datadir)
        guest_root = Path(GUEST_DATADIR) / rel
        pairs += [(Path(root) / d, str(guest_root / d)) for d in sorted(dirs)]
        pairs += [(Path(root) / f, str(guest_root / f)) for f in sorted(files)]
    return pairs
