"""YCSB's JDBC binding (site.ycsb.db.JdbcDBClient) for MariaDB/MySQL, on PyMySQL.

Schema, as YCSB's `create_table.mysql`: table `usertable` with `YCSB_KEY VARCHAR(255)
PRIMARY KEY` and one TEXT column per field, `FIELD0` .. `FIELD<n-1>` (SQL names are
case-insensitive, so YCSB's field0 addresses FIELD0). The load phase creates the database
and the table when absent (YCSB expects them to exist).

Statements, as DefaultDBFlavor builds them: read `SELECT * ... WHERE YCSB_KEY = ?`
(no row: NOT_FOUND), scan `SELECT * ... WHERE YCSB_KEY >= ? ORDER BY YCSB_KEY LIMIT ?`,
update `UPDATE ... SET f=?, ... WHERE YCSB_KEY = ?` and insert/delete; a write that does
not touch exactly one row is UNEXPECTED_STATE. Autocommit is on (jdbc.autocommit
default true), and the FOUND_ROWS flag makes an update's row count the matched rows, as
Connector/J reports them. Differences: PyMySQL sends text queries, not server-side
prepared statements, and a read of all fields returns the row's fields (Java leaves its
result map empty when fields is null; the query sent is the same).
Properties: db.url (jdbc:mysql://host:port/database), db.user (root), db.passwd.
"""

from __future__ import annotations

import re

import pymysql
import pymysql.constants.CLIENT
import pymysql.err

from gaia.errors import ConfigError
from workloads.bindings.base import DB, Fields, Values, prop
from workloads.measurements import NOT_FOUND, OK, UNEXPECTED_STATE, Status

PRIMARY_KEY = "YCSB_KEY"
DEFAULT_DATABASE = "ycsb"
# MySQL client errors meaning "no connection": can't connect, gone away, lost, ...
CONNECTION_CODES = {2002, 2003, 2006, 2013, 2055}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LostConnection(ConnectionError):
    """A PyMySQL OperationalError whose code says the connection is gone."""


def database_from_url(url: str) -> str:
    """jdbc:mysql://host:port/db?opts -> db (or the default `ycsb`)."""
    match = re.match(r"^jdbc:(?:mysql|mariadb)://[^/]*/([^?;]*)", url or "")
    return match.group(1) if match and match.group(1) else DEFAULT_DATABASE


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ConfigError(f"`{name}` is not a plain SQL identifier", "use letters, digits and _")
    return name


class MySQLDB(DB):
    name = "mariadb"
    default_port = 3306
    connection_errors = (LostConnection, ConnectionError, OSError)

    def _connect(self, host: str, port: int) -> None:
        self.database = _ident(database_from_url(self.props.get("db.url", "")))
        self.conn = self._open(host, port, self.database, create=True)

    def _open(
        self, host: str, port: int, database: str | None, create: bool
    ) -> pymysql.connections.Connection:
        kwargs = dict(
            host=host,
            port=port,
            user=prop(self.props, "db.user", "root"),
            password=self.props.get("db.passwd", "") or "",
            autocommit=True,
            connect_timeout=5,
            charset="utf8mb4",
            client_flag=pymysql.constants.CLIENT.FOUND_ROWS,
        )
        try:
            try:
                return pymysql.connect(database=database, **kwargs)
            except pymysql.err.OperationalError as exc:
                if not (create and exc.args and exc.args[0] == 1049):  # unknown database
                    raise
            server = pymysql.connect(**kwargs)
            with server.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            server.select_db(database)
            return server
        except pymysql.err.OperationalError as exc:
            raise _as_connection_error(exc) from None

    def _close(self) -> None:
        self.conn.close()

    def prepare_load(self, table: str, fieldnames: list[str]) -> None:
        """JdbcDBCreateTable's table, created only when absent."""
        columns = ", ".join(f"{_ident(f).upper()} TEXT" for f in fieldnames)
        self._execute(
            f"CREATE TABLE IF NOT EXISTS {_ident(table)} "
            f"({PRIMARY_KEY} VARCHAR(255) PRIMARY KEY, {columns})",
            (),
        )

    def _execute(self, sql: str, args: tuple) -> tuple[int, list[tuple], list[str]]:
        try:
            with self.conn.cursor() as cur:
                count = cur.execute(sql, args)
                rows = list(cur.fetchall()) if cur.description else []
                names = [d[0] for d in cur.description] if cur.description else []
                return count, rows, names
        except pymysql.err.OperationalError as exc:
            raise _as_connection_error(exc) from None
        except pymysql.err.InterfaceError as exc:  # e.g. "(0, '')" on a closed socket
            raise LostConnection(str(exc)) from None

    @staticmethod
    def _row_values(row: tuple, names: list[str], fields: Fields) -> Values:
        by_name = {n.lower(): v for n, v in zip(names, row, strict=True)}
        wanted = fields if fields is not None else [n for n in names if n != PRIMARY_KEY]
        out: Values = {}
        for f in wanted:
            value = by_name.get(f.lower())
            if value is not None:
                out[f if fields is not None else f.lower()] = _to_bytes(value)
        return out

    def _read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        _, rows, names = self._execute(
            f"SELECT * FROM {_ident(table)} WHERE {PRIMARY_KEY} = %s", (key,)
        )
        if not rows:
            return NOT_FOUND, {}
        return OK, self._row_values(rows[0], names, fields)

    def _scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        _, rows, names = self._execute(
            f"SELECT * FROM {_ident(table)} WHERE {PRIMARY_KEY} >= %s "
            f"ORDER BY {PRIMARY_KEY} LIMIT %s",
            (startkey, count),
        )
        return OK, [self._row_values(r, names, fields) for r in rows[:count]]

    def _update(self, table: str, key: str, values: Values) -> Status:
        names = list(values)
        sets = ", ".join(f"{_ident(n)}=%s" for n in names)
        count, _, _ = self._execute(
            f"UPDATE {_ident(table)} SET {sets} WHERE {PRIMARY_KEY} = %s",
            (*[values[n] for n in names], key),
        )
        return OK if count == 1 else UNEXPECTED_STATE

    def _insert(self, table: str, key: str, values: Values) -> Status:
        names = list(values)
        cols = ",".join(_ident(n) for n in names)
        marks = ",".join(["%s"] * (len(names) + 1))
        count, _, _ = self._execute(
            f"INSERT INTO {_ident(table)} ({PRIMARY_KEY},{cols}) VALUES({marks})",
            (key, *[values[n] for n in names]),
        )
        return OK if count == 1 else UNEXPECTED_STATE

    def _delete(self, table: str, key: str) -> Status:
        count, _, _ = self._execute(f"DELETE FROM {_ident(table)} WHERE {PRIMARY_KEY} = %s", (key,))
        return OK if count == 1 else UNEXPECTED_STATE


def _to_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _as_connection_error(exc: pymysql.err.OperationalError) -> Exception:
    code = exc.args[0] if exc.args else None
    if code in CONNECTION_CODES:
        return LostConnection(f"({code}) {exc.args[1] if len(exc.args) > 1 else ''}")
    return exc
