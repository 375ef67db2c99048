"""Does a pixel learner learn its own tasks? DiscreteBC on CLEVR train goals, per encoder.

Collects (once, under ``--root``) the real train dataset with the default scripted expert,
trains DiscreteBC with the chosen policy encoder and instruction feature, and evaluates the
final learner on held-out start states of the train goals and on the rephrasing split, beside
a uniform random policy. Each run adds a row to ``learner_pilot.json`` (rows of other
settings are kept), so pilots accumulate into one table.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result

NAME = "learner_pilot"
SPLITS = ("train", "rephrasing")


@dataclass
class Args:
    encoder: Literal["paper", "film"] = "film"
    """Policy encoder: the paper's network or the FiLM network with keypoints."""
    text: Literal["sentence", "slots"] = "slots"
    """Instruction feature: the MiniLM sentence embedding or the colour-slot token states."""
    steps: int = 3000
    batch_size: int = 128
    learning_rate: float = 1e-3
    schedule: Literal["cosine", "constant"] = "cosine"
    """Adam's rate: cosine-annealed to 1e-6 (the benchmark's) or constant."""
    episodes: int = 6400
    """Real train episodes (the paper's count)."""
    eval_episodes: int = 100
    seed: int = 0
    root: str = ""
    """Minari root for the pilot's dataset; default a folder under the system's temp dir."""


def _policy_parts(args: Args) -> tuple[Any, Any]:
    from agents.encoder import FilmEncoderFactory, VisionLanguageEncoderFactory
    from vlgor_envs.language.clevr import COLOURS
    from vlgor_envs.language.encoder import KeywordSlotEncoder, default_text_encoder

    network = FilmEncoderFactory() if args.encoder == "film" else VisionLanguageEncoderFactory()
    text = KeywordSlotEncoder(COLOURS) if args.text == "slots" else default_text_encoder()
    return network, text


def run(args: Args) -> dict[str, Any]:
    from d3rlpy.optimizers import AdamFactory

    from agents.evaluate import d3rlpy_policy, evaluate
    from agents.train import train
    from vlgor_envs.data.collect import collect, list_datasets

    dataset_id = f"vlgor/clevr/pilot-train-{args.episodes}-v0"
    if dataset_id not in list_datasets():
        collect("clevr", "train", args.episodes, seed=0, dataset_id=dataset_id)
    network, text = _policy_parts(args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train(
            [dataset_id],
            run_dir=run_dir,
            steps=args.steps,
            seed=args.seed,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            network_encoder=network,
            text_encoder=text,
            progress=False,
            algo_kwargs={"optim_factory": AdamFactory()} if args.schedule == "constant" else None,
        )
    seconds = time.perf_counter() - started
    policy = d3rlpy_policy(result.algo, text)
    row: dict[str, Any] = {"train_seconds": seconds}
    for split in SPLITS:
        outcome = evaluate(policy, "VLGOR-CLEVR-v0", split, args.eval_episodes, seed=3_000_000, num_envs=8)
        row[split] = outcome.success_rate
    return row


def random_row(episodes: int) -> dict[str, float]:
    from agents.evaluate import evaluate

    rng = np.random.default_rng(0)
    return {
        split: evaluate(
            lambda _: int(rng.integers(40)), "VLGOR-CLEVR-v0", split, episodes, seed=3_000_000
        ).success_rate
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
    if "random" not in figures:
        figures["random"] = random_row(args.eval_episodes)
    key = (
        f"{args.encoder}+{args.text}, {args.episodes} episodes, "
        f"{args.steps} steps at lr {args.learning_rate:g} ({args.schedule}), seed {args.seed}"
    )
    figures["rows"][key] = {**asdict(args), **run(args)}
    print(key, figures["rows"][key])
    write_result(NAME, args, figures)
    print(readme_table())


def readme_table() -> str:
    result = load_result(NAME)
    random = result["figures"]["random"]
    rows = [["Random", *(f"{100 * random[s]:.0f}" for s in SPLITS), ""]]
    for key, row in result["figures"]["rows"].items():
        rows.append([key, *(f"{100 * row[s]:.0f}" for s in SPLITS), f"{row['train_seconds']:.0f}"])
    return (
        markdown_table(["DiscreteBC", "train (%)", "rephrasing (%)", "train time (s)"], rows)
        + f"\n\nFinal learner, {result['config']['eval_episodes']} held-out episodes per split. "
        + provenance(result)
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
