"""The shared renderer helpers: fast settings, the blank-frame guard, quiet exit."""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from vlgor_envs.rendering import check_not_blank, make_renderer


def test_blank_frames_raise_an_error_that_names_the_fix() -> None:
    with pytest.raises(RuntimeError, match=r"constant frame: close\(\) environments"):
        check_not_blank(np.zeros((8, 8, 3), np.uint8))
    frame = np.zeros((8, 8, 3), np.uint8)
    frame[0, 0] = 1
    assert check_not_blank(frame) is frame


def test_renderers_skip_shadows_and_reflections() -> None:
    model = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='1'/></worldbody></mujoco>")
    renderer = make_renderer(model, 16)
    assert renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] == 0
    assert renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] == 0
    renderer.close()


def test_envs_left_open_exit_without_errors() -> None:
    script = (
        "import gymnasium as gym, vlgor_envs\n"
        "for env_id in ('VLGOR-CLEVR-v0', 'VLGOR-MetaWorld-v0'):\n"
        "    gym.make(env_id).reset(seed=0)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "EGLError" not in result.stderr and "Traceback" not in result.stderr
