"""One vlgor dataset from several, with everything that makes them vlgor datasets kept.

``minari.combine_datasets`` joins the episodes but drops each episode's metadata (its
instruction, split and goal) and the datasets' own metadata, and (Minari 0.5.4) stores the
images JPEG-encoded, lossy; :func:`combine` joins them as Minari does but keeps the images as
the sources stored them, and puts the metadata back: the episodes' metadata in order, the
shared ``metadata["vlgor_format"]``, and a ``metadata["vlgor"]`` record of what was combined.
The result is written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import minari
from minari.dataset.minari_storage import MinariStorage
from minari.utils import validate_datasets_to_combine

from vlgor_envs.data.collect import repack_hdf5
from vlgor_envs.data.sharing import FORMAT_KEY
from vlgor_envs.data.staging import staged_dataset


def _shared_format(datasets: Sequence[minari.MinariDataset]) -> dict[str, Any] | None:
    formats = [dataset.storage.metadata.get(FORMAT_KEY) for dataset in datasets]
    if any(found != formats[0] for found in formats):
        ids = [dataset.id for dataset in datasets]
        raise ValueError(
            f"cannot combine {ids}: they hold different kinds of episodes ({FORMAT_KEY} differs)"
        )
    return formats[0]


def _combined_episodes(
    datasets: Sequence[minari.MinariDataset], folder: Path, new_id: str
) -> minari.MinariDataset:
    """``minari.combine_datasets``, storing images as the sources do: Minari 0.5.4's own
    JPEG-encodes them (lossy) whatever the sources did."""
    env_spec = validate_datasets_to_combine(list(datasets))
    (folder / "data").mkdir(parents=True)
    storage = MinariStorage.new(
        folder / "data",
        observation_space=datasets[0].observation_space,
        action_space=datasets[0].action_space,
        env_spec=env_spec,
        data_format=datasets[0].storage.FORMAT,
        jpeg_encoding=bool(datasets[0].storage.metadata.get("jpeg_encoding", False)),
    )
    storage.update_metadata(
        {
            "dataset_id": new_id,
            "combined_datasets": [d.id for d in datasets],
            "minari_version": minari.__version__,
        }
    )
    for dataset in datasets:
        storage.update_from_storage(dataset.storage)
    return minari.MinariDataset(storage)


def combine(dataset_ids: Sequence[str], new_id: str, overwrite: bool = False) -> minari.MinariDataset:
    """The datasets ``dataset_ids`` (of one env and kind) as one new dataset ``new_id``, in order.

    Raises:
        ValueError: Fewer than two ids, or datasets of different envs or kinds.
        FileNotFoundError: A dataset is missing. FileExistsError: ``new_id`` exists (and not
            ``overwrite``).
    """
    if len(dataset_ids) < 2:
        raise ValueError(f"combine needs at least two datasets, got {list(dataset_ids)}")
    datasets = [minari.load_dataset(dataset_id) for dataset_id in dataset_ids]
    with staged_dataset(new_id, overwrite, command="combine") as staging:
        combined = write_combined(datasets, staging / new_id, new_id)
        record = {"combined_from": list(dataset_ids), "episodes": combined.total_episodes}
        combined.storage.update_metadata({"vlgor": record})
    return minari.load_dataset(new_id)


def write_combined(
    datasets: Sequence[minari.MinariDataset], folder: Path, new_id: str
) -> minari.MinariDataset:
    """``datasets``' episodes, in order, as the dataset ``new_id`` in ``folder``: their images as
    stored, their episodes' metadata and their shared ``metadata["vlgor_format"]``."""
    shared = _shared_format(datasets)
    episodes = [
        {key: value for key, value in meta.items() if key != "id"}  # Minari numbers them anew
        for dataset in datasets
        for meta in dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    ]
    combined = _combined_episodes(datasets, folder, new_id)
    for path in (folder / "data").glob("*.hdf5"):
        repack_hdf5(path, "gzip")  # Minari writes the combination uncompressed
    combined.storage.update_episode_metadata(episodes)
    if shared:
        combined.storage.update_metadata({FORMAT_KEY: shared})
    return combined
