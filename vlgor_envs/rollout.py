"""Rolling a policy out in a registered env: the loop the experts, demo and benchmarks share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from vlgor_envs.language.goal import Goal

#: A policy sees the observation and the env's ``info`` (experts read the state from it).
Policy = Callable[[dict[str, Any], dict[str, Any]], Any]


@dataclass
class Episode:
    """One rollout: its goal and instruction, outcome, length and (optionally) frames."""

    goal: Goal
    instruction: str
    success: bool
    length: int
    frames: list[np.ndarray] = field(default_factory=list)


def roll_out(
    env_id: str, policy: Policy, episodes: int, seed: int, keep_frames: bool = False, **env_kwargs: Any
) -> list[Episode]:
    """Run ``policy`` for ``episodes`` episodes in ``gym.make(env_id, **env_kwargs)``.

    Episode ``i`` is reset with seed ``seed + i``, so runs are reproducible.
    """
    env = gym.make(env_id, **env_kwargs)
    results = []
    try:
        for episode in range(episodes):
            observation, info = env.reset(seed=seed + episode)
            frames = [observation["image"]] if keep_frames else []
            terminated = truncated = False
            length = 0
            while not (terminated or truncated):
                observation, _, terminated, truncated, info = env.step(policy(observation, info))
                length += 1
                if keep_frames:
                    frames.append(observation["image"])
            results.append(
                Episode(info["goal"], observation["instruction"], bool(info["is_success"]), length, frames)
            )
    finally:
        env.close()
    return results


def replay(
    env: gym.Env[Any, Any], seed: int, options: dict[str, Any], actions: Sequence[Any]
) -> tuple[dict[str, Any], bool]:
    """Reset ``env`` with ``seed`` and ``options``, then take ``actions`` until it ends.

    Returns the first observation and whether the last step taken reported ``is_success``.
    """
    first, _ = env.reset(seed=seed, options=options)
    success = False
    for action in actions:
        _, _, terminated, truncated, info = env.step(action)
        success = bool(info["is_success"])
        if terminated or truncated:
            break
    return first, success
