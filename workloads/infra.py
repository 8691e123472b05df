"""`--infra`: how a YCSB run obtains the server it drives.

An infrastructure is a provider: given the app name and the command-line options, it is a
context manager that yields a `Target` (the endpoint the bindings connect to, plus
binding properties the infrastructure knows, e.g. a database user) and tears down what it
started when the run ends. The registry maps names to providers, imported lazily from
"module:function" strings so that naming one infrastructure never imports another's code.

    none    no replication. With --run-dir: the leader of that deployment (leader-aware
            bindings). With --port: an existing server at --host:--port. Otherwise GAIA
            starts the app's server itself, `apps.get(app)(port=0).start()`, on a free
            loopback port with a temp data dir, and stops it afterwards.

How later issues add theirs (apus, tripod, vm): write a provider with this signature

    @contextmanager
    def provide(app: str, options: InfraOptions) -> Iterator[Target]: ...

that starts the replicated deployment, yields
`Target(Endpoint.from_run_dir(run_dir), app, "apus", props={...})` (bindings then follow
the leader through deployment.json), and stops the deployment on exit; then add one line
to PROVIDERS below, e.g. `"apus": "gaia.apus.ycsb_infra:provide"`. `register()` adds one
at run time (tests, experiments).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError
from workloads.bindings.endpoint import Endpoint

Provider = Callable[[str, "InfraOptions"], AbstractContextManager["Target"]]

PROVIDERS: dict[str, str | Provider] = {
    "none": "workloads.infra:local_server",
    "apus": "gaia.replicate.ycsb_infra:provide",
    "vm": "gaia.vm.ycsb_infra:provide",
    "tripod": "gaia.tripod.ycsb_infra:provide",
}


EXTRA_PREFIX = "gaia.infra."  # `-p gaia.infra.<name>=<value>`: an option of the provider


def flag(value: Any) -> bool:
    """A boolean option given as a -p string (true/false, yes/no, 1/0) or a bool."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


@dataclass
class InfraOptions:
    host: str = "127.0.0.1"
    port: int = 0
    run_dir: Path | None = None
    failover_timeout: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)  # the gaia.infra.* properties

    def take(self, infra: str, known: dict[str, tuple[Callable[[Any], Any], Any]]
             ) -> dict[str, Any]:
        """The provider's own options, converted: `known` maps each name to (converter,
        default). An unknown name or a value the converter refuses is a ConfigError that
        names the property, so a typo never runs a different experiment silently."""
        unknown = sorted(set(self.extra) - set(known))
        if unknown:
            names = ", ".join(f"{EXTRA_PREFIX}{k}" for k in sorted(known)) or "none"
            raise ConfigError(f"--infra {infra} has no option `{EXTRA_PREFIX}{unknown[0]}`",
                              f"its options: {names}")
        out = {}
        for name, (convert, default) in known.items():
            if name not in self.extra:
                out[name] = default
                continue
            try:
                out[name] = convert(self.extra[name])
            except (TypeError, ValueError):
                raise ConfigError(
                    f"`{EXTRA_PREFIX}{name}={self.extra[name]}` is not a valid value",
                    f"--infra {infra} wants a {getattr(convert, '__name__', 'value')} there",
                ) from None
        return out


def extra_options(props: dict[str, str]) -> dict[str, str]:
    """The `gaia.infra.*` properties of a YCSB configuration, without the prefix."""
    return {k[len(EXTRA_PREFIX):]: v for k, v in props.items() if k.startswith(EXTRA_PREFIX)}


@dataclass
class Target:
    endpoint: Endpoint
    app: str
    infra: str
    props: dict[str, str] = field(default_factory=dict)  # binding properties (defaults)
    details: dict[str, Any] = field(default_factory=dict)  # recorded in the result record


def register(name: str, provider: str | Provider) -> None:
    PROVIDERS[name] = provider


def get(name: str) -> Provider:
    entry = PROVIDERS.get(name)
    if entry is None:
        close = difflib.get_close_matches(name, list(PROVIDERS), n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        raise ConfigError(
            f"unknown infrastructure `{name}`",
            f"{hint}available here: {', '.join(sorted(PROVIDERS))}",
        )
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def server_props(app: str, server: Any) -> dict[str, str]:
    """Binding properties a started server implies: for MariaDB, the passwordless bench
    user and bench database that apps.mariadb creates (YCSB's JDBC binding needs both)."""
    if app != "mariadb":
        return {}
    module = importlib.import_module(type(server).__module__)
    user = getattr(server, "user", None) or getattr(module, "BENCH_USER", "root")
    database = getattr(server, "database", None) or getattr(module, "DATABASE", "ycsb")
    return {
        "db.user": str(user),
        "db.passwd": "",
        "db.url": f"jdbc:mysql://{server.host}:{server.port}/{database}",
    }


@contextmanager
def local_server(app: str, options: InfraOptions) -> Iterator[Target]:
    """The `none` infrastructure (see the module docstring)."""
    options.take("none", {})
    if options.run_dir is not None:
        endpoint = Endpoint.from_run_dir(options.run_dir, options.failover_timeout)
        yield Target(endpoint, app, "none", details={"run_dir": str(options.run_dir)})
        return
    if options.port:
        yield Target(
            Endpoint(options.host, options.port), app, "none", details={"server": "existing"}
        )
        return
    import apps

    server = apps.get(app)(port=0)
    server.start()
    try:
        yield Target(
            Endpoint(server.host, server.port),
            app,
            "none",
            props=server_props(app, server),
            details={"server": "started"},
        )
    finally:
        server.stop()
        server.cleanup()
