"""asv benchmark suite (asv.conf.json points here; every `bench_*.py` module is collected).

`time_*` benchmarks time GAIA's hot paths, `track_*` benchmarks report measured values
(APUS latency percentiles, throughput, the ping-pong floor) with a `unit`. Run them with
`invoke bench` (current checkout) or compare two commits with `invoke bench.compare A B`;
see benchmarks/README.md.
"""
