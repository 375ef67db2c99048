"""``vlgor train``: offline RL on real (and imagined) datasets from the command line."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import torch
import tyro
from d3rlpy.models.encoders import EncoderFactory

from agents.encoder import ENCODERS
from agents.evaluate import DEFAULT_EVAL_SEED
from agents.registry import learner_defaults
from agents.train import LOG_FOLDER, train
from vlgor_envs.data.collect import ENVS, default_dataset_id

__all__ = ["TrainArgs", "parse_algo_kwargs", "train_command"]


@dataclasses.dataclass
class TrainArgs:
    """Train an offline-RL policy (d3rlpy) on real and imagined datasets; evaluate it on a split."""

    run_dir: Path
    """Output folder: config.json, d3rlpy logs, model_<step>.d3 checkpoints, model.d3, metrics."""
    env: Literal["clevr", "metaworld"] = "clevr"
    """Environment of the data; sets the default datasets and the evaluation env."""
    algo: str | None = None
    """d3rlpy algorithm by config name: DiscreteBC, DiscreteCQL, DQN, DoubleDQN, DiscreteSAC, ...
    for clevr; BC, TD3PlusBC, CQL, IQL, ... for metaworld. Default: DiscreteBC / BC."""
    real: tuple[str, ...] | None = None
    """Real Minari dataset ids; default `vlgor/<env>/real-train-v0`."""
    imagined: tuple[str, ...] = ()
    """Imagined Minari dataset ids, e.g. `vlgor/clevr/imagined-counterfactual-v0`."""
    ratio: tuple[float, float] = (1.0, 1.0)
    """Real : imagined share of every batch (with imagined data)."""
    steps: int = 10_000
    """Gradient steps."""
    seed: int = 0
    """Seed of network initialisation and batch sampling."""
    batch_size: int = 128
    """Transitions per update (paper: 128)."""
    learning_rate: float | None = None
    """Adam's initial learning rate, cosine-annealed to 1e-6 over the run; default the env's
    (1e-3 on CLEVR, the paper's 3e-4 on Meta-World)."""
    eval_split: Literal["train", "rephrasing", "counterfactual", "hard"] | None = None
    """Evaluate the policy in the real env on this split; default no evaluation."""
    eval_every: int | None = None
    """Steps between evaluations (must divide `steps`); default once, at the end."""
    eval_episodes: int = 20
    """Episodes per evaluation."""
    eval_seed: int = DEFAULT_EVAL_SEED
    """Evaluation episode i is reset with seed `eval_seed + i`."""
    save_every: int | None = None
    """Steps between model_<step>.d3 checkpoints; default none (only the final model.d3)."""
    algo_kwargs: tuple[str, ...] = ()
    """Further d3rlpy config fields as KEY=VALUE, VALUE read as JSON (e.g. `alpha=5.0 gamma=0.9`)."""
    encoder: Literal["default", "film", "paper"] = "default"
    """Policy network: the FiLM keypoint network, the paper's (App. A.1), or the env's default
    (FiLM on CLEVR, the paper's on Meta-World)."""
    random_shift: int | None = None
    """Largest shift, in pixels, of the training images (0: none; acting is never shifted);
    default the network's (film 0, paper 4)."""
    device: str = "cpu:0"
    """Torch device, e.g. `cuda:0`."""
    overwrite: bool = False
    """Replace an existing run in `run_dir`."""
    threads: int | None = None
    """torch intra-op threads (default: torch's choice)."""
    progress: bool = True
    """Show d3rlpy's progress bar."""


def parse_algo_kwargs(items: tuple[str, ...]) -> dict[str, Any]:
    """``("alpha=5.0", "q_func_factory=...")`` -> ``{"alpha": 5.0, ...}``; non-JSON values stay strings."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"algo_kwargs entries are KEY=VALUE, got {item!r}")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def network_encoder(args: TrainArgs) -> EncoderFactory | None:
    """The encoder factory ``args`` ask for; ``None`` leaves the env's default to ``train``."""
    if args.encoder == "default" and args.random_shift is None:
        return None
    factory = (
        learner_defaults(ENVS[args.env][0]).encoder if args.encoder == "default" else ENCODERS[args.encoder]
    )
    return factory() if args.random_shift is None else factory(random_shift=args.random_shift)


def train_command(args: tyro.conf.OmitArgPrefixes[TrainArgs]) -> None:
    """Train an offline-RL policy (d3rlpy) on real and imagined datasets; evaluate it on a split."""
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train(
        args.real or (default_dataset_id(args.env, "train"),),
        args.imagined,
        algo=args.algo,
        steps=args.steps,
        run_dir=args.run_dir,
        seed=args.seed,
        ratio=args.ratio,
        eval_split=args.eval_split,
        eval_every=args.eval_every,
        eval_episodes=args.eval_episodes,
        eval_seed=args.eval_seed,
        eval_env=ENVS[args.env][0],
        save_every=args.save_every,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        device=args.device,
        overwrite=args.overwrite,
        progress=args.progress,
        algo_kwargs=parse_algo_kwargs(args.algo_kwargs),
        network_encoder=network_encoder(args),
    )
    print(f"trained {result.config['algo']} for {args.steps} steps; model: {result.model}")
    print(f"config: {result.run_dir / 'config.json'}; d3rlpy logs: {result.run_dir / LOG_FOLDER}")
    if result.checkpoints:
        print(f"{len(result.checkpoints)} checkpoints: {', '.join(p.name for p in result.checkpoints)}")
    if result.evaluation is not None:
        print(
            f"success rate on {result.evaluation.split} ({result.evaluation.episodes} episodes): "
            f"{result.evaluation.success_rate:.2f}; curve: {result.run_dir / 'metrics.json'}"
        )
