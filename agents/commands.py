"""``vlgor train``: offline RL on real (and imagined) datasets from the command line."""

from __future__ import annotations

import tyro

from agents.train import LOG_FOLDER, TrainConfig, train

__all__ = ["train_command"]


def train_command(config: tyro.conf.OmitArgPrefixes[TrainConfig]) -> None:
    """Train an offline-RL policy (d3rlpy) on real and imagined datasets; evaluate it on a split."""
    result = train(config)
    print(f"trained {result.config['algo']} for {config.steps} steps; model: {result.model}")
    print(f"config: {result.run_dir / 'config.json'}; d3rlpy logs: {result.run_dir / LOG_FOLDER}")
    if result.checkpoints:
        print(f"{len(result.checkpoints)} checkpoints: {', '.join(p.name for p in result.checkpoints)}")
    if result.evaluation is not None:
        print(
            f"success rate on {result.evaluation.split} ({result.evaluation.episodes} episodes): "
            f"{result.evaluation.success_rate:.2f}; curve: {result.run_dir / 'metrics.json'}"
        )
