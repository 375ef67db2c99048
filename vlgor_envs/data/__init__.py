"""Offline datasets: scripted-expert collection into Minari, and loading into d3rlpy."""

from vlgor_envs.data.collect import (
    ENVS,
    collect,
    datasets_root,
    default_dataset_id,
    describe,
    list_datasets,
)
from vlgor_envs.data.d3rlpy_bridge import MixedDataset, batch_counts, mix_datasets, to_d3rlpy

__all__ = [
    "ENVS",
    "MixedDataset",
    "batch_counts",
    "collect",
    "datasets_root",
    "default_dataset_id",
    "describe",
    "list_datasets",
    "mix_datasets",
    "to_d3rlpy",
]
