"""Evaluation episodes per second of a d3rlpy learner: one env at a time against a vector of envs.

The learner is the benchmark's default DiscreteBC network, untrained (so its episodes mostly
run to the step limit, as a weak learner's do). ``sequential`` calls ``predict`` once per env
step on one observation (``num_envs=1``); ``vectorised`` steps ``num_envs`` envs and calls it
once per step on their stacked observations. Both face the same episodes (seeds), and the
benchmark checks that they end the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents import d3rlpy_policy, evaluate, make_config
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.language.encoder import default_text_encoder

NAME = "evaluation_throughput"


@dataclass
class Args:
    episodes: int = 40
    """Episodes per measurement (CLEVR train split)."""
    num_envs: tuple[int, ...] = (1, 8, 20)
    """Vector sizes to time (1 is the sequential loop)."""
    seed: int = 0
    """Seed of the learner's weights and of the episodes."""


def untrained_learner(seed: int) -> Any:
    """The split benchmark's DiscreteBC learner with freshly initialised networks."""
    torch.manual_seed(seed)
    algo = make_config("DiscreteBC", "discrete", steps=1, batch_size=1).create(device="cpu:0")
    embedding = default_text_encoder().encode("move the red ball to the left")
    algo.create_impl([(3, 64, 64), (len(embedding),)], 40)
    return algo


def measure(args: Args) -> dict[str, Any]:
    policy = d3rlpy_policy(untrained_learner(args.seed))
    evaluate(policy, "clevr", "train", 2, seed=args.seed)  # warm-up: embeddings, first renders
    rates: dict[str, float] = {}
    outcomes = set()
    for num_envs in args.num_envs:
        start = time.perf_counter()
        result = evaluate(policy, "clevr", "train", args.episodes, seed=args.seed, num_envs=num_envs)
        rates[str(num_envs)] = args.episodes / (time.perf_counter() - start)
        outcomes.add((result.successes, result.lengths))
    if len(outcomes) != 1:
        raise RuntimeError("the vectorised evaluation ended other episodes than the sequential one")
    return {"episodes_per_s": rates, "speedup": {n: rates[n] / rates["1"] for n in rates}}


def readme_table() -> str:
    result = load_result(NAME)
    figures = result["figures"]
    rates = sorted(figures["episodes_per_s"].items(), key=lambda item: int(item[0]))
    rows = [[n, f"{rate:.1f}", f"{figures['speedup'][n]:.2f}x"] for n, rate in rates]
    return (
        markdown_table(["envs side by side", "episodes/s", "vs one env"], rows)
        + f"\n\nUntrained DiscreteBC on {result['config']['episodes']} CLEVR train episodes (same seeds, "
        + "same outcomes in every row), one `predict` per step on the stacked batch. "
        + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
