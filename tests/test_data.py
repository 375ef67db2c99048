"""Collection into Minari: exact round trip, Minari's API, metadata, atomic writes, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import minari
import numpy as np
import pytest
import tyro

from vlgor_envs.clevr.expert import SteeringClevrExpert
from vlgor_envs.data import CollectConfig, collect, describe, list_datasets, staging
from vlgor_envs.data.commands import collect_command, datasets_command
from vlgor_envs.language.goal import Goal

SEED = 11
EPISODES = 3
CLEVR_ID = "vlgor/clevr/real-train-v0"


@pytest.fixture(scope="module")
def clevr_dataset(minari_root: Path) -> minari.MinariDataset:
    return collect(CollectConfig("clevr", "train", EPISODES, SEED, progress=False))


@pytest.fixture(scope="module")
def clevr_runs(minari_root: Path) -> list[dict[str, Any]]:
    return _rollout(EPISODES, SEED, noise=0.0)


def _rollout(episodes: int, seed: int, noise: float) -> list[dict[str, Any]]:
    """An independent re-run of the documented collection loop (expert + seeded noise)."""
    env = gym.make("VLGOR-CLEVR-v0", split="train", image_size=64)
    expert, rng = SteeringClevrExpert(), np.random.default_rng(seed)
    runs = []
    try:
        for i in range(episodes):
            observation, info = env.reset(seed=seed + i)
            run: dict[str, Any] = {
                "images": [observation["image"]],
                "instructions": [observation["instruction"]],
                "goal": info["goal"],
                "actions": [],
                "rewards": [],
                "terminations": [],
                "truncations": [],
            }
            terminated = truncated = False
            while not (terminated or truncated):
                action = int(rng.integers(40)) if rng.random() < noise else expert.act(info)
                observation, reward, terminated, truncated, info = env.step(action)
                run["images"].append(observation["image"])
                run["instructions"].append(observation["instruction"])
                for key, value in zip(
                    ("actions", "rewards", "terminations", "truncations"),
                    (action, reward, terminated, truncated),
                    strict=True,
                ):
                    run[key].append(value)
            runs.append(run)
    finally:
        env.close()
    return runs


def _assert_equal(dataset: minari.MinariDataset, runs: list[dict[str, Any]]) -> None:
    episodes = list(dataset.iterate_episodes())
    assert len(episodes) == len(runs)
    for episode, run in zip(episodes, runs, strict=True):
        images = episode.observations["image"]
        assert images.dtype == np.uint8 and images.shape == (len(run["images"]), 64, 64, 3)
        np.testing.assert_array_equal(images, np.stack(run["images"]))
        assert images.min() != images.max()  # not a blank EGL frame
        assert list(episode.observations["instruction"]) == run["instructions"]
        np.testing.assert_array_equal(episode.actions, run["actions"])
        np.testing.assert_array_equal(episode.rewards, run["rewards"])
        np.testing.assert_array_equal(episode.terminations, run["terminations"])
        np.testing.assert_array_equal(episode.truncations, run["truncations"])


def test_read_back_equals_independent_rollout(
    clevr_dataset: minari.MinariDataset, clevr_runs: list[dict[str, Any]]
) -> None:
    _assert_equal(clevr_dataset, clevr_runs)


def test_noisy_collection_reproduces_seeded_noise() -> None:
    dataset = collect(
        CollectConfig("clevr", "train", 2, 5, noise=0.5, dataset_id="vlgor/clevr/noisy-v0", progress=False)
    )
    _assert_equal(dataset, _rollout(2, 5, noise=0.5))
    assert describe("vlgor/clevr/noisy-v0")["noise"] == 0.5


@pytest.mark.parametrize("compression", ["none", "lzf"])
def test_other_compressions_read_back_equal(
    compression: Literal["none", "lzf"], clevr_runs: list[dict[str, Any]]
) -> None:
    dataset_id = f"vlgor/clevr/compression-{compression}-v0"
    dataset = collect(
        CollectConfig(
            "clevr", "train", 1, SEED, dataset_id=dataset_id, compression=compression, progress=False
        )
    )
    _assert_equal(dataset, clevr_runs[:1])
    assert describe(dataset_id)["compression"] == (None if compression == "none" else compression)


def test_minari_api(clevr_dataset: minari.MinariDataset) -> None:
    dataset = minari.load_dataset(CLEVR_ID)
    assert dataset.total_episodes == EPISODES
    lengths = [len(e) for e in dataset.iterate_episodes()]
    assert dataset.total_steps == sum(lengths)
    sampled = dataset.sample_episodes(2)
    assert len(sampled) == 2
    assert all(e.observations["image"].shape[0] == len(e) + 1 for e in sampled)
    assert dataset.spec.env_spec is not None and dataset.spec.env_spec.id == "VLGOR-CLEVR-v0"
    assert CLEVR_ID in minari.list_local_datasets()


def test_episode_metadata(clevr_dataset: minari.MinariDataset, clevr_runs: list[dict[str, Any]]) -> None:
    metadata = list(clevr_dataset.storage.get_episode_metadata(range(EPISODES)))
    for i, (meta, run) in enumerate(zip(metadata, clevr_runs, strict=True)):
        assert meta["instruction"] == run["instructions"][0]
        assert meta["split"] == "train"
        assert Goal.from_json(meta["goal"]) == run["goal"]
        assert meta["seed"] == SEED + i
        assert meta["success"] == bool(run["terminations"][-1])


def test_dataset_metadata_and_describe(clevr_dataset: minari.MinariDataset) -> None:
    ours = clevr_dataset.storage.metadata["vlgor"]
    assert ours["policy"] == "SteeringClevrExpert" and ours["seed"] == SEED and ours["noise"] == 0.0
    assert ours["episodes"] == EPISODES and ours["steps"] == clevr_dataset.total_steps
    assert "SteeringClevrExpert" in clevr_dataset.storage.metadata["algorithm_name"]
    summary = describe(CLEVR_ID)
    assert summary["episodes"] == EPISODES and summary["steps"] == clevr_dataset.total_steps
    assert summary["env_id"] == "VLGOR-CLEVR-v0" and summary["split"] == "train"
    assert summary["data_format"] == "hdf5" and summary["jpeg_encoding"] is False
    assert summary["compression"] == "gzip"
    # gzip'd frames take well under their raw size.
    assert summary["bytes"] < (summary["steps"] + EPISODES) * 64 * 64 * 3
    assert CLEVR_ID in list_datasets()


def test_recover_environment(clevr_dataset: minari.MinariDataset) -> None:
    for eval_env in (False, True):
        env = clevr_dataset.recover_environment(eval_env=eval_env)
        try:
            observation, _ = env.reset(seed=0)
            assert observation["image"].shape == (64, 64, 3)
            _, _, _, _, info = env.step(env.action_space.sample())
            assert "is_success" in info
        finally:
            env.close()


def test_existing_id_errors_unless_overwrite(tmp_path: Path) -> None:
    dataset_id = "vlgor/clevr/exists-v0"
    collect(CollectConfig("clevr", episodes=1, seed=0, dataset_id=dataset_id, progress=False))
    with pytest.raises(FileExistsError, match=r"exists-v0.*overwrite=True"):
        collect(CollectConfig("clevr", episodes=1, seed=1, dataset_id=dataset_id, progress=False))
    replaced = collect(
        CollectConfig("clevr", episodes=2, seed=1, dataset_id=dataset_id, overwrite=True, progress=False)
    )
    assert replaced.total_episodes == 2 and describe(dataset_id)["seed"] == 1


def _staging_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith(".vlgor-staging-") or p.name.startswith("tmp")]


def _fail_after(calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    original = SteeringClevrExpert.act
    count = {"n": 0}

    def act(self: SteeringClevrExpert, info: dict[str, Any]) -> int:
        count["n"] += 1
        if count["n"] > calls:
            raise RuntimeError("injected failure")
        return original(self, info)

    monkeypatch.setattr(SteeringClevrExpert, "act", act)


def test_interrupted_collection_leaves_nothing(minari_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_after(12, monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        collect(
            CollectConfig("clevr", episodes=5, seed=0, dataset_id="vlgor/clevr/broken-v0", progress=False)
        )
    assert not (minari_root / "vlgor/clevr/broken-v0").exists()
    assert "vlgor/clevr/broken-v0" not in list_datasets()
    assert _staging_dirs(minari_root) == []


def test_interrupted_overwrite_keeps_old_dataset(minari_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset_id = "vlgor/clevr/kept-v0"
    collect(CollectConfig("clevr", episodes=1, seed=3, dataset_id=dataset_id, progress=False))
    _fail_after(3, monkeypatch)
    with pytest.raises(RuntimeError, match="injected"):
        collect(
            CollectConfig("clevr", episodes=4, seed=0, dataset_id=dataset_id, overwrite=True, progress=False)
        )
    assert describe(dataset_id)["seed"] == 3 and describe(dataset_id)["episodes"] == 1
    assert _staging_dirs(minari_root) == []


def test_a_namespace_made_meanwhile_by_another_writer_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    staging.create_namespace("race/made")  # by a writer beside this one, after our check
    checks = iter([[], ["race/made"]])
    monkeypatch.setattr(staging, "list_local_namespaces", lambda: next(checks))
    staging._ensure_namespace("race/made")  # no "already exists"
    monkeypatch.setattr(staging, "list_local_namespaces", lambda: [])
    with pytest.raises(ValueError, match="already exists"):  # a failure that is not that race
        staging._ensure_namespace("race/made")


def test_a_second_writer_of_an_id_fails_before_it_starts(minari_root: Path) -> None:
    dataset_id = "vlgor/clevr/contested-v0"
    with staging.writer_lock(minari_root, dataset_id, "imagine"):
        with pytest.raises(FileExistsError, match=rf"being written by `vlgor imagine` \(pid {os.getpid()}"):
            collect(CollectConfig("clevr", episodes=1, seed=0, dataset_id=dataset_id, progress=False))
        with staging.writer_lock(minari_root, "vlgor/clevr/other-v0", "collect"):
            pass  # another id is free
    # Released, also by a process that dies: the lock is an flock the OS drops.
    collect(CollectConfig("clevr", episodes=1, seed=0, dataset_id=dataset_id, progress=False))
    assert describe(dataset_id)["episodes"] == 1


def test_a_hard_kill_between_the_overwrite_renames_restores_the_old_dataset(minari_root: Path) -> None:
    dataset_id = "vlgor/clevr/renamed-v0"
    collect(CollectConfig("clevr", episodes=1, seed=3, dataset_id=dataset_id, progress=False))
    # A writer killed by SIGKILL right after it moved the old dataset aside.
    program = (
        "import os, signal, pathlib\n"
        "from vlgor_envs.data import CollectConfig, collect\n"
        "rename = pathlib.Path.rename\n"
        "def rename_then_die(self, target):\n"
        "    moved = rename(self, target)\n"
        "    if pathlib.Path(target).name == 'replaced': os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return moved\n"
        "pathlib.Path.rename = rename_then_die\n"
        f"config = CollectConfig('clevr', episodes=2, seed=5, dataset_id={dataset_id!r}, overwrite=True)\n"
        "collect(config)\n"
    )
    killed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (minari_root / dataset_id).exists() and len(_staging_dirs(minari_root)) == 1
    done = staging.recover_interrupted_writes(minari_root)
    assert done[0] == f"restored {dataset_id!r}: a replacement of it was killed before the new data landed"
    assert done[1].startswith("removed .vlgor-staging-vlgor%2Fclevr%2Frenamed-v0-")
    assert done[1].endswith("left by an interrupted write of 'vlgor/clevr/renamed-v0'")
    assert describe(dataset_id)["seed"] == 3 and _staging_dirs(minari_root) == []
    assert staging.recover_interrupted_writes(minari_root) == []


def test_unknown_env_and_id() -> None:
    with pytest.raises(ValueError, match=r"unknown env 'atari'.*clevr.*metaworld"):
        collect(CollectConfig("atari", episodes=1, seed=0))
    with pytest.raises(FileNotFoundError, match=r"no dataset 'vlgor/clevr/missing-v0'"):
        describe("vlgor/clevr/missing-v0")
    with pytest.raises(ValueError, match="compression"):
        collect(CollectConfig("clevr", episodes=1, seed=0, compression="zstd"))
    with pytest.raises(ValueError, match="task="):
        collect(CollectConfig("clevr", episodes=1, seed=0, task="reach"))


def test_metaworld_collection() -> None:
    dataset = collect(CollectConfig("metaworld", "train", 1, 0, task="reach", progress=False))
    assert dataset.id == "vlgor/metaworld/real-train-reach-v0"
    (episode,) = list(dataset.iterate_episodes())
    assert episode.actions.shape == (len(episode), 4) and episode.actions.dtype == np.float32
    assert episode.observations["image"].shape == (len(episode) + 1, 64, 64, 3)
    (meta,) = dataset.storage.get_episode_metadata([0])
    assert Goal.from_json(meta["goal"]).behavior.startswith("reach")
    assert meta["instruction"] == episode.observations["instruction"][0]
    env = dataset.recover_environment()
    try:
        assert env.spec is not None and env.spec.kwargs["task"] == "reach"
    finally:
        env.close()


def test_cli_commands(minari_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    commands: dict[str, Callable[..., None]] = {"collect": collect_command, "datasets": datasets_command}
    args = ["collect", "--env", "clevr", "--episodes", "1", "--dataset-id", "vlgor/clevr/cli-v0"]
    tyro.extras.subcommand_cli_from_dict(commands, args=args)
    assert "wrote vlgor/clevr/cli-v0" in capsys.readouterr().out
    tyro.extras.subcommand_cli_from_dict(commands, args=["datasets", "list"])
    assert "vlgor/clevr/cli-v0" in capsys.readouterr().out
    tyro.extras.subcommand_cli_from_dict(commands, args=["datasets", "show", "vlgor/clevr/cli-v0"])
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
