"""How the split benchmark judges a policy: evaluation blocks, floor and ceiling, intervals.

Every evaluated checkpoint ``k`` of a run faces ``episodes`` start states of its own on each
split (seeds ``EVAL_SEED + 100,000 * split index + k * episodes + i``), stepped as a vector of
envs with one batched policy call per step. A run's figure on a split comes from its last five
checkpoints, so from five times as many distinct episodes. The *Random* (uniform actions) and
*Expert* (scripted) references are evaluated on the same blocks as the last five checkpoints.

A table cell pools the blocks of every seed: its interval is the interquartile mean (IQM) of the
blocks' success rates with a 95% percentile-bootstrap interval from ``rliable``, which resamples
the seeds × blocks evaluations (each of ``episodes`` distinct episodes); per goal kind, the
cell holds the success rate over all of those episodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from rliable import library as rly
from rliable import metrics

from agents import evaluate
from agents.evaluate import EvaluationResult
from vlgor_envs import registry
from vlgor_envs.data.collect import make_expert, random_action

#: The table's columns: held-out start states of the train goals, then the unseen splits. Their
#: order fixes the evaluation seeds.
TABLE_SPLITS = ("train", "rephrasing", "counterfactual", "hard")
#: Seeds of evaluation episodes: far from every dataset's seeds.
EVAL_SEED = 2_000_000
#: Seed offset between splits (room for 1,000 checkpoints of 100 episodes).
SPLIT_SEED_STRIDE = 100_000
#: Checkpoints (the last ones) whose evaluations make a run's figure, as in the paper.
LAST_CHECKPOINTS = 5
#: Bootstrap resamples of each interval.
BOOTSTRAP_REPS = 2000
#: Envs a learner is evaluated on side by side (``benchmarks.evaluation_throughput``: on 2
#: cores 8 envs beat 20, whose render contexts take turns).
EVAL_ENVS = 8


def block_seed(split_index: int, checkpoint: int, episodes: int) -> int:
    """Base seed of checkpoint ``checkpoint``'s ``episodes`` episodes on the ``split_index``-th split."""
    return EVAL_SEED + SPLIT_SEED_STRIDE * split_index + checkpoint * episodes


def block(step: int, result: EvaluationResult) -> dict[str, Any]:
    """One evaluation as the benchmark records it: counts overall and per goal kind."""
    return {
        "step": step,
        "successes": int(sum(result.successes)),
        "episodes": result.episodes,
        "by_kind": {kind: list(counts) for kind, counts in result.by_kind().items()},
    }


def evaluate_blocks(
    policy: Any,
    env: str,
    splits: Sequence[str],
    checkpoint: int,
    step: int,
    episodes: int,
    pass_info: bool = False,
) -> dict[str, dict[str, Any]]:
    """``split -> block`` of ``policy`` at checkpoint index ``checkpoint`` (see the module docstring)."""
    blocks = {}
    for split in splits:
        result = evaluate(
            policy,
            registry.entry(env).env_id,
            split,
            episodes,
            seed=block_seed(TABLE_SPLITS.index(split), checkpoint, episodes),
            pass_info=pass_info,
            # Experts keep per-episode memory, so one env at a time; learners act in batches.
            num_envs=1 if pass_info else EVAL_ENVS,
        )
        blocks[split] = block(step, result)
    return blocks


class RandomPolicy:
    """Uniform random actions of ``env``'s action space, drawn from ``seed``."""

    def __init__(self, env: str, seed: int) -> None:
        made = gym.make(registry.entry(env).env_id)
        self.space = made.action_space
        made.close()
        self.rng = np.random.default_rng(seed)

    def __call__(self, observation: dict[str, Any]) -> Any:
        return random_action(self.space, self.rng)


def reference_policy(env: str, reference: str, seed: int) -> tuple[Callable[..., Any], bool]:
    """The ``"random"`` or ``"expert"`` policy of ``env``, and whether it reads ``info``."""
    if reference == "random":
        return RandomPolicy(env, seed), False
    expert = make_expert(env)

    def act(_observation: dict[str, Any], info: dict[str, Any]) -> Any:
        return expert.act(info)

    return act, True


def interval(rates: Sequence[float]) -> tuple[float, float, float]:
    """IQM of ``rates`` and its 95% stratified-bootstrap interval (rliable)."""
    scores = {"x": np.asarray(rates, dtype=np.float64)[:, None]}
    # rliable 1.2 draws its resamples from NumPy's global generator (its random_state reaches
    # arch only), so that generator is seeded here and given back as it was.
    state = np.random.get_state()
    np.random.seed(0)
    try:
        points, intervals = rly.get_interval_estimates(
            scores, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=BOOTSTRAP_REPS
        )
    finally:
        np.random.set_state(state)
    return float(points["x"][0]), float(intervals["x"][0, 0]), float(intervals["x"][1, 0])


def cell(runs: Sequence[dict[str, Any]], split: str) -> dict[str, Any]:
    """One table cell from runs (or reference evaluations) on ``split``: see the module docstring."""
    blocks = [b for run in runs for b in run["blocks"][split][-LAST_CHECKPOINTS:]]
    rates = [b["successes"] / b["episodes"] for b in blocks]
    per_run = [float(np.mean(run_rates(run, split))) for run in runs]
    iqm, low, high = interval(rates)
    kinds: dict[str, list[int]] = {}
    for b in blocks:
        for kind, (successes, episodes) in b["by_kind"].items():
            total = kinds.setdefault(kind, [0, 0])
            total[0] += successes
            total[1] += episodes
    return {
        "mean": float(np.mean(per_run)),
        "std": float(np.std(per_run)),
        "iqm": iqm,
        "ci": [low, high],
        "runs": len(runs),
        "episodes_per_run": sum(b["episodes"] for b in runs[0]["blocks"][split][-LAST_CHECKPOINTS:]),
        "by_kind": {kind: successes / episodes for kind, (successes, episodes) in sorted(kinds.items())},
        "by_kind_episodes": {kind: episodes for kind, (_, episodes) in sorted(kinds.items())},
    }


def run_rates(run: dict[str, Any], split: str) -> list[float]:
    """Success rates of a run's last five evaluation blocks on ``split``."""
    return [b["successes"] / b["episodes"] for b in run["blocks"][split][-LAST_CHECKPOINTS:]]


def separated(better: dict[str, Any], worse: dict[str, Any]) -> bool:
    """Whether ``better``'s interval lies wholly above ``worse``'s (a gain the table may claim)."""
    return bool(better["ci"][0] > worse["ci"][1])
