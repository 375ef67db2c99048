"""Is it the imagined frames? Imagined CLEVR datasets with each frame replaced by the real one.

+VLGOR's imagined data costs the learner its train relations (see the steps pilot), and neither
keeping only the short, mostly real rollouts nor a steering-grounded model gives them back.
This pilot separates the frames from the labels: every episode of an imagined dataset keeps
its instruction, actions, rewards and outcome, but its frames become the ones the real env
shows after the same actions from the same start (``VLGOR-CLEVR-v0``, reset with the episode's
seed and goal and stepped on past its real outcome, so the lengths match). Training BC on these
datasets (``benchmarks.steps_pilot --extra``) beside the imagined originals tells whether the
frames or the labels spoil the learner. The real env is used here to make a control for a
measurement, never as a filter or a source of the benchmark's data.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import tyro
from minari.data_collector import EpisodeBuffer

from benchmarks.imagined_replay import check_start, imagined_episodes, reset_as_imagined
from vlgor_envs import registry
from vlgor_envs.data.sharing import FORMAT_KEY
from vlgor_envs.data.staging import staged_dataset
from vlgor_envs.language.goal import Goal

#: The split benchmark's +VLGOR datasets of the `cpu` preset (imagined successes only).
TABLE_DATASETS = tuple(
    f"vlgor/clevr/splits-cpu-imagined-{split}-successes-v0"
    for split in ("rephrasing", "counterfactual", "hard")
)


@dataclass
class Args:
    datasets: tuple[str, ...] = TABLE_DATASETS
    """Imagined CLEVR datasets (written by `vlgor imagine`) to copy with real frames."""
    suffix: str = "-realframes"
    """Appended to each dataset's name (before the version) to make the copy's id."""
    overwrite: bool = False


def real_frames_id(dataset_id: str, suffix: str) -> str:
    """``vlgor/clevr/x-v0`` -> ``vlgor/clevr/x<suffix>-v0``."""
    name, version = dataset_id.rsplit("-v", 1)
    return f"{name}{suffix}-v{version}"


def real_frames(real: gym.Env[Any, Any], seed: int, goal: Goal, actions: Sequence[Any]) -> np.ndarray:
    """The real env's frames from the reset with ``seed`` and ``goal`` through every action."""
    observation, _ = reset_as_imagined(real, seed, goal)
    frames = [observation["image"]]
    for action in actions:  # on past the real outcome: the frames of the imagined actions
        observation, *_ = real.step(action)
        frames.append(observation["image"])
    return np.stack(frames)


def with_real_frames(dataset: minari.MinariDataset, progress: bool = True) -> list[EpisodeBuffer]:
    """Every episode of ``dataset`` with its frames replaced by the real ones."""
    real = gym.make(registry.entry("clevr").env_id)
    buffers = []
    try:
        for episode, meta, goal in imagined_episodes(dataset, progress):
            frames = real_frames(real, int(meta["seed"]), goal, episode.actions)
            check_start(dataset.id, meta, episode, frames[0])
            buffers.append(
                EpisodeBuffer(
                    seed=int(meta["seed"]),
                    observations={"image": frames, "instruction": [str(meta["instruction"])] * len(frames)},
                    actions=np.asarray(episode.actions),
                    rewards=list(episode.rewards),
                    terminations=list(episode.terminations),
                    truncations=list(episode.truncations),
                    infos={"is_success": np.asarray(episode.infos["is_success"])},
                )
            )
    finally:
        real.close()
    return buffers


def copy_with_real_frames(source_id: str, target_id: str, overwrite: bool) -> None:
    """Write ``target_id``: ``source_id``'s episodes and metadata with the real frames."""
    source = minari.load_dataset(source_id)
    buffers = with_real_frames(source)
    episode_metadata = list(source.storage.get_episode_metadata(range(source.total_episodes)))
    spec_env = gym.make(registry.entry("clevr").env_id)  # the imagined env's spaces, without its model
    try:
        with staged_dataset(target_id, overwrite, command="pilot"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*is set to None", category=UserWarning)
            copy = minari.create_dataset_from_buffers(
                target_id,
                buffers,
                env=spec_env,
                algorithm_name="imagined actions replayed in the real env",
                author="vlgor",
                description=f"{source_id} with each frame replaced by the real env's after the same actions",
                data_format="hdf5",
                jpeg_encoding=False,
            )
            copy.storage.update_episode_metadata(
                [{k: v for k, v in meta.items() if k != "id"} for meta in episode_metadata]
            )
            copy.storage.update_metadata({k: source.storage.metadata[k] for k in ("vlgor", FORMAT_KEY)})
    finally:
        spec_env.close()


def main(args: Args) -> None:
    for dataset_id in args.datasets:
        target = real_frames_id(dataset_id, args.suffix)
        copy_with_real_frames(dataset_id, target, args.overwrite)
        print("wrote", target)


if __name__ == "__main__":
    main(tyro.cli(Args))
