"""MariaDB 10.11 (`mariadbd`), initialised fresh in the data dir, sized for a 2-core box.

Layout of the data dir: `db/` (the MariaDB datadir, copied from a template that
mariadb-install-db made once under the run root), `mysqld.sock` (root's admin socket,
unix_socket authentication), `mysqld.pid`, `server.log`.
The bench database `ycsb` and a passwordless `bench` user (from 127.0.0.1 and localhost)
are created after the first start: the login scramble is random, so replicated clients
must log in without a password for every replica to see the same bytes.

deterministic=True — two replicas fed the same statements end equal:
- `innodb_autoinc_lock_mode=0` ("traditional"): AUTO_INCREMENT values are handed out
  under a table lock in statement order, so bulk inserts never interleave their ids;
- a one-thread pool (`thread_handling=pool-of-threads`, `thread_pool_size=1`,
  `thread_pool_oversubscribe=1`, 60 s stall limit): statements run one at a time in
  arrival order unless one blocks on a lock;
- UTC time zone and a fixed character set (no config file is read: `--no-defaults`).
Non-determinism inside statements (RAND(), UUID(), NOW(), CONNECTION_ID()) is not a
configuration matter: the output checker reports it.

Snapshot: by default a copy of the cleanly shut-down datadir (stop, copy, start: measured
~0.2 s here with 10k rows, versus 1.1 s for `mariadb-backup --backup` + `--prepare`);
`snapshot_method="backup"` uses mariadb-backup instead, which keeps the server running.
Either snapshot is a complete datadir, so restore = stop, replace the datadir, start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import pymysql

from apps.spawned import SpawnedServer, one_of
from gaia.errors import GaiaError, MissingBinaryError
from gaia.paths import run_root

DATABASE = "ycsb"
BENCH_USER = "bench"
KV_TABLE = "kv"
SNAPSHOT_METHODS = ("copy", "backup")
_KV_BATCH = 1000
_NO_SUCH_TABLE = 1146  # ER_NO_SUCH_TABLE

# Small enough for a 2-core box with several servers; durable defaults otherwise.
_INNODB_ARGS = [
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-use-native-aio=0",  # io_uring/native AIO is unreliable here (DESIGN.md)
    "--innodb-buffer-pool-dump-at-shutdown=0",  # fast shutdown for snapshot copies
    "--innodb-buffer-pool-load-at-startup=0",
]
_DETERMINISTIC_ARGS = [
    "--innodb-autoinc-lock-mode=0",
    "--thread-handling=pool-of-threads",
    "--thread-pool-size=1",
    "--thread-pool-oversubscribe=1",
    "--thread-pool-stall-limit=60000",
]
_SETUP_SQL = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    *(
        stmt
        for host in ("127.0.0.1", "localhost")
        for stmt in (
            f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'{host}'",
            f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{BENCH_USER}'@'{host}'",
        )
    ),
]


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise MissingBinaryError(name, package)
    return path


def _user_args() -> list[str]:
    return ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root otherwise


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def installed_template(mariadbd: str) -> Path:
    """A datadir fresh from mariadb-install-db, made once per server binary and settings
    under the run root and copied for every new instance. Built in a temp dir and
    renamed into place, so concurrent first uses do not see a half-made template."""
    stat = os.stat(mariadbd)
    key = hashlib.sha256(
        repr((stat.st_size, stat.st_mtime_ns, os.geteuid(), _INNODB_ARGS)).encode()
    ).hexdigest()[:16]
    template = run_root() / f"mariadb-template-{key}"
    if (template / "mysql").is_dir():
        return template
    work = Path(tempfile.mkdtemp(prefix="mariadb-template-tmp-", dir=run_root()))
    try:
        _install(work / "db", work / "install.log")
        try:
            (work / "db").rename(template)
        except OSError:
            if not (template / "mysql").is_dir():  # lost a race, or a broken leftover
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return template


def _install(datadir: Path, log: Path) -> None:
    install = _tool("mariadb-install-db", "mariadb-server")
    argv = [
        install,
        "--no-defaults",
        *_user_args(),
        f"--datadir={datadir}",
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
        "--skip-name-resolve",
        *_INNODB_ARGS,
    ]
    with open(log, "ab") as out:
        result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    if result.returncode != 0:
        tail = " | ".join(log.read_text(errors="replace").splitlines()[-3:])
        raise GaiaError(
            f"mariadb-install-db failed with code {result.returncode} ({tail})",
            f"check that {run_root()} is writable and has space",
        )


class MariaDB(SpawnedServer):
    name = "mariadb"
    binary = ("mariadbd", "mariadb-server")

    def __init__(self, *args, snapshot_method: str = "copy", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot_method = one_of("MariaDB snapshot method", snapshot_method, SNAPSHOT_METHODS)
        self._fresh = False

    # -- paths --------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        return self.make_data_dir() / "db"

    @property
    def admin_socket(self) -> Path:
        return self.socket_path("mysqld.sock")

    # -- lifecycle ----------------------------------------------------------------------
    def command(self) -> list[str]:
        argv = [
            self.find_binary(),
            "--no-defaults",
            *_user_args(),
            f"--datadir={self.datadir}",
            f"--socket={self.admin_socket}",
            f"--pid-file={self.make_data_dir() / 'mysqld.pid'}",
            f"--port={self.port}",
            "--skip-networking=0",
            f"--bind-address={self.host}",
            "--skip-name-resolve",
            "--performance-schema=0",
            "--max-connections=200",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_general_ci",
            "--default-time-zone=+00:00",
            *_INNODB_ARGS,
        ]
        if self.deterministic:
            argv += _DETERMINISTIC_ARGS
        return argv + self.extra_args

    def prepare(self) -> None:
        """A fresh datadir the first time: a copy of an installed template (~0.05 s;
        mariadb-install-db itself takes 0.5 s idle and 3-4 s on a busy 2-core box)."""
        if (self.datadir / "mysql").is_dir():
            return
        shutil.copytree(installed_template(self.find_binary()), self.datadir)
        self._fresh = True

    def _admin(self) -> pymysql.Connection:
        return pymysql.connect(
            unix_socket=str(self.admin_socket), user="root", autocommit=True, connect_timeout=2
        )

    def ready(self) -> bool:
        with self._admin() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)

    def after_start(self) -> None:
        if not self._fresh:
            return
        with self._admin() as conn, conn.cursor() as cur:
            for statement in _SETUP_SQL:
                cur.execute(statement)
        self._fresh = False

    def client(self) -> pymysql.Connection:
        return pymysql.connect(
            host=self.host, port=self.port, user=BENCH_USER, database=DATABASE, autocommit=True
        )

    # -- state --------------------------------------------------------------------------
    def digest(self) -> str:
        """SHA-256 over the bench database's table list and CHECKSUM TABLE of each table."""
        hasher = hashlib.sha256()
        with self._admin() as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = %s ORDER BY table_name",
                (DATABASE,),
            )
            tables = list(cur.fetchall())
            base = [name for name, kind in tables if kind == "BASE TABLE"]
            checksums: dict[str, int | None] = {}
            if base:
                names = ", ".join(f"{_quote(DATABASE)}.{_quote(t)}" for t in base)
                cur.execute(f"CHECKSUM TABLE {names} EXTENDED")
                checksums = {row[0].split(".", 1)[1]: row[1] for row in cur.fetchall()}
        for name, kind in tables:
            hasher.update(f"{name}\0{kind}\0{checksums.get(name)}\n".encode())
        return hasher.hexdigest()

    def snapshot(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "mariadb-datadir"
        if target.exists():
            shutil.rmtree(target)
        if self.snapshot_method == "backup":
            self._backup(target)
        else:
            was_running = self.alive()
            self.stop()
            shutil.copytree(self.datadir, target)
            if was_running:
                self.start()
        return target

    def _backup(self, target: Path) -> None:
        backup = _tool("mariadb-backup", "mariadb-backup")
        log = self.make_data_dir() / "backup.log"
        steps = [
            [
                backup, "--no-defaults", "--backup", "--user=root",
                f"--socket={self.admin_socket}", f"--datadir={self.datadir}",
                f"--target-dir={target}",
            ],
            [backup, "--no-defaults", "--prepare", f"--target-dir={target}"],
        ]  # fmt: skip
        with open(log, "ab") as out:
            for argv in steps:
                result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=600)
                if result.returncode != 0:
                    raise GaiaError(
                        f"mariadb-backup failed with code {result.returncode} (log {log})",
                        "read the backup log; or use snapshot_method='copy'",
                    )

    def restore(self, snapshot: Path) -> None:
        if not (snapshot / "mysql").is_dir():
            raise GaiaError(
                f"{snapshot} is not a MariaDB datadir snapshot",
                "pass the directory returned by MariaDB.snapshot()",
            )
        self.stop()
        shutil.rmtree(self.datadir, ignore_errors=True)
        shutil.copytree(snapshot, self.datadir)
        self.start()

    # -- key-value view -----------------------------------------------------------------
    def _ensure_kv(self, cur) -> None:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {KV_TABLE} "
            "(k VARBINARY(255) NOT NULL PRIMARY KEY, v LONGBLOB NOT NULL)"
        )

    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        rows = [(key.encode(), value) for key, value in items]
        with self.client() as conn, conn.cursor() as cur:
            self._ensure_kv(cur)
            for start in range(0, len(rows), _KV_BATCH):
                cur.executemany(
                    f"REPLACE INTO {KV_TABLE} (k, v) VALUES (%s, %s)",
                    rows[start : start + _KV_BATCH],
                )

    def get(self, key: str) -> bytes | None:
        with self.client() as conn, conn.cursor() as cur:
            try:
                cur.execute(f"SELECT v FROM {KV_TABLE} WHERE k = %s", (key.encode(),))
            except pymysql.err.ProgrammingError as exc:
                if exc.args[0] == _NO_SUCH_TABLE:  # nothing was ever put
                    return None
                raise
            row = cur.fetchone()
        return None if row is None else bytes(row[0])
