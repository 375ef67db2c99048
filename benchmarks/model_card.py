"""Write ``MODEL_CARD.md`` beside each shipped imagination checkpoint from its config and results."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.imagination_fidelity import NAME as FIDELITY
from benchmarks.imagination_fidelity import SPLITS
from benchmarks.report import RESULTS_DIR, markdown_table
from benchmarks.rollout_fidelity import NAME as ROLLOUTS
from benchmarks.rollout_fidelity import TABLE_STEPS, env_rows
from vlgor_envs.imagination.checkpoint import SHIPPED, read_config, shipped_checkpoint

#: The commands that made each shipped checkpoint (datasets first, then the two stages).
COMMANDS = {
    "clevr": """\
vlgor collect --env clevr --split train --episodes 400 --noise 1.0 --seed 500000 \\
    --dataset-id vlgor/clevr/random-v0
vlgor collect --env clevr --split hard --episodes 600 --noise 0.3 --seed 600000 \\
    --dataset-id vlgor/clevr/explore-hard-v0
vlgor collect --env clevr --split train --episodes 1200 --seed 0
# The autoencoder: its phase comes first and it is frozen afterwards.
vlgor imagination pretrain --env clevr --out out/imagination/clevr-autoencoder \\
    --autoencoder-steps 5000 --dynamics-steps 1 --threads 1
vlgor imagination pretrain --env clevr --out out/imagination/clevr-pretrain \\
    --autoencoder-from out/imagination/clevr-autoencoder --dynamics-steps 5000 --threads 1
vlgor imagination finetune --env clevr --base out/imagination/clevr-pretrain \\
    --out out/imagination/clevr-grounded --steps 2000 --threads 2
vlgor imagination tune-decoder --env clevr --base out/imagination/clevr-grounded \\
    --out vlgor_envs/imagination/checkpoints/clevr --threads 2""",
    "metaworld": """\
vlgor collect --env metaworld --split train --episodes 60 --noise 1.0 --seed 500000 \\
    --dataset-id vlgor/metaworld/random-v0
vlgor collect --env metaworld --split train --episodes 200 --noise 0.1 --seed 0
vlgor imagination pretrain --env metaworld --out out/imagination/metaworld-pretrain \\
    --autoencoder-steps 2500 --dynamics-steps 800 --threads 1
vlgor imagination finetune --env metaworld --base out/imagination/metaworld-pretrain \\
    --out vlgor_envs/imagination/checkpoints/metaworld --steps 1500 --threads 1""",
}

#: What each departure from a plain flow-matching world model fixed, measured on CLEVR while
#: the recipe was built (``WorldModelConfig``'s defaults).
RECIPE_NOTES = {
    "clevr": (
        "`readout_channels=8`: without per-token features the state head stayed at the mean "
        "(normalised MSE 0.98 after 1,155 pretraining steps).",
        '`flow_source="current"`: from pure noise, 2,200 pretraining steps only learned to copy the '
        "current frame.",
        "`change_weight=10`: a pushed ball changes about 8% of the latent cells, so unweighted the "
        "loss is nearly all about copying the rest.",
        "`change_weight` with `condition_generation=True`: the pushed ball's one-step error fell from "
        "0.067 (copying, where the model stayed without them) to 0.016 arena units after 5,000 steps.",
    ),
    "metaworld": (
        "Trained before CLEVR's recipe: flow from noise, no change weight, no readout features "
        "(its registry entry's `model_recipe`).",
    ),
}


def _figures(name: str, env: str) -> dict[str, Any] | None:
    """``env``'s figures in the committed result ``name``, if measured."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.is_file():
        return None
    result: dict[str, Any] = json.loads(path.read_text())
    figures: dict[str, Any] | None = result["figures"].get(env)
    return figures


def _metrics(env: str) -> list[str]:
    """The card's metrics: one step on held-out transitions, then whole open-loop rollouts."""
    one_step = _figures(FIDELITY, env)
    lines = ["## Metrics", ""]
    if one_step is None:
        lines.append(f"Run `python -m benchmarks.{FIDELITY}` to measure them.")
    else:
        keys = sorted({k for split in SPLITS for k, v in one_step[split].items() if isinstance(v, float)})
        rows = [[key] + [f"{one_step[split][key]:.4g}" for split in SPLITS] for key in keys]
        lines += [
            f"One step on held-out expert transitions (`python -m benchmarks.{FIDELITY}`):",
            "",
            markdown_table(["figure", *(f"{split} instructions" for split in SPLITS)], rows),
        ]
    rollouts = _figures(ROLLOUTS, env)
    if rollouts is not None:
        lines += [
            "",
            "Open-loop rollouts of the expert's actions, each frame imagined from the previous imagined "
            f"one ({sum(rollouts['episodes'].values())} held-out rollouts; "
            f"`python -m benchmarks.{ROLLOUTS}`):",
            "",
            markdown_table(["figure", *(f"step {k}" for k in TABLE_STEPS)], env_rows(env, rollouts)),
        ]
    return lines


def _steps(autoencoder: Any) -> str:
    if isinstance(autoencoder, dict):
        return f"{autoencoder['steps']} steps"
    # The donor's path is machine-specific; the commands above show how it was made.
    return "taken from the autoencoder-only run above"


def card(env: str) -> str:
    folder = shipped_checkpoint(env)
    config = read_config(folder)
    training = config["training"]
    # Each decoder pass records the pass (or grounding) it started from; list them oldest first.
    passes: list[dict[str, Any]] = []
    while training.get("stage") == "tune-decoder":
        passes.insert(0, training)
        training = training["base_training"]
    base = training.get("base_training") or {}
    model = config["model"]
    latent = model["image_size"] // 4
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    lines = [
        f"# Imagination model: {env}",
        "",
        f"A {model['depth']}-layer Mixture-of-Transformers world model (width {model['width']}, "
        f"{model['heads']} heads) with a conv frame autoencoder "
        f"({model['autoencoder']['latent_channels']}x{latent}x{latent} latents), "
        f"horizon {model['horizon']}. Files: `model.safetensors` (merged), `adapter.safetensors` "
        f"(LoRA adapters and heads alone{', plus the tuned decoder' if passes else ''}), "
        f"`config.json`; {size:.1f} MiB in all.",
        "",
        "## How it was made",
        "",
        "```bash",
        COMMANDS[env],
        "```",
        "",
        f"- Pretraining: {base.get('transitions')} instruction-free transitions from "
        f"{', '.join(base.get('datasets', []))}; autoencoder: {_steps(base.get('autoencoder'))}; "
        f"{base.get('dynamics', {}).get('steps')} world-model steps, {base.get('seconds')} s.",
        f"- Grounding: {training['transitions']} instruction-labelled transitions from "
        f"{', '.join(training['datasets'])}; LoRA rank {training['lora']['rank']} on q/k/v/o of both "
        f"experts plus the heads; {training['schedule']['steps']} steps, {training['seconds']} s.",
        *(
            f"- Decoder tuning, pass {number}: the decoder alone, on {tuned['transitions']} transitions of "
            f"{', '.join(tuned['datasets'])}, {round(100 * tuned['imagined_share'])}% of each batch "
            f"decoding the model's own imagined latents; {tuned['schedule']['steps']} steps at learning "
            f"rate {tuned['schedule']['learning_rate']:g}, {tuned['seconds']} s."
            for number, tuned in enumerate(passes, start=1)
        ),
        "- Machine: 2 CPU cores (torch threads as in the commands).",
        "",
        "## Why this recipe",
        "",
        *(f"- {note}" for note in RECIPE_NOTES[env]),
        "",
        *_metrics(env),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    for env in SHIPPED:
        path = shipped_checkpoint(env) / "MODEL_CARD.md"
        if (path.parent / "config.json").is_file():
            path.write_text(card(env))
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
