"""Datasets shared through Minari: namespaces and metadata that explain them to Minari alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import minari
import numpy as np
import pytest
from minari.namespace import get_namespace_metadata

from vlgor_envs.data.collect import CollectConfig, collect
from vlgor_envs.data.combine import combine
from vlgor_envs.data.sharing import FORMAT_KEY, format_metadata, namespace_metadata
from vlgor_envs.data.staging import datasets_root
from vlgor_envs.imagination.rollouts import ImagineConfig, ImaginedMetadata, imagine

# Run where vlgor is neither imported nor importable from the working directory.
_LOAD_WITHOUT_VLGOR = """
import json, sys, minari
from minari.namespace import get_namespace_metadata
dataset = minari.load_dataset(sys.argv[1])
episodes = list(dataset.iterate_episodes())
print(json.dumps({
    "vlgor_imported": sorted(m for m in sys.modules if m.startswith(("vlgor_envs", "agents"))),
    "images": [list(e.observations["image"].shape) for e in episodes],
    "texts": [e.observations["instruction"][0] for e in episodes],
    "metadata": list(dataset.storage.get_episode_metadata(range(dataset.total_episodes))),
    "format": dataset.storage.metadata.get("vlgor_format"),
    "record": dataset.storage.metadata.get("vlgor"),
    "namespaces": [get_namespace_metadata("vlgor"), get_namespace_metadata("vlgor/clevr")],
}, default=str))
"""


def _load_elsewhere(dataset_id: str, tmp_path: Path) -> dict[str, Any]:
    """What a process without vlgor reads of ``dataset_id`` from a copy of our namespace folder
    in a fresh Minari root (what a download makes on another machine)."""
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(datasets_root() / "vlgor", elsewhere / "vlgor")
    environment = {**os.environ, "MINARI_DATASETS_PATH": str(elsewhere)}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_WITHOUT_VLGOR, dataset_id],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=environment,
    )
    found: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_namespaces_carry_their_metadata(minari_root: Path) -> None:
    collect(CollectConfig("clevr", episodes=1, seed=0, dataset_id="vlgor/clevr/ns-v0", progress=False))
    root, env = get_namespace_metadata("vlgor"), get_namespace_metadata("vlgor/clevr")
    assert root == namespace_metadata("vlgor") and "arXiv:2603.22892" in root["paper"]
    assert set(root["splits"]) == {"train", "rephrasing", "counterfactual", "hard"}
    assert env["env_id"] == "VLGOR-CLEVR-v0" and env["imagined_env_id"] == "VLGOR-Imagined-CLEVR"
    assert namespace_metadata("someone-else") == {}


def test_a_combined_dataset_loads_with_minari_alone_elsewhere(minari_root: Path, tmp_path: Path) -> None:
    ids = ["vlgor/clevr/share-a-v0", "vlgor/clevr/share-b-v0"]
    parts = [
        collect(CollectConfig("clevr", episodes=2, seed=0, dataset_id=ids[0], progress=False)),
        collect(CollectConfig("clevr", episodes=1, seed=7, dataset_id=ids[1], progress=False)),
    ]
    combined = combine(ids, "vlgor/clevr/share-both-v0")
    assert combined.storage.metadata["vlgor"]["combined_from"] == ids
    found = _load_elsewhere("vlgor/clevr/share-both-v0", tmp_path)
    assert found["vlgor_imported"] == []
    sources = [m for part in parts for m in part.storage.get_episode_metadata(range(part.total_episodes))]
    assert [m["instruction"] for m in found["metadata"]] == [m["instruction"] for m in sources]
    assert [m["goal"] for m in found["metadata"]] == [m["goal"] for m in sources]
    assert found["texts"] == [m["instruction"] for m in sources]
    steps = [len(e.actions) + 1 for part in parts for e in part.iterate_episodes()]
    assert found["images"] == [[n, 64, 64, 3] for n in steps]
    assert found["format"] == json.loads(json.dumps(format_metadata("clevr", imagined=False)))
    assert found["namespaces"][0]["paper"] == namespace_metadata("vlgor")["paper"]
    first = next(combined.iterate_episodes([0])).observations["image"]
    np.testing.assert_array_equal(first, next(parts[0].iterate_episodes([0])).observations["image"])


def test_an_imagined_dataset_explains_itself_to_minari_alone(minari_root: Path, tmp_path: Path) -> None:
    config = ImagineConfig(
        "clevr",
        rollouts=2,
        num_envs=2,
        max_steps=3,
        dataset_id="vlgor/clevr/share-imagined-v0",
        progress=False,
    )
    dataset = imagine(config)
    found = _load_elsewhere(config.dataset_id or "", tmp_path)
    assert found["vlgor_imported"] == []
    episodes = list(dataset.iterate_episodes())
    assert found["images"] == [list(e.observations["image"].shape) for e in episodes]
    assert found["texts"] == [e.observations["instruction"][0] for e in episodes]
    assert [m["edit"] for m in found["metadata"]] == [
        m["edit"] for m in dataset.storage.get_episode_metadata(range(dataset.total_episodes))
    ]
    assert found["format"] == json.loads(json.dumps(format_metadata("clevr", imagined=True)))
    record = ImaginedMetadata.of(dataset)
    assert found["record"]["checkpoint_sha256"] == record.checkpoint_sha256 is not None
    assert found["record"]["imagined_success_rate"] == record.imagined_success_rate


def test_only_datasets_of_one_kind_combine(minari_root: Path) -> None:
    with pytest.raises(ValueError, match="at least two"):
        combine(["vlgor/clevr/share-a-v0"], "vlgor/clevr/share-one-v0")
    clevr = collect(
        CollectConfig("clevr", episodes=1, seed=0, dataset_id="vlgor/clevr/kind-a-v0", progress=False)
    )
    clevr.storage.update_metadata({FORMAT_KEY: format_metadata("clevr", imagined=True)})
    collect(CollectConfig("clevr", episodes=1, seed=1, dataset_id="vlgor/clevr/kind-b-v0", progress=False))
    with pytest.raises(ValueError, match="different kinds of episodes"):
        combine(["vlgor/clevr/kind-a-v0", "vlgor/clevr/kind-b-v0"], "vlgor/clevr/kind-both-v0")
    assert "vlgor/clevr/kind-both-v0" not in minari.list_local_datasets()
