"""Imagined datasets copied with the real env's frames (benchmarks/real_frames_pilot.py)."""

from __future__ import annotations

import gymnasium as gym
import minari
import numpy as np

from benchmarks.real_frames_pilot import copy_with_real_frames, real_frames, real_frames_id
from vlgor_envs.data.d3rlpy_bridge import to_d3rlpy
from vlgor_envs.imagination.rollouts import ImagineConfig, imagine
from vlgor_envs.language.goal import Goal


def test_the_copy_keeps_the_labels_and_shows_the_real_frames() -> None:
    source = imagine(
        ImagineConfig(
            "clevr", rollouts=3, num_envs=3, max_steps=4, progress=False, dataset_id="vlgor/clevr/rf-v0"
        )
    )
    target = real_frames_id(source.id, "-realframes")
    assert target == "vlgor/clevr/rf-realframes-v0"
    copy_with_real_frames(source.id, target, overwrite=False)
    copy = minari.load_dataset(target)
    assert copy.storage.metadata["vlgor"] == source.storage.metadata["vlgor"]
    real = gym.make("VLGOR-CLEVR-v0", split="counterfactual")
    metadata = list(copy.storage.get_episode_metadata(range(copy.total_episodes)))
    moved = 0
    for imagined, replayed, meta in zip(
        source.iterate_episodes(), copy.iterate_episodes(), metadata, strict=True
    ):
        assert meta["instruction"] == replayed.observations["instruction"][0]
        np.testing.assert_array_equal(imagined.actions, replayed.actions)
        np.testing.assert_array_equal(imagined.terminations, replayed.terminations)
        np.testing.assert_array_equal(imagined.observations["image"][0], replayed.observations["image"][0])
        expected = real_frames(real, int(meta["seed"]), Goal.from_json(str(meta["goal"])), imagined.actions)
        np.testing.assert_array_equal(replayed.observations["image"], expected)  # lossless, real
        moved += not np.array_equal(expected[-1], expected[0])
    real.close()
    assert moved > 0, "the pushes should move a ball in the real env"
    assert to_d3rlpy(target).transition_count == copy.total_steps
