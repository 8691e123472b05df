"""Database bindings: thin adapters with the schemas of YCSB's own bindings.

    name        module       YCSB binding it ports
    redis       redis.py     site.ycsb.db.RedisClient (hash per record + `_indices` zset)
    memcached   memcached.py site.ycsb.db.MemcachedClient (JSON item per record, no scan)
    mariadb     mysql.py     site.ycsb.db.JdbcDBClient (usertable, YCSB_KEY, FIELD0..n)
    mongodb     mongodb.py   site.ycsb.db.MongoDbClient (usertable collection, _id key)

`mysql` and `jdbc` are aliases of `mariadb`. Modules are imported on first use, so a run
against redis does not need pymongo to import. See base.py for the interface.
"""

from __future__ import annotations

import difflib
import importlib
import re
from typing import Any

from gaia.errors import ConfigError
from workloads.bindings.base import DB
from workloads.bindings.endpoint import Endpoint

_MODULES = {
    "redis": ("workloads.bindings.redis", "RedisDB"),
    "memcached": ("workloads.bindings.memcached", "MemcachedDB"),
    "mariadb": ("workloads.bindings.mysql", "MySQLDB"),
    "mongodb": ("workloads.bindings.mongodb", "MongoDB"),
}
ALIASES = {"mysql": "mariadb", "jdbc": "mariadb", "mongo": "mongodb"}
NAMES = tuple(_MODULES)


def canonical(name: str) -> str:
    name = name.lower()
    name = ALIASES.get(name, name)
    if name not in _MODULES:
        close = difflib.get_close_matches(name, [*NAMES, *ALIASES], n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise ConfigError(
            f"no YCSB binding named `{name}`", f"{hint}use one of: {', '.join(NAMES)}"
        )
    return name


def binding_class(name: str) -> type[DB]:
    module, attr = _MODULES[canonical(name)]
    return getattr(importlib.import_module(module), attr)


def endpoint_from_props(name: str, props: dict[str, str]) -> Endpoint:
    """The endpoint YCSB's own properties name (redis.host/port, memcached.hosts, db.url,
    mongodb.url), defaulting to localhost and the binding's usual port."""
    name = canonical(name)
    cls = binding_class(name)
    host, port = "127.0.0.1", cls.default_port
    if name == "redis":
        host = props.get("redis.host") or host
        port = int(props.get("redis.port") or port)
    elif name == "memcached" and props.get("memcached.hosts"):
        first = props["memcached.hosts"].split(",")[0].strip()
        host, _, p = first.partition(":")
        port = int(p or port)
    elif name == "mariadb" and props.get("db.url"):
        m = re.match(r"^jdbc:(?:mysql|mariadb)://([^:/]+)(?::(\d+))?", props["db.url"])
        if m:
            host, port = m.group(1), int(m.group(2) or port)
    elif name == "mongodb" and props.get("mongodb.url"):
        m = re.match(r"^mongodb://([^:/,]+)(?::(\d+))?", props["mongodb.url"])
        if m:
            host, port = m.group(1), int(m.group(2) or port)
    if host == "localhost":
        host = "127.0.0.1"
    return Endpoint(host=host, port=port)


def open_binding(
    name: str, endpoint: Endpoint, props: dict[str, str] | None = None, recorder: Any = None
) -> DB:
    """A connected binding (raises a one-line GaiaError if the server is unreachable)."""
    db = binding_class(name)(endpoint, props, recorder)
    db.init()
    return db


def binding_for_target(target: Any) -> tuple[DB, bool]:
    """(binding, owned): `target` itself if it is a binding, else one opened on a
    `apps.base.Server`'s port (owned: the caller closes it)."""
    if isinstance(target, DB):
        return target, False
    name = getattr(target, "name", None)
    port = getattr(target, "port", None)
    if name is None or port is None:
        raise TypeError(f"cannot read writes back from {target!r}: need a binding or a Server")
    host = getattr(target, "host", "127.0.0.1")
    return open_binding(name, Endpoint(host=host, port=int(port))), True


__all__ = [
    "DB",
    "NAMES",
    "Endpoint",
    "binding_class",
    "binding_for_target",
    "canonical",
    "endpoint_from_props",
    "open_binding",
]
