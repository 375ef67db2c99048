"""The ``vlgor`` command line: one subcommand per job (``vlgor --help`` lists them).

The composition root: the one module that imports every layer, benchmarks included.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Annotated, Literal

import numpy as np
import tyro

from agents.commands import train_command
from benchmarks import splits as splits_benchmark
from vlgor_envs.data.commands import collect_command, datasets_command
from vlgor_envs.imagination.commands import (
    FinetuneArgs,
    PretrainArgs,
    TuneDecoderArgs,
    finetune_command,
    pretrain_command,
    tune_decoder_command,
)
from vlgor_envs.imagination.rollouts import imagine_command
from vlgor_envs.language import Goal, clevr, metaworld


def splits(
    env: tyro.conf.Positional[Literal["clevr", "metaworld"]], examples: int = 3, seed: int = 0
) -> None:
    """Print each split's size and example instructions.

    Args:
        env: Which environment's language.
        examples: How many example instructions to print per split.
        seed: Seed of the example sampler.
    """
    rng = np.random.default_rng(seed)
    if env == "clevr":
        for split in clevr.SPLITS:
            goals = clevr.split_goals(split)
            tasks = {(g.target, g.behavior) for g in goals}
            kinds = Counter(clevr.goal_kind(Goal(f"{split}-0", t, b)) for t, b in tasks)
            print(
                f"{split}: {len(goals)} instructions = {len(tasks)} tasks in the "
                f"{clevr.SPLIT_WORDING[split]!r} wording; "
                + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
            )
            for _ in range(examples):
                print(f"    {clevr.render(clevr.sample_goal(split, rng))}")
        return
    for split in metaworld.SPLITS:
        goals = metaworld.split_goals(split)
        names = [task.name for task in metaworld.tasks_of_split(split)]
        print(
            f"{split}: {len(goals)} instructions = {len(names)} tasks in the "
            f"{metaworld.SPLIT_WORDING[split]!r} wording; " + ", ".join(names)
        )
        for _ in range(examples):
            print(f"    {metaworld.render(metaworld.sample_goal(split, rng))}")


def imagination(
    args: tyro.conf.OmitArgPrefixes[
        Annotated[PretrainArgs, tyro.conf.subcommand("pretrain", prefix_name=False)]
        | Annotated[FinetuneArgs, tyro.conf.subcommand("finetune", prefix_name=False)]
        | Annotated[TuneDecoderArgs, tyro.conf.subcommand("tune-decoder", prefix_name=False)]
    ],
) -> None:
    """Train the imagination model: `pretrain` (interaction data), `finetune` (LoRA grounding),
    then optionally `tune-decoder` (the decoder adapts to imagined latents)."""
    if isinstance(args, PretrainArgs):
        pretrain_command(args)
    elif isinstance(args, FinetuneArgs):
        finetune_command(args)
    else:
        tune_decoder_command(args)


def bench() -> None:
    """Benchmarks: `vlgor bench splits` scores learners with and without imagination on each split."""
    print("usage: vlgor bench splits [--env clevr] [--algos ...] [--seeds 3] [--preset cpu]; see --help")


def main() -> None:
    """Entry point of the ``vlgor`` console script."""
    if sys.argv[1:3] == ["bench", "splits"]:
        # A group with one subcommand: tyro would flatten it, so it is dispatched here.
        splits_benchmark.main(tyro.cli(splits_benchmark.Args, args=sys.argv[3:], prog="vlgor bench splits"))
        return
    tyro.extras.subcommand_cli_from_dict(
        {
            "splits": splits,
            "collect": collect_command,
            "datasets": datasets_command,
            "imagination": imagination,
            "imagine": imagine_command,
            "train": train_command,
            "bench": bench,
        },
        prog="vlgor",
    )


if __name__ == "__main__":
    main()
