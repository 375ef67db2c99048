"""Language layer: structured goals, wordings, splits, counterfactual edits, text encoder."""

from vlgor_envs.language import clevr, metaworld
from vlgor_envs.language.encoder import InstructionEncoder, TextEncoder, default_text_encoder
from vlgor_envs.language.goal import Goal, Template, check_choice, normalize_instruction


def goal_kind(env: str, goal: Goal) -> str:
    """What kind of goal ``goal`` is in ``env`` (``"clevr"``: relation, motion, two_relations,
    three_relations, line_up or gather; ``"metaworld"``: its task, e.g. ``door-open``)."""
    check_choice("env", env, ("clevr", "metaworld"))
    return clevr.goal_kind(goal) if env == "clevr" else metaworld.task_of(goal).name


__all__ = [
    "Goal",
    "InstructionEncoder",
    "Template",
    "TextEncoder",
    "default_text_encoder",
    "goal_kind",
    "normalize_instruction",
]
