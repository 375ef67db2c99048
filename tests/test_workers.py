"""Where long jobs run: Ray tasks give what this process gives, errors included, for the split
benchmark and for imagination in shards."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents import split_benchmark as splits_benchmark
from agents.split_benchmark import Args as SplitArgs
from vlgor_envs import workers
from vlgor_envs.data.staging import datasets_root
from vlgor_envs.imagination.rollouts import ImagineConfig, ImaginedMetadata, imagine
from vlgor_envs.imagination.shards import shard_ranges

# One pytest worker runs them all, so one local Ray (not one per worker) shares the two cores.
pytestmark = pytest.mark.xdist_group("ray")


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
        seeds=1,
        algos=("DiscreteBC",),
        regimes=("baseline",),
        threads=1,
        out=tmp_path / "local",
        results=tmp_path,
    )
    local = splits_benchmark.measure(args)
    on_ray_args = dataclasses.replace(args, backend="ray", workers=2, out=tmp_path / "ray")
    on_ray = splits_benchmark.measure(on_ray_args)
    # The same run on the same data: every cell, reference and curve equal.
    assert on_ray["table"] == local["table"]
    assert on_ray["references"] == local["references"]
    assert _untimed(on_ray["runs"]) == _untimed(local["runs"])
    assert (tmp_path / "ray" / "clevr" / "DiscreteBC" / "baseline" / "seed0" / "benchmark_run.json").is_file()


def test_shard_ranges_cover_every_rollout_once_in_order() -> None:
    assert shard_ranges(7, 3) == [range(0, 2), range(2, 4), range(4, 7)]
    assert [r for part in shard_ranges(100, 8) for r in part] == list(range(100))
    with pytest.raises(ValueError, match=r"shards must be <= rollouts \(3\), got 4"):
        imagine(ImagineConfig("clevr", rollouts=3, shards=4))


def test_imagination_in_shards_on_ray_gives_the_one_process_dataset(local_ray: None) -> None:
    # Random first actions: each shard must draw what one process draws at its rollouts.
    config = ImagineConfig(
        "clevr", rollouts=6, num_envs=2, max_steps=4, first_action="random", threads=1, progress=False
    )
    one = imagine(dataclasses.replace(config, dataset_id="vlgor/clevr/one-process-v0"))
    sharded_config = dataclasses.replace(config, dataset_id="vlgor/clevr/sharded-v0", shards=2, backend="ray")
    sharded = imagine(sharded_config)

    ones, shardeds = list(one.iterate_episodes()), list(sharded.iterate_episodes())
    assert len(ones) == len(shardeds) == 6
    for a, b in zip(ones, shardeds, strict=True):
        assert np.array_equal(a.observations["image"], b.observations["image"])
        assert list(a.observations["instruction"]) == list(b.observations["instruction"])
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
    episodes = range(one.total_episodes)
    assert list(one.storage.get_episode_metadata(episodes)) == list(
        sharded.storage.get_episode_metadata(episodes)
    )
    record, sharded_record = ImaginedMetadata.of(one), ImaginedMetadata.of(sharded)
    assert sharded_record.shards == 2
    untimed = {"imagination_seconds": 0.0, "shards": 1}
    assert dataclasses.replace(sharded_record, **untimed) == dataclasses.replace(record, **untimed)
    assert sharded.storage.metadata["description"] == one.storage.metadata["description"]
    # The shards were written inside the dataset's staging folder, which is gone.
    assert not list(datasets_root().glob(".vlgor-staging-*"))
