"""Does a pixel learner learn its own tasks? BC on an env's train goals, per network and rate.

Collects (once, under ``--root``) the env's real train dataset with its scripted expert,
trains the env's BC (DiscreteBC on CLEVR, BC on Meta-World) with the chosen policy network,
instruction feature and Adam rate, and evaluates the final learner on held-out start states
of the train goals and on the rephrasing split, beside a uniform random policy. Each run
adds a row to ``learner_pilot.json`` (rows of other settings are kept), so pilots accumulate
into one table.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.registry import EnvName

NAME = "learner_pilot"
SPLITS = ("train", "rephrasing")
EVAL_SEED = 3_000_000


@dataclass
class Args:
    env: EnvName = "clevr"
    encoder: Literal["paper", "film"] = "film"
    """Policy encoder: the paper's network or the FiLM network with keypoints."""
    text: Literal["default", "sentence", "slots"] = "default"
    """Instruction feature: the env's own (``instruction_encoder``: parsed roles on CLEVR), the
    MiniLM sentence embedding, or the colour-slot token states."""
    steps: int = 3000
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: Literal["cosine", "constant"] = "cosine"
    """Adam's rate: cosine-annealed to 1e-6 (the benchmark's) or constant."""
    episodes: int = 6400
    """Real train episodes (the paper's count)."""
    dataset_id: str = ""
    """An existing real train dataset to use instead (default: collect
    ``vlgor/<env>/pilot-train-<episodes>-v0``)."""
    eval_episodes: int = 100
    seed: int = 0
    root: str = ""
    """Minari root for the pilot's dataset; default a folder under the system's temp dir."""


def _policy_parts(args: Args) -> tuple[Any, Any]:
    from agents.encoder import ENCODERS
    from vlgor_envs.language import (
        InstructionEncoder,
        KeywordSlotEncoder,
        default_text_encoder,
        instruction_encoder,
    )
    from vlgor_envs.language.clevr import COLOURS

    text: InstructionEncoder = instruction_encoder(args.env)
    if args.text == "sentence":
        text = default_text_encoder()
    elif args.text == "slots":
        text = KeywordSlotEncoder(COLOURS)
    return ENCODERS[args.encoder](), text


def run(args: Args) -> dict[str, Any]:
    from d3rlpy.optimizers import AdamFactory

    from agents.evaluate import d3rlpy_policy, env_id_of, evaluate
    from agents.registry import ActionKind, learner_defaults, make_config
    from agents.train import DEFAULT_ALGORITHMS, TrainConfig, train
    from vlgor_envs.data.collect import CollectConfig, collect, list_datasets

    dataset_id = args.dataset_id or f"vlgor/{args.env}/pilot-train-{args.episodes}-v0"
    if dataset_id not in list_datasets():
        collect(CollectConfig(args.env, "train", args.episodes, seed=0, dataset_id=dataset_id))
    network, text = _policy_parts(args)
    started = time.perf_counter()
    kind: ActionKind = "discrete" if args.env == "clevr" else "continuous"
    # The env's BC as `train` would configure it, with this pilot's network and schedule.
    own = make_config(
        DEFAULT_ALGORITHMS[kind],
        kind,
        args.steps,
        args.batch_size,
        args.learning_rate,
        learner_defaults(env_id_of(args.env)).min_learning_rate(args.learning_rate),
        network_encoder=network,
        **({"optim_factory": AdamFactory()} if args.schedule == "constant" else {}),
    )
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(
            run_dir=Path(run_dir), real=(dataset_id,), steps=args.steps, seed=args.seed, progress=False
        )
        result = train(config, algo_config=own, text_encoder=text)
    seconds = time.perf_counter() - started
    policy = d3rlpy_policy(result.algo, text)
    row: dict[str, Any] = {"train_seconds": seconds}
    for split in SPLITS:
        outcome = evaluate(policy, args.env, split, args.eval_episodes, seed=EVAL_SEED, num_envs=8)
        row[split] = outcome.success_rate
    return row


def random_row(env: str, episodes: int) -> dict[str, float]:
    import gymnasium as gym

    import vlgor_envs  # noqa: F401  (registers the envs)
    from agents.evaluate import env_id_of, evaluate

    space = gym.make(env_id_of(env)).action_space
    space.seed(0)
    return {
        split: evaluate(lambda _: space.sample(), env, split, episodes, seed=EVAL_SEED).success_rate
        for split in SPLITS
    }


def main(args: Args) -> None:
    os.environ.setdefault(
        "MINARI_DATASETS_PATH", args.root or str(Path(tempfile.gettempdir()) / "vlgor-pilot")
    )
    try:
        figures: dict[str, Any] = load_result(NAME)["figures"]
    except FileNotFoundError:
        figures = {"rows": {}}
    random_key = "random" if args.env == "clevr" else f"random {args.env}"
    if random_key not in figures:
        figures[random_key] = random_row(args.env, args.eval_episodes)
    key = (
        ("" if args.env == "clevr" else f"{args.env}: ")
        + f"{args.encoder}+{args.text}, {args.episodes} episodes, "
        f"{args.steps} steps at lr {args.learning_rate:g} ({args.schedule}), seed {args.seed}"
    )
    figures["rows"][key] = {**asdict(args), **run(args)}
    print(key, figures["rows"][key])
    write_result(NAME, args, figures)
    print(readme_table())


def readme_table() -> str:
    result = load_result(NAME)
    rows = [
        [name.capitalize(), *(f"{100 * figures[s]:.0f}" for s in SPLITS), ""]
        for name, figures in result["figures"].items()
        if name.startswith("random")
    ]
    for key, row in result["figures"]["rows"].items():
        rows.append([key, *(f"{100 * row[s]:.0f}" for s in SPLITS), f"{row['train_seconds']:.0f}"])
    return (
        markdown_table(["BC learner", "train (%)", "rephrasing (%)", "train time (s)"], rows)
        + f"\n\nFinal learner, {result['config']['eval_episodes']} held-out episodes per split. "
        + provenance(result)
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
