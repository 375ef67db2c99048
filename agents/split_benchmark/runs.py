"""The split benchmark's runs: one learner per (algorithm, regime, seed), trained and evaluated,
side by side in worker processes, resumable."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import d3rlpy
import minari
import numpy as np
import torch

from agents import TrainConfig, d3rlpy_policy, make_config, run_text_encoder, train
from agents.evaluate import env_id_of
from agents.registry import learner_defaults
from agents.split_benchmark.config import (
    ABLATIONS,
    DEFAULT_ALGOS,
    REAL_SOURCE,
    REFERENCE_LABELS,
    REFERENCES,
    Args,
    Preset,
    Source,
    data_tag,
    drops_failures,
    imagines,
    preset_for,
    ratio_tag,
    regimes_by_algo,
    regimes_of,
)
from agents.split_benchmark.data import dataset_sizes, ensure_dataset, regime_sources
from agents.split_benchmark.evaluation import (
    EVAL_SEED,
    LAST_CHECKPOINTS,
    cell,
    evaluate_blocks,
    reference_policy,
    run_rates,
)
from vlgor_envs import registry, workers
from vlgor_envs.data.d3rlpy_bridge import instruction_examples
from vlgor_envs.imagination.rollouts import (
    ImaginedMetadata,
)
from vlgor_envs.language import InstructionExamples, instruction_encoder


def worker_pool(args: Args) -> contextlib.AbstractContextManager[Executor]:
    """The executor of ``args.backend``: ``args.workers`` local processes (this one alone for
    one), or Ray tasks of ``args.threads`` CPUs and, on a CUDA device, one GPU each."""
    gpus = 1.0 if args.device.startswith("cuda") else 0.0
    return workers.worker_pool(args.workers, args.threads, args.backend, args.address, gpus)


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


def _run_key(
    args: Args, preset: Preset, algo: str, regime: str, real: str, extra: Sequence[str]
) -> dict[str, Any]:
    """What a finished run must have been made with to be reused by ``--resume``."""
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
    return dict(json.loads(json.dumps(settings)))


def _evaluate_checkpoints(
    args: Args, preset: Preset, checkpoints: Sequence[Path], run_dir: Path
) -> dict[str, list[dict[str, Any]]]:
    """Each split's evaluation blocks, one per checkpoint, on start states of its own."""
    text_encoder = run_text_encoder(run_dir)
    blocks: dict[str, list[dict[str, Any]]] = {split: [] for split in args.eval_splits}
    for index, path in enumerate(checkpoints):
        step = int(path.stem.removeprefix("model_"))
        policy = d3rlpy_policy(d3rlpy.load_learnable(str(path), device=args.device), text_encoder)
        for split, got in evaluate_blocks(
            policy, args.env, args.eval_splits, index, step, preset.eval_episodes
        ).items():
            blocks[split].append(got)
    return blocks


def run_one(
    args: Args, preset: Preset, algo: str, regime: str, seed: int, real: str, extra: Sequence[str]
) -> dict[str, Any]:
    """Train one learner on ``real`` plus ``extra`` data and evaluate its checkpoints on the splits."""
    # Runs on data imagined at another temperature or without the failures, or mixed in at
    # another ratio, keep their own folders, so none overwrites another.
    tags = (data_tag(args.temperature, drops_failures(args)) if imagines(regime) else "") + ratio_tag(
        args.ratio
    )
    run_dir = args.out / args.env / algo / (regime + tags if extra else regime) / f"seed{seed}"
    key = _run_key(args, preset, algo, regime, real, extra)
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
    blocks = _evaluate_checkpoints(args, preset, run.checkpoints, run_dir)
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
            "sizes": dataset_sizes([done["real"], *(i for ids in done["extra"].values() for i in ids)]),
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
