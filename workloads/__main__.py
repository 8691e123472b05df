"""`python -m workloads load|run <db> [-P file]... [-p key=value]... [-threads N] [-target N]`

YCSB's own command line (bin/ycsb load/run), for scripts written against the Java YCSB:
the server is the one YCSB's properties name (redis.host/redis.port, memcached.hosts,
db.url, mongodb.url; localhost and the usual port otherwise). Prints YCSB's text report
and saves a result record. For GAIA's richer options (starting servers, deployments,
processes) use `invoke ycsb`.
"""

from __future__ import annotations

import argparse
import sys

from gaia.errors import GaiaError, report
from workloads import bindings
from workloads.properties import merge
from workloads.ycsb import YcsbOptions, run_ycsb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workloads", description=__doc__.split("\n")[0])
    parser.add_argument("phase", choices=("load", "run"))
    parser.add_argument("db", help="redis, memcached, mariadb (jdbc), mongodb")
    parser.add_argument("-P", dest="files", action="append", default=[], help="properties file")
    parser.add_argument("-p", dest="props", action="append", default=[], help="key=value")
    parser.add_argument("-threads", type=int, default=None)
    parser.add_argument("-target", type=int, default=None)
    parser.add_argument("-s", action="store_true", help="live status line (stderr)")
    args = parser.parse_args(argv)
    try:
        props = merge(args.files, args.props)
        endpoint = bindings.endpoint_from_props(args.db, props)
        threads = args.threads or int(props.get("threadcount", "1") or 1)
        opts = YcsbOptions(
            app=args.db,
            workload="",
            files=args.files,
            overrides=args.props,
            threads=threads,
            target=args.target,
            host=endpoint.host,
            port=endpoint.port,
            load=args.phase == "load",
            run=args.phase == "run",
            status=args.s,
        )
        run_ycsb(opts)
    except GaiaError as exc:
        report(exc)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
