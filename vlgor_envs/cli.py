"""The ``vlgor`` command line: one subcommand per job (``vlgor --help`` lists them).

The composition root: the one module that reaches every layer, benchmarks included. Each
command's module is imported only when that command runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import tyro

from vlgor_envs.language import language_of
from vlgor_envs.registry import EnvName

#: Each subcommand's module, function and summary (the start of the function's docstring). A
#: command imports only its own module, and `vlgor --help` none: all of them together load
#: torch, peft and d3rlpy, about 15 s on 2 cores.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "splits": (__name__, "splits", "Print each split's size and example instructions"),
    "collect": (
        "vlgor_envs.data.commands",
        "collect_command",
        "Roll a scripted expert out and write a Minari dataset",
    ),
    "datasets": ("vlgor_envs.data.commands", "datasets_command", "List local vlgor datasets, or show one"),
    "imagination": (
        "vlgor_envs.imagination.commands",
        "imagination_command",
        "Train the imagination model: `pretrain` (interaction data), `finetune` (LoRA grounding)",
    ),
    "imagine": (
        "vlgor_envs.imagination.rollouts",
        "imagine_command",
        "Roll the imagination model out on counterfactual prompts into a Minari dataset",
    ),
    "train": (
        "agents.commands",
        "train_command",
        "Train an offline-RL policy (d3rlpy) on real and imagined datasets",
    ),
    "bench": (
        __name__,
        "bench",
        "Benchmarks: `vlgor bench splits` scores learners with and without imagination",
    ),
}


@dataclasses.dataclass
class SplitsArgs:
    """Print each split's size and example instructions."""

    env: tyro.conf.Positional[EnvName]
    """Which environment's language."""
    examples: int = 3
    """How many example instructions to print per split."""
    seed: int = 0
    """Seed of the example sampler."""


def splits(args: tyro.conf.OmitArgPrefixes[SplitsArgs]) -> None:
    """Print each split's size and example instructions."""
    language = language_of(args.env)
    rng = np.random.default_rng(args.seed)
    for split in language.SPLITS:
        print(language.split_summary(split))
        for _ in range(args.examples):
            print(f"    {language.render(language.sample_goal(split, rng))}")


def bench() -> None:
    """Benchmarks: `vlgor bench splits` scores learners with and without imagination on each split."""
    print("usage: vlgor bench splits [--env clevr] [--algos ...] [--seeds 3] [--preset cpu]; see --help")


def command(name: str) -> Callable[..., Any]:
    """The function of subcommand ``name``, its module imported."""
    module, function, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), function)


def usage() -> str:
    """The top-level help: each command and its summary, without importing any of them."""
    width = max(map(len, COMMANDS))
    listed = [f"  {name:<{width}}  {summary}" for name, (_, _, summary) in COMMANDS.items()]
    return "\n".join(
        [
            "usage: vlgor COMMAND [ARGS] [--debug]",
            "",
            "commands:",
            *listed,
            "",
            "`vlgor COMMAND --help` shows a command's options; --debug shows tracebacks of errors.",
        ]
    )


#: What a user's mistake raises (a bad value, a missing or existing dataset, a bad checkpoint,
#: all ValueError or OSError subclasses): one line and exit code 2, without a traceback.
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)


def main() -> None:
    """Entry point of the ``vlgor`` console script: user errors are one line on stderr (exit
    code 2; ``--debug`` shows the traceback), Ctrl-C exits with 130."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        run(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        sys.stdout.flush()
        print("vlgor: interrupted", file=sys.stderr, flush=True)
        # At once: cleanups have run, and objects cut off mid-construction (a MuJoCo renderer)
        # would print errors from their finalisers at a normal exit.
        os._exit(130)
    except BrokenPipeError:
        # The reader went away (`vlgor ... | head`): stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(141)
    except USER_ERRORS as error:
        if debug:
            raise
        print(f"vlgor: error: {error}", file=sys.stderr)
        sys.exit(2)


def run(argv: list[str]) -> None:
    """Dispatch ``argv`` (without the program name) to its subcommand."""
    if argv[:2] == ["bench", "splits"]:
        # A group with one subcommand: tyro would flatten it, so it is dispatched here.
        from agents import split_benchmark as splits_benchmark

        splits_benchmark.main(tyro.cli(splits_benchmark.Args, args=argv[2:], prog="vlgor bench splits"))
    elif argv and argv[0] in COMMANDS:
        tyro.cli(command(argv[0]), args=argv[1:], prog=f"vlgor {argv[0]}")
    elif argv[:1] in (["-h"], ["--help"]):
        print(usage())
    elif not argv:
        print(usage(), file=sys.stderr)
        sys.exit(2)
    else:
        raise ValueError(f"unknown command {argv[0]!r}; the commands are {', '.join(COMMANDS)}")


if __name__ == "__main__":
    main()
