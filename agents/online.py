"""Online RL with stable-baselines3 in a VLGOR env, real or imagined.

:func:`sb3_vec_env` makes ``num_envs`` copies of a registered VLGOR id with Gymnasium's
``make_vec`` (an imagined id steps all of its copies in one model call) and hands them to
stable-baselines3 as one :class:`Sb3VecEnv`: observations as
:class:`~vlgor_envs.wrappers.EmbedInstruction` gives them (the image and the instruction's
embedding), finished episodes restarted at once with their ``terminal_observation`` in the
info, as SB3 expects. :class:`Sb3Policy` runs the trained model in :func:`agents.evaluate`.

>>> import stable_baselines3
>>> from vlgor_envs.language import instruction_encoder
>>> encoder = instruction_encoder("clevr")  # doctest: +SKIP
>>> env = sb3_vec_env("VLGOR-Imagined-CLEVR", num_envs=8, encoder=encoder, seed=0)  # doctest: +SKIP
>>> model = stable_baselines3.PPO("MultiInputPolicy", env).learn(20_000)  # doctest: +SKIP
>>> agents.evaluate(Sb3Policy(model, encoder), "clevr", "train", episodes=100)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import VecEnv

from agents.encoder import FilmEncoder, FilmEncoderFactory
from vlgor_envs.language.encoder import InstructionEncoder
from vlgor_envs.wrappers import EMBEDDING_KEY, INSTRUCTION_KEY, embed_instruction, embedding_space

IMAGE_KEY = "image"


class Sb3VecEnv(VecEnv):
    """A Gymnasium vector env of a VLGOR env as a stable-baselines3 ``VecEnv``.

    Gymnasium's vector envs restart a finished episode on the *next* step; SB3 wants it
    restarted in the same step, with the last observation kept as
    ``infos[i]["terminal_observation"]``. So the finished envs are reset at once with a
    partial reset (``options={"reset_mask": done}``), which both the real envs' ``SyncVectorEnv``
    and ``ImaginedVectorEnv`` support. ``infos[i]["is_success"]`` is the env's own.
    """

    def __init__(self, env: VectorEnv, encoder: InstructionEncoder) -> None:
        single = env.single_observation_space
        if not isinstance(single, spaces.Dict) or INSTRUCTION_KEY not in single.spaces:
            raise ValueError(
                f"Sb3VecEnv needs a VLGOR env's image and instruction observations, got {single}"
            )
        self.env, self.encoder = env, encoder
        space = spaces.Dict({IMAGE_KEY: single[IMAGE_KEY], EMBEDDING_KEY: embedding_space(encoder)})
        self._actions: np.ndarray | None = None
        super().__init__(env.num_envs, space, env.single_action_space)

    def _embed(self, observations: dict[str, Any]) -> dict[str, np.ndarray]:
        texts = observations[INSTRUCTION_KEY]
        embeddings = np.stack([embed_instruction(self.encoder, text) for text in texts])
        return {IMAGE_KEY: np.asarray(observations[IMAGE_KEY]), EMBEDDING_KEY: embeddings}

    def reset(self) -> dict[str, np.ndarray]:
        # SB3 seeds copy i with seed + i, as the vector env does with the first seed.
        observations, _ = self.env.reset(seed=self._seeds[0])
        self._reset_seeds()
        return self._embed(observations)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        observations, rewards, terminated, truncated, info = self.env.step(self._actions)
        done = np.logical_or(terminated, truncated)
        embedded = self._embed(observations)
        infos: list[dict[str, Any]] = [
            {"TimeLimit.truncated": bool(truncated[i] and not terminated[i])} for i in range(self.num_envs)
        ]
        if "is_success" in info:
            for i in range(self.num_envs):
                infos[i]["is_success"] = bool(info["is_success"][i])
        if done.any():
            for finished in np.flatnonzero(done):
                infos[finished]["terminal_observation"] = {k: v[finished] for k, v in embedded.items()}
            restarted, _ = self.env.reset(options={"reset_mask": done})
            embedded = self._embed(restarted)
        return embedded, np.asarray(rewards, dtype=np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def _count(self, indices: Any) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.env, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        result = getattr(self.env, method_name)(*args, **kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: Any = None) -> list[bool]:
        return [False] * self._count(indices)


def sb3_vec_env(
    env_id: str, num_envs: int, encoder: InstructionEncoder, seed: int | None = None, **kwargs: Any
) -> Sb3VecEnv:
    """``num_envs`` copies of the VLGOR env ``env_id`` (real or imagined) for stable-baselines3.

    ``kwargs`` go to each env (``split``, ``checkpoint``, ...); ``seed`` seeds the first reset
    (copy ``i`` with ``seed + i``).
    """
    vector = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=_mode(env_id), **kwargs)
    env = Sb3VecEnv(vector, encoder)
    if seed is not None:
        env.seed(seed)
    return env


def _mode(env_id: str) -> str:
    """The imagined envs' own batched vector env where there is one, else sub-envs in turn."""
    return "vector_entry_point" if gym.spec(env_id).vector_entry_point else "sync"


class Sb3Policy:
    """A :class:`~agents.evaluate.BatchPolicy` acting with a stable-baselines3 model, greedily."""

    def __init__(self, model: BaseAlgorithm, encoder: InstructionEncoder) -> None:
        self.model, self.encoder = model, encoder

    def __call__(self, observation: dict[str, Any]) -> Any:
        return self.act_batch([observation])[0]

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> Sequence[Any]:
        batch = {
            IMAGE_KEY: np.stack([o[IMAGE_KEY] for o in observations]),
            EMBEDDING_KEY: np.stack(
                [embed_instruction(self.encoder, o[INSTRUCTION_KEY]) for o in observations]
            ),
        }
        actions, _ = self.model.predict(batch, deterministic=True)
        return list(actions)


class FilmFeatures(BaseFeaturesExtractor):
    """The offline learners' FiLM keypoint network (:class:`~agents.encoder.FilmEncoder`) as a
    stable-baselines3 features extractor of :class:`Sb3VecEnv` observations.

    Pass it with ``policy_kwargs=FILM_POLICY_KWARGS``: the network scales the pixels itself,
    so SB3 must hand them over unnormalised (channels first, as SB3 transposes them).
    """

    def __init__(self, observation_space: spaces.Dict, features_dim: int = 256) -> None:
        super().__init__(observation_space, features_dim)
        image, embedding = observation_space[IMAGE_KEY].shape, observation_space[EMBEDDING_KEY].shape
        # SB3 transposes (H, W, C) image spaces to (C, H, W) before it builds the policy.
        if image is None or embedding is None or len(image) != 3 or image[0] not in (1, 3):
            raise ValueError(
                f"FilmFeatures needs a channels-first image and an embedding, got {observation_space}"
            )
        self.encoder = FilmEncoder((image, embedding), FilmEncoderFactory(feature_size=features_dim))

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder([observations[IMAGE_KEY], observations[EMBEDDING_KEY]])


#: ``policy_kwargs`` of an SB3 ``MultiInputPolicy`` on the FiLM keypoint network.
FILM_POLICY_KWARGS: dict[str, Any] = {"features_extractor_class": FilmFeatures, "normalize_images": False}
