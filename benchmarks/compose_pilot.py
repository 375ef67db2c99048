"""Do the learners' train skills compose into hard goals? The split table's runs, clause by clause.

Every finished run of a ``vlgor bench splits`` folder (``--out``) is evaluated again on the
hard split with :class:`agents.compose.ClauseByClausePolicy` around it, on exactly the blocks
the table evaluated (the last five checkpoints, each on its own start states), so the plain
and composed figures face the same episodes. The plain figures are read from the runs'
records; the composed ones are pooled the same way (IQM over seeds x blocks, 95%
intervals), beside the Random and Expert references of the same folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tyro

from agents.split_benchmark.config import REFERENCE_LABELS, REGIME_LABELS
from agents.split_benchmark.config import Args as SplitArgs
from benchmarks.report import RESULTS_DIR, load_result, markdown_table, write_result

NAME = "compose_pilot"
SPLIT = "hard"


@dataclass
class Args:
    out: Path = SplitArgs.out
    """The folder of ``vlgor bench splits`` runs (its ``--out``; default its default)."""
    env: str = "clevr"
    algo: str = "DiscreteBC"
    regimes: tuple[str, ...] = ("baseline", "vlgor-successes", "oracle")
    """Run folders under ``OUT/ENV/ALGO`` (``vlgor-successes``: +VLGOR with failures dropped)."""
    results: Path = RESULTS_DIR


def _record(folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / "benchmark_run.json").read_text())
    return record


def composed_blocks(run_dir: Path, episodes: int) -> list[dict[str, Any]]:
    """Hard-split blocks of ``episodes`` episodes of the run's last five checkpoints, the learner
    composed clause by clause."""
    import d3rlpy

    from agents import d3rlpy_policy, run_text_encoder
    from agents.compose import ClauseByClausePolicy
    from agents.split_benchmark.evaluation import LAST_CHECKPOINTS, evaluate_blocks

    checkpoints = sorted(run_dir.glob("model_*.d3"), key=lambda p: int(p.stem.removeprefix("model_")))
    text_encoder = run_text_encoder(run_dir)
    blocks = []
    for index in range(max(0, len(checkpoints) - LAST_CHECKPOINTS), len(checkpoints)):
        path = checkpoints[index]
        policy = ClauseByClausePolicy(d3rlpy_policy(d3rlpy.load_learnable(str(path)), text_encoder))
        step = int(path.stem.removeprefix("model_"))
        blocks.append(evaluate_blocks(policy, "clevr", [SPLIT], index, step, episodes)[SPLIT])
    return blocks


def measure(args: Args) -> dict[str, Any]:
    """Plain and composed hard-split cells of each regime, and the references'."""
    from agents.split_benchmark.evaluation import cell

    figures: dict[str, Any] = {"references": {}, "regimes": {}}
    for reference in ("random", "expert"):
        folders = sorted((args.out / args.env / "reference" / reference).glob("seed*"))
        figures["references"][reference] = cell([_record(f)["result"] for f in folders], SPLIT)
    for regime in args.regimes:
        started = time.perf_counter()
        folders = sorted((args.out / args.env / args.algo / regime).glob("seed*"))
        plain = [_record(f)["result"] for f in folders]
        composed = [
            {"blocks": {SPLIT: composed_blocks(f, run["blocks"][SPLIT][0]["episodes"])}}
            for f, run in zip(folders, plain, strict=True)
        ]
        figures["regimes"][regime] = {
            "plain": cell(plain, SPLIT),
            "composed": cell(composed, SPLIT),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{regime}: composed {figures['regimes'][regime]['composed']['iqm']:.1%}", flush=True)
    return figures


def _percent(cell: dict[str, Any]) -> str:
    low, high = cell["ci"]
    return f"{100 * cell['iqm']:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _row(cell: dict[str, Any], kinds: list[str]) -> list[str]:
    by_kind = cell["by_kind"]
    return [_percent(cell), *[f"{100 * by_kind[k]:.0f}" if k in by_kind else "" for k in kinds]]


def readme_table(record: dict[str, Any] | None = None) -> str:
    """Hard-split success per regime, plain and composed, with the references and goal kinds."""
    record = load_result(NAME) if record is None else record
    figures = record["figures"]
    references = figures["references"]
    regimes = [c for cells in figures["regimes"].values() for c in (cells["plain"], cells["composed"])]
    kinds = sorted({kind for c in (*references.values(), *regimes) for kind in c["by_kind"]})
    rows = [[REFERENCE_LABELS[name], *_row(references[name], kinds)] for name in ("random", "expert")]
    for regime in record["config"]["regimes"]:
        label = REGIME_LABELS.get(regime.removesuffix("-successes"), regime)
        cells = figures["regimes"][regime]
        rows += [[f"{label}, {how}", *_row(cells[how], kinds)] for how in ("plain", "composed")]
    note = (
        f"{record['config']['algo']} runs of the CLEVR split table on the hard split (plain: as the "
        "table evaluated them; composed: given one clause at a time by "
        "`agents.compose.ClauseByClausePolicy`), on the same episodes: IQM over seeds x the last "
        "five checkpoints, 95% intervals; per goal kind, success % over all those episodes. "
        f"`python -m benchmarks.compose_pilot`; revision {record['git_revision'][:7]}."
    )
    return markdown_table(["policy", "hard (%)", *kinds], rows) + "\n\n" + note + "\n"


def main(args: Args) -> None:
    path = write_result(NAME, args, measure(args), args.results)
    print(readme_table(json.loads(path.read_text())))


if __name__ == "__main__":
    main(tyro.cli(Args))
