"""Language layer: structured goals, wordings, splits, counterfactual edits, text encoder."""

from vlgor_envs.language.encoder import InstructionEncoder, TextEncoder, default_text_encoder
from vlgor_envs.language.goal import Goal, Template, normalize_instruction

__all__ = [
    "Goal",
    "InstructionEncoder",
    "Template",
    "TextEncoder",
    "default_text_encoder",
    "normalize_instruction",
]
