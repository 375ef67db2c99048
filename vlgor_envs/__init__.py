"""vlgor environments: language-goal MuJoCo tasks registered with Gymnasium.

Importing the package registers every ``VLGOR-*`` id (string entry points only, so
``env.spec.to_json()`` works and Minari can store it).
"""

import os

# Headless first: MuJoCo would otherwise try GLFW, which needs a display. Set before
# anything imports mujoco; a user's own choice wins.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])

from gymnasium.envs.registration import register

from vlgor_envs.quiet import drop_gym_notice
from vlgor_envs.registry import ENTRIES

drop_gym_notice()  # before anything imports d3rlpy, which imports the old gym

for _entry in ENTRIES.values():
    register(
        id=_entry.env_id,
        entry_point=_entry.entry_point,
        max_episode_steps=_entry.max_episode_steps,
        kwargs={"split": "train", "image_size": 64},
    )
    register(
        id=_entry.imagined_env_id,
        entry_point="vlgor_envs.imagination.env:ImaginedEnv",
        vector_entry_point="vlgor_envs.imagination.env:ImaginedVectorEnv",
        kwargs={"env": _entry.name, "split": "train"},
    )
