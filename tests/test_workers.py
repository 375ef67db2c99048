"""Where long jobs run: Ray tasks give what this process gives, errors included."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import split_benchmark as splits_benchmark
from agents.split_benchmark import Args as SplitArgs
from vlgor_envs import workers


@pytest.fixture(scope="module")
def local_ray(minari_root: Path) -> Iterator[None]:
    """One local Ray of 2 CPUs for the module (its workers see the module's Minari root)."""
    with workers.ray_session(None, cpus=2):
        yield


def test_ray_tasks_return_what_this_process_returns_and_raise_its_errors(local_ray: None) -> None:
    with workers.worker_pool(2, threads=1, backend="ray") as pool:
        futures = [pool.submit(math.comb, n, 2) for n in range(4, 8)]
        failing = pool.submit(int, "seven")
        assert [f.result() for f in futures] == [math.comb(n, 2) for n in range(4, 8)]
        # The task's own error and one-line message, not Ray's multi-line wrapper.
        with pytest.raises(ValueError) as raised:
            failing.result()
    assert type(raised.value) is ValueError
    assert str(raised.value) == "invalid literal for int() with base 10: 'seven'"


def test_worker_pool_names_a_bad_backend_a_bad_count_and_a_missing_ray(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def open_pool(workers_: int, backend: Any) -> None:
        with workers.worker_pool(workers_, backend=backend):
            pass

    with pytest.raises(ValueError, match="backend must be one of local, ray, got 'dask'"):
        open_pool(2, "dask")
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        open_pool(0, "ray")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    with pytest.raises(ValueError, match=r"needs Ray: pip install 'vlgor\[ray\]'"):
        open_pool(2, "ray")


def _untimed(record: Any) -> Any:
    """``record`` without the wall times, which differ between any two runs."""
    if isinstance(record, dict):
        return {k: _untimed(v) for k, v in record.items() if "seconds" not in k}
    if isinstance(record, list):
        return [_untimed(v) for v in record]
    return record


def test_split_benchmark_on_ray_gives_the_local_table(local_ray: None, tmp_path: Path) -> None:
    args = SplitArgs(
        preset="tiny",
        seeds=2,
        algos=("DiscreteBC",),
        regimes=("baseline",),
        threads=1,
        out=tmp_path / "local",
        results=tmp_path,
    )
    local = splits_benchmark.measure(args)
    on_ray_args = dataclasses.replace(args, backend="ray", workers=2, out=tmp_path / "ray")
    on_ray = splits_benchmark.measure(on_ray_args)
    # The same runs on the same data: every cell, reference and curve equal, seed by seed.
    assert on_ray["table"] == local["table"]
    assert on_ray["references"] == local["references"]
    assert _untimed(on_ray["runs"]) == _untimed(local["runs"])
    assert (tmp_path / "ray" / "clevr" / "DiscreteBC" / "baseline" / "seed1" / "benchmark_run.json").is_file()
