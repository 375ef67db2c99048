"""How an imagined episode of each env starts, is scored and is described.

One judge per env, named by its registry entry (``imagination_judge``). A judge scores the
imagined outcome with its real env's own reward and goal predicate: CLEVR reads the balls
from the imagined frame, Meta-World takes the mover from the model's predicted state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np
import torch

from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.clevr.env import push_outcome
from vlgor_envs.clevr.predicates import goal_distance
from vlgor_envs.language import metaworld as metaworld_language
from vlgor_envs.metaworld.env import GOAL, SUCCESS_BONUS, mover_position, offset_goal_score

#: CLEVR's step limit (its registry entry's).
_CLEVR_MAX_STEPS = 50


@dataclasses.dataclass
class ImaginedEpisode:
    """One sub-env's episode: what the model and the goal predicate need."""

    frame: np.ndarray
    instruction: str
    goal: Any
    start: np.ndarray  # CLEVR: start ball centres; Meta-World: the goal position
    positions: np.ndarray  # CLEVR: detected centres; Meta-World: predicted mover position
    distance: float
    generator: torch.Generator
    steps: int = 0
    max_steps: int = _CLEVR_MAX_STEPS


class Judge(Protocol):
    """What the imagined env asks of an env's judge."""

    def start(
        self, observation: dict[str, Any], info: dict[str, Any], generator: torch.Generator
    ) -> ImaginedEpisode: ...

    def real_state(self, info: dict[str, Any]) -> np.ndarray: ...

    def score(self, episode: ImaginedEpisode, predicted_state: np.ndarray) -> tuple[float, bool]: ...

    def describe(self, episode: ImaginedEpisode) -> dict[str, Any]: ...


class ClevrJudge:
    """CLEVR: the balls read from the imagined frame by the colour detector; a ball the frame
    lost stays where it was last seen."""

    def start(
        self, observation: dict[str, Any], info: dict[str, Any], generator: torch.Generator
    ) -> ImaginedEpisode:
        frame, start = observation["image"], info["start_positions"]
        positions, _ = detect_balls(frame)
        distance = goal_distance(info["goal"], positions, start)
        return ImaginedEpisode(
            frame, observation["instruction"], info["goal"], start, positions, distance, generator
        )

    def real_state(self, info: dict[str, Any]) -> np.ndarray:
        return np.ravel(info["ball_positions"])

    def score(self, episode: ImaginedEpisode, predicted_state: np.ndarray) -> tuple[float, bool]:
        detected, seen = detect_balls(episode.frame)
        positions = np.where(seen[:, None], detected, episode.positions)
        reward, success, distance = push_outcome(
            episode.goal, episode.start, episode.positions, positions, episode.distance
        )
        episode.positions, episode.distance = positions, distance
        return reward, success

    def describe(self, episode: ImaginedEpisode) -> dict[str, Any]:
        return {"ball_positions": episode.positions.copy(), "start_positions": episode.start.copy()}


class MetaWorldJudge:
    """Meta-World: the mover (hand or object) from the model's predicted state, against the
    task's goal position."""

    def start(
        self, observation: dict[str, Any], info: dict[str, Any], generator: torch.Generator
    ) -> ImaginedEpisode:
        task = metaworld_language.task_of(info["goal"])
        goal_position = info["state"][GOAL]
        mover = mover_position(info["state"], task)
        distance = float(np.linalg.norm(mover - goal_position))
        episode = ImaginedEpisode(
            observation["image"],
            observation["instruction"],
            info["goal"],
            goal_position,
            mover,
            distance,
            generator,
        )
        episode.max_steps = task.max_steps
        return episode

    def real_state(self, info: dict[str, Any]) -> np.ndarray:
        return np.ravel(info["state"])

    def score(self, episode: ImaginedEpisode, predicted_state: np.ndarray) -> tuple[float, bool]:
        mover = mover_position(predicted_state, metaworld_language.task_of(episode.goal))
        dense, success = offset_goal_score(mover, episode.start)
        episode.positions, episode.distance = mover, float(np.linalg.norm(mover - episode.start))
        return float(dense + SUCCESS_BONUS * success), bool(success)

    def describe(self, episode: ImaginedEpisode) -> dict[str, Any]:
        return {}
