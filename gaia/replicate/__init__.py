"""Replicated deployments of unmodified servers: APUS + the shim + the real server, with
failover (issue 5, items 5-7).

One replica = three processes: an APUS replica (`node.py`: the runtime's replica with a
serve gate), the app's server started through `apps` with the shim preloaded (every
replica runs it; its role comes from the ring), and an agent (`agent.py`) that owns the
server, replays the committed log into it while it is a backup and, when its APUS replica
is elected, finishes the committed suffix before opening the gate that lets the server
take clients. `group.py` starts and watches a whole group and keeps `deployment.json`
current; `supervisor.py` runs one in the background for `gaia replicate`.

spec.py          what a deployment is (replicate.json): app or command, replicas, ports.
gate.py          the serve gate: the view in which the local executor may lead.
node.py          the APUS replica process with the gate.
servers.py       the server of one replica (an `apps` server, or any command).
agent.py         the per-replica agent process (server, replayer, promotion).
roles.py         the agent's decisions, as a pure function.
control.py       a tiny JSON-lines RPC on a unix socket (digest, applied, status).
status.py        agent status files and the deployment.json they fold into.
group.py         a whole replicated group: start, watch, kill, restart, check, stop.
forwarder.py     the optional stable front port (a TCP forwarder to the leader).
supervisor.py    `gaia replicate` in the background.
ycsb_infra.py    `invoke ycsb --infra apus`.
"""
