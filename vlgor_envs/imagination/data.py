"""Training pairs for the imagination model, read from our Minari datasets.

Every step ``t`` of an episode gives one pair: ``(s_t, a_t, G)`` as input and ``(s_{t+h},
a_{t+h}, object state at t+h)`` as target. ``s_{t+h}`` is clipped to the episode's last frame;
``a_{t+h}`` exists only for ``t + h < T`` (``next_action_valid``). Frames are stored once per
episode and the pairs index them.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence
from typing import Any

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


class _Pairs:
    """Episodes accumulated into the arrays of :class:`Transitions`."""

    def __init__(self, horizon: int) -> None:
        self.horizon = horizon
        self.columns: dict[str, list[np.ndarray]] = collections.defaultdict(list)
        self.instructions: list[str] = []
        self.frames = self.pairs = self.episodes = 0

    def add(self, episode: Any, instruction: str) -> None:
        images, steps = episode.observations["image"], len(episode.actions)
        t, step_actions = np.arange(steps), np.asarray(episode.actions)
        for name, column in (
            ("frames", images),
            ("states", np.asarray(episode.infos["object_state"], dtype=np.float32)),
            ("current", self.frames + t),
            ("future", self.frames + np.minimum(t + self.horizon, steps)),
            ("actions", step_actions),
            ("next_actions", step_actions[np.minimum(t + self.horizon, steps - 1)]),
            ("next_action_valid", t + self.horizon < steps),
            ("episode", np.full(steps, self.episodes)),
        ):
            self.columns[name].append(column)
        self.instructions.extend([instruction] * steps)
        self.frames += len(images)
        self.pairs += steps
        self.episodes += 1

    def build(self) -> Transitions:
        arrays = {name: np.concatenate(parts) for name, parts in self.columns.items()}
        return Transitions(instructions=self.instructions, **arrays)


def _load(dataset_id: str) -> minari.MinariDataset:
    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no local Minari dataset {dataset_id!r}; make it with `vlgor collect` "
            "(see `vlgor imagination pretrain --help` for the datasets the defaults expect)"
        ) from exc


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
    pairs = _Pairs(horizon)
    for dataset_id in dataset_ids:
        dataset = _load(dataset_id)
        episodes = dataset.iterate_episodes()
        bar = tqdm(episodes, total=dataset.total_episodes, desc=f"load {dataset_id}", disable=not progress)
        for index, episode in enumerate(bar):
            if "object_state" not in episode.infos:
                raise ValueError(
                    f"dataset {dataset_id!r} has no infos['object_state']; recollect it with "
                    "`vlgor collect ... --overwrite` (object states are recorded since vlgor 0.2)"
                )
            pairs.add(episode, _instruction(dataset, index))
            if max_transitions is not None and pairs.pairs >= max_transitions:
                break
        if max_transitions is not None and pairs.pairs >= max_transitions:
            break
    if not pairs.pairs:
        raise ValueError(f"datasets {list(dataset_ids)} hold no transitions")
    transitions = pairs.build()
    if max_transitions is not None and len(transitions) > max_transitions:
        transitions = transitions.subset(max_transitions)
    return transitions
