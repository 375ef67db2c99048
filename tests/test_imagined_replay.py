"""Replaying imagined rollouts in the real env (benchmarks/imagined_replay.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from benchmarks.imagined_replay import Replayed, replay_actions, replay_dataset, summarise
from vlgor_envs.clevr.env import N_ACTIONS
from vlgor_envs.data.collect import CollectConfig, collect, make_expert
from vlgor_envs.imagination.env import ImaginedEnv, real_env_seed
from vlgor_envs.imagination.rollouts import ImagineConfig, imagine
from vlgor_envs.language import clevr as clevr_language


def test_replay_starts_where_the_imagined_env_did() -> None:
    goal = clevr_language.split_goals("counterfactual")[0]
    imagined = ImaginedEnv(split="counterfactual")
    observation, _ = imagined.reset(seed=3, options={"goal": goal})
    imagined.close()
    real = gym.make("VLGOR-CLEVR-v0", split="counterfactual")
    start, success, agrees = replay_actions(real, 3, goal, [])
    real.close()
    assert np.array_equal(start, observation["image"])
    assert not success and agrees == []


def test_expert_actions_replay_as_a_success_and_one_push_short_as_a_failure() -> None:
    goal = clevr_language.split_goals("counterfactual")[0]
    real = gym.make("VLGOR-CLEVR-v0", split="counterfactual")
    _, info = real.reset(seed=real_env_seed(5), options={"goal": goal})
    expert, actions = make_expert("clevr"), []  # the one the replay compares with
    for _ in range(50):
        actions.append(expert.act(info))
        _, _, terminated, _, info = real.step(actions[-1])
        if terminated:
            break
    assert terminated, "the expert should solve this counterfactual goal within 50 pushes"
    _, success, agrees = replay_actions(real, 5, goal, actions)
    assert success and agrees == [True] * len(actions)
    assert not replay_actions(real, 5, goal, actions[:-1])[1]
    wrong_first = [(actions[0] + 1) % N_ACTIONS, *actions]  # one other push first: the expert disagrees
    assert replay_actions(real, 5, goal, wrong_first)[2][0] is False
    real.close()


def test_an_imagined_dataset_replays_episode_by_episode() -> None:
    dataset = imagine(ImagineConfig("clevr", rollouts=3, num_envs=3, max_steps=3, progress=False))
    replayed = replay_dataset(dataset.id, progress=False)
    episodes = list(dataset.iterate_episodes())
    assert [r.steps for r in replayed] == [len(e.actions) for e in episodes]
    assert [r.imagined_success for r in replayed] == [bool(e.terminations[-1]) for e in episodes]
    assert {r.kind for r in replayed} <= {"motion", "relation"}


def test_a_dataset_that_did_not_start_from_its_seeds_is_refused() -> None:
    # Collected episodes are reset with their seed but no goal, so their starts differ.
    dataset = collect(
        CollectConfig("clevr", episodes=2, seed=0, dataset_id="vlgor/clevr/replay-real-v0", progress=False)
    )
    with pytest.raises(ValueError, match="does not start where the real env does"):
        replay_dataset(dataset.id, progress=False)


def test_summary_counts_real_successes_by_kind_and_length() -> None:
    replayed = [
        Replayed("motion", 2, True, True, (True, False)),
        Replayed("motion", 5, True, False, (True, True, True, False, False)),
        Replayed("relation", 9, True, False),
        Replayed("relation", 50, False, True),
    ]
    summary = summarise(replayed)
    assert summary["episodes"] == 4
    assert summary["imagined_successes"] == 3
    assert summary["real_of_imagined_successes"] == pytest.approx(1 / 3)
    assert summary["real_steps_of_imagined_successes"] == pytest.approx(2 / 16)
    assert summary["real_of_imagined_failures"] == 1.0
    assert summary["expert_agreement_after_first"] == pytest.approx(2 / 5)  # the first ones skipped
    assert summary["by_kind"]["motion"]["real_of_imagined_successes"] == 0.5
    assert summary["by_kind"]["relation"]["imagined_successes"] == 1
    assert summary["by_steps"]["1-3"]["real_of_imagined_successes"] == 1.0
    assert summary["by_steps"]["4-6"]["real_of_imagined_successes"] == 0.0
    assert summary["by_steps"]["7-50"]["episodes"] == 2
