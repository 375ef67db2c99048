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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import d3rlpy
import minari
import torch
from d3rlpy.algos import QLearningAlgoBase
from d3rlpy.base import LearnableConfig
from d3rlpy.constants import LoggingStrategy
from d3rlpy.dataset import ReplayBuffer
from d3rlpy.logging import FileAdapterFactory, LoggerAdapterFactory
from d3rlpy.models.encoders import EncoderFactory
from gymnasium import spaces

from agents.encoder import ENCODERS
from agents.evaluate import DEFAULT_EVAL_SEED, EvaluationResult, SplitEvaluator, env_id_of
from agents.registry import ActionKind, learner_defaults, make_algorithm, make_config
from vlgor_envs.data.collect import datasets_root, default_dataset_id, list_datasets
from vlgor_envs.data.d3rlpy_bridge import batch_counts, instruction_examples, mix_datasets, to_d3rlpy
from vlgor_envs.language import Goal, instruction_encoder
from vlgor_envs.language.encoder import InstructionEncoder
from vlgor_envs.quiet import plain_logs_off_terminal
from vlgor_envs.registry import EnvName

__all__ = [
    "DEFAULT_ALGORITHMS",
    "TrainConfig",
    "TrainResult",
    "build_dataset",
    "parse_algo_kwargs",
    "run_text_encoder",
    "train",
]

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


@dataclasses.dataclass
class TrainConfig:
    """Train an offline-RL policy (d3rlpy) on real and imagined datasets; evaluate it on a split.

    ``vlgor train`` parses this and :func:`train` takes it.
    """

    run_dir: Path
    """Output folder: config.json, d3rlpy logs, model_<step>.d3 checkpoints, model.d3, metrics."""
    env: EnvName | None = None
    """Environment to evaluate in and of the default data; default the real datasets' (clevr
    when `real` is empty)."""
    algo: str | None = None
    """d3rlpy algorithm by config name: DiscreteBC, DiscreteCQL, DQN, DoubleDQN, DiscreteSAC, ...
    for clevr; BC, TD3PlusBC, CQL, IQL, ... for metaworld. Default: DiscreteBC / BC."""
    real: tuple[str, ...] = ()
    """Real Minari dataset ids; default `vlgor/<env>/real-train-v0`."""
    imagined: tuple[str, ...] = ()
    """Imagined Minari dataset ids, e.g. `vlgor/clevr/imagined-counterfactual-v0`."""
    ratio: tuple[float, float] = (1.0, 1.0)
    """Real : imagined share of every batch (with imagined data); within each group, transitions
    are drawn uniformly (datasets weighted by their size)."""
    steps: int = 10_000
    """Gradient steps."""
    seed: int = 0
    """Seed of network initialisation and batch sampling (`d3rlpy.seed`)."""
    batch_size: int = 128
    """Transitions per update (paper: 128)."""
    learning_rate: float | None = None
    """Adam's initial learning rate; default the env's (a constant 1e-3 on CLEVR, the paper's
    3e-4 cosine-annealed to 1e-6 on Meta-World)."""
    eval_split: Literal["train", "rephrasing", "counterfactual", "hard"] | None = None
    """Evaluate the greedy policy in the real env on this split; default no evaluation."""
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
    """Replace an existing run in `run_dir` (one with a config.json)."""
    threads: int | None = None
    """torch intra-op threads (default: torch's choice)."""
    progress: bool = True
    """Show d3rlpy's progress bar."""
    log_every: int = 500
    """Steps between rows of d3rlpy's loss logs when not evaluating (else a row per evaluation)."""

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)  # a str from a library caller

    def real_ids(self) -> tuple[str, ...]:
        return self.real or (default_dataset_id(self.env or "clevr", "train"),)


def parse_algo_kwargs(items: Sequence[str]) -> dict[str, Any]:
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


def _check(config: TrainConfig) -> None:
    """Raise ``ValueError`` (or ``FileExistsError`` for the run folder) before any work."""
    if isinstance(config.real, str) or isinstance(config.imagined, str):
        raise TypeError("real and imagined are tuples of dataset ids, not single strings")
    for name in ("steps", "eval_episodes", "log_every"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.save_every is not None and config.save_every < 1:
        raise ValueError(f"save_every must be >= 1, got {config.save_every}")
    if config.eval_every is not None:
        if config.eval_split is None:
            raise ValueError("eval_every needs eval_split (which split to evaluate on)")
        if config.eval_every < 1 or config.steps % config.eval_every:
            raise ValueError(
                f"eval_every must divide steps ({config.steps}): d3rlpy evaluates at the end of each "
                f"epoch of eval_every steps; got {config.eval_every}"
            )
    if config.imagined and not all(0.0 < float(r) < float("inf") for r in config.ratio):
        raise ValueError(f"ratio must be two positive finite weights (real, imagined), got {config.ratio}")
    _check_run_dir(Path(config.run_dir), config.overwrite)


@dataclasses.dataclass
class _Data:
    """The loaded datasets and what they say about the env."""

    real: list[minari.MinariDataset]
    imagined: list[minari.MinariDataset]
    env_id: str | None
    image_size: int
    action_space: ActionKind


def _load_data(config: TrainConfig) -> _Data:
    real = [_load(i) for i in config.real_ids()]
    imagined = [_load(i) for i in config.imagined]
    env_id, image_size = _real_env(real)
    if config.env is not None:
        wanted = env_id_of(config.env)
        if env_id is not None and wanted != env_id:
            raise ValueError(f"the real datasets come from {env_id}; cannot evaluate them in {wanted}")
        env_id = wanted
    if config.eval_split is not None and env_id is None:
        raise ValueError("the real datasets record no env; pass env to evaluate")
    kind: ActionKind = "discrete" if isinstance(real[0].action_space, spaces.Discrete) else "continuous"
    return _Data(real, imagined, env_id, image_size, kind)


def _network_encoder(config: TrainConfig, env_id: str | None) -> EncoderFactory:
    """The encoder factory ``config`` asks for (``encoder``, ``random_shift``)."""
    factory = learner_defaults(env_id).encoder if config.encoder == "default" else ENCODERS[config.encoder]
    return factory() if config.random_shift is None else factory(random_shift=config.random_shift)


def _algorithm(
    config: TrainConfig, data: _Data, own: LearnableConfig | None, network_encoder: EncoderFactory | None
) -> tuple[str | LearnableConfig, LearnableConfig, float]:
    """The algorithm asked for (``own`` config first), its full d3rlpy config, and the initial
    learning rate."""
    chosen = own or config.algo or DEFAULT_ALGORITHMS[data.action_space]
    defaults = learner_defaults(data.env_id)
    learning_rate = defaults.learning_rate if config.learning_rate is None else config.learning_rate
    algo_config = make_config(
        chosen,
        data.action_space,
        config.steps,
        config.batch_size,
        learning_rate,
        defaults.min_learning_rate(learning_rate),
        network_encoder=network_encoder or _network_encoder(config, data.env_id),
        **parse_algo_kwargs(config.algo_kwargs),
    )
    return chosen, algo_config, learning_rate


def _run_record(
    config: TrainConfig, data: _Data, chosen: str | LearnableConfig, algo_config: LearnableConfig, rate: float
) -> dict[str, Any]:
    """What ``config.json`` holds (see the module docstring)."""
    weights = _weights(data.real, data.imagined, config.ratio)
    sources = zip(
        [*config.real_ids(), *config.imagined],
        weights,
        [*data.real, *data.imagined],
        batch_counts(algo_config.batch_size, weights),
        strict=True,
    )
    evaluation = {
        "env_id": data.env_id,
        "split": config.eval_split,
        "every": config.eval_every or config.steps,
        "episodes": config.eval_episodes,
        "seed": config.eval_seed,
        "image_size": data.image_size,
    }
    return {
        "real": list(config.real_ids()),
        "imagined": list(config.imagined),
        "algo": chosen if isinstance(chosen, str) else type(chosen).__name__,
        "action_space": data.action_space,
        "steps": config.steps,
        "seed": config.seed,
        "ratio": list(config.ratio) if config.imagined else None,
        "sources": [
            {"dataset_id": i, "weight": w, "transitions": int(d.total_steps), "per_batch": int(n)}
            for i, w, d, n in sources
        ],
        "batch_size": algo_config.batch_size,
        "learning_rate": rate,
        "device": config.device,
        "eval": None if config.eval_split is None else evaluation,
        "save_every": config.save_every,
        "algo_kwargs": parse_algo_kwargs(config.algo_kwargs),
        "d3rlpy_version": d3rlpy.__version__,
        "algorithm_config": {"type": algo_config.get_type(), "params": algo_config.serialize_to_dict()},
    }


def train(
    config: TrainConfig,
    *,
    algo_config: LearnableConfig | None = None,
    network_encoder: EncoderFactory | None = None,
    text_encoder: InstructionEncoder | None = None,
    logger_adapter: LoggerAdapterFactory | None = None,
) -> TrainResult:
    """Train a d3rlpy learner offline on ``config``'s real (+ imagined) data, into its run folder.

    Args:
        config: What to train on and how (the fields of ``vlgor train``).
        algo_config: A d3rlpy config of your own, used as given instead of ``config.algo``.
        network_encoder: The encoder of every network of a named algorithm, instead of
            ``config.encoder``'s.
        text_encoder: Instruction embedder for the data and evaluation; default the env's
            feature fitted on the datasets' instructions
            (:func:`vlgor_envs.data.d3rlpy_bridge.dataset_instruction_encoder`), saved as
            ``instruction_feature.json``.
        logger_adapter: d3rlpy logger; default files in ``run_dir/d3rlpy``.

    Raises:
        FileExistsError: ``run_dir`` is not empty (and not ``overwrite``).
        FileNotFoundError: A dataset id that is not present.
        ValueError: Bad counts, an algorithm of the other action space, datasets that cannot
            be mixed, or an evaluation env other than the real data's.
    """
    _check(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    data = _load_data(config)
    # Before converting the data, so that a bad name or field fails at once.
    chosen, made, rate = _algorithm(config, data, algo_config, network_encoder)
    examples = instruction_examples([*data.real, *data.imagined]) if text_encoder is None else None
    if examples is not None:
        text_encoder = instruction_encoder(data.env_id, examples)
    dataset = build_dataset(data.real, data.imagined, config.ratio, text_encoder)
    record = _run_record(config, data, chosen, made, rate)

    run_path = Path(config.run_dir)
    if run_path.exists() and config.overwrite:
        shutil.rmtree(run_path)
    run_path.mkdir(parents=True, exist_ok=True)
    _write_json(run_path / "config.json", record)
    if examples is not None:
        feature = {"env": data.env_id, "examples": [[text, goal.to_json()] for text, goal in examples]}
        _write_json(run_path / FEATURE_FILE, feature)
    evaluator = (
        None
        if config.eval_split is None or data.env_id is None
        else SplitEvaluator(
            data.env_id,
            config.eval_split,
            config.eval_episodes,
            config.eval_seed,
            data.image_size,
            text_encoder,
        )
    )
    learner, checkpoints = _fit(config, dataset, made, data.action_space, evaluator, logger_adapter)
    model = _save_learner(learner, run_path / "model.d3")
    if evaluator is not None:
        _write_metrics(run_path, record["eval"], evaluator)
    return TrainResult(
        run_dir=run_path,
        model=model,
        checkpoints=tuple(checkpoints),
        curve=tuple(evaluator.history) if evaluator else (),
        evaluation=evaluator.last if evaluator else None,
        config=record,
        algo=learner,
    )


def _fit(
    config: TrainConfig,
    dataset: ReplayBuffer,
    algo_config: LearnableConfig,
    action_space: ActionKind,
    evaluator: SplitEvaluator | None,
    logger_adapter: LoggerAdapterFactory | None,
) -> tuple[QLearningAlgoBase[Any, Any], list[Path]]:
    """Fit the learner, saving ``model_<step>.d3`` checkpoints; returns it and them."""
    run_path, steps = Path(config.run_dir), config.steps
    plain_logs_off_terminal()
    d3rlpy.seed(config.seed)  # network initialisation (at fit) and batch sampling
    learner = make_algorithm(algo_config, action_space, steps, device=config.device)
    epoch_steps = (config.eval_every or steps) if evaluator else steps
    checkpoints: list[Path] = []

    def save_checkpoint(algo: QLearningAlgoBase[Any, Any], epoch: int, step: int) -> None:
        if config.save_every is not None and step % config.save_every == 0:
            checkpoints.append(_save_learner(algo, run_path / f"model_{step}.d3"))

    learner.fit(
        dataset,
        n_steps=steps,
        n_steps_per_epoch=epoch_steps,
        experiment_name=LOG_FOLDER,
        with_timestamp=False,
        # Evaluations are committed with the epoch's losses; without them, rows every log_every steps.
        logging_strategy=LoggingStrategy.EPOCH if evaluator else LoggingStrategy.STEPS,
        logging_steps=min(config.log_every, steps),
        logger_adapter=logger_adapter or FileAdapterFactory(root_dir=str(run_path)),
        show_progress=config.progress,
        # Checkpoints are ours (by step, atomic); d3rlpy's own saving would never trigger.
        save_interval=steps // epoch_steps + 1,
        evaluators={"success": evaluator} if evaluator else None,
        callback=save_checkpoint,
    )
    return learner, checkpoints


def _write_metrics(run_path: Path, evaluation: dict[str, Any], evaluator: SplitEvaluator) -> None:
    """``metrics.json`` and ``metrics.csv``: the success curve (see the module docstring)."""
    curve = list(evaluator.history)
    _write_json(
        run_path / "metrics.json",
        {
            **evaluation,
            "curve": [{"step": s, "success_rate": r} for s, r in curve],
            "final": evaluator.last.to_json() if evaluator.last else None,
        },
    )
    with (run_path / "metrics.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["step", "success_rate"])
        writer.writerows(curve)
