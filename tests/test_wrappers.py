"""EmbedInstruction against a stub env and a fake encoder (no model, no simulator)."""

from __future__ import annotations

import hashlib
import string
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
import pytest
from gymnasium import spaces

from vlgor_envs.wrappers import EmbedInstruction

IMAGE_SHAPE = (8, 8, 3)
# Text's default charset has no space, so instructions would fall outside it.
CHARSET = string.ascii_letters + string.digits + " "
Obs = dict[str, Any]
StepResult = tuple[Obs, float, bool, bool, dict[str, Any]]


class HashEncoder:
    """Deterministic fake encoder: a string's SHA-256 seeds a unit vector in R^8."""

    dim = 8

    def __init__(self) -> None:
        self.calls: list[str] = []

    def encode(self, text: str) -> npt.NDArray[np.float32]:
        self.calls.append(text)
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        vector = np.random.default_rng(seed).standard_normal(self.dim)
        return (vector / np.linalg.norm(vector)).astype(np.float32)


def observation(text: str, fill: int = 0) -> Obs:
    return {"image": np.full(IMAGE_SHAPE, fill, dtype=np.uint8), "instruction": text}


class StubEnv(gym.Env[Obs, int]):
    """Replays injected ``reset``/``step`` results; the wrapper never sees a simulator."""

    def __init__(
        self,
        reset_fn: Callable[[], Obs] | None = None,
        step_fn: Callable[[int], StepResult] | None = None,
        observation_space: spaces.Space[Any] | None = None,
    ) -> None:
        self.observation_space = observation_space or spaces.Dict(
            image=spaces.Box(0, 255, IMAGE_SHAPE, np.uint8),
            instruction=spaces.Text(64, charset=CHARSET),
        )
        self.action_space: spaces.Space[int] = spaces.Discrete(2)  # type: ignore[assignment]
        self.reset_fn = reset_fn or (lambda: observation("move the red ball left"))
        self.step_fn = step_fn or (lambda action: (observation("step"), 0.0, False, False, {}))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        super().reset(seed=seed)
        return self.reset_fn(), {}

    def step(self, action: int) -> StepResult:
        return self.step_fn(action)


def test_drop_text_replaces_instruction_with_embedding_box() -> None:
    env = EmbedInstruction(StubEnv(), encoder=HashEncoder())
    space = env.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"image", "instruction_embedding"}
    assert space["image"] == env.env.observation_space["image"]  # type: ignore[index]
    assert space["instruction_embedding"] == spaces.Box(-1.0, 1.0, (8,), np.float32)


def test_keep_text_adds_embedding_next_to_instruction() -> None:
    env = EmbedInstruction(StubEnv(), encoder=HashEncoder(), drop_text=False)
    space = env.observation_space
    assert isinstance(space, spaces.Dict)
    assert set(space.spaces) == {"image", "instruction", "instruction_embedding"}
    assert isinstance(space["instruction"], spaces.Text)


@pytest.mark.parametrize("drop_text", [True, False])
def test_reset_embeds_instruction(drop_text: bool) -> None:
    encoder = HashEncoder()
    env = EmbedInstruction(
        StubEnv(reset_fn=lambda: observation("push the blue ball up", fill=7)),
        encoder=encoder,
        drop_text=drop_text,
    )
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space
    assert ("instruction" in obs) is not drop_text
    np.testing.assert_array_equal(obs["image"], np.full(IMAGE_SHAPE, 7, np.uint8))
    np.testing.assert_array_equal(obs["instruction_embedding"], HashEncoder().encode("push the blue ball up"))
    assert obs["instruction_embedding"].dtype == np.float32
    assert encoder.calls == ["push the blue ball up"]


@pytest.mark.parametrize("drop_text", [True, False])
def test_step_embeds_instruction(drop_text: bool) -> None:
    env = EmbedInstruction(
        StubEnv(step_fn=lambda action: (observation(f"go {action}"), 1.0, True, False, {"k": 1})),
        encoder=HashEncoder(),
        drop_text=drop_text,
    )
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(1)
    assert obs in env.observation_space
    np.testing.assert_array_equal(obs["instruction_embedding"], HashEncoder().encode("go 1"))
    assert (reward, terminated, truncated, info) == (1.0, True, False, {"k": 1})


def test_wrapped_observation_is_new_dict() -> None:
    original = observation("move the red ball left")
    env = EmbedInstruction(StubEnv(reset_fn=lambda: original), encoder=HashEncoder())
    env.reset()
    assert set(original) == {"image", "instruction"}


def test_distinct_instructions_get_distinct_embeddings() -> None:
    texts = iter(["move the red ball left", "move the red ball right"])
    env = EmbedInstruction(StubEnv(reset_fn=lambda: observation(next(texts))), encoder=HashEncoder())
    first, _ = env.reset()
    second, _ = env.reset()
    assert not np.array_equal(first["instruction_embedding"], second["instruction_embedding"])


def test_default_encoder_is_used_and_recorded_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = HashEncoder()
    monkeypatch.setattr("vlgor_envs.wrappers.default_text_encoder", lambda: fake)
    env = EmbedInstruction(StubEnv())
    assert env.encoder is fake
    # None, not the encoder object, keeps the wrapper's spec JSON-serialisable.
    assert env._saved_kwargs == {"encoder": None, "drop_text": True}


def test_constructor_args_are_recorded() -> None:
    env = EmbedInstruction(StubEnv(), encoder=HashEncoder(), drop_text=False)
    assert env._saved_kwargs["drop_text"] is False
    assert isinstance(env._saved_kwargs["encoder"], HashEncoder)


@pytest.mark.parametrize(
    ("space", "match"),
    [
        (spaces.Box(0, 255, IMAGE_SHAPE, np.uint8), "Dict observation space"),
        (spaces.Dict(image=spaces.Box(0, 255, IMAGE_SHAPE, np.uint8)), "'instruction' Text"),
        (
            spaces.Dict(image=spaces.Box(0, 255, IMAGE_SHAPE, np.uint8), instruction=spaces.Discrete(3)),
            "'instruction' Text",
        ),
        (
            spaces.Dict(
                instruction=spaces.Text(64, charset=CHARSET),
                instruction_embedding=spaces.Box(-1.0, 1.0, (8,), np.float32),
            ),
            "wrapped twice",
        ),
    ],
    ids=["box", "no-instruction", "instruction-not-text", "already-embedded"],
)
def test_rejects_env_without_instruction_text(space: spaces.Space[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EmbedInstruction(StubEnv(observation_space=space), encoder=HashEncoder())


def test_rejects_encoder_output_of_wrong_shape() -> None:
    class WrongDim(HashEncoder):
        def encode(self, text: str) -> npt.NDArray[np.float32]:
            return super().encode(text)[:4]

    env = EmbedInstruction(StubEnv(), encoder=WrongDim())
    with pytest.raises(ValueError, match="expected"):
        env.reset()
