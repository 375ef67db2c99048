"""Scripted-expert collection into Minari datasets, written atomically, and their listing.

A dataset ``vlgor/<env>/real-<split>-v0`` holds expert rollouts of a real env with lossless
images. Where each piece of provenance lives:

- the env spec (with its ``split``/``image_size``/``task`` kwargs): Minari's ``env_spec``
  and ``eval_env_spec``, so ``dataset.recover_environment()`` rebuilds the env;
- the collection policy: Minari's ``algorithm_name``, and ``metadata["vlgor"]["policy"]``;
- seed, noise, counts, split, image size: ``metadata["vlgor"]`` (a JSON object stored with
  Minari's dataset metadata);
- per step: ``infos["object_state"]`` (the registry entry's ``object_state_info``), the object state the
  imagination model learns to predict;
- per episode: ``instruction``, ``split``, ``goal`` (:meth:`Goal.to_json`) and ``success`` in
  the episode metadata (``dataset.storage.get_episode_metadata([i])``), next to Minari's own
  ``seed`` (episode ``i`` is reset with ``seed + i``) and reward statistics.

Atomicity (:mod:`vlgor_envs.data.staging`, also used by ``vlgor imagine``): Minari writes the
complete dataset into a hidden staging folder, which is then renamed into place; one writer
per id; what a hard kill leaves behind is recovered by the next write or ``vlgor datasets list``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import gymnasium as gym
import h5py
import minari
import numpy as np
from gymnasium import spaces
from minari.data_collector.callbacks import StepDataCallback
from tqdm import tqdm

import vlgor_envs  # noqa: F401  (registers the VLGOR-* ids)
from vlgor_envs import registry
from vlgor_envs.data.sharing import FORMAT_KEY, format_metadata
from vlgor_envs.data.staging import datasets_root, staged_dataset
from vlgor_envs.language import language_of
from vlgor_envs.language.goal import Goal
from vlgor_envs.registry import EnvName

#: Namespace of every dataset this package writes.
NAMESPACE = "vlgor"
#: hdf5 filters offered, with their level (gzip 4: measured as small as 9 and as fast as 1).
_COMPRESSIONS: dict[str, int | None] = {"gzip": 4, "lzf": None, "none": None}
#: Frames per hdf5 chunk along time when repacking.
_CHUNK_STEPS = 32


def default_dataset_id(env: str, split: str, task: str | None = None) -> str:
    """``vlgor/<env>/real-<split>-v0`` (``real-<split>-<task>-v0`` for a single task)."""
    name = f"real-{split}" if task is None else f"real-{split}-{task}"
    return f"{NAMESPACE}/{env}/{name}-v0"


def make_expert(env: str) -> Any:
    """A new scripted expert of env ``env`` (its registry entry's ``expert``)."""
    return registry.load(registry.entry(env).expert)()


def random_action(space: gym.Space[Any], rng: np.random.Generator) -> Any:
    """A uniformly random action of a ``Discrete`` or ``Box`` space, drawn from ``rng``."""
    if isinstance(space, spaces.Discrete):
        return np.int64(space.start + rng.integers(space.n))
    if isinstance(space, spaces.Box):
        return rng.uniform(space.low, space.high).astype(space.dtype)
    raise TypeError(f"no uniform action sampler for {space}")


def noisy_policy(
    expert: Any, action_space: gym.Space[Any], noise: float, rng: np.random.Generator
) -> Callable[[dict[str, Any]], Any]:
    """The expert's action, or with probability ``noise`` a uniformly random one.

    One ``rng.random()`` is drawn every step (whatever ``noise`` is) and a random action
    only when it is below ``noise``, so a run is reproducible from ``rng``'s seed.
    """

    def act(info: dict[str, Any]) -> Any:
        if rng.random() < noise:
            return random_action(action_space, rng)
        return expert.act(info)

    return act


_GOAL_JSON = "goal_json"


class GoalFromJson(gym.Wrapper[Any, Any, Any, Any], gym.utils.RecordConstructorArgs):
    """Turns the reset option ``goal_json`` (:meth:`Goal.to_json`) into the env's ``goal``.

    Collection with given goals wraps its env in it, since Minari stores reset options as
    hdf5 attributes; it is recorded in the dataset's env spec, so the env is recoverable.
    """

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        options = dict(options or {})
        if _GOAL_JSON in options:
            options["goal"] = Goal.from_json(options.pop(_GOAL_JSON))
        return self.env.reset(seed=seed, options=options or None)


class ObjectStateCallback(StepDataCallback):
    """Records only ``infos["object_state"]``: the env's object state, flattened to float32.

    The full ``info`` holds a :class:`Goal` and strings, which Minari cannot store.
    """

    def __init__(self, info_key: str) -> None:
        self.info_key = info_key

    def __call__(self, env: gym.Env[Any, Any], obs: Any, info: dict[str, Any], **kwargs: Any) -> Any:
        step_data = super().__call__(env, obs, info, **kwargs)
        state = np.asarray(info[self.info_key], dtype=np.float32).ravel()
        step_data["info"] = {"object_state": state}
        return step_data


def repack_hdf5(path: Path, compression: str) -> None:
    """Rewrite Minari's hdf5 file with a lossless filter, in place (same groups and attrs).

    Minari lets h5py pick chunk shapes, which split the 3 colour channels into chunks of 2
    and so store images about 1.4x their raw size; here every array is chunked by up to
    :data:`_CHUNK_STEPS` whole steps and compressed. h5py decompresses transparently, so
    Minari reads the result unchanged.
    """
    packed = path.with_suffix(".packing")
    with h5py.File(path, "r") as source, h5py.File(packed, "w") as target:
        target.attrs.update(dict(source.attrs))

        def copy(name: str, item: h5py.Group | h5py.Dataset) -> None:
            if isinstance(item, h5py.Group):
                target.require_group(name).attrs.update(dict(item.attrs))
                return
            if item.dtype.kind == "O" or item.ndim == 0 or item.size == 0:
                out = target.create_dataset(name, data=item[()], dtype=item.dtype)
            else:
                out = target.create_dataset(
                    name,
                    data=item[()],
                    chunks=(min(len(item), _CHUNK_STEPS), *item.shape[1:]),
                    compression=compression,
                    compression_opts=_COMPRESSIONS[compression],
                )
            out.attrs.update(dict(item.attrs))

        source.visititems(copy)
    os.replace(packed, path)


#: The collectable envs and the language splits, as the command line offers them.
SplitName = Literal["train", "rephrasing", "counterfactual", "hard"]


def collect_config(env: str, split: str = "train", **fields: Any) -> CollectConfig:
    """A :class:`CollectConfig` from plain strings (names are checked when it is collected)."""
    return CollectConfig(cast(EnvName, env), cast(SplitName, split), **fields)


@dataclasses.dataclass
class CollectConfig:
    """Roll a scripted expert out and write a Minari dataset (lossless images, atomic write).

    ``vlgor collect`` parses this and :func:`collect` takes it.
    """

    env: EnvName
    """Which environment."""
    split: SplitName = "train"
    """Language split the goals come from."""
    episodes: int = 2000
    """Number of episodes, episode i reset with seed `seed + i` (2,000 CLEVR episodes take
    about 4 minutes here)."""
    seed: int = 0
    """Base seed of the episodes and of the action noise."""
    noise: float = 0.0
    """Probability per step of a uniformly random action instead of the expert's."""
    image_size: int = 64
    """Side of the square frames in pixels."""
    dataset_id: str | None = None
    """Minari id; default `vlgor/<env>/real-<split>-v0`."""
    overwrite: bool = False
    """Replace an existing dataset of that id (only once the new one is done)."""
    data_format: Literal["hdf5", "arrow"] = "hdf5"
    """Minari storage format (arrow needs pyarrow)."""
    task: str | None = None
    """Meta-World only: collect one task of the split (e.g. `reach`)."""
    compression: Literal["gzip", "lzf", "none"] = "gzip"
    """Lossless hdf5 filter (gzip: ~8x smaller than Minari's own layout on CLEVR frames;
    none: Minari's layout as written)."""
    progress: bool = True
    """Show a progress bar."""


def _check(config: CollectConfig, starts: Sequence[tuple[int, Goal]] | None) -> None:
    if config.episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {config.episodes}")
    if not 0.0 <= config.noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {config.noise}")
    if config.compression not in _COMPRESSIONS:
        raise ValueError(f"compression must be one of {list(_COMPRESSIONS)}, got {config.compression!r}")
    if config.data_format not in ("hdf5", "arrow"):
        raise ValueError(f"data_format must be 'hdf5' or 'arrow', got {config.data_format!r}")
    if config.data_format == "arrow" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError("data_format='arrow' needs pyarrow: pip install 'minari[arrow]', or use 'hdf5'")
    if starts is not None and len(starts) != config.episodes:
        raise ValueError(f"starts gives {len(starts)} episodes, but episodes={config.episodes}")
    task_names = language_of(config.env).TASK_NAMES
    if config.task is not None and config.task not in task_names:
        raise ValueError(
            f"task={config.task!r} is not a task of env {config.env!r}; "
            + (f"choose one of {list(task_names)}" if task_names else "its goals have no named tasks")
        )


def collect(config: CollectConfig, starts: Sequence[tuple[int, Goal]] | None = None) -> minari.MinariDataset:
    """Roll the scripted expert of ``config.env`` out and write the episodes as a Minari dataset.

    Args:
        config: What to collect and where (the fields of ``vlgor collect``).
        starts: Given goals instead of the split's samples: episode ``i`` is reset with seed
            ``starts[i][0]`` and ``options={"goal": starts[i][1]}``; ``config.episodes`` must
            equal their number (e.g. real expert rollouts of an imagined dataset's prompts).

    Returns:
        The dataset, loaded from its final location.

    Raises:
        ValueError: Unknown env, bad split/task/noise/episodes or malformed id.
        FileExistsError: ``dataset_id`` exists and ``overwrite`` is false.
    """
    env_id = registry.entry(config.env).env_id
    _check(config, starts)
    dataset_id = config.dataset_id or default_dataset_id(config.env, config.split, config.task)
    env_kwargs: dict[str, Any] = {"split": config.split, "image_size": config.image_size}
    if config.task is not None:
        env_kwargs["task"] = config.task
    compression = None if config.compression == "none" else config.compression
    packed = compression if config.data_format == "hdf5" else None
    with staged_dataset(dataset_id, config.overwrite) as staging:
        stats = _collect_staged(config, env_id, env_kwargs, dataset_id, starts)
        data = staging / dataset_id / "data"
        if packed is not None:
            for path in data.glob("*.hdf5"):
                repack_hdf5(path, packed)
        minari.MinariDataset(data).storage.update_metadata(
            {
                "vlgor": {"env": config.env, **stats, "compression": packed},
                FORMAT_KEY: format_metadata(config.env, imagined=False),
            }
        )
    return minari.load_dataset(dataset_id)


def _run_episodes(
    collector: minari.DataCollector,
    policy: Callable[[dict[str, Any]], Any],
    config: CollectConfig,
    dataset_id: str,
    starts: Sequence[tuple[int, Goal]] | None,
) -> tuple[list[dict[str, Any]], int]:
    """Each episode's metadata (instruction, split, goal, success), and the steps taken."""
    episode_metadata: list[dict[str, Any]] = []
    steps = successes = 0
    bar = tqdm(range(config.episodes), desc=dataset_id, unit="ep", disable=not config.progress)
    for episode in bar:
        if starts is None:
            observation, info = collector.reset(seed=config.seed + episode)
        else:
            start_seed, start_goal = starts[episode]
            # Minari stores reset options as hdf5 attributes: a string, not a Goal.
            observation, info = collector.reset(seed=start_seed, options={_GOAL_JSON: start_goal.to_json()})
        goal, instruction = info["goal"], observation["instruction"]
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = collector.step(policy(info))
            steps += 1
        successes += bool(info["is_success"])
        episode_metadata.append(
            {
                "instruction": instruction,
                "split": config.split,
                "goal": goal.to_json(),
                "success": bool(info["is_success"]),
            }
        )
        bar.set_postfix(success=f"{successes / (episode + 1):.2f}")
    return episode_metadata, steps


def _collect_staged(
    config: CollectConfig,
    env_id: str,
    env_kwargs: dict[str, Any],
    dataset_id: str,
    starts: Sequence[tuple[int, Goal]] | None,
) -> dict[str, Any]:
    """Collect into the current Minari root; returns the dataset-level ``vlgor`` metadata."""
    expert, info_key = make_expert(config.env), registry.entry(config.env).object_state_info
    env = gym.make(env_id, **env_kwargs)
    collector = minari.DataCollector(
        env if starts is None else GoalFromJson(env),
        # Minari instantiates the callback class itself, without arguments.
        step_data_callback=functools.partial(ObjectStateCallback, info_key),
        record_infos=True,
        jpeg_encoding=False,
        data_format=config.data_format,
    )
    policy = noisy_policy(expert, collector.action_space, config.noise, np.random.default_rng(config.seed))
    policy_name, seeds = type(expert).__name__, f"episode i reset with seed {config.seed}+i"
    start = time.perf_counter()
    try:
        episode_metadata, steps = _run_episodes(collector, policy, config, dataset_id, starts)
        seconds = time.perf_counter() - start
        with warnings.catch_warnings():
            # Minari warns about every optional field left empty (author, permalink, ...).
            warnings.filterwarnings("ignore", message=r".*is set to None", category=UserWarning)
            dataset = collector.create_dataset(
                dataset_id,
                eval_env=collector.env.spec,
                algorithm_name=f"{policy_name} (scripted expert, noise={config.noise})",
                author="vlgor",
                description=(
                    f"{config.episodes} episodes of {policy_name} in {env_id} "
                    f"({', '.join(f'{k}={v}' for k, v in env_kwargs.items())}); "
                    + (seeds if starts is None else "given goals and seeds")
                    + f"; with probability {config.noise} per step a uniformly random "
                    "action. Images are lossless; each episode's metadata holds its "
                    "instruction, split and goal (JSON)."
                ),
            )
        dataset.storage.update_episode_metadata(episode_metadata)
    finally:
        collector.close()
    return {
        "env_id": env_id,
        **env_kwargs,
        "policy": policy_name,
        "noise": config.noise,
        "seed": config.seed,
        "episode_seeds": (
            f"seed + i for episode i in [0, {config.episodes})"
            if starts is None
            else "given with each episode's goal (Minari's episode seed)"
        ),
        "episodes": config.episodes,
        "steps": steps,
        "successes": sum(bool(m["success"]) for m in episode_metadata),
        "collection_seconds": round(seconds, 3),
    }


def list_datasets() -> list[str]:
    """Ids of the ``vlgor/...`` Minari datasets present locally, sorted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari warns about any misconfigured folder
        return sorted(minari.list_local_datasets(prefix=NAMESPACE))


def _bytes_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def describe(dataset_id: str) -> dict[str, Any]:
    """Summary of a local dataset: counts, env, split, policy, noise, seed, size, format.

    Raises:
        FileNotFoundError: No dataset of that id exists locally (names the ones that do).
    """
    path = datasets_root() / dataset_id / "data"
    if not (path / "metadata.json").is_file():
        present = list_datasets()
        raise FileNotFoundError(
            f"no dataset {dataset_id!r} in {datasets_root()}; present: {present or 'none'} "
            "(`vlgor datasets list`; make one with `vlgor collect`)"
        )
    metadata = json.loads((path / "metadata.json").read_text())
    ours = metadata.get("vlgor", {})
    return {
        "dataset_id": dataset_id,
        "episodes": metadata.get("total_episodes"),
        "steps": metadata.get("total_steps"),
        "env_id": ours.get("env_id") or json.loads(metadata.get("env_spec", "{}")).get("id"),
        "split": ours.get("split"),
        "task": ours.get("task"),
        "image_size": ours.get("image_size"),
        "policy": ours.get("policy", metadata.get("algorithm_name")),
        "noise": ours.get("noise"),
        "seed": ours.get("seed"),
        "successes": ours.get("successes"),
        "bytes": _bytes_on_disk(path),
        "data_format": metadata.get("data_format"),
        "compression": ours.get("compression"),
        "jpeg_encoding": metadata.get("jpeg_encoding", False),
        "path": str(path.parent),
    }
