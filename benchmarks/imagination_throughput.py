"""Imagined steps per second, batched (``make_vec``, 64 envs) and single, beside the real env's."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
import tyro

import vlgor_envs  # noqa: F401  (registers the ids)
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.imagination.model import DEFAULT_FLOW_STEPS

NAME = "imagination_throughput"
IDS = {
    "clevr": ("VLGOR-Imagined-CLEVR", "VLGOR-CLEVR-v0"),
    "metaworld": ("VLGOR-Imagined-MetaWorld", "VLGOR-MetaWorld-v0"),
}


@dataclass
class Args:
    envs: tuple[str, ...] = ("clevr", "metaworld")
    num_envs: int = 64
    batched_steps: int = 20
    """Vector steps (each steps every env once)."""
    single_steps: int = 100
    real_steps: int = 500
    flow_steps: int = DEFAULT_FLOW_STEPS
    threads: int = 2
    """torch intra-op threads (the machine has 2 cores)."""
    seed: int = 0
    device: str = "cpu"
    """torch device of the imagination model, e.g. `cuda`."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """Checkpoint folder per env (default: the shipped ones)."""


def _single(env_id: str, steps: int, seed: int, **kwargs: Any) -> float:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    env.step(env.action_space.sample())  # warm-up (text encoder, first render)
    start = time.perf_counter()
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return steps / seconds


def _batched(env_id: str, num_envs: int, steps: int, seed: int, **kwargs: Any) -> float:
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    envs.reset(seed=seed)
    envs.action_space.seed(seed)
    envs.step(envs.action_space.sample())
    start = time.perf_counter()
    for _ in range(steps):
        envs.step(envs.action_space.sample())
    seconds = time.perf_counter() - start
    envs.close()
    return num_envs * steps / seconds


def measure(args: Args) -> dict[str, dict[str, float]]:
    torch.set_num_threads(args.threads)
    figures = {}
    for env in args.envs:
        imagined_id, real_id = IDS[env]
        checkpoint = args.checkpoints.get(env)
        model = {"flow_steps": args.flow_steps, "device": args.device, "checkpoint": checkpoint}
        figures[env] = {
            "imagined_batched_steps_per_second": _batched(
                imagined_id, args.num_envs, args.batched_steps, args.seed, **model
            ),
            "imagined_single_steps_per_second": _single(imagined_id, args.single_steps, args.seed, **model),
            "real_steps_per_second": _single(real_id, args.real_steps, args.seed),
        }
        print(env, figures[env])
    return figures


def readme_table() -> str:
    result = load_result(NAME)
    config = result["config"]
    rows = [
        [
            env,
            f"{f['imagined_batched_steps_per_second']:.0f}",
            f"{f['imagined_single_steps_per_second']:.1f}",
            f"{f['real_steps_per_second']:.0f}",
        ]
        for env, f in result["figures"].items()
    ]
    return (
        markdown_table(
            ["env", f"imagined, batched ({config['num_envs']} envs)", "imagined, single", "real env"], rows
        )
        + f"\n\nSteps per second, 64x64 frames, {config['flow_steps']} flow steps, random actions, "
        + f"torch on {config['threads']} threads; {provenance(result)}"
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
