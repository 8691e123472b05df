"""The servers GAIA runs, by name: `names()` lists them, `get(name)` returns the class.

Classes are imported only when asked for, so a missing optional module (or the client
library it needs) affects that one app and nothing else.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from gaia.errors import ConfigError, GaiaError

if TYPE_CHECKING:
    from apps.base import Server

# name -> "module:Class"
REGISTRY: dict[str, str] = {
    "redis": "apps.redis:Redis",
    "memcached": "apps.memcached:Memcached",
    "mariadb": "apps.mariadb:MariaDB",
    "mongodb": "apps.mongodb:MongoDB",
    "etcd": "apps.etcd:Etcd",
    "zookeeper": "apps.zookeeper:ZooKeeper",
}


class AppNotAvailableError(GaiaError):
    """The app is registered but its module is not part of this checkout yet."""


def names() -> list[str]:
    return list(REGISTRY)


def get(name: str) -> type[Server]:
    """The `Server` subclass registered as `name`."""
    target = REGISTRY.get(name)
    if target is None:
        raise ConfigError(
            f"unknown app {name!r}", f"use one of: {', '.join(REGISTRY)} (`invoke apps.list`)"
        )
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise  # a real bug or a missing library inside the module: show it
        raise AppNotAvailableError(
            f"app {name!r} is not available yet ({module_name} is missing from this checkout)",
            f"use one of: {', '.join(available())}",
        ) from None
    return getattr(module, class_name)


def available() -> list[str]:
    """The registered apps whose module exists."""
    return [n for n in REGISTRY if importlib.util.find_spec(REGISTRY[n].split(":")[0])]
