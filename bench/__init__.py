"""Benchmarks: `python -m bench.<name> [--smoke]` prints one JSON object on stdout (logs on stderr).

`train_step`, `torch_reference`, `inference`, `loader`, `scaling`; `python -m bench.all` runs them all.
Shared helpers (timing, memory, FLOPs, peak matmul, machine info, the real train step) live in
`bench.common`. `bench/data_build.py` (the data layer) is a separate script.
"""
