"""The Meta-World language: tasks, wordings, splits and counterfactual edits.

A Meta-World goal names one task: ``Goal("train-3", "door", "open")`` reads "i need you to
open the door". The target ``m`` is the object the task manipulates and the behaviour ``b``
is the skill, with the paper's counterfactual edits (App. B, Table 6) as variants:

- goal edits move the final goal, e.g. ``("gripper", "reach:left_of_goal")`` "move the
  gripper to the left of the target position";
- behaviour edits constrain or replace the skill, e.g. ``("gripper", "reach:straight_line")``
  or the contrast skill ``("door", "close")``; the wall variants add an obstacle.

Directions are read as the robot faces the table: *left*/*right* are world ``-x``/``+x``,
*in front of* is toward the robot (``-y``) and *above* is up (``+z``). (Targets moved
behind the goal, away from the robot, lie mostly beyond the arm's reach.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlgor_envs.language.goal import Goal, Template, check_choice, normalize_instruction

SPLITS: tuple[str, ...] = ("train", "rephrasing", "counterfactual", "hard")
#: World offset of each goal edit, in metres.
GOAL_OFFSETS: dict[str, tuple[float, float, float]] = {
    "left_of_goal": (-0.1, 0.0, 0.0),
    "right_of_goal": (0.1, 0.0, 0.0),
    "in_front_of_goal": (0.0, -0.1, 0.0),
    "above_goal": (0.0, 0.0, 0.1),
}


@dataclass(frozen=True)
class MetaWorldTask:
    """One language task on one Meta-World scene.

    Attributes:
        name: short id, e.g. ``"door-open"``.
        target: the manipulated object ``m``.
        behavior: the skill ``b`` (with its edit, if any).
        scene: the Meta-World v3 environment that provides the scene, e.g. ``"door-open-v3"``.
        split: ``"train"``, ``"counterfactual"`` or ``"hard"`` (rephrasing reuses train).
        phrase: the task in the training wording.
        rephrasings: held-out wordings (rephrasing split, train tasks only).
        max_steps: the episode limit (100 unless the task needs more).
    """

    name: str
    target: str
    behavior: str
    scene: str
    split: str
    phrase: str
    rephrasings: tuple[str, ...] = ()
    max_steps: int = 100

    @property
    def goal_offset(self) -> np.ndarray:
        """The goal edit's offset (zero for tasks without one)."""
        edit = self.behavior.split(":")[-1]
        return np.array(GOAL_OFFSETS.get(edit, (0.0, 0.0, 0.0)))


def _task(
    name: str,
    target: str,
    behavior: str,
    scene: str,
    split: str,
    phrase: str,
    *rest: str,
    max_steps: int = 100,
) -> MetaWorldTask:
    return MetaWorldTask(name, target, behavior, scene, split, phrase, tuple(rest), max_steps)


_OFFSET_WORDS = {
    "left_of_goal": "to the left of",
    "right_of_goal": "to the right of",
    "in_front_of_goal": "in front of",
    "above_goal": "above",
}

TASKS: tuple[MetaWorldTask, ...] = (
    # train: ten Meta-World skills
    _task(
        "reach",
        "gripper",
        "reach",
        "reach-v3",
        "train",
        "move the gripper to the target",
        "bring the hand to the goal position",
        "reach for the target point",
        "put the gripper on the target spot",
    ),
    _task(
        "push",
        "puck",
        "push",
        "push-v3",
        "train",
        "push the puck to the goal",
        "slide the puck over to the target",
        "shove the disc to the goal position",
        "nudge the puck onto the target spot",
    ),
    _task(
        "pick-place",
        "puck",
        "pick_place",
        "pick-place-v3",
        "train",
        "pick up the puck and place it at the goal",
        "grab the puck and put it on the target",
        "lift the disc and set it down at the goal",
        "take the puck and carry it to the target point",
    ),
    _task(
        "button-press",
        "button",
        "press",
        "button-press-v3",
        "train",
        "press the button",
        "push the button in",
        "hit the button",
        "push down the button on the box",
    ),
    _task(
        "door-unlock",
        "door lock",
        "unlock",
        "door-unlock-v3",
        "train",
        "unlock the door",
        "turn the lock to unlock the door",
        "release the lock of the door",
        "twist the door lock open",
    ),
    _task(
        "door-open",
        "door",
        "open",
        "door-open-v3",
        "train",
        "open the door",
        "pull the door open",
        "swing the door open",
        "get the door open",
        max_steps=150,
    ),
    _task(
        "window-open",
        "window",
        "open",
        "window-open-v3",
        "train",
        "open the window",
        "slide the window open",
        "push the window open",
        "get the window open",
    ),
    _task(
        "faucet-open",
        "faucet",
        "open",
        "faucet-open-v3",
        "train",
        "open the faucet",
        "turn the faucet on",
        "turn on the tap",
        "rotate the tap handle open",
    ),
    _task(
        "coffee-push",
        "mug",
        "push",
        "coffee-push-v3",
        "train",
        "push the mug under the coffee machine",
        "slide the cup under the coffee maker",
        "move the mug beneath the machine's spout",
        "shove the cup over to the coffee machine",
    ),
    _task(
        "coffee-button",
        "coffee button",
        "press",
        "coffee-button-v3",
        "train",
        "press the coffee machine button",
        "push the button on the coffee maker",
        "hit the start button of the coffee machine",
        "press the button to make coffee",
    ),
    # counterfactual: goal edits
    *(
        _task(
            f"reach-{edit.replace('_', '-')}",
            "gripper",
            f"reach:{edit}",
            "reach-v3",
            "counterfactual",
            f"move the gripper {words} the target position",
        )
        for edit, words in _OFFSET_WORDS.items()
    ),
    *(
        _task(
            f"push-{edit.replace('_', '-')}",
            "puck",
            f"push:{edit}",
            "push-v3",
            "counterfactual",
            f"push the puck {words} the goal",
        )
        for edit, words in _OFFSET_WORDS.items()
        if edit in ("left_of_goal", "right_of_goal")
    ),
    # counterfactual: behaviour edits
    _task(
        "reach-straight",
        "gripper",
        "reach:straight_line",
        "reach-v3",
        "counterfactual",
        "move the gripper to the target along a straight-line trajectory",
    ),
    _task("door-close", "door", "close", "door-close-v3", "counterfactual", "close the door"),
    _task("window-close", "window", "close", "window-close-v3", "counterfactual", "close the window"),
    _task("faucet-close", "faucet", "close", "faucet-close-v3", "counterfactual", "close the faucet"),
    _task("door-lock", "door lock", "lock", "door-lock-v3", "counterfactual", "lock the door", max_steps=150),
    _task(
        "reach-wall",
        "gripper",
        "reach:past_wall",
        "reach-wall-v3",
        "counterfactual",
        "move the gripper to the target behind the wall",
    ),
    _task(
        "push-wall",
        "puck",
        "push:past_wall",
        "push-wall-v3",
        "counterfactual",
        "push the puck around the wall to the goal",
        max_steps=150,
    ),
    _task(
        "pick-place-wall",
        "puck",
        "pick_place:over_wall",
        "pick-place-wall-v3",
        "counterfactual",
        "pick up the puck and place it at the goal over the wall",
        max_steps=150,
    ),
    _task(
        "button-press-wall",
        "button",
        "press:behind_wall",
        "button-press-wall-v3",
        "counterfactual",
        "press the button behind the wall",
    ),
    # hard: multi-skill and distant tasks
    _task(
        "coffee-button-push",
        "mug",
        "press_button_then_push",
        "coffee-push-v3",
        "hard",
        "press the coffee machine button, then push the mug under the coffee machine",
        max_steps=200,
    ),
    _task(
        "door-unlock-open",
        "door",
        "unlock_then_open",
        "door-unlock-open-v3",
        "hard",
        "unlock the door, then open it",
        max_steps=200,
    ),
    _task("hammer", "nail", "hammer", "hammer-v3", "hard", "hammer the nail into the wall", max_steps=150),
    _task(
        "soccer", "ball", "kick_into_goal", "soccer-v3", "hard", "kick the ball into the goal", max_steps=150
    ),
)
TASKS_BY_NAME: dict[str, MetaWorldTask] = {task.name: task for task in TASKS}
_TASKS_BY_GOAL = {(task.target, task.behavior): task for task in TASKS}

_TRAIN_FRAMES = (
    "{task}",
    "please {task}",
    "can you {task}",
    "your task is to {task}",
    "i need you to {task}",
    "go ahead and {task}",
    "try to {task}",
    "the goal is to {task}",
    "use the robot arm to {task}",
    "now {task}",
)
_REPHRASING_FRAMES = (
    "could you {task} for me",
    "{task}, please",
    "let's {task}",
    "would you {task}",
    "the robot should {task}",
    "make the arm {task}",
    "we want you to {task}",
    "time to {task}",
    "see if you can {task}",
    "kindly {task}",
)


def _wording(frames: Sequence[str], phrases: dict[str, Sequence[str]]) -> tuple[Template, ...]:
    """One template per frame; frame ``i`` uses phrase ``i mod k`` of each task."""
    return tuple(
        Template(frame, {"task": {name: options[index % len(options)] for name, options in phrases.items()}})
        for index, frame in enumerate(frames)
    )


#: Templates per wording set; the ``{task}`` slot holds a task name.
TEMPLATES: dict[str, tuple[Template, ...]] = {
    "train": _wording(_TRAIN_FRAMES, {task.name: [task.phrase] for task in TASKS}),
    "rephrasing": _wording(
        _REPHRASING_FRAMES, {task.name: task.rephrasings for task in TASKS if task.split == "train"}
    ),
}
SPLIT_WORDING = {"train": "train", "rephrasing": "rephrasing", "counterfactual": "train", "hard": "train"}


def task_of(goal: Goal) -> MetaWorldTask:
    """The task a goal names; ``ValueError`` if there is none."""
    task = _TASKS_BY_GOAL.get((goal.target, goal.behavior))
    if task is None:
        known = ", ".join(f"({t.target!r}, {t.behavior!r})" for t in TASKS)
        raise ValueError(
            f"no Meta-World task has target {goal.target!r} and behaviour {goal.behavior!r}; "
            f"known are {known}"
        )
    return task


def validate_goal(goal: Goal) -> Goal:
    """Raise ``ValueError`` naming the problem if ``goal`` is not a Meta-World goal."""
    task = task_of(goal)
    wording, _, index = goal.template.rpartition("-")
    templates = TEMPLATES.get(wording, ())
    if not index.isdigit() or int(index) >= len(templates):
        raise ValueError(f"unknown template {goal.template!r}: expected train-0..9 or rephrasing-0..9")
    if task.name not in templates[int(index)].vocab["task"]:
        raise ValueError(f"task {task.name!r} has no wording in template {goal.template!r}")
    return goal


def render(goal: Goal) -> str:
    """The instruction text of a goal in its own template."""
    task = task_of(validate_goal(goal))
    return TEMPLATES[goal.wording][goal.template_index].render({"task": task.name})


def parse(text: str) -> Goal:
    """The goal of an instruction in any template; ``ValueError`` naming the problem otherwise."""
    normal = normalize_instruction(text)
    for wording, templates in TEMPLATES.items():
        for index, template in enumerate(templates):
            slots = template.match(normal)
            if slots is not None:
                task = TASKS_BY_NAME[slots["task"]]
                return Goal(f"{wording}-{index}", task.target, task.behavior)
    raise ValueError(
        f"could not parse instruction {text!r}: it matches no Meta-World template. Examples that parse: "
        f"{render(split_goals('train')[0])!r}, {render(split_goals('counterfactual')[0])!r}. To use your own "
        "wording, pass reset(options={'goal': Goal(...), 'instruction': text})."
    )


def tasks_of_split(split: str) -> tuple[MetaWorldTask, ...]:
    """The tasks of a split (the rephrasing split holds the train tasks)."""
    check_choice("split", split, SPLITS)
    wanted = "train" if split == "rephrasing" else split
    return tuple(task for task in TASKS if task.split == wanted)


@functools.cache
def split_goals(split: str) -> tuple[Goal, ...]:
    """Every goal of a split, each task in every template of the split's wording set."""
    wording = SPLIT_WORDING[check_choice("split", split, SPLITS)]
    return tuple(
        Goal(f"{wording}-{index}", task.target, task.behavior)
        for task in tasks_of_split(split)
        for index in range(len(TEMPLATES[wording]))
    )


def sample_goal(split: str, rng: np.random.Generator, task: str | None = None) -> Goal:
    """A task of the split uniformly (or the given one), then a template uniformly."""
    tasks = tasks_of_split(split)
    if task is not None:
        names = [t.name for t in tasks]
        chosen = TASKS_BY_NAME[check_choice(f"{split} task", task, names)]
    else:
        chosen = tasks[int(rng.integers(len(tasks)))]
    wording = SPLIT_WORDING[split]
    index = int(rng.integers(len(TEMPLATES[wording])))
    return Goal(f"{wording}-{index}", chosen.target, chosen.behavior)


# --- what every env's language module provides (see vlgor_envs.language) ------------------

#: ``vlgor collect --task`` collects one of these.
TASK_NAMES: tuple[str, ...] = tuple(TASKS_BY_NAME)
#: Every counterfactual task edits the goal region or the behaviour of a train task, never
#: the target object (:data:`TASKS`).
COUNTERFACTUAL_EDITS: tuple[str, ...] = ("behavior",)


def goal_kind(goal: Goal) -> str:
    """The task a goal names, e.g. ``door-open``."""
    return task_of(goal).name


def train_source(goal: Goal) -> Goal:
    """The train goal a counterfactual goal edits, in the same template.

    The train task with the same target and the unedited skill (``push`` for
    ``push:left_of_goal``), else the one train task of that target (``open`` for the door's
    ``close``).
    """
    task = task_of(goal)
    skill = task.behavior.split(":")[0]
    train = tasks_of_split("train")
    matches = [t for t in train if t.target == task.target and t.behavior == skill]
    matches = matches or [t for t in train if t.target == task.target]
    if len(matches) != 1:
        raise ValueError(f"no single train task of target {task.target!r} for the edited task {task.name!r}")
    return Goal(goal.template, matches[0].target, matches[0].behavior)


def sample_counterfactual(edits: str, rng: np.random.Generator) -> tuple[Goal, str, Goal]:
    """A counterfactual goal, the edit that made it (``behavior``) and the train goal it edits."""
    goal = sample_goal("counterfactual", rng)
    return goal, "behavior", train_source(goal)


def split_summary(split: str) -> str:
    """One line on ``split``: its instructions, wording and tasks."""
    names = [task.name for task in tasks_of_split(split)]
    return (
        f"{split}: {len(split_goals(split))} instructions = {len(names)} tasks in the "
        f"{SPLIT_WORDING[split]!r} wording; " + ", ".join(names)
    )
