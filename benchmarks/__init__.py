"""Benchmarks: throughput, expert success and (later) the split benchmark; results in results/."""
