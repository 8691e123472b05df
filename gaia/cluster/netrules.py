"""Command lines for network faults: nftables drop rules and tc tbf rate limits.

Pure builders (argv lists) and parsers, so what the nemesis runs on a host can be read
and tested without root. All rules live in one table per host (`inet gaia_nemesis`, an
input hook), so healing can also drop the whole table in one command. Rules filter what
arrives at a host: a partition between A and B is a drop rule on each side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TABLE = "gaia_nemesis"
CHAIN = "input"


_CHAIN_SPEC = "{ type filter hook input priority 0 ; policy accept ; }"


def _rule(*match: str) -> list[str]:
    """One nft call: create table and chain if missing (`add` is idempotent), add the rule.

    One call per rule matters on SSH hosts, where every command is a round trip.
    """
    script = (
        f"add table inet {TABLE}; add chain inet {TABLE} {CHAIN} {_CHAIN_SPEC}; "
        f"add rule inet {TABLE} {CHAIN} {' '.join(match)}"
    )
    return ["nft", "--echo", "--handle", script]


def address_set(addresses: Iterable[str]) -> str:
    found = sorted(set(addresses))
    if not found:
        raise ValueError("a drop rule needs at least one source address")
    return "{ " + ", ".join(found) + " }"


def drop_from(addresses: Iterable[str]) -> list[str]:
    """Drop every packet arriving from these addresses (one side of a partition)."""
    return _rule("ip", "saddr", address_set(addresses), "drop")


def drop_random(percent: int, addresses: Iterable[str] | None = None) -> list[str]:
    """Drop `percent`% of arriving packets (from `addresses`, or from any non-loopback)."""
    if not 0 < percent <= 100:
        raise ValueError(f"loss must be 1-100 percent, got {percent}")
    source = ["ip", "saddr", address_set(addresses)] if addresses else ["iifname", "!=", '"lo"']
    return _rule(*source, "numgen", "random", "mod", "100", "<", str(percent), "drop")


def delete_rule(handle: int) -> list[str]:
    return ["nft", "delete", "rule", "inet", TABLE, CHAIN, "handle", str(handle)]


def delete_table() -> list[str]:
    return ["nft", "delete", "table", "inet", TABLE]


def parse_handle(echo: str) -> int:
    """The rule handle from `nft --echo --handle add rule ...` output (`... # handle 7`)."""
    found = re.findall(r"# handle (\d+)", echo)
    if not found:
        raise ValueError(f"no rule handle in nft output: {echo.strip()!r}")
    return int(found[-1])


def tbf(interface: str, rate_kbit: int) -> list[str]:
    """Limit what leaves `interface` to `rate_kbit` (bucket: ~20 ms of traffic, >= 3 KB)."""
    if rate_kbit <= 0:
        raise ValueError(f"rate must be positive, got {rate_kbit} kbit/s")
    burst = max(3000, rate_kbit * 1000 // 8 // 50)
    return [
        "tc", "qdisc", "replace", "dev", interface, "root", "tbf",
        "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", "200ms",
    ]  # fmt: skip


def tbf_remove(interface: str) -> list[str]:
    return ["tc", "qdisc", "del", "dev", interface, "root"]
