"""agents.compose: which clause a frame leaves pending, and composition of a one-relation skill."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agents import evaluate
from agents.compose import ClauseByClausePolicy, pending_instruction
from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.clevr.env import ClevrRobotEnv
from vlgor_envs.clevr.expert import SteeringClevrExpert, clause_holds
from vlgor_envs.language import Goal
from vlgor_envs.language.clevr import goal_kind, parse, relation_goal, render

#: red, blue, green, purple, cyan far apart.
SPREAD = [[0.0, 0.0], [0.55, 0.55], [-0.55, 0.55], [0.55, -0.45], [-0.55, -0.45]]
TWO = Goal("hard-0", "red,green", "left_of:blue;behind:blue")


@pytest.fixture(scope="module")
def env() -> Iterator[ClevrRobotEnv]:
    env = ClevrRobotEnv()
    env.reset(seed=0)
    yield env
    env.close()


def _frame(env: ClevrRobotEnv, positions: Sequence[Sequence[float]]) -> np.ndarray:
    env.scene.set_positions(np.asarray(positions, dtype=float))
    return env.scene.render()


def _train_wording(target: str, relation: str, anchor: str) -> str:
    return render(relation_goal(target, relation, anchor))


def test_the_first_clause_the_frame_shows_undone_is_asked_for(env: ClevrRobotEnv) -> None:
    text = render(TWO)
    assert pending_instruction(TWO, _frame(env, SPREAD), text) == _train_wording("red", "left_of", "blue")
    red_left_of_blue = [[0.25, 0.55], *SPREAD[1:]]
    asked = pending_instruction(TWO, _frame(env, red_left_of_blue), text)
    assert asked == _train_wording("green", "behind", "blue")
    both = [[0.1, 0.2], [0.4, 0.2], [0.4, 0.5], *SPREAD[3:]]
    assert pending_instruction(TWO, _frame(env, both), text) == text, "done: the instruction as given"


def test_gathering_asks_for_the_nearest_far_ball_on_a_free_side(env: ClevrRobotEnv) -> None:
    gather = Goal("hard-0", "all", "around:red")
    # Blue already sits right of red; green, the nearest far ball, is further right.
    positions = [[0.0, 0.0], [0.3, 0.0], [0.75, 0.05], [-0.8, -0.8], [0.8, -0.8]]
    asked = pending_instruction(gather, _frame(env, positions), render(gather))
    assert asked == _train_wording("green", "behind", "red"), "right of red is taken by blue"


def test_a_ball_the_frame_lost_is_never_in_place() -> None:
    positions = np.array(SPREAD, dtype=float)
    positions[0] = [0.25, 0.55]  # red left of blue
    assert clause_holds(("red", "left_of", "blue"), positions)
    positions[0] = np.nan
    assert not clause_holds(("red", "left_of", "blue"), positions)


def test_simple_goals_pass_unchanged(env: ClevrRobotEnv) -> None:
    frame = _frame(env, SPREAD)
    for goal in (relation_goal("red", "left_of", "blue"), Goal("hard-0", "all", "line_up")):
        assert pending_instruction(goal, frame, "as given") == "as given"


class _Recorder:
    """Stands in for a learner: records what it was asked, pushes ball 0 right."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> list[int]:
        self.asked += [str(o["instruction"]) for o in observations]
        return [0 for _ in observations]

    def __call__(self, observation: dict[str, Any]) -> int:
        return self.act_batch([observation])[0]


def test_the_wrapped_policy_sees_the_pending_clause_and_bad_text_fails(env: ClevrRobotEnv) -> None:
    inner = _Recorder()
    policy = ClauseByClausePolicy(inner)
    assert policy({"image": _frame(env, SPREAD), "instruction": render(TWO)}) == 0
    assert inner.asked == [_train_wording("red", "left_of", "blue")]
    with pytest.raises(ValueError, match="could not parse instruction"):
        policy({"image": _frame(env, SPREAD), "instruction": "juggle the balls"})


def _relation_skill(observation: dict[str, Any]) -> int:
    """A one-relation skill from pixels: the steering expert on the balls detected in the frame."""
    goal = parse(str(observation["instruction"]))
    if goal_kind(goal) != "relation":
        return 0
    positions, _ = detect_balls(observation["image"])
    return SteeringClevrExpert().act({"goal": goal, "ball_positions": np.nan_to_num(positions)})


def test_a_one_relation_skill_composes_into_hard_goals() -> None:
    alone = evaluate(_relation_skill, "clevr", "hard", 24, seed=0)
    composed = evaluate(ClauseByClausePolicy(_Skill()), "clevr", "hard", 24, seed=0)
    compound = ("gather", "two_relations", "three_relations")
    solved = sum(s for s, k in zip(composed.successes, composed.kinds, strict=True) if k in compound)
    tried = sum(k in compound for k in composed.kinds)
    assert sum(alone.successes) == 0, "given whole, a compound instruction is no relation"
    assert solved >= 0.6 * tried, f"composed: {solved} of {tried} compound goals"


class _Skill:
    def act_batch(self, observations: Sequence[dict[str, Any]]) -> list[int]:
        return [_relation_skill(o) for o in observations]

    def __call__(self, observation: dict[str, Any]) -> int:
        return _relation_skill(observation)


def test_the_pilot_composes_a_benchmark_run_on_the_tables_episodes(tmp_path: Path) -> None:
    from agents import split_benchmark
    from agents.split_benchmark.config import Args as SplitArgs
    from benchmarks import compose_pilot

    splits = SplitArgs(preset="tiny", seeds=1, algos=("DiscreteBC",), regimes=("baseline",), threads=1)
    split_benchmark.measure(dataclasses.replace(splits, out=tmp_path / "runs", results=tmp_path))
    args = compose_pilot.Args(out=tmp_path / "runs", regimes=("baseline",), results=tmp_path)
    compose_pilot.main(args)

    run_dir = tmp_path / "runs" / "clevr" / "DiscreteBC" / "baseline" / "seed0"
    plain = json.loads((run_dir / "benchmark_run.json").read_text())["result"]["blocks"]["hard"]
    composed = compose_pilot.composed_blocks(run_dir, plain[0]["episodes"])
    # Every checkpoint on the start states and goals the table gave it.
    assert [b["step"] for b in composed] == [b["step"] for b in plain]
    assert [{k: n for k, (_, n) in b["by_kind"].items()} for b in composed] == [
        {k: n for k, (_, n) in b["by_kind"].items()} for b in plain
    ]
    record = json.loads((tmp_path / "compose_pilot.json").read_text())
    cells = record["figures"]["regimes"]["baseline"]
    assert cells["plain"]["by_kind_episodes"] == cells["composed"]["by_kind_episodes"]
    assert "| Baseline, composed |" in compose_pilot.readme_table(record)
