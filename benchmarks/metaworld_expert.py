"""Success of the scripted Meta-World experts on every task of every split; JSON and a bar chart."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tyro
from tqdm import tqdm

from benchmarks.report import RESULTS_DIR, load_result, markdown_table, provenance, write_result
from vlgor_envs.language.metaworld import SPLITS, tasks_of_split
from vlgor_envs.metaworld.expert import run_expert

NAME = "metaworld_expert"
_SPLITS_WITH_OWN_TASKS = tuple(s for s in SPLITS if s != "rephrasing")  # rephrasing = train tasks


@dataclass
class Args:
    episodes: int = 20
    """Episodes per task."""
    seed: int = 30_000
    """Episode i of every task is seeded seed + i."""


def measure(args: Args) -> dict[str, dict[str, dict[str, float]]]:
    figures: dict[str, dict[str, dict[str, float]]] = {}
    for split in _SPLITS_WITH_OWN_TASKS:
        figures[split] = {}
        for task in tqdm(tasks_of_split(split), desc=split):
            episodes = run_expert(split, args.episodes, args.seed, task=task.name)
            figures[split][task.name] = {
                "success": float(np.mean([e.success for e in episodes])),
                "mean_length": float(np.mean([e.length for e in episodes])),
                "max_steps": float(task.max_steps),
            }
    return figures


def plot(figures: dict[str, dict[str, dict[str, float]]]) -> None:
    names = [name for split in figures.values() for name in split]
    rates = [100 * f["success"] for split in figures.values() for f in split.values()]
    colours = {"train": "#4c72b0", "counterfactual": "#dd8452", "hard": "#c44e52"}
    bar_colours = [colours[split] for split, tasks in figures.items() for _ in tasks]
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.bar(range(len(names)), rates, color=bar_colours)
    ax.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=8)
    ax.axhline(80, color="grey", linestyle="--", linewidth=0.8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("success (%)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
    ax.legend(handles, list(colours), loc="lower left", fontsize=8)
    ax.set_title("Scripted experts on VLGOR-MetaWorld-v0, per task")
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / f"{NAME}.png", dpi=120)
    plt.close(fig)


def readme_table() -> str:
    result = load_result(NAME)
    rows = []
    for split in _SPLITS_WITH_OWN_TASKS:
        for task in tasks_of_split(split):
            f = result["figures"][split][task.name]
            rows.append(
                [split, task.name, f"{100 * f['success']:.0f}", f"{f['mean_length']:.0f}", task.max_steps]
            )
    episodes = result["config"]["episodes"]
    return (
        markdown_table(["split", "task", "success (%)", "mean steps", "episode limit"], rows)
        + f"\n\n{episodes} episodes per task; the rephrasing split runs the train tasks. "
        + provenance(result)
    )


def main(args: Args) -> None:
    figures = measure(args)
    write_result(NAME, args, figures)
    plot(figures)


if __name__ == "__main__":
    main(tyro.cli(Args))
