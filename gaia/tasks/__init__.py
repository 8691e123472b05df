"""invoke tasks, one module per area; `tasks.py` at the top assembles them.

A module contributes top-level tasks by listing them in `TASKS` and a namespace by
defining `NAMESPACE` (an invoke Collection named after the area: apps, bench, tripod, vm).
Task names are fixed by DESIGN.md: top level setup, test, reproduce, figures, ycsb,
latency, overhead, faults; namespaces apps.*, bench.*, tripod.*, vm.*.
"""

from __future__ import annotations

import importlib
import pkgutil

from invoke import Collection


def collection() -> Collection:
    ns = Collection()
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for task in getattr(module, "TASKS", ()):
            ns.add_task(task)
        sub = getattr(module, "NAMESPACE", None)
        if sub is not None:
            ns.add_collection(sub)
    return ns
