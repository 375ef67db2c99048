"""Language layer: structured goals, wordings, splits, counterfactual edits, text encoder."""

import functools
from types import ModuleType
from typing import cast

from vlgor_envs import registry
from vlgor_envs.language import clevr
from vlgor_envs.language.encoder import (
    InstructionEncoder,
    KeywordSlotEncoder,
    TextEncoder,
    default_text_encoder,
)
from vlgor_envs.language.goal import Goal, Template, check_choice, normalize_instruction
from vlgor_envs.language.roles import RoleEncoder


def language_of(env: str) -> ModuleType:
    """The language module of ``env`` (a short name or Gymnasium id; see ``registry.EnvEntry.language``)."""
    return cast(ModuleType, registry.load(registry.find(env).language))


def goal_kind(env: str, goal: Goal) -> str:
    """What kind of goal ``goal`` is in ``env`` (``"clevr"``: relation, motion, two_relations,
    three_relations, line_up or gather; ``"metaworld"``: its task, e.g. ``door-open``)."""
    check_choice("env", env, tuple(registry.ENTRIES))
    return str(language_of(env).goal_kind(goal))


InstructionExamples = tuple[tuple[str, Goal], ...]
"""Instructions and the goals they state, in a fixed order (what a dataset's episodes record)."""


def instruction_encoder(env: str | None, examples: InstructionExamples | None = None) -> InstructionEncoder:
    """The instruction feature learners get in ``env`` (a name or Gymnasium id): its registry
    entry's ``instruction_feature`` fitted on ``examples`` (a learner's datasets' instructions
    and goals; default the train split's). ``None`` or an env outside vlgor: the sentence
    embedding."""
    if env is None:
        return sentence_feature(examples)
    try:
        entry = registry.find(env)
    except ValueError:  # a dataset of another env
        return sentence_feature(examples)
    return cast(InstructionEncoder, registry.load(entry.instruction_feature)(examples))


def sentence_feature(examples: InstructionExamples | None = None) -> TextEncoder:
    """The MiniLM sentence embedding, which needs no ``examples``."""
    return default_text_encoder()


@functools.cache
def clevr_role_encoder(examples: InstructionExamples | None = None) -> RoleEncoder:
    """CLEVR's instruction feature: the probabilities of every role of ``clevr.ROLES`` (the
    goal's kind, each target's colour and relation, the anchor's colour, a motion's
    direction), read from the colour slots by probes fitted on ``examples`` (default: every
    train-split goal in its wording). Roles the examples never vary, and choices they never
    make, are left out: 14 numbers for the train split, up to 50. Built once per process and
    set of examples (about 10 s for the train split's 600)."""
    if examples is None:
        examples = tuple((clevr.render(goal), goal) for goal in clevr.split_goals("train"))
    labelled = [(text, clevr.roles_of(goal)) for text, goal in examples]
    return RoleEncoder(clevr.ROLES, labelled, _clevr_slots())


@functools.cache
def _clevr_slots() -> KeywordSlotEncoder:
    """One reader for every CLEVR parser, so its cache of MiniLM states is shared."""
    return KeywordSlotEncoder(clevr.COLOURS)


__all__ = [
    "Goal",
    "InstructionEncoder",
    "InstructionExamples",
    "KeywordSlotEncoder",
    "RoleEncoder",
    "Template",
    "TextEncoder",
    "clevr_role_encoder",
    "default_text_encoder",
    "goal_kind",
    "instruction_encoder",
    "language_of",
    "normalize_instruction",
    "sentence_feature",
]
