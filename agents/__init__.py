"""Offline-RL learners for vlgor: the paper's policy network, algorithms by name, training, evaluation.

- :mod:`agents.encoder`: the policy network of the paper (App. A.1) as a d3rlpy encoder
  factory over tuple observations ``(image, instruction embedding)``. Importing ``agents``
  registers it, which ``d3rlpy.load_learnable`` needs to rebuild saved learners.
- :mod:`agents.registry`: d3rlpy algorithms by name (``DiscreteBC``, ``DiscreteCQL``, ``BC``,
  ``TD3PlusBC``, ``CQL``, ``IQL``, ...) with the paper's defaults (App. A.2).
- :mod:`agents.train`: :func:`train` on real and imagined Minari datasets at a fixed
  per-batch ratio, into a run folder (logs, checkpoints, final model, success curve).
- :mod:`agents.evaluate`: success rate of any policy in the real env on a language split
  (optionally on a vector of envs with one batched call per step), an adapter for d3rlpy
  learners, and a d3rlpy evaluator for learning curves.
- :mod:`agents.compose`: a CLEVR policy that carries out a compound goal one train-kind
  clause at a time (:class:`ClauseByClausePolicy`).
- :mod:`agents.commands`: ``vlgor train``.

>>> import d3rlpy, agents  # doctest: +SKIP
>>> config = agents.TrainConfig(run_dir="runs/cql", real=("vlgor/clevr/real-train-v0",),
...                              imagined=("vlgor/clevr/imagined-counterfactual-v0",),
...                              algo="DiscreteCQL", steps=10_000, eval_split="counterfactual")
>>> result = agents.train(config)  # doctest: +SKIP
>>> algo = d3rlpy.load_learnable("runs/cql/model.d3")  # doctest: +SKIP
>>> policy = agents.d3rlpy_policy(algo, agents.run_text_encoder("runs/cql"))  # doctest: +SKIP
>>> agents.evaluate(policy, "clevr", "hard", episodes=50).success_rate  # doctest: +SKIP
"""

import vlgor_envs  # noqa: F401  (first: it quiets the old gym that d3rlpy imports)

# isort: split
from agents.compose import ClauseByClausePolicy, pending_instruction
from agents.encoder import (
    ENCODER_TYPE,
    FILM_ENCODER_TYPE,
    FilmEncoderFactory,
    VisionLanguageEncoder,
    VisionLanguageEncoderFactory,
    VisionLanguageEncoderWithAction,
)
from agents.evaluate import (
    DEFAULT_EVAL_SEED,
    BatchPolicy,
    D3rlpyPolicy,
    EvaluationResult,
    Policy,
    SplitEvaluator,
    d3rlpy_policy,
    evaluate,
)
from agents.registry import (
    ALGORITHM_DEFAULTS,
    ALGORITHMS,
    learner_defaults,
    make_algorithm,
    make_config,
)
from agents.train import (
    DEFAULT_ALGORITHMS,
    TrainConfig,
    TrainResult,
    build_dataset,
    run_text_encoder,
    train,
)

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_DEFAULTS",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_EVAL_SEED",
    "ENCODER_TYPE",
    "FILM_ENCODER_TYPE",
    "BatchPolicy",
    "ClauseByClausePolicy",
    "D3rlpyPolicy",
    "EvaluationResult",
    "FilmEncoderFactory",
    "Policy",
    "SplitEvaluator",
    "TrainConfig",
    "TrainResult",
    "VisionLanguageEncoder",
    "VisionLanguageEncoderFactory",
    "VisionLanguageEncoderWithAction",
    "build_dataset",
    "d3rlpy_policy",
    "evaluate",
    "learner_defaults",
    "make_algorithm",
    "make_config",
    "pending_instruction",
    "run_text_encoder",
    "train",
]
