"""Train the ``gpu`` preset CLEVR imagination model on a lent GPU and measure it there.

Run by ``tools/device/job.sh`` on the device machine (see ``tools/device/README.md``). MiniLM
is not installed there (its 88 MB do not fit the transfer), so the token states and sentence
embeddings of every instruction used are served from a cache that ``prep_text.py`` computed
with the real encoder beforehand (token states stored as float16).

Arguments are ``key=value`` pairs: ``ae_steps``/``dyn_steps`` (or ``ae_s``/``dyn_s``, a time
budget turned into steps by a speed probe), ``ground_steps``, ``exec_eps``, ``lr``.
Writes ``gpu_run.json`` (and rollout strips) to ``$RES`` as it goes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file

import vlgor_envs.language.encoder as encoder_module

RES = Path(os.environ.get("RES", "/tmp/res"))
DEVICE = os.environ.get("DEV", "cuda")
CACHE = Path(os.environ.get("TEXT_CACHE", ".gpu"))


def cached_encoder() -> encoder_module.TextEncoder:
    """A TextEncoder whose caches are pre-filled; it has no model, so unknown text fails."""
    texts = json.loads((CACHE / "text_cache.json").read_text())
    tensors = load_file(str(CACHE / "text_cache.safetensors"))
    encoder = object.__new__(encoder_module.TextEncoder)
    encoder._dim, encoder.num_threads, encoder.path = 384, 1, CACHE
    encoder._cache = {text: tensors["embeddings"][i] for i, text in enumerate(texts)}
    encoder._token_cache = {text: tensors[f"tokens.{i}"].astype(np.float32) for i, text in enumerate(texts)}
    return encoder


# Before the modules that bind default_text_encoder are imported.
_ENCODER = cached_encoder()
encoder_module.default_text_encoder = lambda: _ENCODER  # type: ignore[assignment]

import benchmarks.imagination_fidelity as fidelity  # noqa: E402
import benchmarks.imagination_throughput as throughput  # noqa: E402
from vlgor_envs import registry  # noqa: E402
from vlgor_envs.imagination import training  # noqa: E402
from vlgor_envs.imagination.checkpoint import load_checkpoint, write_checkpoint_files  # noqa: E402
from vlgor_envs.imagination.commands import model_config  # noqa: E402
from vlgor_envs.imagination.data import load_transitions  # noqa: E402
from vlgor_envs.imagination.model import WorldModel  # noqa: E402


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def synchronize() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[], object], calls: int = 15) -> float:
    for _ in range(3):
        fn()
    synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize()
    return (time.perf_counter() - start) / calls


def probe_speeds(batch_ae: int, batch_dynamics: int) -> tuple[float, float]:
    """Seconds per autoencoder and dynamics training step of the gpu preset here."""
    data = load_transitions(registry.entry("clevr").pretrain_datasets, progress=False)
    model = WorldModel(model_config("clevr", "gpu")).to(DEVICE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    frames = torch.from_numpy(data.frames)
    batches = training._Batches(model, data.subset(5000), with_text=False, progress=False)
    rng = np.random.default_rng(0)

    def step(loss: torch.Tensor) -> None:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    ae = seconds_per_call(
        lambda: step(model.autoencoder.loss(frames[torch.randint(len(frames), (batch_ae,))].to(DEVICE))[0])
    )
    dynamics = seconds_per_call(lambda: step(model.loss(batches.sample(rng, batch_dynamics))[0]))
    return ae, dynamics


def imagine_rate(model: WorldModel, batch: int) -> float:
    """Imagined frames per second of the model alone (no env), ``batch`` at a time."""
    frames = torch.zeros(batch, 64, 64, 3, dtype=torch.uint8, device=DEVICE)
    actions = torch.zeros(batch, dtype=torch.long, device=DEVICE)
    text = torch.zeros(batch, 32, 384, device=DEVICE)
    mask = torch.ones(batch, 32, dtype=torch.bool, device=DEVICE)
    with torch.inference_mode():
        return batch / seconds_per_call(lambda: model.imagine(frames, actions, text, mask, 2), calls=10)


def main(budget: dict[str, float]) -> None:
    RES.mkdir(parents=True, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    batch = {"autoencoder": 128, "dynamics": 256, "grounding": 128}
    record: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if DEVICE == "cuda" else DEVICE,
        "torch": torch.__version__,
        "budget": budget,
        "batch": batch,
    }

    def save() -> None:
        (RES / "gpu_run.json").write_text(json.dumps(record, indent=2, default=str))

    ae_rate, dynamics_rate = probe_speeds(batch["autoencoder"], batch["dynamics"])
    record["probe"] = {"autoencoder_s_per_step": ae_rate, "dynamics_s_per_step": dynamics_rate}
    steps = {
        "autoencoder": int(budget.get("ae_steps", budget.get("ae_s", 150) / ae_rate)),
        "dynamics": int(budget.get("dyn_steps", budget.get("dyn_s", 400) / dynamics_rate)),
        "grounding": int(budget.get("ground_steps", 500)),
    }
    record["steps"] = steps
    log(record)
    save()

    pretrained, grounded = Path("/tmp/clevr-gpu-pretrain"), Path("/tmp/clevr-gpu")
    started = time.perf_counter()
    training.pretrain(
        registry.entry("clevr").pretrain_datasets,
        pretrained,
        model_config("clevr", "gpu"),
        training.Schedule(steps["autoencoder"], batch_size=batch["autoencoder"], learning_rate=2e-3),
        training.Schedule(
            steps["dynamics"], batch_size=batch["dynamics"], learning_rate=budget.get("lr", 5e-4)
        ),
        device=DEVICE,
    )
    record["pretrain_seconds"] = time.perf_counter() - started
    record["pretrain_training"] = json.loads((pretrained / "config.json").read_text())["training"]
    started = time.perf_counter()
    training.finetune(
        pretrained,
        registry.entry("clevr").grounding_datasets,
        grounded,
        training.Schedule(steps["grounding"], batch_size=batch["grounding"], learning_rate=1e-3),
        device=DEVICE,
    )
    record["finetune_seconds"] = time.perf_counter() - started
    record["finetune_training"] = json.loads((grounded / "config.json").read_text())["training"]
    save()
    log("trained", record["pretrain_seconds"], record["finetune_seconds"])

    model, _ = load_checkpoint(grounded, DEVICE)
    record["parameters"] = sum(p.numel() for p in model.parameters())
    record["fidelity"] = {}
    for split in fidelity.SPLITS:
        dataset_id = f"vlgor/clevr/heldout-{split}-v0"
        record["fidelity"][split] = fidelity.one_step_fidelity(model, dataset_id, 2, 0)
        fidelity.rollout_strip(model, "clevr", dataset_id, RES / f"gpu_strip_{split}.png", 2)
        record["fidelity"][split].update(
            fidelity.execution_success(
                "clevr", str(grounded), split, dataset_id, int(budget.get("exec_eps", 50)), 2, DEVICE
            )
        )
        log(split, record["fidelity"][split])
        save()
    record["flow_steps"] = fidelity.flow_step_sweep(model, "vlgor/clevr/heldout-train-v0", (1, 2, 4, 8), 0)

    # The cpu preset's shape untrained: speed does not depend on the weights.
    cpu_shape = Path("/tmp/clevr-cpu-shape")
    cpu_shape.mkdir(exist_ok=True)
    write_checkpoint_files(cpu_shape, WorldModel(model_config("clevr", "cpu")), {"training": None})
    record["throughput"] = {"real_env": throughput._single("VLGOR-CLEVR-v0", 300, 0)}
    for name, checkpoint in (("gpu_preset", str(grounded)), ("cpu_preset_shape", str(cpu_shape))):
        kwargs = {"flow_steps": 2, "device": DEVICE, "checkpoint": checkpoint}
        figures = {
            f"batched_{n}": throughput._batched("VLGOR-Imagined-CLEVR", n, 5, 0, **kwargs) for n in (64, 1024)
        }
        figures["single"] = throughput._single("VLGOR-Imagined-CLEVR", 50, 0, **kwargs)
        alone, _ = load_checkpoint(checkpoint, DEVICE)
        figures |= {f"model_only_{n}": imagine_rate(alone, n) for n in (1, 64, 1024)}
        record["throughput"][name] = figures
        log(name, figures)
        save()
    log("done")


if __name__ == "__main__":
    main({key: float(value) for key, value in (arg.split("=") for arg in sys.argv[1:])})
