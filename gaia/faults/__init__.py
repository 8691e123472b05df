"""Fault campaigns: seeded faults against replicated servers, judged by what clients saw.

`invoke faults --runs N --seed S --app redis --infra apus [--nemesis kill,pause,partition,loss]
[--transport shm|tcp]` deploys the app replicated on an infrastructure, then for each run
starts clients issuing reads, writes and compare-and-set on fresh keys, plays a seeded
fault schedule (gaia.cluster), heals, and reports: linearizability of the history
(gaia.checker), acknowledged writes lost on any replica, state digests after healing,
and how long clients waited when a fault hit the leader.

options.py      what a campaign is asked to do, checked up front
clients.py      one register client per app (read / write / cas, one attempt per call)
workload.py     the client threads and their recorded history
systems.py      the System interface and the `--infra` registry
replicated.py   --infra apus: gaia.replicate groups (shm, or tcp between namespaces)
vm_system.py    --infra vm: the replicated VM pair (gaia.vm), leader-VM kills
tripod_system.py --infra tripod: an R = 3 task placed by TRIPOD on namespace hosts
analysis.py     lost writes, failover times, throughput (pure)
engine.py       one run: workload + nemesis, heal, judge
campaign.py     N runs, redeploying after a broken one; totals
report.py       the result record and the printed summary
cli.py          `python -m gaia.faults` and the body of `invoke faults`
"""
