"""The CLEVR language layer: rendering, parsing, splits and counterfactual edits."""

from __future__ import annotations

import numpy as np
import pytest

from vlgor_envs.language import Goal, clevr
from vlgor_envs.language.clevr import (
    COLOURS,
    RELATIONS,
    SPLITS,
    TEMPLATES,
    counterfactual_behavior,
    counterfactual_target,
    goal_kind,
    held_out_relation,
    is_train_task,
    motion_goal,
    parse,
    relation_goal,
    render,
    sample_goal,
    split_goals,
)


@pytest.mark.parametrize("split", SPLITS)
def test_every_instruction_of_every_split_parses_back_to_its_goal(split: str) -> None:
    goals = split_goals(split)
    assert len(set(goals)) == len(goals)
    texts = [render(goal) for goal in goals]
    assert len(set(texts)) == len(texts), "two goals share a text"
    for goal, text in zip(goals, texts, strict=True):
        assert parse(text) == goal
        assert parse(f"  {text.capitalize()}. ") == goal  # case, spaces, final full stop


def test_wordings_have_ten_or_more_templates_and_do_not_overlap() -> None:
    train = {t.text for t in TEMPLATES[("train", "relation")]}
    rephrasing = {t.text for t in TEMPLATES[("rephrasing", "relation")]}
    assert len(train) >= 10 and len(rephrasing) >= 10
    assert not train & rephrasing
    rephrased_words = {w for g in split_goals("rephrasing") for w in render(g).split()}
    assert {"sphere", "orb", "roll", "nudge", "below", "above"} <= rephrased_words


def test_split_sizes_and_the_held_out_set() -> None:
    relational = len(COLOURS) * (len(COLOURS) - 1) * len(RELATIONS)
    train_tasks = {(g.target, g.behavior) for g in split_goals("train")}
    assert relational == 80
    assert len(train_tasks) == relational - 20  # one relation held out per ordered pair
    assert {(g.target, g.behavior) for g in split_goals("rephrasing")} == train_tasks
    for target, anchor in [("red", "blue"), ("cyan", "green")]:
        held_out = relation_goal(target, held_out_relation(target, anchor), anchor)
        assert not is_train_task(held_out)
        assert held_out.with_template("train-0") in split_goals("counterfactual")


def test_counterfactual_goals_are_single_edits_of_train_goals() -> None:
    train = [g for g in split_goals("train") if g.template == "train-0"]
    reachable = set()
    for goal in train:
        reachable |= set(counterfactual_target(goal)) | set(counterfactual_behavior(goal))
    counterfactual = {g for g in split_goals("counterfactual") if g.template == "train-0"}
    assert reachable == counterfactual
    assert not any(is_train_task(g) for g in counterfactual)


def test_edit_functions_change_one_component() -> None:
    goal = relation_goal("red", "left_of", "blue", template="train-4")
    for edit in counterfactual_target(goal):
        assert edit.behavior == goal.behavior and edit.template == goal.template
        assert edit.target not in ("red", "blue")
    behaviours = {e.behavior for e in counterfactual_behavior(goal)}
    assert all(e.target == "red" for e in counterfactual_behavior(goal))
    assert {"toward:left", "toward:right", "toward:front", "toward:back"} <= behaviours
    # The paper's Table 5 example: green toward the right.
    motion = motion_goal("green", "right")
    assert motion_goal("blue", "right") in counterfactual_target(motion)
    assert motion_goal("green", "left") in counterfactual_behavior(motion)
    assert render(motion_goal("green", "left")) == "move the green ball toward the left"
    with pytest.raises(ValueError, match="relation and motion goals"):
        counterfactual_target(split_goals("hard")[0])


def test_goal_json_round_trip() -> None:
    for goal in [split_goals(s)[-1] for s in SPLITS]:
        assert Goal.from_json(goal.to_json()) == goal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("move the orange ball to the left of the blue ball", "unknown colour 'orange'"),
        ("push the red ball to the left of the magenta ball", "unknown colour 'magenta'"),
        ("please dance", "matches no CLEVR template"),
        ("move the red ball to the left of the red ball", "both a target and an anchor"),
    ],
)
def test_bad_instructions_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_bad_split_and_bad_goals_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown split 'test'"):
        split_goals("test")
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        render(relation_goal("pink", "left_of", "blue"))
    with pytest.raises(ValueError, match="unknown relation 'above'"):
        render(relation_goal("red", "above", "blue"))
    with pytest.raises(ValueError, match="unknown template 'train-99'"):
        render(relation_goal("red", "left_of", "blue", template="train-99"))


def test_sampling_is_seeded_and_covers_every_kind_of_the_hard_split() -> None:
    first = [sample_goal("hard", np.random.default_rng(5)) for _ in range(3)]
    second = [sample_goal("hard", np.random.default_rng(5)) for _ in range(3)]
    assert first == second
    rng = np.random.default_rng(0)
    kinds = {goal_kind(sample_goal("hard", rng)) for _ in range(200)}
    assert kinds == {"two_relations", "three_relations", "line_up", "gather"}


def test_parse_reads_the_hard_compositions() -> None:
    text = "move the red ball to the left of the blue ball and the green ball behind it"
    goal = parse(text)
    assert goal.target == "red,green"
    assert clevr.relation_clauses(goal) == [("red", "left_of", "blue"), ("green", "behind", "blue")]
    assert parse("gather all the balls around the cyan ball").behavior == "around:cyan"
