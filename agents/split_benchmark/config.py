"""``vlgor bench splits``: success on each unseen-task split, with and without imagination.

Paper §4 (Fig. 4, Fig. 6, Table 2). For every algorithm, data regime and seed, a d3rlpy
learner trains on the real train-split dataset alone (*baseline*) or on real plus extra
rollouts at a fixed ratio in every batch (1:1 unless ``--ratio``; *+VLGOR*, its two ablations
and *Oracle*), then each of its checkpoints is evaluated in the **real** env on held-out start
states of the train goals and on the rephrasing, counterfactual and hard instructions, each
checkpoint on start states of its own (:mod:`agents.split_benchmark.evaluation`). A run's figure
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
workers finish the table sooner than one two-thread process. ``--backend ray`` runs the same
jobs as Ray tasks that declare their CPUs (and a GPU on a CUDA device), on a local Ray or the
cluster at ``--address``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from agents.split_benchmark.evaluation import (
    TABLE_SPLITS,
)
from vlgor_envs import registry
from vlgor_envs.imagination.model import DEFAULT_TEMPERATURE
from vlgor_envs.imagination.rollouts import (
    check_arguments,
)
from vlgor_envs.registry import EnvName
from vlgor_envs.workers import Backend

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
    # and 1,200 were memorised), 12,000 updates (runs with mixed-in data were still learning at
    # 6,000), 3 seeds, and 100 episodes per split and run from the checkpoints of the last 40%.
    "cpu": Preset(6400, {"rephrasing": 200, "counterfactual": 400, "hard": 200}, 12_000, 10, 20),
    # The paper's sizes (App. A): 6,400 real rollouts, 5,400 / 6,400 / 1,680 imagined; a GPU.
    "paper": Preset(
        6400, {"rephrasing": 5400, "counterfactual": 6400, "hard": 1680}, 100_000, 50, 100, batch_size=128
    ),
}
#: Where an env needs other sizes. Meta-World's real env steps about 10x slower than CLEVR's
#: and a failed episode lasts 100 to 150 steps, so its `cpu` evaluation is smaller (50 episodes
#: per split and run). Its learner needs more data than 400 episodes (40 per task): with 1,000
#: and 3,000 updates a pilot reached 64% on train goals, against 33% in the 400-episode table.
ENV_PRESETS: dict[str, dict[str, Preset]] = {
    "metaworld": {
        "cpu": Preset(1000, {"rephrasing": 100, "counterfactual": 200, "hard": 100}, 3000, 10, 10),
    },
}


def preset_for(env: str, name: str) -> Preset:
    """The sizes of preset ``name`` on ``env``."""
    return ENV_PRESETS.get(env, {}).get(name, PRESETS[name])


@dataclasses.dataclass
class Args:
    """Train d3rlpy learners with and without imagined rollouts and evaluate them on the splits."""

    env: EnvName = "clevr"
    algos: tuple[str, ...] | None = None
    """d3rlpy algorithm names (default: DiscreteBC DiscreteCQL for CLEVR, BC TD3PlusBC for Meta-World)."""
    seeds: int = 3
    """Seeds per (algorithm, regime): 0 .. seeds-1."""
    preset: Literal["tiny", "demo", "cpu", "paper"] = "cpu"
    """Sizes: `cpu` is each env's table on 2 CPU cores (CLEVR's BC in three regimes takes
    about 3 hours with `--workers 2`; see docs/RESULTS.md), `paper` is for a GPU."""
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
    cores shared out between several; with Ray, 1, the CPUs each task declares)."""
    backend: Backend = "local"
    """Where the datasets are made and the runs trained: `local` processes, or `ray` tasks (the
    extra `pip install 'vlgor[ray]'`), on a local Ray of `--workers` tasks or the cluster at
    `--address`; the results, the JSON and `--resume` are the same."""
    address: str | None = None
    """A Ray cluster to run on (`ray://host:10001`, or `auto` on a cluster node); its workers
    need this machine's datasets and run folders at the same paths (a shared file system)."""
    results: Path = Path("benchmarks/results")
    """Where <name>_<env>.json and .png go."""
    name: str = NAME


def drops_failures(args: Args) -> bool:
    """Whether ``args`` drops the failed imagined rollouts (its env's default if unset)."""
    default = registry.entry(args.env).drop_imagined_failures
    return default if args.drop_failures is None else args.drop_failures


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


def imagines(regime: str) -> bool:
    """Whether ``regime`` trains on imagined data (which its temperature and model change)."""
    return any(source.kind == "imagined" for source in REGIMES[regime])


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
