"""The imagination model: a small Mixture-of-Transformers world model in the shape of BAGEL.

Given the frame ``s_t``, the instruction ``G`` and the action ``a_t`` it predicts the frame
``s_{t+h}`` (by rectified flow on autoencoder latents), the action ``a_{t+h}`` and the object
state at ``t+h``.

Tokens (paper §3.2, Fig. 3):

- *understanding*: the instruction's MiniLM WordPiece tokens (their frozen MiniLM states,
  projected), one action token, and ViT patch tokens of ``s_t``;
- *generation*: the noised latent patches of ``s_{t+h}`` (latent patch size 2). Each also
  carries the clean latent patch of ``s_t`` at the same place, as image-editing diffusion
  models do, so the model only has to learn what changes.

Every layer has one shared self-attention over all tokens, with per-expert q/k/v/o
projections and per-expert FFNs (understanding vs generation). Understanding tokens attend
only to understanding tokens, so their keys and values are computed once per step and cached
across all flow steps; generation tokens attend to everything.

Heads: next action (40-way logits or a 4-d regression), object state (regression, normalised
by training statistics), and the flow velocity of every generation token.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from vlgor_envs.imagination.autoencoder import AutoencoderConfig, FrameAutoencoder

#: Euler steps per imagined frame (measured: 16 steps gain at most 0.4 dB PSNR at a quarter of the
#: speed; see the README).
DEFAULT_FLOW_STEPS = 2
#: Scale of the flow's starting noise when sampling: 0 starts from its mean (deterministic),
#: 1 samples as in training. Measured on the shipped CLEVR model (held-out train
#: instructions, 2 flow steps): 27.3 dB PSNR and 0.960 SSIM at 0, against 26.7 dB and 0.953 at 1.
DEFAULT_TEMPERATURE = 0.0
#: Datasets and benchmark records that name no temperature predate the option: they sampled at 1.
UNRECORDED_TEMPERATURE = 1.0


def check_temperature(temperature: float) -> None:
    """Raise ``ValueError`` unless ``temperature`` is a finite number >= 0."""
    if not 0.0 <= temperature < math.inf:
        raise ValueError(f"temperature must be a finite number >= 0 (0: deterministic), got {temperature}")


#: Names of the attention projections (LoRA targets) inside every expert.
ATTENTION_PROJECTIONS = ("q", "k", "v", "o")
#: Modules trained in full during grounding besides the LoRA adapters.
HEAD_MODULES = ("text_projection", "readout", "action_head", "state_head", "velocity_head")


def _field_names(cls: type) -> set[str]:
    return {field.name for field in dataclasses.fields(cls)}


def _check_fields(fields: set[str], data: dict[str, Any], what: str) -> None:
    """Every name of ``fields`` in ``data`` and nothing else: a saved config must not fall
    back on today's defaults."""
    missing, unknown = sorted(fields - set(data)), sorted(set(data) - fields)
    if missing or unknown:
        raise ValueError(f"{what}: missing fields {missing}, unknown fields {unknown}")


@dataclasses.dataclass
class TransformerConfig:
    """The mixture of transformers: its size, tokens and what conditions generation."""

    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    #: Side of a ViT patch of the current frame, in pixels.
    vit_patch: int = 8
    #: Side of a generation patch, in latent cells.
    latent_patch: int = 2
    #: Width of the MiniLM token states.
    text_dim: int = 384
    #: Instruction tokens kept (``[CLS]`` and ``[SEP]`` included).
    max_text_tokens: int = 32
    #: Probability of training with the instruction dropped (classifier-free guidance).
    text_dropout: float = 0.1
    #: Features per ViT token flattened into the heads' input (0: none): pooling loses where things are.
    readout_channels: int = 8
    #: Add the action token's final state to every generation token (as DiT adds its class
    #: embedding), so each latent patch knows the push without searching for it.
    condition_generation: bool = True


@dataclasses.dataclass
class FlowConfig:
    """Where the flow that generates the next latent starts."""

    #: ``"noise"``, or ``"current"`` (the current latent plus ``source_noise`` noise), whose
    #: velocity is the change itself, so the loss is about what moves.
    flow_source: str = "current"
    source_noise: float = 0.1


@dataclasses.dataclass
class LossConfig:
    """How the flow, action and state losses are weighed."""

    #: Extra flow-loss weight on latent cells that change by more than ``change_threshold``:
    #: few cells move, so unweighted the loss is nearly all about copying the rest.
    change_weight: float = 10.0
    change_threshold: float = 0.3
    action_loss_weight: float = 1.0
    state_loss_weight: float = 1.0


#: The nested configs whose fields ``config.json`` writes flat, beside the top-level ones.
_GROUPS: dict[str, type] = {"transformer": TransformerConfig, "flow": FlowConfig, "loss": LossConfig}


@dataclasses.dataclass
class WorldModelConfig:
    """Shape of the world model; saved as JSON next to the weights (every field flat).

    The defaults are the recipe that works on CLEVR (its shipped checkpoint; the model card
    gives the measurements behind it); other envs start from their registry entry's
    ``model_recipe``.
    """

    #: ``"clevr"`` or ``"metaworld"``: which real env the model imagines.
    env: str = "clevr"
    image_size: int = 64
    action_kind: Literal["discrete", "continuous"] = "discrete"
    #: Number of discrete actions, or the width of a continuous action.
    action_dim: int = 40
    #: Entries of the recorded object state the state head predicts.
    state_indices: tuple[int, ...] = tuple(range(10))
    #: Steps ahead the model predicts (``s_{t+h}``, ``a_{t+h}``).
    horizon: int = 1
    transformer: TransformerConfig = dataclasses.field(default_factory=TransformerConfig)
    flow: FlowConfig = dataclasses.field(default_factory=FlowConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    autoencoder: AutoencoderConfig = dataclasses.field(default_factory=AutoencoderConfig)

    @property
    def state_dim(self) -> int:
        return len(self.state_indices)

    def to_json(self) -> dict[str, Any]:
        """Every field, the groups' flattened (the autoencoder's stays nested)."""
        data = dataclasses.asdict(self)
        for group in _GROUPS:
            data.update(data.pop(group))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorldModelConfig:
        """The config :meth:`to_json` wrote; every field must be there, and nothing else."""
        top = _field_names(cls) - set(_GROUPS)
        grouped = {name: _field_names(group) for name, group in _GROUPS.items()}
        _check_fields(top.union(*grouped.values()), data, "world-model config")
        _check_fields(_field_names(AutoencoderConfig), data["autoencoder"], "autoencoder config")
        values = {name: data[name] for name in top}
        values["autoencoder"] = AutoencoderConfig(
            **{**data["autoencoder"], "hidden_channels": tuple(data["autoencoder"]["hidden_channels"])}
        )
        values["state_indices"] = tuple(values["state_indices"])
        for name, group in _GROUPS.items():
            values[name] = group(**{field: data[field] for field in grouped[name]})
        return cls(**values)


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    frequencies = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t[:, None] * frequencies[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class Expert(nn.Module):
    """One modality's projections: norms, q/k/v/o and an FFN."""

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        width, hidden = cfg.transformer.width, int(cfg.transformer.width * cfg.transformer.mlp_ratio)
        self.attention_norm = nn.LayerNorm(width)
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.o = nn.Linear(width, width)
        self.ffn_norm = nn.LayerNorm(width)
        self.ffn = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))


class MoTLayer(nn.Module):
    """Shared self-attention with per-expert projections, then per-expert FFNs."""

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.heads = cfg.transformer.heads
        self.understanding = Expert(cfg)
        self.generation = Expert(cfg)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.view(batch, tokens, self.heads, width // self.heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        batch, heads, tokens, head_width = x.shape
        return x.transpose(1, 2).reshape(batch, tokens, heads * head_width)

    def understand(
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Understanding tokens attend among themselves; returns them and their keys/values."""
        expert = self.understanding
        h = expert.attention_norm(x)
        k, v = self._split(expert.k(h)), self._split(expert.v(h))
        attended = F.scaled_dot_product_attention(
            self._split(expert.q(h)), k, v, attn_mask=mask[:, None, None]
        )
        x = x + expert.o(self._merge(attended))
        x = x + expert.ffn(expert.ffn_norm(x))
        return x, (k, v)

    def generate(
        self, x: torch.Tensor, cached: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        """Generation tokens attend to the cached understanding tokens and to each other."""
        expert = self.generation
        h = expert.attention_norm(x)
        k = torch.cat([cached[0], self._split(expert.k(h))], dim=2)
        v = torch.cat([cached[1], self._split(expert.v(h))], dim=2)
        full_mask = torch.cat([mask, mask.new_ones(mask.shape[0], x.shape[1])], dim=1)
        attended = F.scaled_dot_product_attention(
            self._split(expert.q(h)), k, v, attn_mask=full_mask[:, None, None]
        )
        x = x + expert.o(self._merge(attended))
        return x + expert.ffn(expert.ffn_norm(x))


@dataclasses.dataclass
class Understanding:
    """What the understanding stream computes once per step: heads' outputs and the KV cache."""

    action: torch.Tensor
    state: torch.Tensor
    cache: list[tuple[torch.Tensor, torch.Tensor]]
    mask: torch.Tensor
    current_latents: torch.Tensor
    #: Added to every generation token (zeros unless ``condition_generation``).
    condition: torch.Tensor


def _check_shape(cfg: WorldModelConfig) -> None:
    """Raise ``ValueError`` if the frame, patches and heads of ``cfg`` do not fit together."""
    shape = cfg.transformer
    if cfg.image_size != cfg.autoencoder.image_size:
        raise ValueError("image_size and autoencoder.image_size differ")
    if cfg.image_size % shape.vit_patch or cfg.autoencoder.latent_size % shape.latent_patch:
        raise ValueError("image_size must divide into ViT patches and the latent grid into patches")
    if shape.width % shape.heads:
        raise ValueError(f"width {shape.width} is not a multiple of heads {shape.heads}")


class WorldModel(nn.Module):
    """Mixture-of-Transformers world model plus its frame autoencoder (see module docstring)."""

    state_mean: torch.Tensor
    state_std: torch.Tensor

    def __init__(self, cfg: WorldModelConfig) -> None:
        super().__init__()
        _check_shape(cfg)
        shape = cfg.transformer
        self.cfg = cfg
        self.autoencoder = FrameAutoencoder(cfg.autoencoder)
        width = shape.width
        vit_tokens = (cfg.image_size // shape.vit_patch) ** 2
        self.latent_grid = cfg.autoencoder.latent_size // shape.latent_patch
        patch_dim = shape.latent_patch**2 * cfg.autoencoder.latent_channels

        self.text_projection = nn.Linear(shape.text_dim, width)
        self.null_text = nn.Parameter(torch.zeros(1, 1, width))
        if cfg.action_kind == "discrete":
            self.action_embedding: nn.Module = nn.Embedding(cfg.action_dim, width)
        else:
            self.action_embedding = nn.Linear(cfg.action_dim, width)
        self.patch_embedding = nn.Linear(shape.vit_patch**2 * 3, width)
        self.vit_position = nn.Parameter(torch.randn(1, vit_tokens, width) * 0.02)
        # Modality types: text, action, image.
        self.token_type = nn.Parameter(torch.randn(3, width) * 0.02)

        self.latent_embedding = nn.Linear(2 * patch_dim, width)
        self.latent_position = nn.Parameter(torch.randn(1, self.latent_grid**2, width) * 0.02)
        self.time_embedding = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))

        self.layers: list[MoTLayer] = nn.ModuleList(MoTLayer(cfg) for _ in range(shape.depth))  # type: ignore[assignment]
        self.understanding_norm = nn.LayerNorm(width)
        self.generation_norm = nn.LayerNorm(width)
        self.readout: nn.Linear | None = (
            nn.Linear(width, shape.readout_channels) if shape.readout_channels else None
        )
        head_input = 2 * width + vit_tokens * shape.readout_channels
        self.action_head = nn.Sequential(
            nn.Linear(head_input, width), nn.GELU(), nn.Linear(width, cfg.action_dim)
        )
        self.state_head = nn.Sequential(
            nn.Linear(head_input, width), nn.GELU(), nn.Linear(width, cfg.state_dim)
        )
        self.generation_condition: nn.Linear | None = None
        if shape.condition_generation:
            self.generation_condition = nn.Linear(width, width)
            nn.init.zeros_(self.generation_condition.weight)
            nn.init.zeros_(self.generation_condition.bias)
        self.velocity_head = nn.Linear(width, patch_dim)
        nn.init.zeros_(self.velocity_head.weight)
        nn.init.zeros_(self.velocity_head.bias)
        self.register_buffer("state_mean", torch.zeros(cfg.state_dim))
        self.register_buffer("state_std", torch.ones(cfg.state_dim))

    @property
    def device(self) -> torch.device:
        """Where the weights are (``model.to(...)`` moves them)."""
        return self.state_mean.device

    # -- tokens ------------------------------------------------------------------------------

    def _patchify(self, latents: torch.Tensor) -> torch.Tensor:
        p, g = self.cfg.transformer.latent_patch, self.latent_grid
        batch, channels = latents.shape[:2]
        patches = latents.view(batch, channels, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return patches.reshape(batch, g * g, p * p * channels)

    def _unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        p, g = self.cfg.transformer.latent_patch, self.latent_grid
        channels = self.cfg.autoencoder.latent_channels
        batch = patches.shape[0]
        grid = patches.view(batch, g, g, p, p, channels).permute(0, 5, 1, 3, 2, 4)
        return grid.reshape(batch, channels, g * p, g * p)

    def _vit_tokens(self, frames: torch.Tensor) -> torch.Tensor:
        p = self.cfg.transformer.vit_patch
        batch, size = frames.shape[0], self.cfg.image_size
        if frames.shape[1:] != (size, size, 3):
            raise ValueError(
                f"frames must be (batch, {size}, {size}, 3) uint8 to match the model's image_size, "
                f"got {tuple(frames.shape)}"
            )
        unit = frames.float() / 127.5 - 1.0
        patches = unit.view(batch, size // p, p, size // p, p, 3).permute(0, 1, 3, 2, 4, 5)
        return (
            self.patch_embedding(patches.reshape(batch, -1, p * p * 3))
            + self.vit_position
            + self.token_type[2]
        )

    def understand(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        current_latents: torch.Tensor | None = None,
    ) -> Understanding:
        """Run the understanding stream once: action/state predictions and the KV cache.

        Args:
            frames: ``uint8 (B, H, W, 3)`` current frames.
            actions: ``(B,)`` int64 or ``(B, action_dim)`` float actions.
            text: ``(B, L, text_dim)`` MiniLM token states, or ``None`` for no instruction.
            text_mask: ``(B, L)`` bool, true on real tokens.
            current_latents: the frames' normalised latents if already known (training).
        """
        batch = frames.shape[0]
        if text is None or text_mask is None:
            text_tokens = self.null_text.expand(batch, 1, -1)
            text_mask = torch.ones(batch, 1, dtype=torch.bool, device=frames.device)
        else:
            text_tokens = self.text_projection(text) + self.token_type[0]
            # Rows without any token (dropped text) attend to the null token instead.
            empty = ~text_mask.any(dim=1)
            text_tokens = torch.cat([self.null_text.expand(batch, 1, -1), text_tokens], dim=1)
            text_mask = torch.cat([empty[:, None], text_mask], dim=1)
        action_input = actions.long() if self.cfg.action_kind == "discrete" else actions.float()
        action_token = self.action_embedding(action_input)[:, None] + self.token_type[1]
        vit = self._vit_tokens(frames)
        x = torch.cat([text_tokens, action_token, vit], dim=1)
        mask = torch.cat(
            [text_mask, torch.ones(batch, 1 + vit.shape[1], dtype=torch.bool, device=x.device)], dim=1
        )
        cache = []
        for layer in self.layers:
            x, kv = layer.understand(x, mask)
            cache.append(kv)
        x = self.understanding_norm(x)
        action_index = text_tokens.shape[1]
        image = x[:, action_index + 1 :]
        features = [x[:, action_index], image.mean(dim=1)]
        if self.readout is not None:
            features.append(self.readout(image).flatten(1))
        pooled = torch.cat(features, dim=-1)
        if current_latents is None:
            with torch.no_grad():
                current_latents = self.autoencoder.encode(frames)
        condition = (
            self.generation_condition(x[:, action_index])
            if self.generation_condition is not None
            else x.new_zeros(batch, self.cfg.transformer.width)
        )
        return Understanding(
            self.action_head(pooled), self.state_head(pooled), cache, mask, current_latents, condition
        )

    def velocity(self, noisy: torch.Tensor, t: torch.Tensor, understanding: Understanding) -> torch.Tensor:
        """Predicted flow velocity ``d x_t / d t`` of noisy future latents ``x_t`` at times ``t``."""
        tokens = torch.cat([self._patchify(noisy), self._patchify(understanding.current_latents)], dim=-1)
        time = self.time_embedding(_timestep_embedding(t, self.cfg.transformer.width))
        x = self.latent_embedding(tokens) + self.latent_position + (time + understanding.condition)[:, None]
        for layer, cached in zip(self.layers, understanding.cache, strict=True):
            x = layer.generate(x, cached, understanding.mask)
        return self._unpatchify(self.velocity_head(self.generation_norm(x)))

    def _source(self, current_latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The flow's starting point ``x_0`` for Gaussian ``noise``."""
        if self.cfg.flow.flow_source == "current":
            return current_latents + self.cfg.flow.source_noise * noise
        return noise

    # -- training ----------------------------------------------------------------------------

    def loss(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Flow matching + next-action + object-state loss of a training batch.

        ``batch`` holds ``frames``, ``actions``, ``current_latents`` and ``future_latents``
        (normalised), ``next_actions``,
        ``next_action_valid`` (bool), ``future_states`` (raw), and optionally ``text`` and
        ``text_mask`` (omitted for instruction-free pretraining) and ``clean_current_latents``
        (the real ``s_t``'s latents where ``current_latents`` were noised).
        """
        text, text_mask = batch.get("text"), batch.get("text_mask")
        if (
            text is not None
            and text_mask is not None
            and self.training
            and self.cfg.transformer.text_dropout > 0
        ):
            drop = (
                torch.rand(text_mask.shape[0], generator=generator, device=text_mask.device)
                < self.cfg.transformer.text_dropout
            )
            text_mask = text_mask & ~drop[:, None]
        understanding = self.understand(
            batch["frames"], batch["actions"], text, text_mask, batch.get("current_latents")
        )
        target = batch["future_latents"]
        noise = self._source(
            understanding.current_latents,
            torch.randn(target.shape, generator=generator, device=target.device),
        )
        t = torch.rand(target.shape[0], generator=generator, device=target.device)
        noisy = (1 - t[:, None, None, None]) * noise + t[:, None, None, None] * target
        flow_error = (self.velocity(noisy, t, understanding) - (target - noise)).square()
        if self.cfg.loss.change_weight > 0:
            # Against the real s_t: noise on the conditioning latent is not a change to learn.
            current = batch.get("clean_current_latents", understanding.current_latents)
            change = (target - current).abs().mean(dim=1, keepdim=True)
            changed = (change > self.cfg.loss.change_threshold).float()
            cell_weight = 1.0 + self.cfg.loss.change_weight * changed
            flow = (flow_error * cell_weight).sum() / (cell_weight.sum() * flow_error.shape[1])
            logs_changed = {
                "flow_changed": (flow_error * changed).sum().item()
                / max(changed.sum().item() * flow_error.shape[1], 1.0)
            }
        else:
            flow = flow_error.mean()
            logs_changed = {}

        state_target = (batch["future_states"] - self.state_mean) / self.state_std
        state = F.mse_loss(understanding.state, state_target)
        valid = batch["next_action_valid"]
        if self.cfg.action_kind == "discrete":
            per_sample = F.cross_entropy(understanding.action, batch["next_actions"].long(), reduction="none")
            correct = (understanding.action.argmax(-1) == batch["next_actions"]).float()
        else:
            per_sample = F.mse_loss(understanding.action, batch["next_actions"], reduction="none").mean(-1)
            correct = per_sample.detach()
        weight = valid.float()
        action = (per_sample * weight).sum() / weight.sum().clamp(min=1.0)
        loss = flow + self.cfg.loss.action_loss_weight * action + self.cfg.loss.state_loss_weight * state
        logs = {
            "loss": loss.item(),
            "flow": flow.item(),
            "action": action.item(),
            "state": state.item(),
            "action_metric": ((correct * weight).sum() / weight.sum().clamp(min=1.0)).item(),
            **logs_changed,
        }
        return loss, logs

    # -- sampling ----------------------------------------------------------------------------

    @torch.no_grad()
    def imagine(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        flow_steps: int,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
        noise: torch.Tensor | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``(frames_{t+h} uint8, next actions, object states)``: :meth:`imagine_latents`, decoded."""
        latents, next_actions, states = self.imagine_latents(
            frames, actions, text, text_mask, flow_steps, generator, guidance, noise, temperature
        )
        return self.autoencoder.decode(latents), next_actions, states

    @torch.no_grad()
    def imagine_latents(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        text: torch.Tensor | None,
        text_mask: torch.Tensor | None,
        flow_steps: int,
        generator: torch.Generator | None = None,
        guidance: float = 1.0,
        noise: torch.Tensor | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample ``(latents_{t+h}, next actions, object states)`` by Euler steps on the flow.

        The latents are normalised (decode them with ``self.autoencoder.decode``).

        ``guidance`` > 1 applies classifier-free guidance on the text (one extra velocity
        evaluation per step with the instruction dropped). ``noise`` (``(B, C, h, w)``) is the
        flow's starting noise; by default it is drawn from ``generator``. ``temperature`` scales it
        (see :data:`DEFAULT_TEMPERATURE`). The understanding stream runs once (twice with guidance)
        and its keys/values are reused by every flow step.
        """
        if flow_steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {flow_steps}")
        check_temperature(temperature)
        understanding = self.understand(frames, actions, text, text_mask)
        unconditional = (
            self.understand(frames, actions, None, None) if guidance != 1.0 and text is not None else None
        )
        latent = self.cfg.autoencoder
        shape = (frames.shape[0], latent.latent_channels, latent.latent_size, latent.latent_size)
        if noise is None:
            noise = torch.randn(shape, generator=generator, device=frames.device)
        x = self._source(understanding.current_latents, temperature * noise)
        dt = 1.0 / flow_steps
        for step in range(flow_steps):
            t = torch.full((shape[0],), step * dt, device=frames.device)
            v = self.velocity(x, t, understanding)
            if unconditional is not None:
                v_free = self.velocity(x, t, unconditional)
                v = v_free + guidance * (v - v_free)
            x = x + dt * v
        states = understanding.state * self.state_std + self.state_mean
        if self.cfg.action_kind == "discrete":
            next_actions = understanding.action.argmax(-1)
        else:
            next_actions = understanding.action.clamp(-1.0, 1.0)
        return x, next_actions, states
