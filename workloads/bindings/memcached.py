"""YCSB's memcached binding (site.ycsb.db.MemcachedClient), on pymemcache.

Schema, as the Java binding: one item per record under the key `<table>-<key>`, whose
value is a JSON object {field: value-as-text}; items never expire (exptime
Integer.MAX_VALUE, memcached.objectExpirationTime).

Reproduced semantics: insert = ADD (fails on an existing key), update = REPLACE of the
whole item with a JSON object of *only the updated fields* (so an update with
writeallfields=false leaves a one-field record, exactly as the Java binding does; the
write checker knows, `update_replaces_record`), read = GET then keep the requested
fields, and a read of an absent item is OK (Java returns OK when the document is null).
Scans are not implemented by memcached: Status NOT_IMPLEMENTED, as YCSB reports them.
With memcached.checkOperationStatus=false every write is OK.
"""

from __future__ import annotations

import json

import pymemcache.exceptions
from pymemcache.client.base import Client

from workloads.bindings.base import DB, Fields, Values, prop
from workloads.measurements import NOT_IMPLEMENTED, OK, Status

JAVA_INT_MAX = 2147483647


class MemcachedDB(DB):
    name = "memcached"
    default_port = 11211
    connection_errors = (
        pymemcache.exceptions.MemcacheUnexpectedCloseError,
        ConnectionError,
        OSError,
    )
    update_replaces_record = True

    def _connect(self, host: str, port: int) -> None:
        timeout = float(prop(self.props, "memcached.opTimeoutMillis", "60000")) / 1000.0
        self.expire = int(prop(self.props, "memcached.objectExpirationTime", str(JAVA_INT_MAX)))
        self.check_status = (
            prop(self.props, "memcached.checkOperationStatus", "true").lower() == "true"
        )
        self.client = Client(
            (host, port), connect_timeout=min(timeout, 5.0), timeout=timeout, no_delay=True
        )
        self.client.version()  # connect now

    def _close(self) -> None:
        self.client.close()

    @staticmethod
    def qualified(table: str, key: str) -> str:
        """createQualifiedKey: MessageFormat "{0}-{1}"."""
        return f"{table}-{key}"

    def _read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        document = self.client.get(self.qualified(table, key))
        result: Values = {}
        if document is not None:
            for name, value in json.loads(document).items():
                if fields and name not in fields:
                    continue
                if value is not None:
                    result[name] = value.encode("latin-1")
        return OK, result

    def _scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        return NOT_IMPLEMENTED, []

    def _store(self, done: bool) -> Status:
        if done or not self.check_status:
            return OK
        return Status("ERROR", "NOT_STORED")

    def _update(self, table: str, key: str, values: Values) -> Status:
        done = self.client.replace(
            self.qualified(table, key), _to_json(values), expire=self.expire, noreply=False
        )
        return self._store(done)

    def _insert(self, table: str, key: str, values: Values) -> Status:
        done = self.client.add(
            self.qualified(table, key), _to_json(values), expire=self.expire, noreply=False
        )
        return self._store(done)

    def _delete(self, table: str, key: str) -> Status:
        return self._store(self.client.delete(self.qualified(table, key), noreply=False))


def _to_json(values: Values) -> bytes:
    return json.dumps(
        {k: v.decode("latin-1") for k, v in values.items()}, separators=(",", ":")
    ).encode()
