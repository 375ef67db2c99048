"""Offline-RL algorithms by name, configured as in the paper (App. A.2).

Every d3rlpy algorithm that learns from transitions is available under its config class
name without the ``Config`` suffix: ``DiscreteBC``, ``DiscreteCQL``, ``DQN``,
``DoubleDQN``, ``DiscreteSAC``, ``DiscreteBCQ``, ``NFQ`` for discrete actions (CLEVR);
``BC``, ``TD3PlusBC``, ``CQL``, ``IQL``, ``AWAC``, ``BCQ``, ``BEAR``, ``CRR``, ... for
continuous ones (Meta-World). :data:`ALGORITHMS` lists them per action space. Decision
transformers (trajectory learners with a stateful ``predict``) and d3rlpy's random policies
(which cannot be fitted) are not offered.

Defaults, for every network the config has: the paper's encoder
(:class:`~agents.encoder.VisionLanguageEncoderFactory`), Adam at ``3e-4`` cosine-annealed to
``1e-6`` over the run, batch size 128. Per algorithm: :data:`ALGORITHM_DEFAULTS`
(``DiscreteBC`` with ``beta=0``, the paper's pure log-likelihood loss; ``DiscreteCQL`` with
``alpha=10``, as in KALM's CLEVR runs). Temperature and Lagrange multiplier optimizers (SAC,
CQL, BEAR) keep d3rlpy's settings: they tune coefficients, not networks. A hard-synced target
network (DQN, DoubleDQN, DiscreteCQL, DiscreteBCQ, DiscreteSAC) syncs every
``min(8000, steps // 10)`` updates, so a short run updates it at least
:data:`MIN_TARGET_SYNCS` times.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias, cast

import d3rlpy
from d3rlpy.algos import QLearningAlgoBase
from d3rlpy.base import LearnableConfig
from d3rlpy.constants import ActionSpace
from d3rlpy.models.encoders import EncoderFactory
from d3rlpy.optimizers import AdamFactory
from d3rlpy.optimizers.lr_schedulers import CosineAnnealingLRFactory

from agents.encoder import FilmEncoderFactory, VisionLanguageEncoderFactory

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_DEFAULTS",
    "ENV_LEARNER_DEFAULTS",
    "MIN_TARGET_SYNCS",
    "PAPER_DEFAULTS",
    "ActionKind",
    "LearnerDefaults",
    "action_kind_of",
    "learner_defaults",
    "make_algorithm",
    "make_config",
]

#: ``"discrete"`` (CLEVR, ``Discrete(40)``) or ``"continuous"`` (Meta-World, ``Box(4)``).
ActionKind: TypeAlias = Literal["discrete", "continuous"]

_KINDS: dict[ActionSpace, ActionKind] = {
    ActionSpace.DISCRETE: "discrete",
    ActionSpace.CONTINUOUS: "continuous",
}
#: Learning-rate field of each network optimizer field; the rest (temp, alpha) stay as d3rlpy has them.
_NETWORK_OPTIMIZERS: dict[str, str] = {
    "optim_factory": "learning_rate",
    "actor_optim_factory": "actor_learning_rate",
    "critic_optim_factory": "critic_learning_rate",
    "imitator_optim_factory": "imitator_learning_rate",
}
#: Algorithms whose actor optimizer steps once every ``update_actor_interval`` updates.
_DELAYED_ACTOR = ("TD3", "TD3PlusBC", "PRDC", "ReBRAC")

#: A target network syncs at least this often a run (every ``steps // 10`` updates at most).
MIN_TARGET_SYNCS = 10
#: Per-algorithm settings applied on top of d3rlpy's defaults (a caller's overrides win).
ALGORITHM_DEFAULTS: dict[str, dict[str, Any]] = {
    # The paper's BC loss (Eq. 2) is the log-likelihood alone. d3rlpy adds `beta` times the
    # mean square of the *normalised* logits, i.e. of the log-probabilities, which pulls every
    # policy toward the uniform one (at its default 0.5, BC on CLEVR was at 2.6 nats after
    # 1,500 steps; uniform is 3.7).
    "DiscreteBC": {"beta": 0.0},
    # KALM's CLEVR script: the conservative penalty at 10 (d3rlpy's default is 1).
    "DiscreteCQL": {"alpha": 10.0},
}


@dataclasses.dataclass(frozen=True)
class LearnerDefaults:
    """What a named algorithm gets in an env unless the caller says otherwise."""

    encoder: type[EncoderFactory]
    learning_rate: float
    anneal: bool = True
    """Cosine-anneal the rate to 1e-6 over the run (else it stays constant)."""

    def min_learning_rate(self, learning_rate: float) -> float:
        """Where the schedule of a run started at ``learning_rate`` ends."""
        return 1e-6 if self.anneal else learning_rate


#: The paper's network and Adam rate, cosine-annealed (App. A.2).
PAPER_DEFAULTS = LearnerDefaults(VisionLanguageEncoderFactory, 3e-4)
#: Per Gymnasium id. On CLEVR the paper's network stays near chance on its own train goals
#: after a CPU budget of updates; the FiLM keypoint network at a constant 1e-3 learns them
#: (annealed, the same run succeeded half as often; ``benchmarks/bc_pixels_pilot.py``).
ENV_LEARNER_DEFAULTS: dict[str, LearnerDefaults] = {
    "VLGOR-CLEVR-v0": LearnerDefaults(FilmEncoderFactory, 1e-3, anneal=False),
}


def learner_defaults(env_id: str | None) -> LearnerDefaults:
    """The encoder and learning rate a learner trained on ``env_id``'s data gets by default."""
    return ENV_LEARNER_DEFAULTS.get(env_id or "", PAPER_DEFAULTS)


def _discover() -> tuple[dict[str, type[LearnableConfig]], dict[str, ActionKind]]:
    """d3rlpy's transition learners: name -> config class, name -> action kind."""
    configs: dict[str, type[LearnableConfig]] = {}
    kinds: dict[str, ActionKind] = {}
    for attribute, value in sorted(vars(d3rlpy.algos).items()):
        if not (
            attribute.endswith("Config")
            and inspect.isclass(value)
            and issubclass(value, LearnableConfig)
            and "RandomPolicy" not in attribute  # their fit raises
        ):
            continue
        try:
            # Creating a learner builds no network (that waits for a dataset), so this is cheap.
            learner = cast(type[LearnableConfig], value)().create("cpu:0")
        except (TypeError, NotImplementedError):
            continue  # abstract bases (TransformerConfig) and configs with required fields
        if not isinstance(learner, QLearningAlgoBase):
            continue  # decision transformers
        name = attribute.removesuffix("Config")
        configs[name] = value
        kinds[name] = _KINDS[learner.get_action_type()]
    return configs, kinds


_CONFIGS, _KIND_OF_NAME = _discover()

#: Algorithm names per action space, as :func:`make_algorithm` accepts them.
ALGORITHMS: dict[ActionKind, tuple[str, ...]] = {
    kind: tuple(name for name in _CONFIGS if _KIND_OF_NAME[name] == kind)
    for kind in ("discrete", "continuous")
}


def action_kind_of(config: LearnableConfig) -> ActionKind:
    """Whether the learner a d3rlpy config creates acts in discrete or continuous spaces."""
    return _KINDS[config.create("cpu:0").get_action_type()]


def _check_kind(action_space: ActionKind) -> ActionKind:
    if action_space not in ALGORITHMS:
        raise ValueError(f"action_space must be 'discrete' or 'continuous', got {action_space!r}")
    return action_space


def _adam(learning_rate: float, updates: int, min_learning_rate: float) -> AdamFactory:
    schedule = CosineAnnealingLRFactory(T_max=max(1, updates), eta_min=min_learning_rate)
    return AdamFactory(lr_scheduler_factory=schedule)


def _paper_defaults(
    name: str,
    config_class: type[LearnableConfig],
    steps: int,
    batch_size: int,
    learning_rate: float,
    min_learning_rate: float,
    network_encoder: EncoderFactory | None,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    values: dict[str, Any] = {"batch_size": batch_size, **ALGORITHM_DEFAULTS.get(name, {}), **overrides}
    for field in fields:
        if field.endswith("encoder_factory"):
            values.setdefault(field, network_encoder or VisionLanguageEncoderFactory())
    # d3rlpy syncs a DQN-style target network every 8,000 updates, which a short run never
    # reaches: its TD targets would come from the initial random network throughout.
    if "target_update_interval" in fields:
        default: int = fields["target_update_interval"].default  # type: ignore[assignment]
        values.setdefault("target_update_interval", min(default, max(1, steps // MIN_TARGET_SYNCS)))
    # The actor of TD3-like learners steps once per `update_actor_interval` updates; its
    # cosine period must match its own step count, or the rate would climb back up.
    interval = int(values.get("update_actor_interval", 2)) if name in _DELAYED_ACTOR else 1
    for optim_field, rate_field in _NETWORK_OPTIMIZERS.items():
        if optim_field not in fields:
            continue
        values.setdefault(rate_field, learning_rate)
        updates = math.ceil(steps / interval) if optim_field == "actor_optim_factory" else steps
        values.setdefault(optim_field, _adam(learning_rate, updates, min_learning_rate))
    return values


def make_config(
    algo: str | LearnableConfig,
    action_space: ActionKind,
    steps: int,
    batch_size: int = 128,
    learning_rate: float = 3e-4,
    min_learning_rate: float = 1e-6,
    network_encoder: EncoderFactory | None = None,
    **overrides: Any,
) -> LearnableConfig:
    """The d3rlpy config of ``algo``, with the paper's defaults for a run of ``steps`` updates.

    Args:
        algo: A name from :data:`ALGORITHMS` (``"DiscreteBC"``, ``"CQL"``, ...), or a d3rlpy
            ``LearnableConfig`` built by hand, used as given (``overrides`` still apply).
        action_space: The dataset's action space; the algorithm must act in it.
        steps: Gradient steps of the run; the cosine schedule anneals over them.
        batch_size: Transitions per update.
        learning_rate: Adam's initial rate of every network (policy, critics, value, VAE).
        min_learning_rate: The rate the cosine schedule ends at.
        network_encoder: The encoder of every network the config has (a named algorithm only); default
            the paper's :class:`~agents.encoder.VisionLanguageEncoderFactory`.
        **overrides: Config fields, applied last (e.g. ``alpha=5.0`` for ``DiscreteCQL``,
            ``gamma=0.9``, ``encoder_factory=...``).

    Raises:
        ValueError: Unknown name (lists the valid ones for ``action_space``), an algorithm
            of the other action space, a field the config does not have, or ``steps < 1``.
    """
    kind = _check_kind(action_space)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if isinstance(algo, LearnableConfig):
        config = _replace(algo, overrides)
        found = action_kind_of(config)
        if found != kind:
            raise ValueError(
                f"{type(config).__name__} is a {found}-action learner but the dataset's actions are "
                f"{kind}; pick a config of {list(ALGORITHMS[kind])}"
            )
        return config
    if not isinstance(algo, str):
        raise TypeError(f"algo must be a name or a d3rlpy LearnableConfig, got {type(algo).__name__}")
    name = algo.removesuffix("Config")
    if name not in _CONFIGS:
        raise ValueError(
            f"unknown algorithm {algo!r}; for {kind} actions choose one of {list(ALGORITHMS[kind])}"
        )
    if _KIND_OF_NAME[name] != kind:
        raise ValueError(
            f"{name} learns {_KIND_OF_NAME[name]} actions but the dataset's actions are {kind}; "
            f"for {kind} actions choose one of {list(ALGORITHMS[kind])}"
        )
    config_class = _CONFIGS[name]
    _check_fields(config_class, overrides)
    values = _paper_defaults(
        name, config_class, steps, batch_size, learning_rate, min_learning_rate, network_encoder, overrides
    )
    return config_class(**values)


def _check_fields(config_class: type[LearnableConfig], overrides: Mapping[str, Any]) -> None:
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"{config_class.__name__} has no field(s) {unknown}; its fields: {sorted(fields)}")


def _replace(config: LearnableConfig, overrides: Mapping[str, Any]) -> LearnableConfig:
    if not overrides:
        return config
    _check_fields(type(config), overrides)
    return dataclasses.replace(config, **overrides)


def make_algorithm(
    algo: str | LearnableConfig,
    action_space: ActionKind,
    steps: int,
    device: str = "cpu:0",
    batch_size: int = 128,
    learning_rate: float = 3e-4,
    min_learning_rate: float = 1e-6,
    network_encoder: EncoderFactory | None = None,
    **overrides: Any,
) -> QLearningAlgoBase[Any, Any]:
    """A d3rlpy learner by name (or config), configured as in the paper; see :func:`make_config`.

    The networks are built by ``fit`` (or ``build_with_dataset``) from the dataset's shapes.

    >>> algo = make_algorithm("DiscreteCQL", "discrete", steps=10_000)  # doctest: +SKIP
    >>> algo.fit(to_d3rlpy("vlgor/clevr/real-train-v0"), n_steps=10_000)  # doctest: +SKIP

    Args:
        device: Torch device, e.g. ``"cpu:0"`` or ``"cuda:0"``.

    Raises:
        ValueError: As :func:`make_config`.
    """
    config = make_config(
        algo, action_space, steps, batch_size, learning_rate, min_learning_rate, network_encoder, **overrides
    )
    learner = config.create(device)
    if not isinstance(learner, QLearningAlgoBase):
        raise ValueError(f"{type(config).__name__} is not a transition learner; use one of {ALGORITHMS}")
    return learner
