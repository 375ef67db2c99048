"""The features of the next-action predictability benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import minari
import numpy as np

from benchmarks.next_action_predictability import transitions
from vlgor_envs.data.collect import CollectConfig, collect
from vlgor_envs.language.clevr import COLOURS, RELATIONS


def test_transitions_pair_each_push_with_the_next_and_the_goal(minari_root: Path) -> None:
    dataset_id = "vlgor/clevr/predictability-v0"
    collect(CollectConfig("clevr", episodes=4, seed=0, dataset_id=dataset_id, progress=False))
    features, current, following = transitions(dataset_id)
    dataset = minari.load_dataset(dataset_id)
    episodes = list(dataset.iterate_episodes())
    assert len(following) == sum(len(e.actions) - 1 for e in episodes)
    first = episodes[0]
    actions = np.asarray(first.actions)
    steps = len(actions) - 1
    assert steps > 0
    np.testing.assert_array_equal(current[:steps], actions[:-1])
    np.testing.assert_array_equal(following[:steps], actions[1:])
    goal = json.loads(str(next(iter(dataset.storage.get_episode_metadata([0])))["goal"]))
    target, behaviour, anchor, _ = features[0, -4:]
    assert target == COLOURS.index(goal["target"])
    kind, _, argument = goal["behavior"].partition(":")
    if kind in RELATIONS:
        assert behaviour == RELATIONS.index(kind)
        assert anchor == COLOURS.index(argument)
