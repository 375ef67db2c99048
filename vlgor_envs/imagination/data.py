"""Training pairs for the imagination model, read from our Minari datasets.

Every step ``t`` of an episode gives one pair: ``(s_t, a_t, G)`` as input and ``(s_{t+h},
a_{t+h}, object state at t+h)`` as target. ``s_{t+h}`` is clipped to the episode's last frame;
``a_{t+h}`` exists only for ``t + h < T`` (``next_action_valid``). Frames are stored once per
episode and the pairs index them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import minari
import numpy as np
import numpy.typing as npt
from tqdm import tqdm


@dataclasses.dataclass
class Transitions:
    """All frames of some episodes plus index arrays describing the training pairs."""

    frames: npt.NDArray[np.uint8]  # (F, H, W, 3): every observation of every episode
    states: npt.NDArray[np.float32]  # (F, S): recorded object state of each frame
    current: npt.NDArray[np.int64]  # (N,): frame index of s_t
    future: npt.NDArray[np.int64]  # (N,): frame index of s_{t+h}
    actions: npt.NDArray[np.generic]  # (N,) int64 or (N, A) float32: a_t
    next_actions: npt.NDArray[np.generic]  # a_{t+h} (a copy of a_t where it does not exist)
    next_action_valid: npt.NDArray[np.bool_]  # (N,)
    instructions: list[str]  # (N,)
    episode: npt.NDArray[np.int64]  # (N,): episode number, across all datasets

    def __len__(self) -> int:
        return len(self.current)

    def subset(self, size: int) -> Transitions:
        """The first ``size`` pairs (whole leading episodes' worth; frames kept)."""
        if size > len(self):
            raise ValueError(f"asked for {size} transitions but only {len(self)} are available")
        keep = slice(0, size)
        return dataclasses.replace(
            self,
            current=self.current[keep],
            future=self.future[keep],
            actions=self.actions[keep],
            next_actions=self.next_actions[keep],
            next_action_valid=self.next_action_valid[keep],
            instructions=self.instructions[keep],
            episode=self.episode[keep],
        )


def _instruction(dataset: minari.MinariDataset, index: int) -> str:
    metadata = dataset.storage.get_episode_metadata([index])
    return str(next(iter(metadata)).get("instruction", ""))


def load_transitions(
    dataset_ids: Sequence[str], horizon: int = 1, max_transitions: int | None = None, progress: bool = True
) -> Transitions:
    """Training pairs of the local Minari datasets ``dataset_ids``, in dataset then episode order.

    Raises:
        FileNotFoundError: a dataset is missing (names ``vlgor collect`` to make it).
        ValueError: a dataset has no recorded object state (collected before it was recorded).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    frames: list[np.ndarray] = []
    states: list[np.ndarray] = []
    current: list[np.ndarray] = []
    future: list[np.ndarray] = []
    actions: list[np.ndarray] = []
    next_actions: list[np.ndarray] = []
    valid: list[np.ndarray] = []
    instructions: list[str] = []
    episodes: list[np.ndarray] = []
    offset = pairs = episode_number = 0
    for dataset_id in dataset_ids:
        try:
            dataset = minari.load_dataset(dataset_id)
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"no local Minari dataset {dataset_id!r}; make it with `vlgor collect` "
                "(see `vlgor imagination pretrain --help` for the datasets the defaults expect)"
            ) from exc
        for index, episode in enumerate(
            tqdm(
                dataset.iterate_episodes(),
                total=dataset.total_episodes,
                desc=f"load {dataset_id}",
                disable=not progress,
            )
        ):
            if "object_state" not in episode.infos:
                raise ValueError(
                    f"dataset {dataset_id!r} has no infos['object_state']; recollect it with "
                    "`vlgor collect ... --overwrite` (object states are recorded since vlgor 0.2)"
                )
            images = episode.observations["image"]
            steps = len(episode.actions)
            t = np.arange(steps)
            frames.append(images)
            states.append(np.asarray(episode.infos["object_state"], dtype=np.float32))
            current.append(offset + t)
            future.append(offset + np.minimum(t + horizon, steps))
            step_actions = np.asarray(episode.actions)
            actions.append(step_actions)
            ahead = np.minimum(t + horizon, steps - 1)
            next_actions.append(step_actions[ahead])
            valid.append(t + horizon < steps)
            instructions.extend([_instruction(dataset, index)] * steps)
            episodes.append(np.full(steps, episode_number))
            offset += len(images)
            pairs += steps
            episode_number += 1
            if max_transitions is not None and pairs >= max_transitions:
                break
        if max_transitions is not None and pairs >= max_transitions:
            break
    if not current:
        raise ValueError(f"datasets {list(dataset_ids)} hold no transitions")
    transitions = Transitions(
        frames=np.concatenate(frames),
        states=np.concatenate(states),
        current=np.concatenate(current),
        future=np.concatenate(future),
        actions=np.concatenate(actions),
        next_actions=np.concatenate(next_actions),
        next_action_valid=np.concatenate(valid),
        instructions=instructions,
        episode=np.concatenate(episodes),
    )
    if max_transitions is not None and len(transitions) > max_transitions:
        transitions = transitions.subset(max_transitions)
    return transitions
