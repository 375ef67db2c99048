"""Minari datasets of ours as d3rlpy datasets with tuple observations, and fixed-ratio mixing.

d3rlpy's own ``get_minari`` accepts neither ``Text`` observations nor our ``Dict``; this is
the bridge. Every observation becomes the tuple ``(image, embedding)``:

- ``image``: ``uint8`` of shape ``(3, H, W)`` (channels first, as d3rlpy's pixel encoders
  want), unscaled: a learner divides by 255 itself;
- ``embedding``: ``float32`` of shape ``(D,)`` (384 for MiniLM-L6), the text encoder's vector of
  the step's instruction.

Last-step semantics. Minari stores ``T + 1`` observations for ``T`` steps. Each Minari episode
becomes one d3rlpy :class:`~d3rlpy.dataset.Episode`:

- **terminated** (``terminations[-1]``): observations ``o_0 .. o_{T-1}``, actions and rewards
  ``T``, ``terminated=True``. d3rlpy yields ``T`` transitions; the last one has
  ``terminal=1.0`` and a zero next observation (the terminal frame ``o_T`` carries no value).
- **truncated** (time limit, ``truncations[-1]`` only): observations ``o_0 .. o_T`` (all
  ``T + 1``), ``terminated=False``, and one padding step appended to actions (a copy of
  ``a_{T-1}``) and rewards (``0``) so that every array has ``T + 1`` rows. d3rlpy yields
  ``T`` transitions (it never samples the last row of an unterminated episode); the last one
  has ``terminal=0.0`` and next observation ``o_T``, so a critic bootstraps from the real
  final frame rather than losing the step, as ``MDPDataset(..., timeouts=...)`` would. The
  padding row is seen only as that transition's ``next_action`` and by trajectory slicers
  (Decision Transformer), as a zero-reward step.

Either way ``buffer.transition_count == dataset.total_steps`` and ``buffer.size() ==
dataset.total_episodes``.

Memory: images, actions and rewards of all episodes go into preallocated arrays that the
episodes slice (views, no per-step Python objects); the arrays are sized for the worst case
(every episode truncated) with ``np.empty``, whose untouched pages cost no resident memory.
An episode's embedding is a read-only ``np.broadcast_to`` view of one vector when its
instruction is constant, as it is in collected datasets, so embeddings cost ``O(distinct
instructions)``, not ``O(steps)``.

Mixing: :func:`mix_datasets` concatenates several Minari datasets (real, imagined) into one
:class:`MixedDataset`, a d3rlpy :class:`~d3rlpy.dataset.ReplayBuffer` whose
``sample_transition_batch`` (what ``algo.fit`` calls) draws a fixed number of transitions
from each source in every batch, in proportion to its weight.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeAlias

import minari
import numpy as np
import numpy.typing as npt
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import (
    Episode,
    InfiniteBuffer,
    ReplayBuffer,
    Signature,
    TrajectoryMiniBatch,
    TransitionMiniBatch,
)
from d3rlpy.dataset.components import EpisodeBase
from d3rlpy.types import Observation
from gymnasium import spaces

from vlgor_envs.language import Goal, InstructionExamples, instruction_encoder
from vlgor_envs.language.encoder import InstructionEncoder, TextEncoder

__all__ = [
    "MixedDataset",
    "dataset_instruction_encoder",
    "instruction_examples",
    "mix_datasets",
    "to_d3rlpy",
]

#: Instructions embedded per forward pass of the text encoder.
#: A loaded Minari dataset or a local dataset id.
DatasetLike: TypeAlias = "minari.MinariDataset | str"


@dataclasses.dataclass(frozen=True)
class _Converted:
    """One Minari dataset as d3rlpy episodes, with what the buffer constructor needs."""

    dataset_id: str
    episodes: list[Episode]
    action_space: ActionSpace
    action_size: int
    image_shape: tuple[int, ...]
    embedding_dim: int


def _load(dataset: DatasetLike) -> minari.MinariDataset:
    if isinstance(dataset, minari.MinariDataset):
        return dataset
    if not isinstance(dataset, str):
        raise TypeError(f"expected a minari.MinariDataset or a dataset id, got {type(dataset).__name__}")
    from vlgor_envs.data.collect import datasets_root, list_datasets

    try:
        return minari.load_dataset(dataset)
    except FileNotFoundError as exc:
        present = list_datasets()
        raise FileNotFoundError(
            f"no dataset {dataset!r} in {datasets_root()}; present: {present or 'none'} "
            "(`vlgor datasets list`; make one with `vlgor collect`)"
        ) from exc


def _check_spaces(dataset: minari.MinariDataset) -> tuple[tuple[int, int, int], ActionSpace, int]:
    """Image shape (H, W, C), d3rlpy action-space type and action size; clear errors otherwise."""
    observation_space = dataset.observation_space
    if not (
        isinstance(observation_space, spaces.Dict)
        and {"image", "instruction"} <= set(observation_space.spaces)
        and isinstance(observation_space["instruction"], spaces.Text)
    ):
        raise ValueError(
            f"dataset {dataset.id!r} has observation space {observation_space}; to_d3rlpy needs "
            "Dict(image=Box(uint8, (H, W, C)), instruction=Text) as written by vlgor collect"
        )
    image = observation_space["image"]
    if not (isinstance(image, spaces.Box) and image.dtype == np.uint8 and len(image.shape) == 3):
        raise ValueError(f"dataset {dataset.id!r}: 'image' must be Box(uint8, (H, W, C)), got {image}")
    action_space = dataset.action_space
    if isinstance(action_space, spaces.Discrete):
        if action_space.start != 0:
            raise ValueError(
                f"dataset {dataset.id!r}: d3rlpy needs Discrete actions from 0, got {action_space}"
            )
        return image.shape, ActionSpace.DISCRETE, int(action_space.n)
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        return image.shape, ActionSpace.CONTINUOUS, int(action_space.shape[0])
    raise ValueError(
        f"dataset {dataset.id!r} has action space {action_space}; to_d3rlpy supports Discrete "
        "and one-dimensional Box actions"
    )


class _Embedder:
    """Instruction vectors by string, encoding new strings in one batch where possible."""

    def __init__(self, encoder: InstructionEncoder) -> None:
        self.encoder = encoder
        self.dim = int(encoder.dim)
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}

    def prefetch(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if not new:
            return
        if not isinstance(self.encoder, TextEncoder):
            for text in new:
                self._store(text, self.encoder.encode(text))
            return
        # TextEncoder batches unseen strings itself (in small batches, to bound memory).
        for text, vector in zip(new, self.encoder.encode(new), strict=True):
            self._store(text, vector)

    def _store(self, text: str, vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
        array = np.array(vector, dtype=np.float32)
        if array.shape != (self.dim,):
            raise ValueError(
                f"text encoder returned shape {array.shape} for {text!r}, expected ({self.dim},)"
            )
        array.setflags(write=False)
        self._vectors[text] = array
        return array

    def __call__(self, text: str) -> npt.NDArray[np.float32]:
        vector = self._vectors.get(text)
        return vector if vector is not None else self._store(text, self.encoder.encode(text))

    def episode(self, instructions: Sequence[str], rows: int) -> npt.NDArray[np.float32]:
        """``(rows, dim)`` embeddings of ``instructions[:rows]``; a broadcast view when constant."""
        first = instructions[0]
        if all(text == first for text in instructions[:rows]):
            return np.broadcast_to(self(first), (rows, self.dim))
        return np.stack([self(text) for text in instructions[:rows]])


def _convert(dataset: minari.MinariDataset, embedder: _Embedder) -> _Converted:
    (height, width, channels), action_space, action_size = _check_spaces(dataset)
    total_steps, total_episodes = int(dataset.total_steps), int(dataset.total_episodes)
    if total_episodes == 0:
        raise ValueError(f"dataset {dataset.id!r} has no episodes")
    metadata = dataset.storage.get_episode_metadata(dataset.episode_indices)
    embedder.prefetch([m["instruction"] for m in metadata if isinstance(m.get("instruction"), str)])

    rows = total_steps + total_episodes  # worst case: every episode truncated (T + 1 rows)
    images = np.empty((rows, channels, height, width), dtype=np.uint8)
    if action_space == ActionSpace.DISCRETE:
        actions: npt.NDArray[Any] = np.empty((rows, 1), dtype=np.int64)
    else:
        actions = np.empty((rows, action_size), dtype=np.float32)
    rewards = np.empty((rows, 1), dtype=np.float32)

    episodes: list[Episode] = []
    start = 0
    for data in dataset.iterate_episodes():
        steps = len(data)
        terminated = bool(data.terminations[-1])
        if not (terminated or data.truncations[-1]):
            raise ValueError(
                f"dataset {dataset.id!r}: episode {data.id} ends neither terminated nor truncated"
            )
        count = steps if terminated else steps + 1
        end = start + count
        # channels-last -> channels-first, written straight into the shared array
        images[start:end] = data.observations["image"][:count].transpose(0, 3, 1, 2)
        actions[start : start + steps] = np.reshape(data.actions, (steps, -1))
        rewards[start : start + steps, 0] = data.rewards
        if not terminated:
            actions[end - 1] = actions[end - 2]
            rewards[end - 1] = 0.0
        embeddings = embedder.episode(list(data.observations["instruction"]), count)
        episodes.append(
            Episode(
                observations=[images[start:end], embeddings],
                actions=actions[start:end],
                rewards=rewards[start:end],
                terminated=terminated,
            )
        )
        start = end
    if action_space == ActionSpace.DISCRETE and start:
        low, high = int(actions[:start].min()), int(actions[:start].max())
        if low < 0 or high >= action_size:
            raise ValueError(
                f"dataset {dataset.id!r}: actions span [{low}, {high}], outside Discrete({action_size})"
            )
    return _Converted(
        dataset_id=dataset.id,
        episodes=episodes,
        action_space=action_space,
        action_size=action_size,
        image_shape=(channels, height, width),
        embedding_dim=embedder.dim,
    )


def _buffer_kwargs(converted: _Converted) -> dict[str, Any]:
    # Explicit signatures: d3rlpy would otherwise infer (and log) them from the first episode.
    action_shape = (1,) if converted.action_space == ActionSpace.DISCRETE else (converted.action_size,)
    action_dtype = np.int64 if converted.action_space == ActionSpace.DISCRETE else np.float32
    return {
        "observation_signature": Signature(
            dtype=[np.dtype(np.uint8), np.dtype(np.float32)],
            shape=[converted.image_shape, (converted.embedding_dim,)],
        ),
        "action_signature": Signature(dtype=[np.dtype(action_dtype)], shape=[action_shape]),
        "reward_signature": Signature(dtype=[np.dtype(np.float32)], shape=[(1,)]),
        "action_space": converted.action_space,
        "action_size": converted.action_size,
    }


def instruction_examples(datasets: Sequence[minari.MinariDataset]) -> InstructionExamples:
    """Every distinct (instruction, goal) pair the datasets' episodes record, sorted."""
    pairs = set()
    for dataset in datasets:
        for meta in dataset.storage.get_episode_metadata(range(dataset.total_episodes)):
            if "instruction" not in meta or "goal" not in meta:
                raise ValueError(
                    f"an episode of {dataset.id!r} records no instruction and goal in its metadata, "
                    "as `vlgor collect` and `vlgor imagine` do: pass a text_encoder of your own"
                )
            pairs.add((str(meta["instruction"]), str(meta["goal"])))
    return tuple((text, Goal.from_json(goal)) for text, goal in sorted(pairs))


def dataset_instruction_encoder(datasets: Sequence[minari.MinariDataset]) -> InstructionEncoder:
    """The instruction feature of the datasets' env, fitted on their instructions
    (:func:`~vlgor_envs.language.instruction_encoder`)."""
    env_ids = {d.env_spec.id for d in datasets if d.env_spec is not None}
    env_id = next(iter(env_ids)) if len(env_ids) == 1 else None
    return instruction_encoder(env_id, instruction_examples(datasets))


def _encoder(
    text_encoder: InstructionEncoder | None, datasets: Sequence[minari.MinariDataset]
) -> InstructionEncoder:
    """``text_encoder``, or the instruction feature fitted on the datasets."""
    return text_encoder if text_encoder is not None else dataset_instruction_encoder(datasets)


def to_d3rlpy(dataset_or_id: DatasetLike, text_encoder: InstructionEncoder | None = None) -> ReplayBuffer:
    """A Minari dataset of ours as a d3rlpy dataset with tuple observations ``(image, embedding)``.

    Args:
        dataset_or_id: A loaded ``minari.MinariDataset`` or a local dataset id such as
            ``"vlgor/clevr/real-train-v0"``.
        text_encoder: Embeds each instruction (``encode(str) -> (D,)``); default the feature
            of the dataset's env fitted on its instructions (:func:`dataset_instruction_encoder`:
            CLEVR's parsed roles, else the MiniLM-L6 sentence embedding).

    Returns:
        A d3rlpy ``ReplayBuffer`` (``MDPDataset``'s base; ``algo.fit`` takes it) with
        observations ``(uint8 (3, H, W), float32 (D,))``, actions ``int64 (1,)`` with a
        ``DISCRETE`` action space of size ``n`` for ``Discrete(n)`` envs or ``float32 (A,)``
        with a ``CONTINUOUS`` one for ``Box`` envs, and ``float32 (1,)`` rewards. Its
        ``transition_count`` equals the dataset's ``total_steps``; see the module docstring
        for how terminated and truncated episodes end.

    Raises:
        FileNotFoundError: No local dataset of that id (names the ones present).
        ValueError: Observations not ``Dict(image, instruction)``, unsupported action space,
            empty dataset, or an episode that is neither terminated nor truncated.
        TypeError: ``dataset_or_id`` is neither a dataset nor a string.
    """
    dataset = _load(dataset_or_id)
    converted = _convert(dataset, _Embedder(_encoder(text_encoder, [dataset])))
    return ReplayBuffer(InfiniteBuffer(), episodes=converted.episodes, **_buffer_kwargs(converted))


def batch_counts(batch_size: int, weights: Sequence[float]) -> npt.NDArray[np.int64]:
    """Transitions per source in a batch: ``batch_size * w_i / sum(w)``, rounded so they sum up.

    Largest-remainder rounding (ties go to the earlier source), so the counts are the same in
    every batch: 1:1 of 256 is 128 + 128, 1:2 of 10 is 3 + 7.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    share = np.asarray(weights, dtype=np.float64)
    exact = batch_size * share / share.sum()
    counts = np.floor(exact).astype(np.int64)
    missing = batch_size - int(counts.sum())
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:missing]] += 1
    return counts


class MixedDataset(ReplayBuffer):
    """Episodes of several Minari datasets in one d3rlpy buffer, sampled at fixed ratios.

    Every mini-batch from :meth:`sample_transition_batch` (what ``algo.fit`` calls) holds
    exactly :meth:`batch_counts` transitions of each source: uniform within a source, the
    sources in their order (real first if given first). Build one with :func:`mix_datasets`.

    Provenance: ``sources`` (dataset ids, in order), ``weights``, ``episode_sources`` (source
    of ``episodes[i]``) and :meth:`source_of` (source of global transition indices). The
    buffer is read-only: appending would break the per-source index ranges.

    Randomness comes from ``np.random``, like d3rlpy's own samplers (``d3rlpy.seed`` seeds it).
    """

    def __init__(
        self,
        parts: Sequence[_Converted],
        weights: Sequence[float],
    ) -> None:
        episodes = [episode for part in parts for episode in part.episodes]
        self._frozen = False
        super().__init__(InfiniteBuffer(), episodes=episodes, **_buffer_kwargs(parts[0]))
        self._frozen = True
        self.sources: tuple[str, ...] = tuple(part.dataset_id for part in parts)
        self.weights: tuple[float, ...] = tuple(float(w) for w in weights)
        self.episode_sources: npt.NDArray[np.int64] = np.repeat(
            np.arange(len(parts)), [len(part.episodes) for part in parts]
        )
        self.source_transitions: npt.NDArray[np.int64] = np.array(
            [sum(e.transition_count for e in part.episodes) for part in parts], dtype=np.int64
        )
        # global transition index where each source starts (episodes were appended in order)
        self._offsets = np.concatenate([[0], np.cumsum(self.source_transitions)]).astype(np.int64)

    def append(
        self, observation: Observation, action: int | npt.NDArray[Any], reward: float | npt.NDArray[Any]
    ) -> None:
        raise TypeError("MixedDataset is read-only; build a new one with mix_datasets")

    def append_episode(self, episode: EpisodeBase) -> None:
        if self._frozen:
            raise TypeError("MixedDataset is read-only; build a new one with mix_datasets")
        super().append_episode(episode)

    def clip_episode(self, terminated: bool) -> None:
        raise TypeError("MixedDataset is read-only; build a new one with mix_datasets")

    def batch_counts(self, batch_size: int) -> npt.NDArray[np.int64]:
        """Transitions drawn from each source in a batch of ``batch_size``."""
        return batch_counts(batch_size, self.weights)

    def source_of(self, indices: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Source index of each global transition index (``0 <= i < transition_count``)."""
        return np.searchsorted(self._offsets, np.asarray(indices), side="right").astype(np.int64) - 1

    def sample_transition_indices(self, batch_size: int) -> npt.NDArray[np.int64]:
        """Global transition indices of one batch: ``batch_counts`` per source, grouped by source."""
        counts = self.batch_counts(batch_size)
        return np.concatenate(
            [np.random.randint(self._offsets[k], self._offsets[k + 1], size=n) for k, n in enumerate(counts)]
        ).astype(np.int64)

    def sample_transition(self) -> Any:
        source = int(np.random.choice(len(self.weights), p=np.asarray(self.weights) / sum(self.weights)))
        index = np.random.randint(self._offsets[source], self._offsets[source + 1])
        episode, transition_index = self.buffer[index]
        return self.transition_picker(episode, transition_index)

    def sample_transition_batch(self, batch_size: int) -> TransitionMiniBatch:
        transitions = [
            self.transition_picker(*self.buffer[int(i)]) for i in self.sample_transition_indices(batch_size)
        ]
        return TransitionMiniBatch.from_transitions(transitions)

    def sample_trajectory_batch(self, batch_size: int, length: int) -> TrajectoryMiniBatch:
        trajectories = [
            self.trajectory_slicer(*self.buffer[int(i)], length)
            for i in self.sample_transition_indices(batch_size)
        ]
        return TrajectoryMiniBatch.from_partial_trajectories(trajectories)


def mix_datasets(
    sources: Sequence[tuple[DatasetLike, float]],
    text_encoder: InstructionEncoder | None = None,
) -> MixedDataset:
    """One d3rlpy dataset from several Minari datasets, sampled at fixed per-batch ratios.

    >>> mixed = mix_datasets([("vlgor/clevr/real-train-v0", 1.0),
    ...                       ("vlgor/clevr/imagined-counterfactual-v0", 1.0)])  # doctest: +SKIP
    >>> algo.fit(mixed, n_steps=...)  # every batch: half real, half imagined  # doctest: +SKIP

    Args:
        sources: ``(dataset or id, weight)`` pairs; a batch of ``B`` transitions holds
            ``batch_counts(B, weights)`` of each source (the paper's fixed 1:1 is weights 1, 1).
        text_encoder: As in :func:`to_d3rlpy`; one encoder, fitted on every source's
            instructions by default, embeds every source.

    Raises:
        ValueError: No sources, a weight that is not positive and finite, or sources whose
            image shape, embedding width or action space differ.
    """
    if not sources:
        raise ValueError("mix_datasets needs at least one (dataset, weight) source")
    for item in sources:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError(f"each source must be a (dataset or id, weight) pair, got {item!r}")
    weights = [w for _, w in sources]
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not (0 < weight < float("inf")):
            raise ValueError(f"source weights must be positive finite numbers, got {weights}")
    datasets = [_load(dataset) for dataset, _ in sources]
    embedder = _Embedder(_encoder(text_encoder, datasets))
    parts = [_convert(dataset, embedder) for dataset in datasets]
    first = parts[0]
    for part in parts[1:]:
        mine = (part.image_shape, part.action_space, part.action_size)
        theirs = (first.image_shape, first.action_space, first.action_size)
        if mine != theirs:
            raise ValueError(
                f"cannot mix {part.dataset_id!r} (image, action space, size {mine}) with "
                f"{first.dataset_id!r} ({theirs})"
            )
    return MixedDataset(parts, weights)
