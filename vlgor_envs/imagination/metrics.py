"""Frame fidelity measures: PSNR and SSIM of ``uint8`` frames, and arena-normalised distances."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vlgor_envs.clevr.scene import ARENA_BOUNDS

_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """PSNR in dB of each pair of frames ``(..., H, W, 3)`` (``inf`` capped at 100 for equal frames)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(-3, -2, -1))
    return np.minimum(10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0)


def _gaussian_kernel(size: int = 11, sigma: float = 1.5) -> npt.NDArray[np.float64]:
    x = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(z: npt.NDArray[np.float64], g: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The ``valid`` Gaussian filter of images ``(N, H, W, C)``: the window is separable, so two
    1-d passes of shifted sums (22 products a pixel instead of 121)."""
    size = len(g)
    height, width = z.shape[1] - size + 1, z.shape[2] - size + 1
    rows = sum(g[k] * z[:, k : k + height] for k in range(size))
    return sum(g[k] * rows[:, :, k : k + width] for k in range(size))


def ssim(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, per channel, averaged) per pair."""
    x = np.asarray(a, dtype=np.float64).reshape(-1, *a.shape[-3:])
    y = np.asarray(b, dtype=np.float64).reshape(-1, *b.shape[-3:])
    g = _gaussian_kernel()
    mu_x, mu_y = _blur(x, g), _blur(y, g)
    var_x = _blur(x * x, g) - mu_x**2
    var_y = _blur(y * y, g) - mu_y**2
    cov = _blur(x * y, g) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    )
    return index.mean(axis=(1, 2, 3)).reshape(a.shape[:-3])


def arena_normalised_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Distance between CLEVR positions ``(..., 2)`` after mapping the arena to the unit square."""
    x0, x1, y0, y1 = ARENA_BOUNDS
    scale = np.array([x1 - x0, y1 - y0])
    return np.linalg.norm((np.asarray(a) - np.asarray(b)) / scale, axis=-1)
