"""``VLGOR-CLEVR-v0``: CLEVR-Robot on the modern MuJoCo bindings."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vlgor_envs.clevr.predicates import goal_distance
from vlgor_envs.clevr.scene import BALL_RADIUS, SPAWN_BOUNDS, Scene
from vlgor_envs.language import clevr as language
from vlgor_envs.language.goal import Goal, check_choice
from vlgor_envs.observation import (
    check_image_size,
    check_render_mode,
    goal_and_instruction,
    observation_space,
)

N_DIRECTIONS = 8
#: Unit push directions, counter-clockwise from image-right (world +x).
PUSH_DIRECTIONS = np.array([[np.cos(k * np.pi / 4), np.sin(k * np.pi / 4)] for k in range(N_DIRECTIONS)])
N_ACTIONS = len(language.COLOURS) * N_DIRECTIONS
SUCCESS_BONUS = 1.0
DISTURBANCE_PENALTY = 0.5
_SPAWN_GAP = 0.02
_MAX_SPAWN_TRIES = 1000


def push_outcome(
    goal: Goal, start: np.ndarray, before: np.ndarray, after: np.ndarray, distance_before: float
) -> tuple[float, bool, float]:
    """Reward, success and goal distance after a push moved the balls from ``before`` to
    ``after``: the progress toward the goal, a bonus on success and a penalty for how far the
    balls the goal does not name moved. The imagined env scores its frames with it too."""
    distance = goal_distance(goal, after, start)
    success = distance == 0.0
    others = [i for i, c in enumerate(language.COLOURS) if c not in language.target_balls(goal)]
    disturbance = float(np.linalg.norm(after[others] - before[others], axis=1).sum())
    reward = distance_before - distance + SUCCESS_BONUS * success - DISTURBANCE_PENALTY * disturbance
    return float(reward), success, distance


class ClevrRobotEnv(gym.Env[dict[str, Any], np.int64]):
    """Five balls on a table; a language instruction says where some of them should go.

    ## Description
    A re-implementation of the CLEVR-Robot benchmark (Jiang et al., 2019) as used by KALM
    and VLGOR, on the ``mujoco`` bindings. Five balls of radius 0.13 (red, blue, green,
    purple, cyan) slide on a walled table; every action pushes one ball with a small pusher
    that is placed just behind it, so balls move by physics and collide with each other.

    Directions are read in the image of the fixed top-down camera: *left*/*right* are image
    left/right, *in front of* is lower in the image (closer to the bottom edge) and *behind*
    is higher in the image. The public CLEVR-Robot code bases disagree on front/behind; this
    is our fixed convention.

    ## Action Space
    ``Discrete(40)``: action ``a`` pushes ball ``a // 8`` (in the colour order above) along
    direction ``a % 8``, counter-clockwise in steps of 45 degrees from image-right: 0 right,
    1 up-right, 2 up (back), 3 up-left, 4 left, 5 down-left, 6 down (front), 7 down-right.
    One push moves a free ball by about 0.1.

    ## Observation Space
    ``Dict(image=Box(0, 255, (image_size, image_size, 3), uint8), instruction=Text(256))``:
    the top-down frame and the instruction text. Wrap with
    :class:`vlgor_envs.wrappers.EmbedInstruction` for a numeric embedding.

    ## Rewards
    ``r_t = d_{t-1} - d_t + 1.0 * success - 0.5 * sum(|displacement of non-target balls|)``,
    where ``d`` is :func:`vlgor_envs.clevr.predicates.goal_distance` (zero exactly on success).
    A relation holds when the target lies in the relation's 90-degree sector around the
    anchor with centres at most 0.39 apart; a motion when the ball moved 0.2 that way.

    ## Starting State
    Ball centres uniform in x in [-0.5, 0.5], y in [-0.3, 0.5], without overlap, resampled
    until the goal does not already hold. The goal is sampled from the split (a goal kind
    uniformly, then a goal of that kind), unless ``reset`` options give one.

    ## Episode End
    Terminated when the goal holds; truncated after 50 steps (the registration's
    ``max_episode_steps``).

    ## Arguments
    - ``split``: ``"train"``, ``"rephrasing"``, ``"counterfactual"`` or ``"hard"``.
    - ``image_size``: side of the square frame in pixels (default 64).
    - ``render_mode``: ``None`` or ``"rgb_array"`` (the observation frame).

    ``reset(options=...)`` accepts ``{"instruction": text}`` (parsed to its goal),
    ``{"goal": Goal}`` (rendered in its template) or both (the goal with any wording).
    ``info`` holds ``ball_positions`` and ``start_positions`` (``(5, 2)``, colour order),
    ``goal`` (a :class:`Goal`) and ``is_success``.

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, split: str = "train", image_size: int = 64, render_mode: str | None = None) -> None:
        self.split = check_choice("split", split, language.SPLITS)
        self.image_size = check_image_size(image_size)
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = observation_space(self.image_size)
        self.scene = Scene(self.image_size)
        self.goal: Goal | None = None
        self.instruction = ""
        self.start_positions = np.zeros((len(language.COLOURS), 2))
        self._distance = 0.0
        self._frame: np.ndarray | None = None

    @property
    def ball_positions(self) -> np.ndarray:
        """Ball centres ``(5, 2)`` in colour order."""
        return self.scene.positions

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.goal, self.instruction = goal_and_instruction(
            options or {},
            parse=language.parse,
            validate=language.validate_goal,
            render=language.render,
            sample=lambda: language.sample_goal(self.split, self.np_random),
        )
        self.start_positions = self._spawn(self.goal)
        self.scene.set_positions(self.start_positions)
        self._distance = goal_distance(self.goal, self.start_positions, self.start_positions)
        return self._observation(), self._info(success=False)

    def step(self, action: np.int64 | int) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.goal is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {N_ACTIONS - 1}], got {action!r}")
        ball, direction = divmod(int(action), N_DIRECTIONS)
        before = self.scene.positions
        self.scene.push(ball, PUSH_DIRECTIONS[direction])
        reward, success, self._distance = push_outcome(
            self.goal, self.start_positions, before, self.scene.positions, self._distance
        )
        return self._observation(), reward, success, False, self._info(success)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._frame if self._frame is not None else self.scene.render()

    def close(self) -> None:
        self.scene.close()

    def _spawn(self, goal: Goal) -> np.ndarray:
        x0, x1, y0, y1 = SPAWN_BOUNDS
        low, high = np.array([x0, y0]), np.array([x1, y1])
        for _ in range(_MAX_SPAWN_TRIES):
            positions = np.zeros((len(language.COLOURS), 2))
            for i in range(len(positions)):
                while True:
                    candidate = self.np_random.uniform(low, high)
                    gaps = np.linalg.norm(positions[:i] - candidate, axis=1)
                    if np.all(gaps >= 2 * BALL_RADIUS + _SPAWN_GAP):
                        positions[i] = candidate
                        break
            if goal_distance(goal, positions, positions) > 0.0:
                return positions
        raise RuntimeError(f"could not spawn a start state where {goal} does not already hold")

    def _observation(self) -> dict[str, Any]:
        self._frame = self.scene.render()
        return {"image": self._frame.copy(), "instruction": self.instruction}

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "ball_positions": self.scene.positions,
            "start_positions": self.start_positions.copy(),
            "goal": self.goal,
            "is_success": bool(success),
        }
