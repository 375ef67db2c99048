"""Success of the scripted CLEVR expert on every split, per goal kind; JSON and a bar chart."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tyro

from benchmarks.report import RESULTS_DIR, load_result, markdown_table, provenance, write_result
from vlgor_envs.clevr.expert import DEFAULT_EXPERT, run_expert
from vlgor_envs.language.clevr import SPLITS, goal_kind

NAME = "clevr_expert"


@dataclass
class Args:
    episodes: int = 300
    """Episodes per split."""
    seed: int = 20_000
    """Episode i of every split is seeded seed + i."""
    expert: Literal["astar", "field", "steering"] = DEFAULT_EXPERT
    """Which expert of `vlgor_envs.clevr.expert.EXPERTS`; the datasets' default expert
    writes `clevr_expert.json` and its chart, another one `clevr_expert_<name>.json`."""


def measure(args: Args) -> dict[str, dict[str, float]]:
    figures: dict[str, dict[str, float]] = {}
    for split in SPLITS:
        episodes = run_expert(split, args.episodes, args.seed, expert_name=args.expert)
        by_kind: dict[str, list[bool]] = defaultdict(list)
        for episode in episodes:
            by_kind[goal_kind(episode.goal)].append(episode.success)
        figures[split] = {
            "success": float(np.mean([e.success for e in episodes])),
            "mean_length": float(np.mean([e.length for e in episodes])),
            **{f"success_{kind}": float(np.mean(v)) for kind, v in sorted(by_kind.items())},
        }
        print(split, figures[split])
    return figures


def plot(figures: dict[str, dict[str, float]]) -> None:
    fig, ax = plt.subplots(figsize=(6, 3))
    rates = [100 * figures[s]["success"] for s in SPLITS]
    ax.bar(SPLITS, rates, color="#4c72b0")
    for x, rate in enumerate(rates):
        ax.text(x, rate + 1, f"{rate:.1f}", ha="center")
    ax.set_ylim(0, 110)
    ax.set_ylabel("success (%)")
    ax.set_title("Scripted expert on VLGOR-CLEVR-v0 (50-step episodes)")
    fig.tight_layout()
    fig.savefig(RESULTS_DIR / f"{NAME}.png", dpi=120)
    plt.close(fig)


def readme_table() -> str:
    result = load_result(NAME)
    rows = []
    for split in SPLITS:
        figures = result["figures"][split]
        kinds = ", ".join(
            f"{key.removeprefix('success_')} {100 * value:.1f}"
            for key, value in figures.items()
            if key.startswith("success_")
        )
        rows.append([split, f"{100 * figures['success']:.1f}", f"{figures['mean_length']:.1f}", kinds])
    episodes = result["config"]["episodes"]
    return (
        markdown_table(["split", "success (%)", "mean steps", "success per goal kind (%)"], rows)
        + f"\n\n{episodes} episodes per split, {provenance(result)}"
    )


def main(args: Args) -> None:
    figures = measure(args)
    is_default = args.expert == DEFAULT_EXPERT
    write_result(NAME if is_default else f"{NAME}_{args.expert}", args, figures)
    if is_default:
        plot(figures)


if __name__ == "__main__":
    main(tyro.cli(Args))
