"""apps.* — start, stop and list the real servers by hand.

invoke apps.list
invoke apps.start --app redis [--port 6400] [--deterministic]
invoke apps.stop --app redis        # or: invoke apps.stop --all
invoke apps.measure [--app redis] [--keys 10000] [--repeat 3]
"""

from __future__ import annotations

from invoke import Collection, task

from gaia.errors import ConfigError, friendly


@task(
    help={
        "app": "which server: redis, memcached, mariadb, mongodb, etcd, zookeeper",
        "port": "loopback port (0 = a free one)",
        "deterministic": "the configuration replicated runs use (e.g. memcached -t 1)",
    }
)
@friendly
def start(c, app, port=0, deterministic=False):
    """Start a server in the background on 127.0.0.1 with a fresh data dir."""
    from apps.running import start_app

    entry = start_app(app, int(port), deterministic)
    print(
        f"{entry.app} ({entry.server_kind}) running at {entry.endpoint}  pid {entry.pid}\n"
        f"  data dir {entry.data_dir}\n  log      {entry.log}\n"
        f"  stop it with: invoke apps.stop --app {entry.app}"
    )


@task(help={"app": "the server to stop", "all_": "stop every server started by apps.start"})
@friendly
def stop(c, app="", all_=False):
    """Stop a server started with apps.start (SIGTERM, then SIGKILL) and remove its data."""
    from apps.running import stop_apps

    if bool(app) == bool(all_):
        raise ConfigError("say which server to stop", "pass --app NAME or --all")
    stopped = stop_apps(None if all_ else [app])
    for entry in stopped:
        print(f"stopped {entry.app} at {entry.endpoint} (pid {entry.pid})")
    if not stopped:
        print("nothing was running")


@task(name="list")
@friendly
def list_apps(c):
    """The servers GAIA knows: installed or not, the package providing each, what runs."""
    from rich.console import Console
    from rich.table import Table

    from apps.catalog import describe_all

    table = Table("app", "binary", "installed", "package", "running (apps.start)")
    for row in describe_all():
        table.add_row(row.app, row.binary, row.installed, row.package, row.running)
    console = Console()
    if not console.is_terminal:  # piped: do not squeeze paths into 80 columns
        console = Console(width=160)
    console.print(table)


@task(
    help={
        "app": "one server (default: every installed one)",
        "keys": "keys loaded before digest/snapshot/restore",
        "repeat": "runs per app (the median is shown)",
    }
)
@friendly
def measure(c, app="", keys=10_000, repeat=3):
    """Time start, digest, snapshot and restore of each server (medians, seconds)."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    import apps
    from apps.measure import measure as run_measure

    names = [app] if app else [n for n in apps.available() if _installed(n)]
    table = Table("app", "server", "keys", "start", "load", "digest", "snapshot", "restore")
    with Progress(transient=True) as progress:
        job = progress.add_task("measuring", total=len(names))
        for name in names:
            progress.update(job, description=f"measuring {name}")
            t = run_measure(name, int(keys), int(repeat))
            numbers = (t.start, t.load, t.digest, t.snapshot, t.restore)
            table.add_row(t.app, t.server_kind, str(t.keys), *(f"{x:.3f}" for x in numbers))
            progress.advance(job)
    Console().print(table)


def _installed(name: str) -> bool:
    from apps.catalog import describe

    return describe(name, {}).installed not in ("missing", "not available yet")


NAMESPACE = Collection("apps", start, stop, list_apps, measure)
