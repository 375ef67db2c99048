"""Scripted-expert collection into Minari datasets, written atomically, and their listing.

A dataset ``vlgor/<env>/real-<split>-v0`` holds expert rollouts of a real env with lossless
images. Where each piece of provenance lives:

- the env spec (with its ``split``/``image_size``/``task`` kwargs): Minari's ``env_spec``
  and ``eval_env_spec``, so ``dataset.recover_environment()`` rebuilds the env;
- the collection policy: Minari's ``algorithm_name``, and ``metadata["vlgor"]["policy"]``;
- seed, noise, counts, split, image size: ``metadata["vlgor"]`` (a JSON object stored with
  Minari's dataset metadata);
- per step: ``infos["object_state"]`` (:data:`OBJECT_STATE_INFO`), the object state the
  imagination model learns to predict;
- per episode: ``instruction``, ``split``, ``goal`` (:meth:`Goal.to_json`) and ``success`` in
  the episode metadata (``dataset.storage.get_episode_metadata([i])``), next to Minari's own
  ``seed`` (episode ``i`` is reset with ``seed + i``) and reward statistics.

Atomicity (:mod:`vlgor_envs.data.staging`, also used by ``vlgor imagine``): Minari writes the
complete dataset into a hidden staging folder, which is then renamed into place; one writer
per id; what a hard kill leaves behind is recovered by the next write or ``vlgor datasets list``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import minari
import numpy as np
from gymnasium import spaces
from minari.data_collector.callbacks import StepDataCallback
from tqdm import tqdm

import vlgor_envs  # noqa: F401  (registers the VLGOR-* ids)
from vlgor_envs.data.staging import datasets_root, staged_dataset
from vlgor_envs.language.goal import Goal

#: Collectable envs: name -> (Gymnasium id, scripted expert as ``module:Class``).
ENVS: dict[str, tuple[str, str]] = {
    "clevr": ("VLGOR-CLEVR-v0", "vlgor_envs.clevr.expert:default_expert"),
    "metaworld": ("VLGOR-MetaWorld-v0", "vlgor_envs.metaworld.expert:MetaWorldExpert"),
}
#: The ``info`` entry recorded per step as ``infos["object_state"]`` (flattened float32):
#: ball centres ``(5, 2)`` for CLEVR, Meta-World's 39-d state for Meta-World. The
#: imagination model learns to predict it.
OBJECT_STATE_INFO: dict[str, str] = {"clevr": "ball_positions", "metaworld": "state"}
#: Namespace of every dataset this package writes.
NAMESPACE = "vlgor"
#: hdf5 filters offered, with their level (gzip 4: measured as small as 9 and as fast as 1).
_COMPRESSIONS: dict[str | None, int | None] = {"gzip": 4, "lzf": None, None: None}
#: Frames per hdf5 chunk along time when repacking.
_CHUNK_STEPS = 32


def default_dataset_id(env: str, split: str, task: str | None = None) -> str:
    """``vlgor/<env>/real-<split>-v0`` (``real-<split>-<task>-v0`` for a single task)."""
    name = f"real-{split}" if task is None else f"real-{split}-{task}"
    return f"{NAMESPACE}/{env}/{name}-v0"


def _env_entry(env: str) -> tuple[str, str]:
    if env not in ENVS:
        raise ValueError(f"unknown env {env!r}; choose one of {sorted(ENVS)}")
    return ENVS[env]


def make_expert(path: str) -> Any:
    """A new scripted expert from its ``module:callable`` path (the second entry of :data:`ENVS`)."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)()


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


def collect(
    env: str,
    split: str = "train",
    episodes: int = 100,
    seed: int = 0,
    noise: float = 0.0,
    image_size: int = 64,
    dataset_id: str | None = None,
    overwrite: bool = False,
    data_format: str = "hdf5",
    task: str | None = None,
    progress: bool = True,
    compression: str | None = "gzip",
    starts: Sequence[tuple[int, Goal]] | None = None,
) -> minari.MinariDataset:
    """Roll the scripted expert of ``env`` out and write the episodes as a Minari dataset.

    Args:
        env: ``"clevr"`` or ``"metaworld"``.
        split: The language split the env samples goals from.
        episodes: Number of episodes; episode ``i`` is reset with seed ``seed + i``.
        seed: Base seed of the episodes and of the action-noise generator.
        noise: Probability per step of a uniformly random action instead of the expert's.
        image_size: Side of the square frames in pixels.
        dataset_id: Minari id; default ``vlgor/<env>/real-<split>-v0``.
        overwrite: Replace an existing dataset of that id (only once the new one is done).
        data_format: Minari storage, ``"hdf5"`` or ``"arrow"`` (needs ``pyarrow``).
        task: Meta-World only: restrict the split to one task name.
        progress: Show a tqdm progress bar.
        compression: hdf5 only: ``"gzip"`` (default; lossless, ~8x smaller than Minari's
            own layout on CLEVR frames), ``"lzf"`` or ``None`` (Minari's layout as written).
        starts: Given goals instead of the split's samples: episode ``i`` is reset with seed
            ``starts[i][0]`` and ``options={"goal": starts[i][1]}``; ``episodes`` must equal
            their number (e.g. real expert rollouts of an imagined dataset's prompts).

    Returns:
        The dataset, loaded from its final location.

    Raises:
        ValueError: Unknown env, bad split/task/noise/episodes or malformed id.
        FileExistsError: ``dataset_id`` exists and ``overwrite`` is false.
    """
    env_id, expert_path = _env_entry(env)
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"noise must be a probability in [0, 1], got {noise}")
    if compression not in _COMPRESSIONS:
        raise ValueError(f"compression must be one of {list(_COMPRESSIONS)}, got {compression!r}")
    if data_format not in ("hdf5", "arrow"):
        raise ValueError(f"data_format must be 'hdf5' or 'arrow', got {data_format!r}")
    if data_format == "arrow" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError("data_format='arrow' needs pyarrow: pip install 'minari[arrow]', or use 'hdf5'")
    if starts is not None and len(starts) != episodes:
        raise ValueError(f"starts gives {len(starts)} episodes, but episodes={episodes}")
    if task is not None and env != "metaworld":
        raise ValueError(f"task= is only supported for env 'metaworld', not {env!r}")
    dataset_id = dataset_id or default_dataset_id(env, split, task)
    env_kwargs: dict[str, Any] = {"split": split, "image_size": image_size}
    if task is not None:
        env_kwargs["task"] = task

    with staged_dataset(dataset_id, overwrite) as staging:
        stats = _collect_staged(
            env_id,
            expert_path,
            env_kwargs,
            dataset_id,
            episodes,
            seed,
            noise,
            data_format,
            progress,
            OBJECT_STATE_INFO[env],
            starts,
        )
        staged = staging / dataset_id
        if data_format == "hdf5" and compression is not None:
            for path in (staged / "data").glob("*.hdf5"):
                repack_hdf5(path, compression)
        packed = compression if data_format == "hdf5" else None
        minari.MinariDataset(staged / "data").storage.update_metadata(
            {"vlgor": {"env": env, **stats, "compression": packed}}
        )
    return minari.load_dataset(dataset_id)


def _collect_staged(
    env_id: str,
    expert_path: str,
    env_kwargs: dict[str, Any],
    dataset_id: str,
    episodes: int,
    seed: int,
    noise: float,
    data_format: str,
    progress: bool,
    object_state_info: str,
    starts: Sequence[tuple[int, Goal]] | None = None,
) -> dict[str, Any]:
    """Collect into the current Minari root; returns the dataset-level ``vlgor`` metadata."""
    expert = make_expert(expert_path)
    env = gym.make(env_id, **env_kwargs)
    collector = minari.DataCollector(
        env if starts is None else GoalFromJson(env),
        # Minari instantiates the callback class itself, without arguments.
        step_data_callback=functools.partial(ObjectStateCallback, object_state_info),
        record_infos=True,
        jpeg_encoding=False,
        data_format=data_format,
    )
    policy = noisy_policy(expert, collector.action_space, noise, np.random.default_rng(seed))
    episode_metadata: list[dict[str, Any]] = []
    steps = successes = 0
    start = time.perf_counter()
    try:
        bar = tqdm(range(episodes), desc=dataset_id, unit="ep", disable=not progress)
        for episode in bar:
            if starts is None:
                observation, info = collector.reset(seed=seed + episode)
            else:
                start_seed, start_goal = starts[episode]
                # Minari stores reset options as hdf5 attributes: a string, not a Goal.
                options = {_GOAL_JSON: start_goal.to_json()}
                observation, info = collector.reset(seed=start_seed, options=options)
            goal, instruction = info["goal"], observation["instruction"]
            terminated = truncated = False
            while not (terminated or truncated):
                _, _, terminated, truncated, info = collector.step(policy(info))
                steps += 1
            successes += bool(info["is_success"])
            episode_metadata.append(
                {
                    "instruction": instruction,
                    "split": env_kwargs["split"],
                    "goal": goal.to_json(),
                    "success": bool(info["is_success"]),
                }
            )
            bar.set_postfix(success=f"{successes / (episode + 1):.2f}")
        seconds = time.perf_counter() - start
        policy_name = type(expert).__name__
        with warnings.catch_warnings():
            # Minari warns about every optional field left empty (author, permalink, ...).
            warnings.filterwarnings("ignore", message=r".*is set to None", category=UserWarning)
            dataset = collector.create_dataset(
                dataset_id,
                eval_env=collector.env.spec,
                algorithm_name=f"{policy_name} (scripted expert, noise={noise})",
                author="vlgor",
                description=(
                    f"{episodes} episodes of {policy_name} in {env_id} "
                    f"({', '.join(f'{k}={v}' for k, v in env_kwargs.items())}); "
                    + (f"episode i reset with seed {seed}+i" if starts is None else "given goals and seeds")
                    + f"; with probability {noise} per step a uniformly random "
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
        "noise": noise,
        "seed": seed,
        "episode_seeds": (
            f"seed + i for episode i in [0, {episodes})"
            if starts is None
            else "given with each episode's goal (Minari's episode seed)"
        ),
        "episodes": episodes,
        "steps": steps,
        "successes": successes,
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
