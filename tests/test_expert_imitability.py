"""The imitability pilot: features of the true state and goal, and a tiny end-to-end run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import vlgor_envs  # noqa: F401
from benchmarks import expert_imitability
from benchmarks.expert_imitability import Args, features, measure, relative_features
from vlgor_envs.language.clevr import COLOURS, relation_goal


def test_features_hold_positions_and_one_hot_goal() -> None:
    env = gym.make("VLGOR-CLEVR-v0", split="train")
    _, info = env.reset(seed=0, options={"goal": relation_goal("green", "left_of", "cyan")})
    row = features(info)
    offset = relative_features(info)
    env.close()
    positions = info["ball_positions"]
    np.testing.assert_allclose(
        offset[:2], positions[COLOURS.index("green")] - positions[COLOURS.index("cyan")], atol=1e-6
    )
    np.testing.assert_array_equal(offset[2:], row[20:])
    np.testing.assert_allclose(row[:10], np.ravel(info["ball_positions"]), atol=1e-6)
    goal = row[20:]
    assert goal.sum() == 3.0
    assert goal[COLOURS.index("green")] == goal[len(COLOURS) + COLOURS.index("cyan")] == 1.0
    assert goal[2 * len(COLOURS) + expert_imitability.RELATIONS.index("left_of")] == 1.0


def test_tiny_run_reports_each_expert() -> None:
    figures = measure(Args(episodes=6, eval_episodes=3, steps=20))
    assert set(figures) == {"astar", "field", "steering"}
    for result in figures.values():
        assert result["expert_success"] > 0.5 and result["transitions"] > 6
        for key in (
            "held_out_accuracy",
            "repeat_last_push_accuracy",
            "closed_loop_success",
            "held_out_accuracy_relative",
            "closed_loop_success_relative",
        ):
            assert 0.0 <= result[key] <= 1.0
