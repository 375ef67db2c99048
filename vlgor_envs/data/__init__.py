"""Offline datasets: scripted-expert collection into Minari.

Loading into d3rlpy is :mod:`vlgor_envs.data.d3rlpy_bridge`, kept out of this package's import:
it loads torch and d3rlpy, which collecting does not need.
"""

from vlgor_envs.data.collect import (
    CollectConfig,
    collect,
    datasets_root,
    default_dataset_id,
    describe,
    list_datasets,
)

__all__ = [
    "CollectConfig",
    "collect",
    "datasets_root",
    "default_dataset_id",
    "describe",
    "list_datasets",
]
