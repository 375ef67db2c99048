"""Imagination fidelity against the size of the grounding set (paper Table 1's 1k/5k/10k rows).

Each size grounds the same pretrained CLEVR checkpoint with LoRA on the first N transitions of
``vlgor/clevr/real-train-v0`` for the same number of steps, then is measured on the held-out
train and counterfactual transitions as in :mod:`benchmarks.imagination_fidelity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tyro

from benchmarks.imagination_fidelity import SPLITS, heldout_dataset, one_step_fidelity
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs import registry
from vlgor_envs.imagination.checkpoint import load_checkpoint
from vlgor_envs.imagination.model import DEFAULT_FLOW_STEPS
from vlgor_envs.imagination.training import Schedule, finetune

NAME = "imagination_sample_efficiency"


@dataclass
class Args:
    base: Path = Path("out/imagination/clevr-pretrain")
    """Pretrained CLEVR checkpoint (the model card's `vlgor imagination pretrain` command makes it)."""
    sizes: tuple[int, ...] = (1000, 5000, 10000)
    """Grounding-set sizes in transitions."""
    steps: int = 500
    """Grounding steps per size."""
    out: Path = Path("out/imagination/sample-efficiency")
    heldout_episodes: int = 100
    flow_steps: int = DEFAULT_FLOW_STEPS
    seed: int = 0


def measure(args: Args) -> dict[str, dict[str, dict[str, float]]]:
    if not (args.base / "config.json").is_file():
        raise FileNotFoundError(
            f"no pretrained checkpoint at {args.base}; make it with the command in "
            "vlgor_envs/imagination/checkpoints/clevr/MODEL_CARD.md (`vlgor imagination pretrain ...`)"
        )
    figures = {}
    for size in args.sizes:
        grounded = finetune(
            args.base,
            registry.entry("clevr").grounding_datasets,
            args.out / f"grounded-{size}",
            Schedule(args.steps, batch_size=64, learning_rate=1e-3),
            seed=args.seed,
            max_transitions=size,
        )
        model, _ = load_checkpoint(grounded)
        figures[str(size)] = {
            split: one_step_fidelity(
                model, heldout_dataset("clevr", split, args.heldout_episodes), args.flow_steps, args.seed
            )
            for split in SPLITS
        }
        print(size, figures[str(size)])
    return figures


def readme_table() -> str:
    result = load_result(NAME)
    rows = []
    figures = result["figures"]
    for size in sorted(figures, key=int):
        for split in SPLITS:
            f = figures[size][split]
            rows.append(
                [
                    f"{int(size):,}",
                    split,
                    f"{f['psnr']:.2f}",
                    f"{f['ssim']:.4f}",
                    f"{f['med']:.4f}",
                    f"{100 * f['action_accuracy']:.1f}",
                ]
            )
    return (
        markdown_table(
            ["grounding transitions", "instructions", "PSNR (dB)", "SSIM", "MED", "next action (%)"], rows
        )
        + f"\n\nCLEVR, {result['config']['steps']} LoRA grounding steps per size from the same pretrained "
        + f"checkpoint; held-out expert transitions. {provenance(result)}"
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
