"""The split benchmark's report: the JSON record, bars and learning curves, and markdown tables."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
from matplotlib import pyplot as plt

from agents.split_benchmark.config import (
    EVAL_SPLITS,
    PAPER_TABLE_2,
    REFERENCE_LABELS,
    REFERENCES,
    REGIME_LABELS,
    REGIMES,
    Args,
    drops_failures,
    preset_for,
)
from agents.split_benchmark.evaluation import (
    LAST_CHECKPOINTS,
    TABLE_SPLITS,
    separated,
)
from agents.split_benchmark.records import markdown_table, provenance, write_result
from agents.split_benchmark.runs import learner_config, measure
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.model import UNRECORDED_TEMPERATURE
from vlgor_envs.imagination.rollouts import (
    checkpoint_digest,
)


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
