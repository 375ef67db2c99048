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

drop_gym_notice()  # before anything imports d3rlpy, which imports the old gym

register(
    id="VLGOR-CLEVR-v0",
    entry_point="vlgor_envs.clevr.env:ClevrRobotEnv",
    max_episode_steps=50,
    kwargs={"split": "train", "image_size": 64},
)
register(
    id="VLGOR-MetaWorld-v0",
    entry_point="vlgor_envs.metaworld.env:MetaWorldLanguageEnv",
    kwargs={"split": "train", "image_size": 64},
)
register(
    id="VLGOR-Imagined-CLEVR",
    entry_point="vlgor_envs.imagination.env:ImaginedEnv",
    vector_entry_point="vlgor_envs.imagination.env:ImaginedVectorEnv",
    kwargs={"env": "clevr", "split": "train"},
)
register(
    id="VLGOR-Imagined-MetaWorld",
    entry_point="vlgor_envs.imagination.env:ImaginedEnv",
    vector_entry_point="vlgor_envs.imagination.env:ImaginedVectorEnv",
    kwargs={"env": "metaworld", "split": "train"},
)
