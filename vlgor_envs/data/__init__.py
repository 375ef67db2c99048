"""Offline datasets: scripted-expert collection into Minari, listing and description."""

from vlgor_envs.data.collect import (
    ENVS,
    collect,
    datasets_root,
    default_dataset_id,
    describe,
    list_datasets,
)

__all__ = ["ENVS", "collect", "datasets_root", "default_dataset_id", "describe", "list_datasets"]
