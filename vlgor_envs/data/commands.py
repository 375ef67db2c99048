"""``vlgor collect`` and ``vlgor datasets list|show``: thin tyro front ends of :mod:`.collect`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated

import tyro

from vlgor_envs.data.collect import CollectConfig, collect, describe, list_datasets
from vlgor_envs.data.staging import report_recovery


def collect_command(config: tyro.conf.OmitArgPrefixes[CollectConfig]) -> None:
    """Roll a scripted expert out and write a Minari dataset (lossless images, atomic write)."""
    dataset = collect(config)
    summary = describe(dataset.id)
    print(
        f"wrote {summary['dataset_id']}: {summary['episodes']} episodes, {summary['steps']} steps, "
        f"{summary['successes']} successes, {summary['bytes'] / 1e6:.1f} MB at {summary['path']}"
    )


@dataclass(frozen=True)
class ListDatasets:
    """List the vlgor Minari datasets present locally."""


@dataclass(frozen=True)
class ShowDataset:
    """Print a summary of one local dataset as JSON."""

    dataset_id: tyro.conf.Positional[str]
    """Minari id, e.g. `vlgor/clevr/real-train-v0`."""


def datasets_command(
    action: tyro.conf.OmitSubcommandPrefixes[
        Annotated[ListDatasets, tyro.conf.subcommand("list")]
        | Annotated[ShowDataset, tyro.conf.subcommand("show")]
    ],
) -> None:
    """List local vlgor datasets, or show one (`vlgor datasets show ID`).

    To share one, use Minari's CLI with a remote: `MINARI_REMOTE=hf://your-org minari upload ID
    --key-path token.txt`, and `MINARI_REMOTE=hf://your-org minari download ID` elsewhere."""
    if isinstance(action, ShowDataset):
        print(json.dumps(describe(action.dataset_id), indent=2))
        return
    report_recovery()
    ids = list_datasets()
    if not ids:
        print("no vlgor datasets here; make one with `vlgor collect --env clevr`")
    for dataset_id in ids:
        summary = describe(dataset_id)
        size = summary["bytes"] / 1e6
        print(f"{dataset_id}  {summary['episodes']} episodes  {summary['steps']} steps  {size:.1f} MB")
