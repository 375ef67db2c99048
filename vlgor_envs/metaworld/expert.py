"""Scripted experts for every Meta-World goal: ``MetaWorldExpert().act(info)``.

Meta-World's own policy drives each skill; it reads the goal from the state, which the env
already moved for goal edits. The exceptions: a straight-line reach uses a proportional
controller whose action is scaled as a whole (clipping each axis separately would bend the
path); door-open first brings the hand over the handle, since Meta-World's policy catches
the door's edge from the left; and the multi-skill goals run one policy per stage, shown
the object of that stage.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from vlgor_envs.language.metaworld import TASKS_BY_NAME
from vlgor_envs.metaworld.door_lock_open import SCENE_NAME as DOOR_UNLOCK_OPEN
from vlgor_envs.metaworld.door_lock_open import (
    DoorUnlockOpenExpert,
    hand_left_of_handle,
    over_handle_action,
)
from vlgor_envs.metaworld.env import GOAL, HAND, OBJECT
from vlgor_envs.rollout import Episode, roll_out

#: Meta-World moves the hand's mocap by ``action * 0.01`` metres per step.
_ACTION_SCALE = 0.01
_STRAIGHT_GAIN = 0.12


@functools.cache
def metaworld_policy(scene: str) -> Any:
    """Meta-World's scripted policy for a v3 env name, e.g. ``"door-open-v3"``."""
    import metaworld.policies as policies

    wanted = "sawyer" + scene.replace("-", "").lower() + "policy"
    for name in dir(policies):
        if name.lower() == wanted:
            return getattr(policies, name)()
    raise ValueError(f"Meta-World has no scripted policy for {scene!r}")


def straight_line_action(state: np.ndarray) -> np.ndarray:
    """Move the hand along the straight segment to the goal, gripper open."""
    error = state[GOAL] - state[HAND]
    command = error / (_ACTION_SCALE / _STRAIGHT_GAIN)
    largest = float(np.max(np.abs(command)))
    if largest > 1.0:
        command = command / largest  # uniform scaling keeps the direction
    return np.append(command, -1.0).astype(np.float32)


@dataclass
class MetaWorldExpert:
    """Maps a ``VLGOR-MetaWorld-v0`` ``info`` to an action in ``[-1, 1]^4``."""

    def act(self, info: dict[str, Any]) -> np.ndarray:
        with warnings.catch_warnings():
            # Meta-World warns that its own policies' gains exceed the action range; we clip.
            warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
            return self._act(info)

    def _act(self, info: dict[str, Any]) -> np.ndarray:
        task = TASKS_BY_NAME[info["task"]]
        state = np.asarray(info["state"], dtype=np.float64)
        if task.behavior == "reach:straight_line":
            return straight_line_action(state)
        if task.behavior == "press_button_then_push" and info["stage"] == 0:
            shown = state.copy()
            shown[OBJECT] = info["sites"]["buttonStart"]
            return self._policy_action("coffee-button-v3", shown)
        if task.scene == "door-open-v3" and hand_left_of_handle(state):
            # Meta-World's door policy catches the door's edge from there: come from above.
            return over_handle_action(state)
        if task.scene == DOOR_UNLOCK_OPEN:
            return np.clip(DoorUnlockOpenExpert().get_action(state), -1.0, 1.0).astype(np.float32)
        return self._policy_action(task.scene, state)

    @staticmethod
    def _policy_action(scene: str, state: np.ndarray) -> np.ndarray:
        action = metaworld_policy(scene).get_action(state)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)


def run_expert(
    split: str,
    episodes: int,
    seed: int,
    task: str | None = None,
    image_size: int = 64,
    keep_frames: bool = False,
) -> list[Episode]:
    """Roll the expert out in ``VLGOR-MetaWorld-v0``; episode ``i`` is seeded ``seed + i``."""
    expert = MetaWorldExpert()
    return roll_out(
        "VLGOR-MetaWorld-v0",
        lambda _, info: expert.act(info),
        episodes,
        seed,
        keep_frames,
        split=split,
        task=task,
        image_size=image_size,
    )
