"""Pilot: does grounding on the model's own open-loop frames, or on noised ones, keep whole
rollouts truer?

From the shipped CLEVR checkpoint, more LoRA grounding for ``steps`` steps, once plainly
(``depth 0``, the control: more training alone), once per unroll depth (a share of each
batch conditioned on the model's own frames imagined that many steps open-loop; see
:class:`~vlgor_envs.imagination.training.Unroll`) and once per conditioning-noise scale
(``finetune``'s ``condition_noise``); then each model, and the shipped one, on the per-step
fidelity benchmark (:mod:`benchmarks.rollout_fidelity`, CLEVR).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro

from benchmarks import rollout_fidelity
from benchmarks.report import RESULTS_DIR, load_result, markdown_table, provenance, write_result
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.training import Schedule, Unroll, finetune

NAME = "unroll_pilot"
SHOWN_STEPS = (1, 5, 10, 20)
NOISE_NOTE = "; noise S: conditioning latents noised at a scale drawn up to S per pair"


@dataclass
class Args:
    depths: tuple[int, ...] = (0, 4)
    """Unroll depths to ground with (0: plain grounding, the control)."""
    noises: tuple[float, ...] = ()
    """Conditioning-noise scales to ground with (each without unrolling)."""
    steps: int = 1000
    share: float = 0.5
    refresh_every: int = 500
    learning_rate: float = 1e-3
    datasets: tuple[str, ...] = ("vlgor/clevr/pilot-train-1200-v0",)
    """Instruction-labelled train-split rollouts to ground on."""
    episodes: int = 40
    """Held-out starts per split of the fidelity benchmark."""
    out: Path = Path("out/unroll_pilot")
    threads: int = 1
    results: Path = RESULTS_DIR


def ground(args: Args, depth: int, noise: float = 0.0) -> tuple[Path, float]:
    """The checkpoint grounded further with unroll ``depth`` and conditioning ``noise``, and the
    seconds it took."""
    started = time.perf_counter()
    folder = finetune(
        shipped_checkpoint("clevr"),
        list(args.datasets),
        args.out / (f"noise{noise:g}" if noise else f"depth{depth}"),
        Schedule(args.steps, batch_size=64, learning_rate=args.learning_rate),
        resume=True,
        unroll=Unroll(depth, args.share, start=0, refresh_every=args.refresh_every),
        condition_noise=noise,
    )
    return folder, round(time.perf_counter() - started, 1)


def fidelity(args: Args, checkpoint: Path | None) -> dict[str, list[float]]:
    """Per-step figures of ``checkpoint`` (default the shipped one), pooled over the splits."""
    benchmark = rollout_fidelity.Args(
        envs=("clevr",),
        episodes={"clevr": args.episodes},
        checkpoints={"clevr": str(checkpoint)} if checkpoint else {},
    )
    figures: dict[str, list[float]] = rollout_fidelity.measure(benchmark)["clevr"]["all"]
    return figures


def measure(args: Args) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    rows: dict[str, Any] = {"shipped": {"fidelity": fidelity(args, None)}}
    arms = [(f"depth {depth}", depth, 0.0) for depth in args.depths]
    arms += [(f"noise {noise:g}", 0, noise) for noise in args.noises]
    for name, depth, noise in arms:
        folder, seconds = ground(args, depth, noise)
        rows[name] = {"fidelity": fidelity(args, folder), "seconds": seconds}
        print(f"{name}: {rows[name]['fidelity']['psnr'][9]:.2f} dB at step 10")
    return rows


def readme_table(record: dict[str, Any] | None = None) -> str:
    record = record or load_result(NAME)
    keys = ("psnr", "ball_error", "success_agreement")
    header = ["model"] + [f"{key} @ {step}" for key in keys for step in SHOWN_STEPS]
    rows = [
        [name] + [f"{found['fidelity'][key][step - 1]:.3f}" for key in keys for step in SHOWN_STEPS]
        for name, found in record["figures"].items()
    ]
    config = record["config"]
    return (
        markdown_table(header, rows)
        + f"\n\nFrom the shipped CLEVR checkpoint, {config['steps']} more grounding steps on "
        + f"{', '.join(config['datasets'])} (depth 0: plain; depth K: a share {config['share']} of each "
        + f"batch conditioned on frames imagined K steps open-loop, remade every {config['refresh_every']} "
        + f"steps{NOISE_NOTE if config.get('noises') else ''}); "
        + f"open-loop fidelity on {config['episodes']} held-out starts per split. "
        + provenance(record)
    )


def main(args: Args) -> None:
    path = write_result(NAME, args, measure(args), args.results)
    print(readme_table(json.loads(path.read_text())))


if __name__ == "__main__":
    main(tyro.cli(Args))
