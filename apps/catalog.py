"""What `apps.list` shows: per app, its binary, whether it is installed, the package that
provides it, and what `apps.start` left running. Never raises for one broken app."""

from __future__ import annotations

from dataclasses import dataclass

import apps
from apps import running
from gaia.errors import GaiaError


@dataclass(frozen=True)
class AppRow:
    app: str
    binary: str
    installed: str  # the binary's path, "missing", or "not available yet"
    package: str
    running: str


def describe(name: str, started: dict[str, running.RunningApp]) -> AppRow:
    entry = started.get(name)
    now = f"{entry.endpoint} pid {entry.pid}" if entry else "-"
    try:
        cls = apps.get(name)
    except apps.AppNotAvailableError:
        return AppRow(name, "-", "not available yet", "-", now)
    binary, package = cls.binary
    try:
        installed = cls.find_binary()
    except GaiaError:
        installed = "missing"
    return AppRow(name, binary, installed, package, now)


def describe_all() -> list[AppRow]:
    started = running.load()
    return [describe(name, started) for name in apps.names()]
