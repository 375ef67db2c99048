"""``vlgor imagine --shards N``: one imagined dataset made by N jobs side by side.

Rollouts ``0 .. rollouts-1`` are cut into N contiguous ranges. Each shard imagines its range
exactly as one process would (the same prompts, reset seeds and random first actions) into a
Minari root of its own inside the dataset's staging folder; the shards run as local processes
or Ray tasks (:mod:`vlgor_envs.workers`). Their datasets are then combined in rollout order
into the one dataset id, with one ``metadata["vlgor"]`` record for the whole, and the staging
folder is renamed into place: a killed run leaves nothing behind but a staging folder that the
next write removes. The model batches ``num_envs`` rollouts per call, so the episodes equal a
one-process run's when every shard holds at least ``num_envs`` rollouts.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

import minari
from tqdm import tqdm

from vlgor_envs.data.combine import write_combined
from vlgor_envs.data.staging import minari_root, staged_dataset
from vlgor_envs.imagination.rollouts import (
    ImagineConfig,
    imagine_rollouts,
    imagined_dataset_id,
    imagined_description,
    imagined_env_kwargs,
    imagined_record,
    nothing_kept_error,
    write_record,
)
from vlgor_envs.workers import worker_pool

SHARDS_FOLDER = "shards"


def shard_ranges(rollouts: int, shards: int) -> list[range]:
    """``shards`` contiguous ranges covering ``0 .. rollouts-1``, sizes differing by at most one."""
    bounds = [rollouts * index // shards for index in range(shards + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds)]


def imagine_shard(config: ImagineConfig, dataset_id: str, rollouts: range, root: Path) -> dict[str, Any]:
    """One shard: ``rollouts`` of ``config`` as ``dataset_id`` under the Minari root ``root``."""
    with minari_root(root):
        return imagine_rollouts(config, dataset_id, rollouts, allow_empty=True)


def _merged(stats: list[dict[str, Any]], rollouts: int) -> dict[str, Any]:
    """The shards' counts as one dataset's."""
    edits: Counter[str] = Counter()
    for shard in stats:
        edits.update(shard["kept_edits"])
    summed = {key: sum(shard[key] for shard in stats) for key in ("episodes", "dropped", "steps")}
    successes = sum(shard["imagined_successes"] for shard in stats)
    return {
        **summed,
        "successes": sum(shard["successes"] for shard in stats),
        "imagined_successes": successes,
        "imagined_success_rate": successes / rollouts,
        "kept_edits": dict(sorted(edits.items())),
    }


def _describe(
    combined: minari.MinariDataset, part: minari.MinariDataset, config: ImagineConfig, ranges: list[range]
) -> None:
    """What a one-process dataset's metadata says (Minari's combination drops it), and the shards."""
    env_kwargs = imagined_env_kwargs(config)
    kept = {key: part.storage.metadata.get(key) for key in ("algorithm_name", "eval_env_spec")}
    combined.storage.update_metadata(
        {
            **kept,
            "description": imagined_description(config.env, env_kwargs, config.rollouts, config.first_action),
            "combined_datasets": [f"{combined.id} rollouts {r.start}..{r.stop - 1}" for r in ranges],
        }
    )


def imagine_in_shards(config: ImagineConfig) -> minari.MinariDataset:
    """:func:`~vlgor_envs.imagination.rollouts.imagine` of ``config`` in ``config.shards`` jobs."""
    dataset_id = config.dataset_id or imagined_dataset_id(config.env, config.split, config.edits)
    ranges = shard_ranges(config.rollouts, config.shards)
    quiet = dataclasses.replace(config, progress=False)  # one bar over the shards instead
    start = time.perf_counter()
    with staged_dataset(dataset_id, config.overwrite, command="imagine") as staging:
        roots = [staging / SHARDS_FOLDER / str(index) for index in range(config.shards)]
        with worker_pool(config.shards, config.threads, config.backend, config.address) as pool:
            futures = [
                pool.submit(imagine_shard, quiet, dataset_id, part, root)
                for part, root in zip(ranges, roots, strict=True)
            ]
            bar = tqdm(futures, desc=f"{dataset_id} ({config.shards} shards)", disable=not config.progress)
            stats = [future.result() for future in bar]
        merged = _merged(stats, config.rollouts)
        if merged["episodes"] == 0:
            raise nothing_kept_error(config.rollouts)
        parts = []
        for root, shard in zip(roots, stats, strict=True):
            if shard["episodes"]:
                with minari_root(root):
                    parts.append(minari.load_dataset(dataset_id))
        combined = write_combined(parts, staging / dataset_id, dataset_id)  # packs the images
        _describe(combined, parts[0], config, ranges)
        record = imagined_record(config, merged, time.perf_counter() - start, config.shards)
        write_record(combined, config.env, record)
        shutil.rmtree(staging / SHARDS_FOLDER)
    return minari.load_dataset(dataset_id)
