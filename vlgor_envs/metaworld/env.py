"""``VLGOR-MetaWorld-v0``: Meta-World v3 tasks behind a language instruction."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vlgor_envs.language import metaworld as language
from vlgor_envs.language.goal import Goal, check_choice
from vlgor_envs.metaworld.render import low_poly_copy
from vlgor_envs.observation import (
    check_image_size,
    check_render_mode,
    goal_and_instruction,
    observation_space,
)
from vlgor_envs.rendering import check_not_blank, make_renderer

#: A reach or push with an edited goal succeeds within this distance of the edited goal.
OFFSET_GOAL_RADIUS = 0.05
#: A straight-line reach fails once the hand strays this far from the start-goal segment.
STRAIGHT_LINE_TOLERANCE = 0.03
#: The coffee button counts as pressed once it moved in by this much (of its 0.03 travel).
BUTTON_PRESS_DEPTH = 0.02
SUCCESS_BONUS = 1.0
#: Slices of Meta-World's 39-d state: hand xyz, first object xyz, goal xyz.
HAND, OBJECT, GOAL = slice(0, 3), slice(4, 7), slice(36, 39)


def _segment_distance(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    direction = end - start
    t = float(np.clip((point - start) @ direction / max(float(direction @ direction), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(point - (start + t * direction)))


def mover_position(state: np.ndarray, task: language.MetaWorldTask) -> np.ndarray:
    """Where the part that must reach an offset goal is: the hand, or the object."""
    return np.asarray(state[HAND] if task.target == "gripper" else state[OBJECT], dtype=np.float64)


def offset_goal_score(mover: np.ndarray, goal: np.ndarray) -> tuple[float, bool]:
    """Dense reward in [0, 1] and success of an offset-goal task: the mover within
    :data:`OFFSET_GOAL_RADIUS` of the goal. The imagined env scores its predictions with it too."""
    distance = float(np.linalg.norm(mover - goal))
    return float(np.exp(-distance / 0.1)), distance <= OFFSET_GOAL_RADIUS


class _Scene:
    """One Meta-World env, seeded by us, rendered by our own free camera."""

    def __init__(self, name: str, image_size: int) -> None:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        from vlgor_envs.metaworld.door_lock_open import SCENES

        self.env = (SCENES.get(name) or ALL_V3_ENVIRONMENTS[name])()
        # Goal-observable, re-sampled every reset: what Meta-World's own wrappers set up.
        self.env._partially_observable = False
        self.env._freeze_rand_vec = False
        self.env._set_task_called = True
        # Without this Meta-World draws start states from the global np.random.
        self.env.seeded_rand_vec = True
        self.name = name
        self.image_size = image_size
        self._seed: int | None = None
        self._actions: list[np.ndarray] = []
        self._renderer: mujoco.Renderer | None = None
        self.camera = _camera()

    def reset(self, seed: int) -> np.ndarray:
        self._seed, self._actions = seed, []
        self.env.seed(seed)
        self.env.reset()
        # Meta-World's reset moves bodies and sites in the model after its last kinematics
        # pass: recompute them, then observe (previous frame = current, as Meta-World does).
        mujoco.mj_forward(self.env.model, self.env.data)
        self.env._prev_obs = self.env._get_curr_obs_combined_no_goal()
        return np.asarray(self.env._get_obs(), dtype=np.float64)

    def step(self, action: np.ndarray) -> tuple[Any, ...]:
        self._actions.append(action)
        return tuple(self.env.step(action))

    def render(self) -> np.ndarray:
        if self._renderer is None:
            self._renderer = make_renderer(low_poly_copy(self.env.model), self.image_size)
            self._renderer.update_scene(self.env.data, self.camera)
            return check_not_blank(self._renderer.render())
        self._renderer.update_scene(self.env.data, self.camera)
        return self._renderer.render()

    def site(self, name: str) -> np.ndarray:
        return np.array(self.env.data.site(name).xpos, dtype=np.float64)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.env.close()

    def __getstate__(self) -> dict[str, Any]:
        # Meta-World keeps state outside MjData (and pickled MjData drops mocap, controls and
        # warm start); rebuilding by replaying the episode reproduces all of it.
        return {
            "name": self.name,
            "image_size": self.image_size,
            "seed": self._seed,
            "actions": self._actions,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["name"], state["image_size"])  # type: ignore[misc]
        if state["seed"] is not None:
            self.reset(state["seed"])
            for action in state["actions"]:
                self.step(action)


def _camera() -> mujoco.MjvCamera:
    """The fixed camera: across the table from the robot, looking back down at it.

    No object hides behind the arm, and the image needs no flip (unlike Meta-World's
    ``corner`` cameras).
    """
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.lookat[:] = (0.0, 0.65, 0.1)
    camera.distance = 1.5
    camera.azimuth = -90.0
    camera.elevation = -58.0
    return camera


class MetaWorldLanguageEnv(gym.Env[dict[str, Any], np.ndarray]):
    """A Sawyer arm and one Meta-World v3 task, chosen and judged by a language instruction.

    ## Description
    Each instruction names one task (:mod:`vlgor_envs.language.metaworld`): the ten training
    skills (reach, push, pick-place, button-press, door-unlock, door-open, window-open,
    faucet-open, coffee-push, coffee-button), their counterfactual edits (offset goals,
    straight-line reaching, contrast skills, wall variants) and hard multi-skill tasks. The
    task's Meta-World scene is simulated as Meta-World does; success of edited and
    multi-skill goals is judged by our own predicates.

    ## Action Space
    ``Box(-1, 1, (4,), float32)``: end-effector displacement (x, y, z) and gripper effort,
    as in Meta-World.

    ## Observation Space
    ``Dict(image=Box(0, 255, (image_size, image_size, 3), uint8), instruction=Text(256))``.
    The frame comes from one fixed camera across the table from the robot, looking back down
    over the whole workspace (no flipped ``corner`` camera), drawn with simplified robot
    meshes (:mod:`vlgor_envs.metaworld.render`) so software rendering keeps up. From this
    camera the robot's left (world ``-x``) is on the image's right. ``info["state"]`` holds
    Meta-World's 39-d state (hand, gripper, objects, previous frame, goal) with the goal
    replaced by the edited goal when the task moves it.

    ## Rewards
    Meta-World's dense reward divided by 10 (so in [0, 1]) for its own tasks; for edited
    goals ``exp(-d / 0.1)`` with ``d`` the distance of the hand (reach) or the puck (push) to
    the edited goal; for multi-skill goals the current stage's reward plus the finished
    stages, divided by the number of stages. Plus 1.0 on success.

    ## Starting State
    Meta-World's randomised object and goal positions, drawn from a seed that comes from
    this env's ``np_random``.

    ## Episode End
    Terminated on success. Truncated after the task's ``max_steps``: 100, or 150 for
    door-open, door-lock, push-wall, pick-place-wall, hammer and soccer, and 200 for the two
    multi-skill tasks (their experts need that long on some seeds).

    ## Arguments
    - ``split``: ``"train"``, ``"rephrasing"``, ``"counterfactual"`` or ``"hard"``.
    - ``task``: restrict the split to one task name (e.g. ``"door-open"``); ``None`` samples.
    - ``image_size``: side of the square frame in pixels (default 64).
    - ``render_mode``: ``None`` or ``"rgb_array"``.

    ``reset(options=...)`` takes ``{"instruction": text}``, ``{"goal": Goal}`` or both, as in
    ``VLGOR-CLEVR-v0``. ``info`` holds ``state``, ``goal``, ``task``, ``stage`` (multi-skill
    progress), ``sites`` (positions the multi-skill experts need) and ``is_success``.

    ## Version History
    - v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        split: str = "train",
        task: str | None = None,
        image_size: int = 64,
        render_mode: str | None = None,
    ) -> None:
        self.split = check_choice("split", split, language.SPLITS)
        if task is not None:
            check_choice(f"{split} task", task, [t.name for t in language.tasks_of_split(split)])
        self.task_name = task
        self.image_size = check_image_size(image_size)
        self.render_mode = check_render_mode(render_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.observation_space = observation_space(self.image_size)
        self._scenes: dict[str, _Scene] = {}
        self.goal: Goal | None = None
        self.task: language.MetaWorldTask | None = None
        self.instruction = ""
        self._steps = 0
        self._stage = 0
        self._start_hand = np.zeros(3)
        self._max_deviation = 0.0
        self._initial_sites: dict[str, np.ndarray] = {}
        self._state = np.zeros(39)
        self._frame: np.ndarray | None = None

    @property
    def scene(self) -> _Scene:
        assert self.task is not None, "call reset() first"
        if self.task.scene not in self._scenes:
            self._scenes[self.task.scene] = _Scene(self.task.scene, self.image_size)
        return self._scenes[self.task.scene]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self.goal, self.instruction = goal_and_instruction(
            options or {},
            parse=language.parse,
            validate=language.validate_goal,
            render=language.render,
            sample=lambda: language.sample_goal(self.split, self.np_random, self.task_name),
        )
        self.task = language.task_of(self.goal)
        self._state = self._with_goal(self.scene.reset(int(self.np_random.integers(2**31 - 1))))
        self._steps, self._stage = 0, 0
        self._start_hand = self._state[HAND].copy()
        self._max_deviation = 0.0
        self._initial_sites = {name: self.scene.site(name) for name in self._site_names()}
        return self._observation(), self._info(success=False)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.task is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            raise ValueError(f"action must be 4 finite numbers (clipped to [-1, 1]), got {action!r}")
        state, native_reward, _, _, native_info = self.scene.step(np.clip(action, -1.0, 1.0))
        self._state = self._with_goal(np.asarray(state, dtype=np.float64))
        self._steps += 1
        dense, success = self._judge(float(native_reward) / 10.0, bool(native_info["success"]))
        truncated = not success and self._steps >= self.task.max_steps
        reward = dense + SUCCESS_BONUS * success
        return self._observation(), float(reward), success, truncated, self._info(success)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._frame if self._frame is not None else self.scene.render()

    def close(self) -> None:
        for scene in self._scenes.values():
            scene.close()
        self._scenes.clear()

    # --- goals and predicates -------------------------------------------------------------

    def _site_names(self) -> tuple[str, ...]:
        assert self.task is not None
        return ("buttonStart",) if self.task.behavior == "press_button_then_push" else ()

    def _with_goal(self, state: np.ndarray) -> np.ndarray:
        """Meta-World's state with the goal moved by the task's goal edit."""
        assert self.task is not None
        state = state.copy()
        state[GOAL] = np.asarray(self.scene.env._target_pos, dtype=np.float64) + self.task.goal_offset
        return state

    def _judge(self, native_reward: float, native_success: bool) -> tuple[float, bool]:
        """Dense reward in [0, 1] and success of the current state for the task's goal."""
        assert self.task is not None
        behavior = self.task.behavior
        if np.any(self.task.goal_offset):
            return offset_goal_score(mover_position(self._state, self.task), self._state[GOAL])
        if behavior == "reach:straight_line":
            deviation = _segment_distance(self._state[HAND], self._start_hand, self._state[GOAL])
            self._max_deviation = max(self._max_deviation, deviation)
            straight = self._max_deviation <= STRAIGHT_LINE_TOLERANCE
            return native_reward * (1.0 if straight else 0.5), native_success and straight
        if behavior == "press_button_then_push":
            pressed = self.scene.site("buttonStart")[1] - self._initial_sites["buttonStart"][1]
            if self._stage == 0 and pressed >= BUTTON_PRESS_DEPTH:
                self._stage = 1
            if self._stage == 0:
                return 0.5 * min(pressed / BUTTON_PRESS_DEPTH, 1.0), False
            return 0.5 + 0.5 * native_reward, native_success
        if behavior == "unlock_then_open":
            door: Any = self.scene.env
            self._stage = max(self._stage, int(door.lock_unlocked()))
        return native_reward, native_success

    # --- observations ---------------------------------------------------------------------

    def _observation(self) -> dict[str, Any]:
        self._frame = self.scene.render()
        return {"image": self._frame.copy(), "instruction": self.instruction}

    def _info(self, success: bool) -> dict[str, Any]:
        assert self.task is not None
        return {
            "state": self._state.copy(),
            "goal": self.goal,
            "task": self.task.name,
            "stage": self._stage,
            "sites": {name: self.scene.site(name) for name in self._site_names()},
            "is_success": bool(success),
        }
