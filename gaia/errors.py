"""User-facing errors: one line naming the cause and the fix, never a traceback.

Every problem a user can cause or fix (bad config, port in use, missing binary, unwritable
directory ...) is raised as a `GaiaError`. The command line and the invoke tasks catch it
and print `error: <problem> — fix: <fix>` with a non-zero exit code.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class GaiaError(Exception):
    """A problem with a known fix. `problem` says what went wrong, `fix` what to do."""

    exit_code = 2

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        text = f"error: {self.problem}"
        if self.fix:
            text += f" — fix: {self.fix}"
        return text.replace("\n", " ")


class ConfigError(GaiaError):
    """Invalid configuration or command-line input."""


class MissingBinaryError(GaiaError):
    """A program GAIA needs is not installed."""

    def __init__(self, binary: str, package: str) -> None:
        super().__init__(
            f"`{binary}` was not found on PATH",
            f"install the Debian package `{package}` (`sudo apt-get install -y {package}`), "
            "or run `python3 tasks.py setup`",
        )
        self.binary = binary
        self.package = package


class PortInUseError(GaiaError):
    def __init__(self, port: int, what: str = "server") -> None:
        super().__init__(
            f"port {port} on 127.0.0.1 is already in use, so the {what} cannot listen on it",
            "choose another port, or pass port 0 to let GAIA pick a free one",
        )
        self.port = port


class UnwritableDirectoryError(GaiaError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"data directory {path} is not writable ({reason})",
            "pass a directory you can write to, or leave it unset for a fresh temp dir",
        )
        self.path = path


def report(exc: GaiaError, stream: Any = None) -> None:
    print(exc.one_line(), file=stream or sys.stderr, flush=True)


def friendly(func: F) -> F:
    """Decorate an invoke task: a GaiaError becomes one line and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GaiaError as exc:
            from invoke.exceptions import Exit

            raise Exit(exc.one_line(), code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
