"""The observation contract every VLGOR env shares: a frame, an instruction, and reset options.

Each env observes ``Dict(image=Box(uint8, (H, W, 3)), instruction=Text)`` and accepts
``reset(options={"instruction": text})``, ``{"goal": Goal}`` or both; this module holds the
spaces and the validation, so both envs reject bad input with the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from vlgor_envs.language.goal import INSTRUCTION_CHARSET, MAX_INSTRUCTION_LENGTH, Goal


def check_image_size(image_size: object) -> int:
    """``image_size`` as an int in [16, 1024], else a ``ValueError`` naming the fix."""
    if isinstance(image_size, bool) or not isinstance(image_size, int | np.integer):
        raise ValueError(f"image_size must be an int, got {image_size!r}")
    if not 16 <= int(image_size) <= 1024:
        raise ValueError(f"image_size must be between 16 and 1024 pixels, got {image_size}")
    return int(image_size)


def check_render_mode(render_mode: str | None) -> str | None:
    """``render_mode`` if it is ``None`` or ``"rgb_array"``, else a ``ValueError``."""
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    return render_mode


def observation_space(image_size: int) -> spaces.Dict:
    """``Dict(image=Box(0, 255, (image_size, image_size, 3), uint8), instruction=Text)``."""
    return spaces.Dict(
        {
            "image": spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "instruction": spaces.Text(
                max_length=MAX_INSTRUCTION_LENGTH, min_length=1, charset=INSTRUCTION_CHARSET
            ),
        }
    )


def check_instruction(text: object) -> str:
    """``text`` if it can be an observation's instruction, else a ``ValueError``."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"instruction must be a non-empty string, got {text!r}")
    if len(text) > MAX_INSTRUCTION_LENGTH:
        raise ValueError(f"instruction is {len(text)} characters long; the limit is {MAX_INSTRUCTION_LENGTH}")
    bad = sorted(set(text) - set(INSTRUCTION_CHARSET))
    if bad:
        raise ValueError(f"instruction holds characters outside printable ASCII: {bad!r}")
    return text


def goal_and_instruction(
    options: Mapping[str, Any],
    *,
    parse: Callable[[str], Goal],
    validate: Callable[[Goal], Goal],
    render: Callable[[Goal], str],
    sample: Callable[[], Goal],
) -> tuple[Goal, str]:
    """The episode's goal and instruction text from ``reset`` options.

    A ``goal`` alone is rendered in its template; an ``instruction`` alone is parsed; both
    pair the goal with the caller's wording; neither samples a goal of the split.
    """
    unknown = set(options) - {"goal", "instruction"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}: expected 'goal' and/or 'instruction'")
    goal, text = options.get("goal"), options.get("instruction")
    if goal is not None:
        if not isinstance(goal, Goal):
            raise ValueError(f"options['goal'] must be a vlgor_envs.language.Goal, got {type(goal).__name__}")
        validate(goal)
    if text is not None:
        check_instruction(text)
    if goal is None:
        goal = parse(text) if text is not None else sample()
    return goal, text if text is not None else render(goal)
