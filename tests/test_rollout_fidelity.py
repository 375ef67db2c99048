"""The per-step fidelity benchmark: aligned real and imagined rollouts, and figures that can fail."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from benchmarks.rollout_fidelity import Args, per_step, rollouts

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def clevr_rollouts():  # type: ignore[no-untyped-def]
    args = Args(envs=("clevr",), splits=("train",), episodes={"clevr": 2}, steps=3)
    return args, rollouts(args, "clevr", "train")


def test_rollouts_start_from_the_real_first_frame_and_are_seeded(clevr_rollouts) -> None:  # type: ignore[no-untyped-def]
    args, found = clevr_rollouts
    assert found.real_frames.shape == found.imagined_frames.shape == (4, 2, 64, 64, 3)
    assert found.real_states.shape == (4, 2, 10) and found.real_success.shape == (3, 2)
    np.testing.assert_array_equal(found.imagined_frames[0], found.real_frames[0])
    # The pushes move balls, and the imagination predicts frames of its own.
    assert not np.array_equal(found.real_frames[3], found.real_frames[0])
    assert not np.array_equal(found.imagined_frames[1], found.real_frames[1])
    again = rollouts(args, "clevr", "train")
    np.testing.assert_array_equal(again.imagined_frames, found.imagined_frames)
    np.testing.assert_array_equal(again.real_states, found.real_states)


def test_a_perfect_imagination_scores_perfectly_and_beats_copying(clevr_rollouts) -> None:  # type: ignore[no-untyped-def]
    _, found = clevr_rollouts
    perfect = dataclasses.replace(
        found, imagined_frames=found.real_frames, imagined_success=found.real_success
    )
    figures = per_step("clevr", perfect)
    assert len(figures["psnr"]) == 3
    assert all(math.isinf(value) or value > 60 for value in figures["psnr"])
    assert figures["success_agreement"] == [1.0, 1.0, 1.0]
    # The colour detector reads true frames to within a fifth of a ball radius (0.13).
    assert max(figures["ball_error"]) < 0.026
    assert figures["copy_ball_error"][-1] > max(figures["ball_error"])
    # The shipped model's frames: worse than perfect, figures of the same shape.
    imagined = per_step("clevr", found)
    assert all(a < b for a, b in zip(imagined["psnr"], figures["psnr"], strict=True))
    assert set(imagined) == set(figures)
