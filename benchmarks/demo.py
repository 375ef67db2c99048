"""``make demo``: the whole VLGOR pipeline at small size, after a look at each part.

1. the scripted experts on every split of both envs, one rollout of each as a PNG;
2. a small Minari dataset per env, loaded into d3rlpy;
3. the shipped imagination models: one-step fidelity and real-vs-imagined strips;
4. the pipeline (:mod:`agents.split_benchmark`, preset ``demo``): collect real CLEVR data, imagine
   counterfactual rollouts with the shipped model, train DiscreteBC on real and on real plus
   imagined data, evaluate both in the real env on the counterfactual split, print the table
   and write the plots.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import tyro

from agents import split_benchmark as splits
from benchmarks.imagination_fidelity import one_step_fidelity, rollout_strip
from vlgor_envs.clevr import expert as clevr_expert
from vlgor_envs.data import collect
from vlgor_envs.data.collect import collect_config
from vlgor_envs.data.d3rlpy_bridge import to_d3rlpy
from vlgor_envs.imagination.checkpoint import load_checkpoint, shipped_checkpoint
from vlgor_envs.imagination.model import DEFAULT_FLOW_STEPS
from vlgor_envs.metaworld import expert as metaworld_expert
from vlgor_envs.rollout import Episode

SPLITS = ("train", "rephrasing", "counterfactual", "hard")


@dataclass
class Args:
    clevr_episodes: int = 50
    """Expert episodes per split of VLGOR-CLEVR-v0."""
    metaworld_episodes: int = 10
    """Expert episodes per split of VLGOR-MetaWorld-v0 (tasks drawn at random)."""
    seed: int = 0
    """Episode i of every split is seeded seed + i."""
    clevr_dataset_episodes: int = 50
    """Episodes of the small CLEVR Minari dataset the demo collects and loads into d3rlpy."""
    metaworld_dataset_episodes: int = 5
    """Episodes of the small Meta-World Minari dataset."""
    out: Path = Path("out/demo")
    """Where the rollout strips, plots and runs (and, unless MINARI_DATASETS_PATH is set, the
    datasets) go."""
    pipeline_preset: Literal["tiny", "demo"] = "demo"
    """Size of the pipeline run (`tiny` is for the tests)."""
    drop_failures: bool | None = None
    """Train on the imagined rollouts that met their goal only (see `vlgor bench splits`)."""


def save_strip(episode: Episode, path: Path, max_frames: int = 12) -> None:
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


def report(env_id: str, run: Callable[[str, int], list[Episode]], episodes: int) -> None:
    """Print the expert's success and episode length on every split."""
    print(f"Scripted expert on {env_id}, {episodes} episodes per split")
    for split in SPLITS:
        start = time.perf_counter()
        results = run(split, episodes)
        rate = 100 * np.mean([e.success for e in results])
        length = np.mean([e.length for e in results])
        seconds = time.perf_counter() - start
        print(f"  {split:>14}: success {rate:5.1f}%  mean steps {length:5.1f}  ({seconds:.1f} s)")


def datasets(args: Args) -> None:
    """Collect a small real dataset per env into Minari and load it into d3rlpy."""
    os.environ.setdefault("MINARI_DATASETS_PATH", str((args.out / "minari").resolve()))
    print(f"Minari datasets in {os.environ['MINARI_DATASETS_PATH']}")
    sizes = {"clevr": args.clevr_dataset_episodes, "metaworld": args.metaworld_dataset_episodes}
    for env, episodes in sizes.items():
        start = time.perf_counter()
        dataset = collect(
            collect_config(
                env,
                "train",
                episodes=episodes,
                seed=args.seed,
                dataset_id=f"vlgor/{env}/demo-train-v0",
                overwrite=True,
                progress=False,
            )
        )
        collected = time.perf_counter() - start
        replay = to_d3rlpy(dataset)
        image, embedding = replay.episodes[0].observations
        print(
            f"  {dataset.id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps "
            f"({collected:.1f} s) -> d3rlpy {replay.transition_count} transitions, "
            f"observations {image.shape[1:]} uint8 + {embedding.shape[1:]} float32, "
            f"{replay.dataset_info.action_space.name.lower()} actions"
        )


def imagination(args: Args) -> None:
    """Load each shipped imagination model, measure it on the demo data, and draw a strip."""
    for env in ("clevr", "metaworld"):
        model, config = load_checkpoint(shipped_checkpoint(env))
        training = config["training"]
        parameters = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"Imagination model for {env}: {parameters:.1f}M parameters, "
            f"grounded on {training['transitions']} transitions"
        )
        dataset_id = f"vlgor/{env}/demo-train-v0"
        figures = one_step_fidelity(model, dataset_id, DEFAULT_FLOW_STEPS, args.seed)
        shown = {k: round(v, 4) for k, v in figures.items() if isinstance(v, float)}
        print(f"  one-step fidelity on {dataset_id} (seen starts, train instructions): {shown}")
        path = args.out / f"{env}_imagined_rollout.png"
        rollout_strip(model, env, dataset_id, path, DEFAULT_FLOW_STEPS)
        print(f"  real vs imagined strip: {path}")
    envs = gym.make_vec("VLGOR-Imagined-CLEVR", num_envs=16, vectorization_mode="vector_entry_point")
    envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    actions = envs.action_space.sample()
    start, successes = time.perf_counter(), np.zeros(16, dtype=bool)
    for _ in range(10):
        _, _, terminated, _, infos = envs.step(actions)
        successes |= terminated
        # Envs that were just reset have no imagined action yet: they take a random one.
        fresh = envs.action_space.sample()
        actions = np.array(
            [a if a is not None else f for a, f in zip(infos["imagined_action"], fresh, strict=True)]
        )
    seconds = time.perf_counter() - start
    envs.close()
    print(
        f"VLGOR-Imagined-CLEVR x16 following the model's own actions: {160 / seconds:.0f} imagined steps/s, "
        f"{successes.mean():.0%} reached their goal (judged on the imagined frames) within 10 steps"
    )


def main(args: Args) -> None:
    report(
        "VLGOR-CLEVR-v0", lambda split, n: clevr_expert.run_expert(split, n, args.seed), args.clevr_episodes
    )
    report(
        "VLGOR-MetaWorld-v0",
        lambda split, n: metaworld_expert.run_expert(split, n, args.seed),
        args.metaworld_episodes,
    )
    strips = {
        "clevr_expert_rollout.png": clevr_expert.run_expert("counterfactual", 8, args.seed, keep_frames=True),
        "metaworld_expert_rollout.png": metaworld_expert.run_expert(
            "counterfactual", 1, args.seed, task="reach-left-of-goal", keep_frames=True
        ),
    }
    for name, candidates in strips.items():
        save_strip(max(candidates, key=lambda e: (e.success, e.length)), args.out / name)
        print(f"Rollout strip: {args.out / name}")
    datasets(args)
    imagination(args)
    pipeline(args)


def pipeline(args: Args) -> None:
    """Real data, imagined counterfactual rollouts, BC with and without them, real-env success."""
    print("Pipeline: BC on real data vs real + imagined counterfactual rollouts (counterfactual split)")
    splits.main(
        splits.Args(
            env="clevr",
            algos=("DiscreteBC",),
            seeds=1,
            preset=args.pipeline_preset,
            regimes=("baseline", "vlgor"),
            eval_splits=("counterfactual",),
            out=args.out / "runs",
            results=args.out,
            name="pipeline",
            drop_failures=args.drop_failures,
            fresh_data=True,
        )
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
