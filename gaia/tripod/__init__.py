"""TRIPOD: a two-level scheduler that replicates essential tasks with replica strength R.

The GAIA proposal (§2.2) builds TRIPOD on Mesos. Mesos is retired and cannot be installed
here, so TRIPOD is its own Mesos-style scheduler: agents report resources, a leading
controller makes resource offers to frameworks, frameworks launch tasks on offers. What
TRIPOD adds is the replication-aware allocation of the proposal's Figure 5:

- S1 agents report their resources (cpus, memory, host identity) to the controllers;
- S2 a framework is offered the aggregated available resources divided by its max R;
- S3 a task with R = 1 is launched by the leader without waiting for consensus, and the
  R−1 shares reserved for it go back to the pool (in general max R − R shares);
- S4 for R > 1 the leader pre-assigns which controller places which replica on which
  agent, on distinct hosts, and carries that assignment in the consensus entry; once
  the entry commits each controller launches its own replica.

Every scheduling decision is an entry of a replicated `DecisionLog`; the controller state
(`state.ControllerStateMachine`) is a deterministic function of the committed entries, so
any controller that replays the log reaches the same placements.

Concepts and their Mesos counterparts (an adapter to Mesos-like schedulers maps 1:1):

| TRIPOD                          | Mesos                                   | module          |
|---------------------------------|-----------------------------------------|-----------------|
| controller (3, one leads)       | master (+ standby masters)              | controller.py   |
| leading controller              | leading master (ZooKeeper election)     | decision_log.py |
| DecisionLog (APUS / file log)   | replicated log / registry               | decision_log.py |
| controllers' APUS group         | replicated log's Paxos group            | apus_log.py     |
| agent (one per host)            | agent (slave)                           | agent.py        |
| AgentReport (S1)                | agent registration + resource updates   | allocation.py   |
| host identity (`host`)          | agent hostname / attribute              | resources.py    |
| Resources(cpus_m, mem_mb)       | scalar resources cpus, mem              | resources.py    |
| agent port range                | `ports` range resource [31000-32000]    | allocation.py   |
| framework (max R)               | framework (FrameworkInfo)               | framework.py    |
| Offer (aggregate / max R)       | resource offer (per agent)              | allocation.py   |
| accept / decline / rescind      | acceptOffers / declineOffer / rescind   | allocation.py   |
| Allocator (DRF order, S2)       | hierarchical DRF allocator              | allocation.py   |
| task id chosen by framework     | TaskID                                  | entries.py      |
| TaskSpec (app or command)       | TaskInfo with CommandInfo               | entries.py      |
| replica (task, index, incarn.)  | no counterpart: R copies of one task    | entries.py      |
| incarnation                     | no counterpart (Marathon's task attempt)| entries.py      |
| replica states staging/running/ | TASK_STAGING / TASK_RUNNING / TASK_     | wire.py         |
|   finished/failed/killed/lost   |   FINISHED / FAILED / KILLED / LOST     |                 |
| RemoveAgent entry               | agent marked unreachable / removed      | entries.py      |
| leader reconciliation           | task reconciliation after failover      | controller.py   |
| agent cleanup of leftovers      | agent recovery with --recover=cleanup   | agent.py        |
| task's APUS group (R > 1)       | no counterpart                          | group_replica.py|
| member moving with a re-placed  | no counterpart                          | replica_node.py |
|   replica (membership change)   |                                         |                 |
| deployment.json per task        | Mesos-DNS / service discovery           | controller.py   |

What has no Mesos counterpart is exactly the proposal's contribution: the offer divided
by max R, the give-back of unused reserved shares, and replicas pre-assigned to
controllers and hosts inside one consensus entry. Replicas of one R > 1 task form an APUS
group (the replicated-server layer, gaia.replicate: one serving replica, the others
replaying the same committed inputs); its configuration (members, hosts, ports) lives in
the task's placement record (`state.TaskRecord.group()`). A replica re-placed after its
host died joins as a new member and catches up; the leading controller names the serving
replica in the task's `deployment.json`, which clients (`--infra tripod`) follow.
"""
