"""The CLEVR-Robot language: goal grammar, wordings, splits and counterfactual edits.

Goal grammar (``Goal(template, target, behavior)``):

============== ===================== ============================== =======================
kind           target                behavior                       example text
============== ===================== ============================== =======================
relation       ``red``               ``left_of:blue``               move the red ball to the
                                                                    left of the blue ball
motion         ``red``               ``toward:left``                move the red ball toward
                                                                    the left
two_relations  ``red,green``         ``left_of:blue;behind:blue``   one anchor, two targets
three_relations ``red,green,cyan``   three clauses, one anchor      one anchor, three targets
line_up        ``all``               ``line_up``                    line up all the balls
gather         ``all``               ``around:red``                 gather the balls around
                                                                    the red ball
============== ===================== ============================== =======================

Directions are fixed in the image of the top-down camera, whose up axis is world ``+y``:
*left*/*right* are image left/right (world ``-x``/``+x``), *in front of* is lower in the
image (world ``-y``, toward the viewer at the bottom edge) and *behind* is higher in the
image (world ``+y``). Motions use the same frame: *front* is down, *back* is up.

Templates are numbered per wording set: ``train-3`` is the fourth training template, and a
counterfactual behaviour edit from a relation to a motion keeps ``train-3`` (the paper's
fixed background template ``t``).
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from vlgor_envs.language.goal import Goal, Template, check_choice, normalize_instruction

COLOURS: tuple[str, ...] = ("red", "blue", "green", "purple", "cyan")
RELATIONS: tuple[str, ...] = ("left_of", "right_of", "in_front_of", "behind")
DIRECTIONS: tuple[str, ...] = ("left", "right", "front", "back")
SPLITS: tuple[str, ...] = ("train", "rephrasing", "counterfactual", "hard")
KINDS: tuple[str, ...] = (
    "relation",
    "motion",
    "two_relations",
    "three_relations",
    "line_up",
    "gather",
)

#: Unit vector of each relation and motion direction in world coordinates (see module doc).
DIRECTION_VECTORS: dict[str, tuple[float, float]] = {
    "left_of": (-1.0, 0.0),
    "right_of": (1.0, 0.0),
    "in_front_of": (0.0, -1.0),
    "behind": (0.0, 1.0),
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "front": (0.0, -1.0),
    "back": (0.0, 1.0),
}

ALL_BALLS = "all"

# --- wordings -----------------------------------------------------------------------------

_TRAIN_RELATION_WORDS = {
    "left_of": "to the left of",
    "right_of": "to the right of",
    "in_front_of": "in front of",
    "behind": "behind",
}
_TRAIN_DIRECTION_WORDS = {"left": "left", "right": "right", "front": "front", "back": "back"}
# Held-out direction words: three variants so rephrasings differ in more than the verb.
_SIDE_WORDS = {
    "left_of": "on the left side of",
    "right_of": "on the right side of",
    "in_front_of": "in front of",
    "behind": "at the back of",
}
_IMAGE_WORDS = {
    "left_of": "left of",
    "right_of": "right of",
    "in_front_of": "below",
    "behind": "above",
}
_AHEAD_WORDS = {
    "left_of": "to the left side of",
    "right_of": "to the right side of",
    "in_front_of": "ahead of",
    "behind": "in back of",
}


def _templates(texts: Sequence[str], **vocab: Mapping[str, str]) -> tuple[Template, ...]:
    return tuple(Template(text, vocab) for text in texts)


_TRAIN_RELATION = _templates(
    [
        "move the {target} ball {relation} the {anchor} ball",
        "push the {target} ball {relation} the {anchor} ball",
        "put the {target} ball {relation} the {anchor} ball",
        "can you move the {target} ball {relation} the {anchor} ball",
        "place the {target} ball {relation} the {anchor} ball",
        "i want the {target} ball {relation} the {anchor} ball",
        "the {target} ball should be {relation} the {anchor} ball",
        "get the {target} ball {relation} the {anchor} ball",
        "keep pushing the {target} ball until it is {relation} the {anchor} ball",
        "move the {target} ball so that it is {relation} the {anchor} ball",
    ],
    relation=_TRAIN_RELATION_WORDS,
)
# Parallel to _TRAIN_RELATION, so a relation-to-motion edit keeps the template index.
_TRAIN_MOTION = _templates(
    [
        "move the {target} ball toward the {direction}",
        "push the {target} ball toward the {direction}",
        "put the {target} ball further toward the {direction}",
        "can you move the {target} ball toward the {direction}",
        "place the {target} ball more to the {direction}",
        "i want the {target} ball moved toward the {direction}",
        "the {target} ball should move toward the {direction}",
        "get the {target} ball to go toward the {direction}",
        "keep pushing the {target} ball toward the {direction}",
        "move the {target} ball so that it goes toward the {direction}",
    ],
    direction=_TRAIN_DIRECTION_WORDS,
)
_REPHRASING_RELATION = (
    *_templates(
        [
            "roll the {target} sphere {relation} the {anchor} sphere",
            "could you slide the {target} sphere {relation} the {anchor} ball",
            "the {anchor} ball needs the {target} ball {relation} it",
            "drive the {target} ball over {relation} the {anchor} ball",
        ],
        relation=_SIDE_WORDS,
    ),
    *_templates(
        [
            "nudge the {target} ball so it ends up {relation} the {anchor} one",
            "please bring the {target} ball {relation} the {anchor} sphere",
            "the {target} ball goes {relation} the {anchor} ball",
            "position the {target} object {relation} the {anchor} object",
        ],
        relation=_IMAGE_WORDS,
    ),
    *_templates(
        [
            "shift the {target} orb {relation} the {anchor} orb",
            "relocate the {target} ball {relation} the {anchor} ball",
            "make sure the {target} sphere sits {relation} the {anchor} sphere",
            "steer the {target} ball until it rests {relation} the {anchor} ball",
        ],
        relation=_AHEAD_WORDS,
    ),
)
_HARD = {
    "two_relations": _templates(
        [
            "move the {target} ball {relation} the {anchor} ball and the {target2} ball {relation2} it",
            "put the {target} ball {relation} the {anchor} ball, then the {target2} ball {relation2} it",
            "arrange the balls so the {target} one is {relation} the {anchor} one "
            "and the {target2} one is {relation2} it",
            "around the {anchor} ball, place the {target} ball {relation} it "
            "and the {target2} ball {relation2} it",
        ],
        relation=_TRAIN_RELATION_WORDS,
    ),
    "three_relations": _templates(
        [
            "move the {target} ball {relation} the {anchor} ball, the {target2} ball {relation2} it "
            "and the {target3} ball {relation3} it",
            "put the {target} ball {relation} the {anchor} ball, the {target2} ball {relation2} it, "
            "then the {target3} ball {relation3} it",
            "arrange the {target}, {target2} and {target3} balls {relation}, {relation2} "
            "and {relation3} the {anchor} ball",
            "around the {anchor} ball, place the {target} ball {relation} it, "
            "the {target2} ball {relation2} it and the {target3} ball {relation3} it",
        ],
        relation=_TRAIN_RELATION_WORDS,
    ),
    "line_up": _templates(
        [
            "line up all the balls in a row",
            "arrange the five balls in a straight line",
            "put every ball in one line",
            "make a row out of all the balls",
        ]
    ),
    "gather": _templates(
        [
            "gather all the balls around the {anchor} ball",
            "bring every other ball close to the {anchor} ball",
            "cluster the balls around the {anchor} one",
            "move all the other balls next to the {anchor} ball",
        ]
    ),
}

#: Templates per (wording set, goal kind).
TEMPLATES: dict[tuple[str, str], tuple[Template, ...]] = {
    ("train", "relation"): _TRAIN_RELATION,
    ("train", "motion"): _TRAIN_MOTION,
    ("rephrasing", "relation"): _REPHRASING_RELATION,
    **{("hard", kind): templates for kind, templates in _HARD.items()},
}

#: The wording set each split renders its goals in. Counterfactual goals keep the training
#: wording: only the target or behaviour is edited (paper App. B.2).
SPLIT_WORDING = {
    "train": "train",
    "rephrasing": "rephrasing",
    "counterfactual": "train",
    "hard": "hard",
}

# --- goal structure -----------------------------------------------------------------------

_CLAUSE_COUNT = {"relation": 1, "two_relations": 2, "three_relations": 3}

Clause = tuple[str, str, str]
"""One relational requirement ``(target, relation, anchor)``."""


def goal_kind(goal: Goal) -> str:
    """The kind of a goal (see the module docstring)."""
    if goal.behavior == "line_up":
        return "line_up"
    head = goal.behavior.split(":", 1)[0]
    if head == "around":
        return "gather"
    if head == "toward":
        return "motion"
    clause_count = goal.target.count(",") + 1
    return {count: kind for kind, count in _CLAUSE_COUNT.items()}[clause_count]


def relation_clauses(goal: Goal) -> list[Clause]:
    """The ``(target, relation, anchor)`` clauses of a relational or compound goal."""
    behaviours = goal.behavior.split(";")
    targets = goal.target.split(",")
    clauses = []
    for target, behaviour in zip(targets, behaviours, strict=True):
        relation, anchor = behaviour.split(":")
        clauses.append((target, relation, anchor))
    return clauses


def target_balls(goal: Goal) -> list[str]:
    """The balls the goal asks to move (every ball but the anchor when gathering)."""
    kind = goal_kind(goal)
    if kind == "line_up":
        return list(COLOURS)
    if kind == "gather":
        return [c for c in COLOURS if c != goal.behavior.split(":")[1]]
    return goal.target.split(",")


def anchor_balls(goal: Goal) -> list[str]:
    """The balls the goal is defined relative to (relation and gathering anchors)."""
    kind = goal_kind(goal)
    if kind in ("motion", "line_up"):
        return []
    if kind == "gather":
        return [goal.behavior.split(":")[1]]
    return sorted({anchor for _, _, anchor in relation_clauses(goal)})


def relation_goal(target: str, relation: str, anchor: str, template: str = "train-0") -> Goal:
    """``Goal`` for "move ``target`` ``relation`` ``anchor``"."""
    return Goal(template, target, f"{relation}:{anchor}")


def motion_goal(target: str, direction: str, template: str = "train-0") -> Goal:
    """``Goal`` for "move ``target`` toward ``direction``"."""
    return Goal(template, target, f"toward:{direction}")


def validate_goal(goal: Goal) -> Goal:
    """Raise ``ValueError`` naming the problem if ``goal`` is not a well-formed CLEVR goal."""
    try:
        kind = goal_kind(goal)
    except KeyError:
        raise ValueError(f"goal {goal} has more than three targets") from None
    wording, _, index = goal.template.rpartition("-")
    templates = TEMPLATES.get((wording, kind))
    if templates is None or not index.isdigit() or int(index) >= len(templates):
        known = sorted(f"{w}-0..{len(t) - 1}" for (w, k), t in TEMPLATES.items() if k == kind)
        raise ValueError(f"unknown template {goal.template!r} for a {kind} goal: expected one of {known}")
    if kind == "line_up":
        if goal.target != ALL_BALLS:
            raise ValueError(f"a line_up goal targets {ALL_BALLS!r}, not {goal.target!r}")
    elif kind == "gather":
        check_choice("colour", goal.behavior.split(":", 1)[1], COLOURS)
        if goal.target != ALL_BALLS:
            raise ValueError(f"a gather goal targets {ALL_BALLS!r}, not {goal.target!r}")
    elif kind == "motion":
        check_choice("colour", goal.target, COLOURS)
        check_choice("direction", goal.behavior.split(":", 1)[1], DIRECTIONS)
    else:
        _validate_clauses(goal)
    return goal


def _validate_clauses(goal: Goal) -> None:
    try:
        clauses = relation_clauses(goal)
    except ValueError:
        raise ValueError(
            f"goal {goal}: behaviour must be ';'-separated 'relation:anchor' clauses, one per "
            "','-separated target"
        ) from None
    for target, relation, anchor in clauses:
        check_choice("colour", target, COLOURS)
        check_choice("colour", anchor, COLOURS)
        check_choice("relation", relation, RELATIONS)
    targets = [c[0] for c in clauses]
    anchors = {c[2] for c in clauses}
    placements = [(c[1], c[2]) for c in clauses]
    if len(set(targets)) != len(targets):
        raise ValueError(f"goal {goal}: a ball appears twice among the targets")
    if anchors & set(targets):
        raise ValueError(f"goal {goal}: a ball cannot be both a target and an anchor")
    if len(clauses) > 1 and (len(anchors) != 1 or len(set(placements)) != len(placements)):
        raise ValueError(f"goal {goal}: compound goals share one anchor and use distinct relations")


def _slots(goal: Goal) -> dict[str, str]:
    kind = goal_kind(goal)
    if kind == "line_up":
        return {}
    if kind == "gather":
        return {"anchor": goal.behavior.split(":")[1]}
    if kind == "motion":
        return {"target": goal.target, "direction": goal.behavior.split(":")[1]}
    slots = {}
    for number, (target, relation, anchor) in enumerate(relation_clauses(goal), start=1):
        suffix = "" if number == 1 else str(number)
        slots[f"target{suffix}"] = target
        slots[f"relation{suffix}"] = relation
        slots["anchor"] = anchor
    return slots


#: What a parser of CLEVR instructions names, and the choices of each: the goal's kind, then
#: its slots; ``"none"`` where a kind has no such slot (a motion has no anchor).
NO_SLOT = "none"
ROLES: dict[str, tuple[str, ...]] = {
    "kind": KINDS,
    "target": (*COLOURS, NO_SLOT),
    "relation": (*RELATIONS, NO_SLOT),
    "anchor": (*COLOURS, NO_SLOT),
    "direction": (*DIRECTIONS, NO_SLOT),
    "target2": (*COLOURS, NO_SLOT),
    "relation2": (*RELATIONS, NO_SLOT),
    "target3": (*COLOURS, NO_SLOT),
    "relation3": (*RELATIONS, NO_SLOT),
}


def roles_of(goal: Goal) -> dict[str, str]:
    """The choice of every role of :data:`ROLES` for ``goal`` (its kind and slots)."""
    slots = _slots(goal)
    return {"kind": goal_kind(goal)} | {role: slots.get(role, NO_SLOT) for role in ROLES if role != "kind"}


def _goal_from_slots(kind: str, template: str, slots: Mapping[str, str]) -> Goal:
    if kind == "line_up":
        return Goal(template, ALL_BALLS, "line_up")
    if kind == "gather":
        return Goal(template, ALL_BALLS, f"around:{slots['anchor']}")
    if kind == "motion":
        return Goal(template, slots["target"], f"toward:{slots['direction']}")
    suffixes = ["", "2", "3"][: _CLAUSE_COUNT[kind]]
    targets = ",".join(slots[f"target{s}"] for s in suffixes)
    behaviour = ";".join(f"{slots[f'relation{s}']}:{slots['anchor']}" for s in suffixes)
    return Goal(template, targets, behaviour)


# --- render and parse ---------------------------------------------------------------------


def render(goal: Goal) -> str:
    """The instruction text of a goal in its own template."""
    validate_goal(goal)
    template = TEMPLATES[(goal.wording, goal_kind(goal))][goal.template_index]
    return template.render(_slots(goal))


def parse(text: str) -> Goal:
    """The goal of an instruction in any template of any split.

    Raises ``ValueError`` that names the problem: an unknown colour, an invalid combination,
    or text that matches no template (with example instructions to follow).
    """
    normal = normalize_instruction(text)
    for (wording, kind), templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            slots = template.match(normal)
            if slots is None:
                continue
            for name, value in slots.items():
                if name.startswith(("target", "anchor")) and value not in COLOURS:
                    raise ValueError(
                        f"unknown colour {value!r} in instruction {text!r}: "
                        f"the balls are {', '.join(COLOURS)}"
                    )
            return validate_goal(_goal_from_slots(kind, f"{wording}-{index}", slots))
    examples = "; ".join(repr(render(split_goals(split)[0])) for split in SPLITS)
    raise ValueError(
        f"could not parse instruction {text!r}: it matches no CLEVR template. "
        f"Examples of instructions that parse: {examples}. To use your own wording, pass "
        "reset(options={'goal': Goal(...), 'instruction': text})."
    )


# --- splits -------------------------------------------------------------------------------


def held_out_relation(target: str, anchor: str) -> str:
    """The relation of the ordered pair (target, anchor) that the train split holds out.

    One relation per ordered pair: ``RELATIONS[(i_target + i_anchor) % 4]`` with colour
    indices in ``COLOURS`` order. Every held-out goal is one edit away from train goals.
    """
    return RELATIONS[(COLOURS.index(target) + COLOURS.index(anchor)) % len(RELATIONS)]


def _relational_tasks() -> list[tuple[str, str, str]]:
    return [(t, r, a) for t, a in itertools.permutations(COLOURS, 2) for r in RELATIONS]


@functools.cache
def _train_tasks() -> frozenset[tuple[str, str]]:
    return frozenset((t, f"{r}:{a}") for t, r, a in _relational_tasks() if r != held_out_relation(t, a))


def _with_templates(tasks: Sequence[tuple[str, str]], wording: str) -> list[Goal]:
    goals = []
    for target, behaviour in tasks:
        kind = goal_kind(Goal(f"{wording}-0", target, behaviour))
        for index in range(len(TEMPLATES[(wording, kind)])):
            goals.append(Goal(f"{wording}-{index}", target, behaviour))
    return goals


def _compound_tasks(size: int) -> list[tuple[str, str]]:
    tasks = []
    for anchor in COLOURS:
        others = [c for c in COLOURS if c != anchor]
        for targets in itertools.combinations(others, size):
            for relations in itertools.permutations(RELATIONS, size):
                behaviour = ";".join(f"{r}:{anchor}" for r in relations)
                tasks.append((",".join(targets), behaviour))
    return tasks


@functools.cache
def split_goals(split: str) -> tuple[Goal, ...]:
    """Every goal of a split, each in every template of the split's wording set."""
    check_choice("split", split, SPLITS)
    train = sorted(_train_tasks())
    if split == "train":
        return tuple(_with_templates(train, "train"))
    if split == "rephrasing":
        return tuple(_with_templates(train, "rephrasing"))
    if split == "counterfactual":
        held_out = [
            (t, f"{r}:{a}") for t, r, a in _relational_tasks() if (t, f"{r}:{a}") not in _train_tasks()
        ]
        motions = [(t, f"toward:{d}") for t in COLOURS for d in DIRECTIONS]
        return tuple(_with_templates(held_out + motions, "train"))
    tasks = [
        *_compound_tasks(2),
        *_compound_tasks(3),
        (ALL_BALLS, "line_up"),
        *[(ALL_BALLS, f"around:{c}") for c in COLOURS],
    ]
    return tuple(_with_templates(tasks, "hard"))


@functools.cache
def _goals_by_kind(split: str) -> dict[str, tuple[Goal, ...]]:
    by_kind: dict[str, list[Goal]] = {}
    for goal in split_goals(split):
        by_kind.setdefault(goal_kind(goal), []).append(goal)
    return {kind: tuple(goals) for kind, goals in by_kind.items()}


def sample_goal(split: str, rng: np.random.Generator) -> Goal:
    """A goal of ``split``: a goal kind uniformly, then a goal of that kind uniformly.

    Sampling the kind first keeps rare kinds (line-up, gather) in the hard split's mix.
    """
    by_kind = _goals_by_kind(split)
    kinds = sorted(by_kind)
    goals = by_kind[kinds[int(rng.integers(len(kinds)))]]
    return goals[int(rng.integers(len(goals)))]


def is_train_task(goal: Goal) -> bool:
    """Whether the goal's task (target and behaviour, any wording) is in the train split."""
    return (goal.target, goal.behavior) in _train_tasks()


# --- counterfactual edits -----------------------------------------------------------------


def counterfactual_target(goal: Goal) -> list[Goal]:
    """Every edit of ``goal`` that changes only the manipulated ball and leaves train.

    The behaviour (relation and anchor, or motion direction) and template stay; the result
    holds only goals absent from the train split, sorted for reproducibility.
    """
    kind = goal_kind(validate_goal(goal))
    if kind not in ("relation", "motion"):
        raise ValueError(f"counterfactual edits apply to relation and motion goals, not to {kind} goals")
    anchor = goal.behavior.split(":")[1] if kind == "relation" else None
    edits = [
        Goal(goal.template, colour, goal.behavior)
        for colour in COLOURS
        if colour not in (goal.target, anchor)
    ]
    return sorted(e for e in edits if not is_train_task(e))


def counterfactual_behavior(goal: Goal) -> list[Goal]:
    """Every edit of ``goal`` that changes only the behaviour and leaves train.

    A relation becomes another relation to the same anchor or a single-ball motion; a motion
    becomes another direction. The target and template stay; train goals are excluded.
    """
    kind = goal_kind(validate_goal(goal))
    if kind not in ("relation", "motion"):
        raise ValueError(f"counterfactual edits apply to relation and motion goals, not to {kind} goals")
    behaviours = [f"toward:{d}" for d in DIRECTIONS]
    if kind == "relation":
        anchor = goal.behavior.split(":")[1]
        behaviours += [f"{r}:{anchor}" for r in RELATIONS]
    edits = [Goal(goal.template, goal.target, b) for b in behaviours if b != goal.behavior]
    return sorted(e for e in edits if not is_train_task(e))


# --- what every env's language module provides (see vlgor_envs.language) ------------------

#: CLEVR goals name balls, not tasks: ``vlgor collect --task`` does not apply.
TASK_NAMES: tuple[str, ...] = ()
#: The counterfactual edits a prompt can make (``vlgor imagine --edits``).
COUNTERFACTUAL_EDITS: tuple[str, ...] = ("target", "behavior")


def sample_counterfactual(edits: str, rng: np.random.Generator) -> tuple[Goal, str, Goal]:
    """A counterfactual goal, the edit that made it and the train goal it edits.

    A train relation or motion goal is drawn and edited (``edits="both"``: target or
    behaviour, evenly) until the edit leaves the train split.
    """
    while True:
        source = sample_goal("train", rng)
        if goal_kind(source) not in ("relation", "motion"):
            continue
        edit = edits if edits != "both" else ("target" if rng.random() < 0.5 else "behavior")
        candidates = counterfactual_target(source) if edit == "target" else counterfactual_behavior(source)
        if candidates:
            return candidates[int(rng.integers(len(candidates)))], edit, source


def split_summary(split: str) -> str:
    """One line on ``split``: its instructions, tasks, wording and goal kinds."""
    goals = split_goals(split)
    tasks = {(g.target, g.behavior) for g in goals}
    kinds = Counter(goal_kind(Goal(f"{split}-0", t, b)) for t, b in tasks)
    return (
        f"{split}: {len(goals)} instructions = {len(tasks)} tasks in the {SPLIT_WORDING[split]!r} "
        "wording; " + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    )
