"""Running the benchmarks on a lent GPU machine: wheels to carry, one suite script, and its summary."""
