"""VLGOR-MetaWorld-v0: its language, errors, goal predicates, experts and fast rendering."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import vlgor_envs  # noqa: F401  (registers the ids)
from vlgor_envs.language import Goal
from vlgor_envs.language.metaworld import (
    GOAL_OFFSETS,
    SPLITS,
    TASKS,
    TASKS_BY_NAME,
    TEMPLATES,
    parse,
    render,
    sample_goal,
    split_goals,
    task_of,
    tasks_of_split,
    validate_goal,
)
from vlgor_envs.metaworld.env import MetaWorldLanguageEnv, _camera
from vlgor_envs.metaworld.expert import MetaWorldExpert, metaworld_policy, straight_line_action
from vlgor_envs.metaworld.render import low_poly_copy

TRAIN_SKILLS = {
    "reach",
    "push",
    "pick-place",
    "button-press",
    "door-unlock",
    "door-open",
    "window-open",
    "faucet-open",
    "coffee-push",
    "coffee-button",
}
GOAL_EDITS = {
    "reach-left-of-goal",
    "reach-right-of-goal",
    "reach-in-front-of-goal",
    "reach-above-goal",
    "push-left-of-goal",
    "push-right-of-goal",
}
CONTRAST_SKILLS = {"door-close", "window-close", "faucet-close", "door-lock"}
WALL_VARIANTS = {"reach-wall", "push-wall", "pick-place-wall", "button-press-wall"}
HARD_TASKS = {"coffee-button-push", "door-unlock-open", "hammer", "soccer"}
_HAND, _OBJECT, _GOAL = slice(0, 3), slice(4, 7), slice(36, 39)


def _names(split: str) -> set[str]:
    return {task.name for task in tasks_of_split(split)}


@pytest.fixture
def make_env() -> Iterator[Callable[..., MetaWorldLanguageEnv]]:
    """Builds envs and closes them all: a renderer left open can blank the next one's frames."""
    envs: list[MetaWorldLanguageEnv] = []

    def make(**kwargs: Any) -> MetaWorldLanguageEnv:
        envs.append(MetaWorldLanguageEnv(**kwargs))
        return envs[-1]

    yield make
    for env in envs:
        env.close()


# --- language ---------------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
def test_every_instruction_of_every_split_parses_back_to_its_goal(split: str) -> None:
    goals = split_goals(split)
    assert len(set(goals)) == len(goals)
    texts = [render(goal) for goal in goals]
    assert len(set(texts)) == len(texts), "two goals share a text"
    for goal, text in zip(goals, texts, strict=True):
        assert parse(text) == goal
        assert parse(f"  {text.capitalize()}. ") == goal  # case, outer spaces, final full stop
        assert parse("  ".join(text.upper().split()) + ".") == goal  # inner spaces too


def test_no_text_names_two_goals_across_splits() -> None:
    goals = {goal for split in SPLITS for goal in split_goals(split)}
    assert len({render(goal) for goal in goals}) == len(goals)


@pytest.mark.parametrize("split", ["train", "rephrasing"])
def test_each_task_has_ten_or_more_distinct_instructions(split: str) -> None:
    texts: dict[str, set[str]] = defaultdict(set)
    for goal in split_goals(split):
        texts[task_of(goal).name].add(render(goal))
    assert set(texts) == TRAIN_SKILLS
    assert all(len(options) >= 10 for options in texts.values()), {k: len(v) for k, v in texts.items()}


def test_rephrasings_share_no_template_and_no_wording_with_train() -> None:
    train = {template.text for template in TEMPLATES["train"]}
    rephrasing = {template.text for template in TEMPLATES["rephrasing"]}
    assert len(train) >= 10 and len(rephrasing) >= 10
    assert not train & rephrasing
    train_texts = {render(goal) for goal in split_goals("train")}
    rephrased_texts = {render(goal) for goal in split_goals("rephrasing")}
    assert not train_texts & rephrased_texts
    for task in tasks_of_split("train"):
        assert task.phrase not in task.rephrasings and len(set(task.rephrasings)) >= 3, task.name


def test_split_membership() -> None:
    assert _names("train") == TRAIN_SKILLS
    assert _names("rephrasing") == TRAIN_SKILLS
    assert _names("counterfactual") == GOAL_EDITS | {"reach-straight"} | CONTRAST_SKILLS | WALL_VARIANTS
    assert _names("hard") == HARD_TASKS
    assert {g.wording for g in split_goals("rephrasing")} == {"rephrasing"}
    assert {g.wording for s in ("train", "counterfactual", "hard") for g in split_goals(s)} == {"train"}
    train_goals = {(t.target, t.behavior) for t in tasks_of_split("train")}
    train_targets = {target for target, _ in train_goals}
    for task in tasks_of_split("counterfactual"):
        assert (task.target, task.behavior) not in train_goals
        # one edit of a training goal: same object, another behaviour
        assert task.target in train_targets, task.name
    for task in tasks_of_split("hard"):
        assert (task.target, task.behavior) not in train_goals


def test_goal_edits_move_the_goal_the_way_the_text_says() -> None:
    words = {"left_of_goal": "to the left of", "right_of_goal": "to the right of"}
    words |= {"in_front_of_goal": "in front of", "above_goal": "above"}
    for edit, offset in GOAL_OFFSETS.items():
        task = TASKS_BY_NAME[f"reach-{edit.replace('_', '-')}"]
        np.testing.assert_array_equal(task.goal_offset, offset)
        assert words[edit] in task.phrase
    # left/right are world -x/+x; in front is toward the robot (-y); above is +z
    assert GOAL_OFFSETS["left_of_goal"][0] < 0 < GOAL_OFFSETS["right_of_goal"][0]
    assert GOAL_OFFSETS["in_front_of_goal"][1] < 0 < GOAL_OFFSETS["above_goal"][2]
    for name in ("reach", "push", "reach-straight", "door-close", "coffee-button-push"):
        np.testing.assert_array_equal(TASKS_BY_NAME[name].goal_offset, 0.0)


def test_episode_limits() -> None:
    longer = {task.name: task.max_steps for task in TASKS if task.max_steps != 100}
    assert longer == {
        "door-open": 150,
        "coffee-button-push": 200,
        "door-unlock-open": 200,
        "door-lock": 150,
        "push-wall": 150,
        "pick-place-wall": 150,
        "hammer": 150,
        "soccer": 150,
    }


def test_goal_json_round_trip() -> None:
    for goal in [split_goals(split)[-1] for split in SPLITS]:
        assert Goal.from_json(goal.to_json()) == goal
        assert validate_goal(Goal.from_json(goal.to_json())) == goal


def test_sampling_is_seeded_and_stays_in_its_split() -> None:
    first = [sample_goal("counterfactual", np.random.default_rng(5)) for _ in range(3)]
    assert first == [sample_goal("counterfactual", np.random.default_rng(5)) for _ in range(3)]
    rng = np.random.default_rng(0)
    for split in SPLITS:
        sampled = [sample_goal(split, rng) for _ in range(300)]
        assert {task_of(goal).name for goal in sampled} == _names(split)
        assert set(sampled) <= set(split_goals(split))
    for _ in range(5):
        goal = sample_goal("rephrasing", rng, task="door-open")
        assert goal.wording == "rephrasing" and task_of(goal).name == "door-open"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse("please dance"), "matches no Meta-World template"),
        (lambda: parse("open the fridge"), "matches no Meta-World template"),
        (
            lambda: render(Goal("train-0", "door", "fly")),
            "no Meta-World task has target 'door' and behaviour 'fly'",
        ),
        (lambda: render(Goal("train-0", "fridge", "open")), "no Meta-World task has target 'fridge'"),
        (lambda: render(Goal("train-10", "door", "open")), "unknown template 'train-10'"),
        (lambda: render(Goal("hard-0", "door", "open")), "unknown template 'hard-0'"),
        (lambda: render(Goal("train-x", "door", "open")), "unknown template 'train-x'"),
        (lambda: render(Goal("rephrasing-0", "door", "close")), "'door-close' has no wording in template"),
        (lambda: split_goals("test"), "unknown split 'test'"),
        (lambda: tasks_of_split("validation"), "unknown split 'validation'"),
        (lambda: sample_goal("test", np.random.default_rng(0)), "unknown split 'test'"),
        (
            lambda: sample_goal("train", np.random.default_rng(0), task="door-close"),
            "unknown train task 'door-close'",
        ),
        (lambda: sample_goal("hard", np.random.default_rng(0), task="juggle"), "unknown hard task 'juggle'"),
    ],
)
def test_language_errors_name_the_problem(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# --- env errors and reset options -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"split": "validation"}, "unknown split 'validation'"),
        ({"split": "train", "task": "door-close"}, "unknown train task 'door-close'"),
        ({"split": "hard", "task": "reach"}, "unknown hard task 'reach'"),
        ({"task": "juggle"}, "unknown train task 'juggle'"),
        ({"image_size": 0}, "between 16 and 1024"),
        ({"image_size": 64.0}, "must be an int"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_constructor_arguments_name_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetaWorldLanguageEnv(**kwargs)  # type: ignore[arg-type]


def test_bad_actions_and_options_name_the_problem(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    env = make_env(image_size=16)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(4, np.float32))
    env.reset(seed=0)
    bad_actions = [np.zeros(3), np.zeros(5), np.zeros((1, 4)), [np.nan, 0, 0, 0], [0, np.inf, 0, 0]]
    for action in bad_actions:
        with pytest.raises(ValueError, match="action must be 4 finite numbers"):
            env.step(action)  # type: ignore[arg-type]
    bad_options: list[tuple[dict[str, Any], str]] = [
        ({"goals": Goal("train-0", "door", "open")}, "unknown reset options"),
        ({"goal": "door:open"}, r"must be a vlgor_envs\.language\.Goal"),
        ({"goal": Goal("train-0", "door", "fly")}, "no Meta-World task"),
        ({"instruction": "please dance"}, "matches no Meta-World template"),
        ({"instruction": "open the\tdoor"}, "printable ASCII"),
        ({"instruction": "   "}, "non-empty"),
    ]
    for options, message in bad_options:
        with pytest.raises(ValueError, match=message):
            env.reset(options=options)


def test_actions_outside_the_box_are_clipped(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    states = []
    for action in ([5.0, 0.0, -3.0, 1.0], [1.0, 0.0, -1.0, 1.0]):
        env = make_env(task="reach", image_size=16)
        env.reset(seed=3)
        for _ in range(3):
            _, _, _, _, info = env.step(np.array(action, np.float32))
        states.append(info["state"])
    np.testing.assert_array_equal(states[0], states[1])


def test_reset_instruction_sets_the_goal_and_keeps_the_text(
    make_env: Callable[..., MetaWorldLanguageEnv],
) -> None:
    env = make_env(image_size=16)
    text = "Could you  turn the faucet on for me?"
    observation, info = env.reset(seed=1, options={"instruction": text})
    assert info["goal"] == Goal("rephrasing-0", "faucet", "open")
    assert info["task"] == "faucet-open" and env.scene.name == "faucet-open-v3"
    assert observation["instruction"] == text
    goal = Goal("train-3", "door", "close")
    observation, info = env.reset(seed=1, options={"goal": goal, "instruction": "shut it, quick"})
    assert info["goal"] == goal and info["task"] == "door-close"
    assert observation["instruction"] == "shut it, quick"
    assert not info["is_success"]
    observation, info = env.reset(seed=1, options={"goal": goal})
    assert observation["instruction"] == "your task is to close the door" == render(goal)


# --- env behaviour ----------------------------------------------------------------------


def test_image_size_sets_the_frame(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    env = make_env(task="door-open", image_size=32, render_mode="rgb_array")
    observation, _ = env.reset(seed=0)
    assert observation["image"].shape == (32, 32, 3) and observation["image"].dtype == np.uint8
    assert env.observation_space.contains(observation)
    observation, *_ = env.step(np.zeros(4, np.float32))
    frame = env.render()
    assert frame is not None and frame.shape == (32, 32, 3)
    np.testing.assert_array_equal(frame, observation["image"])
    assert frame.std() > 5, "a blank frame"
    quiet = make_env(task="door-open", image_size=16)
    quiet.reset(seed=0)
    assert quiet.render() is None


@pytest.mark.parametrize(("task", "edit"), [("reach", None), ("reach-left-of-goal", "left_of_goal")])
def test_state_goal_is_metaworlds_target_moved_by_the_edit(
    make_env: Callable[..., MetaWorldLanguageEnv], task: str, edit: str | None
) -> None:
    env = make_env(split=TASKS_BY_NAME[task].split, task=task, image_size=16)
    offset = np.array(GOAL_OFFSETS[edit] if edit else (0.0, 0.0, 0.0))
    for seed in (0, 1):
        _, info = env.reset(seed=seed)
        native = env.scene.env
        assert info["state"].shape == (39,)
        target = np.asarray(native._target_pos, dtype=float)
        np.testing.assert_allclose(info["state"][_GOAL], target + offset, atol=1e-12)
        np.testing.assert_allclose(native._get_obs()[_GOAL], target)  # Meta-World's own goal
        _, _, _, _, info = env.step(np.zeros(4, np.float32))
        np.testing.assert_allclose(info["state"][_GOAL], target + offset, atol=1e-12)


def test_offset_goal_is_judged_at_the_edited_goal(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    """Reaching Meta-World's own target (which would be its success) is 0.1 m off the edited goal."""
    env = make_env(split="counterfactual", task="reach-left-of-goal", image_size=16)
    policy = metaworld_policy("reach-v3")
    _, info = env.reset(seed=2)
    target = np.asarray(env.scene.env._target_pos, dtype=float)
    successes = []
    for _ in range(60):
        shown = info["state"].copy()
        shown[_GOAL] = target
        _, _, terminated, _, info = env.step(np.clip(policy.get_action(shown), -1, 1))
        successes.append(info["is_success"] or terminated)
    assert np.linalg.norm(info["state"][_HAND] - target) < 0.03, "the hand did not reach the plain target"
    assert not any(successes)


def test_straight_line_reach_fails_after_a_detour(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    env = make_env(split="counterfactual", task="reach-straight", image_size=16)
    expert = MetaWorldExpert()
    for seed in (0, 1):
        _, info = env.reset(seed=seed)
        start, goal = info["state"][_HAND], info["state"][_GOAL]
        away = -1.0 if goal[0] > start[0] else 1.0  # sideways, away from the goal
        terminated = truncated = False
        steps = 0
        while not (terminated or truncated):
            action = (
                np.array([away, 0, 0, -1], np.float32) if steps < 10 else straight_line_action(info["state"])
            )
            _, _, terminated, truncated, info = env.step(action)
            assert not info["is_success"], f"seed {seed}: a detour counted as a straight line"
            steps += 1
            if steps == 10:
                assert abs(info["state"][0] - start[0]) > 0.05, "the detour did not leave the line"
        assert truncated and steps == TASKS_BY_NAME["reach-straight"].max_steps
        assert np.linalg.norm(info["state"][_HAND] - goal) < 0.03, "the hand should end at the goal"
        _, info = env.reset(seed=seed)
        terminated = truncated = False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(expert.act(info))
        assert terminated and info["is_success"], f"seed {seed}: the straight expert failed"


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pushing_the_mug_without_pressing_the_button_never_succeeds(
    make_env: Callable[..., MetaWorldLanguageEnv], seed: int
) -> None:
    env = make_env(split="hard", task="coffee-button-push", image_size=16)
    push = metaworld_policy("coffee-push-v3")
    _, info = env.reset(seed=seed)
    terminated = truncated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(np.clip(push.get_action(info["state"]), -1, 1))
        assert not info["is_success"] and info["stage"] == 0 and reward <= 0.5
    state = info["state"]
    # Meta-World's own coffee-push success (mug within 0.07 of the goal) holds: only the button is missing.
    assert np.linalg.norm(state[_OBJECT] - state[_GOAL]) <= 0.07


def test_coffee_expert_presses_the_button_first(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    env = make_env(split="hard", task="coffee-button-push", image_size=16)
    expert = MetaWorldExpert()
    _, info = env.reset(seed=0)
    stages = []
    terminated = truncated = False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(expert.act(info))
        stages.append(info["stage"])
    assert terminated and info["is_success"]
    assert stages[0] == 0 and stages[-1] == 1 and stages == sorted(stages)


def test_reset_reports_the_scene_as_it_is(make_env: Callable[..., MetaWorldLanguageEnv]) -> None:
    coffee = make_env(split="hard", task="coffee-button-push", image_size=16)
    for seed in (1, 3):  # seed 1: the idle step's reward is negative; seed 3: it reaches stage 1
        _, info = coffee.reset(seed=seed)
        reported = info["sites"]["buttonStart"].copy()
        _, reward, _, _, info = coffee.step(np.zeros(4, np.float32))
        assert info["stage"] == 0 and 0.0 <= reward <= 0.5, f"seed {seed}: idle step gave {reward:.3f}"
        np.testing.assert_allclose(reported, coffee.scene.site("buttonStart"), atol=1e-3)
    window = make_env(task="window-open", image_size=32)
    observation, _ = window.reset(seed=0)
    mujoco.mj_kinematics(window.scene.env.model, window.scene.env.data)
    difference = np.abs(window.scene.render().astype(int) - observation["image"]).mean()
    assert difference < 0.5, f"the reset frame differs from the scene by {difference:.2f}"


@pytest.mark.parametrize("task", ["reach", "door-lock", "coffee-button-push"])
def test_episodes_truncate_at_the_task_limit(task: str) -> None:
    limit = TASKS_BY_NAME[task].max_steps
    env = gym.make("VLGOR-MetaWorld-v0", split=TASKS_BY_NAME[task].split, task=task, image_size=16)
    env.reset(seed=0)
    for step in range(1, limit + 1):
        _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
        assert not terminated and not info["is_success"]
        assert truncated == (step == limit), f"truncated={truncated} at step {step} of {limit}"
    env.close()


# --- experts ----------------------------------------------------------------------------

EXPERT_EPISODES = 5
EXPERT_SEED = 900


def _expert_cases() -> list[Any]:
    cases = []
    for split in ("train", "counterfactual", "hard"):
        for task in tasks_of_split(split):
            cases.append(pytest.param(split, task.name, id=f"{split}/{task.name}"))
    return cases


@pytest.mark.parametrize(("split", "task"), _expert_cases())
def test_expert_success_rate(split: str, task: str) -> None:
    env = MetaWorldLanguageEnv(split=split, task=task)
    expert = MetaWorldExpert()
    limit = TASKS_BY_NAME[task].max_steps
    successes = []
    for episode in range(EXPERT_EPISODES):
        _, info = env.reset(seed=EXPERT_SEED + episode)
        assert info["task"] == task
        terminated = truncated = False
        steps = 0
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(expert.act(info))
            steps += 1
        assert steps <= limit and terminated == info["is_success"]
        successes.append(info["is_success"])
    env.close()
    assert np.mean(successes) >= 0.8, f"{task}: {sum(successes)}/{EXPERT_EPISODES} successes"


# --- rendering --------------------------------------------------------------------------


def _frame(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    renderer = mujoco.Renderer(model, 64, 64)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
        renderer.scene.flags[flag] = 0
    renderer.update_scene(data, _camera())
    frame = renderer.render().copy()
    renderer.close()
    return frame


def test_low_poly_copy_is_smaller_leaves_the_model_alone_and_looks_the_same(
    make_env: Callable[..., MetaWorldLanguageEnv],
) -> None:
    env = make_env(task="door-open", image_size=16)
    env.reset(seed=0)
    env.step(np.zeros(4, np.float32))
    model, data = env.scene.env.model, env.scene.env.data
    facenum, face, normal = model.mesh_facenum.copy(), model.mesh_face.copy(), model.mesh_facenormal.copy()
    simple = low_poly_copy(model)
    assert simple is not model
    assert simple.mesh_facenum.sum() < model.mesh_facenum.sum() / 2
    assert np.all(simple.mesh_facenum <= model.mesh_facenum) and np.all(simple.mesh_facenum > 0)
    np.testing.assert_array_equal(model.mesh_facenum, facenum)
    np.testing.assert_array_equal(model.mesh_face, face)
    np.testing.assert_array_equal(model.mesh_facenormal, normal)
    full, low = _frame(model, data), _frame(simple, data)
    assert full.std() > 5 and low.std() > 5, "a blank frame"
    assert np.abs(full.astype(int) - low.astype(int)).mean() < 8
