"""How predictable the CLEVR expert's next push is, from the true state (a ceiling for the model).

The imagination model's action head predicts the expert's ``a_{t+1}`` from the frame ``s_t``,
the instruction and ``a_t``. Here classifiers get more than the model ever sees: the true ball
centres at ``t`` and ``t+1``, ``a_t`` and the parsed goal (target, behaviour, anchor). They are
fit on the grounding set (``vlgor/clevr/real-train-v0``) and scored on the held-out expert
transitions the fidelity benchmark uses, beside the baseline that repeats ``a_t``. The expert
replans an A* search every step, so its next direction turns on small differences in position.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tyro
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from benchmarks.imagination_fidelity import HELDOUT_SEED, SPLITS, heldout_dataset
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs import registry
from vlgor_envs.clevr.env import N_DIRECTIONS
from vlgor_envs.imagination.data import load_transitions
from vlgor_envs.language.clevr import COLOURS, DIRECTIONS, RELATIONS, parse

NAME = "next_action_predictability"
#: The part of a goal's behaviour before ``:`` (``left_of:blue``, ``toward:left``, ...).
_BEHAVIOURS = (*RELATIONS, "toward", "around", "line_up")


@dataclass
class Args:
    heldout_episodes: int = 100
    """Held-out expert episodes per split (collected once if missing, as for the fidelity benchmark)."""
    trees: int = 300
    seed: int = 0


def _goal_features(instruction: str) -> list[int]:
    """Indices of the target, the behaviour, and its anchor ball or motion direction (-1: none)."""
    goal = parse(instruction)
    behaviour, _, argument = goal.behavior.partition(":")

    def index(options: tuple[str, ...], value: str) -> int:
        return options.index(value) if value in options else -1

    return [
        index(COLOURS, goal.target),
        index(_BEHAVIOURS, behaviour),
        index(COLOURS, argument),
        index(DIRECTIONS, argument),
    ]


def transitions(dataset_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, the current action and the expert's next action of every step that has a next
    one: the pairs the imagination model's action head is scored on."""
    data = load_transitions([dataset_id], progress=False)
    valid = data.next_action_valid
    current = np.asarray(data.actions)[valid]
    following = np.asarray(data.next_actions)[valid]
    before = data.states[data.current[valid], :10]
    after = data.states[data.future[valid], :10].reshape(-1, 5, 2)
    pushed = current // N_DIRECTIONS
    relative = (after - after[np.arange(len(pushed)), pushed][:, None]).reshape(-1, 10)
    pushes = np.stack([current, pushed, current % N_DIRECTIONS], axis=1)
    goal_of = {text: _goal_features(text) for text in set(data.instructions)}
    goals = np.array([goal_of[text] for text, keep in zip(data.instructions, valid, strict=True) if keep])
    features = np.concatenate([before, after.reshape(-1, 10), relative, pushes, goals], axis=1)
    return features, current, following


def measure(args: Args) -> dict[str, Any]:
    train_x, _, train_y = transitions(registry.entry("clevr").grounding_datasets[0])
    classifiers = {
        "random_forest": RandomForestClassifier(args.trees, random_state=args.seed, n_jobs=1),
        "gradient_boosting": HistGradientBoostingClassifier(max_iter=args.trees, random_state=args.seed),
    }
    for classifier in classifiers.values():
        classifier.fit(train_x, train_y)
    figures: dict[str, Any] = {"fit_transitions": len(train_y), "heldout_seed": HELDOUT_SEED}
    for split in SPLITS:
        x, current, following = transitions(heldout_dataset("clevr", split, args.heldout_episodes))
        figures[split] = {
            "transitions": len(following),
            "repeat_current": float(np.mean(current == following)),
            **{name: float(np.mean(c.predict(x) == following)) for name, c in classifiers.items()},
        }
    fitted = classifiers["random_forest"].predict(train_x)
    figures["random_forest_on_fit_set"] = float(np.mean(fitted == train_y))
    return figures


def readme_table() -> str:
    result = load_result(NAME)
    figures = result["figures"]
    rows = [
        [
            split,
            f"{100 * figures[split]['repeat_current']:.1f}%",
            f"{100 * figures[split]['random_forest']:.1f}%",
            f"{100 * figures[split]['gradient_boosting']:.1f}%",
        ]
        for split in SPLITS
    ]
    return (
        markdown_table(
            ["held-out instructions", "repeat a_t", "random forest (true state)", "boosting (true state)"],
            rows,
        )
        + f"\n\nNext-action accuracy on held-out expert transitions; classifiers fit on the "
        f"{figures['fit_transitions']:,} grounding transitions (random forest: "
        f"{100 * figures['random_forest_on_fit_set']:.0f}% on them). {provenance(result)}"
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
