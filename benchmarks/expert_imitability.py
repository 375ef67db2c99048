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
from vlgor_envs.clevr.expert import ClevrExpert, GreedyClevrExpert
from vlgor_envs.language.clevr import COLOURS, DIRECTION_VECTORS, relation_clauses

NAME = "expert_imitability"
EXPERTS: dict[str, type[ClevrExpert] | type[GreedyClevrExpert]] = {
    "astar": ClevrExpert,
    "greedy": GreedyClevrExpert,
}
RELATIONS = tuple(DIRECTION_VECTORS)
HELD_OUT_SEED = 1_000_000


@dataclass
class Args:
    experts: tuple[Literal["astar", "greedy"], ...] = ("astar", "greedy")
    episodes: int = 1200
    """Training episodes per expert (the split benchmark's `cpu` preset collects 1,200)."""
    eval_episodes: int = 200
    """Held-out episodes for the action accuracy and for closed-loop success."""
    steps: int = 4000
    """Adam updates of batch 256."""
    seed: int = 0


def features(info: dict[str, Any]) -> np.ndarray:
    """Ball and start centres and the (first) relational clause as one-hots."""
    target, relation, anchor = relation_clauses(info["goal"])[0]
    goal = np.zeros(2 * len(COLOURS) + len(RELATIONS), dtype=np.float32)
    goal[COLOURS.index(target)] = 1.0
    goal[len(COLOURS) + COLOURS.index(anchor)] = 1.0
    goal[2 * len(COLOURS) + RELATIONS.index(relation)] = 1.0
    state = np.concatenate([np.ravel(info["ball_positions"]), np.ravel(info["start_positions"])])
    return np.concatenate([state.astype(np.float32), goal])


def collect(expert_name: str, episodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Features, expert actions and previous actions (-1 at an episode's start), and success."""
    expert = EXPERTS[expert_name]()
    env = gym.make("VLGOR-CLEVR-v0", split="train")
    rows, actions, previous, successes = [], [], [], []
    for episode in range(episodes):
        _, info = env.reset(seed=seed + episode)
        last, done = -1, False
        while not done:
            action = expert.act(info)
            rows.append(features(info))
            actions.append(action)
            previous.append(last)
            _, _, terminated, truncated, info = env.step(action)
            last, done = action, terminated or truncated
        successes.append(info["is_success"])
    env.close()
    return np.stack(rows), np.array(actions), np.array(previous), float(np.mean(successes))


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


def closed_loop(model: nn.Module, episodes: int) -> float:
    env = gym.make("VLGOR-CLEVR-v0", split="train")
    successes = []
    for episode in range(episodes):
        _, info = env.reset(seed=HELD_OUT_SEED + episode)
        done = False
        while not done:
            with torch.no_grad():
                action = int(model(torch.from_numpy(features(info))[None]).argmax())
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
        model = fit(x, y.astype(np.int64), args.steps, args.seed)
        with torch.no_grad():
            predicted = model(torch.from_numpy(held_x)).argmax(dim=1).numpy()
        figures[name] = {
            "transitions": len(x),
            "expert_success": held_success,
            "expert_success_train_seeds": expert_success,
            "held_out_accuracy": float(np.mean(predicted == held_y)),
            "repeat_last_push_accuracy": float(np.mean(held_previous == held_y)),
            "closed_loop_success": closed_loop(model, args.eval_episodes),
            "seconds": time.perf_counter() - started,
        }
        print(name, figures[name])
    return figures


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
            ],
            rows,
        )
        + "\n\nCLEVR train goals; MLP 256-256 on ball and start centres and the one-hot goal, "
        + f"{config['steps']} Adam steps on {config['episodes']} expert episodes; {config['eval_episodes']} "
        + "held-out episodes for each figure. "
        + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
