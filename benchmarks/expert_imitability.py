"""How imitable is a CLEVR expert? BC on the true state and the structured goal.

The learner sees what no pixel policy can see better: the ball centres (and the episode's
start centres) and the goal as one-hot target, relation and anchor. If even this learner
cannot reproduce the expert in closed loop, the expert's labels, not perception or language,
cap every imitation learner trained on its data.

For each expert: collect ``episodes`` train-split episodes (seeds ``0 ..``), fit an MLP
(256-256, cross-entropy, Adam) on their transitions, then report its accuracy on the expert's
actions of held-out episodes and its closed-loop success on held-out start states of the train
goals (seeds from 1,000,000), beside the expert's own success and a "repeat the last push"
predictor of the expert's next action.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
import tyro
from torch import nn

import vlgor_envs  # noqa: F401
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.clevr.env import N_ACTIONS
from vlgor_envs.clevr.expert import make_expert
from vlgor_envs.language.clevr import COLOURS, DIRECTION_VECTORS, relation_clauses

NAME = "expert_imitability"
RELATIONS = tuple(DIRECTION_VECTORS)
HELD_OUT_SEED = 1_000_000


@dataclass
class Args:
    experts: tuple[Literal["astar", "field", "steering"], ...] = ("astar", "field", "steering")
    episodes: int = 1200
    """Training episodes per expert (the split benchmark's `cpu` preset collects 1,200)."""
    eval_episodes: int = 200
    """Held-out episodes for the action accuracy and for closed-loop success."""
    steps: int = 4000
    """Adam updates of batch 256."""
    seed: int = 0


def _one_hot_goal(info: dict[str, Any]) -> np.ndarray:
    target, relation, anchor = relation_clauses(info["goal"])[0]
    goal = np.zeros(2 * len(COLOURS) + len(RELATIONS), dtype=np.float32)
    goal[COLOURS.index(target)] = 1.0
    goal[len(COLOURS) + COLOURS.index(anchor)] = 1.0
    goal[2 * len(COLOURS) + RELATIONS.index(relation)] = 1.0
    return goal


def features(info: dict[str, Any]) -> np.ndarray:
    """Ball and start centres and the (first) relational clause as one-hots."""
    state = np.concatenate([np.ravel(info["ball_positions"]), np.ravel(info["start_positions"])])
    return np.concatenate([state.astype(np.float32), _one_hot_goal(info)])


def relative_features(info: dict[str, Any]) -> np.ndarray:
    """The target's offset from its anchor and the one-hot goal: what the steering expert reads."""
    target, _, anchor = relation_clauses(info["goal"])[0]
    positions = np.asarray(info["ball_positions"])
    offset = positions[COLOURS.index(target)] - positions[COLOURS.index(anchor)]
    return np.concatenate([offset.astype(np.float32), _one_hot_goal(info)])


FEATURES = {"absolute": features, "relative": relative_features}


def collect(
    expert_name: str, episodes: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, float]:
    """Features of each kind, expert actions and previous actions (-1 at an episode's start),
    and success."""
    expert = make_expert(expert_name)
    env = gym.make("VLGOR-CLEVR-v0", split="train")
    rows: dict[str, list[np.ndarray]] = {name: [] for name in FEATURES}
    actions, previous, successes = [], [], []
    for episode in range(episodes):
        _, info = env.reset(seed=seed + episode)
        last, done = -1, False
        while not done:
            action = expert.act(info)
            for name, featurize in FEATURES.items():
                rows[name].append(featurize(info))
            actions.append(action)
            previous.append(last)
            _, _, terminated, truncated, info = env.step(action)
            last, done = action, terminated or truncated
        successes.append(info["is_success"])
    env.close()
    stacked = {name: np.stack(r) for name, r in rows.items()}
    return stacked, np.array(actions), np.array(previous), float(np.mean(successes))


def fit(x: np.ndarray, y: np.ndarray, steps: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, N_ACTIONS)
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(len(x), (256,), generator=generator)
        loss = nn.functional.cross_entropy(model(inputs[batch]), labels[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def closed_loop(model: nn.Module, episodes: int, featurize: Any = features) -> float:
    env = gym.make("VLGOR-CLEVR-v0", split="train")
    successes = []
    for episode in range(episodes):
        _, info = env.reset(seed=HELD_OUT_SEED + episode)
        done = False
        while not done:
            with torch.no_grad():
                action = int(model(torch.from_numpy(featurize(info))[None]).argmax())
            _, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        successes.append(info["is_success"])
    env.close()
    return float(np.mean(successes))


def measure(args: Args) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name in args.experts:
        started = time.perf_counter()
        x, y, _, expert_success = collect(name, args.episodes, args.seed)
        held_x, held_y, held_previous, held_success = collect(name, args.eval_episodes, HELD_OUT_SEED)
        figures[name] = {
            "transitions": len(y),
            "expert_success": held_success,
            "expert_success_train_seeds": expert_success,
            "repeat_last_push_accuracy": float(np.mean(held_previous == held_y)),
        }
        for kind, featurize in FEATURES.items():
            model = fit(x[kind], y.astype(np.int64), args.steps, args.seed)
            with torch.no_grad():
                predicted = model(torch.from_numpy(held_x[kind])).argmax(dim=1).numpy()
            suffix = "" if kind == "absolute" else f"_{kind}"
            figures[name][f"held_out_accuracy{suffix}"] = float(np.mean(predicted == held_y))
            figures[name][f"closed_loop_success{suffix}"] = closed_loop(model, args.eval_episodes, featurize)
        figures[name]["seconds"] = time.perf_counter() - started
        print(name, figures[name])
    return figures


def _percent(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.1f}"


def readme_table() -> str:
    result = load_result(NAME)
    rows = [
        [
            name,
            f"{100 * f['expert_success']:.1f}",
            f["transitions"],
            f"{100 * f['held_out_accuracy']:.1f}",
            f"{100 * f['repeat_last_push_accuracy']:.1f}",
            f"{100 * f['closed_loop_success']:.1f}",
            _percent(f.get("held_out_accuracy_relative")),
            _percent(f.get("closed_loop_success_relative")),
        ]
        for name, f in result["figures"].items()
    ]
    config = result["config"]
    return (
        markdown_table(
            [
                "expert",
                "expert success (%)",
                "transitions",
                "state-BC action accuracy (%)",
                "repeat last push (%)",
                "state-BC closed-loop success (%)",
                "offset-BC action accuracy (%)",
                "offset-BC closed-loop success (%)",
            ],
            rows,
        )
        + "\n\nCLEVR train goals; MLP 256-256 on ball and start centres and the one-hot goal (state-BC) "
        + "or on the target's offset from its anchor and the one-hot goal (offset-BC), "
        + f"{config['steps']} Adam steps on {config['episodes']} expert episodes; {config['eval_episodes']} "
        + "held-out episodes for each figure. "
        + provenance(result)
    )


def main(args: Args) -> None:
    """Measure the experts asked for; the rows of other experts already measured are kept."""
    try:
        figures = load_result(NAME)["figures"]
    except FileNotFoundError:
        figures = {}
    write_result(NAME, args, {**figures, **measure(args)})
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
