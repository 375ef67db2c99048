"""``make demo``: the scripted expert on every split of VLGOR-CLEVR-v0, and one rollout as a PNG."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import tyro
from tqdm import tqdm

from vlgor_envs.clevr.expert import ExpertEpisode, run_expert
from vlgor_envs.language.clevr import SPLITS


@dataclass
class Args:
    episodes: int = 50
    """Expert episodes per split."""
    seed: int = 0
    """Episode i of every split is seeded seed + i."""
    out: Path = Path("out/demo")
    """Where the rollout strip is written."""


def save_strip(episode: ExpertEpisode, path: Path, max_frames: int = 12) -> None:
    """A row of frames of one rollout, titled with its instruction."""
    picks = np.unique(
        np.linspace(0, len(episode.frames) - 1, min(max_frames, len(episode.frames))).astype(int)
    )
    width = max(6.0, 1.4 * len(picks))
    fig, axes = plt.subplots(1, len(picks), figsize=(width, 1.9), squeeze=False)
    for ax, index in zip(axes[0], picks, strict=True):
        ax.imshow(episode.frames[index])
        ax.set_title(f"t={index}", fontsize=8)
        ax.axis("off")
    outcome = "success" if episode.success else "failure"
    fig.suptitle(textwrap.shorten(f'"{episode.instruction}" ({outcome})', 120), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(args: Args) -> None:
    print(f"Scripted expert on VLGOR-CLEVR-v0, {args.episodes} episodes per split")
    for split in tqdm(SPLITS, desc="splits", leave=False):
        start = time.perf_counter()
        episodes = run_expert(split, args.episodes, args.seed)
        rate = 100 * np.mean([e.success for e in episodes])
        length = np.mean([e.length for e in episodes])
        seconds = time.perf_counter() - start
        tqdm.write(f"  {split:>14}: success {rate:5.1f}%  mean steps {length:4.1f}  ({seconds:.1f} s)")
    candidates = run_expert("counterfactual", 8, args.seed, keep_frames=True)
    rollout = max(candidates, key=lambda e: (e.success, e.length))
    path = args.out / "clevr_expert_rollout.png"
    save_strip(rollout, path)
    print(f"Rollout strip: {path}")


if __name__ == "__main__":
    main(tyro.cli(Args))
