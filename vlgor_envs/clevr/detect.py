"""Ball positions read back from a top-down frame by colour, for imagined frames.

The floor is near-white and the walls grey, so every strongly saturated pixel belongs to a
ball. Each such pixel is given to the ball whose hue is nearest, and a ball's centre is the
saturation-weighted centroid of its pixels, mapped back through the orthographic camera.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vlgor_envs.clevr.scene import VIEW_CENTRE, VIEW_SIZE
from vlgor_envs.language.clevr import COLOURS

#: Hue in degrees of each ball colour as rendered, in colour order (measured on frames).
BALL_HUES = {"red": 0.0, "blue": 218.0, "green": 128.0, "purple": 290.0, "cyan": 180.0}
#: Pixels with ``max - min`` of their RGB at least this are ball pixels.
MIN_SATURATION = 60
#: Fewer pixels than this and a ball counts as not seen.
MIN_PIXELS = 3


def pixel_to_world(row_column: npt.ArrayLike, image_size: int) -> npt.NDArray[np.float64]:
    """World ``(x, y)`` of continuous pixel coordinates ``(..., 2)`` (inverse of ``world_to_pixel``)."""
    rc = np.asarray(row_column, dtype=np.float64)
    scale = image_size / VIEW_SIZE
    x = (rc[..., 1] - image_size / 2) / scale + VIEW_CENTRE[0]
    y = (image_size / 2 - rc[..., 0]) / scale + VIEW_CENTRE[1]
    return np.stack([x, y], axis=-1)


def _hue(rgb: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.degrees(np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)) % 360.0


def detect_balls(frame: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Ball centres ``(5, 2)`` in colour order read from an ``(H, W, 3)`` frame, and which were seen.

    A ball that is not seen gets ``nan`` coordinates.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] != frame.shape[1]:
        raise ValueError(f"frame must be a square (H, W, 3) image, got shape {frame.shape}")
    rgb = frame.astype(np.float64)
    saturation = rgb.max(axis=-1) - rgb.min(axis=-1)
    rows, columns = np.nonzero(saturation >= MIN_SATURATION)
    weights = saturation[rows, columns]
    hues = _hue(rgb[rows, columns])
    references = np.array([BALL_HUES[c] for c in COLOURS])
    gap = np.abs(hues[:, None] - references[None])
    owner = np.argmin(np.minimum(gap, 360.0 - gap), axis=1)
    centres = np.full((len(COLOURS), 2), np.nan)
    seen = np.zeros(len(COLOURS), dtype=bool)
    for ball in range(len(COLOURS)):
        mine = owner == ball
        if mine.sum() < MIN_PIXELS:
            continue
        w = weights[mine]
        # Pixel (i, j) covers [i, i+1) x [j, j+1): its centre is at +0.5.
        centre = np.array(
            [np.average(rows[mine] + 0.5, weights=w), np.average(columns[mine] + 0.5, weights=w)]
        )
        centres[ball] = pixel_to_world(centre, frame.shape[0])
        seen[ball] = True
    return centres, seen
