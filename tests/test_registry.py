"""The env registry: every entry registered with Gymnasium, its parts loadable and consistent."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from gymnasium import spaces

from vlgor_envs import registry


@pytest.mark.parametrize("name", sorted(registry.ENTRIES))
def test_each_entry_is_registered_and_its_parts_fit_its_env(name: str) -> None:
    entry = registry.entry(name)
    assert gym.spec(entry.env_id).entry_point == entry.entry_point
    assert gym.spec(entry.env_id).max_episode_steps == entry.max_episode_steps
    assert gym.spec(entry.imagined_env_id).kwargs["env"] == name
    env = gym.make(entry.env_id, image_size=16)
    _, info = env.reset(seed=0)
    kind = spaces.Discrete if entry.action_kind == "discrete" else spaces.Box
    assert isinstance(env.action_space, kind)
    assert entry.object_state_info in info  # what collection records as infos["object_state"]
    action = registry.load(entry.expert)().act(info)
    assert env.action_space.contains(action)
    judge = registry.load(entry.imagination_judge)()
    assert callable(judge.start) and callable(judge.score)
    assert registry.entry_of_id(entry.env_id) is entry
    assert registry.entry_of_id(entry.imagined_env_id) is entry
    env.close()


def test_unknown_names_and_ids_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown env 'atari'; choose one of \['clevr', 'metaworld'\]"):
        registry.entry("atari")
    with pytest.raises(ValueError, match=r"no vlgor env has the id 'CartPole-v1'"):
        registry.entry_of_id("CartPole-v1")


@pytest.mark.parametrize("name", sorted(registry.ENTRIES))
def test_each_recipe_is_the_config_its_shipped_model_was_trained_with(name: str) -> None:
    from vlgor_envs.imagination.checkpoint import read_config, shipped_checkpoint
    from vlgor_envs.imagination.commands import model_config

    shipped = read_config(shipped_checkpoint(name))["model"]
    assert json.loads(json.dumps(model_config(name, "cpu").to_json())) == shipped
