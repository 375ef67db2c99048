"""Language layer: structured goals, wordings, splits, counterfactual edits, text encoder."""

from vlgor_envs.language.goal import Goal, Template, normalize_instruction

__all__ = ["Goal", "Template", "normalize_instruction"]
