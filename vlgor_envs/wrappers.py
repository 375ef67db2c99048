"""Observation wrappers that make language-goal envs digestible by numeric learners."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from vlgor_envs.language.encoder import InstructionEncoder, default_text_encoder

#: Key of the instruction text in a vlgor observation.
INSTRUCTION_KEY = "instruction"
#: Key under which :class:`EmbedInstruction` adds the embedding.
EMBEDDING_KEY = "instruction_embedding"


class EmbedInstruction(
    gym.ObservationWrapper[dict[str, Any], Any, dict[str, Any]],
    gym.utils.RecordConstructorArgs,
):
    """Add a fixed-size embedding of the instruction text to every observation.

    The wrapped env must observe ``Dict(image=Box(uint8, (H, W, 3)), instruction=Text)``.
    The wrapper adds ``instruction_embedding = Box(-1, 1, (encoder.dim,), float32)``
    holding ``encoder.encode(instruction)`` and, with ``drop_text=True``, removes the
    ``Text`` entry, since stable-baselines3 and d3rlpy reject text observations.

    Example:
        >>> import gymnasium as gym
        >>> import vlgor_envs
        >>> from vlgor_envs.wrappers import EmbedInstruction
        >>> env = EmbedInstruction(gym.make("VLGOR-CLEVR-v0"))
        >>> obs, info = env.reset(seed=0)
        >>> sorted(obs)
        ['image', 'instruction_embedding']
        >>> obs["instruction_embedding"].shape
        (384,)

    Args:
        env: env whose observation space is a ``Dict`` with an ``instruction`` ``Text`` entry.
        encoder: anything with ``dim`` and ``encode(str) -> (dim,)`` array, e.g. a
            :class:`~vlgor_envs.language.encoder.TextEncoder`; ``None`` uses the
            process-wide MiniLM-L6 encoder (loaded once, shared by all wrappers).
        drop_text: remove the ``instruction`` text from observations.

    Raises:
        ValueError: when the observation space is not a ``Dict`` with an ``instruction``
            ``Text`` entry, or already holds an ``instruction_embedding``.
    """

    def __init__(
        self,
        env: gym.Env[Any, Any],
        encoder: InstructionEncoder | None = None,
        drop_text: bool = True,
    ) -> None:
        # Record the argument as given: None keeps the spec JSON-serialisable for Minari.
        gym.utils.RecordConstructorArgs.__init__(self, encoder=encoder, drop_text=drop_text)
        gym.ObservationWrapper.__init__(self, env)

        space = env.observation_space
        if not isinstance(space, spaces.Dict):
            raise ValueError(
                f"EmbedInstruction needs a Dict observation space with an {INSTRUCTION_KEY!r} "
                f"Text entry, got {space}"
            )
        if not isinstance(space.spaces.get(INSTRUCTION_KEY), spaces.Text):
            raise ValueError(
                f"EmbedInstruction needs an {INSTRUCTION_KEY!r} Text entry in the observation "
                f"space, got entries {dict(space.spaces)}"
            )
        if EMBEDDING_KEY in space.spaces:
            raise ValueError(f"observation space already has {EMBEDDING_KEY!r}; is the env wrapped twice?")

        self.encoder: InstructionEncoder = encoder if encoder is not None else default_text_encoder()
        self.drop_text = drop_text
        entries = dict(space.spaces)
        if drop_text:
            del entries[INSTRUCTION_KEY]
        entries[EMBEDDING_KEY] = embedding_space(self.encoder)
        self.observation_space = spaces.Dict(entries)

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """Return a new observation dict with the embedding added (and the text dropped)."""
        new = dict(observation)
        if self.drop_text:
            del new[INSTRUCTION_KEY]
        new[EMBEDDING_KEY] = embed_instruction(self.encoder, observation[INSTRUCTION_KEY])
        return new


def embedding_space(encoder: InstructionEncoder) -> spaces.Box:
    """The space of :func:`embed_instruction`'s vectors."""
    return spaces.Box(-1.0, 1.0, (encoder.dim,), np.float32)


def embed_instruction(encoder: InstructionEncoder, text: str) -> np.ndarray:
    """``encoder``'s ``(dim,)`` float32 vector of ``text``, clipped to :func:`embedding_space`."""
    embedding = np.asarray(encoder.encode(text), dtype=np.float32)
    if embedding.shape != (encoder.dim,):
        raise ValueError(
            f"encoder returned shape {embedding.shape} for one instruction, expected ({encoder.dim},)"
        )
    # Unit vectors stay within [-1, 1] up to float rounding; clip so the Box holds.
    return np.clip(embedding, -1.0, 1.0)
