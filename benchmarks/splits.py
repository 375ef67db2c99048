"""``vlgor bench splits``: success on each unseen-task split, with and without imagination.

Paper §4 (Fig. 4, Fig. 6, Table 2). For every algorithm, data regime and seed, a d3rlpy
learner trains on the real train-split dataset alone (*baseline*) or on real plus extra
rollouts at a fixed ratio in every batch (1:1 unless ``--ratio``; *+VLGOR*, its two ablations
and *Oracle*), then each of its checkpoints is evaluated in the **real** env on held-out start
states of the train goals and on the rephrasing, counterfactual and hard instructions, each
checkpoint on start states of its own (:mod:`benchmarks.split_evaluation`). A run's figure
pools its last five checkpoints; a table cell gives the IQM over seeds and checkpoints with a
95% bootstrap interval (rliable), per goal kind in the JSON, beside a uniform random policy
and the scripted expert evaluated on the same episodes.

Data regimes (imagined datasets written by :func:`vlgor_envs.imagination.rollouts.imagine`
from counterfactual prompts, with the shipped imagination model):

- ``baseline``: real data only;
- ``vlgor``: + imagined rollouts for rephrased, counterfactual (target and behaviour edits)
  and hard instructions;
- ``wo_target``: as ``vlgor`` but counterfactual prompts edit only the behaviour
  (Table 2 "w/o target");
- ``wo_behavior``: counterfactual prompts edit only the target (Table 2 "w/o behavior");
- ``oracle``: + the scripted expert's real rollouts of +VLGOR's prompts, from the same start
  states: what perfect imagination would give.

As in the paper, only the first algorithm (BC) runs the two ablations unless ``--ablate all``.
On CLEVR the imagined datasets keep only the rollouts that met their goal in imagination (the
paper's dataset holds rollouts "that achieve them"); ``--drop-failures False`` keeps the rest.

``--workers N`` makes the missing datasets and trains and evaluates the runs in ``N`` processes
side by side (each on ``cores // N`` torch threads unless ``--threads``). A run starts once its
datasets exist, so the baselines train while the rest is imagined. On two cores, two one-thread
workers finish the table sooner than one two-thread process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

import matplotlib

matplotlib.use("Agg")
import d3rlpy
import minari
import numpy as np
import torch
from matplotlib import pyplot as plt

from agents import TrainConfig, d3rlpy_policy, make_config, run_text_encoder, train
from agents.evaluate import env_id_of
from agents.registry import learner_defaults
from benchmarks.report import RESULTS_DIR, markdown_table, provenance, write_result
from benchmarks.split_evaluation import (
    EVAL_SEED,
    LAST_CHECKPOINTS,
    TABLE_SPLITS,
    cell,
    evaluate_blocks,
    reference_policy,
    run_rates,
    separated,
)
from vlgor_envs import registry
from vlgor_envs.data.collect import collect, collect_config, list_datasets
from vlgor_envs.data.d3rlpy_bridge import instruction_examples
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.env import real_env_seed
from vlgor_envs.imagination.model import DEFAULT_TEMPERATURE, UNRECORDED_TEMPERATURE, check_temperature
from vlgor_envs.imagination.rollouts import (
    ImagineConfig,
    ImaginedMetadata,
    check_arguments,
    checkpoint_digest,
    imagine,
    imagined_prompts,
)
from vlgor_envs.language import InstructionExamples, instruction_encoder

NAME = "splits"
#: README section of the per-goal-kind table of ``<NAME>_<env>.json``.
KINDS_NAME = "splits_kinds"
#: The splits imagined data is made for.
EVAL_SPLITS = TABLE_SPLITS[1:]
#: Learners compared by default, by the env's action space.
DEFAULT_ALGOS: dict[str, tuple[str, ...]] = {
    "discrete": ("DiscreteBC", "DiscreteCQL"),
    "continuous": ("BC", "TD3PlusBC"),
}


@dataclasses.dataclass(frozen=True)
class Source:
    """One dataset of a data regime: the real train data, the imagined rollouts of one
    ``(split, edits)`` set of prompts, or the real expert's rollouts of those same prompts."""

    kind: Literal["real", "imagined", "oracle"]
    split: str = "train"
    edits: str = "both"


#: The real train-split source of every regime.
REAL_SOURCE = Source("real")
_VLGOR_PROMPTS = (("rephrasing", "both"), ("counterfactual", "both"), ("hard", "both"))
#: The extra sources of each data regime (all of them add to the real train data).
REGIMES: dict[str, tuple[Source, ...]] = {
    "baseline": (),
    "vlgor": tuple(Source("imagined", *p) for p in _VLGOR_PROMPTS),
    "wo_target": tuple(
        Source("imagined", *p)
        for p in (("rephrasing", "both"), ("counterfactual", "behavior"), ("hard", "both"))
    ),
    "wo_behavior": tuple(
        Source("imagined", *p)
        for p in (("rephrasing", "both"), ("counterfactual", "target"), ("hard", "both"))
    ),
    # Perfect imagination: the expert's real rollouts of +VLGOR's prompts and start states.
    "oracle": tuple(Source("oracle", *p) for p in _VLGOR_PROMPTS),
}
#: The edit ablations of Table 2, which the paper runs for BC only.
ABLATIONS = ("wo_target", "wo_behavior")
REGIME_LABELS = {
    "baseline": "Baseline",
    "vlgor": "+VLGOR",
    "wo_target": "w/o target",
    "wo_behavior": "w/o behavior",
    "oracle": "Oracle",
}
#: Policies evaluated beside the learners: the floor and ceiling of behaviour.
REFERENCES = ("random", "expert")
REFERENCE_LABELS = {"random": "Random", "expert": "Expert"}
#: The paper's Table 2 (BC on CLEVR-Robot and Meta-World), success %.
PAPER_TABLE_2 = {
    "clevr": {
        "baseline": (25.3, 15.2, 1.2),
        "wo_target": (40.6, 36.3, 14.3),
        "wo_behavior": (39.8, 35.6, 13.1),
        "vlgor": (41.7, 39.3, 19.3),
    },
    "metaworld": {
        "baseline": (13.6, 5.9, 3.8),
        "wo_target": (21.8, 22.4, 13.1),
        "wo_behavior": (20.3, 20.9, 11.8),
        "vlgor": (23.6, 25.6, 17.8),
    },
}


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes of one benchmark run."""

    real_episodes: int
    #: Imagined rollouts per (split, edits) source.
    imagined_rollouts: dict[str, int]
    steps: int
    #: Checkpoints saved evenly over training; the last five make the table.
    checkpoints: int
    #: Episodes per split and checkpoint, each checkpoint on start states of its own, so a run
    #: is judged on five times as many distinct episodes per split.
    eval_episodes: int
    batch_size: int = 128


PRESETS: dict[str, Preset] = {
    # Smoke test of the whole loop (tests).
    "tiny": Preset(4, {"rephrasing": 2, "counterfactual": 2, "hard": 2}, 9, 3, 1, batch_size=8),
    # `make demo`: a few minutes.
    "demo": Preset(200, {"rephrasing": 0, "counterfactual": 200, "hard": 0}, 1000, 5, 30),
    # The full CLEVR table on 2 CPU cores: the paper's 6,400 real rollouts (cheap to collect,
    # and 1,200 were memorised), 6,000 updates (runs with mixed-in data were still learning at
    # 3,000), 3 seeds, and 100 episodes per split and run from the checkpoints of the last 40%.
    "cpu": Preset(6400, {"rephrasing": 200, "counterfactual": 400, "hard": 200}, 6000, 10, 20),
    # The paper's sizes (App. A): 6,400 real rollouts, 5,400 / 6,400 / 1,680 imagined; a GPU.
    "paper": Preset(
        6400, {"rephrasing": 5400, "counterfactual": 6400, "hard": 1680}, 100_000, 50, 100, batch_size=128
    ),
}
#: Where an env needs other sizes. Meta-World's real env steps about 10x slower than CLEVR's
#: and a failed episode lasts 100 to 150 steps, so its `cpu` evaluation is smaller (50 episodes
#: per split and run).
ENV_PRESETS: dict[str, dict[str, Preset]] = {
    "metaworld": {
        "cpu": Preset(400, {"rephrasing": 100, "counterfactual": 200, "hard": 100}, 1500, 5, 10),
    },
}


def preset_for(env: str, name: str) -> Preset:
    """The sizes of preset ``name`` on ``env``."""
    return ENV_PRESETS.get(env, {}).get(name, PRESETS[name])


@dataclasses.dataclass
class Args:
    """Train d3rlpy learners with and without imagined rollouts and evaluate them on the splits."""

    env: Literal["clevr", "metaworld"] = "clevr"
    algos: tuple[str, ...] | None = None
    """d3rlpy algorithm names (default: DiscreteBC DiscreteCQL for CLEVR, BC TD3PlusBC for Meta-World)."""
    seeds: int = 3
    """Seeds per (algorithm, regime): 0 .. seeds-1."""
    preset: Literal["tiny", "demo", "cpu", "paper"] = "cpu"
    """Sizes: `cpu` is each env's table on 2 CPU cores (CLEVR's BC in three regimes took
    about 80 minutes with `--workers 2`; see docs/RESULTS.md), `paper` is for a GPU."""
    regimes: tuple[str, ...] | None = None
    """Data regimes to compare (see the module docstring; default: all five on CLEVR; baseline,
    vlgor and oracle on Meta-World)."""
    ablate: Literal["first", "all"] = "first"
    """Which algorithms run the ablation regimes: the first (as the paper's Table 2 does, for
    BC), or all of them."""
    eval_splits: tuple[str, ...] = TABLE_SPLITS
    """Splits each checkpoint is evaluated on (`train`: held-out start states of the train goals)."""
    out: Path = Path("out/bench/splits")
    """Run directories (learners, logs) go here."""
    temperature: float = DEFAULT_TEMPERATURE
    """Sampling temperature of the imagined datasets (see `vlgor imagine`); a non-default one
    gets its own dataset ids."""
    drop_failures: bool | None = None
    """Keep only the imagined rollouts whose imagined outcome met the goal (`vlgor imagine
    --drop-failures`), as the paper's dataset holds rollouts that achieve their goals; such data
    and its runs get ids and folders of their own (`-successes`). Default: on for CLEVR, off for
    Meta-World, where the imagined successes are not real ones (see the README)."""
    ratio: tuple[float, float] = (1.0, 1.0)
    """Real : imagined share of every batch in the runs with imagined data (the paper's 1:1);
    another one gets run folders of its own."""
    fresh_data: bool = False
    """Collect and imagine the datasets again even where they exist (after a model change)."""
    resume: bool = False
    """Reuse the runs an interrupted benchmark finished (same preset, datasets and evaluation,
    and for imagined data the same temperature and imagination model; never with `fresh_data`)."""
    device: str = "cpu:0"
    workers: int = 1
    """Processes that make the datasets and train the runs side by side (see the module
    docstring); `make bench` uses one per core, up to four."""
    threads: int | None = None
    """torch intra-op threads of each process (default: torch's choice with one worker, the
    cores shared out between several)."""
    results: Path = RESULTS_DIR
    """Where <name>_<env>.json and .png go."""
    name: str = NAME


def drops_failures(args: Args) -> bool:
    """Whether ``args`` drops the failed imagined rollouts (its env's default if unset)."""
    default = registry.entry(args.env).drop_imagined_failures
    return default if args.drop_failures is None else args.drop_failures


def _ensure_real(env: str, preset: str, episodes: int, fresh: bool) -> str:
    dataset_id = f"vlgor/{env}/splits-{preset}-real-train-v0"
    if fresh or dataset_id not in list_datasets():
        collect(
            collect_config(env, "train", episodes=episodes, seed=0, dataset_id=dataset_id, overwrite=True)
        )
    return dataset_id


def data_tag(temperature: float, drop_failures: bool) -> str:
    """Name suffix of imagined data (and the runs on it) made at a non-default temperature or
    without the failed rollouts (``""`` at the defaults)."""
    tag = "" if temperature == DEFAULT_TEMPERATURE else f"-temperature{temperature:g}".replace(".", "p")
    return tag + ("-successes" if drop_failures else "")


def ratio_tag(ratio: tuple[float, float]) -> str:
    """Name suffix of runs that mix imagined data in at another ratio than 1:1 (``""`` at 1:1)."""
    if tuple(ratio) == (1.0, 1.0):
        return ""
    return f"-ratio{ratio[0]:g}to{ratio[1]:g}".replace(".", "p")


def imagined_splits_id(
    env: str, preset: str, split: str, edits: str, temperature: float, drop_failures: bool = False
) -> str:
    """Dataset id of one imagined source; a non-default temperature and dropped failures are part
    of the name."""
    suffix = ("" if edits == "both" else f"-{edits}") + data_tag(temperature, drop_failures)
    return f"vlgor/{env}/splits-{preset}-imagined-{split}{suffix}-v0"


def ensure_imagined(
    env: str,
    preset: str,
    split: str,
    edits: str,
    rollouts: int,
    seed: int,
    temperature: float,
    fresh: bool,
    drop_failures: bool = False,
) -> str:
    dataset_id = imagined_splits_id(env, preset, split, edits, temperature, drop_failures)
    if fresh or dataset_id not in list_datasets():
        # Names checked by `imagine` (the benchmark iterates over them as plain strings).
        imagine(
            ImagineConfig(
                cast(Any, env),
                split=cast(Any, split),
                rollouts=rollouts,
                seed=seed,
                edits=cast(Any, edits),
                drop_failures=drop_failures,
                dataset_id=dataset_id,
                overwrite=True,
                temperature=temperature,
            )
        )
        return dataset_id
    metadata = ImaginedMetadata.of(dataset_id)
    made_at = metadata.temperature
    keep_baselines = f"or `minari delete {dataset_id}` and pass --resume to keep the baseline runs"
    if metadata.keep_failures == drop_failures:
        kept = "only the successes" if drop_failures else "the failures too"
        raise ValueError(
            f"{dataset_id} should hold {kept}; pass --fresh-data to make all data again, {keep_baselines}"
        )
    if made_at != temperature:
        raise ValueError(
            f"{dataset_id} was imagined at temperature {made_at:g}, not {temperature:g}; "
            f"pass --fresh-data to make all data again, {keep_baselines}"
        )
    shipped = checkpoint_digest(shipped_checkpoint(env))
    if metadata.checkpoint_sha256 != shipped:
        raise ValueError(
            f"{dataset_id} was imagined by another model than the shipped {env} checkpoint "
            f"(SHA-256 {str(metadata.checkpoint_sha256)[:12]}, shipped {shipped[:12]}); "
            f"pass --fresh-data to make all data again, {keep_baselines}"
        )
    return dataset_id


def regimes_of(args: Args) -> tuple[str, ...]:
    """The regimes ``args`` asks for, checked."""
    regimes = args.regimes or registry.entry(args.env).regimes
    unknown = set(regimes) - set(REGIMES)
    if unknown:
        raise ValueError(f"unknown regimes {sorted(unknown)}; choose from {sorted(REGIMES)}")
    for regime in regimes:
        for source in REGIMES[regime]:
            try:
                check_arguments(args.env, source.split, source.edits)
            except ValueError as exc:
                raise ValueError(f"regime {regime!r} cannot run on {args.env}: {exc}") from exc
    return regimes


def regimes_by_algo(args: Args, algos: Sequence[str], regimes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The regimes each algorithm runs: the ablations only for the first unless ``--ablate all``."""
    by_algo = {
        algo: tuple(r for r in regimes if args.ablate == "all" or index == 0 or r not in ABLATIONS)
        for index, algo in enumerate(algos)
    }
    idle = [algo for algo, chosen in by_algo.items() if not chosen]
    if idle:
        raise ValueError(
            f"{', '.join(idle)} would run none of the regimes {list(regimes)}: only the first "
            "algorithm runs the ablations; pass --ablate all"
        )
    return by_algo


def oracle_splits_id(env: str, preset: str, split: str, edits: str) -> str:
    """Dataset id of the expert's real rollouts of one imagined source's prompts."""
    return f"vlgor/{env}/splits-{preset}-oracle-{split}{'' if edits == 'both' else '-' + edits}-v0"


def ensure_oracle(
    env: str, preset: str, split: str, edits: str, rollouts: int, seed: int, fresh: bool
) -> str:
    """The scripted expert's real rollouts of the prompts :func:`ensure_imagined` imagines with
    the same arguments: same goals and start states (what perfect imagination would give)."""
    dataset_id = oracle_splits_id(env, preset, split, edits)
    if fresh or dataset_id not in list_datasets():
        prompts = imagined_prompts(env, split, rollouts, seed, edits)
        starts = [(real_env_seed(prompt.seed), prompt.goal) for prompt in prompts]
        collect(
            collect_config(
                env,
                split,
                episodes=rollouts,
                seed=seed,
                dataset_id=dataset_id,
                overwrite=True,
                progress=False,
            ),
            starts=starts,
        )
    return dataset_id


def ensure_dataset(args: Args, preset: Preset, source: Source) -> str:
    """The id of the dataset of ``source``, made if missing (or if ``--fresh-data``)."""
    if source == REAL_SOURCE:
        return _ensure_real(args.env, args.preset, preset.real_episodes, args.fresh_data)
    # One seed per split, so an edit ablation and the oracle start from the same real frames.
    seed = 10_000 * (1 + EVAL_SPLITS.index(source.split))
    rollouts = preset.imagined_rollouts[source.split]
    if source.kind == "oracle":
        return ensure_oracle(
            args.env, args.preset, source.split, source.edits, rollouts, seed, args.fresh_data
        )
    return ensure_imagined(
        args.env,
        args.preset,
        source.split,
        source.edits,
        rollouts,
        seed,
        args.temperature,
        args.fresh_data,
        drops_failures(args),
    )


def regime_sources(args: Args, preset: Preset, regimes: Sequence[str]) -> dict[str, list[Source]]:
    """The extra sources of each of ``regimes`` (:func:`regimes_of`) that the preset makes, checked."""
    check_temperature(args.temperature)
    sources = {r: [s for s in REGIMES[r] if preset.imagined_rollouts.get(s.split, 0) > 0] for r in regimes}
    for regime, chosen in sources.items():
        if regime != "baseline" and not chosen:
            raise ValueError(f"preset {args.preset!r} imagines no rollouts for regime {regime!r}")
    return sources


def imagines(regime: str) -> bool:
    """Whether ``regime`` trains on imagined data (which its temperature and model change)."""
    return any(source.kind == "imagined" for source in REGIMES[regime])


def _worker_threads(threads: int) -> None:
    torch.set_num_threads(threads)


class _InProcess(Executor):
    """Runs each call as it is submitted, in this process: the executor of one worker."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@contextlib.contextmanager
def worker_pool(args: Args) -> Iterator[Executor]:
    """``args.workers`` spawned processes, or this one alone for one worker."""
    if args.workers < 1:
        raise ValueError(f"workers must be >= 1, got {args.workers}")
    if args.workers == 1:
        yield _InProcess()
        return
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    # Spawned, not forked: the parent may hold torch threads and open HDF5 files.
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(args.workers, context, initializer=_worker_threads, initargs=(threads,))
    try:
        yield pool
    except BaseException:
        # Drop the queued runs; the ones running finish and are kept for --resume.
        pool.shutdown(cancel_futures=True)
        raise
    pool.shutdown()


def learner_config(env: str, algo: str, preset: Preset) -> dict[str, Any]:
    """The d3rlpy config (as JSON data) that the benchmark trains ``algo`` with on ``env``."""
    defaults = learner_defaults(env_id_of(env))
    config = make_config(
        algo,
        registry.entry(env).action_kind,
        preset.steps,
        preset.batch_size,
        defaults.learning_rate,
        defaults.min_learning_rate(defaults.learning_rate),
        network_encoder=defaults.encoder(),
    )
    return dict(json.loads(json.dumps(config.serialize_to_dict())))


def _reuse(args: Args, record: Path, key: dict[str, Any], what: str) -> dict[str, Any] | None:
    """The result saved in ``record`` if ``--resume`` asks for it and it was made with ``key``."""
    if args.resume and not args.fresh_data and record.is_file():
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            print(f"{what}: reused the finished run in {record.parent}")
            result: dict[str, Any] = saved["result"]
            return result
    return None


def _save(record: Path, key: dict[str, Any], result: dict[str, Any]) -> None:
    record.parent.mkdir(parents=True, exist_ok=True)
    partial = record.with_suffix(".partial")
    partial.write_text(json.dumps({"key": key, "result": result}))
    partial.replace(record)


def _evaluation_key(args: Args, preset: Preset) -> dict[str, Any]:
    return {
        "splits": list(args.eval_splits),
        "seed": EVAL_SEED,
        "episodes_per_checkpoint": preset.eval_episodes,
        "protocol": "a block of start states per checkpoint",
    }


def _summary(
    what: str, blocks: dict[str, list[dict[str, Any]]], started: float, **seconds: float
) -> dict[str, Any]:
    """A run's (or reference's) result from its evaluation blocks, printed in one line."""
    curves = {
        split: [(b["step"], b["successes"] / b["episodes"]) for b in got] for split, got in blocks.items()
    }
    last = {split: float(np.mean(run_rates({"blocks": blocks}, split))) for split in blocks}
    total = time.perf_counter() - started
    print(
        f"{what}: "
        + ", ".join(f"{split} {100 * value:.1f}%" for split, value in last.items())
        + f" ({total:.0f} s)"
    )
    # Training plus evaluation, so a result gathered from reused runs still says what they cost.
    return {"blocks": blocks, "curves": curves, "last_five": last, **seconds, "seconds": total}


def _examples(real: str, extra: Sequence[str]) -> InstructionExamples:
    """What a run on these datasets fits its instruction feature on (as :func:`train` does)."""
    return instruction_examples([minari.load_dataset(i) for i in (real, *extra)])


def run_one(
    args: Args, preset: Preset, algo: str, regime: str, seed: int, real: str, extra: Sequence[str]
) -> dict[str, Any]:
    """Train one learner on ``real`` plus ``extra`` data and evaluate its checkpoints on the splits."""
    # Runs on data imagined at another temperature or without the failures, or mixed in at
    # another ratio, keep their own folders, so none overwrites another.
    tags = (data_tag(args.temperature, drops_failures(args)) if imagines(regime) else "") + ratio_tag(
        args.ratio
    )
    folder = regime + tags if extra else regime
    run_dir = args.out / args.env / algo / folder / f"seed{seed}"
    settings: dict[str, Any] = {
        "preset": dataclasses.asdict(preset),
        "real": real,
        "imagined": list(extra),
        "evaluation": _evaluation_key(args, preset),
        # The learner's whole d3rlpy config, so a change of its defaults (the encoder's
        # augmentation, say) trains the run again.
        "learner": learner_config(args.env, algo, preset),
        "instruction_feature": repr(instruction_encoder(env_id_of(args.env), _examples(real, extra))),
    }
    if extra:
        settings["ratio"] = list(args.ratio)
    if imagines(regime):
        # Only runs on imagined data depend on how it was made, so the others are reused across
        # temperatures and imagination models.
        settings["temperature"] = args.temperature
        settings["imagined_by"] = [ImaginedMetadata.of(i).checkpoint_sha256 for i in extra]
    # JSON round trip, so a key read back from disk compares equal.
    key = json.loads(json.dumps(settings))
    what = f"{algo} {regime} seed {seed}"
    reused = _reuse(args, run_dir / "benchmark_run.json", key, what)
    if reused is not None:
        return reused
    started = time.perf_counter()
    config = TrainConfig(
        run_dir=run_dir,
        algo=algo,
        real=(real,),
        imagined=tuple(extra),
        ratio=args.ratio,
        steps=preset.steps,
        seed=seed,
        batch_size=preset.batch_size,
        save_every=max(1, preset.steps // preset.checkpoints),
        device=args.device,
        overwrite=True,
        progress=False,
    )
    run = train(config)
    trained = time.perf_counter() - started
    text_encoder = run_text_encoder(run_dir)
    blocks: dict[str, list[dict[str, Any]]] = {split: [] for split in args.eval_splits}
    for index, path in enumerate(run.checkpoints):
        step = int(path.stem.removeprefix("model_"))
        policy = d3rlpy_policy(d3rlpy.load_learnable(str(path), device=args.device), text_encoder)
        for split, got in evaluate_blocks(
            policy, args.env, args.eval_splits, index, step, preset.eval_episodes
        ).items():
            blocks[split].append(got)
    result = _summary(what, blocks, started, train_seconds=trained)
    _save(run_dir / "benchmark_run.json", key, result)
    return result


def run_reference(args: Args, preset: Preset, reference: str, seed: int) -> dict[str, Any]:
    """Evaluate the random or expert policy on the blocks of a run's last five checkpoints."""
    record = args.out / args.env / "reference" / reference / f"seed{seed}" / "benchmark_run.json"
    key = json.loads(
        json.dumps({"evaluation": _evaluation_key(args, preset), "checkpoints": preset.checkpoints})
    )
    what = f"{REFERENCE_LABELS[reference]} seed {seed}"
    reused = _reuse(args, record, key, what)
    if reused is not None:
        return reused
    started = time.perf_counter()
    policy, reads_info = reference_policy(args.env, reference, seed)
    blocks: dict[str, list[dict[str, Any]]] = {split: [] for split in args.eval_splits}
    for index in range(max(0, preset.checkpoints - LAST_CHECKPOINTS), preset.checkpoints):
        for split, got in evaluate_blocks(
            policy, args.env, args.eval_splits, index, index, preset.eval_episodes, pass_info=reads_info
        ).items():
            blocks[split].append(got)
    result = _summary(what, blocks, started)
    _save(record, key, result)
    return result


def reference_seeds(args: Args, reference: str) -> range:
    """Seeds of a reference: the random policy's ``args.seeds``; the deterministic expert's one."""
    return range(args.seeds if reference == "random" else 1)


def _run_everything(
    args: Args, preset: Preset, by_algo: dict[str, tuple[str, ...]], sources: dict[str, list[Source]]
) -> dict[str, Any]:
    """Make the datasets, evaluate the references and train every run, in ``args.workers`` processes."""
    started = time.perf_counter()
    extra = dict.fromkeys(s for chosen in sources.values() for s in chosen)
    # The real data first (the baselines wait for it), then the largest extra sets first.
    needed = [REAL_SOURCE, *sorted(extra, key=lambda s: -preset.imagined_rollouts[s.split])]
    # Baselines first: they need only the real data, so they start while the rest is imagined.
    # Ablations last, so every algorithm's main comparison is done first (and on CLEVR, BC's
    # ablation runs, shorter than CQL's, fill the workers at the end).
    jobs = [(a, r, seed) for a, chosen in by_algo.items() for r in chosen for seed in range(args.seeds)]
    jobs.sort(key=lambda job: (job[1] != "baseline", job[1] in ABLATIONS))
    with worker_pool(args) as pool:
        making = {source: pool.submit(ensure_dataset, args, preset, source) for source in needed}
        judging = {
            (name, seed): pool.submit(run_reference, args, preset, name, seed)
            for name in REFERENCES
            for seed in reference_seeds(args, name)
        }
        real = making[REAL_SOURCE].result()
        training: dict[tuple[str, str, int], Future[dict[str, Any]]] = {}
        for algo, regime, seed in jobs:
            ids = [making[source].result() for source in sources[regime]]
            training[algo, regime, seed] = pool.submit(run_one, args, preset, algo, regime, seed, real, ids)
        # Runs are submitted as their data is done, so this is when the last dataset was.
        extra_ids = {regime: [making[s].result() for s in chosen] for regime, chosen in sources.items()}
        data_seconds = time.perf_counter() - started
        return {
            "real": real,
            "extra": extra_ids,
            "data_seconds": data_seconds,
            "references": {
                name: [judging[name, seed].result() for seed in reference_seeds(args, name)]
                for name in REFERENCES
            },
            "runs": {
                algo: {r: [training[algo, r, seed].result() for seed in range(args.seeds)] for r in chosen}
                for algo, chosen in by_algo.items()
            },
        }


def measure(args: Args) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    preset = preset_for(args.env, args.preset)
    algos = args.algos or DEFAULT_ALGOS[registry.entry(args.env).action_kind]
    started = time.perf_counter()
    regimes = regimes_of(args)
    by_algo = regimes_by_algo(args, algos, regimes)  # before any data is made
    done = _run_everything(args, preset, by_algo, regime_sources(args, preset, regimes))
    runs, references = done["runs"], done["references"]
    run_seconds = [
        run.get("seconds") for by_regime in runs.values() for seeds in by_regime.values() for run in seeds
    ]
    return {
        "datasets": {
            "real": done["real"],
            "imagined": done["extra"],
            "sizes": _dataset_sizes([done["real"], *(i for ids in done["extra"].values() for i in ids)]),
        },
        "table": {
            algo: {
                regime: {s: cell(results, s) for s in args.eval_splits} for regime, results in chosen.items()
            }
            for algo, chosen in runs.items()
        },
        "references": {
            name: {s: cell(results, s) for s in args.eval_splits} for name, results in references.items()
        },
        "runs": runs,
        "reference_runs": references,
        "learners": {algo: learner_config(args.env, algo, preset) for algo in algos},
        "seconds": {
            "data": done["data_seconds"],
            "total": time.perf_counter() - started,
            # What every run cost, reused ones included; None if a reused run predates the record.
            "runs": None if None in run_seconds else sum(s for s in run_seconds if s is not None),
        },
    }


def _dataset_sizes(ids: Sequence[str]) -> dict[str, Any]:
    sizes: dict[str, Any] = {}
    for dataset_id in dict.fromkeys(ids):
        dataset = minari.load_dataset(dataset_id)
        metadata = dataset.storage.metadata.get("vlgor") or {}
        sizes[dataset_id] = {
            "episodes": int(dataset.total_episodes),
            "steps": int(dataset.total_steps),
            "imagined_success_rate": metadata.get("imagined_success_rate"),
            "imagined_by": metadata.get("checkpoint_sha256"),
        }
    return sizes


def _in_order(cells: dict[str, Any], order: Sequence[str]) -> list[tuple[str, Any]]:
    """``cells``' items in ``order`` (the JSON's keys come back sorted)."""
    return sorted(cells.items(), key=lambda item: order.index(item[0]))


def _bar_rows(figures: dict[str, Any], algo: str) -> list[tuple[str, dict[str, Any]]]:
    """``(label, split -> cell)`` of the references and ``algo``'s regimes, in table order."""
    references = [(REFERENCE_LABELS[n], c) for n, c in _in_order(figures["references"], REFERENCES)]
    return references + [(REGIME_LABELS[r], c) for r, c in _in_order(figures["table"][algo], list(REGIMES))]


def _colour(label: str) -> str:
    """One colour per row label, the same in the bars and the curves."""
    labels = [*REFERENCE_LABELS.values(), *REGIME_LABELS.values()]
    return f"C{labels.index(label)}"


def plot(figures: dict[str, Any], env: str, path: Path) -> None:
    """Fig. 4-style bars (IQM and 95% interval per split) and Fig. 6-style curves (counterfactual)."""
    table, runs = figures["table"], figures["runs"]
    algos = list(table)
    splits = sorted(next(iter(next(iter(table.values())).values())), key=TABLE_SPLITS.index)
    fig, axes = plt.subplots(2, len(algos), figsize=(6.0 * len(algos), 7.5), squeeze=False)
    for column, algo in enumerate(algos):
        rows = _bar_rows(figures, algo)
        width = 0.8 / len(rows)
        ax = axes[0][column]
        for k, (label, cells) in enumerate(rows):
            iqm = np.array([100 * cells[s]["iqm"] for s in splits])
            low = iqm - np.array([100 * cells[s]["ci"][0] for s in splits])
            high = np.array([100 * cells[s]["ci"][1] for s in splits]) - iqm
            x = np.arange(len(splits)) + k * width
            ax.bar(x, iqm, width, yerr=[low, high], label=label, capsize=2, color=_colour(label))
        ax.set_xticks(np.arange(len(splits)) + width * (len(rows) - 1) / 2, splits)
        ax.set_ylabel("success (%, IQM)")
        ax.set_title(f"{env}: {algo} (bars: 95% bootstrap intervals)")
        ax.legend(fontsize=7, ncol=2)
        ax = axes[1][column]
        curve_split = "counterfactual" if "counterfactual" in splits else splits[0]
        for regime, _ in _in_order(table[algo], list(REGIMES)):
            curves = np.array([[s for _, s in r["curves"][curve_split]] for r in runs[algo][regime]])
            steps = [step for step, _ in runs[algo][regime][0]["curves"][curve_split]]
            mean, half = 100 * curves.mean(axis=0), 50 * curves.std(axis=0)
            label = REGIME_LABELS[regime]
            ax.plot(steps, mean, label=label, color=_colour(label))
            ax.fill_between(steps, mean - half, mean + half, alpha=0.2, color=_colour(label))
        ax.set_xlabel("training step (each checkpoint on episodes of its own)")
        ax.set_ylabel(f"{curve_split} success (%)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _interval_text(cell: dict[str, Any], bold: bool = False) -> str:
    text = f"{100 * cell['iqm']:.1f} [{100 * cell['ci'][0]:.1f}, {100 * cell['ci'][1]:.1f}]"
    return f"**{text}**" if bold else text


def readme_table(result: dict[str, Any]) -> str:
    """Table 2 style: IQM success % with its 95% interval, floor and ceiling, beside the paper."""
    env, config, figures = result["config"]["env"], result["config"], result["figures"]
    splits = config["eval_splits"]
    rows = [
        [REFERENCE_LABELS[name], "", *(_interval_text(cells[s]) for s in splits)]
        for name, cells in _in_order(figures["references"], REFERENCES)
    ]
    for algo, regimes in figures["table"].items():
        baseline = regimes.get("baseline")
        for regime, cells in _in_order(regimes, list(REGIMES)):
            above = [
                baseline is not None and regime != "baseline" and separated(cells[s], baseline[s])
                for s in splits
            ]
            rows.append(
                [
                    algo,
                    REGIME_LABELS[regime],
                    *(_interval_text(cells[s], a) for s, a in zip(splits, above, strict=True)),
                ]
            )
    measured = {regime for regimes in figures["table"].values() for regime in regimes}
    for regime, values in PAPER_TABLE_2.get(env, {}).items():
        if regime in measured:
            by_split = dict(zip(EVAL_SPLITS, values, strict=True))
            rows.append(
                [
                    "paper (BC)",
                    REGIME_LABELS[regime],
                    *(f"{by_split[s]:.1f}" if s in by_split else "" for s in splits),
                ]
            )
    first = next(iter(figures["table"].values()))
    episodes = next(iter(next(iter(first.values())).values()))["episodes_per_run"]
    return (
        markdown_table(["algorithm", "data", *splits], rows)
        + "\n\nSuccess % in the real env: interquartile mean (IQM) of the evaluations of each seed's "
        + f"last {LAST_CHECKPOINTS} checkpoints ({config['seeds']} seeds; {episodes} distinct episodes "
        + "per split and run), with its 95% stratified-bootstrap interval (rliable). **Bold**: the "
        + "interval lies wholly above the same learner's Baseline; any other difference is within the "
        + "intervals and not claimed as a gain. Random and Expert act on the same episodes as the "
        + "last checkpoints. "
        + _data_note(result)
        + learner_note(result)
        + provenance(result)
    )


def _data_note(result: dict[str, Any]) -> str:
    config = result["config"]
    temperature = config.get("temperature", UNRECORDED_TEMPERATURE)
    return (
        f"Preset `{config['preset']}`, imagined at temperature {temperature:g}"
        + imagined_by_note(config["env"], result["figures"]["datasets"]["sizes"])
        + {True: ", failed imagined rollouts dropped", False: ", failed imagined rollouts kept"}.get(
            config.get("drop_failures"), ""
        )
        + "; Oracle adds the expert's real rollouts of +VLGOR's prompts and start states. "
    )


def kinds_table(result: dict[str, Any]) -> str:
    """Success % per goal kind (rows) of the references and every learner and regime (columns)."""
    figures, splits = result["figures"], result["config"]["eval_splits"]
    columns = [(REFERENCE_LABELS[n], c) for n, c in _in_order(figures["references"], REFERENCES)]
    short = {"DiscreteBC": "BC", "DiscreteCQL": "CQL", "TD3PlusBC": "TD3+BC"}
    for algo, regimes in figures["table"].items():
        columns += [
            (f"{short.get(algo, algo)} {REGIME_LABELS[r]}", c) for r, c in _in_order(regimes, list(REGIMES))
        ]
    rows = []
    for split in splits:
        for kind in columns[0][1][split]["by_kind"]:
            values = [cells[split]["by_kind"].get(kind) for _, cells in columns]
            rows.append([split, kind, *("" if v is None else f"{100 * v:.0f}" for v in values)])
    return (
        markdown_table(["split", "goal kind", *(label for label, _ in columns)], rows)
        + "\n\nSuccess % per goal kind over every seed's last five evaluations (the JSON's `by_kind`, with "
        + "`by_kind_episodes` beside it). "
        + provenance(result)
    )


def learner_note(result: dict[str, Any]) -> str:
    """A warning where a result's learners were trained with other settings than the current ones."""
    config, figures = result["config"], result["figures"]
    preset = preset_for(config["env"], config["preset"])
    recorded = figures.get("learners", {})
    if all(recorded.get(algo) == learner_config(config["env"], algo, preset) for algo in figures["table"]):
        return ""
    return (
        "Its learners were trained with other d3rlpy settings than the current defaults; "
        "`--resume` trains them again. "
    )


def imagined_by_note(env: str, sizes: dict[str, Any]) -> str:
    """Which model imagined a result's datasets, against the checkpoint shipped now."""
    digests = {size["imagined_by"] for size in sizes.values() if size.get("imagined_by")}
    if not digests:
        return ""
    if digests == {checkpoint_digest(shipped_checkpoint(env))}:
        return " by the shipped model"
    names = ", ".join(sorted(digest[:12] for digest in digests))
    return f" by checkpoint {names}, not the one shipped now (re-run with `--fresh-data`)"


#: `make bench` also trains BC on imagined data with the failed rollouts kept.
KEEP_FAILURES_NAME = "splits_keep_failures"


def keep_failures_args() -> Args:
    """BC, baseline and +VLGOR, 3 seeds, with the failed imagined rollouts kept (CLEVR).

    The runs share the main table's folder and resume, so its baselines are not trained again.
    """
    return Args(
        env="clevr",
        algos=("DiscreteBC",),
        regimes=("baseline", "vlgor"),
        drop_failures=False,
        resume=True,
        name=KEEP_FAILURES_NAME,
    )


#: `make bench` compares the imagination's sampling temperature for BC's imagined data.
TEMPERATURE_NAME = "splits_temperature"
TEMPERATURES = (0.0, 1.0)


def temperature_args(temperature: float) -> Args:
    """BC, baseline and +VLGOR, 5 seeds, on imagined data sampled at ``temperature`` (CLEVR).

    The runs share the main table's folder and resume, so the runs it already has (BC's first
    three seeds, and the baselines at the second temperature) are not trained again.
    """
    return Args(
        env="clevr",
        algos=("DiscreteBC",),
        seeds=5,
        regimes=("baseline", "vlgor"),
        temperature=temperature,
        drop_failures=False,  # the study compares the imagined data as it comes
        resume=True,
        name=f"{TEMPERATURE_NAME}{temperature:g}",
    )


def temperature_table(results: Sequence[dict[str, Any]]) -> str:
    """Success % of BC with imagined data at each temperature, and the per-seed counterfactual gain."""
    rows = []
    for result in results:
        config, figures = result["config"], result["figures"]
        runs = figures["runs"]["DiscreteBC"]
        gains = [
            100 * (vlgor["last_five"]["counterfactual"] - baseline["last_five"]["counterfactual"])
            for baseline, vlgor in zip(runs["baseline"], runs["vlgor"], strict=True)
        ]
        table = figures["table"]["DiscreteBC"]
        cells = [
            f"{100 * table[regime][s]['mean']:.1f} ± {100 * table[regime][s]['std']:.1f}"
            for regime in ("baseline", "vlgor")
            for s in ("rephrasing", "counterfactual")
        ]
        rows.append([f"{config['temperature']:g}", *cells, " / ".join(f"{g:+.0f}" for g in gains)])
    header = ["temperature", "Baseline reph.", "Baseline CF", "+VLGOR reph.", "+VLGOR CF", "CF gain per seed"]
    seeds = results[0]["config"]["seeds"]
    return (
        markdown_table(header, rows)
        + f"\n\nDiscreteBC, preset `{results[0]['config']['preset']}`, success % in the real env, "
        + f"mean ± std over {seeds} seeds; "
        + "the baseline trains on the same real data and seeds at both temperatures. "
        + "".join(dict.fromkeys(learner_note(result) for result in results))
        + provenance(results[0])
    )


def main(args: Args) -> Path:
    # Recorded as chosen, so a result says what it was trained on.
    args = dataclasses.replace(args, drop_failures=drops_failures(args))
    figures = measure(args)
    name = f"{args.name}_{args.env}"
    path = write_result(name, args, figures, args.results)
    plot(figures, args.env, args.results / f"{name}.png")
    print(readme_table(json.loads(path.read_text())))
    return path
