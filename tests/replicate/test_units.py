"""The pure parts of replicated deployments and their small I/O pieces, without servers:
spec checks, the agent's decisions, deployment.json composition, the serve gate, the
control channel and the front-port forwarder."""

from __future__ import annotations

import socket
import threading
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaia.apus.runtime.status import ReplicaStatus
from gaia.errors import ConfigError, GaiaError
from gaia.replicate import control, roles
from gaia.replicate.forwarder import Forwarder
from gaia.replicate.gate import ServeGate
from gaia.replicate.spec import ReplicateSpec
from gaia.replicate.status import (
    BACKUP,
    DEPOSED,
    FAILED,
    PROMOTING,
    SERVING,
    STARTING,
    STOPPED,
    AgentStatus,
    compose,
    serving_leader,
)

# ---------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "either --app or a command"),
        ({"app": "redis", "command": ["x", "{port}"]}, "either --app or a command"),
        ({"app": "postgres"}, "unknown app"),
        ({"command": []}, "empty"),
        ({"command": ["redis-server", "--port", "6379"]}, "no {port} placeholder"),
        ({"app": "redis", "transport": "rdma"}, "unknown transport"),
    ],
)
def test_bad_specs_are_one_line_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words.replace("{", r"\{").replace("}", r"\}")):
        ReplicateSpec(replicas=[0, 1, 2], **kwargs)


@pytest.mark.parametrize("replicas", [[], [0, 0], list(range(10))])
def test_bad_replica_counts(replicas):
    with pytest.raises(ConfigError, match="replicas"):
        ReplicateSpec(replicas=replicas, app="redis")


def test_spec_round_trip_and_placeholders(tmp_path: Path):
    spec = ReplicateSpec(replicas=[0, 1], command=["srv", "--port={port}", "--data", "{dir}"],
                         app_ports={0: 7001, 1: 7002}, hosts={0: "10.0.0.1", 1: "10.0.0.2"})
    spec.save(tmp_path)
    again = ReplicateSpec.load(tmp_path)
    assert again == spec
    assert again.server_command(7001, Path("/d")) == ["srv", "--port=7001", "--data", "/d"]
    assert again.name == "srv"


def test_loading_a_missing_spec_names_the_fix(tmp_path: Path):
    with pytest.raises(GaiaError, match="no replicated deployment"):
        ReplicateSpec.load(tmp_path)


# ---------------------------------------------------------------- agent decisions
AGENT_STATES = [STARTING, BACKUP, PROMOTING, SERVING, FAILED, DEPOSED, STOPPED]
APUS_ROLES = ["leader", "backup", "candidate", "recovering", "down", "starting"]
observed = st.builds(
    roles.Observed, state=st.sampled_from(AGENT_STATES), apus_role=st.sampled_from(APUS_ROLES),
    apus_view=st.integers(0, 5), serving_view=st.integers(0, 5), server_alive=st.booleans(),
    replay_failed=st.booleans())


@given(observed)
def test_only_an_elected_live_backup_takes_over(o):
    if roles.decide(o) == roles.PROMOTE:
        assert o.state == BACKUP and o.apus_role == "leader" and o.server_alive
        assert not o.replay_failed


@given(observed)
def test_a_server_never_serves_outside_the_view_it_was_opened_for(o):
    """SERVING while APUS no longer leads in that view always stops the server (or the
    server is gone already)."""
    stale = o.apus_role != "leader" or o.apus_view != o.serving_view
    if o.state == SERVING and stale:
        assert roles.decide(o) in (roles.DEMOTE, roles.STEP_OUT)


@given(observed)
def test_down_replicas_do_nothing_and_dead_servers_are_reported(o):
    action = roles.decide(o)
    if o.state in (FAILED, DEPOSED, STOPPED):
        assert action == roles.NONE
    elif not o.server_alive:
        assert action in (roles.SERVER_DIED, roles.STEP_OUT)
        assert (action == roles.STEP_OUT) == (o.state in (SERVING, PROMOTING))


# ---------------------------------------------------------------- deployment.json
def _apus(role: str, view: int, pid: int = 1) -> ReplicaStatus:
    return ReplicaStatus(0, pid, role, view, None, 10, 10, 1)


def _agent(r: int, state: str, view: int = 0) -> AgentStatus:
    return AgentStatus(r, 100 + r, state, server_pid=200 + r, view=view)


def _spec() -> ReplicateSpec:
    return ReplicateSpec(replicas=[0, 1, 2], app="redis", app_ports={0: 1, 1: 2, 2: 3},
                         hosts={r: "127.0.0.1" for r in range(3)}, group_id="g")


def test_the_leader_is_the_replica_that_leads_and_serves_in_that_view(tmp_path: Path):
    apus = {0: _apus("down", 1), 1: _apus("leader", 2), 2: _apus("backup", 2)}
    promoting = {0: _agent(0, FAILED), 1: _agent(1, PROMOTING), 2: _agent(2, BACKUP)}
    dep = compose(tmp_path, _spec(), apus, promoting)
    assert dep.leader is None, "not before the takeover finished"
    assert [r.role for r in dep.replicas] == ["down", "promoting", "backup"]
    serving = {**promoting, 1: _agent(1, SERVING, view=2)}
    dep = compose(tmp_path, _spec(), apus, serving)
    assert dep.leader == 1 and dep.leader_endpoint() == ("127.0.0.1", 2)
    assert dep.kind == "replicate" and dep.app == "redis" and dep.view == 2
    assert dep.replicas[1].pid == 201  # the server clients talk to
    stale = {**serving, 1: _agent(1, SERVING, view=1)}
    assert compose(tmp_path, _spec(), apus, stale).leader is None


@given(st.dictionaries(st.integers(0, 2), st.tuples(st.sampled_from(APUS_ROLES),
                                                     st.integers(0, 3)), min_size=1),
       st.dictionaries(st.integers(0, 2), st.tuples(st.sampled_from(AGENT_STATES),
                                                     st.integers(0, 3))))
def test_serving_leader_is_always_a_leading_serving_replica(apus_raw, agents_raw):
    apus = {r: _apus(role, view) for r, (role, view) in apus_raw.items()}
    agents = {r: _agent(r, state, view) for r, (state, view) in agents_raw.items()}
    leader = serving_leader(apus, agents)
    if leader is not None:
        assert apus[leader].role == "leader" and agents[leader].state == SERVING
        assert agents[leader].view == apus[leader].view


# ---------------------------------------------------------------- serve gate, control
def test_serve_gate_round_trip():
    group = f"t{uuid.uuid4().hex[:8]}"
    gate = ServeGate.create(group, 0)
    try:
        other = ServeGate.open(group, 0)
        assert other.view == 0
        gate.open_for(7)
        assert other.view == 7
        other.shut()
        assert gate.view == 0
        other.close()
    finally:
        gate.close()
        gate.unlink()


@pytest.mark.parametrize("depth", [0, 12], ids=["short", "deeper-than-sun_path"])
def test_control_channel_answers_and_reports_errors(tmp_path: Path, depth: int):
    def handler(request):
        if request["op"] == "boom":
            raise GaiaError("it broke", "mend it")
        return {"echo": request["x"]}

    where = tmp_path.joinpath(*["a-long-directory-name"] * depth)
    where.mkdir(parents=True, exist_ok=True)
    path = where / "agent.sock"
    server = control.ControlServer(path, handler)
    try:
        assert control.call(path, {"op": "echo", "x": 3}) == {"echo": 3}
        with pytest.raises(GaiaError, match="it broke"):
            control.call(path, {"op": "boom"})
    finally:
        server.close()
    with pytest.raises(GaiaError, match="does not answer"):
        control.call(path, {"op": "echo", "x": 1})


# ---------------------------------------------------------------- front port
class _Upper:
    """A tiny server answering each chunk upper-cased, and 'bye' at end of input."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data.upper())
                conn.sendall(b"bye")


def test_front_port_forwards_to_the_current_leader_and_passes_half_closes():
    servers = [_Upper(), _Upper()]
    leader: list[int | None] = [servers[0].port]
    front = Forwarder(0, lambda: None if leader[0] is None else ("127.0.0.1", leader[0]))
    try:
        for target in (servers[0].port, servers[1].port):
            leader[0] = target
            with socket.create_connection(("127.0.0.1", front.port)) as conn:
                conn.sendall(b"hello")
                assert conn.recv(16) == b"HELLO"
                conn.shutdown(socket.SHUT_WR)  # the server still answers after our EOF
                assert conn.recv(16) == b"bye"
        leader[0] = None
        with socket.create_connection(("127.0.0.1", front.port)) as conn:
            assert conn.recv(16) == b"", "no leader: the connection is closed at once"
        assert front.forwarded == 2 and front.refused == 1
    finally:
        front.close()
        for s in servers:
            s.sock.close()
