"""VLGOR-CLEVR-v0: physics, conventions, errors, reward, and the scripted expert."""

from __future__ import annotations

import numpy as np
import pytest

import vlgor_envs  # noqa: F401
from vlgor_envs.clevr.env import N_DIRECTIONS, PUSH_DIRECTIONS, ClevrRobotEnv
from vlgor_envs.clevr.expert import (
    EXPERTS,
    ClevrExpert,
    PushField,
    SteeringClevrExpert,
    make_expert,
    nearest_cell,
    run_expert,
    steering_heading,
    subgoals,
)
from vlgor_envs.clevr.predicates import (
    RELATION_DISTANCE,
    distance_to_sector,
    goal_distance,
    is_success,
)
from vlgor_envs.clevr.scene import ARENA_BOUNDS, world_to_pixel
from vlgor_envs.language import Goal
from vlgor_envs.language.clevr import COLOURS, motion_goal, relation_goal
from vlgor_envs.rollout import roll_out

RED, BLUE, GREEN = (COLOURS.index(c) for c in ("red", "blue", "green"))
RIGHT, UP, LEFT, DOWN = 0, 2, 4, 6


@pytest.fixture
def env() -> ClevrRobotEnv:
    env = ClevrRobotEnv()
    yield env
    env.close()


def _place(env: ClevrRobotEnv, positions: list[list[float]], goal: Goal) -> None:
    env.reset(seed=0, options={"goal": goal})
    env.start_positions = np.array(positions, dtype=float)
    env.scene.set_positions(env.start_positions)
    env._distance = goal_distance(goal, env.start_positions, env.start_positions)


SPREAD = [[0.0, 0.0], [0.45, 0.45], [-0.45, 0.45], [0.45, -0.25], [-0.45, -0.25]]


def test_a_push_moves_only_that_ball_by_about_a_tenth(env: ClevrRobotEnv) -> None:
    _place(env, SPREAD, relation_goal("red", "left_of", "blue"))
    before = env.ball_positions
    env.step(RED * N_DIRECTIONS + UP)
    moved = env.ball_positions - before
    assert 0.08 < moved[RED, 1] < 0.12 and abs(moved[RED, 0]) < 1e-3
    np.testing.assert_allclose(moved[1:], 0.0, atol=1e-6)


def test_balls_collide_by_physics_and_walls_hold_them(env: ClevrRobotEnv) -> None:
    _place(env, [[0.0, 0.0], [0.27, 0.0], *SPREAD[2:]], relation_goal("red", "left_of", "blue"))
    env.step(RED * N_DIRECTIONS + RIGHT)
    assert env.ball_positions[BLUE, 0] > 0.3, "the red ball must shove the blue one"
    for _ in range(12):
        env.step(RED * N_DIRECTIONS + LEFT)
    assert env.ball_positions[RED, 0] >= ARENA_BOUNDS[0] - 0.01


def test_front_is_lower_in_the_image_and_left_is_image_left(env: ClevrRobotEnv) -> None:
    goal = relation_goal("red", "in_front_of", "blue")
    red, blue = np.array([0.0, -0.1]), np.array([0.0, 0.2])
    positions = np.array([red, blue, [-0.5, 0.5], [0.5, 0.5], [0.5, -0.3]])
    assert is_success(goal, positions, positions)
    _place(env, positions.tolist(), goal)
    frame = env.scene.render()
    (red_row, red_col), (blue_row, _) = world_to_pixel(positions[:2], env.image_size)
    assert red_row > blue_row  # lower in the image
    pixel = frame[round(red_row), round(red_col)].astype(int)
    assert pixel[0] > 150 and pixel[1] < 80 and pixel[2] < 80, "the red ball is where we say"
    assert is_success(
        relation_goal("red", "left_of", "blue"),
        np.array([[-0.3, 0.2], blue, *positions[2:]]),
        positions,
    )


def test_relation_sector_and_distance_threshold() -> None:
    left = np.array([-1.0, 0.0])
    assert distance_to_sector(np.array([-0.3, 0.0]), left, RELATION_DISTANCE) == 0.0
    assert distance_to_sector(np.array([-0.25, 0.24]), left, RELATION_DISTANCE) == 0.0  # 44 degrees
    assert distance_to_sector(np.array([-0.2, 0.25]), left, RELATION_DISTANCE) > 0.0  # 51 degrees
    assert distance_to_sector(np.array([-0.4, 0.0]), left, RELATION_DISTANCE) == pytest.approx(0.01)
    assert distance_to_sector(np.array([0.3, 0.0]), left, RELATION_DISTANCE) == pytest.approx(0.3)


def test_motion_goals_measure_from_the_start() -> None:
    goal = motion_goal("red", "left")
    start = np.zeros((5, 2))
    moved = start.copy()
    moved[RED] = [-0.25, 0.05]
    assert is_success(goal, moved, start)
    assert not is_success(goal, moved, moved)


def test_reward_shaping_bonus_and_disturbance_penalty(env: ClevrRobotEnv) -> None:
    goal = relation_goal("red", "right_of", "blue")
    _place(env, [[0.1, 0.0], [-0.45, 0.0], *SPREAD[2:]], goal)
    _, reward, terminated, _, _ = env.step(RED * N_DIRECTIONS + LEFT)
    assert reward == pytest.approx(0.1, abs=0.02) and not terminated
    _, reward, _, _, _ = env.step(BLUE * N_DIRECTIONS + UP)  # moving the anchor costs
    assert reward < -0.02
    for _ in range(6):
        _, reward, terminated, _, info = env.step(RED * N_DIRECTIONS + LEFT)
        if terminated:
            break
    assert terminated and info["is_success"] and reward > 1.0


def test_reset_options_pair_goals_with_any_wording(env: ClevrRobotEnv) -> None:
    observation, info = env.reset(
        seed=1, options={"instruction": "Nudge the green ball so it ends up below the red one."}
    )
    assert info["goal"] == Goal("rephrasing-4", "green", "in_front_of:red")
    assert observation["instruction"].startswith("Nudge")
    goal = relation_goal("cyan", "behind", "purple")
    observation, info = env.reset(seed=1, options={"goal": goal, "instruction": "cyan goes north of purple!"})
    assert info["goal"] == goal and observation["instruction"] == "cyan goes north of purple!"
    assert not info["is_success"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "unknown split 'validation'"),
        ({"image_size": 0}, "between 16 and 1024"),
        ({"image_size": 64.0}, "must be an int"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClevrRobotEnv(**kwargs)  # type: ignore[arg-type]


def test_bad_actions_and_options_name_the_problem(env: ClevrRobotEnv) -> None:
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for action in (40, -1, 2.5):
        with pytest.raises(ValueError, match=r"action must be an int in \[0, 39\]"):
            env.step(action)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown colour 'orange'"):
        env.reset(options={"instruction": "move the orange ball to the left of the red ball"})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goals": "red"})
    with pytest.raises(ValueError, match="printable ASCII"):
        env.reset(options={"instruction": "move the red ball\tleft of the blue ball"})
    with pytest.raises(ValueError, match=r"must be a vlgor_envs\.language\.Goal"):
        env.reset(options={"goal": "red:left_of:blue"})


def test_image_size_sets_the_frame(env: ClevrRobotEnv) -> None:
    small = ClevrRobotEnv(image_size=32)
    observation, _ = small.reset(seed=0)
    assert observation["image"].shape == (32, 32, 3)
    small.close()


# The default (steering) expert succeeds on about 97% of train goals (6,400 episodes: 97.5%);
# it fails where the anchor has been pushed against a wall. These 60 seeds hold 5 such cases.
@pytest.mark.parametrize(
    ("split", "threshold"), [("train", 0.9), ("counterfactual", 0.9), ("rephrasing", 0.9)]
)
def test_expert_success_rate(split: str, threshold: float) -> None:
    episodes = run_expert(split, episodes=60, seed=10_000)
    assert np.mean([e.success for e in episodes]) >= threshold
    assert all(e.length <= 50 for e in episodes)


def test_expert_is_deterministic_and_starts_afresh_each_episode() -> None:
    first, second = run_expert("train", 3, seed=77), run_expert("train", 3, seed=77)
    assert [(e.goal, e.length, e.success) for e in first] == [(e.goal, e.length, e.success) for e in second]
    env = ClevrRobotEnv()
    expert = ClevrExpert()
    _, info = env.reset(seed=4)
    first_action = expert.act(info)
    env.step(first_action)
    _, info = env.reset(seed=4)  # same episode again: the memory of the last one is dropped
    assert expert.act(info) == first_action == ClevrExpert().act(info)
    env.close()


@pytest.mark.parametrize("name", ["field", "steering"])
def test_markovian_experts_succeed_and_keep_no_memory(name: str) -> None:
    expert = make_expert(name)
    episodes = roll_out("VLGOR-CLEVR-v0", lambda _, info: expert.act(info), 20, 10_000, split="train")
    assert np.mean([e.success for e in episodes]) >= 0.9
    # Its push depends on the goal and positions only: no memory, one answer per state.
    env = ClevrRobotEnv()
    _, info = env.reset(seed=5)
    for action in (3, 17, 30):
        _, _, _, _, info = env.step(action)
    seen = make_expert(name)
    for _ in range(3):
        seen.act(info)
    assert seen.act(info) == make_expert(name).act(dict(info))
    env.close()


def test_push_field_counts_pushes_around_anchors() -> None:
    positions = np.array([[0.0, 0.0], [0.5, 0.0], [-0.5, 0.4], [0.4, 0.45], [-0.45, -0.3]])
    goal = relation_goal("blue", "left_of", "red")  # the blue ball must go round the red one
    sub = subgoals(goal, positions, positions)[0]
    others = np.delete(positions, sub.ball, axis=0)
    field = PushField.build(sub, positions[[0]], positions[2:], others)
    push = field.best_push(positions[1])
    assert push is not None and PUSH_DIRECTIONS[push][0] <= 0.8  # never straight into the anchor
    (row, column), _ = nearest_cell(positions[1])
    assert 6 <= field.pushes[row, column] < 20


@pytest.mark.parametrize(("split", "least"), [("train", 0.95), ("counterfactual", 0.95)])
def test_steering_expert_succeeds_at_fixed_seeds(split: str, least: float) -> None:
    episodes = run_expert(split, 40, 30_000, expert_name="steering")
    assert np.mean([e.success for e in episodes]) >= least


def test_steering_circles_the_anchor_then_heads_in() -> None:
    left = np.array([-1.0, 0.0])
    # Target on the wrong side (right of the anchor): it goes round, never at the anchor.
    offset = np.array([0.4, 0.05])
    heading = steering_heading(offset, left)
    toward_anchor = heading @ -offset / (np.linalg.norm(heading) * np.linalg.norm(offset))
    assert toward_anchor < 0.2
    assert heading[1] > 0  # the short way round, over the top
    # Within the cone: straight for the aim point 0.3 left of the anchor.
    np.testing.assert_allclose(steering_heading(np.array([-0.6, 0.0]), left), [0.3, 0.0])


def test_experts_by_name() -> None:
    assert isinstance(make_expert("steering"), SteeringClevrExpert)
    assert set(EXPERTS) == {"astar", "field", "steering"}
    with pytest.raises(ValueError, match="unknown CLEVR expert 'x'; choose one of astar, field, steering"):
        make_expert("x")
