"""How many imagined CLEVR rollouts are real: their actions replayed in the real env.

The split benchmark trains on imagined rollouts, and by default only on those whose imagined
outcome met the goal. Every episode of an imagined dataset records the real env's seed, its
goal and the actions that carried it, so here each one is replayed in ``VLGOR-CLEVR-v0`` from
the same start: a rollout is *real* if the goal holds in the real env within those actions.
It reads the split benchmark's datasets (``vlgor bench splits`` makes them) and reports, per
dataset, goal kind and rollout length, how many imagined successes (and failures) are real,
and how often the model's own actions in them are the ones the scripted expert takes at the
same real state: the labels a learner trained on the imagined data imitates.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import minari
import numpy as np
import tyro
from minari.dataset.episode_data import EpisodeData
from tqdm import tqdm

from agents.split_benchmark import EVAL_SPLITS, REGIMES, imagined_splits_id, preset_for
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs import registry
from vlgor_envs.data.collect import list_datasets, make_expert
from vlgor_envs.imagination.env import real_env_seed
from vlgor_envs.imagination.model import DEFAULT_TEMPERATURE
from vlgor_envs.language.clevr import goal_kind
from vlgor_envs.language.goal import Goal

NAME = "imagined_replay"
#: Rollout lengths (imagined steps, inclusive) that the figures are also broken down by: an
#: open-loop rollout drifts from the real one with every step.
STEP_BUCKETS = ((1, 3), (4, 6), (7, 50))


@dataclass
class Args:
    preset: Literal["tiny", "demo", "cpu", "paper"] = "cpu"
    """The split benchmark preset whose CLEVR datasets are replayed."""
    temperature: float = DEFAULT_TEMPERATURE
    with_failures: bool = True
    """Also replay the datasets that keep the failed rollouts (``--drop-failures False``), where
    they exist, to see how many imagined failures are real successes."""
    datasets: tuple[str, ...] = ()
    """Replay these imagined CLEVR datasets instead of the split benchmark's."""
    result: str = NAME
    """Name of the JSON written under `benchmarks/results/` (another for a pilot's datasets)."""


@dataclass(frozen=True)
class Replayed:
    """One imagined episode and what its actions did in the real env."""

    kind: str
    steps: int
    imagined_success: bool
    real_success: bool
    #: Per action replayed (up to the real outcome): the expert's own action at that state.
    expert_agrees: tuple[bool, ...] = ()


def reset_as_imagined(
    real: gym.Env[Any, Any], seed: int, goal: Goal
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reset ``real`` where the imagined episode of reset seed ``seed`` and ``goal`` started."""
    return real.reset(seed=real_env_seed(seed), options={"goal": goal})


def replay_actions(
    real: gym.Env[Any, Any], seed: int, goal: Goal, actions: Sequence[Any]
) -> tuple[np.ndarray, bool, list[bool]]:
    """The real start frame of an imagined episode reset with ``seed`` and ``goal``, whether
    ``actions`` reach the goal from it in ``real``, and, for each action taken, whether the
    scripted expert would have taken it at that real state (what a learner imitates)."""
    observation, info = reset_as_imagined(real, seed, goal)
    expert = make_expert("clevr")
    agrees: list[bool] = []
    success = False
    for action in actions:
        agrees.append(int(expert.act(info)) == int(action))
        _, _, terminated, truncated, info = real.step(action)
        success = bool(info["is_success"])
        if terminated or truncated:
            break
    return observation["image"], success, agrees


def imagined_episodes(
    dataset: minari.MinariDataset, progress: bool = True
) -> Iterator[tuple[EpisodeData, dict[str, Any], Goal]]:
    """Each episode of an imagined CLEVR dataset with its metadata and goal."""
    metadata = dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    episodes = zip(dataset.iterate_episodes(), metadata, strict=True)
    for episode, meta in tqdm(episodes, total=dataset.total_episodes, desc=dataset.id, disable=not progress):
        yield episode, meta, Goal.from_json(str(meta["goal"]))


def check_start(dataset_id: str, meta: dict[str, Any], episode: EpisodeData, real_start: np.ndarray) -> None:
    """Raise unless ``episode`` starts on ``real_start``, the real env's frame after
    :func:`reset_as_imagined` with the episode's seed and goal."""
    if not np.array_equal(real_start, episode.observations["image"][0]):
        raise ValueError(
            f"{dataset_id} episode {meta['id']} does not start where the real env does with "
            "its seed and goal: replay only datasets written by `vlgor imagine`"
        )


def replay_dataset(dataset_id: str, progress: bool = True) -> list[Replayed]:
    """Replay every episode of an imagined CLEVR dataset (``vlgor imagine``) in the real env."""
    real = gym.make(registry.entry("clevr").env_id)
    replayed = []
    try:
        for episode, meta, goal in imagined_episodes(minari.load_dataset(dataset_id), progress):
            start, real_success, agrees = replay_actions(real, int(meta["seed"]), goal, episode.actions)
            check_start(dataset_id, meta, episode, start)
            replayed.append(
                Replayed(
                    goal_kind(goal),
                    len(episode.actions),
                    bool(episode.terminations[-1]),
                    real_success,
                    tuple(agrees),
                )
            )
    finally:
        real.close()
    return replayed


def summarise(replayed: Sequence[Replayed]) -> dict[str, Any]:
    """Counts of imagined successes and failures, and how many of each are real successes."""

    def real_share(items: Sequence[Replayed]) -> float | None:
        return float(np.mean([r.real_success for r in items])) if items else None

    def agreement(agrees: Sequence[bool]) -> float | None:
        return float(np.mean(agrees)) if agrees else None

    def counts(items: Sequence[Replayed]) -> dict[str, Any]:
        claimed = [r for r in items if r.imagined_success]
        claimed_steps = sum(r.steps for r in claimed)
        return {
            "episodes": len(items),
            "imagined_successes": len(claimed),
            "real_of_imagined_successes": real_share(claimed),
            # A batch samples steps, not episodes, and the false successes run longer.
            "real_steps_of_imagined_successes": (
                sum(r.steps for r in claimed if r.real_success) / claimed_steps if claimed else None
            ),
            "real_of_imagined_failures": real_share([r for r in items if not r.imagined_success]),
            # The first action is the expert's by construction; the rest are the model's.
            "expert_agreement_after_first": agreement([a for r in claimed for a in r.expert_agrees[1:]]),
        }

    by_kind: dict[str, list[Replayed]] = defaultdict(list)
    for item in replayed:
        by_kind[item.kind].append(item)
    by_steps = {f"{lo}-{hi}": counts([r for r in replayed if lo <= r.steps <= hi]) for lo, hi in STEP_BUCKETS}
    return {
        **counts(replayed),
        "by_kind": {kind: counts(items) for kind, items in sorted(by_kind.items())},
        "by_steps": by_steps,
    }


def dataset_ids(args: Args) -> list[str]:
    """The split benchmark's imagined CLEVR datasets of ``args``, successes-only first (or
    ``args.datasets`` where given)."""
    if args.datasets:
        return list(args.datasets)
    rollouts = preset_for("clevr", args.preset).imagined_rollouts
    sources = sorted(
        {
            (s.split, s.edits)
            for sources in REGIMES.values()
            for s in sources
            if s.kind == "imagined" and rollouts.get(s.split, 0) > 0
        },
        key=lambda s: (EVAL_SPLITS.index(s[0]), s[1]),
    )
    kept = (True, False) if args.with_failures else (True,)
    return [
        imagined_splits_id("clevr", args.preset, split, edits, args.temperature, drop)
        for drop in kept
        for split, edits in sources
    ]


def measure(args: Args) -> dict[str, Any]:
    available = set(list_datasets())
    ids = dataset_ids(args)
    if ids[0] not in available:
        raise FileNotFoundError(
            f"{ids[0]} is not in MINARI_DATASETS_PATH; run `vlgor bench splits --env clevr --preset "
            f"{args.preset}` first, which imagines it"
        )
    figures = {}
    for dataset_id in ids:
        if dataset_id in available:
            figures[dataset_id] = summarise(replay_dataset(dataset_id))
            print(dataset_id, json.dumps(figures[dataset_id]))
    return figures


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def _breakdown(groups: dict[str, dict[str, Any]]) -> str:
    """``"motion 84% of 119, relation 39% of 123"``: the real share of each group's successes."""
    return ", ".join(
        f"{group} {_percent(f['real_of_imagined_successes'])} of {f['imagined_successes']}"
        for group, f in groups.items()
        if f["imagined_successes"]
    )


def readme_table(name: str = NAME) -> str:
    result = load_result(name)
    rows = []
    replayed = result["figures"]
    for dataset_id in [i for i in dataset_ids(Args(**result["config"])) if i in replayed]:
        figures = replayed[dataset_id]
        rows.append(
            [
                f"`{dataset_id.removeprefix('vlgor/clevr/')}`",
                str(figures["episodes"]),
                str(figures["imagined_successes"]),
                _percent(figures["real_of_imagined_successes"]),
                _percent(figures["real_steps_of_imagined_successes"]),
                _percent(figures["real_of_imagined_failures"]),
                _percent(figures.get("expert_agreement_after_first")),
                _breakdown(figures["by_kind"]),
                _breakdown(figures["by_steps"]),
            ]
        )
    header = [
        "dataset",
        "episodes",
        "imagined successes",
        "real, of those",
        "their steps in real ones",
        "real, of imagined failures",
        "expert's action, of the model's (successes)",
        "real of imagined successes, per goal kind",
        "per rollout length (steps)",
    ]
    return (
        markdown_table(header, rows)
        + "\n\nEach imagined episode's actions replayed in `VLGOR-CLEVR-v0` from its recorded seed and "
        + "goal; real: the goal held in the real env within those actions; expert's action: how often "
        + "an imagined success's actions after the first (the model's own) are the scripted expert's "
        + f"at the same real state. {provenance(result)}"
    )


def main(args: Args) -> None:
    write_result(args.result, args, measure(args))
    print(readme_table(args.result))


if __name__ == "__main__":
    main(tyro.cli(Args))
