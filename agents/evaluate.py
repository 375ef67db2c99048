"""Success rate of a policy in the real env on a language split, and a d3rlpy evaluator of it.

A policy is any callable from the env's observation ``{"image": uint8 (H, W, 3),
"instruction": str}`` to an action, so learners of other libraries plug in directly;
:func:`d3rlpy_policy` adapts a d3rlpy learner as a :class:`BatchPolicy`, which acts on the
observations of ``num_envs`` envs in one call. Episode ``i`` of an evaluation is reset with
seed ``seed + i``: two policies evaluated with the same seed face the same goals and start
states, whatever ``num_envs`` is.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from d3rlpy.algos import QLearningAlgoBase
from d3rlpy.constants import ActionSpace
from d3rlpy.dataset import ReplayBufferBase
from tqdm import tqdm

import vlgor_envs  # noqa: F401  (registers the VLGOR-* ids)
from vlgor_envs import registry
from vlgor_envs.language import Goal, goal_kind, instruction_encoder
from vlgor_envs.language.encoder import InstructionEncoder

__all__ = [
    "DEFAULT_EVAL_SEED",
    "BatchPolicy",
    "D3rlpyPolicy",
    "EvaluationResult",
    "Policy",
    "SplitEvaluator",
    "d3rlpy_policy",
    "env_id_of",
    "evaluate",
    "goal_kind_of",
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
    kinds: tuple[str, ...]
    """Each episode's goal kind (:func:`goal_kind_of`)."""

    @property
    def episodes(self) -> int:
        """Number of episodes."""
        return len(self.successes)

    @property
    def success_rate(self) -> float:
        """Fraction of episodes that ended with ``info["is_success"]``."""
        return float(np.mean(self.successes)) if self.successes else 0.0

    def by_kind(self) -> dict[str, tuple[int, int]]:
        """``goal kind -> (successes, episodes)``, kinds sorted."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for kind, success in zip(self.kinds, self.successes, strict=True):
            counts[kind][0] += int(success)
            counts[kind][1] += 1
        return {kind: (counts[kind][0], counts[kind][1]) for kind in sorted(counts)}

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field and the success rate."""
        return {**dataclasses.asdict(self), "success_rate": self.success_rate}


def env_id_of(env: str) -> str:
    """The Gymnasium id of ``env``: a short name (``"clevr"``, ``"metaworld"``) or an id."""
    return registry.ENTRIES[env].env_id if env in registry.ENTRIES else env


def goal_kind_of(env_id: str, goal: Goal) -> str:
    """The kind of ``goal`` in the env ``env_id`` (CLEVR: its goal kind; Meta-World: its task)."""
    return goal_kind(registry.entry_of_id(env_id).name, goal)


def evaluate(
    policy: Policy | BatchPolicy | Callable[[dict[str, Any], dict[str, Any]], Any],
    env_id: str,
    split: str,
    episodes: int,
    seed: int = DEFAULT_EVAL_SEED,
    image_size: int = 64,
    progress: bool = False,
    pass_info: bool = False,
    env_kwargs: Mapping[str, Any] | None = None,
    num_envs: int = 1,
) -> EvaluationResult:
    """Run ``policy`` for ``episodes`` episodes of the real env on ``split``'s instructions.

    With ``num_envs > 1`` that many envs step side by side; a :class:`BatchPolicy` is then
    called once per step on all of their observations (one batched network call). Episode
    ``i`` is reset with ``seed + i`` whatever ``num_envs`` is, so the outcomes are the same.

    Args:
        policy: Observation dict -> action; a :class:`BatchPolicy`; or with ``pass_info``,
            ``(observation, info) -> action``.
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
        num_envs: Envs stepped side by side (at most ``episodes`` are made). A policy that
            remembers its episode (the A* expert) sees several interleaved: use 1 for it.

    Raises:
        ValueError: ``episodes < 1`` or ``num_envs < 1``; the env's own errors for a bad split
            or image size.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    env_id = env_id_of(env_id)
    envs = [
        gym.make(env_id, split=split, image_size=image_size, **(env_kwargs or {}))
        for _ in range(min(num_envs, episodes))
    ]
    try:
        outcomes = _run_episodes(_acting(policy, pass_info), envs, episodes, seed, progress, split)
    finally:
        # A second rendering env made before this one is closed renders black frames.
        for env in envs:
            env.close()
    ordered = [outcomes[i] for i in range(episodes)]
    return EvaluationResult(
        env_id=env_id,
        split=split,
        seed=seed,
        successes=tuple(o.success for o in ordered),
        returns=tuple(o.total for o in ordered),
        lengths=tuple(o.length for o in ordered),
        instructions=tuple(o.instruction for o in ordered),
        kinds=tuple(goal_kind_of(env_id, o.goal) for o in ordered),
    )


@dataclasses.dataclass
class _Episode:
    index: int
    instruction: str
    goal: Goal
    total: float = 0.0
    length: int = 0
    success: bool = False


def _acting(
    policy: Any, pass_info: bool
) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[Any]]:
    """``(observations, infos) -> actions`` of any kind of policy."""
    if isinstance(policy, BatchPolicy) and not pass_info:
        return lambda observations, _: list(policy.act_batch(observations))
    if pass_info:
        return lambda observations, infos: [policy(o, i) for o, i in zip(observations, infos, strict=True)]
    return lambda observations, _: [policy(o) for o in observations]


def _run_episodes(
    act: Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[Any]],
    envs: list[gym.Env[Any, Any]],
    episodes: int,
    seed: int,
    progress: bool,
    split: str,
) -> dict[int, _Episode]:
    """Episodes ``0 .. episodes-1`` over ``envs``: each env takes the next episode when one ends."""
    upcoming = iter(range(episodes))
    running: dict[int, tuple[_Episode, dict[str, Any], dict[str, Any]]] = {}
    done: dict[int, _Episode] = {}

    def begin(slot: int) -> None:
        index = next(upcoming, None)
        if index is None:
            running.pop(slot, None)
            return
        observation, info = envs[slot].reset(seed=seed + index)
        running[slot] = (_Episode(index, str(observation["instruction"]), info["goal"]), observation, info)

    for slot in range(len(envs)):
        begin(slot)
    with tqdm(total=episodes, desc=f"eval {split}", unit="ep", disable=not progress) as bar:
        while running:
            slots = list(running)
            actions = act([running[s][1] for s in slots], [running[s][2] for s in slots])
            for slot, action in zip(slots, actions, strict=True):
                episode = running[slot][0]
                observation, reward, terminated, truncated, info = envs[slot].step(action)
                episode.total += float(reward)
                episode.length += 1
                if terminated or truncated:
                    episode.success = bool(info["is_success"])
                    done[episode.index] = episode
                    bar.update()
                    begin(slot)
                else:
                    running[slot] = (episode, observation, info)
    return done


@runtime_checkable
class BatchPolicy(Protocol):
    """A policy that acts on several observations at once (one network call per env step)."""

    def __call__(self, observation: dict[str, Any]) -> Any: ...

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> Sequence[Any]: ...


class D3rlpyPolicy:
    """A :class:`BatchPolicy` acting with a (trained) d3rlpy learner's greedy ``predict``.

    The observation becomes the tuple the learner was trained on (as
    :func:`~vlgor_envs.data.d3rlpy_bridge.to_d3rlpy` builds it): the image channels-first
    ``uint8 (N, 3, H, W)`` and the instruction's embedding ``float32 (N, D)``.
    """

    def __init__(
        self,
        algo: QLearningAlgoBase[Any, Any],
        text_encoder: InstructionEncoder | None = None,
        env: str | None = None,
    ) -> None:
        self.algo = algo
        wanted = int(algo.impl.observation_shape[1][0]) if algo.impl is not None else None
        self.encoder = _default_encoder(env, wanted) if text_encoder is None else text_encoder
        if wanted is not None and wanted != self.encoder.dim:
            raise ValueError(
                f"the learner takes {wanted}-wide instruction features but {self.encoder!r} gives "
                f"{self.encoder.dim}; pass the env it was trained in (env=) or its text_encoder"
            )
        self.discrete = algo.get_action_type() == ActionSpace.DISCRETE
        self._embeddings: dict[str, np.ndarray] = {}

    def _embedding(self, text: str) -> np.ndarray:
        if text not in self._embeddings:
            self._embeddings[text] = np.asarray(self.encoder.encode(text), dtype=np.float32)
        return self._embeddings[text]

    def act_batch(self, observations: Sequence[dict[str, Any]]) -> list[Any]:
        """One ``predict`` on the stacked observations; ``int`` or ``float32 (A,)`` actions."""
        images = np.stack([np.asarray(o["image"], dtype=np.uint8) for o in observations])
        texts = np.stack([self._embedding(str(o["instruction"])) for o in observations])
        actions = self.algo.predict([np.ascontiguousarray(images.transpose(0, 3, 1, 2)), texts])
        if self.discrete:
            return [int(a) for a in actions]
        return [np.asarray(a, dtype=np.float32) for a in actions]

    def __call__(self, observation: dict[str, Any]) -> Any:
        return self.act_batch([observation])[0]


def _default_encoder(env: str | None, width: int | None) -> InstructionEncoder:
    """``env``'s instruction feature; without an env, the known one of the learner's width."""
    if env is not None:
        return instruction_encoder(env)
    known = [instruction_encoder(None), instruction_encoder("clevr")]
    return next((encoder for encoder in known if encoder.dim == width), known[0])


def d3rlpy_policy(
    algo: QLearningAlgoBase[Any, Any], text_encoder: InstructionEncoder | None = None, env: str | None = None
) -> D3rlpyPolicy:
    """A :class:`BatchPolicy` that acts with a (trained) d3rlpy learner's greedy ``predict``.

    Args:
        algo: A learner with built networks (after ``fit`` or ``d3rlpy.load_learnable``).
        text_encoder: The encoder the training data was embedded with (for a run of
            :func:`agents.train`, :func:`agents.run_text_encoder` of its folder); default
            ``env``'s feature as fitted on its train split
            (:func:`vlgor_envs.language.instruction_encoder`), right only for learners trained
            on the train split's data alone.
        env: The env the learner was trained in (a name or Gymnasium id); default the env
            whose instruction feature has the learner's width.

    Raises:
        ValueError: The encoder's width is not the learner's.

    Returns:
        Called on one observation dict it returns an ``int`` (discrete learners) or a
        ``float32 (A,)`` array; ``act_batch`` does the same for a list in one call.
    """
    return D3rlpyPolicy(algo, text_encoder, env)


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
        num_envs: int = 8,
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
        self.num_envs = num_envs
        self.history: list[tuple[int, float]] = []
        self.last: EvaluationResult | None = None

    def __call__(self, algo: Any, dataset: ReplayBufferBase) -> float:
        result = evaluate(
            d3rlpy_policy(algo, self.text_encoder, self.env_id),
            self.env_id,
            self.split,
            self.episodes,
            self.seed,
            self.image_size,
            env_kwargs=self.env_kwargs,
            num_envs=self.num_envs,
        )
        self.last = result
        self.history.append((int(algo.grad_step), result.success_rate))
        return result.success_rate
