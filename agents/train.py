"""Offline training of a d3rlpy learner on real (and imagined) Minari datasets, into a run folder.

A run folder holds, when :func:`train` returns:

- ``config.json``: the arguments, the data sources with their weights and per-batch counts,
  and the full d3rlpy algorithm config (written before training starts);
- ``d3rlpy/``: d3rlpy's own logs, rows of ``epoch,step,value``: ``params.json``, one CSV per
  loss, ``time_*.csv``, ``success.csv`` when evaluating, and (d3rlpy's file logger does this
  on every commit) gradient statistics ``<parameter>_grad.csv`` of every parameter;
- ``model_<step>.d3``: checkpoints every ``save_every`` steps;
- ``model.d3``: the final learner (``d3rlpy.load_learnable`` after ``import agents``);
- ``instruction_feature.json``: the env and the (instruction, goal) pairs the instruction
  feature was fitted on, unless a ``text_encoder`` was given (:func:`run_text_encoder`
  rebuilds the feature from it, to evaluate the checkpoints);
- ``metrics.json`` and ``metrics.csv``: the success-rate curve ``(step, success_rate)``, when
  an evaluation split was given.

Every ``.d3`` file is written to a temporary name and renamed into place, so a reader never
sees half a file.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import d3rlpy
import minari
from d3rlpy.algos import QLearningAlgoBase
from d3rlpy.base import LearnableConfig
from d3rlpy.constants import LoggingStrategy
from d3rlpy.dataset import ReplayBuffer
from d3rlpy.logging import FileAdapterFactory, LoggerAdapterFactory
from d3rlpy.models.encoders import EncoderFactory
from gymnasium import spaces

from agents.evaluate import DEFAULT_EVAL_SEED, EvaluationResult, SplitEvaluator, env_id_of
from agents.registry import ActionKind, learner_defaults, make_algorithm, make_config
from vlgor_envs.data.collect import datasets_root, list_datasets
from vlgor_envs.data.d3rlpy_bridge import batch_counts, instruction_examples, mix_datasets, to_d3rlpy
from vlgor_envs.language import Goal, instruction_encoder
from vlgor_envs.language.encoder import InstructionEncoder
from vlgor_envs.quiet import plain_logs_off_terminal

__all__ = ["DEFAULT_ALGORITHMS", "TrainResult", "build_dataset", "run_text_encoder", "train"]

#: Algorithm used when none is named: behaviour cloning, the paper's first baseline.
DEFAULT_ALGORITHMS: dict[ActionKind, str] = {"discrete": "DiscreteBC", "continuous": "BC"}
#: Sub-folder of the run folder that d3rlpy's file logger writes into.
LOG_FOLDER = "d3rlpy"
#: The run folder's record of what its instruction feature was fitted on.
FEATURE_FILE = "instruction_feature.json"


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a run produced: paths, the success curve, and the trained learner."""

    run_dir: Path
    model: Path
    """The final learner, ``run_dir / "model.d3"``."""
    checkpoints: tuple[Path, ...]
    """``model_<step>.d3`` files, in step order."""
    curve: tuple[tuple[int, float], ...]
    """``(gradient step, success rate)`` of every evaluation; empty without ``eval_split``."""
    evaluation: EvaluationResult | None
    """The last evaluation in full (per-episode outcomes), if any."""
    config: dict[str, Any]
    """What ``config.json`` holds."""
    algo: QLearningAlgoBase[Any, Any] = dataclasses.field(compare=False, repr=False)
    """The trained learner."""


def _load(dataset_id: str) -> minari.MinariDataset:
    try:
        return minari.load_dataset(dataset_id)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"no dataset {dataset_id!r} in {datasets_root()}; present: {list_datasets() or 'none'} "
            "(`vlgor datasets list`; make one with `vlgor collect`)"
        ) from exc


def _check_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Raise unless ``run_dir`` is absent, empty, or a vlgor run that may be overwritten."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"run_dir {run_dir} exists and is not a folder")
    if run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"run_dir {run_dir} exists and is not empty; pass overwrite=True (`--overwrite`) to "
                "replace the run, or choose another folder"
            )
        # Deleting a folder on request is fine only if it is one of ours (train deletes it later,
        # once the data has loaded, so that a failed start keeps the old run).
        if not (run_dir / "config.json").is_file():
            raise FileExistsError(
                f"run_dir {run_dir} is not empty and holds no config.json, so it is not a vlgor run; "
                "refusing to delete it, choose another folder"
            )


def _write_json(path: Path, payload: Any) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def _save_learner(algo: QLearningAlgoBase[Any, Any], path: Path) -> Path:
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        algo.save(str(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _group_weights(datasets: Sequence[minari.MinariDataset], share: float) -> list[float]:
    """``share`` split over a group in proportion to its datasets' steps (uniform per transition)."""
    total = sum(int(d.total_steps) for d in datasets)
    return [share * int(d.total_steps) / total for d in datasets]


def _weights(
    real: Sequence[minari.MinariDataset], imagined: Sequence[minari.MinariDataset], ratio: tuple[float, float]
) -> list[float]:
    if not imagined:
        return _group_weights(real, 1.0)
    return _group_weights(real, float(ratio[0])) + _group_weights(imagined, float(ratio[1]))


def build_dataset(
    real: Sequence[minari.MinariDataset | str],
    imagined: Sequence[minari.MinariDataset | str] = (),
    ratio: tuple[float, float] = (1.0, 1.0),
    text_encoder: InstructionEncoder | None = None,
) -> ReplayBuffer:
    """The d3rlpy dataset :func:`train` fits on.

    One real dataset alone is converted as is (:func:`to_d3rlpy`). Otherwise the datasets
    are mixed (:func:`mix_datasets`) so that every batch holds real and imagined transitions
    in the proportion ``ratio``; within the real (or imagined) group each dataset is weighted
    by its number of steps, so its transitions are drawn uniformly.
    """
    if not real:
        raise ValueError("at least one real dataset is needed")
    real_sets = [d if isinstance(d, minari.MinariDataset) else _load(d) for d in real]
    imagined_sets = [d if isinstance(d, minari.MinariDataset) else _load(d) for d in imagined]
    if not imagined_sets and len(real_sets) == 1:
        return to_d3rlpy(real_sets[0], text_encoder)
    weights = _weights(real_sets, imagined_sets, ratio)
    sources = [*real_sets, *imagined_sets]
    return mix_datasets(list(zip(sources, weights, strict=True)), text_encoder)


def _real_env(datasets: Sequence[minari.MinariDataset]) -> tuple[str | None, int]:
    """The env id and image size the real datasets were collected in (``None`` if unknown)."""
    specs = {(d.env_spec.id, int(d.env_spec.kwargs.get("image_size", 64))) for d in datasets if d.env_spec}
    if len(specs) > 1:
        raise ValueError(f"the real datasets come from different envs or image sizes: {sorted(specs)}")
    return next(iter(specs)) if specs else (None, 64)


def run_text_encoder(run_dir: str | os.PathLike[str]) -> InstructionEncoder:
    """The instruction feature a run of :func:`train` fitted on its datasets.

    Raises:
        FileNotFoundError: The run has no ``instruction_feature.json`` (trained with a
            ``text_encoder`` of the caller's, which evaluation must be given too).
    """
    path = Path(run_dir) / FEATURE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: pass the text_encoder the run was trained with")
    feature = json.loads(path.read_text())
    examples = tuple((str(text), Goal.from_json(goal)) for text, goal in feature["examples"])
    return instruction_encoder(feature["env"], examples)


def train(
    real: Sequence[str],
    imagined: Sequence[str] = (),
    *,
    run_dir: str | os.PathLike[str],
    algo: str | LearnableConfig | None = None,
    steps: int = 10_000,
    seed: int = 0,
    ratio: tuple[float, float] = (1.0, 1.0),
    eval_split: str | None = None,
    eval_every: int | None = None,
    eval_episodes: int = 20,
    eval_seed: int = DEFAULT_EVAL_SEED,
    eval_env: str | None = None,
    save_every: int | None = None,
    batch_size: int = 128,
    learning_rate: float | None = None,
    device: str = "cpu:0",
    overwrite: bool = False,
    progress: bool = True,
    log_every: int = 500,
    text_encoder: InstructionEncoder | None = None,
    algo_kwargs: Mapping[str, Any] | None = None,
    network_encoder: EncoderFactory | None = None,
    logger_adapter: LoggerAdapterFactory | None = None,
) -> TrainResult:
    """Train a d3rlpy learner offline on ``real`` (+ ``imagined``) data and save it in ``run_dir``.

    With imagined data, every batch holds real and imagined transitions in the fixed
    proportion ``ratio`` (the paper's 1:1 by default); within each group, transitions are
    drawn uniformly (datasets weighted by their size).

    Args:
        real: Minari ids of real datasets (``vlgor/clevr/real-train-v0``).
        imagined: Minari ids of imagined datasets (``vlgor/clevr/imagined-counterfactual-v0``).
        run_dir: Output folder (see the module docstring); must be absent or empty.
        algo: A name of :data:`agents.registry.ALGORITHMS` or a d3rlpy config; default
            :data:`DEFAULT_ALGORITHMS` of the data's action space.
        steps: Gradient steps.
        seed: Seeds Python, NumPy and torch (``d3rlpy.seed``): networks and batch sampling.
        ratio: ``(real, imagined)`` weights of a batch; ignored without imagined data.
        eval_split: Evaluate the greedy policy in the real env on this split
            (``rephrasing``, ``counterfactual``, ``hard``, ``train``); default no evaluation.
        eval_every: Steps between evaluations; must divide ``steps`` (d3rlpy evaluates at
            epoch ends). Default: once, at the end.
        eval_episodes: Episodes per evaluation.
        eval_seed: Episode ``i`` of every evaluation is reset with ``eval_seed + i``.
        eval_env: Gymnasium id (or ``clevr``/``metaworld``) to evaluate in; default the env
            the real datasets were collected in, at their image size.
        save_every: Steps between ``model_<step>.d3`` checkpoints; default none.
        batch_size: Transitions per update (paper: 128).
        learning_rate: Adam's initial rate; default the env's (:func:`agents.registry.learner_defaults`:
            a constant 1e-3 on CLEVR, elsewhere the paper's 3e-4 cosine-annealed to 1e-6).
        device: Torch device of the learner.
        overwrite: Replace an existing run in ``run_dir`` (one with a ``config.json``).
        progress: Show d3rlpy's progress bar.
        log_every: Steps between rows of d3rlpy's loss logs when not evaluating (when
            evaluating, a row per evaluation).
        text_encoder: Instruction embedder for the data and evaluation; default the env's
            feature fitted on the datasets' instructions
            (:func:`vlgor_envs.data.d3rlpy_bridge.dataset_instruction_encoder`), saved as
            ``instruction_feature.json``.
        algo_kwargs: Further d3rlpy config fields (``{"alpha": 5.0}``).
        network_encoder: The encoder of every network of a named algorithm; default the env's
            (:func:`agents.registry.learner_defaults`: the FiLM keypoint network on CLEVR, the
            paper's ``VisionLanguageEncoderFactory`` elsewhere).
        logger_adapter: d3rlpy logger; default files in ``run_dir/d3rlpy``.

    Raises:
        FileExistsError: ``run_dir`` is not empty (and not ``overwrite``).
        FileNotFoundError: A dataset id that is not present.
        ValueError: Bad counts, an algorithm of the other action space, datasets that cannot
            be mixed, or an evaluation env other than the real data's.
    """
    if not real:
        raise ValueError("train needs at least one real dataset")
    if isinstance(real, str) or isinstance(imagined, str):
        raise TypeError("real and imagined are sequences of dataset ids, not single strings")
    for name, value in (("steps", steps), ("eval_episodes", eval_episodes), ("log_every", log_every)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if save_every is not None and save_every < 1:
        raise ValueError(f"save_every must be >= 1, got {save_every}")
    if eval_every is not None:
        if eval_split is None:
            raise ValueError("eval_every needs eval_split (which split to evaluate on)")
        if eval_every < 1 or steps % eval_every:
            raise ValueError(
                f"eval_every must divide steps ({steps}): d3rlpy evaluates at the end of each epoch "
                f"of eval_every steps; got {eval_every}"
            )
    if imagined and not all(0.0 < float(r) < float("inf") for r in ratio):
        raise ValueError(f"ratio must be two positive finite weights (real, imagined), got {ratio}")
    run_path = Path(run_dir)
    _check_run_dir(run_path, overwrite)

    real_sets = [_load(i) for i in real]
    imagined_sets = [_load(i) for i in imagined]
    env_id, image_size = _real_env(real_sets)
    if eval_env is not None:
        wanted = env_id_of(eval_env)
        if env_id is not None and wanted != env_id:
            raise ValueError(f"the real datasets come from {env_id}; cannot evaluate them in {wanted}")
        env_id = wanted
    if eval_split is not None and env_id is None:
        raise ValueError("the real datasets record no env; pass eval_env to evaluate")
    action_space: ActionKind = (
        "discrete" if isinstance(real_sets[0].action_space, spaces.Discrete) else "continuous"
    )
    # Before converting the data, so that a bad name or field fails at once.
    chosen = DEFAULT_ALGORITHMS[action_space] if algo is None else algo
    defaults = learner_defaults(env_id)
    learning_rate = defaults.learning_rate if learning_rate is None else learning_rate
    algo_config = make_config(
        chosen,
        action_space,
        steps,
        batch_size,
        learning_rate,
        defaults.min_learning_rate(learning_rate),
        network_encoder=network_encoder or defaults.encoder(),
        **dict(algo_kwargs or {}),
    )

    examples = instruction_examples([*real_sets, *imagined_sets]) if text_encoder is None else None
    if examples is not None:
        text_encoder = instruction_encoder(env_id, examples)
    dataset = build_dataset(real_sets, imagined_sets, ratio, text_encoder)
    weights = _weights(real_sets, imagined_sets, ratio)

    sources_ids = [*real, *imagined]
    config: dict[str, Any] = {
        "real": list(real),
        "imagined": list(imagined),
        "algo": chosen if isinstance(chosen, str) else type(chosen).__name__,
        "action_space": action_space,
        "steps": steps,
        "seed": seed,
        "ratio": list(ratio) if imagined else None,
        "sources": [
            {"dataset_id": i, "weight": w, "transitions": int(d.total_steps), "per_batch": int(n)}
            for i, w, d, n in zip(
                sources_ids,
                weights,
                [*real_sets, *imagined_sets],
                batch_counts(algo_config.batch_size, weights),
                strict=True,
            )
        ],
        "batch_size": algo_config.batch_size,
        "learning_rate": learning_rate,
        "device": device,
        "eval": None
        if eval_split is None
        else {
            "env_id": env_id,
            "split": eval_split,
            "every": eval_every or steps,
            "episodes": eval_episodes,
            "seed": eval_seed,
            "image_size": image_size,
        },
        "save_every": save_every,
        "algo_kwargs": dict(algo_kwargs or {}),
        "d3rlpy_version": d3rlpy.__version__,
        "algorithm_config": {"type": algo_config.get_type(), "params": algo_config.serialize_to_dict()},
    }
    if run_path.exists() and overwrite:
        shutil.rmtree(run_path)
    run_path.mkdir(parents=True, exist_ok=True)
    _write_json(run_path / "config.json", config)
    if examples is not None:
        feature = {"env": env_id, "examples": [[text, goal.to_json()] for text, goal in examples]}
        _write_json(run_path / FEATURE_FILE, feature)

    plain_logs_off_terminal()
    d3rlpy.seed(seed)  # network initialisation (at fit) and batch sampling
    learner = make_algorithm(algo_config, action_space, steps, device=device)

    evaluator = (
        None
        if eval_split is None or env_id is None
        else SplitEvaluator(env_id, eval_split, eval_episodes, eval_seed, image_size, text_encoder)
    )
    epoch_steps = (eval_every or steps) if evaluator else steps
    checkpoints: list[Path] = []

    def save_checkpoint(algo: QLearningAlgoBase[Any, Any], epoch: int, step: int) -> None:
        if save_every is not None and step % save_every == 0:
            checkpoints.append(_save_learner(algo, run_path / f"model_{step}.d3"))

    learner.fit(
        dataset,
        n_steps=steps,
        n_steps_per_epoch=epoch_steps,
        experiment_name=LOG_FOLDER,
        with_timestamp=False,
        # Evaluations are committed with the epoch's losses; without them, rows every log_every steps.
        logging_strategy=LoggingStrategy.EPOCH if evaluator else LoggingStrategy.STEPS,
        logging_steps=min(log_every, steps),
        logger_adapter=logger_adapter or FileAdapterFactory(root_dir=str(run_path)),
        show_progress=progress,
        # Checkpoints are ours (by step, atomic); d3rlpy's own saving would never trigger.
        save_interval=steps // epoch_steps + 1,
        evaluators={"success": evaluator} if evaluator else None,
        callback=save_checkpoint,
    )
    model = _save_learner(learner, run_path / "model.d3")

    curve: tuple[tuple[int, float], ...] = ()
    if evaluator is not None:
        curve = tuple(evaluator.history)
        _write_json(
            run_path / "metrics.json",
            {
                **(config["eval"] or {}),
                "curve": [{"step": s, "success_rate": r} for s, r in curve],
                "final": evaluator.last.to_json() if evaluator.last else None,
            },
        )
        with (run_path / "metrics.csv").open("w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["step", "success_rate"])
            writer.writerows(curve)
    return TrainResult(
        run_dir=run_path,
        model=model,
        checkpoints=tuple(checkpoints),
        curve=curve,
        evaluation=evaluator.last if evaluator else None,
        config=config,
        algo=learner,
    )
