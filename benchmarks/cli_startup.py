"""Seconds from starting ``vlgor`` to its help text: the top level and a few commands.

Each command runs as its own process (the cold start a user waits for), ``repeats`` times;
the table gives the median and whether stderr was empty (no notices from dependencies).
``vlgor --help`` imports no command, each ``vlgor COMMAND --help`` only its own module.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result

NAME = "cli_startup"


@dataclass
class Args:
    commands: tuple[str, ...] = ("--help", "collect --help", "imagine --help", "train --help")
    """What follows ``vlgor`` in each timed process."""
    repeats: int = 5
    """Processes per command (the median is reported)."""


def seconds_to_help(command: str) -> tuple[float, str]:
    """Wall seconds of one ``vlgor COMMAND`` process, and its stderr."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "vlgor_envs.cli", *command.split()], capture_output=True, text=True, check=True
    )
    return time.perf_counter() - started, done.stderr


def measure(args: Args) -> dict[str, dict[str, float | bool]]:
    figures: dict[str, dict[str, float | bool]] = {}
    for command in args.commands:
        runs = [seconds_to_help(command) for _ in range(args.repeats)]
        figures[command] = {
            "median_s": statistics.median(seconds for seconds, _ in runs),
            "quiet": all(stderr == "" for _, stderr in runs),
        }
    return figures


def readme_table() -> str:
    result = load_result(NAME)
    rows = [
        [f"`vlgor {command}`", f"{got['median_s']:.2f}", "yes" if got["quiet"] else "no"]
        for command, got in result["figures"].items()
    ]
    return (
        markdown_table(["command", "seconds (median)", "nothing on stderr"], rows)
        + f"\n\nMedian of {result['config']['repeats']} fresh processes each. "
        + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
