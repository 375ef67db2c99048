"""Imagined datasets from counterfactual prompts (``vlgor imagine``)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch
import tyro

from vlgor_envs.clevr.expert import SteeringClevrExpert
from vlgor_envs.data import CollectConfig, collect
from vlgor_envs.data.d3rlpy_bridge import to_d3rlpy
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.env import ImaginedEnv, ImaginedVectorEnv, real_env_seed
from vlgor_envs.imagination.judges import ClevrJudge, ImaginedEpisode
from vlgor_envs.imagination.rollouts import (
    ImagineConfig,
    ImaginedMetadata,
    checkpoint_digest,
    imagine,
    imagine_command,
    imagined_dataset_id,
    imagined_prompts,
)
from vlgor_envs.language import clevr as clevr_language
from vlgor_envs.language import metaworld as metaworld_language
from vlgor_envs.language.goal import Goal

torch.set_num_threads(1)

ROLLOUTS = 4
MAX_STEPS = 4
TINY = {"num_envs": 2, "max_steps": MAX_STEPS, "progress": False}


def _episode_metadata(dataset: minari.MinariDataset) -> list[dict[str, Any]]:
    return list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))


def _staging_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith(".vlgor-staging-")]


@pytest.fixture(scope="module")
def counterfactual() -> minari.MinariDataset:
    return imagine(ImagineConfig("clevr", rollouts=ROLLOUTS, **TINY))


def test_counterfactual_dataset_records_prompts_and_provenance(counterfactual: minari.MinariDataset) -> None:
    assert counterfactual.id == "vlgor/clevr/imagined-counterfactual-v0"
    assert counterfactual.total_episodes == ROLLOUTS
    counterfactual_tasks = {(g.target, g.behavior) for g in clevr_language.split_goals("counterfactual")}
    edits = {
        "target": clevr_language.counterfactual_target,
        "behavior": clevr_language.counterfactual_behavior,
    }
    for k, meta in enumerate(_episode_metadata(counterfactual)):
        goal, source = Goal.from_json(meta["goal"]), Goal.from_json(meta["source_goal"])
        assert meta["rollout"] == k and meta["seed"] == k and meta["split"] == "counterfactual"
        assert meta["instruction"] == clevr_language.render(goal)
        assert (goal.target, goal.behavior) in counterfactual_tasks
        assert clevr_language.is_train_task(source) and source.template == goal.template
        assert goal in edits[meta["edit"]](source)
    ours = ImaginedMetadata.of(counterfactual.id)  # the typed record of metadata["vlgor"]
    assert dataclasses.asdict(ours) == counterfactual.storage.metadata["vlgor"]
    successes = [bool(m["success"]) for m in _episode_metadata(counterfactual)]
    assert ours.rollouts == ours.episodes == ROLLOUTS and ours.dropped == 0
    assert ours.imagined_success_rate == sum(successes) / ROLLOUTS
    assert ours.steps == counterfactual.total_steps
    assert ours.checkpoint_sha256 == checkpoint_digest(shipped_checkpoint("clevr"))
    assert ours.checkpoint == str(shipped_checkpoint("clevr")) and ours.checkpoint_shipped
    assert (ours.edits, ours.first_action, ours.flow_steps, ours.seed) == ("both", "expert", 2, 0)
    assert ours.temperature == 0.0 and ours.env_id == "VLGOR-Imagined-CLEVR"
    assert sum(ours.kept_edits.values()) == ROLLOUTS


def test_episodes_start_from_the_expert_first_action(
    counterfactual: minari.MinariDataset,
) -> None:
    for k, (episode, meta) in enumerate(
        zip(counterfactual.iterate_episodes(), _episode_metadata(counterfactual), strict=True)
    ):
        assert len(episode) <= MAX_STEPS
        assert episode.terminations[-1] or episode.truncations[-1]
        assert (
            bool(episode.terminations[-1]) == bool(meta["success"]) == bool(episode.infos["is_success"][-1])
        )
        assert set(episode.observations["instruction"]) == {meta["instruction"]}
        # a'_0 is the scripted expert's action at the same real start.
        real = gym.make("VLGOR-CLEVR-v0", split="counterfactual")
        observation, info = real.reset(seed=real_env_seed(k), options={"goal": Goal.from_json(meta["goal"])})
        real.close()
        assert np.array_equal(observation["image"], episode.observations["image"][0])
        assert episode.actions[0] == SteeringClevrExpert().act(info)


def test_later_actions_are_the_model_predictions() -> None:
    # One env at a time: batched model calls may round a pixel differently than single ones.
    dataset = imagine(
        ImagineConfig(
            "clevr", rollouts=1, num_envs=1, max_steps=3, dataset_id="vlgor/clevr/one-v0", progress=False
        )
    )
    episode, meta = dataset[0], _episode_metadata(dataset)[0]
    assert len(episode) > 1, "rollout 0 reached its goal at once: choose a seed whose rollout runs on"
    env = ImaginedEnv(split="counterfactual")
    observation, _ = env.reset(seed=0, options={"goal": Goal.from_json(meta["goal"])})
    assert np.array_equal(observation["image"], episode.observations["image"][0])
    for t in range(len(episode) - 1):
        observation, _, _, _, info = env.step(episode.actions[t])
        assert np.array_equal(observation["image"], episode.observations["image"][t + 1])
        assert info["imagined_action"] == episode.actions[t + 1]
    env.close()


def test_imagined_dataset_converts_to_d3rlpy(counterfactual: minari.MinariDataset) -> None:
    buffer = to_d3rlpy(counterfactual)
    assert buffer.transition_count == counterfactual.total_steps
    assert buffer.size() == ROLLOUTS


@pytest.mark.parametrize("edits", ["target", "behavior"])
def test_one_edit_type_only_edits_that_part_of_the_goal(edits: str) -> None:
    prompts = imagined_prompts("clevr", "counterfactual", 40, seed=3, edits=edits)
    for prompt in prompts:
        assert prompt.edit == edits and prompt.source is not None
        assert prompt.source.template == prompt.goal.template
        assert not clevr_language.is_train_task(prompt.goal)
        if edits == "target":
            assert prompt.goal.behavior == prompt.source.behavior
            assert prompt.goal.target != prompt.source.target
        else:
            assert prompt.goal.target == prompt.source.target
            assert prompt.goal.behavior != prompt.source.behavior


def test_both_edits_mix_target_and_behavior_edits() -> None:
    edits = [p.edit for p in imagined_prompts("clevr", "counterfactual", 40, seed=3)]
    assert set(edits) == {"target", "behavior"}


def test_target_ablation_writes_its_own_id_with_target_edits_only() -> None:
    dataset = imagine(ImagineConfig("clevr", rollouts=2, edits="target", **TINY))
    assert dataset.id == imagined_dataset_id("clevr", "counterfactual", "target")
    assert dataset.id == "vlgor/clevr/imagined-counterfactual-target-v0"
    assert {m["edit"] for m in _episode_metadata(dataset)} == {"target"}
    assert dataset.storage.metadata["vlgor"]["kept_edits"] == {"target": 2}


def test_rephrasing_and_hard_sample_their_split_without_edits() -> None:
    for env, language in (("clevr", clevr_language), ("metaworld", metaworld_language)):
        for split in ("rephrasing", "hard"):
            prompts = imagined_prompts(env, split, 10)
            goals = set(language.split_goals(split))
            assert all(p.goal in goals and p.edit == "none" and p.source is None for p in prompts)


@pytest.mark.parametrize(
    ("env", "split", "edits", "message"),
    [
        ("metaworld", "counterfactual", "target", "metaworld has no counterfactual target edits"),
        ("clevr", "rephrasing", "target", "counterfactual split only"),
        ("clevr", "hard", "behavior", "counterfactual split only"),
    ],
)
def test_edits_that_do_not_exist_are_refused(env: str, split: str, edits: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        imagine(ImagineConfig(env, split=split, rollouts=1, edits=edits, progress=False))


def test_metaworld_counterfactual_sources_are_train_tasks_of_the_same_target() -> None:
    for goal in metaworld_language.split_goals("counterfactual"):
        source = metaworld_language.train_source(goal)
        assert metaworld_language.task_of(source).split == "train"
        assert source.target == goal.target and source.behavior != goal.behavior


def test_metaworld_imagined_dataset() -> None:
    dataset = imagine(ImagineConfig("metaworld", rollouts=2, num_envs=2, max_steps=2, progress=False))
    assert dataset.id == "vlgor/metaworld/imagined-counterfactual-v0"
    for meta in _episode_metadata(dataset):
        goal, source = Goal.from_json(meta["goal"]), Goal.from_json(meta["source_goal"])
        assert meta["edit"] == "behavior" and metaworld_language.task_of(goal).split == "counterfactual"
        assert source == metaworld_language.train_source(goal)
    assert to_d3rlpy(dataset).transition_count == dataset.total_steps


def test_same_seed_gives_identical_rollouts() -> None:
    first = imagine(ImagineConfig("clevr", rollouts=3, seed=7, dataset_id="vlgor/clevr/seeded-a-v0", **TINY))
    second = imagine(ImagineConfig("clevr", rollouts=3, seed=7, dataset_id="vlgor/clevr/seeded-b-v0", **TINY))
    for a, b in zip(first.iterate_episodes(), second.iterate_episodes(), strict=True):
        assert np.array_equal(a.observations["image"], b.observations["image"])
        assert np.array_equal(a.actions, b.actions)
    assert _episode_metadata(first)[0]["goal"] == _episode_metadata(second)[0]["goal"]
    other = [p.goal for p in imagined_prompts("clevr", "counterfactual", 3, seed=8)]
    assert other != [Goal.from_json(m["goal"]) for m in _episode_metadata(first)]


def _judge_success_for(goals: set[Goal], monkeypatch: pytest.MonkeyPatch) -> None:
    """The imagined outcome satisfies exactly ``goals`` (the real env's predicate is untouched)."""
    original = ClevrJudge.score

    def score(self: ClevrJudge, episode: ImaginedEpisode, predicted: np.ndarray) -> tuple[float, bool]:
        reward, _ = original(self, episode, predicted)
        return reward, episode.goal in goals

    monkeypatch.setattr(ClevrJudge, "score", score)


def test_dropping_failures_keeps_only_rollouts_that_reached_their_goal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prompts = imagined_prompts("clevr", "counterfactual", ROLLOUTS, seed=11)
    winners = {prompts[1].goal, prompts[3].goal}
    expected = [k for k, p in enumerate(prompts) if p.goal in winners]
    _judge_success_for(winners, monkeypatch)
    dataset = imagine(
        ImagineConfig(
            "clevr", rollouts=ROLLOUTS, seed=11, drop_failures=True, dataset_id="vlgor/clevr/won-v0", **TINY
        )
    )
    metadata = _episode_metadata(dataset)
    assert [m["rollout"] for m in metadata] == expected
    assert all(m["success"] for m in metadata)
    for episode in dataset.iterate_episodes():
        assert len(episode) == 1 and episode.terminations[-1] and episode.infos["is_success"][-1]
    ours = dataset.storage.metadata["vlgor"]
    assert ours["episodes"] == dataset.total_episodes == len(expected)
    assert ours["dropped"] == ROLLOUTS - len(expected) and not ours["keep_failures"]
    assert ours["imagined_success_rate"] == len(expected) / ROLLOUTS
    assert ours["steps"] == dataset.total_steps == len(expected)
    assert to_d3rlpy(dataset).transition_count == len(expected)


def test_dropping_every_rollout_writes_nothing(minari_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _judge_success_for(set(), monkeypatch)
    with pytest.raises(RuntimeError, match="none of the 2 imagined rollouts reached its goal"):
        imagine(
            ImagineConfig("clevr", rollouts=2, drop_failures=True, dataset_id="vlgor/clevr/lost-v0", **TINY)
        )
    assert not (minari_root / "vlgor/clevr/lost-v0").exists()
    assert _staging_dirs(minari_root) == []


def test_existing_id_is_refused_and_an_interrupted_overwrite_keeps_it(
    counterfactual: minari.MinariDataset, minari_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_frame = counterfactual[0].observations["image"]
    with pytest.raises(FileExistsError, match="--overwrite"):
        imagine(ImagineConfig("clevr", rollouts=1, **TINY))
    calls = 0

    def failing_act(self: SteeringClevrExpert, info: dict[str, Any]) -> int:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise KeyboardInterrupt
        return 0

    monkeypatch.setattr(SteeringClevrExpert, "act", failing_act)
    with pytest.raises(KeyboardInterrupt):
        imagine(ImagineConfig("clevr", rollouts=3, overwrite=True, **TINY))
    kept = minari.load_dataset(counterfactual.id)
    assert kept.total_episodes == ROLLOUTS
    assert np.array_equal(kept[0].observations["image"], first_frame)
    assert _staging_dirs(minari_root) == []


def test_vector_env_partial_reset_gives_one_env_its_own_goal() -> None:
    vector = ImaginedVectorEnv(num_envs=2, split="counterfactual")
    goal = clevr_language.motion_goal("green", "left")
    with pytest.raises(RuntimeError, match="reset every env once"):
        vector.reset(options={"reset_mask": np.array([False, True])})
    before, _ = vector.reset(seed=0)
    after, info = vector.reset(seed=[None, 5], options={"reset_mask": np.array([False, True]), "goal": goal})
    assert np.array_equal(after["image"][0], before["image"][0])
    assert after["instruction"][0] == before["instruction"][0]
    assert info["_goal"].tolist() == [False, True] and info["goal"][1] == goal
    single = ImaginedEnv(split="counterfactual")
    observation, _ = single.reset(seed=5, options={"goal": goal})
    assert np.array_equal(after["image"][1], observation["image"])
    assert after["instruction"][1] == observation["instruction"] == clevr_language.render(goal)
    with pytest.raises(ValueError, match="reset_mask"):
        vector.reset(options={"reset_mask": np.array([False, False])})
    vector.close()
    single.close()


def test_cli_writes_a_dataset_and_refuses_to_overwrite(minari_root: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys, torch, tyro; torch.set_num_threads(1); "
        "from vlgor_envs.imagination.rollouts import imagine_command; "
        "tyro.cli(imagine_command, args=sys.argv[1:])",
        *("--env", "clevr", "--rollouts", "2", "--num-envs", "2", "--max-steps", "2"),
        *("--edits", "behavior", "--seed", "4"),
    ]
    environment = {**os.environ, "MINARI_DATASETS_PATH": str(minari_root), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    written = (
        r"wrote vlgor/clevr/imagined-counterfactual-behavior-v0: 2 episodes, \d+ steps, imagined success"
    )
    assert re.search(written, done.stdout), done.stdout
    dataset = minari.load_dataset("vlgor/clevr/imagined-counterfactual-behavior-v0")
    assert {m["edit"] for m in _episode_metadata(dataset)} == {"behavior"}
    assert dataset.storage.metadata["vlgor"]["seed"] == 4
    # Run again, it refuses (in this process: a second start costs 10 s of imports).
    with pytest.raises(FileExistsError, match="--overwrite"):
        tyro.cli(imagine_command, args=command[3:])


def test_a_real_dataset_has_no_imagined_record() -> None:
    real = collect(
        CollectConfig("clevr", episodes=1, dataset_id="vlgor/clevr/not-imagined-v0", progress=False)
    )
    with pytest.raises(ValueError, match="not-imagined-v0 is not an imagined vlgor dataset"):
        ImaginedMetadata.of(real)
