"""Every per-environment fact in one place: a new environment is one entry here plus its own
modules (its env, expert, language and imagination judge), which entries name by import path
so that nothing here imports them.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Literal

ActionKind = Literal["discrete", "continuous"]
#: The envs' short names, as command-line choices (a test keeps it equal to ``ENTRIES``'s keys).
EnvName = Literal["clevr", "metaworld"]


@dataclasses.dataclass(frozen=True)
class EnvEntry:
    """One VLGOR environment: its Gymnasium ids and the parts the layers above look up."""

    name: str
    """Short name used on the command line and in dataset ids (``clevr``)."""
    env_id: str
    """Gymnasium id of the real env."""
    entry_point: str
    """``module:Class`` of the real env."""
    language: str
    """Module of its language: ``SPLITS``, ``SPLIT_WORDING``, ``TASK_NAMES``,
    ``COUNTERFACTUAL_EDITS``, ``split_goals``, ``sample_goal``, ``render``, ``parse``,
    ``validate_goal``, ``goal_kind``, ``sample_counterfactual`` and ``split_summary``."""
    instruction_feature: str
    """``module:callable(examples)`` giving the instruction feature its learners read."""
    imagined_env_id: str
    """Gymnasium id of its imagination env."""
    expert: str
    """``module:callable`` making a new scripted expert (``act(info) -> action``)."""
    object_state_info: str
    """The ``info`` entry recorded per step as ``infos["object_state"]`` (flattened float32),
    the object state the imagination model learns to predict."""
    action_kind: ActionKind
    """``Discrete`` or ``Box`` actions."""
    imagination_judge: str
    """``module:Class`` that starts, scores and describes imagined episodes of this env."""
    max_episode_steps: int | None
    """Gymnasium's step limit, or ``None`` where the env truncates per task itself."""
    model_recipe: dict[str, Any]
    """Fields of its imagination model's ``WorldModelConfig`` that differ from the defaults
    (which are CLEVR's recipe), by their names in ``config.json``."""
    pretrain_datasets: tuple[str, ...]
    """Instruction-free interaction data its imagination model is pretrained on."""
    grounding_datasets: tuple[str, ...]
    """Instruction-labelled train-split rollouts it is grounded on."""
    drop_imagined_failures: bool
    """Whether the split benchmark drops imagined rollouts that failed, by default."""
    regimes: tuple[str, ...]
    """Data regimes the split benchmark compares by default."""


ENTRIES: dict[str, EnvEntry] = {
    "clevr": EnvEntry(
        name="clevr",
        env_id="VLGOR-CLEVR-v0",
        entry_point="vlgor_envs.clevr.env:ClevrRobotEnv",
        language="vlgor_envs.language.clevr",
        # Opposite goals differ only in which colour plays which role: parse the roles.
        instruction_feature="vlgor_envs.language:clevr_role_encoder",
        imagined_env_id="VLGOR-Imagined-CLEVR",
        expert="vlgor_envs.clevr.expert:default_expert",
        object_state_info="ball_positions",
        action_kind="discrete",
        imagination_judge="vlgor_envs.imagination.judges:ClevrJudge",
        max_episode_steps=50,
        # Ball centres (5 x 2) and 40 pushes: the config's defaults.
        model_recipe={},
        pretrain_datasets=("vlgor/clevr/random-v0", "vlgor/clevr/explore-hard-v0"),
        grounding_datasets=("vlgor/clevr/real-train-v0",),
        # The paper's imagined dataset holds the rollouts that achieve their goals.
        drop_imagined_failures=True,
        regimes=("baseline", "vlgor", "oracle", "wo_target", "wo_behavior"),
    ),
    "metaworld": EnvEntry(
        name="metaworld",
        env_id="VLGOR-MetaWorld-v0",
        entry_point="vlgor_envs.metaworld.env:MetaWorldLanguageEnv",
        language="vlgor_envs.language.metaworld",
        # An instruction names a task, which the sentence embedding already separates.
        instruction_feature="vlgor_envs.language:sentence_feature",
        imagined_env_id="VLGOR-Imagined-MetaWorld",
        expert="vlgor_envs.metaworld.expert:MetaWorldExpert",
        object_state_info="state",
        action_kind="continuous",
        imagination_judge="vlgor_envs.imagination.judges:MetaWorldJudge",
        max_episode_steps=None,
        # Hand xyz, gripper opening, first object's xyz (the first 7 of the 39-d state); its
        # shipped model was trained before CLEVR's recipe (flow from noise, no change weight).
        model_recipe={
            "action_kind": "continuous",
            "action_dim": 4,
            "state_indices": tuple(range(7)),
            "readout_channels": 0,
            "flow_source": "noise",
            "change_weight": 0.0,
            "condition_generation": False,
        },
        pretrain_datasets=("vlgor/metaworld/random-v0", "vlgor/metaworld/real-train-v0"),
        grounding_datasets=("vlgor/metaworld/real-train-v0",),
        # Its imagined success is judged by an approximate state head: failures are kept.
        drop_imagined_failures=False,
        # All its counterfactual tasks edit the behaviour, so "w/o target" would equal
        # "+VLGOR" and "w/o behavior" has nothing to imagine.
        regimes=("baseline", "vlgor", "oracle"),
    ),
}


def entry(name: str) -> EnvEntry:
    """The entry of env ``name``, or a ``ValueError`` listing the known ones."""
    if name not in ENTRIES:
        raise ValueError(f"unknown env {name!r}; choose one of {sorted(ENTRIES)}")
    return ENTRIES[name]


def find(name_or_id: str) -> EnvEntry:
    """The entry named ``name_or_id`` or having it as its real or imagined Gymnasium id."""
    return ENTRIES[name_or_id] if name_or_id in ENTRIES else entry_of_id(name_or_id)


def entry_of_id(env_id: str) -> EnvEntry:
    """The entry whose real or imagined Gymnasium id is ``env_id``."""
    for found in ENTRIES.values():
        if env_id in (found.env_id, found.imagined_env_id):
            return found
    raise ValueError(f"no vlgor env has the id {env_id!r}; the ids: {[e.env_id for e in ENTRIES.values()]}")


def load(path: str) -> Any:
    """The object at ``module:name`` (or the module at ``module``), its module imported."""
    module, _, name = path.partition(":")
    imported = importlib.import_module(module)
    return getattr(imported, name) if name else imported
