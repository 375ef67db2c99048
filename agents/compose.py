"""A CLEVR policy that carries out a compound instruction one train-kind clause at a time.

A learner trained on single relations ("move the red ball to the left of the blue ball")
rarely solves a hard goal given whole, even after imitating expert episodes of it. This
wrapper composes its train skill instead: it reads the goal of the instruction, finds the
balls in the current frame with the colour detector, and hands the wrapped policy the first
clause that does not hold yet, worded as a train instruction: every request is a relation
between two balls, the kind of goal the learner was trained on.

What it decomposes:

- ``two_relations`` and ``three_relations``: their relation clauses, in order;
- ``gather``: every ball not yet near the anchor, nearest first, to the free side of the
  anchor (left, right, in front, behind) closest to where the ball is now; a relation's
  region lies inside the gathering distance, so four relations make a gathering;
- any other goal (relations, motions, line-ups) goes to the wrapped policy unchanged.

It reads the goal with the env's grammar (:func:`vlgor_envs.language.clevr.parse`), which
knows the hard wordings: the part a language model would play in a planner of sub-goals.
Everything else it sees is the observation: the frame and the instruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from agents.evaluate import BatchPolicy
from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.clevr.expert import clause_holds
from vlgor_envs.clevr.predicates import GATHER_DISTANCE
from vlgor_envs.language.clevr import (
    COLOURS,
    DIRECTION_VECTORS,
    goal_kind,
    parse,
    relation_clauses,
    relation_goal,
    render,
)
from vlgor_envs.language.goal import Goal

__all__ = ["ClauseByClausePolicy", "pending_instruction"]

#: The sides a gathered ball can take around its anchor.
_SIDES = ("left_of", "right_of", "in_front_of", "behind")


def _offset(positions: np.ndarray, ball: str, anchor: str) -> np.ndarray:
    return positions[COLOURS.index(ball)] - positions[COLOURS.index(anchor)]


def _nearest_side(offset: np.ndarray, free: Sequence[str]) -> str:
    return max(free, key=lambda side: float(offset @ np.asarray(DIRECTION_VECTORS[side])))


def _gather_clause(positions: np.ndarray, anchor: str) -> tuple[str, str, str] | None:
    """The next ball to bring next to ``anchor`` and the side to bring it to; None when gathered."""
    others = [c for c in COLOURS if c != anchor]
    distances = {c: float(np.linalg.norm(_offset(positions, c, anchor))) for c in others}
    # A lost ball (nan distance) counts as far, so it is asked for last.
    others.sort(key=lambda c: (np.isnan(distances[c]), distances[c]))
    gathered = [c for c in others if distances[c] <= GATHER_DISTANCE]
    far = [c for c in others if c not in gathered]
    if not far:
        return None
    taken = [_nearest_side(_offset(positions, c, anchor), _SIDES) for c in gathered]
    free = [side for side in _SIDES if side not in taken] or list(_SIDES)
    return far[0], _nearest_side(np.nan_to_num(_offset(positions, far[0], anchor)), free), anchor


def pending_instruction(goal: Goal, frame: np.ndarray, instruction: str) -> str:
    """The train-wording instruction of ``goal``'s first clause that ``frame`` shows undone.

    Goals that are not compound (and compound goals already done) keep ``instruction``.
    """
    kind = goal_kind(goal)
    if kind not in ("two_relations", "three_relations", "gather"):
        return instruction
    positions, _ = detect_balls(np.asarray(frame, dtype=np.uint8))
    if kind == "gather":
        clause = _gather_clause(positions, goal.behavior.split(":")[1])
    else:
        clause = next((c for c in relation_clauses(goal) if not clause_holds(c, positions)), None)
    if clause is None:
        return instruction
    return render(relation_goal(*clause))


class ClauseByClausePolicy:
    """A :class:`~agents.evaluate.BatchPolicy` that gives ``policy`` one clause at a time.

    ``policy`` is any CLEVR policy over ``{"image", "instruction"}`` observations, typically
    :func:`agents.d3rlpy_policy` of a learner trained on the train split. Instructions that
    no CLEVR template matches raise the parser's one-line ``ValueError``.
    """

    def __init__(self, policy: BatchPolicy) -> None:
        self.policy = policy
        self._goals: dict[str, Goal] = {}

    def _rewrite(self, observation: dict[str, Any]) -> dict[str, Any]:
        instruction = str(observation["instruction"])
        if instruction not in self._goals:
            self._goals[instruction] = parse(instruction)
        pending = pending_instruction(self._goals[instruction], observation["image"], instruction)
        return {**observation, "instruction": pending}

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> Sequence[Any]:
        return self.policy.act_batch([self._rewrite(o) for o in observations])

    def __call__(self, observation: dict[str, Any]) -> Any:
        return self.act_batch([observation])[0]
