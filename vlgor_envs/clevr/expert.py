"""Scripted CLEVR-Robot experts (:data:`EXPERTS`); the datasets use :data:`DEFAULT_EXPERT`.

- ``steering`` (:class:`SteeringClevrExpert`, the default): a push that is a smooth function
  of the target's offset from its anchor; what a learner can imitate (see
  ``benchmarks/expert_imitability.py``).
- ``field`` (:class:`GreedyClevrExpert`): the push that leaves the fewest pushes in a
  push-count field over the arena; Markovian but jagged.
- ``astar`` (:class:`ClevrExpert`): plans with A* and replans every step, with a memory of
  where the balls have been; the most successful on the hard split, the least imitable.

The A* expert: a goal is split into sub-goals for one ball each (a relational clause, a motion, a place
next to the gathering anchor, a slot in the row). The active sub-goal is the first one that
does not hold yet; A* searches sequences of pushes of that ball, predicting each push as a
move of :data:`PUSH_LENGTH` and treating the other balls as obstacles, and the expert takes
the first push of the plan. Regions are shrunk by small margins so that the physics' error
on a push still lands inside the true success region.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vlgor_envs.clevr.env import N_DIRECTIONS, PUSH_DIRECTIONS
from vlgor_envs.clevr.predicates import (
    GATHER_DISTANCE,
    MOTION_DISTANCE,
    RELATION_DISTANCE,
    distance_to_sector,
)
from vlgor_envs.clevr.scene import ARENA_BOUNDS, BALL_RADIUS, PUSHER_RADIUS
from vlgor_envs.language.clevr import (
    COLOURS,
    DIRECTION_VECTORS,
    anchor_balls,
    goal_kind,
    relation_clauses,
)
from vlgor_envs.language.goal import Goal
from vlgor_envs.rollout import Episode, roll_out

#: Predicted displacement of a free ball by one push (measured: 0.097 to 0.100).
PUSH_LENGTH = 0.1
_CLEARANCE = 2 * BALL_RADIUS + 0.01
_PUSHER_CLEARANCE = BALL_RADIUS + PUSHER_RADIUS + 0.005
_GRID = 0.025
_MAX_EXPANSIONS = 4000
# Weighted A*: plans at most 2.5x longer than optimal, found in far fewer expansions.
_HEURISTIC_WEIGHT = 2.5
#: Extra cost, in pushes, of a push that bumps a ball which is not in place yet.
_BUMP_COST = 4.0
#: Extra cost of landing within :data:`_REVISIT_RADIUS` of where the ball already was.
_REVISIT_COST = 3.0
_REVISIT_RADIUS = 0.03
_ROW_SPACING = 0.3
#: The expert of :data:`EXPERTS` that the datasets are collected with.
DEFAULT_EXPERT: Literal["astar", "field", "steering"] = "steering"


@dataclass(frozen=True)
class SubGoal:
    """Bring ``ball`` into the region where ``inside(centres)`` holds.

    ``aims`` are sample points of the region (``(k, 2)``); A* heads for the nearest one that
    no other ball blocks.
    """

    ball: int
    inside: Callable[[np.ndarray], np.ndarray]  # centres (k, 2) -> (k,) bool
    aims: np.ndarray


def _sector_points(
    centre: np.ndarray, direction: np.ndarray, radii: np.ndarray, half_angle: float
) -> np.ndarray:
    """Points at ``radii`` from ``centre`` within ``half_angle`` (degrees) of ``direction``."""
    base = np.arctan2(direction[1], direction[0])
    angles = base + np.radians(np.linspace(-half_angle, half_angle, 2 * int(half_angle // 5) + 1))
    rings = [centre + r * np.stack([np.cos(angles), np.sin(angles)], axis=1) for r in radii]
    return np.concatenate(rings)


def _along_across(offsets: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components of ``offsets`` (``(..., 2)``) along ``direction`` and (unsigned) across it."""
    along = offsets @ direction
    across = np.abs(offsets[..., 0] * direction[1] - offsets[..., 1] * direction[0])
    return along, across


def _relation_subgoal(target: str, relation: str, anchor: str, positions: np.ndarray) -> SubGoal:
    anchor_xy = positions[COLOURS.index(anchor)]
    direction = np.asarray(DIRECTION_VECTORS[relation])

    def inside(centres: np.ndarray) -> np.ndarray:
        along, across = _along_across(centres - anchor_xy, direction)
        return (along - across >= 0.03) & (np.hypot(along, across) <= RELATION_DISTANCE - 0.03)

    aims = _sector_points(anchor_xy, direction, np.array([0.29, 0.32, 0.34]), 35.0)
    return SubGoal(COLOURS.index(target), inside, aims)


def _motion_subgoal(goal: Goal, start: np.ndarray) -> SubGoal:
    ball = COLOURS.index(goal.target)
    origin = start[ball]
    direction = np.asarray(DIRECTION_VECTORS[goal.behavior.split(":")[1]])

    def inside(centres: np.ndarray) -> np.ndarray:
        along, across = _along_across(centres - origin, direction)
        return (along >= MOTION_DISTANCE + 0.03) & (along - across >= 0.03)

    radii = MOTION_DISTANCE + np.array([0.05, 0.1, 0.15])
    return SubGoal(ball, inside, _sector_points(origin, direction, radii, 30.0))


def _gather_subgoals(anchor: str, positions: np.ndarray) -> list[SubGoal]:
    anchor_xy = positions[COLOURS.index(anchor)]
    others = [i for i, c in enumerate(COLOURS) if c != anchor]
    # Nearest first: the close ones settle and the far ones find the gaps between them.
    others.sort(key=lambda i: float(np.linalg.norm(positions[i] - anchor_xy)))

    def inside(centres: np.ndarray) -> np.ndarray:
        return np.linalg.norm(centres - anchor_xy, axis=-1) <= GATHER_DISTANCE - 0.04

    ring = _sector_points(anchor_xy, np.array([1.0, 0.0]), np.array([0.29, 0.33, 0.37]), 180.0)
    return [SubGoal(ball, inside, ring) for ball in others]


def _row_slots(start: np.ndarray) -> tuple[float, np.ndarray]:
    """A horizontal row for the line-up: its height and one x slot per ball."""
    x0, x1, y0, y1 = ARENA_BOUNDS
    height = float(np.clip(np.median(start[:, 1]), y0 + 0.15, y1 - 0.15))
    order = np.argsort(start[:, 0], kind="stable")
    span = _ROW_SPACING * (len(order) - 1)
    centre = float(np.clip(np.mean(start[:, 0]), x0 + span / 2, x1 - span / 2))
    slots = np.empty(len(order))
    slots[order] = centre - span / 2 + _ROW_SPACING * np.arange(len(order))
    return height, slots


def _line_subgoals(positions: np.ndarray, start: np.ndarray) -> list[SubGoal]:
    height, slots = _row_slots(start)
    subgoals = []
    for ball, slot in enumerate(slots):

        def inside(centres: np.ndarray, slot: float = float(slot)) -> np.ndarray:
            return (np.abs(centres[..., 1] - height) <= 0.03) & (np.abs(centres[..., 0] - slot) <= 0.12)

        aims = np.stack([slot + np.linspace(-0.1, 0.1, 5), np.full(5, height)], axis=1)
        subgoals.append(SubGoal(ball, inside, aims))
    # Balls far from the row first: they have the longest way and need the free space.
    subgoals.sort(key=lambda s: -abs(float(positions[s.ball, 1]) - height))
    return subgoals


def subgoals(goal: Goal, positions: np.ndarray, start: np.ndarray) -> list[SubGoal]:
    """The goal's sub-goals, in the order the expert pursues them."""
    kind = goal_kind(goal)
    if kind == "motion":
        return [_motion_subgoal(goal, start)]
    if kind == "gather":
        return _gather_subgoals(goal.behavior.split(":")[1], positions)
    if kind == "line_up":
        return _line_subgoals(positions, start)
    return [_relation_subgoal(t, r, a, positions) for t, r, a in relation_clauses(goal)]


def _subgoal_holds(goal: Goal, sub: SubGoal, positions: np.ndarray) -> bool:
    """Whether the true predicate holds for this sub-goal's ball (margins dropped)."""
    centre = positions[sub.ball]
    kind = goal_kind(goal)
    if kind in ("relation", "two_relations", "three_relations"):
        for target, relation, anchor in relation_clauses(goal):
            if COLOURS.index(target) == sub.ball:
                offset = centre - positions[COLOURS.index(anchor)]
                direction = np.asarray(DIRECTION_VECTORS[relation])
                return distance_to_sector(offset, direction, RELATION_DISTANCE) == 0.0
    if kind == "gather":
        anchor = positions[COLOURS.index(goal.behavior.split(":")[1])]
        return float(np.linalg.norm(centre - anchor)) <= GATHER_DISTANCE
    return bool(sub.inside(centre[None])[0])


def _reachable_aims(
    sub: SubGoal, hard: np.ndarray, soft: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """``sub``'s aim points inside the arena and clear of ``hard`` centres; of those, the ones
    also clear of ``soft`` centres where there are any."""
    aims = sub.aims[np.all((sub.aims >= low) & (sub.aims <= high), axis=1)]
    aims = aims[_min_gap(aims, hard) >= _CLEARANCE]
    free_aims = aims[_min_gap(aims, soft) >= _CLEARANCE]
    return free_aims if len(free_aims) else aims


def plan_first_push(
    centre: np.ndarray,
    hard: np.ndarray,
    soft: np.ndarray,
    sub: SubGoal,
    visited: np.ndarray | None = None,
) -> int | None:
    """First push direction of an A* plan that brings ``centre`` into ``sub``'s region.

    ``hard`` are centres ``(k, 2)`` the ball must never touch (anchors, balls in place);
    ``soft`` are centres it may bump into at a cost of :data:`_BUMP_COST` pushes each;
    landing near a ``visited`` centre costs :data:`_REVISIT_COST`, which breaks the cycles
    a replanning expert can fall into when physics lands just outside a tiny region.
    Returns ``None`` if no aim point is free or no plan is found within the search budget.
    """
    x0, x1, y0, y1 = ARENA_BOUNDS
    low, high = np.array([x0, y0]), np.array([x1, y1])
    aims = _reachable_aims(sub, hard, soft, low, high)
    if not len(aims):
        return None
    moves = PUSH_LENGTH * PUSH_DIRECTIONS
    # Per successor, the three points a push sweeps: landing spot, halfway, and the pusher.
    probes = np.concatenate([moves, moves / 2, -(BALL_RADIUS + PUSHER_RADIUS + 0.01) * PUSH_DIRECTIONS])
    gaps = np.repeat([_CLEARANCE, _CLEARANCE, _PUSHER_CLEARANCE], N_DIRECTIONS)
    previous = np.zeros((0, 2)) if visited is None else visited

    def estimates(points: np.ndarray) -> np.ndarray:
        distances = np.linalg.norm(points[:, None, :] - aims[None, :, :], axis=2).min(axis=1)
        return _HEURISTIC_WEIGHT * distances / PUSH_LENGTH

    def blocked(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """Successors whose landing, halfway or pusher point is too close to ``centres``."""
        return np.asarray((_min_gap(points, centres) < gaps).reshape(3, N_DIRECTIONS).any(axis=0))

    tie = itertools.count()
    frontier = [(float(estimates(centre[None])[0]), next(tie), centre, 0.0, -1)]
    closed: set[tuple[int, ...]] = set()
    for _ in range(_MAX_EXPANSIONS):
        if not frontier:
            return None
        _, _, node, cost, first = heapq.heappop(frontier)
        key = tuple(np.round(node / _GRID).astype(int))
        if key in closed:
            continue
        closed.add(key)
        points = node + probes
        nexts = points[:N_DIRECTIONS]
        valid = np.all((nexts >= low) & (nexts <= high), axis=1) & ~blocked(points, hard)
        bumps = blocked(points, soft)
        arrived = sub.inside(nexts) & ~bumps & valid
        if arrived.any():
            return first if first >= 0 else int(np.flatnonzero(arrived)[0])
        revisits = _min_gap(nexts, previous) < _REVISIT_RADIUS
        step_costs = cost + 1.0 + _BUMP_COST * bumps + _REVISIT_COST * revisits
        priorities = step_costs + estimates(nexts)
        for direction in np.flatnonzero(valid):
            route = first if first >= 0 else int(direction)
            heapq.heappush(
                frontier,
                (
                    float(priorities[direction]),
                    next(tie),
                    nexts[direction],
                    float(step_costs[direction]),
                    route,
                ),
            )
    return None


def _min_gap(points: np.ndarray, obstacles: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest obstacle (infinite without obstacles)."""
    if not len(obstacles):
        return np.full(len(points), np.inf)
    return np.min(np.linalg.norm(points[:, None, :] - obstacles[None, :, :], axis=2), axis=1)


class ClevrExpert:
    """Scripted expert for every CLEVR goal kind; ``act(info)`` maps an env ``info`` to an action.

    ``info`` needs ``goal``, ``ball_positions`` and ``start_positions`` as the env reports
    them. The expert remembers where the balls have been during the current episode (a new
    goal or start state begins a new one) and avoids going back there; it is deterministic.
    """

    def __init__(self) -> None:
        self._episode: tuple[Goal, bytes] | None = None
        self._visited: list[np.ndarray] = []

    def act(self, info: dict[str, Any]) -> int:
        goal: Goal = info["goal"]
        positions = np.asarray(info["ball_positions"], dtype=np.float64)
        start = np.asarray(info["start_positions"], dtype=np.float64)
        episode = (goal, start.tobytes())
        if episode != self._episode:
            self._episode, self._visited = episode, []
        self._visited.append(positions)
        history = np.stack(self._visited)
        plan = subgoals(goal, positions, start)
        done = {s.ball for s in plan if _subgoal_holds(goal, s, positions)}
        pending = [s for s in plan if s.ball not in done] or plan
        anchors = {COLOURS.index(c) for c in anchor_balls(goal)}
        for sub in pending:
            fixed = (anchors | done) - {sub.ball}
            loose = set(range(len(COLOURS))) - fixed - {sub.ball}
            direction = plan_first_push(
                positions[sub.ball],
                positions[sorted(fixed)],
                positions[sorted(loose)],
                sub,
                visited=history[:, sub.ball],
            )
            if direction is not None:
                return sub.ball * N_DIRECTIONS + direction
        # No plan at all: push the first ball straight at its region.
        return _push_at_region(pending[0], positions)


def _push_at_region(sub: SubGoal, positions: np.ndarray) -> int:
    """Push a sub-goal's ball straight at its region's aims (when no plan is found)."""
    heading = sub.aims.mean(axis=0) - positions[sub.ball]
    return sub.ball * N_DIRECTIONS + int(np.argmax(PUSH_DIRECTIONS @ heading))


def run_expert(
    split: str,
    episodes: int,
    seed: int,
    image_size: int = 64,
    keep_frames: bool = False,
    expert_name: str = DEFAULT_EXPERT,
) -> list[Episode]:
    """Roll an expert of :data:`EXPERTS` out in ``VLGOR-CLEVR-v0``; episode ``i`` is seeded
    ``seed + i``."""
    expert = make_expert(expert_name)
    return roll_out(
        "VLGOR-CLEVR-v0",
        lambda _, info: expert.act(info),
        episodes,
        seed,
        keep_frames,
        split=split,
        image_size=image_size,
    )


#: Cell side of :class:`GreedyClevrExpert`'s push-count field.
_FIELD_CELL = 0.025
#: A push that would bump a ball not in place yet counts as this many pushes.
_FIELD_BUMP_COST = 3.0


def _field_grid() -> np.ndarray:
    """Cell centres ``(H, W, 2)`` over the rectangle the walls keep ball centres in."""
    x0, x1, y0, y1 = ARENA_BOUNDS
    xs = np.arange(x0, x1 + 1e-9, _FIELD_CELL)
    ys = np.arange(y0, y1 + 1e-9, _FIELD_CELL)
    return np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1)


_FIELD_GRID = _field_grid()


def nearest_cell(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the cell nearest each point, and whether it lies on the grid."""
    origin = _FIELD_GRID[0, 0]
    columns = np.rint((points[..., 0] - origin[0]) / _FIELD_CELL).astype(int)
    rows = np.rint((points[..., 1] - origin[1]) / _FIELD_CELL).astype(int)
    on_grid = (rows >= 0) & (rows < _FIELD_GRID.shape[0]) & (columns >= 0) & (columns < _FIELD_GRID.shape[1])
    return np.stack([rows, columns], axis=-1), on_grid


def push_costs(centres: np.ndarray, hard: np.ndarray, soft: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Cost ``(..., 8)`` of each push of a ball at ``centres`` (``(..., 2)``); ``inf`` if impossible.

    A push is impossible when its landing leaves the walls, its landing or halfway point
    touches a ``hard`` centre, or the pusher does not fit behind the ball (clear of
    ``others``, every other ball); it costs one push, plus :data:`_FIELD_BUMP_COST` when its
    landing or halfway point touches a ``soft`` one.
    """
    moves = PUSH_LENGTH * PUSH_DIRECTIONS
    landing = centres[..., None, :] + moves
    halfway = centres[..., None, :] + moves / 2
    pusher = centres[..., None, :] - (BALL_RADIUS + PUSHER_RADIUS + 0.01) * PUSH_DIRECTIONS
    x0, x1, y0, y1 = ARENA_BOUNDS
    inside = (
        (landing[..., 0] >= x0) & (landing[..., 0] <= x1) & (landing[..., 1] >= y0) & (landing[..., 1] <= y1)
    )

    def near(points: np.ndarray, obstacles: np.ndarray, gap: float) -> np.ndarray:
        flat = points.reshape(-1, 2)
        return (_min_gap(flat, obstacles) < gap).reshape(points.shape[:-1])

    possible = inside & ~near(landing, hard, _CLEARANCE) & ~near(halfway, hard, _CLEARANCE)
    possible &= ~near(pusher, others, _PUSHER_CLEARANCE)
    bumps = near(landing, soft, _CLEARANCE) | near(halfway, soft, _CLEARANCE)
    return np.where(possible, 1.0 + _FIELD_BUMP_COST * bumps, np.inf)


@dataclass(frozen=True)
class PushField:
    """Fewest (weighted) pushes from each cell until a sub-goal's ball lies in its region, and
    the push that achieves it.

    Value iteration over the cells with the pushes' own kinematics (:func:`push_costs`). The
    ball acts as the cell nearest its centre would, so following :meth:`best_push` lowers the
    field at every step (up to the physics' error); the field is a function of the positions
    alone.
    """

    pushes: np.ndarray  # (H, W) pushes left, inf where the region cannot be reached
    costs: np.ndarray  # (H, W, 8) cost of each push from each cell
    targets: tuple[np.ndarray, np.ndarray]  # rows and columns (H, W, 8) of each push's landing

    @classmethod
    def build(cls, sub: SubGoal, hard: np.ndarray, soft: np.ndarray, others: np.ndarray) -> PushField:
        cells, on_grid = nearest_cell(_FIELD_GRID[..., None, :] + PUSH_LENGTH * PUSH_DIRECTIONS)
        costs = np.where(on_grid, push_costs(_FIELD_GRID, hard, soft, others), np.inf)
        rows = np.clip(cells[..., 0], 0, _FIELD_GRID.shape[0] - 1)
        columns = np.clip(cells[..., 1], 0, _FIELD_GRID.shape[1] - 1)
        pushes = np.where(sub.inside(_FIELD_GRID.reshape(-1, 2)).reshape(_FIELD_GRID.shape[:2]), 0.0, np.inf)
        for _ in range(_FIELD_GRID.shape[0] + _FIELD_GRID.shape[1]):
            updated = np.minimum(pushes, (costs + pushes[rows, columns]).min(axis=-1))
            if np.array_equal(updated, pushes):
                break
            pushes = updated
        return cls(pushes, costs, (rows, columns))

    def best_push(self, centre: np.ndarray) -> int | None:
        """The push from ``centre``'s cell with the fewest pushes left after it (ties: lowest
        index); ``None`` when none leads to the region."""
        cell, _ = nearest_cell(centre)
        row = int(np.clip(cell[0], 0, self.pushes.shape[0] - 1))
        column = int(np.clip(cell[1], 0, self.pushes.shape[1] - 1))
        rows, columns = self.targets
        totals = self.costs[row, column] + self.pushes[rows[row, column], columns[row, column]]
        return int(np.argmin(totals)) if np.isfinite(totals).any() else None


class GreedyClevrExpert:
    """A Markovian scripted expert: its push is a function of the goal and the ball positions.

    ``act(info)`` reads ``goal``, ``ball_positions`` and ``start_positions`` (motion goals and
    line-ups are defined from the start) and keeps no memory. It pursues the same sub-goals as
    :class:`ClevrExpert`, the first one that does not hold yet, and takes the push of its ball
    that leaves the fewest pushes to the sub-goal's region (:class:`PushField`, around the
    other balls); ties go to the lowest direction index.
    """

    def act(self, info: dict[str, Any]) -> int:
        goal: Goal = info["goal"]
        positions = np.asarray(info["ball_positions"], dtype=np.float64)
        start = np.asarray(info["start_positions"], dtype=np.float64)
        plan = subgoals(goal, positions, start)
        done = {s.ball for s in plan if _subgoal_holds(goal, s, positions)}
        pending = [s for s in plan if s.ball not in done] or plan
        anchors = {COLOURS.index(c) for c in anchor_balls(goal)}
        for sub in pending:
            fixed = sorted((anchors | done) - {sub.ball})
            loose = sorted(set(range(len(COLOURS))) - set(fixed) - {sub.ball})
            hard, soft = positions[fixed], positions[loose]
            others = np.delete(positions, sub.ball, axis=0)
            direction = PushField.build(sub, hard, soft, others).best_push(positions[sub.ball])
            if direction is not None:
                return sub.ball * N_DIRECTIONS + direction
        return _push_at_region(pending[0], positions)


#: :class:`SteeringClevrExpert` circles the anchor at this centre distance (the relation
#: holds within 0.39, and balls touch at 0.26) ...
ORBIT_RADIUS = 0.36
#: ... until the target is within this angle (degrees) of the relation's direction, then
#: heads for the point at this distance from the anchor along the relation's direction.
ORBIT_ANGLE = 30.0
AIM_RADIUS = 0.30


def steering_heading(offset: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Where to push a target at ``offset`` from its anchor so it ends up ``direction`` of it.

    Outside the :data:`ORBIT_ANGLE` cone the target circles the anchor the short way round
    (tangent, plus a pull back to :data:`ORBIT_RADIUS`), so it never pushes the anchor; inside
    it heads straight for the aim point. A smooth function of the offset alone.
    """
    radius = float(np.hypot(*offset))
    unit = offset / max(radius, 1e-9)
    if unit @ direction >= np.cos(np.radians(ORBIT_ANGLE)):
        return AIM_RADIUS * direction - offset
    turn = 1.0 if unit[0] * direction[1] - unit[1] * direction[0] >= 0 else -1.0
    tangent = turn * np.array([-unit[1], unit[0]])
    return tangent + 3.0 * (ORBIT_RADIUS - radius) * unit


class SteeringClevrExpert:
    """A Markovian expert whose push is a smooth function of two balls and the goal.

    For a relational clause it pushes the target along :func:`steering_heading` of its offset
    from the anchor (the nearest of the eight directions; ties to the lowest index); for a
    motion it pushes the ball along the motion's direction. Other balls are ignored: a push
    shoves them aside. Clauses are taken in order, the first that does not hold. Gathering
    and line-ups, which involve every ball, fall back to :class:`GreedyClevrExpert`. It keeps
    no memory, so what a policy must learn is "which two balls, and where is one from the
    other".
    """

    def __init__(self) -> None:
        self._fallback = GreedyClevrExpert()

    def act(self, info: dict[str, Any]) -> int:
        goal: Goal = info["goal"]
        kind = goal_kind(goal)
        if kind in ("gather", "line_up"):
            return self._fallback.act(info)
        positions = np.asarray(info["ball_positions"], dtype=np.float64)
        if kind == "motion":
            ball = COLOURS.index(goal.target)
            heading = np.asarray(DIRECTION_VECTORS[goal.behavior.split(":")[1]])
            return ball * N_DIRECTIONS + int(np.argmax(PUSH_DIRECTIONS @ heading))
        clauses = relation_clauses(goal)
        pending = [c for c in clauses if not clause_holds(c, positions)] or clauses
        target, relation, anchor = pending[0]
        ball = COLOURS.index(target)
        offset = positions[ball] - positions[COLOURS.index(anchor)]
        heading = steering_heading(offset, np.asarray(DIRECTION_VECTORS[relation]))
        return ball * N_DIRECTIONS + int(np.argmax(PUSH_DIRECTIONS @ heading))


def clause_holds(clause: tuple[str, str, str], positions: np.ndarray) -> bool:
    """Whether the relation clause ``(target, relation, anchor)`` holds at ``positions``; a ball
    at ``nan`` (lost by a detector) never satisfies it."""
    target, relation, anchor = clause
    offset = positions[COLOURS.index(target)] - positions[COLOURS.index(anchor)]
    return distance_to_sector(offset, np.asarray(DIRECTION_VECTORS[relation]), RELATION_DISTANCE) == 0.0


#: The CLEVR experts by name.
EXPERTS: dict[str, type[ClevrExpert] | type[GreedyClevrExpert] | type[SteeringClevrExpert]] = {
    "astar": ClevrExpert,
    "field": GreedyClevrExpert,
    "steering": SteeringClevrExpert,
}


def default_expert() -> ClevrExpert | GreedyClevrExpert | SteeringClevrExpert:
    """A fresh :data:`DEFAULT_EXPERT` (what ``vlgor collect`` rolls out)."""
    return make_expert(DEFAULT_EXPERT)


def make_expert(name: str) -> ClevrExpert | GreedyClevrExpert | SteeringClevrExpert:
    """A fresh expert of :data:`EXPERTS`."""
    if name not in EXPERTS:
        raise ValueError(f"unknown CLEVR expert {name!r}; choose one of {', '.join(EXPERTS)}")
    return EXPERTS[name]()
