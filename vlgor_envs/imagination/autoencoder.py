"""A small convolutional autoencoder between frames and the latent grid the flow works on.

``image_size x image_size x 3`` uint8 frames map to a ``latent_channels x image_size/4 x
image_size/4`` float grid and back. Latents are normalised per channel by statistics measured
on training frames, so the rectified flow sees roughly unit-variance targets.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn


@dataclasses.dataclass
class AutoencoderConfig:
    """Shape of the frame autoencoder."""

    image_size: int = 64
    #: Channels of the latent grid.
    latent_channels: int = 16
    #: Channels of the convolutions at half and quarter resolution.
    hidden_channels: tuple[int, int] = (32, 64)

    @property
    def latent_size(self) -> int:
        """Side of the latent grid (the frame side divided by 4)."""
        return self.image_size // 4


def _block(channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.SiLU(),
        nn.Conv2d(channels, channels, 3, padding=1),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = _block(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FrameAutoencoder(nn.Module):
    """Frames (``uint8``, ``(B, H, W, 3)``) to normalised latents ``(B, C, H/4, W/4)`` and back."""

    latent_mean: torch.Tensor
    latent_std: torch.Tensor

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        if cfg.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {cfg.image_size}")
        self.cfg = cfg
        c1, c2 = cfg.hidden_channels
        # Full resolution has no convolution of its own: frames are flat-shaded, and the
        # first stride-2 layer sees every pixel (measured: most of the cost, little PSNR).
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 4, stride=2, padding=1),
            nn.SiLU(),
            _Residual(c1),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            nn.SiLU(),
            _Residual(c2),
            nn.Conv2d(c2, cfg.latent_channels, 3, padding=1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(cfg.latent_channels, c2, 3, padding=1),
            _Residual(c2),
            _Residual(c2),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1),
            nn.SiLU(),
            _Residual(c1),
            nn.ConvTranspose2d(c1, 3, 4, stride=2, padding=1),
        )
        # Per-channel latent statistics, set by ``fit_latent_statistics`` after training.
        self.register_buffer("latent_mean", torch.zeros(1, cfg.latent_channels, 1, 1))
        self.register_buffer("latent_std", torch.ones(1, cfg.latent_channels, 1, 1))

    @staticmethod
    def to_unit(frames: torch.Tensor) -> torch.Tensor:
        """``uint8 (B, H, W, 3)`` to float ``(B, 3, H, W)`` in ``[-1, 1]``."""
        return frames.permute(0, 3, 1, 2).float() / 127.5 - 1.0

    @staticmethod
    def to_uint8(unit: torch.Tensor) -> torch.Tensor:
        """Float ``(B, 3, H, W)`` in ``[-1, 1]`` to ``uint8 (B, H, W, 3)``, rounded and clipped."""
        return ((unit.clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Normalised latents of ``uint8`` frames."""
        return (self.encoder(self.to_unit(frames)) - self.latent_mean) / self.latent_std

    def decode_unit(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames in ``[-1, 1]`` (``(B, 3, H, W)``) from normalised latents."""
        return self.decoder(latents * self.latent_std + self.latent_mean)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``uint8`` frames ``(B, H, W, 3)`` from normalised latents."""
        return self.to_uint8(self.decode_unit(latents))

    def loss(self, frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Reconstruction loss (L1 + MSE on ``[-1, 1]`` pixels) of a batch of frames."""
        target = self.to_unit(frames)
        reconstruction = self.decoder(self.encoder(target))
        mse = torch.mean((reconstruction - target) ** 2)
        loss = torch.mean(torch.abs(reconstruction - target)) + mse
        psnr = 10 * torch.log10(4.0 / mse.detach().clamp(min=1e-10))
        return loss, {"autoencoder_loss": loss.item(), "psnr": psnr.item()}

    @torch.no_grad()
    def fit_latent_statistics(self, frames: torch.Tensor, batch_size: int = 256) -> None:
        """Set the per-channel latent mean and std from a sample of frames."""
        raw = torch.cat(
            [
                self.encoder(self.to_unit(frames[i : i + batch_size]))
                for i in range(0, len(frames), batch_size)
            ]
        )
        self.latent_mean.copy_(raw.mean(dim=(0, 2, 3), keepdim=True))
        self.latent_std.copy_(raw.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-4))
