"""The framework API: how an application uses TRIPOD (Mesos's scheduler driver, in short).

    with Framework.from_run_dir(run_dir, name="kv", max_r=3) as fw:
        offer = fw.next_offer()                   # S2: resources ÷ max R
        (result,) = fw.launch(offer, [TaskRequest("kv-1", TaskSpec(app="redis"),
                                                  Resources.of(0.5, 256), r=3)])
        fw.wait_running("kv-1", replicas=3)       # statuses, as agents report them
        fw.kill("kv-1")

`submit()` does offer + launch + wait in one call (what `gaia tripod submit` uses). The
connection follows the leader: a controller that does not lead answers `not_leader` with
the leader's address; when the leader dies the client reconnects to the next one and
re-registers under the same framework id (the log remembers the framework).
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError, GaiaError
from gaia.tripod import wire
from gaia.tripod.allocation import TaskRequest
from gaia.tripod.entries import TaskSpec, to_json
from gaia.tripod.launch import validate_spec
from gaia.tripod.resources import Resources

LAYOUT_FILE = "tripod.json"


@dataclass(frozen=True)
class OfferView:
    offer_id: str
    framework_id: str
    max_r: int
    resources: Resources
    hosts: int


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    index: int
    incarnation: int
    state: str  # placed | staging | running | finished | failed | killed | lost
    agent_id: str
    host: str
    address: str
    ports: dict[str, int] = field(default_factory=dict)
    exit_code: int | None = None
    message: str = ""

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.address, self.ports["app"]


@dataclass(frozen=True)
class LaunchResult:
    task_id: str
    accepted: bool
    problem: str = ""
    fix: str = ""
    consensus: bool = False
    returned: Resources | None = None
    replicas: tuple[dict[str, Any], ...] = ()

    def raise_if_rejected(self) -> LaunchResult:
        if not self.accepted:
            raise ConfigError(f"task {self.task_id} rejected: {self.problem}", self.fix)
        return self


def controller_addresses(run_dir: Path) -> list[tuple[str, int]]:
    """Where clients reach the controllers of the deployment in `run_dir`."""
    path = Path(run_dir) / LAYOUT_FILE
    try:
        layout = json.loads(path.read_text())
    except (OSError, ValueError):
        raise GaiaError(
            f"no TRIPOD deployment in {run_dir} ({path.name} missing)",
            "start one with `gaia tripod up` or pass its run directory",
        ) from None
    return [(c["client_address"], c["port"]) for c in layout["controllers"]]


class Framework:
    def __init__(
        self,
        controllers: Sequence[tuple[str, int]],
        name: str,
        max_r: int = 1,
        framework_id: str | None = None,
        failover_timeout: float = 30.0,
    ) -> None:
        self.controllers = list(controllers)
        self.name = name
        self.max_r = max_r
        self.framework_id = framework_id
        self.failover_timeout = failover_timeout
        self.offers: queue.Queue[OfferView] = queue.Queue()
        self.rescinded: set[str] = set()
        self.statuses: dict[str, dict[int, TaskStatus]] = {}
        self._status_cond = threading.Condition()
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._next_req = 1
        self._lock = threading.Lock()
        self._connected = threading.Condition(self._lock)
        self._sock: socket.socket | None = None
        self._closed = False
        self._reader: threading.Thread | None = None

    @classmethod
    def from_run_dir(cls, run_dir: Path, name: str, max_r: int = 1, **kwargs: Any) -> Framework:
        return cls(controller_addresses(run_dir), name, max_r, **kwargs)

    # -- connection --------------------------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> Framework:
        """Register with the leading controller (following `not_leader` answers)."""
        deadline = time.monotonic() + timeout
        last = "no controller answered"
        while time.monotonic() < deadline and not self._closed:
            for address in list(self.controllers):
                try:
                    self._register(address, max(0.5, deadline - time.monotonic()))
                    return self
                except _Redirect as redirect:
                    last = f"controller {address} does not lead (leader: {redirect.leader})"
                except (OSError, ValueError) as exc:  # ValueError: a reply cut off mid-line
                    last = f"{address[0]}:{address[1]}: {exc}"
            time.sleep(0.1)
        raise GaiaError(
            f"could not register framework {self.name!r} with a leading controller: {last}",
            "check `gaia tripod status`; a new leader takes a few seconds after a failover",
        )

    def _register(self, address: tuple[str, int], timeout: float) -> None:
        sock = socket.create_connection(address, timeout=timeout)
        try:
            hello = {"op": "hello", "role": "framework", "name": self.name, "max_r": self.max_r}
            if self.framework_id:
                hello["framework_id"] = self.framework_id
            sock.sendall(wire.dumps({**hello, "req": 0}))
            stream = sock.makefile("rb")
            reply = json.loads(stream.readline(wire.MAX_LINE) or b"{}")
            while reply.get("op") in ("status", "offer", "rescind"):  # events before the reply
                self._dispatch(reply)
                reply = json.loads(stream.readline(wire.MAX_LINE) or b"{}")
        except (OSError, ValueError):
            sock.close()
            raise
        if reply.get("op") == "not_leader":
            sock.close()
            if reply.get("address"):
                leader = (address[0], int(reply["address"][1]))
                if leader not in self.controllers:
                    self.controllers.insert(0, leader)
            raise _Redirect(reply.get("leader"))
        if reply.get("op") == "error":
            sock.close()
            raise ConfigError(reply.get("problem", "registration refused"), reply.get("fix", ""))
        if reply.get("op") != "registered":
            sock.close()
            raise OSError(f"unexpected answer {reply}")
        sock.settimeout(None)
        self.framework_id = reply["framework_id"]
        while not self.offers.empty():  # offers of a former leader are void
            self.offers.get_nowait()
        with self._connected:
            self._sock = sock
            self._connected.notify_all()
        self._reader = threading.Thread(
            target=self._read, args=(sock, stream), name="tripod-framework", daemon=True
        )
        self._reader.start()

    def _read(self, sock: socket.socket, stream: Any) -> None:
        try:
            while line := stream.readline(wire.MAX_LINE):
                self._dispatch(json.loads(line))
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                if self._sock is sock:
                    self._sock = None
                self._fail_pending("the connection to the leading controller was lost")
            with contextlib.suppress(OSError):
                sock.close()
        if not self._closed:
            with contextlib.suppress(GaiaError):
                self.connect(self.failover_timeout)  # follow the new leader

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "offer":
            self.offers.put(
                OfferView(
                    message["offer_id"],
                    message["framework_id"],
                    message["max_r"],
                    Resources.from_json(message["resources"]),
                    message["hosts"],
                )
            )
        elif op == "rescind":
            self.rescinded.add(message["offer_id"])
        elif op == "status":
            status = TaskStatus(**{k: v for k, v in message.items() if k != "op"})
            with self._status_cond:
                self.statuses.setdefault(status.task_id, {})[status.index] = status
                self._status_cond.notify_all()
        elif message.get("req") in self._replies:
            self._replies[message["req"]].put(message)

    def _fail_pending(self, why: str) -> None:
        """Answer every request in flight with an error (called holding the lock)."""
        for box in list(self._replies.values()):
            box.put({"op": "error", "problem": why, "fix": "retry: the framework reconnects"})

    def _call(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send a request to the leader and wait for its answer. While the framework
        reconnects to a new leader, the request waits for the new connection."""
        box: queue.Queue[dict[str, Any]] = queue.Queue()
        with self._connected:
            if not self._connected.wait_for(
                lambda: self._sock is not None or self._closed, timeout
            ):
                raise GaiaError(
                    "the framework is not connected to a leading controller",
                    "check `gaia tripod status`",
                )
            if self._sock is None:
                raise GaiaError("the framework was closed", "create a new Framework")
            req = self._next_req
            self._next_req += 1
            self._replies[req] = box
            try:
                self._sock.sendall(wire.dumps({**message, "req": req}))
            except OSError as exc:
                box.put({"op": "error", "problem": f"lost the leading controller ({exc})"})
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise GaiaError(
                f"no answer from the leading controller within {timeout:g} s",
                "check `gaia tripod status`",
            ) from None
        finally:
            with self._lock:
                self._replies.pop(req, None)
        if reply.get("op") == "error":
            raise GaiaError(reply.get("problem", "request failed"), reply.get("fix", ""))
        return reply

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock, contextlib.suppress(OSError):
            if self._sock is not None:
                self._sock.sendall(wire.dumps(message))

    def close(self) -> None:
        with self._connected:
            self._closed = True
            sock, self._sock = self._sock, None
            self._connected.notify_all()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> Framework:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the API ---------------------------------------------------------------------------
    def next_offer(self, timeout: float = 10.0) -> OfferView:
        deadline = time.monotonic() + timeout
        while True:
            try:
                offer = self.offers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise GaiaError(
                    f"no resource offer within {timeout:g} s",
                    "check that agents are up and have free resources (`gaia tripod status`)",
                ) from None
            if offer.offer_id not in self.rescinded:
                return offer

    def launch(
        self, offer: OfferView, tasks: Sequence[TaskRequest], timeout: float = 30.0
    ) -> list[LaunchResult]:
        """Launch tasks on an offer (S3/S4); the rest of the offer is released."""
        for t in tasks:
            validate_spec(t.spec)
        payload = [
            {
                "task_id": t.task_id,
                "spec": to_json(t.spec),
                "resources": t.resources.to_json(),
                "r": t.r,
                "agent_id": t.agent_id,
            }
            for t in tasks
        ]
        reply = self._call({"op": "accept", "offer_id": offer.offer_id, "tasks": payload}, timeout)
        return [
            LaunchResult(
                task_id=r["task_id"],
                accepted=r["accepted"],
                problem=r.get("problem", ""),
                fix=r.get("fix", ""),
                consensus=r.get("consensus", False),
                returned=Resources.from_json(r["returned"]) if r.get("returned") else None,
                replicas=tuple(r.get("replicas", ())),
            )
            for r in reply["results"]
        ]

    def decline(self, offer: OfferView) -> None:
        self._send({"op": "decline", "offer_id": offer.offer_id})

    def kill(self, task_id: str, timeout: float = 10.0) -> bool:
        return bool(self._call({"op": "kill", "task_id": task_id}, timeout).get("accepted"))

    def task_statuses(self, task_id: str) -> dict[int, TaskStatus]:
        with self._status_cond:
            return dict(self.statuses.get(task_id, {}))

    def wait_for(
        self, task_id: str, states: Sequence[str], replicas: int = 1, timeout: float = 30.0
    ) -> dict[int, TaskStatus]:
        """Until `replicas` replicas of the task are in one of `states`; returns them all."""
        deadline = time.monotonic() + timeout
        with self._status_cond:
            while True:
                current = dict(self.statuses.get(task_id, {}))
                if sum(s.state in states for s in current.values()) >= replicas:
                    return current
                failed = [s for s in current.values() if s.state == "failed"]
                if failed and "failed" not in states:
                    raise GaiaError(
                        f"replica {failed[0].index} of task {task_id} failed on "
                        f"{failed[0].agent_id}: {failed[0].message or failed[0].exit_code}",
                        "check the command or app, and the agent's log in the run directory",
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    states_now = {i: s.state for i, s in sorted(current.items())}
                    raise GaiaError(
                        f"task {task_id}: {replicas} replica(s) not {'/'.join(states)} within "
                        f"{timeout:g} s (now {states_now})",
                        "check `gaia tripod status` and the agents' logs",
                    )
                self._status_cond.wait(min(left, 0.5))

    def wait_running(
        self, task_id: str, replicas: int = 1, timeout: float = 60.0
    ) -> dict[int, TaskStatus]:
        return self.wait_for(task_id, ("running",), replicas, timeout)

    def submit(
        self,
        spec: TaskSpec,
        r: int = 1,
        resources: Resources | None = None,
        task_id: str | None = None,
        wait: bool = True,
        timeout: float = 60.0,
    ) -> tuple[LaunchResult, dict[int, TaskStatus]]:
        """Offer + launch + (optionally) wait until every replica runs."""
        validate_spec(spec)
        task_id = task_id or f"{spec.app or 'cmd'}-{uuid.uuid4().hex[:6]}"
        request = TaskRequest(task_id, spec, resources or Resources.of(0.1, 64), r)
        for attempt in range(3):  # an offer can die with its leader: take the next one
            offer = self.next_offer(timeout)
            try:
                (result,) = self.launch(offer, [request], timeout)
            except GaiaError as exc:
                if "leading controller" not in exc.problem or attempt == 2:
                    raise
                continue
            if result.accepted or "no longer valid" not in result.problem:
                break
        result.raise_if_rejected()
        statuses = self.wait_running(task_id, r, timeout) if wait else {}
        return result, statuses


class _Redirect(Exception):
    def __init__(self, leader: int | None) -> None:
        super().__init__(f"leader is {leader}")
        self.leader = leader
