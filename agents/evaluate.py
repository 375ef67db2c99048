"""Success rate of a policy in the real env on a language split, and a d3rlpy evaluator of it.

A policy is any callable from the env's observation ``{"image": uint8 (H, W, 3),
"instruction": str}`` to an action, so learners of other libraries plug in directly;
:func:`d3rlpy_policy` adapts a d3rlpy learner. Episode ``i`` of an evaluation is reset with
seed ``seed + i``: two policies evaluated with the same seed face the same goals and start
states.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from d3rlpy.algos import QLearningAlgoBase
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import ReplayBufferBase
from tqdm import tqdm

import vlgor_envs  # noqa: F401  (registers the VLGOR-* ids)
from vlgor_envs.data.collect import ENVS
from vlgor_envs.language.encoder import InstructionEncoder, default_text_encoder

__all__ = [
    "DEFAULT_EVAL_SEED",
    "EvaluationResult",
    "Policy",
    "SplitEvaluator",
    "d3rlpy_policy",
    "env_id_of",
    "evaluate",
]

#: Observation dict -> action.
Policy = Callable[[dict[str, Any]], Any]
#: Base seed of evaluation episodes: far from collection seeds (``0 + i``), so evaluation
#: start states are not the dataset's.
DEFAULT_EVAL_SEED = 1_000_000


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Per-episode outcomes of one evaluation; episode ``i`` was reset with ``seed + i``."""

    env_id: str
    split: str
    seed: int
    successes: tuple[bool, ...]
    returns: tuple[float, ...]
    lengths: tuple[int, ...]
    instructions: tuple[str, ...]

    @property
    def episodes(self) -> int:
        """Number of episodes."""
        return len(self.successes)

    @property
    def success_rate(self) -> float:
        """Fraction of episodes that ended with ``info["is_success"]``."""
        return float(np.mean(self.successes)) if self.successes else 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field and the success rate."""
        return {**dataclasses.asdict(self), "success_rate": self.success_rate}


def env_id_of(env: str) -> str:
    """The Gymnasium id of ``env``: a short name (``"clevr"``, ``"metaworld"``) or an id."""
    return ENVS[env][0] if env in ENVS else env


def evaluate(
    policy: Policy | Callable[[dict[str, Any], dict[str, Any]], Any],
    env_id: str,
    split: str,
    episodes: int,
    seed: int = DEFAULT_EVAL_SEED,
    image_size: int = 64,
    progress: bool = False,
    pass_info: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
) -> EvaluationResult:
    """Run ``policy`` for ``episodes`` episodes of the real env on ``split``'s instructions.

    Args:
        policy: Observation dict -> action. With ``pass_info``, ``(observation, info) ->
            action`` instead.
        env_id: ``"VLGOR-CLEVR-v0"``, ``"VLGOR-MetaWorld-v0"`` (or ``"clevr"``,
            ``"metaworld"``).
        split: ``"train"``, ``"rephrasing"``, ``"counterfactual"`` or ``"hard"``.
        episodes: Number of episodes; episode ``i`` is reset with seed ``seed + i``.
        seed: Base seed.
        image_size: Side of the square frames in pixels (as the policy was trained on).
        progress: Show a tqdm bar.
        pass_info: Also hand the policy the env's ``info``, which holds the simulator state:
            for scripted experts and oracles, never for a learner under test.
        env_kwargs: Further ``gym.make`` arguments (e.g. ``task`` for Meta-World).

    Raises:
        ValueError: ``episodes < 1``; the env's own errors for a bad split or image size.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    env_id = env_id_of(env_id)
    call: Callable[..., Any] = policy
    successes: list[bool] = []
    returns: list[float] = []
    lengths: list[int] = []
    instructions: list[str] = []
    env = gym.make(env_id, split=split, image_size=image_size, **(env_kwargs or {}))
    try:
        for episode in tqdm(range(episodes), desc=f"eval {split}", unit="ep", disable=not progress):
            observation, info = env.reset(seed=seed + episode)
            instructions.append(str(observation["instruction"]))
            total, length = 0.0, 0
            terminated = truncated = False
            while not (terminated or truncated):
                action = call(observation, info) if pass_info else call(observation)
                observation, reward, terminated, truncated, info = env.step(action)
                total += float(reward)
                length += 1
            successes.append(bool(info["is_success"]))
            returns.append(total)
            lengths.append(length)
    finally:
        # A second rendering env made before this one is closed renders black frames.
        env.close()
    return EvaluationResult(
        env_id=env_id,
        split=split,
        seed=seed,
        successes=tuple(successes),
        returns=tuple(returns),
        lengths=tuple(lengths),
        instructions=tuple(instructions),
    )


def d3rlpy_policy(
    algo: QLearningAlgoBase[Any, Any], text_encoder: InstructionEncoder | None = None
) -> Policy:
    """A :data:`Policy` that acts with a (trained) d3rlpy learner's greedy ``predict``.

    The observation becomes the tuple the learner was trained on (as
    :func:`~vlgor_envs.data.d3rlpy_bridge.to_d3rlpy` builds it): the image channels-first
    ``uint8 (1, 3, H, W)`` and the instruction's embedding ``float32 (1, D)``.

    Args:
        algo: A learner with built networks (after ``fit`` or ``d3rlpy.load_learnable``).
        text_encoder: The encoder the training data was embedded with; default the shared
            MiniLM-L6 one, as ``to_d3rlpy`` uses.

    Returns:
        Observation dict -> ``int`` (discrete learners) or ``float32 (A,)`` array.
    """
    encoder = default_text_encoder() if text_encoder is None else text_encoder
    discrete = algo.get_action_type() == ActionSpace.DISCRETE
    embeddings: dict[str, np.ndarray] = {}

    def act(observation: dict[str, Any]) -> Any:
        text = observation["instruction"]
        if text not in embeddings:
            embeddings[text] = np.asarray(encoder.encode(text), dtype=np.float32)[None]
        image = np.ascontiguousarray(
            np.asarray(observation["image"], dtype=np.uint8).transpose(2, 0, 1)[None]
        )
        action = algo.predict([image, embeddings[text]])[0]
        return int(action) if discrete else np.asarray(action, dtype=np.float32)

    return act


class SplitEvaluator:
    """A d3rlpy evaluator: the learner's success rate in the real env on one split.

    Pass it to ``fit(..., evaluators={"success": SplitEvaluator(...)})``; d3rlpy calls it at
    the end of every epoch and logs the value. Every call evaluates on the same episodes
    (same seeds), so the curve compares like with like. ``history`` holds ``(gradient step,
    success rate)`` of every call, ``last`` the latest full :class:`EvaluationResult`.
    """

    def __init__(
        self,
        env_id: str,
        split: str,
        episodes: int = 20,
        seed: int = DEFAULT_EVAL_SEED,
        image_size: int = 64,
        text_encoder: InstructionEncoder | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        self.env_id = env_id_of(env_id)
        self.split = split
        self.episodes = episodes
        self.seed = seed
        self.image_size = image_size
        self.text_encoder = text_encoder
        self.env_kwargs = dict(env_kwargs or {})
        self.history: list[tuple[int, float]] = []
        self.last: EvaluationResult | None = None

    def __call__(self, algo: Any, dataset: ReplayBufferBase) -> float:
        result = evaluate(
            d3rlpy_policy(algo, self.text_encoder),
            self.env_id,
            self.split,
            self.episodes,
            self.seed,
            self.image_size,
            env_kwargs=self.env_kwargs,
        )
        self.last = result
        self.history.append((int(algo.grad_step), result.success_rate))
        return result.success_rate
