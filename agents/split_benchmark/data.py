"""The split benchmark's datasets: real, imagined and oracle data per preset, made when missing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import minari

from agents.split_benchmark.config import (
    EVAL_SPLITS,
    REAL_SOURCE,
    REGIMES,
    Args,
    Preset,
    Source,
    data_tag,
    drops_failures,
)
from vlgor_envs.data.collect import collect, collect_config, list_datasets
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.env import real_env_seed
from vlgor_envs.imagination.model import check_temperature
from vlgor_envs.imagination.rollouts import (
    ImagineConfig,
    ImaginedMetadata,
    checkpoint_digest,
    imagine,
    imagined_prompts,
)


def _ensure_real(env: str, preset: str, episodes: int, fresh: bool) -> str:
    dataset_id = f"vlgor/{env}/splits-{preset}-real-train-v0"
    if fresh or dataset_id not in list_datasets():
        collect(
            collect_config(env, "train", episodes=episodes, seed=0, dataset_id=dataset_id, overwrite=True)
        )
    return dataset_id


def imagined_splits_id(
    env: str, preset: str, split: str, edits: str, temperature: float, drop_failures: bool = False
) -> str:
    """Dataset id of one imagined source; a non-default temperature and dropped failures are part
    of the name."""
    suffix = ("" if edits == "both" else f"-{edits}") + data_tag(temperature, drop_failures)
    return f"vlgor/{env}/splits-{preset}-imagined-{split}{suffix}-v0"


def ensure_imagined(
    env: str,
    preset: str,
    split: str,
    edits: str,
    rollouts: int,
    seed: int,
    temperature: float,
    fresh: bool,
    drop_failures: bool = False,
) -> str:
    dataset_id = imagined_splits_id(env, preset, split, edits, temperature, drop_failures)
    if fresh or dataset_id not in list_datasets():
        # Names checked by `imagine` (the benchmark iterates over them as plain strings).
        imagine(
            ImagineConfig(
                cast(Any, env),
                split=cast(Any, split),
                rollouts=rollouts,
                seed=seed,
                edits=cast(Any, edits),
                drop_failures=drop_failures,
                dataset_id=dataset_id,
                overwrite=True,
                temperature=temperature,
            )
        )
        return dataset_id
    metadata = ImaginedMetadata.of(dataset_id)
    made_at = metadata.temperature
    keep_baselines = f"or `minari delete {dataset_id}` and pass --resume to keep the baseline runs"
    if metadata.keep_failures == drop_failures:
        kept = "only the successes" if drop_failures else "the failures too"
        raise ValueError(
            f"{dataset_id} should hold {kept}; pass --fresh-data to make all data again, {keep_baselines}"
        )
    if made_at != temperature:
        raise ValueError(
            f"{dataset_id} was imagined at temperature {made_at:g}, not {temperature:g}; "
            f"pass --fresh-data to make all data again, {keep_baselines}"
        )
    shipped = checkpoint_digest(shipped_checkpoint(env))
    if metadata.checkpoint_sha256 != shipped:
        raise ValueError(
            f"{dataset_id} was imagined by another model than the shipped {env} checkpoint "
            f"(SHA-256 {str(metadata.checkpoint_sha256)[:12]}, shipped {shipped[:12]}); "
            f"pass --fresh-data to make all data again, {keep_baselines}"
        )
    return dataset_id


def oracle_splits_id(env: str, preset: str, split: str, edits: str) -> str:
    """Dataset id of the expert's real rollouts of one imagined source's prompts."""
    return f"vlgor/{env}/splits-{preset}-oracle-{split}{'' if edits == 'both' else '-' + edits}-v0"


def ensure_oracle(
    env: str, preset: str, split: str, edits: str, rollouts: int, seed: int, fresh: bool
) -> str:
    """The scripted expert's real rollouts of the prompts :func:`ensure_imagined` imagines with
    the same arguments: same goals and start states (what perfect imagination would give)."""
    dataset_id = oracle_splits_id(env, preset, split, edits)
    if fresh or dataset_id not in list_datasets():
        prompts = imagined_prompts(env, split, rollouts, seed, edits)
        starts = [(real_env_seed(prompt.seed), prompt.goal) for prompt in prompts]
        collect(
            collect_config(
                env,
                split,
                episodes=rollouts,
                seed=seed,
                dataset_id=dataset_id,
                overwrite=True,
                progress=False,
            ),
            starts=starts,
        )
    return dataset_id


def ensure_dataset(args: Args, preset: Preset, source: Source) -> str:
    """The id of the dataset of ``source``, made if missing (or if ``--fresh-data``)."""
    if source == REAL_SOURCE:
        return _ensure_real(args.env, args.preset, preset.real_episodes, args.fresh_data)
    # One seed per split, so an edit ablation and the oracle start from the same real frames.
    seed = 10_000 * (1 + EVAL_SPLITS.index(source.split))
    rollouts = preset.imagined_rollouts[source.split]
    if source.kind == "oracle":
        return ensure_oracle(
            args.env, args.preset, source.split, source.edits, rollouts, seed, args.fresh_data
        )
    return ensure_imagined(
        args.env,
        args.preset,
        source.split,
        source.edits,
        rollouts,
        seed,
        args.temperature,
        args.fresh_data,
        drops_failures(args),
    )


def regime_sources(args: Args, preset: Preset, regimes: Sequence[str]) -> dict[str, list[Source]]:
    """The extra sources of each of ``regimes`` (:func:`regimes_of`) that the preset makes, checked."""
    check_temperature(args.temperature)
    sources = {r: [s for s in REGIMES[r] if preset.imagined_rollouts.get(s.split, 0) > 0] for r in regimes}
    for regime, chosen in sources.items():
        if regime != "baseline" and not chosen:
            raise ValueError(f"preset {args.preset!r} imagines no rollouts for regime {regime!r}")
    return sources


def dataset_sizes(ids: Sequence[str]) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for dataset_id in dict.fromkeys(ids):
        dataset = minari.load_dataset(dataset_id)
        metadata = dataset.storage.metadata.get("vlgor") or {}
        sizes[dataset_id] = {
            "episodes": int(dataset.total_episodes),
            "steps": int(dataset.total_steps),
            "imagined_success_rate": metadata.get("imagined_success_rate"),
            "imagined_by": metadata.get("checkpoint_sha256"),
        }
    return sizes
