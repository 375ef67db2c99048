"""Benchmarks: throughput, expert success and (later) the split benchmark; results in results/."""

import vlgor_envs  # noqa: F401  (first: it quiets the old gym that d3rlpy imports)
