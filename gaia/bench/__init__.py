"""Regression tracking with asv: reading asv's result files, deciding regressions between
two commits, running asv on a commit's exported tree, and the latency history.

`invoke bench`, `invoke bench.compare A B` and `invoke bench.plot` (gaia/tasks/bench.py)
are thin wrappers over these modules; the benchmarks themselves live in benchmarks/.
"""
