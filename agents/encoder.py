"""Policy networks as d3rlpy encoders over tuple observations (:data:`ENCODERS`).

Observations are the tuples :func:`vlgor_envs.data.d3rlpy_bridge.to_d3rlpy` produces:
``(image uint8 (3, H, W), instruction feature float32 (D,))``. Two networks:
:class:`FilmEncoderFactory`, instruction-conditioned keypoints (CLEVR's default, see
:class:`_FilmTrunk`), and the paper's (App. A.1), in three parts:

- **text**: embedding → Linear 512 → ReLU → Linear 256 → LayerNorm;
- **vision**: Conv(3→32, k8, s4) → ReLU → Conv(32→64, k4, s2) → ReLU → Conv(64→64, k3, s1)
  → ReLU → flatten → Linear 256 → LayerNorm;
- **fusion**: concatenation → Linear 512 → ReLU, the 512-d feature d3rlpy's heads (policy,
  Q-function, value) sit on. A critic ``Q(s, a)`` (:meth:`create_with_action`) concatenates
  the action into the fusion layer's input.

While training (d3rlpy puts the networks in train mode for updates only), each image is
shifted by up to ``random_shift`` pixels (edge-padded, then cropped; DrQ's augmentation). A
shift keeps every relation between objects and stops the vision branch from memorising the
few thousand frames of a small dataset. Acting is never shifted.

Both factories are registered with d3rlpy (:data:`ENCODER_TYPE`, :data:`FILM_ENCODER_TYPE`)
when this module is imported (``import agents`` does it), which ``d3rlpy.load_learnable`` needs to rebuild a
saved learner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from d3rlpy.models.encoders import EncoderFactory, register_encoder_factory
from d3rlpy.models.torch import Encoder, EncoderWithAction
from d3rlpy.serializable_config import CONFIG_STORAGE
from torch import nn

__all__ = [
    "ENCODERS",
    "ENCODER_TYPE",
    "FILM_ENCODER_TYPE",
    "FilmEncoder",
    "FilmEncoderFactory",
    "FilmEncoderWithAction",
    "VisionLanguageEncoder",
    "VisionLanguageEncoderFactory",
    "VisionLanguageEncoderWithAction",
    "random_shift",
    "split_observation_shape",
]

#: Name of the factory in d3rlpy's encoder registry (and in saved ``.d3`` configs).
ENCODER_TYPE = "vlgor_vision_language"

#: Conv stack of the vision branch: ``(out_channels, kernel, stride)`` (Nature-DQN shape).
_CONVS: tuple[tuple[int, int, int], ...] = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
#: Smallest image side the conv stack accepts: 36 -> 8 -> 3 -> 1.
_MIN_IMAGE_SIZE = 36
#: Name of the FiLM encoder's factory in d3rlpy's registry.
FILM_ENCODER_TYPE = "vlgor_film"
#: Channels of the FiLM encoder's per-pixel maps (one keypoint each).
_FILM_CHANNELS = 32
_FILM_MIN_IMAGE_SIZE = 4


def split_observation_shape(observation_shape: Any) -> tuple[tuple[int, int, int], int]:
    """``((C, H, W), D)`` from d3rlpy's tuple-observation shape ``[(C, H, W), (D,)]``.

    d3rlpy passes tuples when a learner is built from a dataset and lists after a saved
    config is deserialised; both are accepted.

    Raises:
        ValueError: The shape is not one image shape and one vector shape.
    """
    ok = (
        isinstance(observation_shape, Sequence)
        and len(observation_shape) == 2
        and all(isinstance(s, Sequence) for s in observation_shape)
        and len(observation_shape[0]) == 3
        and len(observation_shape[1]) == 1
    )
    if not ok:
        raise ValueError(
            "the vision-language encoder needs tuple observations (image (C, H, W), embedding (D,)) "
            "as vlgor_envs.data.d3rlpy_bridge.to_d3rlpy makes them; "
            f"got observation shape {observation_shape!r}"
        )
    channels, height, width = (int(v) for v in observation_shape[0])
    return (channels, height, width), int(observation_shape[1][0])


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """``images`` ``(N, C, H, W)``, each moved by its own random offset of ``-pad..pad`` pixels.

    The border is edge-padded, so no black frame appears. Offsets come from torch's global
    generator, which d3rlpy seeds. Edge padding is index clamping, so one gather of the
    source pixels does it (3x faster than padding and indexing a copy, and equal to it).
    """
    if pad <= 0:
        return images
    count, channels, height, width = images.shape
    dy = torch.randint(0, 2 * pad + 1, (count, 1, 1), device=images.device)
    dx = torch.randint(0, 2 * pad + 1, (count, 1, 1), device=images.device)
    rows = (dy - pad + torch.arange(height, device=images.device)[None, :, None]).clamp(0, height - 1)
    cols = (dx - pad + torch.arange(width, device=images.device)[None, None, :]).clamp(0, width - 1)
    index = (rows * width + cols).view(count, 1, height * width).expand(-1, channels, -1)
    flat = images.reshape(count, channels, height * width)
    return flat.gather(2, index).view(count, channels, height, width)


class _VisionLanguageTrunk(nn.Module):
    """Text and vision branches; returns their concatenated features (unfused)."""

    def __init__(
        self, image_shape: tuple[int, int, int], embedding_dim: int, cfg: VisionLanguageEncoderFactory
    ) -> None:
        super().__init__()
        self.text = nn.Sequential(
            nn.Linear(embedding_dim, cfg.text_hidden_size),
            nn.ReLU(),
            nn.Linear(cfg.text_hidden_size, cfg.text_feature_size),
            nn.LayerNorm(cfg.text_feature_size),
        )
        layers: list[nn.Module] = []
        channels = image_shape[0]
        for out_channels, kernel, stride in _CONVS:
            layers += [nn.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride), nn.ReLU()]
            channels = out_channels
        self.convs = nn.Sequential(*layers, nn.Flatten())
        try:
            with torch.no_grad():
                flat = int(self.convs(torch.zeros(1, *image_shape)).shape[1])
        except RuntimeError as exc:
            raise ValueError(
                f"images of shape {image_shape} are too small for the encoder's convolutions "
                f"(kernels 8, 4, 3 at strides 4, 2, 1 need at least {_MIN_IMAGE_SIZE} pixels a side)"
            ) from exc
        self.vision = nn.Sequential(
            nn.Linear(flat, cfg.vision_feature_size), nn.LayerNorm(cfg.vision_feature_size)
        )
        self.output_size = cfg.text_feature_size + cfg.vision_feature_size
        self.shift = cfg.random_shift

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        if not (isinstance(x, Sequence) and len(x) == 2):
            raise ValueError("the vision-language encoder needs observations (image, embedding)")
        image, embedding = x
        # d3rlpy hands over pixels as floats in 0..255 (uint8 cast to float, never scaled).
        if self.training:
            image = random_shift(image, self.shift)
        pixels = image.float() / 255.0
        return torch.cat([self.vision(self.convs(pixels)), self.text(embedding.float())], dim=1)


class VisionLanguageEncoder(Encoder):
    """State encoder ``(image, embedding) -> feature`` of the paper's policy network."""

    def __init__(self, observation_shape: Any, cfg: VisionLanguageEncoderFactory | None = None) -> None:
        super().__init__()
        cfg = cfg or VisionLanguageEncoderFactory()
        image_shape, embedding_dim = split_observation_shape(observation_shape)
        self.trunk = _VisionLanguageTrunk(image_shape, embedding_dim, cfg)
        self.fusion = nn.Sequential(nn.Linear(self.trunk.output_size, cfg.feature_size), nn.ReLU())

    def forward(self, x: Any) -> torch.Tensor:
        return self.fusion(self.trunk(x))


class VisionLanguageEncoderWithAction(EncoderWithAction):
    """State-action encoder ``(image, embedding), action -> feature`` for ``Q(s, a)`` critics.

    Discrete actions (indices) are one-hot encoded before they join the fusion layer.
    """

    def __init__(
        self,
        observation_shape: Any,
        action_size: int,
        discrete_action: bool = False,
        cfg: VisionLanguageEncoderFactory | None = None,
    ) -> None:
        super().__init__()
        cfg = cfg or VisionLanguageEncoderFactory()
        image_shape, embedding_dim = split_observation_shape(observation_shape)
        self.action_size = action_size
        self.discrete_action = discrete_action
        self.trunk = _VisionLanguageTrunk(image_shape, embedding_dim, cfg)
        self.fusion = nn.Sequential(
            nn.Linear(self.trunk.output_size + action_size, cfg.feature_size), nn.ReLU()
        )

    def forward(self, x: Any, action: torch.Tensor) -> torch.Tensor:
        if self.discrete_action:
            action = F.one_hot(action.view(-1).long(), num_classes=self.action_size).float()
        return self.fusion(torch.cat([self.trunk(x), action], dim=1))


@dataclasses.dataclass()
class VisionLanguageEncoderFactory(EncoderFactory):
    """d3rlpy encoder factory of the paper's policy network (App. A.1).

    Pass it as ``encoder_factory`` (or ``actor_encoder_factory``, ``critic_encoder_factory``,
    ...) of any d3rlpy config; :func:`agents.registry.make_algorithm` does so for every
    network. The defaults are the paper's sizes.

    Args:
        text_hidden_size: Hidden width of the text MLP.
        text_feature_size: Text feature width (after LayerNorm).
        vision_feature_size: Vision feature width (after LayerNorm).
        feature_size: Width of the fused feature, what the heads see.
        random_shift: Largest shift, in pixels, of the training images (0: none).
    """

    text_hidden_size: int = 512
    text_feature_size: int = 256
    vision_feature_size: int = 256
    feature_size: int = 512
    random_shift: int = 4

    def __post_init__(self) -> None:
        if self.random_shift < 0:
            raise ValueError(f"random_shift must be >= 0 pixels, got {self.random_shift}")

    def create(self, observation_shape: Any) -> VisionLanguageEncoder:
        return VisionLanguageEncoder(observation_shape, self)

    def create_with_action(
        self, observation_shape: Any, action_size: int, discrete_action: bool = False
    ) -> VisionLanguageEncoderWithAction:
        return VisionLanguageEncoderWithAction(observation_shape, action_size, discrete_action, self)

    @staticmethod
    def get_type() -> str:
        return ENCODER_TYPE


class FiLM(nn.Module):
    """Feature-wise linear modulation (Perez et al., 2018): ``x * (1 + gamma(t)) + beta(t)``."""

    def __init__(self, condition_size: int, channels: int) -> None:
        super().__init__()
        self.affine = nn.Linear(condition_size, 2 * channels)
        nn.init.zeros_(self.affine.weight)  # starts as the identity
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(condition)[:, :, None, None].chunk(2, dim=1)
        return x * (1.0 + gamma) + beta


def spatial_softmax(maps: torch.Tensor) -> torch.Tensor:
    """Expected ``(x, y)`` in ``[-1, 1]`` of each channel's softmax over its map: ``(N, 2C)``."""
    count, channels, height, width = maps.shape
    weights = torch.softmax(maps.reshape(count, channels, height * width), dim=-1)
    ys, xs = torch.meshgrid(
        torch.linspace(-1.0, 1.0, height, device=maps.device),
        torch.linspace(-1.0, 1.0, width, device=maps.device),
        indexing="ij",
    )
    expected_x = weights @ xs.reshape(-1, 1)
    expected_y = weights @ ys.reshape(-1, 1)
    return torch.cat([expected_x, expected_y], dim=2).reshape(count, 2 * channels)


def coordinate_channels(images: torch.Tensor) -> torch.Tensor:
    """``images`` with two more channels holding each pixel's x and y in ``[-1, 1]`` (CoordConv)."""
    count, _, height, width = images.shape
    ys, xs = torch.meshgrid(
        torch.linspace(-1.0, 1.0, height, device=images.device),
        torch.linspace(-1.0, 1.0, width, device=images.device),
        indexing="ij",
    )
    grid = torch.stack([xs, ys]).expand(count, -1, -1, -1)
    return torch.cat([images, grid], dim=1)


class _FilmTrunk(nn.Module):
    """Instruction-conditioned keypoints: where the balls the instruction names are.

    The frame is halved (2x2 average), given coordinate channels (CoordConv), and two 1x1
    convolutions map each pixel's colour to :data:`_FILM_CHANNELS` channels; the instruction
    then scales and shifts every channel (FiLM), choosing which colours light up, and a
    spatial softmax reads each channel's position. The trunk returns those ``(x, y)`` pairs
    beside the text feature, so the head sees "where is the ball named here" directly, which
    is what CLEVR's relations need and what the paper's stride-4 network blurs.
    """

    def __init__(
        self, image_shape: tuple[int, int, int], embedding_dim: int, cfg: FilmEncoderFactory
    ) -> None:
        super().__init__()
        if min(image_shape[1:]) < _FILM_MIN_IMAGE_SIZE:
            raise ValueError(
                f"images of shape {image_shape} are too small for the FiLM encoder "
                f"(at least {_FILM_MIN_IMAGE_SIZE} pixels a side)"
            )
        self.text = nn.Sequential(
            nn.Linear(embedding_dim, cfg.text_hidden_size),
            nn.ReLU(),
            nn.Linear(cfg.text_hidden_size, cfg.text_feature_size),
            nn.LayerNorm(cfg.text_feature_size),
        )
        self.pixels = nn.Sequential(
            nn.Conv2d(image_shape[0] + 2, _FILM_CHANNELS, 1),
            nn.ReLU(),
            nn.Conv2d(_FILM_CHANNELS, _FILM_CHANNELS, 1),
            nn.ReLU(),
        )
        self.film = FiLM(cfg.text_feature_size, _FILM_CHANNELS)
        # Softmax sharpness, learned; exp(0) * 10 already peaks on a lit ball.
        self.log_sharpness = nn.Parameter(torch.zeros(()))
        self.output_size = 2 * _FILM_CHANNELS + cfg.text_feature_size
        self.shift = cfg.random_shift

    def forward(self, x: Sequence[torch.Tensor]) -> torch.Tensor:
        if not (isinstance(x, Sequence) and len(x) == 2):
            raise ValueError("the FiLM encoder needs observations (image, embedding)")
        image, embedding = x
        if self.training:
            image = random_shift(image, self.shift)
        text = self.text(embedding.float())
        pixels = coordinate_channels(F.avg_pool2d(image.float() / 255.0, 2))
        maps = torch.relu(self.film(self.pixels(pixels), text))
        keypoints = spatial_softmax(maps * (10.0 * self.log_sharpness.exp()))
        return torch.cat([keypoints, text], dim=1)


def _film_head(in_features: int, feature_size: int) -> nn.Sequential:
    """Two hidden layers: the keypoints' relations are computed here, not in the trunk."""
    return nn.Sequential(
        nn.Linear(in_features, feature_size), nn.ReLU(), nn.Linear(feature_size, feature_size), nn.ReLU()
    )


class FilmEncoder(Encoder):
    """State encoder ``(image, embedding) -> feature`` with instruction-conditioned vision."""

    def __init__(self, observation_shape: Any, cfg: FilmEncoderFactory | None = None) -> None:
        super().__init__()
        cfg = cfg or FilmEncoderFactory()
        image_shape, embedding_dim = split_observation_shape(observation_shape)
        self.trunk = _FilmTrunk(image_shape, embedding_dim, cfg)
        self.fusion = _film_head(self.trunk.output_size, cfg.feature_size)

    def forward(self, x: Any) -> torch.Tensor:
        return self.fusion(self.trunk(x))


class FilmEncoderWithAction(EncoderWithAction):
    """State-action encoder of :class:`FilmEncoder` for ``Q(s, a)`` critics."""

    def __init__(
        self,
        observation_shape: Any,
        action_size: int,
        discrete_action: bool = False,
        cfg: FilmEncoderFactory | None = None,
    ) -> None:
        super().__init__()
        cfg = cfg or FilmEncoderFactory()
        image_shape, embedding_dim = split_observation_shape(observation_shape)
        self.action_size = action_size
        self.discrete_action = discrete_action
        self.trunk = _FilmTrunk(image_shape, embedding_dim, cfg)
        self.fusion = _film_head(self.trunk.output_size + action_size, cfg.feature_size)

    def forward(self, x: Any, action: torch.Tensor) -> torch.Tensor:
        if self.discrete_action:
            action = F.one_hot(action.view(-1).long(), num_classes=self.action_size).float()
        return self.fusion(torch.cat([self.trunk(x), action], dim=1))


@dataclasses.dataclass()
class FilmEncoderFactory(EncoderFactory):
    """d3rlpy encoder factory of the FiLM keypoint encoder (:class:`_FilmTrunk`): CLEVR's default.

    Args:
        text_hidden_size: Hidden width of the text MLP.
        text_feature_size: Text feature width, which also conditions the pixel maps.
        feature_size: Width of the head's two hidden layers, what d3rlpy's heads see.
        random_shift: Largest shift, in pixels, of the training images (0: none; a shift
            moves every keypoint, which the 1,500-step pilots learned worse with).
    """

    text_hidden_size: int = 256
    text_feature_size: int = 128
    feature_size: int = 512
    random_shift: int = 0

    def __post_init__(self) -> None:
        if self.random_shift < 0:
            raise ValueError(f"random_shift must be >= 0 pixels, got {self.random_shift}")

    def create(self, observation_shape: Any) -> FilmEncoder:
        return FilmEncoder(observation_shape, self)

    def create_with_action(
        self, observation_shape: Any, action_size: int, discrete_action: bool = False
    ) -> FilmEncoderWithAction:
        return FilmEncoderWithAction(observation_shape, action_size, discrete_action, self)

    @staticmethod
    def get_type() -> str:
        return FILM_ENCODER_TYPE


# d3rlpy's registry asserts on a second registration (a module reload, importlib tricks).
#: The policy networks by name (``vlgor train --encoder``).
ENCODERS: dict[str, type[VisionLanguageEncoderFactory] | type[FilmEncoderFactory]] = {
    "paper": VisionLanguageEncoderFactory,
    "film": FilmEncoderFactory,
}

for _factory in (VisionLanguageEncoderFactory, FilmEncoderFactory):
    if _factory.get_type() not in CONFIG_STORAGE[EncoderFactory].config_list:
        register_encoder_factory(_factory)
