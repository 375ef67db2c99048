"""Minari -> d3rlpy: step-by-step equality, last-step flags, embeddings, fitting, fixed-ratio mixing."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import d3rlpy
import gymnasium as gym
import minari
import numpy as np
import pytest
import torch
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import BasicTransitionPicker, InfiniteBuffer, ReplayBuffer
from d3rlpy.logging import NoopAdapterFactory
from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
from d3rlpy.models.torch import Encoder
from d3rlpy.types import Shape
from torch import nn

from vlgor_envs.data import CollectConfig, collect
from vlgor_envs.data.d3rlpy_bridge import (
    MixedDataset,
    batch_counts,
    instruction_examples,
    mix_datasets,
    to_d3rlpy,
)
from vlgor_envs.language import Goal, TextEncoder, default_text_encoder, instruction_encoder

EXPERT_ID = "vlgor/clevr/real-train-v0"
NOISY_ID = "vlgor/clevr/noisy-v0"
METAWORLD_ID = "vlgor/metaworld/real-train-reach-v0"


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return default_text_encoder()


@pytest.fixture(scope="module")
def expert(minari_root: Path) -> minari.MinariDataset:
    return collect(CollectConfig("clevr", "train", 3, 11, progress=False))


@pytest.fixture(scope="module")
def noisy(minari_root: Path) -> minari.MinariDataset:
    """Random actions: seed 3 gives three time-limit truncations and one success."""
    dataset = collect(CollectConfig("clevr", "train", 4, 3, noise=1.0, dataset_id=NOISY_ID, progress=False))
    ends = [(bool(e.terminations[-1]), bool(e.truncations[-1])) for e in dataset.iterate_episodes()]
    assert (True, False) in ends and (False, True) in ends, ends
    return dataset


@pytest.fixture(scope="module")
def metaworld(minari_root: Path) -> minari.MinariDataset:
    return collect(CollectConfig("metaworld", "train", 1, 0, task="reach", progress=False))


@pytest.fixture(scope="module")
def datasets(
    expert: minari.MinariDataset, noisy: minari.MinariDataset, metaworld: minari.MinariDataset
) -> dict[str, minari.MinariDataset]:
    return {"expert": expert, "noisy": noisy, "metaworld": metaworld}


# A deliberately tiny tuple-observation encoder: learners plug in the paper's network the same way.
class _TinyTupleEncoder(Encoder):
    def __init__(self, observation_shape: Shape, feature_size: int) -> None:
        super().__init__()
        (channels, height, width), (dim,) = observation_shape  # type: ignore[misc]
        self.conv = nn.Conv2d(channels, 4, kernel_size=8, stride=8)
        self.fc = nn.Linear(4 * (height // 8) * (width // 8) + dim, feature_size)

    def forward(self, x: Any) -> torch.Tensor:
        image = torch.relu(self.conv(x[0] / 255.0)).flatten(1)  # d3rlpy passes uint8 unscaled
        return torch.relu(self.fc(torch.cat([image, x[1]], dim=1)))


@dataclasses.dataclass()
class _TinyTupleEncoderFactory(EncoderFactory):
    feature_size: int = 16

    def create(self, observation_shape: Shape) -> Encoder:
        return _TinyTupleEncoder(observation_shape, self.feature_size)

    @staticmethod
    def get_type() -> str:
        return "vlgor_test_tiny_tuple"


register_encoder_factory(_TinyTupleEncoderFactory)


def _assert_episodes_equal(buffer: ReplayBuffer, dataset: minari.MinariDataset, encoder: TextEncoder) -> None:
    picker = BasicTransitionPicker()
    metadata = list(dataset.storage.get_episode_metadata(dataset.episode_indices))
    assert len(buffer.episodes) == dataset.total_episodes
    for ours, theirs, meta in zip(buffer.episodes, dataset.iterate_episodes(), metadata, strict=True):
        steps = len(theirs)
        terminated = bool(theirs.terminations[-1])
        images = theirs.observations["image"].transpose(0, 3, 1, 2)
        vector = encoder.encode(meta["instruction"])
        assert ours.terminated is terminated
        assert ours.transition_count == steps
        for t in range(steps):
            transition = picker(ours, t)
            np.testing.assert_array_equal(transition.observation[0], images[t])
            np.testing.assert_array_equal(transition.observation[1], vector)
            np.testing.assert_array_equal(transition.action, np.reshape(theirs.actions[t], -1))
            assert transition.reward.dtype == np.float32
            np.testing.assert_array_equal(transition.reward, np.float32(theirs.rewards[t]))
            last = t == steps - 1
            assert transition.terminal == float(last and terminated)
            if not (last and terminated):
                np.testing.assert_array_equal(transition.next_observation[0], images[t + 1])


@pytest.mark.parametrize("name", ["expert", "noisy", "metaworld"])
def test_step_by_step_equal_to_minari(
    name: str, datasets: dict[str, minari.MinariDataset], encoder: TextEncoder
) -> None:
    dataset = datasets[name]
    buffer = to_d3rlpy(dataset, encoder)
    assert buffer.transition_count == dataset.total_steps
    assert buffer.size() == dataset.total_episodes
    _assert_episodes_equal(buffer, dataset, encoder)


def test_spaces_and_signatures(datasets: dict[str, minari.MinariDataset], encoder: TextEncoder) -> None:
    clevr = to_d3rlpy(EXPERT_ID, encoder).dataset_info  # by id, with an explicit encoder
    assert clevr.action_space == ActionSpace.DISCRETE and clevr.action_size == 40
    assert list(clevr.observation_signature.shape) == [(3, 64, 64), (384,)]
    assert list(clevr.observation_signature.dtype) == [np.uint8, np.float32]
    assert clevr.action_signature.dtype[0] == np.int64
    world = to_d3rlpy(datasets["metaworld"], encoder).dataset_info
    assert world.action_space == ActionSpace.CONTINUOUS and world.action_size == 4
    assert world.action_signature.dtype[0] == np.float32 and list(world.action_signature.shape) == [(4,)]


def test_terminated_and_truncated_last_steps(noisy: minari.MinariDataset, encoder: TextEncoder) -> None:
    buffer = to_d3rlpy(noisy, encoder)
    picker = BasicTransitionPicker()
    for ours, theirs in zip(buffer.episodes, noisy.iterate_episodes(), strict=True):
        steps = len(theirs)
        images = theirs.observations["image"].transpose(0, 3, 1, 2)
        last = picker(ours, steps - 1)
        if theirs.terminations[-1]:
            # T observations; the terminal frame is dropped and the last transition is terminal
            assert ours.terminated and len(ours.observations[0]) == steps and ours.size() == steps
            assert last.terminal == 1.0
            assert not last.next_observation[0].any() and not last.next_observation[1].any()
        else:
            # time limit: all T + 1 observations kept, so the last step bootstraps from o_T
            assert theirs.truncations[-1] and steps == 50
            assert not ours.terminated and len(ours.observations[0]) == steps + 1
            assert ours.transition_count == steps
            assert last.terminal == 0.0
            np.testing.assert_array_equal(last.next_observation[0], images[steps])
            # padding row: repeated last action, zero reward; never a transition of its own
            np.testing.assert_array_equal(ours.actions[steps], ours.actions[steps - 1])
            assert ours.rewards[steps, 0] == 0.0
            np.testing.assert_allclose(ours.compute_return(), np.sum(theirs.rewards), rtol=1e-5)
            with pytest.raises(AssertionError):
                picker(ours, steps)


def test_embeddings_are_the_encoders(noisy: minari.MinariDataset, encoder: TextEncoder) -> None:
    buffer = to_d3rlpy(noisy, encoder)
    metadata = noisy.storage.get_episode_metadata(noisy.episode_indices)
    for episode, meta in zip(buffer.episodes, metadata, strict=True):
        embeddings = episode.observations[1]
        assert embeddings.dtype == np.float32 and embeddings.shape == (len(episode), 384)
        np.testing.assert_array_equal(
            embeddings, np.broadcast_to(encoder.encode(meta["instruction"]), embeddings.shape)
        )
        assert not embeddings.flags.writeable  # one shared vector per instruction, not a copy per step


def test_the_default_feature_is_fitted_on_the_datasets_instructions(
    expert: minari.MinariDataset, noisy: minari.MinariDataset
) -> None:
    metadata = [*expert.storage.get_episode_metadata(expert.episode_indices)]
    metadata += noisy.storage.get_episode_metadata(noisy.episode_indices)
    examples = instruction_examples([expert, noisy])
    assert set(examples) == {(m["instruction"], Goal.from_json(m["goal"])) for m in metadata}
    assert list(examples) == sorted(examples, key=lambda pair: (pair[0], pair[1].to_json()))
    feature = instruction_encoder("clevr", examples)
    mixed = mix_datasets([(expert, 1.0), (noisy, 1.0)])
    for episode, meta in zip(mixed.episodes, metadata, strict=True):
        np.testing.assert_array_equal(episode.observations[1][0], feature.encode(meta["instruction"]))


def test_episodes_share_preallocated_storage(noisy: minari.MinariDataset, encoder: TextEncoder) -> None:
    episodes = to_d3rlpy(noisy, encoder).episodes
    base = episodes[0].observations[0].base
    assert base is not None and all(e.observations[0].base is base for e in episodes)


def test_dump_and_load_round_trip(noisy: minari.MinariDataset, encoder: TextEncoder) -> None:
    buffer = to_d3rlpy(noisy, encoder)
    stream = io.BytesIO()
    buffer.dump(stream)
    stream.seek(0)
    loaded = ReplayBuffer.load(stream, InfiniteBuffer())
    assert loaded.transition_count == buffer.transition_count
    for a, b in zip(loaded.episodes, buffer.episodes, strict=True):
        assert a.terminated == b.terminated
        for x, y in zip(a.observations, b.observations, strict=True):
            np.testing.assert_array_equal(x, y)


def _fit(algo: Any, dataset: ReplayBuffer) -> None:
    algo.fit(
        dataset,
        n_steps=2,
        n_steps_per_epoch=2,
        logger_adapter=NoopAdapterFactory(),
        show_progress=False,
    )


def test_discrete_bc_fits_clevr(noisy: minari.MinariDataset, encoder: TextEncoder) -> None:
    d3rlpy.seed(0)
    buffer = to_d3rlpy(noisy, encoder)
    algo = d3rlpy.algos.DiscreteBCConfig(batch_size=8, encoder_factory=_TinyTupleEncoderFactory()).create(
        "cpu"
    )
    _fit(algo, buffer)
    episode = buffer.episodes[0]
    actions = algo.predict([episode.observations[0][:5], np.ascontiguousarray(episode.observations[1][:5])])
    assert actions.shape == (5,) and ((actions >= 0) & (actions < 40)).all()


def test_bc_fits_metaworld(metaworld: minari.MinariDataset, encoder: TextEncoder) -> None:
    d3rlpy.seed(0)
    buffer = to_d3rlpy(metaworld, encoder)
    algo = d3rlpy.algos.BCConfig(batch_size=8, encoder_factory=_TinyTupleEncoderFactory()).create("cpu")
    _fit(algo, buffer)
    episode = buffer.episodes[0]
    actions = algo.predict([episode.observations[0][:5], np.ascontiguousarray(episode.observations[1][:5])])
    assert actions.shape == (5, 4) and actions.dtype == np.float32
    assert (np.abs(actions) <= 1.0).all()


def test_batch_counts_keep_the_ratio() -> None:
    assert batch_counts(256, [1.0, 1.0]).tolist() == [128, 128]
    assert batch_counts(10, [1.0, 2.0]).tolist() == [3, 7]
    assert batch_counts(7, [1, 1, 1]).tolist() == [3, 2, 2]
    assert batch_counts(5, [3.0]).tolist() == [5]


def test_mixed_dataset_ratio_and_provenance(
    expert: minari.MinariDataset, noisy: minari.MinariDataset, encoder: TextEncoder
) -> None:
    mixed = mix_datasets([(EXPERT_ID, 1.0), (noisy, 3.0)], encoder)
    assert isinstance(mixed, MixedDataset) and isinstance(mixed, ReplayBuffer)
    assert mixed.sources == (EXPERT_ID, NOISY_ID) and mixed.weights == (1.0, 3.0)
    assert mixed.transition_count == expert.total_steps + noisy.total_steps
    assert mixed.source_transitions.tolist() == [expert.total_steps, noisy.total_steps]
    assert mixed.episode_sources.tolist() == [0] * expert.total_episodes + [1] * noisy.total_episodes
    every = np.arange(mixed.transition_count)
    assert mixed.source_of(every).tolist() == [0] * expert.total_steps + [1] * noisy.total_steps
    starts = np.cumsum([0] + [e.transition_count for e in mixed.episodes])[:-1]
    assert mixed.source_of(starts).tolist() == mixed.episode_sources.tolist()
    assert all(mixed.buffer[int(s)] == (e, 0) for s, e in zip(starts, mixed.episodes, strict=True))
    for _ in range(20):
        indices = mixed.sample_transition_indices(16)
        assert np.bincount(mixed.source_of(indices), minlength=2).tolist() == [4, 12]
    # fit's batches are exactly the transitions of those indices
    np.random.seed(5)
    batch = mixed.sample_transition_batch(16)
    np.random.seed(5)
    indices = mixed.sample_transition_indices(16)
    expected = [mixed.transition_picker(*mixed.buffer[int(i)]) for i in indices]
    np.testing.assert_array_equal(batch.observations[0], np.stack([t.observation[0] for t in expected]))
    np.testing.assert_array_equal(batch.actions, np.stack([t.action for t in expected]))
    trajectories = mixed.sample_trajectory_batch(8, 3)
    assert trajectories.observations[0].shape == (8, 3, 3, 64, 64)
    algo = d3rlpy.algos.DiscreteBCConfig(batch_size=8, encoder_factory=_TinyTupleEncoderFactory()).create(
        "cpu"
    )
    _fit(algo, mixed)
    with pytest.raises(TypeError, match="read-only"):
        mixed.append_episode(mixed.episodes[0])


def test_bad_inputs_give_clear_errors(
    expert: minari.MinariDataset, metaworld: minari.MinariDataset, encoder: TextEncoder
) -> None:
    with pytest.raises(FileNotFoundError, match=r"no dataset 'vlgor/clevr/nope-v0'.*present"):
        to_d3rlpy("vlgor/clevr/nope-v0", encoder)
    with pytest.raises(TypeError, match="dataset id"):
        to_d3rlpy(42, encoder)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        mix_datasets([], encoder)
    with pytest.raises(ValueError, match="positive finite"):
        mix_datasets([(expert, 1.0), (expert, 0.0)], encoder)
    with pytest.raises(ValueError, match="pair"):
        mix_datasets([expert], encoder)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="cannot mix"):
        mix_datasets([(expert, 1.0), (metaworld, 1.0)], encoder)
    with pytest.raises(ValueError, match="batch_size"):
        batch_counts(0, [1.0])


@pytest.mark.filterwarnings("ignore::UserWarning")  # Minari on the optional fields left empty
def test_non_vlgor_dataset_is_rejected(encoder: TextEncoder) -> None:
    collector = minari.DataCollector(gym.make("CartPole-v1"))
    collector.reset(seed=0)
    for _ in range(3):
        collector.step(collector.action_space.sample())
    collector.env.close()
    dataset = collector.create_dataset("cartpole-random-v0", algorithm_name="random", author="test")
    with pytest.raises(ValueError, match=r"Dict\(image=.*instruction=Text"):
        to_d3rlpy(dataset, encoder)
    with pytest.raises(ValueError, match="'cartpole-random-v0' records no instruction and goal"):
        instruction_examples([dataset])
