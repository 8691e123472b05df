"""TRIPOD's wire protocol: one JSON object per line over TCP.

Agents, frameworks and the CLI talk to controllers with it; every message has an "op".
A request that wants an answer carries "req" (an int) and the answer echoes it.

agent -> controller      hello{role=agent, report} · report{report} (S1) · status{status}
controller -> agent      launch{task_id, spec, resources, replica, group} · kill{key}
framework -> leader      hello{role=framework, name, max_r, framework_id?} · accept{offer_id,
                         tasks} · decline{offer_id} · kill{task_id}
leader -> framework      registered · offer (S2) · rescind · accepted{results} · status
anyone -> controller     query{} -> cluster{...} (`gaia tripod status`)
any controller           not_leader{leader, address} when it does not lead
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import asdict
from typing import Any

from gaia.errors import GaiaError
from gaia.tripod.allocation import AgentReport, ReplicaStatus
from gaia.tripod.resources import Resources

MAX_LINE = 1 << 22
Message = dict[str, Any]


def dumps(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


async def send(writer: asyncio.StreamWriter, message: Message) -> None:
    writer.write(dumps(message))
    await writer.drain()


async def receive(reader: asyncio.StreamReader) -> Message | None:
    """The next message, or None when the peer closed the connection."""
    line = await reader.readline()
    if not line:
        return None
    return json.loads(line)


async def open_connection(
    host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, limit=MAX_LINE)


def request(address: tuple[str, int], message: Message, timeout: float = 5.0) -> Message:
    """One request, one answer, on a fresh connection (for the CLI and tests)."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(dumps({**message, "req": 1}))
            with sock.makefile("rb") as stream:
                line = stream.readline(MAX_LINE)
    except OSError as exc:
        raise GaiaError(
            f"cannot reach the TRIPOD controller at {address[0]}:{address[1]} ({exc})",
            "check that the deployment is up (`gaia tripod status`) or start it (`gaia tripod up`)",
        ) from None
    if not line:
        raise GaiaError(
            f"the TRIPOD controller at {address[0]}:{address[1]} closed the connection",
            "check its log in the run directory",
        )
    return json.loads(line)


# -- reports and statuses as JSON ----------------------------------------------------------


def report_to_json(report: AgentReport) -> Message:
    return {
        "agent_id": report.agent_id,
        "host": report.host,
        "address": report.address,
        "capacity": report.capacity.to_json(),
        "port_range": list(report.port_range),
        "tasks": [asdict(s) for s in report.tasks],
        "boot": report.boot,
    }


def report_from_json(data: Message) -> AgentReport:
    return AgentReport(
        agent_id=data["agent_id"],
        host=data["host"],
        address=data["address"],
        capacity=Resources.from_json(data["capacity"]),
        port_range=(int(data["port_range"][0]), int(data["port_range"][1])),
        tasks=tuple(ReplicaStatus(**s) for s in data.get("tasks", ())),
        boot=str(data.get("boot", "")),
    )
