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
from vlgor_envs.language.roles import RoleEncoder


def goal_kind(env: str, goal: Goal) -> str:
    """What kind of goal ``goal`` is in ``env`` (``"clevr"``: relation, motion, two_relations,
    three_relations, line_up or gather; ``"metaworld"``: its task, e.g. ``door-open``)."""
    check_choice("env", env, ("clevr", "metaworld"))
    return clevr.goal_kind(goal) if env == "clevr" else metaworld.task_of(goal).name


def instruction_encoder(env: str | None) -> InstructionEncoder:
    """The instruction feature learners get in ``env`` (a name or Gymnasium id; ``None``: the
    sentence embedding).

    CLEVR instructions name balls by colour, and who is target and who is anchor is all
    that tells two goals apart, so CLEVR gets its roles parsed (:func:`clevr_role_encoder`).
    A Meta-World instruction names a task, which the sentence embedding already separates.
    """
    if env is not None and "clevr" in env.lower():
        return clevr_role_encoder()
    return default_text_encoder()


@functools.cache
def clevr_role_encoder() -> RoleEncoder:
    """CLEVR's instruction feature: the probabilities of the target's colour, the relation and
    the anchor's colour, read from the colour slots by probes fitted on the train split's
    wordings of its relation goals. Width 5 + 4 + 5 = 14. Built once per process (about 10 s)."""
    examples = []
    for goal in clevr.split_goals("train"):
        target, relation, anchor = clevr.relation_clauses(goal)[0]
        examples.append((clevr.render(goal), {"target": target, "relation": relation, "anchor": anchor}))
    roles = {"target": clevr.COLOURS, "relation": clevr.RELATIONS, "anchor": clevr.COLOURS}
    return RoleEncoder(roles, examples, KeywordSlotEncoder(clevr.COLOURS))


__all__ = [
    "Goal",
    "InstructionEncoder",
    "KeywordSlotEncoder",
    "RoleEncoder",
    "Template",
    "TextEncoder",
    "clevr_role_encoder",
    "default_text_encoder",
    "goal_kind",
    "instruction_encoder",
    "normalize_instruction",
]
