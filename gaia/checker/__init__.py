"""Histories of client operations and the linearizability checker that judges them.

`history` records what each client asked, what it got back and when (or that the reply
never came); `linearizability` decides whether some order of those operations, each taking
effect between its invocation and its completion, explains every result.
"""

from gaia.checker.history import Operation, Recorder, load_history, save_history
from gaia.checker.linearizability import KV, REGISTER, CheckResult, Model, check

__all__ = [
    "KV",
    "REGISTER",
    "CheckResult",
    "Model",
    "Operation",
    "Recorder",
    "check",
    "load_history",
    "save_history",
]
