"""Env steps per second of VLGOR-CLEVR-v0 (physics + 64x64 rendering), and its parts."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import tyro

import vlgor_envs  # noqa: F401
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.clevr.env import PUSH_DIRECTIONS
from vlgor_envs.clevr.scene import Scene

NAME = "clevr_throughput"


@dataclass
class Args:
    steps: int = 5000
    """Env steps to time (random actions, with resets)."""
    image_size: int = 64
    """Frame side in pixels."""
    seed: int = 0
    """Seed of the env and the action sampler."""


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def measure(args: Args) -> dict[str, float]:
    env = gym.make("VLGOR-CLEVR-v0", image_size=args.image_size)
    env.action_space.seed(args.seed)
    env.reset(seed=args.seed)
    episodes = 0
    start = time.perf_counter()
    for _ in range(args.steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            episodes += 1
    env_seconds = time.perf_counter() - start
    env.close()

    scene = Scene(args.image_size)
    scene.set_positions(np.array([[0.0, 0.0], [0.4, 0.4], [-0.4, 0.4], [0.4, -0.2], [-0.4, -0.2]]))
    start = time.perf_counter()
    for step in range(args.steps):
        if step % 20 == 0:
            scene.set_positions(np.array([[0.0, 0.0], [0.4, 0.4], [-0.4, 0.4], [0.4, -0.2], [-0.4, -0.2]]))
        scene.push(step % 5, PUSH_DIRECTIONS[step % 8])
    physics_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        scene.render()
    render_seconds = time.perf_counter() - start
    scene.close()
    return {
        "env_steps_per_s": _rate(args.steps, env_seconds),
        "pushes_per_s": _rate(args.steps, physics_seconds),
        "renders_per_s": _rate(args.steps, render_seconds),
        "episodes_reset": episodes,
    }


def readme_table() -> str:
    result = load_result(NAME)
    figures, config = result["figures"], result["config"]
    rows = [
        ["env.step (push + physics + render)", figures["env_steps_per_s"]],
        ["push + physics only", figures["pushes_per_s"]],
        ["render only", figures["renders_per_s"]],
    ]
    note = f"\n{config['image_size']}x{config['image_size']} frames, {config['steps']} steps, " + provenance(
        result
    )
    return markdown_table(["what (VLGOR-CLEVR-v0)", "per second"], rows) + "\n" + note


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
