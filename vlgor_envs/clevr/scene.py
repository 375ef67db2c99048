"""The MuJoCo scene of CLEVR-Robot: five balls on a walled table and a pusher.

The balls slide on the table plane (two slide joints each, damped so a push ends in a short
coast). The pusher is a small sphere on two slide joints driven by velocity actuators; it
collides with balls only, so it can be placed behind a ball that rests against a wall. Between
pushes it is parked outside the arena and out of view.
"""

from __future__ import annotations

import mujoco
import numpy as np

from vlgor_envs.language.clevr import COLOURS
from vlgor_envs.rendering import check_not_blank, make_renderer

BALL_RADIUS = 0.13
PUSHER_RADIUS = 0.05
TIMESTEP = 0.01
#: Rectangle the ball centres are spawned in, ``(x_min, x_max, y_min, y_max)``.
SPAWN_BOUNDS = (-0.5, 0.5, -0.3, 0.5)
#: Rectangle the walls keep the ball centres in.
ARENA_BOUNDS = (-0.75, 0.75, -0.55, 0.75)
#: Centre and side length of the square the orthographic top-down camera sees.
VIEW_CENTRE = (0.0, 0.1)
VIEW_SIZE = 1.9
PARK_POSITION = (5.0, 5.0)

PUSH_SPEED = 0.5
PUSH_SUBSTEPS = 20
SETTLE_SUBSTEPS = 15

_RGB = {
    "red": "0.86 0.12 0.12",
    "blue": "0.12 0.28 0.92",
    "green": "0.10 0.68 0.18",
    "purple": "0.58 0.18 0.78",
    "cyan": "0.10 0.80 0.86",
}
_WALL_THICKNESS = 0.1


def scene_xml() -> str:
    """MJCF of the scene; rendering is configured for speed (no shadows, reflections, MSAA)."""
    x0, x1, y0, y1 = ARENA_BOUNDS
    inner = BALL_RADIUS
    half_w = _WALL_THICKNESS / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_x, half_y = (x1 - x0) / 2 + inner + 2 * half_w, (y1 - y0) / 2 + inner + 2 * half_w
    walls = [
        (x0 - inner - half_w, cy, half_w, half_y),
        (x1 + inner + half_w, cy, half_w, half_y),
        (cx, y0 - inner - half_w, half_x, half_w),
        (cx, y1 + inner + half_w, half_x, half_w),
    ]
    wall_xml = "\n".join(
        f'<geom type="box" pos="{x} {y} 0.06" size="{sx} {sy} 0.06" rgba="0.35 0.35 0.38 1" '
        'contype="1" conaffinity="0"/>'
        for x, y, sx, sy in walls
    )
    ball_xml = "\n".join(
        f'<body name="{colour}" pos="0 0 {BALL_RADIUS}">'
        f'<joint name="{colour}_x" type="slide" axis="1 0 0" damping="20"/>'
        f'<joint name="{colour}_y" type="slide" axis="0 1 0" damping="20"/>'
        f'<geom type="sphere" size="{BALL_RADIUS}" mass="1" rgba="{_RGB[colour]} 1" '
        'contype="1" conaffinity="3"/></body>'
        for colour in COLOURS
    )
    return f"""<mujoco model="vlgor_clevr_robot">
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <headlight ambient="0.55 0.55 0.55" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
  </visual>
  <worldbody>
    <light pos="0 0 3" dir="0 0 -1" castshadow="false" diffuse="0.35 0.35 0.35"/>
    <geom type="plane" size="3 3 0.1" rgba="0.82 0.80 0.76 1" contype="0" conaffinity="0"/>
    {wall_xml}
    <camera name="top" pos="{VIEW_CENTRE[0]} {VIEW_CENTRE[1]} 2" xyaxes="1 0 0 0 1 0"
            orthographic="true" fovy="{VIEW_SIZE}"/>
    {ball_xml}
    <body name="pusher" pos="0 0 {BALL_RADIUS}">
      <joint name="pusher_x" type="slide" axis="1 0 0"/>
      <joint name="pusher_y" type="slide" axis="0 1 0"/>
      <geom type="sphere" size="{PUSHER_RADIUS}" mass="1" rgba="0.75 0.75 0.78 1"
            contype="2" conaffinity="0"/>
    </body>
  </worldbody>
  <actuator>
    <velocity joint="pusher_x" kv="200" forcerange="-60 60"/>
    <velocity joint="pusher_y" kv="200" forcerange="-60 60"/>
  </actuator>
</mujoco>"""


class Scene:
    """Physics and rendering of one CLEVR-Robot table.

    ``positions`` is a ``(5, 2)`` array of ball centres in ``COLOURS`` order.
    """

    def __init__(self, image_size: int) -> None:
        self.model = mujoco.MjModel.from_xml_string(scene_xml())
        self.data = mujoco.MjData(self.model)
        self.image_size = image_size
        self._renderer: mujoco.Renderer | None = None
        self._ball_dofs = slice(0, 2 * len(COLOURS))
        self._pusher_dofs = slice(2 * len(COLOURS), 2 * len(COLOURS) + 2)

    @property
    def positions(self) -> np.ndarray:
        return self.data.qpos[self._ball_dofs].reshape(len(COLOURS), 2).copy()

    def set_positions(self, positions: np.ndarray) -> None:
        """Place the balls at rest and park the pusher."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._ball_dofs] = np.asarray(positions, dtype=np.float64).ravel()
        self.data.qpos[self._pusher_dofs] = PARK_POSITION
        mujoco.mj_forward(self.model, self.data)

    def push(self, ball: int, direction: np.ndarray) -> None:
        """Put the pusher behind ``ball`` and drive it along the unit vector ``direction``."""
        start = self.data.qpos[2 * ball : 2 * ball + 2]
        self.data.qpos[self._pusher_dofs] = start - direction * (BALL_RADIUS + PUSHER_RADIUS + 0.01)
        self.data.qvel[self._pusher_dofs] = 0.0
        self.data.ctrl[:] = direction * PUSH_SPEED
        mujoco.mj_step(self.model, self.data, nstep=PUSH_SUBSTEPS)
        self.data.ctrl[:] = 0.0
        self.data.qpos[self._pusher_dofs] = PARK_POSITION
        self.data.qvel[self._pusher_dofs] = 0.0
        mujoco.mj_step(self.model, self.data, nstep=SETTLE_SUBSTEPS)

    def render(self) -> np.ndarray:
        """The top-down frame, ``(image_size, image_size, 3)`` uint8."""
        if self._renderer is None:
            self._renderer = make_renderer(self.model, self.image_size)
            self._renderer.update_scene(self.data, "top")
            return check_not_blank(self._renderer.render())
        self._renderer.update_scene(self.data, "top")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_renderer"] = None  # GL contexts do not pickle; a new one is made on demand
        return state


def world_to_pixel(xy: np.ndarray, image_size: int) -> np.ndarray:
    """Pixel ``(row, column)`` of world points ``(..., 2)`` in the top-down frame."""
    xy = np.asarray(xy, dtype=np.float64)
    scale = image_size / VIEW_SIZE
    column = (xy[..., 0] - VIEW_CENTRE[0]) * scale + image_size / 2
    row = image_size / 2 - (xy[..., 1] - VIEW_CENTRE[1]) * scale
    return np.stack([row, column], axis=-1)
