"""What a replica's agent does next, from what it observes (pure; the agent acts on it).

The rules (DESIGN.md "Every replica runs the shim", "Finding the leader"):
  - a backup whose APUS replica is elected takes over (PROMOTE): it finishes the
    committed suffix, then opens the serve gate for that view;
  - a serving replica whose APUS replica no longer leads in the view it serves (deposed,
    or its consensus process died) stops its server and its APUS replica (DEMOTE): the
    shim already fails its clients' input closed (a connection accepted as leader runs
    input only while leading in that view), and a replica that cannot serve must not
    stay a voter that may be elected;
  - a server that dies is reported (SERVER_DIED); if it was serving, the replica also
    steps out of the consensus group (STEP_OUT) so that another one is elected.
"""

from __future__ import annotations

from dataclasses import dataclass

from gaia.replicate.status import BACKUP, DOWN_STATES, PROMOTING, SERVING

NONE, PROMOTE, DEMOTE, SERVER_DIED, STEP_OUT = "none", "promote", "demote", "died", "step_out"


@dataclass(frozen=True)
class Observed:
    state: str  # the agent's state (status.py)
    apus_role: str  # the APUS replica's role name ("leader" only once it leads normally)
    apus_view: int
    serving_view: int  # SERVING: the view the gate was opened for
    server_alive: bool
    replay_failed: bool = False


def decide(o: Observed) -> str:
    if o.state in DOWN_STATES:
        return NONE
    if not o.server_alive:
        return STEP_OUT if o.state in (SERVING, PROMOTING) else SERVER_DIED
    if o.state == BACKUP:
        if o.replay_failed:
            return SERVER_DIED
        if o.apus_role == "leader":
            return PROMOTE
    if o.state == SERVING and (o.apus_role != "leader" or o.apus_view != o.serving_view):
        return DEMOTE
    return NONE
