"""Env steps per second of VLGOR-MetaWorld-v0 (physics + 64x64 rendering), and its parts."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import tyro

import vlgor_envs  # noqa: F401
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.language.metaworld import tasks_of_split
from vlgor_envs.metaworld.env import MetaWorldLanguageEnv

NAME = "metaworld_throughput"


@dataclass
class Args:
    steps_per_task: int = 300
    """Env steps timed on each train task (random actions, with resets)."""
    image_size: int = 64
    """Frame side in pixels."""
    seed: int = 0
    """Seed of the env and the action sampler."""


def measure(args: Args) -> dict[str, float]:
    env_seconds = physics_seconds = render_seconds = 0.0
    steps = 0
    for task in tasks_of_split("train"):
        env = gym.make("VLGOR-MetaWorld-v0", task=task.name, image_size=args.image_size)
        env.action_space.seed(args.seed)
        env.reset(seed=args.seed)
        start = time.perf_counter()
        for _ in range(args.steps_per_task):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        env_seconds += time.perf_counter() - start
        unwrapped = env.unwrapped
        assert isinstance(unwrapped, MetaWorldLanguageEnv)
        scene = unwrapped.scene
        start = time.perf_counter()
        for _ in range(args.steps_per_task):
            scene.env.step(np.zeros(4, np.float32))
        physics_seconds += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.steps_per_task):
            scene.render()
        render_seconds += time.perf_counter() - start
        steps += args.steps_per_task
        env.close()
    return {
        "env_steps_per_s": round(steps / env_seconds, 1),
        "physics_steps_per_s": round(steps / physics_seconds, 1),
        "renders_per_s": round(steps / render_seconds, 1),
    }


def readme_table() -> str:
    result = load_result(NAME)
    figures, config = result["figures"], result["config"]
    rows = [
        ["env.step (physics + render)", figures["env_steps_per_s"]],
        ["Meta-World physics only", figures["physics_steps_per_s"]],
        ["render only", figures["renders_per_s"]],
    ]
    note = (
        f"\n{config['image_size']}x{config['image_size']} frames, {config['steps_per_task']} steps on each "
        "train task, " + provenance(result)
    )
    return markdown_table(["what (VLGOR-MetaWorld-v0)", "per second"], rows) + "\n" + note


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
