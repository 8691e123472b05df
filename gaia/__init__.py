"""GAIA: high availability for unmodified servers through fast distributed consensus.

Subpackages: `apus` (the consensus protocol), `intercept` (making a server replicated),
`tripod` (the replication-aware scheduler), `vm` (VM fault tolerance), `cluster` (hosts and
fault injection). This module must stay importable with the standard library alone: the
first-run bootstrap (`python3 tasks.py ...`) imports `gaia.bootstrap` before any
dependency is installed.
"""

__version__ = "0.1.0"
