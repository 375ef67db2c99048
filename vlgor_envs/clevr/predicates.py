"""Success predicates of CLEVR goals, as distances that are zero exactly on success.

``goal_distance(goal, positions, start)`` measures how far the balls are from satisfying the
goal (in arena units); the env's success test is ``goal_distance(...) == 0`` and its dense
reward is the decrease of this distance, so the two can never disagree.
"""

from __future__ import annotations

import numpy as np

from vlgor_envs.language.clevr import COLOURS, DIRECTION_VECTORS, goal_kind, relation_clauses
from vlgor_envs.language.goal import Goal

#: A relation holds when the target lies within 45 degrees of the relation's direction around
#: the anchor and its centre is at most this far from the anchor's centre (KALM's threshold).
RELATION_DISTANCE = 0.39
#: A motion holds when the ball moved this far along the direction, within 45 degrees of it.
MOTION_DISTANCE = 0.2
#: Gathering holds when every other ball's centre is this close to the anchor's centre.
GATHER_DISTANCE = 0.45
#: A line-up holds when every centre is this close to the balls' best-fit line.
LINE_TOLERANCE = 0.08


def distance_to_sector(offset: np.ndarray, direction: np.ndarray, radius: float) -> float:
    """Distance from ``offset`` to the 90-degree sector of ``radius`` around ``direction``.

    The sector is ``{v : angle(v, direction) <= 45 deg, |v| <= radius}``; ``direction`` is a
    unit vector.
    """
    along = float(offset @ direction)
    across = float(offset[0] * direction[1] - offset[1] * direction[0])
    norm = float(np.hypot(along, across))
    if abs(across) <= along:  # inside the wedge
        return max(0.0, norm - radius)
    # Nearest point on the wedge's edge on the offset's side, a segment of length ``radius``.
    edge = np.array([1.0, 1.0 if across >= 0 else -1.0]) / np.sqrt(2.0)
    point = np.array([along, across])
    t = float(np.clip(point @ edge, 0.0, radius))
    return float(np.linalg.norm(point - t * edge))


def _ball(colour: str) -> int:
    return COLOURS.index(colour)


def goal_distance(goal: Goal, positions: np.ndarray, start: np.ndarray) -> float:
    """How far ``positions`` (``(5, 2)``) are from satisfying ``goal``; 0 means success.

    ``start`` holds the positions at reset; only motion goals use it.
    """
    kind = goal_kind(goal)
    if kind == "motion":
        ball = _ball(goal.target)
        direction = np.asarray(DIRECTION_VECTORS[goal.behavior.split(":")[1]])
        moved = positions[ball] - start[ball]
        along = float(moved @ direction)
        across = abs(float(moved[0] * direction[1] - moved[1] * direction[0]))
        return max(0.0, MOTION_DISTANCE - along) + max(0.0, across - max(along, 0.0))
    if kind == "gather":
        anchor = positions[_ball(goal.behavior.split(":")[1])]
        gaps = np.linalg.norm(positions - anchor, axis=1) - GATHER_DISTANCE
        return float(np.clip(gaps, 0.0, None).sum())
    if kind == "line_up":
        centred = positions - positions.mean(axis=0)
        normal = np.linalg.svd(centred)[2][-1]  # the best-fit line's normal
        residuals = np.abs(centred @ normal) - LINE_TOLERANCE
        return float(np.clip(residuals, 0.0, None).sum())
    total = 0.0
    for target, relation, anchor in relation_clauses(goal):
        offset = positions[_ball(target)] - positions[_ball(anchor)]
        total += distance_to_sector(offset, np.asarray(DIRECTION_VECTORS[relation]), RELATION_DISTANCE)
    return total


def is_success(goal: Goal, positions: np.ndarray, start: np.ndarray) -> bool:
    """Whether ``positions`` satisfy ``goal`` (see :func:`goal_distance`)."""
    return goal_distance(goal, positions, start) == 0.0
