"""A fast pixel-BC pilot without d3rlpy: which network, instruction feature and rate learn CLEVR.

Loads a real CLEVR train dataset (``--dataset-id``, e.g. the one ``learner_pilot`` collects),
holds out its last 100 episodes, fits a policy network (one of :data:`agents.encoder.ENCODERS`
plus a linear head over the 40 actions) by cross-entropy with Adam, prints the training and
held-out action accuracy every 250 updates, and ends with the closed-loop success on 100
held-out start states of the train goals. ``--text one_hot`` gives the network the goal's
target, anchor and relation as one-hots: perfect language, to separate perception from it.
Printed only: the pilots it ran are tabled in ``docs/RESULTS.md``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import minari
import numpy as np
import torch
import tyro
from torch import nn

from agents.encoder import ENCODERS
from agents.evaluate import evaluate
from vlgor_envs.language import KeywordSlotEncoder, clevr_role_encoder, default_text_encoder
from vlgor_envs.language.clevr import COLOURS, RELATIONS, parse, relation_clauses

HELD_OUT_EPISODES = 100


@dataclass
class Args:
    dataset_id: str = "vlgor/clevr/pilot-train-6400-v0"
    encoder: Literal["film", "paper"] = "film"
    text: Literal["one_hot", "roles", "slots", "sentence"] = "roles"
    steps: int = 3000
    learning_rate: float = 1e-3
    cosine: bool = False
    """Anneal the rate to 1e-6 over the run (as the benchmark's learners do)."""
    random_shift: int = 0
    seed: int = 0


def one_hot_goal(text: str) -> np.ndarray:
    """The instruction's target, anchor and relation (4 relations; `expert_imitability`'s
    one-hot also has the 4 motion directions)."""
    target, relation, anchor = relation_clauses(parse(text))[0]
    vector = np.zeros(2 * len(COLOURS) + len(RELATIONS), dtype=np.float32)
    vector[[COLOURS.index(target), len(COLOURS) + COLOURS.index(anchor)]] = 1.0
    vector[2 * len(COLOURS) + RELATIONS.index(relation)] = 1.0
    return vector


def featurizer(kind: str) -> Callable[[str], np.ndarray]:
    if kind == "one_hot":
        return one_hot_goal
    if kind == "roles":
        return clevr_role_encoder().encode
    return (KeywordSlotEncoder(COLOURS) if kind == "slots" else default_text_encoder()).encode


def load(dataset_id: str, featurize: Callable[[str], np.ndarray]) -> tuple[torch.Tensor, ...]:
    """Frames (N, 3, H, W) uint8, features, actions, and whether each step is held out."""
    dataset = minari.load_dataset(dataset_id)
    frames, texts, actions, episode_of = [], [], [], []
    for index, episode in enumerate(dataset.iterate_episodes()):
        steps = len(episode.actions)
        frames.append(episode.observations["image"][:steps])
        texts += [featurize(str(t)) for t in episode.observations["instruction"][:steps]]
        actions.append(episode.actions)
        episode_of += [index] * steps
    held = np.asarray(episode_of) >= dataset.total_episodes - HELD_OUT_EPISODES
    return (
        torch.from_numpy(np.concatenate(frames)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(texts)),
        torch.from_numpy(np.concatenate(actions)).long().view(-1),
        torch.from_numpy(held),
    )


def main(args: Args) -> None:
    torch.manual_seed(args.seed)
    featurize = featurizer(args.text)
    frames, texts, actions, held = load(args.dataset_id, featurize)
    trunk = ENCODERS[args.encoder](random_shift=args.random_shift).create(
        [tuple(frames.shape[1:]), (texts.shape[1],)]
    )
    head = nn.Linear(512, 40)
    network = nn.ModuleDict({"trunk": trunk, "head": head})
    optimiser = torch.optim.Adam(network.parameters(), args.learning_rate)
    schedule = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps, 1e-6) if args.cosine else None
    )
    train_rows, held_rows = torch.nonzero(~held).view(-1), torch.nonzero(held).view(-1)
    generator = torch.Generator().manual_seed(args.seed)

    def logits(rows: torch.Tensor) -> torch.Tensor:
        return head(trunk([frames[rows].float(), texts[rows]]))

    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = train_rows[torch.randint(len(train_rows), (128,), generator=generator)]
        loss = nn.functional.cross_entropy(logits(batch), actions[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        if step % 250 == 0:
            network.eval()
            with torch.no_grad():
                seen = (logits(train_rows[:1000]).argmax(1) == actions[train_rows[:1000]]).float().mean()
                unseen = (logits(held_rows).argmax(1) == actions[held_rows]).float().mean()
            network.train()
            print(
                f"{step} loss {loss.item():.3f} train acc {seen:.3f} held-out acc {unseen:.3f} "
                f"{time.perf_counter() - started:.0f}s",
                flush=True,
            )
    network.eval()

    def policy(observation: dict[str, object]) -> int:
        image = torch.from_numpy(np.asarray(observation["image"])).permute(2, 0, 1)[None].float()
        text = torch.from_numpy(featurize(str(observation["instruction"])))[None]
        with torch.no_grad():
            return int(head(trunk([image, text])).argmax())

    success = evaluate(policy, "VLGOR-CLEVR-v0", "train", 100, seed=3_000_000).success_rate
    print(f"{args.encoder}+{args.text}: closed-loop success on held-out train goals {success:.2f}")


if __name__ == "__main__":
    # Where `python -m benchmarks.learner_pilot` collects its datasets by default.
    os.environ.setdefault("MINARI_DATASETS_PATH", str(Path(tempfile.gettempdir()) / "vlgor-pilot"))
    main(tyro.cli(Args))
