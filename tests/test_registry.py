"""The env registry: every entry registered with Gymnasium, its parts loadable and consistent."""

from __future__ import annotations

import json
import typing

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from vlgor_envs import registry
from vlgor_envs.language import instruction_encoder, language_of


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


def test_the_command_line_env_choices_are_the_entries() -> None:
    assert typing.get_args(registry.EnvName) == tuple(registry.ENTRIES)


@pytest.mark.parametrize("name", sorted(registry.ENTRIES))
def test_each_language_speaks_the_protocol_the_layers_above_use(name: str) -> None:
    entry = registry.entry(name)
    language = language_of(entry.env_id)
    assert language is language_of(name) is language_of(entry.imagined_env_id)
    rng = np.random.default_rng(0)
    for split in language.SPLITS:
        goal = language.sample_goal(split, rng)
        assert goal in language.split_goals(split)
        assert language.parse(language.render(goal)) == language.validate_goal(goal)
        assert isinstance(language.goal_kind(goal), str)
        assert language.split_summary(split).startswith(f"{split}: {len(language.split_goals(split))} ")
    for edit in language.COUNTERFACTUAL_EDITS:
        goal, made, source = language.sample_counterfactual(edit, rng)
        assert made == edit and goal in language.split_goals("counterfactual")
        assert source in language.split_goals("train")
    assert set(language.TASK_NAMES) <= {
        language.goal_kind(g) for s in language.SPLITS for g in language.split_goals(s)
    }
    # The learners' instruction feature is the entry's, whichever name or id asks for it.
    assert type(instruction_encoder(name)) is type(instruction_encoder(entry.env_id))


def test_unknown_names_and_ids_list_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown env 'atari'; choose one of \['clevr', 'metaworld'\]"):
        registry.entry("atari")
    with pytest.raises(ValueError, match=r"no vlgor env has the id 'CartPole-v1'"):
        registry.entry_of_id("CartPole-v1")
    with pytest.raises(ValueError, match=r"no vlgor env has the id 'CartPole-v1'"):
        registry.find("CartPole-v1")


@pytest.mark.parametrize("name", sorted(registry.ENTRIES))
def test_each_recipe_is_the_config_its_shipped_model_was_trained_with(name: str) -> None:
    from vlgor_envs.imagination.checkpoint import read_config, shipped_checkpoint
    from vlgor_envs.imagination.commands import model_config
    from vlgor_envs.imagination.model import WorldModelConfig

    shipped = read_config(shipped_checkpoint(name))["model"]
    assert json.loads(json.dumps(model_config(name, "cpu").to_json())) == shipped
    assert WorldModelConfig.from_json(shipped) == model_config(name, "cpu")
