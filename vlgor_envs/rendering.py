"""Offscreen MuJoCo renderers for the envs: fast settings, a blank-frame guard, clean exit.

Shadows and reflections are turned off (multisampling is off in each scene's XML), which
made software rendering about five times faster here. A GL context made while an older one
is still alive can silently render nothing, so a renderer's first frame is checked. Renderers
still open when Python exits are closed before MuJoCo tears down the EGL display, which
would otherwise print errors.
"""

from __future__ import annotations

import atexit
import os
import weakref

import mujoco
import numpy as np

_OPEN: weakref.WeakSet[mujoco.Renderer] = weakref.WeakSet()


def _close_open_renderers() -> None:
    for renderer in list(_OPEN):
        renderer.close()


def make_renderer(model: mujoco.MjModel, image_size: int) -> mujoco.Renderer:
    """A square offscreen renderer with shadows and reflections off."""
    renderer = mujoco.Renderer(model, image_size, image_size)
    if not _OPEN:
        # Registered after MuJoCo's own EGL exit hook (made with the first context), so it
        # runs before that one.
        atexit.unregister(_close_open_renderers)
        atexit.register(_close_open_renderers)
    _OPEN.add(renderer)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
        renderer.scene.flags[flag] = 0
    return renderer


def check_not_blank(frame: np.ndarray) -> np.ndarray:
    """``frame`` unless it is constant, which means the GL context rendered nothing."""
    if np.ptp(frame) == 0:
        raise RuntimeError(
            "MuJoCo rendered a constant frame: close() environments you no longer use before "
            f"creating new ones (MUJOCO_GL={os.environ.get('MUJOCO_GL')!r})"
        )
    return frame
