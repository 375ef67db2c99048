"""Is the mixed-in data's cost a matter of updates? CLEVR BC per split after N and 2N updates.

Trains DiscreteBC (CLEVR's defaults) on the split benchmark's real train dataset, alone or
mixed (1:1 unless ``--ratio``) with other datasets (the Oracle's or +VLGOR's), for
``--steps`` updates, and evaluates the checkpoint at half the updates and the final one on
every split, on the same held-out episodes. The instruction feature is fitted on the run's
own datasets, as in the benchmark. Each run adds a row to ``steps_pilot.json`` (rows of other
settings are kept).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result

NAME = "steps_pilot"
SPLITS = ("train", "rephrasing", "counterfactual", "hard")
EVAL_SEED = 3_000_000


@dataclass
class Args:
    label: str
    """The row's name (e.g. ``oracle``)."""
    real: str = "vlgor/clevr/splits-cpu-real-train-v0"
    extra: tuple[str, ...] = ()
    """Datasets mixed in with the real one (``vlgor bench splits`` names them)."""
    ratio: tuple[float, float] = (1.0, 1.0)
    """Real : extra share of every batch."""
    steps: int = 6000
    seed: int = 0
    eval_episodes: int = 100
    from_run: Path | None = None
    """Evaluate this finished run of ``vlgor train`` or ``vlgor bench splits`` (its checkpoints
    at half of ``steps`` and at ``steps``) instead of training one; ``real`` and ``extra`` are
    then only the row's record."""


def evaluate_checkpoints(args: Args, run_dir: Path, checkpoints: Sequence[Path]) -> dict[str, Any]:
    """``updates -> split -> success rate`` of each checkpoint, on the same held-out episodes."""
    import d3rlpy

    from agents import d3rlpy_policy, evaluate, run_text_encoder

    text_encoder = run_text_encoder(run_dir)
    rows: dict[str, Any] = {}
    for path in checkpoints:
        policy = d3rlpy_policy(d3rlpy.load_learnable(str(path)), text_encoder)
        outcomes = {
            split: evaluate(policy, "clevr", split, args.eval_episodes, seed=EVAL_SEED, num_envs=8)
            for split in SPLITS
        }
        rows[path.stem.removeprefix("model_")] = {s: o.success_rate for s, o in outcomes.items()}
    return rows


def run(args: Args) -> dict[str, Any]:
    """Train (or take ``from_run``), then the success rate per split of the half-way and the
    final checkpoint."""
    from agents import TrainConfig, train

    if args.from_run is not None:
        wanted = [args.from_run / f"model_{step}.d3" for step in (args.steps // 2, args.steps)]
        missing = [str(path) for path in wanted if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"--from-run has no checkpoint {', '.join(missing)}")
        return evaluate_checkpoints(args, args.from_run, wanted)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as run_dir:
        config = TrainConfig(
            run_dir=Path(run_dir),
            real=(args.real,),
            imagined=tuple(args.extra),
            ratio=args.ratio,
            steps=args.steps,
            seed=args.seed,
            save_every=args.steps // 2,
            progress=False,
        )
        result = train(config)
        seconds = time.perf_counter() - started
        return {"train_seconds": seconds, **evaluate_checkpoints(args, Path(run_dir), result.checkpoints)}


def main(args: Args) -> None:
    row = {**asdict(args), **run(args)}
    try:  # read after the run, so that pilots run side by side keep each other's rows
        figures: dict[str, Any] = load_result(NAME)["figures"]
    except FileNotFoundError:
        figures = {"rows": {}}
    key = f"{args.label}, seed {args.seed}"
    figures["rows"][key] = row
    print(key, figures["rows"][key])
    write_result(NAME, args, figures)
    print(readme_table())


def readme_table() -> str:
    result = load_result(NAME)
    rows = []
    for key, row in result["figures"]["rows"].items():
        for step in sorted((k for k in row if k.isdigit()), key=int):
            rows.append([key, step, *(f"{100 * row[step][s]:.0f}" for s in SPLITS)])
    return (
        markdown_table(["data", "updates", *(f"{s} (%)" for s in SPLITS)], rows)
        + f"\n\nDiscreteBC, CLEVR defaults, {result['config']['eval_episodes']} held-out episodes "
        + "per split and checkpoint. "
        + provenance(result)
    )


if __name__ == "__main__":
    main(tyro.cli(Args))
