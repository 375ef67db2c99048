"""Does the instruction feature say who does what? Linear probes on held-out wordings.

For each CLEVR relation goal, a logistic-regression probe reads the target colour, the
relation and the anchor colour from the instruction feature. The probes are fitted on the
train split's wordings and scored on the rephrasing split's (the same tasks in wordings the
probes never saw), for the MiniLM sentence embedding, the keyword-slot feature
(:class:`vlgor_envs.language.encoder.KeywordSlotEncoder`) and the parsed roles the CLEVR
learners get (:func:`vlgor_envs.language.clevr_role_encoder`, probes of the slots fitted on
the same train wordings, so its row shows what the learners receive on unseen wordings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tyro
from sklearn.linear_model import LogisticRegression

from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.language import clevr as language
from vlgor_envs.language import clevr_role_encoder
from vlgor_envs.language.encoder import InstructionEncoder, KeywordSlotEncoder, default_text_encoder
from vlgor_envs.language.goal import Goal

NAME = "instruction_probe"
FIELDS = ("target", "relation", "anchor")


@dataclass
class Args:
    templates: int = 0
    """Use only the first N templates of each split (0: all), for a quick look."""


def relation_goals(split: str, templates: int = 0) -> list[Goal]:
    """The split's single-relation goals, optionally from its first ``templates`` templates."""
    goals = [g for g in language.split_goals(split) if language.goal_kind(g) == "relation"]
    if templates:
        names = sorted({g.template for g in goals}, key=lambda t: int(t.rsplit("-", 1)[1]))[:templates]
        goals = [g for g in goals if g.template in names]
    return goals


def probe(
    encoder: InstructionEncoder, fit_goals: Sequence[Goal], test_goals: Sequence[Goal]
) -> dict[str, float]:
    """Held-out accuracy of a linear probe for each field, and of all three at once."""

    def table(goals: Sequence[Goal]) -> tuple[np.ndarray, np.ndarray]:
        features = np.stack([encoder.encode(language.render(g)) for g in goals])
        return features, np.array([language.relation_clauses(g)[0] for g in goals])

    x_fit, y_fit = table(fit_goals)
    x_test, y_test = table(test_goals)
    correct = np.ones(len(test_goals), dtype=bool)
    scores: dict[str, float] = {}
    for column, field in enumerate(FIELDS):
        model = LogisticRegression(max_iter=3000).fit(x_fit, y_fit[:, column])
        hits = model.predict(x_test) == y_test[:, column]
        scores[field] = float(hits.mean())
        correct &= hits
    scores["all_three"] = float(correct.mean())
    return scores


def measure(args: Args) -> dict[str, Any]:
    fit_goals = relation_goals("train", args.templates)
    test_goals = relation_goals("rephrasing", args.templates)
    encoders: dict[str, InstructionEncoder] = {
        "sentence": default_text_encoder(),
        "keyword_slots": KeywordSlotEncoder(language.COLOURS),
        "parsed_roles": clevr_role_encoder(),
    }
    figures: dict[str, Any] = {"fit_goals": len(fit_goals), "test_goals": len(test_goals)}
    for name, encoder in encoders.items():
        figures[name] = probe(encoder, fit_goals, test_goals)
        print(name, figures[name])
    return figures


def readme_table() -> str:
    result = load_result(NAME)
    figures = result["figures"]
    rows = [
        [name, *(f"{100 * figures[name][f]:.0f}" for f in (*FIELDS, "all_three"))]
        for name in ("sentence", "keyword_slots", "parsed_roles")
        if name in figures
    ]
    return (
        markdown_table(
            ["instruction feature", "target (%)", "relation (%)", "anchor (%)", "all three (%)"], rows
        )
        + f"\n\nLogistic-regression probes fitted on {figures['fit_goals']} train-wording relation goals, "
        + f"scored on {figures['test_goals']} rephrasing-wording ones. "
        + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
