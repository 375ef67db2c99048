"""``door-unlock-open-v3``: a Meta-World v3 safe whose door opens only after its lock is turned.

Meta-World splits the safe in two: ``door-unlock-v3`` has a lock on a door that cannot move,
``door-open-v3`` a door without a lock. This scene (``assets/sawyer_door_lock_open.xml``)
gives one door both joints, ``doorjoint`` (the door's hinge, as in ``door-open-v3``) and
``lockjoint`` (the lever lock, as in ``door-unlock-v3``), and couples them by contact: a cam
on the lock's spindle, behind the door panel, sits behind a keeper block hanging from the
safe's ceiling while the lever is down. Turning the lever up (the ``door-unlock-v3`` motion)
swings the cam clear and frees the door. The hard multi-skill task is "unlock the door, then
open it"; :class:`DoorUnlockOpenExpert` solves it with Meta-World's two scripted policies.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import numpy.typing as npt
from metaworld.envs.sawyer_door_v3 import SawyerDoorEnvV3
from metaworld.policies.sawyer_door_open_v3_policy import SawyerDoorOpenV3Policy
from metaworld.policies.sawyer_door_unlock_v3_policy import SawyerDoorUnlockV3Policy
from metaworld.sawyer_xyz_env import SawyerXYZEnv
from metaworld.utils import reward_utils

#: The scene's name, in Meta-World's ``<task>-v3`` style.
SCENE_NAME = "door-unlock-open-v3"
#: The scene's MJCF; its ``file`` paths are relative to Meta-World's ``assets/sawyer_xyz``.
SCENE_XML = Path(__file__).parent / "assets" / "sawyer_door_lock_open.xml"
#: The lock joint's angle at reset: lever hanging down, door held by the cam.
LOCKED_ANGLE = 1.57
#: The lock counts as unlocked at or below this angle (radians): the angle at which
#: ``door-unlock-v3`` declares success (its lever-tip site within 0.02 of its goal in x).
#: The cam clears the keeper a little earlier (the door swings free from about 0.44 rad and
#: is held from 0.45 rad up), so an unlocked lock always frees the door.
UNLOCKED_ANGLE = 0.38
#: ``door-open-v3``'s success: the handle within this distance of the goal in x.
OPEN_TOLERANCE = 0.08
#: The door's hinge angle (radians, opening positive) beyond which the door counts as free:
#: the cam stops a locked door well below this.
DOOR_FREE_ANGLE = 0.1

# Observation layout of this env (Meta-World's 39-d state with two objects).
_HAND = slice(0, 3)
_HANDLE, _DOOR_QUAT = slice(4, 7), slice(7, 11)
_LOCK, _LOCK_QUAT = slice(11, 14), slice(14, 18)
# The door policy's approach point above the handle, its gain, and how far left of the
# handle the hand must be to count as on the wrong side of it.
_OVER_HANDLE = np.array([0.01, 0.02, 0.2])
_GAIN = 25.0
_WRONG_SIDE = 0.04
_INCLUDE = re.compile(r'<include\s+file="([^"]+)"\s*/>')
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WRAPPER = re.compile(r"</?mujocoinclude>")


def hand_left_of_handle(state: npt.ArrayLike) -> bool:
    """Whether the hand is left of the handle, where Meta-World's door policy would drive it
    into the door's edge (``state`` is a 39-d Meta-World state with the handle at 4:7)."""
    state = np.asarray(state, dtype=np.float64)
    return bool(state[0] < state[4] - _WRONG_SIDE)


def over_handle_action(state: npt.ArrayLike) -> np.ndarray:
    """Move the hand to the door policy's approach point 0.2 above the handle."""
    state = np.asarray(state, dtype=np.float64)
    target = state[_HANDLE] + _OVER_HANDLE
    return np.append(np.clip((target - state[_HAND]) * _GAIN, -1.0, 1.0), 1.0).astype(np.float32)


def metaworld_scene_dir() -> Path:
    """Meta-World's ``assets/sawyer_xyz`` folder, the base of the scene's relative paths."""
    import metaworld

    return Path(metaworld.__file__).parent / "assets" / "sawyer_xyz"


def _inline_includes(text: str, base: Path) -> str:
    # MuJoCo resolves asset paths of a string model's includes against the include's own
    # folder, unlike Meta-World's files (which assume the scene folder); pasting the
    # includes in keeps every path relative to ``base``.
    text = _COMMENT.sub("", text)
    return _INCLUDE.sub(
        lambda match: _inline_includes(_WRAPPER.sub("", (base / match.group(1)).read_text()), base), text
    )


def scene_spec() -> mujoco.MjSpec:
    """The scene as an editable :class:`mujoco.MjSpec`, loadable from any working directory."""
    base = metaworld_scene_dir()
    spec = mujoco.MjSpec.from_string(_inline_includes(SCENE_XML.read_text(), base))
    spec.modelfiledir = str(base)
    return spec


def compile_scene() -> mujoco.MjModel:
    """The compiled scene."""
    return scene_spec().compile()


def _matrix(quat: npt.ArrayLike) -> np.ndarray:
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat, dtype=np.float64))
    return matrix.reshape(3, 3)


def lock_angle_of(state: npt.ArrayLike) -> float:
    """The lock joint's angle read from this env's observation (``LOCKED_ANGLE`` = locked).

    The lock only turns about the door's y axis, so its orientation relative to the door's
    (``state[14:18]`` against ``state[7:11]``, both MuJoCo ``wxyz``) is a pure y rotation.
    """
    state = np.asarray(state, dtype=np.float64)
    relative = _matrix(state[_DOOR_QUAT]).T @ _matrix(state[_LOCK_QUAT])
    return float(np.arctan2(relative[0, 2], relative[0, 0]))


def door_angle_of(state: npt.ArrayLike) -> float:
    """How far the door is open (radians, 0 = closed), read from this env's observation."""
    w, _, _, z = np.asarray(state, dtype=np.float64)[_DOOR_QUAT]
    return float(-2.0 * np.arctan2(z, w))


class SawyerDoorUnlockOpenEnvV3(SawyerDoorEnvV3):
    """Unlock the safe's door, then open it: Meta-World's door-unlock and door-open in one scene.

    ## Description
    The safe of ``door-open-v3`` (same random position, same goal, same success distance) with
    the lever lock of ``door-unlock-v3`` on its door. The lock starts down (locked), and a cam
    on it then holds the door shut by contact (the door swings out at most a degree or so).
    Turning the lever up to ``UNLOCKED_ANGLE`` or less frees the door.

    ## Action Space
    Meta-World's ``Box(-1, 1, (4,))``: hand displacement (x, y, z) and gripper effort.

    ## Observation Space
    Meta-World's 39-d state (goal-observable when ``_partially_observable`` is False):

    - ``[0:3]`` hand position, ``[3]`` gripper opening;
    - ``[4:7]`` door handle position (the ``handle`` geom, as in ``door-open-v3``);
    - ``[7:11]`` door orientation (``door_link`` quaternion, MuJoCo ``wxyz``);
    - ``[11:14]`` lock lever tip (the ``lockStartUnlock`` site, as in ``door-unlock-v3``);
    - ``[14:18]`` lock orientation (``lock_link`` quaternion, ``wxyz``);
    - ``[18:36]`` the previous frame's ``[0:18]``; ``[36:39]`` the goal.

    :func:`lock_angle_of` and :func:`door_angle_of` recover both joint angles from it.

    ## Rewards
    In ``[0, 10]``: while locked, half of a door-unlock-style reward (2 for bringing the hand
    to the lever, 8 for turning it); once unlocked, 5 plus half of ``door-open-v3``'s reward;
    10 on success.

    ## Starting State
    Hand at ``(0, 0.6, 0.2)``; door closed at a uniform position in ``[0, 0.1] x [0.85, 0.95]``
    (z = 0.15) drawn from ``self.np_random`` (set ``seeded_rand_vec``); lock locked.

    ## Episode End
    As Meta-World: never terminated, truncated at ``max_path_length``. ``info["success"]`` is
    1.0 when the lock is unlocked and the handle is within ``OPEN_TOLERANCE`` of the goal in x.

    ## Arguments
    Those of Meta-World's ``SawyerDoorEnvV3``.

    ## Version History
    - v3: initial version (numbered after the Meta-World v3 tasks it joins).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock_qpos_adr = self.model.joint("lockjoint").qposadr.item()
        self.lock_qvel_adr = self.model.joint("lockjoint").dofadr.item()
        self.lock_init_pos = self._get_site_pos("lockStartUnlock")

    @property
    def model_name(self) -> str:
        return str(SCENE_XML)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = compile_scene()
        # As gymnasium's MujocoEnv: grow, never shrink, the offscreen buffer.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    # --- state ----------------------------------------------------------------------------

    def lock_angle(self) -> float:
        """The lock joint's angle: ``LOCKED_ANGLE`` when locked, 0 when turned fully up."""
        return float(self.data.qpos[self.lock_qpos_adr])

    def lock_unlocked(self) -> bool:
        """Whether the lock is turned to ``UNLOCKED_ANGLE`` or less (the door is then free)."""
        return self.lock_angle() <= UNLOCKED_ANGLE

    def door_angle(self) -> float:
        """How far the door is open, in radians (0 closed, up to 2)."""
        return float(-self.data.qpos[self.door_qpos_adr])

    def door_open(self) -> bool:
        """Whether the door is open as far as ``door-open-v3`` requires for success."""
        assert self._target_pos is not None
        return bool(abs(self.data.geom("handle").xpos[0] - self._target_pos[0]) <= OPEN_TOLERANCE)

    def set_angles(self, door: float, lock: float) -> None:
        """Put the door (opening angle, radians) and the lock (joint angle) there, at rest."""
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
        qpos[self.door_qpos_adr], qpos[self.lock_qpos_adr] = -door, lock
        qvel[self.door_qvel_adr], qvel[self.lock_qvel_adr] = 0.0, 0.0
        self.set_state(qpos, qvel)

    def _get_pos_objects(self) -> npt.NDArray[Any]:
        return np.hstack((self.data.geom("handle").xpos, self._get_site_pos("lockStartUnlock")))

    def _get_quat_objects(self) -> npt.NDArray[Any]:
        return np.hstack((self.data.body("door_link").xquat, self.data.body("lock_link").xquat))

    def reset_model(self) -> npt.NDArray[np.float64]:
        self._reset_hand()
        self.obj_init_pos = self._get_state_rand_vec()
        self._target_pos = self.obj_init_pos + np.array([-0.3, -0.45, 0.0])
        self.model.body("door").pos = self.obj_init_pos
        self.model.site("goal").pos = self._target_pos
        self.set_angles(door=0.0, lock=LOCKED_ANGLE)
        self.objHeight = self.data.geom("handle").xpos[2]
        self.lock_init_pos = self._get_site_pos("lockStartUnlock")
        self.maxPullDist = np.linalg.norm(self.data.geom("handle").xpos[:-1] - self._target_pos[:-1])
        self.target_reward = 1000 * self.maxPullDist + 1000 * 2
        return self._get_obs()

    # --- reward and success ---------------------------------------------------------------

    def _unlock_reward(self, obs: npt.NDArray[np.float64]) -> float:
        """Door-unlock-style reward in [0, 10]: reach the lever tip, then turn the lever up."""
        reach = reward_utils.tolerance(
            float(np.linalg.norm(obs[_HAND] - obs[_LOCK])),
            bounds=(0.0, 0.05),
            margin=float(np.linalg.norm(self.init_tcp - self.lock_init_pos)),
            sigmoid="long_tail",
        )
        turned = float(
            np.clip((LOCKED_ANGLE - self.lock_angle()) / (LOCKED_ANGLE - UNLOCKED_ANGLE), 0.0, 1.0)
        )
        return 2.0 * float(reach) + 8.0 * turned

    @SawyerXYZEnv._Decorators.assert_task_is_set
    def evaluate_state(
        self, obs: npt.NDArray[np.float64], action: npt.NDArray[np.float32]
    ) -> tuple[float, dict[str, Any]]:
        assert self._target_pos is not None
        door_reward, reward_grab, reward_ready, reward_open = self.compute_reward(action, obs)
        unlocked, opened = self.lock_unlocked(), self.door_open()
        success = unlocked and opened
        if success:
            reward = 10.0
        elif unlocked:
            reward = 5.0 + 0.5 * min(float(door_reward), 9.99)
        else:
            reward = 0.5 * self._unlock_reward(obs)
        info = {
            "success": float(success),
            "near_object": reward_ready,
            "grasp_success": reward_grab >= 0.5,
            "grasp_reward": reward_grab,
            "in_place_reward": reward_open,
            "obj_to_target": abs(float(obs[4] - self._target_pos[0])),
            "unscaled_reward": reward,
            "unlocked": float(unlocked),
            "door_open": float(opened),
            "lock_angle": self.lock_angle(),
            "door_angle": self.door_angle(),
        }
        return reward, info


def make_env(seed: int | None = None) -> SawyerDoorUnlockOpenEnvV3:
    """The env set up as ``vlgor_envs.metaworld.env._Scene`` sets up Meta-World's: goal
    observable, start states drawn from ``np_random`` at every reset; seeded if ``seed`` is
    given (then call ``reset()``)."""
    env = SawyerDoorUnlockOpenEnvV3()
    env._partially_observable = False
    env._freeze_rand_vec = False
    env._set_task_called = True
    env.seeded_rand_vec = True
    if seed is not None:
        env.seed(seed)
    return env


#: Scenes of this module by Meta-World-style name, for code that builds scenes by name.
SCENES: dict[str, type[SawyerXYZEnv]] = {SCENE_NAME: SawyerDoorUnlockOpenEnvV3}


@functools.cache
def _unlock_policy() -> SawyerDoorUnlockV3Policy:
    return SawyerDoorUnlockV3Policy()


@functools.cache
def _open_policy() -> SawyerDoorOpenV3Policy:
    return SawyerDoorOpenV3Policy()


@dataclass
class DoorUnlockOpenExpert:
    """Scripted expert for :class:`SawyerDoorUnlockOpenEnvV3`: unlock, then open the door.

    Input: the env's 39-d observation (see the env's Observation Space), nothing else; the
    expert keeps no state between calls, so one instance serves any number of episodes.

    - Stage 0 (unlock) while the lock angle read from the observation is above
      ``UNLOCKED_ANGLE`` and the door is still shut: Meta-World's ``SawyerDoorUnlockV3Policy``
      is shown the lever tip (``obs[11:14]``) in place of its object (``obs[4:7]``).
    - Stage 1 (open) once unlocked, or once the door is free (opened past
      ``DOOR_FREE_ANGLE``, so a lever knocked back while pulling does not undo the work):
      Meta-World's ``SawyerDoorOpenV3Policy`` on the handle (``obs[4:7]``). While the door is
      shut and the hand is still left of the handle (where unlocking leaves it), the hand
      first goes to that policy's approach point 0.2 above the handle.
    """

    def stage(self, obs: npt.ArrayLike) -> int:
        """0 while the lock still needs turning, 1 once the door can be opened."""
        obs = np.asarray(obs, dtype=np.float64)
        return int(lock_angle_of(obs) <= UNLOCKED_ANGLE or door_angle_of(obs) > DOOR_FREE_ANGLE)

    def get_action(self, obs: npt.ArrayLike) -> np.ndarray:
        """The action in ``[-1, 1]^4`` for an observation of the env."""
        shown = np.array(obs, dtype=np.float64)  # a copy: the door policy edits its input
        if self.stage(shown) == 0:
            shown[4:7] = shown[_LOCK]
            action = _unlock_policy().get_action(shown)
        elif door_angle_of(shown) < DOOR_FREE_ANGLE and hand_left_of_handle(shown):
            # Unlocking leaves the hand low, left of the handle; the door policy would push
            # it straight into the door. Go over the handle as that policy does from afar.
            action = over_handle_action(shown)
        else:
            action = _open_policy().get_action(shown)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
