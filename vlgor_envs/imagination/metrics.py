"""Frame fidelity measures: PSNR and SSIM of ``uint8`` frames, and arena-normalised distances."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from vlgor_envs.clevr.scene import ARENA_BOUNDS

_SSIM_C1 = (0.01 * 255) ** 2
_SSIM_C2 = (0.03 * 255) ** 2


def psnr(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """PSNR in dB of each pair of frames ``(..., H, W, 3)`` (``inf`` capped at 100 for equal frames)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=(-3, -2, -1))
    return np.minimum(10 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, per channel, averaged) per pair."""
    x = torch.from_numpy(np.asarray(a, dtype=np.float64)).reshape(-1, *a.shape[-3:]).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(b, dtype=np.float64)).reshape(-1, *b.shape[-3:]).permute(0, 3, 1, 2)
    window = _gaussian_window()

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, window, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    index = ((2 * mu_x * mu_y + _SSIM_C1) * (2 * cov + _SSIM_C2)) / (
        (mu_x**2 + mu_y**2 + _SSIM_C1) * (var_x + var_y + _SSIM_C2)
    )
    return index.mean(dim=(1, 2, 3)).numpy().reshape(a.shape[:-3])


def arena_normalised_distance(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Distance between CLEVR positions ``(..., 2)`` after mapping the arena to the unit square."""
    x0, x1, y0, y1 = ARENA_BOUNDS
    scale = np.array([x1 - x0, y1 - y0])
    return np.linalg.norm((np.asarray(a) - np.asarray(b)) / scale, axis=-1)
