"""An online agent trained only inside the imagination, evaluated in the real env.

stable-baselines3's PPO (or DQN) learns the CLEVR train split for ``steps`` env steps inside
``VLGOR-Imagined-CLEVR`` (the shipped model as the simulator), and the same agent (seed,
hyperparameters, step budget) inside the real ``VLGOR-CLEVR-v0``. Every ``steps /
evaluations`` steps each is evaluated greedily in the real env on held-out starts of the train
split, beside a uniform random policy. Observations are the image and the CLEVR instruction
feature (:func:`vlgor_envs.language.instruction_encoder`), as ``EmbedInstruction`` gives them.
The figure of merit: the imagination-trained agent's final success as a share of the
real-trained one's (target 70%), which means something only where the real-trained agent is
clearly above the random policy.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import numpy as np
import torch
import tyro
from matplotlib import pyplot as plt
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from agents.evaluate import evaluate
from agents.online import FILM_POLICY_KWARGS, Sb3Policy, sb3_vec_env
from benchmarks.report import RESULTS_DIR, markdown_table, write_result
from vlgor_envs.language import instruction_encoder
from vlgor_envs.language.encoder import InstructionEncoder

NAME = "sb3_imagination"
ENVS = {"imagined": "VLGOR-Imagined-CLEVR", "real": "VLGOR-CLEVR-v0"}
#: Reset seeds of the evaluation episodes (no dataset and no training env uses them).
EVAL_SEED = 4_000_000
TARGET_SHARE = 0.70


@dataclass
class Args:
    algo: Literal["PPO", "DQN"] = "PPO"
    steps: int = 60_000
    """Env steps each agent trains for."""
    evaluations: int = 6
    """Evaluations in the real env, evenly over training (the last at ``steps``)."""
    num_envs: int = 8
    eval_episodes: int = 100
    seed: int = 0
    threads: int = 1
    """torch threads of each agent."""
    network: Literal["film", "nature"] = "film"
    """The policy's features: the offline learners' FiLM keypoint network, or SB3's NatureCNN."""
    kinds: tuple[Literal["real", "imagined"], ...] = ("real", "imagined")
    """Where agents train, in this order (``real`` alone checks that the budget lets it learn)."""
    results: Path = RESULTS_DIR


def make_agent(args: Args, env_id: str, encoder: InstructionEncoder) -> BaseAlgorithm:
    """The agent, its ``num_envs`` copies of ``env_id`` seeded from ``args.seed``."""
    env = sb3_vec_env(env_id, num_envs=args.num_envs, encoder=encoder, seed=args.seed, split="train")
    network = FILM_POLICY_KWARGS if args.network == "film" else {}
    # Episodes last at most 50 steps: a shorter horizon than SB3's default 0.99.
    common: dict[str, Any] = {"gamma": 0.95, "seed": args.seed, "policy_kwargs": network}
    if args.algo == "PPO":
        return PPO("MultiInputPolicy", env, n_steps=128, batch_size=256, ent_coef=0.01, **common)
    return DQN("MultiInputPolicy", env, buffer_size=50_000, learning_starts=1_000, **common)


def success_in_real_env(policy: Any, args: Args) -> float:
    """Greedy success on ``eval_episodes`` held-out starts of the train split."""
    result = evaluate(policy, "clevr", "train", args.eval_episodes, seed=EVAL_SEED, num_envs=10)
    return result.success_rate


def learning_curve(args: Args, kind: str, encoder: InstructionEncoder) -> dict[str, Any]:
    """Success in the real env after each block of training in env ``kind``."""
    agent = make_agent(args, ENVS[kind], encoder)
    block = args.steps // args.evaluations
    curve, started = [], time.perf_counter()
    for index in range(1, args.evaluations + 1):
        agent.learn(block, reset_num_timesteps=False)
        curve.append([index * block, success_in_real_env(Sb3Policy(agent, encoder), args)])
        print(f"{kind}: {curve[-1][0]} steps, real success {curve[-1][1]:.0%}")
    env = agent.get_env()
    if env is not None:
        env.close()
    return {"curve": curve, "seconds": round(time.perf_counter() - started, 1)}


def random_success(args: Args) -> float:
    rng = np.random.default_rng(args.seed)
    return success_in_real_env(lambda observation: int(rng.integers(40)), args)


def measure(args: Args) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    encoder = instruction_encoder("clevr")
    figures: dict[str, Any] = {kind: learning_curve(args, kind, encoder) for kind in args.kinds}
    figures["random"] = random_success(args)
    figures["share_of_real"] = None
    if "real" in figures and "imagined" in figures:
        real, imagined = figures["real"]["curve"][-1][1], figures["imagined"]["curve"][-1][1]
        figures["share_of_real"] = imagined / real if real > 0 else None
    return figures


def plot(figures: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for kind, label in (
        ("real", "trained in VLGOR-CLEVR-v0"),
        ("imagined", "trained in VLGOR-Imagined-CLEVR"),
    ):
        if kind not in figures:
            continue
        steps, success = zip(*figures[kind]["curve"], strict=True)
        ax.plot(steps, success, marker="o", label=label)
    ax.axhline(figures["random"], color="grey", linestyle="--", label="random policy")
    ax.set_xlabel("env steps of training")
    ax.set_ylabel("success in the real env (train split)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def readme_table(record: dict[str, Any]) -> str:
    figures, config = record["figures"], record["config"]
    rows = [
        [
            label,
            *[f"{success:.0%}" for _, success in figures[kind]["curve"]],
            f"{figures[kind]['seconds']:.0f}",
        ]
        for kind, label in (("real", "trained in the real env"), ("imagined", "trained in imagination"))
        if kind in figures
    ]
    steps = [f"{steps:,}" for steps, _ in figures[config["kinds"][0]]["curve"]]
    share = figures["share_of_real"]
    achieved = f"{share:.0%}" if share is not None else "undefined (needs both agents and a real success)"
    note = (
        f"{config['algo']} (stable-baselines3, {config['network']} features), {config['num_envs']} envs, "
        f"seed {config['seed']}; success "
        f"in the real env on {config['eval_episodes']} held-out train-split starts after each block of "
        f"training. Random policy: {figures['random']:.0%}. Imagination-trained success as a share of "
        f"the real-trained: {achieved} (target {TARGET_SHARE:.0%}). `python -m benchmarks.sb3_imagination`; "
        f"revision {record['git_revision'][:7]}."
    )
    return markdown_table(["agent", *steps, "seconds"], rows) + "\n\n" + note + "\n"


def main(args: Args) -> None:
    figures = measure(args)
    path = write_result(NAME, args, figures, args.results)
    plot(figures, args.results / f"{NAME}.png")
    print(readme_table(json.loads(path.read_text())))


if __name__ == "__main__":
    main(tyro.cli(Args))
