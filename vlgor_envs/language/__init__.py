"""Language layer: structured goals, wordings, splits, counterfactual edits, text encoder."""

import functools

from vlgor_envs.language import clevr, metaworld
from vlgor_envs.language.encoder import (
    InstructionEncoder,
    KeywordSlotEncoder,
    TextEncoder,
    default_text_encoder,
)
from vlgor_envs.language.goal import Goal, Template, check_choice, normalize_instruction


def goal_kind(env: str, goal: Goal) -> str:
    """What kind of goal ``goal`` is in ``env`` (``"clevr"``: relation, motion, two_relations,
    three_relations, line_up or gather; ``"metaworld"``: its task, e.g. ``door-open``)."""
    check_choice("env", env, ("clevr", "metaworld"))
    return clevr.goal_kind(goal) if env == "clevr" else metaworld.task_of(goal).name


def instruction_encoder(env: str | None) -> InstructionEncoder:
    """The instruction feature learners get in ``env`` (a name or Gymnasium id; ``None``: the
    sentence embedding).

    CLEVR instructions name balls by colour, and who is target and who is anchor is all
    that tells two goals apart, so CLEVR gets colour slots (:class:`KeywordSlotEncoder`).
    A Meta-World instruction names a task, which the sentence embedding already separates.
    """
    if env is not None and "clevr" in env.lower():
        return _clevr_slots()
    return default_text_encoder()


@functools.cache
def _clevr_slots() -> KeywordSlotEncoder:
    return KeywordSlotEncoder(clevr.COLOURS)


__all__ = [
    "Goal",
    "InstructionEncoder",
    "KeywordSlotEncoder",
    "Template",
    "TextEncoder",
    "default_text_encoder",
    "goal_kind",
    "instruction_encoder",
    "normalize_instruction",
]
