"""One test module for every registered ``VLGOR-*`` environment (STYLE.md #4)."""

from __future__ import annotations

import pickle
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import vlgor_envs  # noqa: F401  (registers the ids)
from vlgor_envs.wrappers import EmbedInstruction

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("VLGOR-"))
# Warnings the checkers may raise that say nothing about our envs.
ALLOWED_WARNINGS: tuple[str, ...] = ()


def test_registry_lists_the_clevr_env() -> None:
    assert "VLGOR-CLEVR-v0" in ENV_IDS
    for env_id in ENV_IDS:
        assert isinstance(gym.spec(env_id).entry_point, str), "entry points must be strings"
        gym.spec(env_id).to_json()  # Minari stores this


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_check_env(env_id: str) -> None:
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    env.close()
    unexpected = [str(w.message) for w in caught if not any(a in str(w.message) for a in ALLOWED_WARNINGS)]
    assert unexpected == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_stable_baselines3_check_env_through_embed_instruction(env_id: str) -> None:
    env = EmbedInstruction(gym.make(env_id))
    sb3_check_env(env, warn=True)
    observation, _ = env.reset(seed=0)
    assert "instruction" not in observation
    assert observation["instruction_embedding"].dtype == np.float32
    env.close()


def _rollout(env_id: str, seed: int, steps: int = 12) -> list[Any]:
    env = gym.make(env_id)
    env.action_space.seed(seed)
    observation, info = env.reset(seed=seed)
    trace: list[Any] = [observation, info]
    for _ in range(steps):
        observation, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace += [observation, reward, terminated, truncated, info]
        if terminated or truncated:
            observation, info = env.reset()
            trace += [observation, info]
    env.close()
    return trace


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_rollouts_are_identical(env_id: str) -> None:
    first, second = _rollout(env_id, seed=7), _rollout(env_id, seed=7)
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        _assert_same(a, b)
    other = _rollout(env_id, seed=8)
    assert not np.array_equal(first[0]["image"], other[0]["image"]), "seeds must matter"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_continues_identically(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=3)
    env.action_space.seed(3)
    for _ in range(3):
        env.step(env.action_space.sample())
    clone = pickle.loads(pickle.dumps(env))
    actions = [env.action_space.sample() for _ in range(4)]
    for action in actions:
        original, copied = env.step(action), clone.step(action)
        for a, b in zip(original, copied, strict=True):
            _assert_same(a, b)
    env.close()
    clone.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_frames_are_not_blank_even_after_recreating_envs(env_id: str) -> None:
    for seed in range(3):
        env = gym.make(env_id)
        observation, _ = env.reset(seed=seed)
        image = observation["image"]
        assert image.dtype == np.uint8
        assert image.std() > 5.0
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10
        observation, *_ = env.step(env.action_space.sample())
        assert observation["image"].std() > 5.0
        env.close()
