"""The ``gpu`` preset CLEVR imagination model, trained and measured on a lent GPU.

The run itself happens on the device machine (``tools/device/``, see its README): it trains
the preset on CUDA, then measures one-step fidelity, execution success and throughput there,
and writes ``gpu_run.json``. This module files that record as
``benchmarks/results/imagination_gpu.json`` (``--run path/to/gpu_run.json``) and renders the
README table beside the shipped cpu-preset model's figures.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from benchmarks import imagination_fidelity
from benchmarks.report import RESULTS_DIR, load_result, markdown_table, write_record
from vlgor_envs.imagination.model import UNRECORDED_TEMPERATURE

NAME = "imagination_gpu"


@dataclass
class Args:
    run: Path
    """``gpu_run.json`` copied back from the device (strip PNGs beside it are filed too)."""
    git_revision: str
    """Revision of the code the device ran."""
    machine: str = "one NVIDIA H100 80GB GPU, 16 CPU cores"


def record_of(run: dict[str, Any], args: Args) -> dict[str, Any]:
    """The device's raw record in the shape :func:`benchmarks.report.write_result` gives."""
    return {
        "name": NAME,
        "git_revision": args.git_revision,
        "machine": {"description": args.machine, "device": run["device"], "torch": run["torch"]},
        "config": {key: run[key] for key in ("budget", "batch", "steps", "probe")},
        "figures": {
            "parameters": run["parameters"],
            "pretrain_seconds": run["pretrain_seconds"],
            "finetune_seconds": run["finetune_seconds"],
            "training": {"pretrain": run["pretrain_training"], "finetune": run["finetune_training"]},
            "fidelity": run["fidelity"],
            "flow_steps": run["flow_steps"],
            "throughput": run["throughput"],
        },
    }


def _fidelity_row(label: str, figures: dict[str, Any]) -> list[str]:
    return [
        label,
        f"{figures['psnr']:.2f}",
        f"{figures['ssim']:.4f}",
        f"{figures['med']:.4f}",
        f"{100 * figures['action_accuracy']:.1f}%",
        f"{100 * figures['execution_success']:.0f}%",
        f"{figures['autoencoder_psnr']:.1f}",
    ]


def readme_table() -> str:
    result = load_result(NAME)
    figures = result["figures"]
    shipped = load_result(imagination_fidelity.NAME)
    cpu = shipped["figures"]["clevr"]
    gpu_temperature = result["config"].get("temperature", UNRECORDED_TEMPERATURE)
    cpu_temperature = shipped["config"].get("temperature", UNRECORDED_TEMPERATURE)
    rows = [
        _fidelity_row(
            f"gpu preset, {split} instructions, temperature {gpu_temperature:g}", figures["fidelity"][split]
        )
        for split in imagination_fidelity.SPLITS
    ]
    rows += [
        _fidelity_row(
            f"shipped cpu preset, {split} instructions, temperature {cpu_temperature:g}", cpu[split]
        )
        for split in imagination_fidelity.SPLITS
    ]
    rows.append(["target", ">= 30", ">= 0.95", "<= 0.03", ">= 90%", "—", ">= 35"])
    speed = figures["throughput"]
    speed_rows = [
        [
            label,
            f"{speed[key]['batched_64']:.0f}",
            f"{speed[key]['batched_1024']:.0f}",
            f"{speed[key]['single']:.0f}",
            f"{speed[key]['model_only_1024']:.0f}",
        ]
        for label, key in (("gpu preset", "gpu_preset"), ("cpu preset's shape", "cpu_preset_shape"))
    ]
    steps, batch = result["config"]["steps"], result["config"]["batch"]
    training = (
        f"{figures['parameters'] / 1e6:.1f} M parameters; autoencoder {steps['autoencoder']} steps "
        f"(batch {batch['autoencoder']}) and dynamics {steps['dynamics']} steps (batch {batch['dynamics']}) "
        f"in {figures['pretrain_seconds'] / 60:.1f} min, grounding {steps['grounding']} steps in "
        f"{figures['finetune_seconds']:.0f} s"
    )
    device = result["machine"]["device"]
    return (
        markdown_table(
            ["model", "PSNR (dB)", "SSIM", "MED", "next action", "execution success", "autoencoder (dB)"],
            rows,
        )
        + f"\n\nTrained and measured on {device} ({training}); same held-out transitions, 2 flow steps; "
        + f"execution success over {result['config']['budget'].get('exec_eps', 50):.0f} episodes per split "
        + f"on the GPU ({shipped['config']['execution_episodes']} for the shipped model).\n\n"
        + markdown_table(
            [
                f"imagined steps/s on {device}",
                "batched, 64 envs",
                "batched, 1024 envs",
                "single",
                "model alone, 1024 frames",
            ],
            speed_rows,
        )
        + f"\n\nReal CLEVR env on the device's CPU: {speed['real_env']:.0f} steps/s. "
        + f"Revision {result['git_revision']}."
    )


def main(args: Args) -> None:
    write_record(NAME, record_of(json.loads(args.run.read_text()), args))
    for strip in sorted(args.run.parent.glob("gpu_strip_*.png")):
        shutil.copyfile(strip, RESULTS_DIR / f"{NAME}_{strip.stem.removeprefix('gpu_strip_')}.png")


if __name__ == "__main__":
    main(tyro.cli(Args))
