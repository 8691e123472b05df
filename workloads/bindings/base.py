"""The binding interface (YCSB's site.ycsb.DB) and what every binding shares.

A binding implements five raw operations (`_read`, `_scan`, `_update`, `_insert`,
`_delete`) and `_connect(host, port)` / `_close()`. The public methods wrap them with:

  * error mapping, as YCSB's bindings do: an exception the client library raises becomes
    Status ERROR (the Java bindings catch and log), never a crash of the client thread;
  * leader awareness: on a *connection* error with a deployment endpoint, wait for the
    deployment to name a new leader, reconnect, retry the operation once, and keep the
    failover gap (seconds from the failed call to the retried one); with a fixed
    endpoint, reconnect for the next operation and report this one as ERROR;
  * write recording (`gaia.recordwrites`): every insert/update attempt with its field
    hashes, start/end times and whether it was acknowledged (writelog.py).

`init()` connects and raises a one-line GaiaError naming the endpoint when the server
cannot be reached: an unreachable server is a user error, not a stack trace.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import Any, ClassVar

from gaia.errors import GaiaError
from workloads.bindings.endpoint import Endpoint
from workloads.measurements import ERROR, Status
from workloads.writelog import WriteRecorder

Fields = list[str] | None
Values = dict[str, bytes]


class UnreachableServerError(GaiaError):
    def __init__(self, binding: str, where: str, reason: str) -> None:
        super().__init__(
            f"the {binding} binding cannot reach {where} ({reason})",
            "start the server first, or pass the right --host/--port (or --run-dir)",
        )


class DB(abc.ABC):
    """One client's connection to one database, with YCSB's operation semantics."""

    name: ClassVar[str]
    default_port: ClassVar[int]
    # Exceptions meaning "the connection is gone" (-> failover), per client library.
    connection_errors: ClassVar[tuple[type[BaseException], ...]] = (ConnectionError, OSError)
    # True when update() replaces the whole record (YCSB's memcached binding).
    update_replaces_record: ClassVar[bool] = False

    def __init__(
        self,
        endpoint: Endpoint,
        props: dict[str, str] | None = None,
        recorder: WriteRecorder | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.props = dict(props or {})
        self.recorder = recorder
        self.failover_gaps: list[float] = []
        self.errors: list[str] = []
        self._connected = False

    # -- lifecycle ---------------------------------------------------------------------
    def init(self) -> None:
        host, port = self.endpoint.current()
        try:
            self._connect(host, port)
        except GaiaError:
            raise
        except Exception as exc:  # refused, timed out, authentication failed, ...
            raise UnreachableServerError(
                self.name, self.endpoint.describe(), _reason(exc)
            ) from None
        self._connected = True

    def cleanup(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
        if self._connected:
            try:
                self._close()
            except Exception:  # a dead server must not fail the report
                pass
            self._connected = False

    # -- the five operations -------------------------------------------------------------
    def read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        return self._call(lambda: self._read(table, key, fields), default=(ERROR, {}))

    def scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        return self._call(lambda: self._scan(table, startkey, count, fields), default=(ERROR, []))

    def update(self, table: str, key: str, values: Values) -> Status:
        return self._write("update", key, values, lambda: self._update(table, key, values))

    def insert(self, table: str, key: str, values: Values) -> Status:
        return self._write("insert", key, values, lambda: self._insert(table, key, values))

    def delete(self, table: str, key: str) -> Status:
        return self._call(lambda: self._delete(table, key), default=ERROR)

    # -- what bindings implement ---------------------------------------------------------
    @abc.abstractmethod
    def _connect(self, host: str, port: int) -> None: ...

    @abc.abstractmethod
    def _close(self) -> None: ...

    @abc.abstractmethod
    def _read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]: ...

    @abc.abstractmethod
    def _scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]: ...

    @abc.abstractmethod
    def _update(self, table: str, key: str, values: Values) -> Status: ...

    @abc.abstractmethod
    def _insert(self, table: str, key: str, values: Values) -> Status: ...

    @abc.abstractmethod
    def _delete(self, table: str, key: str) -> Status: ...

    def prepare_load(self, table: str, fieldnames: list[str]) -> None:  # noqa: B027
        """Called once before the load phase (the SQL binding creates its table)."""

    # -- shared machinery ----------------------------------------------------------------
    def _write(self, op: str, key: str, values: Values, call: Callable[[], Status]) -> Status:
        start = time.monotonic_ns()
        status = self._call(call, default=ERROR)
        if self.recorder is not None:
            self.recorder.record(
                key, op, values, start, time.monotonic_ns(), status.ok, self.update_replaces_record
            )
        return status

    def _call(self, call: Callable[[], Any], default: Any) -> Any:
        try:
            return call()
        except self.connection_errors as exc:
            return self._after_connection_error(call, default, exc)
        except Exception as exc:  # YCSB's bindings log and return ERROR
            self._note(exc)
            return default

    def _after_connection_error(
        self, call: Callable[[], Any], default: Any, exc: BaseException
    ) -> Any:
        """Fixed endpoint: reconnect for the next call and report ERROR (YCSB does not
        retry, and a retried write could apply twice). Deployment endpoint: wait for a new
        leader, reconnect, retry this call once, and keep the failover gap."""
        self._note(exc)
        failed_at = time.monotonic()
        try:
            if self.endpoint.leader_aware:
                host, port = self.endpoint.next_leader()
            else:
                host, port = self.endpoint.current()
            self._reconnect(host, port)
        except Exception as again:  # still down (or no new leader in time)
            self._note(again)
            return default
        if not self.endpoint.leader_aware:
            return default
        self.failover_gaps.append(time.monotonic() - failed_at)
        try:
            return call()
        except Exception as again:
            self._note(again)
            return default

    def _reconnect(self, host: str, port: int) -> None:
        try:
            self._close()
        except Exception:
            pass
        self._connect(host, port)
        self._connected = True

    def _note(self, exc: BaseException) -> None:
        if len(self.errors) < 100:
            self.errors.append(f"{type(exc).__name__}: {exc}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


def prop(props: dict[str, str], name: str, default: str) -> str:
    value = props.get(name)
    return default if value is None or value == "" else value
