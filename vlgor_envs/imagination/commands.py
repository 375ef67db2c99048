"""``vlgor imagination pretrain|finetune|tune-decoder``: the training stages from the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import tyro

from vlgor_envs import registry
from vlgor_envs.imagination.autoencoder import AutoencoderConfig
from vlgor_envs.imagination.model import WorldModelConfig
from vlgor_envs.imagination.training import Schedule, Unroll, finetune, pretrain, tune_decoder
from vlgor_envs.registry import EnvName

#: Transformer width, depth and heads by preset: ``cpu`` trains here in about an hour; ``gpu``
#: is wider and deeper.
PRESETS: dict[str, tuple[int, int, int]] = {"tiny": (32, 1, 2), "cpu": (128, 4, 4), "gpu": (384, 8, 6)}
#: Autoencoder hidden channels by preset: the GPU preset's is twice as wide.
AUTOENCODER_WIDTHS: dict[str, tuple[int, int]] = {"tiny": (32, 64), "cpu": (32, 64), "gpu": (64, 128)}


def recipe(env: str) -> WorldModelConfig:
    """The world-model config of ``env``'s imagination model (its registry entry's recipe)."""
    return WorldModelConfig.from_json(
        {**WorldModelConfig(env=env).to_json(), **registry.entry(env).model_recipe}
    )


def model_config(
    env: str,
    preset: str = "cpu",
    horizon: int = 1,
    image_size: int = 64,
    autoencoder_channels: tuple[int, int] | None = None,
) -> WorldModelConfig:
    """The world-model config of ``env`` at a size ``preset`` (``tiny``, ``cpu`` or ``gpu``).

    ``autoencoder_channels`` overrides the preset's autoencoder hidden channels.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    width, depth, heads = PRESETS[preset]
    base = recipe(env)
    return dataclasses.replace(
        base,
        image_size=image_size,
        horizon=horizon,
        transformer=dataclasses.replace(base.transformer, width=width, depth=depth, heads=heads),
        autoencoder=AutoencoderConfig(
            image_size=image_size, hidden_channels=autoencoder_channels or AUTOENCODER_WIDTHS[preset]
        ),
    )


@dataclasses.dataclass(kw_only=True)
class _StageArgs:
    """What every training stage takes."""

    max_transitions: int | None = None
    """Train on at most this many transitions (default: all)."""
    seed: int = 0
    resume: bool = False
    """Continue from the training state saved beside `out`."""
    threads: int | None = None
    """torch intra-op threads (default: torch's choice)."""
    device: str = "cpu"
    """torch device to train on, e.g. `cuda`; the checkpoint is the same either way."""


@dataclasses.dataclass
class PretrainArgs(_StageArgs):
    """Pretrain the imagination model on instruction-free interaction data."""

    out: Path
    """Checkpoint folder to write (atomically, at the end)."""
    env: EnvName = "clevr"
    datasets: tuple[str, ...] | None = None
    """Minari dataset ids; default: the env's random and noisy-expert datasets (README)."""
    preset: Literal["tiny", "cpu", "gpu"] = "cpu"
    """Model size: `cpu` trains on 2 cores in about an hour; `gpu` for a lent GPU."""
    horizon: int = 1
    """Steps ahead the model predicts."""
    autoencoder_steps: int = 5000
    autoencoder_channels: tuple[int, int] | None = None
    """Hidden channels of the autoencoder's two stages (default: the preset's)."""
    autoencoder_from: Path | None = None
    """Reuse the trained autoencoder of this checkpoint folder and skip training one."""
    dynamics_steps: int = 2500
    batch_size: int = 64
    learning_rate: float = 1e-3


@dataclasses.dataclass
class _OnCheckpointArgs(_StageArgs):
    """What the stages that start from a trained checkpoint share."""

    base: Path
    """Checkpoint folder to start from."""
    out: Path
    """Checkpoint folder to write (atomically, at the end)."""
    env: EnvName = "clevr"
    datasets: tuple[str, ...] | None = None
    """Minari dataset ids; default: the env's `real-train-v0`."""
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3


@dataclasses.dataclass
class FinetuneArgs(_OnCheckpointArgs):
    """Ground a pretrained model on instruction-labelled train-split rollouts with LoRA."""

    base: Path
    """Pretrained checkpoint folder."""
    out: Path
    """Checkpoint folder to write: merged model plus the adapters alone."""
    rank: int = 16
    """LoRA rank of every attention projection."""
    unroll_depth: int = 0
    """Also condition on the model's own frames imagined this many steps open-loop (0: off)."""
    unroll_share: float = 0.5
    """Share of each batch conditioned on unrolled frames."""
    unroll_start: int = 1000
    """Step at which the first unrolled frames are made (by the model under training)."""
    unroll_refresh: int = 500
    """Steps between remaking them."""
    condition_noise: float = 0.0
    """Noise the conditioning latent of every pair, its scale drawn per pair up to this (0: off)."""


@dataclasses.dataclass
class TuneDecoderArgs(_OnCheckpointArgs):
    """Adapt the frame decoder of a grounded model to the latents it imagines (optional third stage)."""

    base: Path
    """Grounded checkpoint folder (from `finetune`)."""
    out: Path
    """Checkpoint folder to write; the base's adapters are copied with the decoder added."""
    steps: int = 1500
    learning_rate: float = 3e-4
    imagined_share: float = 0.5
    """Share of each batch that decodes imagined latents; the rest decodes encoded real frames."""


def _shared(args: _StageArgs) -> dict[str, Any]:
    """What every stage takes from its arguments alike (and torch's threads, set here)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return {
        "seed": args.seed,
        "resume": args.resume,
        "max_transitions": args.max_transitions,
        "device": args.device,
    }


def pretrain_command(args: PretrainArgs) -> None:
    cfg = model_config(args.env, args.preset, args.horizon, autoencoder_channels=args.autoencoder_channels)
    out = pretrain(
        args.datasets or registry.entry(args.env).pretrain_datasets,
        args.out,
        cfg,
        Schedule(args.autoencoder_steps, batch_size=32, learning_rate=2e-3),
        Schedule(args.dynamics_steps, batch_size=args.batch_size, learning_rate=args.learning_rate),
        autoencoder_from=args.autoencoder_from,
        **_shared(args),
    )
    print(f"wrote {out}")


def finetune_command(args: FinetuneArgs) -> None:
    out = finetune(
        args.base,
        args.datasets or registry.entry(args.env).grounding_datasets,
        args.out,
        Schedule(args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate),
        rank=args.rank,
        alpha=2 * args.rank,
        unroll=Unroll(args.unroll_depth, args.unroll_share, args.unroll_start, args.unroll_refresh),
        condition_noise=args.condition_noise,
        **_shared(args),
    )
    print(f"wrote {out}")


def tune_decoder_command(args: TuneDecoderArgs) -> None:
    out = tune_decoder(
        args.base,
        args.datasets or registry.entry(args.env).grounding_datasets,
        args.out,
        Schedule(args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate),
        imagined_share=args.imagined_share,
        **_shared(args),
    )
    print(f"wrote {out}")


def imagination_command(
    args: tyro.conf.OmitArgPrefixes[
        Annotated[PretrainArgs, tyro.conf.subcommand("pretrain", prefix_name=False)]
        | Annotated[FinetuneArgs, tyro.conf.subcommand("finetune", prefix_name=False)]
        | Annotated[TuneDecoderArgs, tyro.conf.subcommand("tune-decoder", prefix_name=False)]
    ],
) -> None:
    """Train the imagination model: `pretrain` (interaction data), `finetune` (LoRA grounding),
    then optionally `tune-decoder` (the decoder adapts to imagined latents)."""
    if isinstance(args, PretrainArgs):
        pretrain_command(args)
    elif isinstance(args, FinetuneArgs):
        finetune_command(args)
    else:
        tune_decoder_command(args)
