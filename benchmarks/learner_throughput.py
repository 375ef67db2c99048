"""Gradient updates per second of the CLEVR DiscreteBC learner: network, instruction feature, batch.

Collects a small real CLEVR train dataset with the scripted expert, converts it once per
instruction feature (features are computed at conversion, never per update), then times
``algo.update`` on batches the replay buffer samples, after a warm-up. Rows: the paper's
network with the sentence embedding (the learner before the FiLM network and the parsed
roles), the FiLM keypoint network with the parsed roles (CLEVR's default), and the default
at twice the batch. d3rlpy's ``compile_graph`` only applies on CUDA, so it has no row here.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import torch
import tyro

from agents import make_config
from agents.encoder import ENCODERS
from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.language import InstructionEncoder, clevr_role_encoder, default_text_encoder

NAME = "learner_throughput"
DATASET_ID = "vlgor/clevr/throughput-v0"
#: name: (network, instruction feature, batch size)
VARIANTS: dict[str, tuple[str, str, int]] = {
    "paper network, sentence embedding": ("paper", "sentence", 128),
    "FiLM network, parsed roles (default)": ("film", "roles", 128),
    "FiLM network, parsed roles, batch 256": ("film", "roles", 256),
}


@dataclass
class Args:
    episodes: int = 40
    """CLEVR train episodes to sample batches from."""
    updates: int = 200
    """Timed updates per row (after 20 untimed ones)."""
    threads: int = 2
    """torch intra-op threads."""
    seed: int = 0


def _feature(name: str) -> InstructionEncoder:
    return clevr_role_encoder() if name == "roles" else default_text_encoder()


def updates_per_s(buffer: Any, network: str, batch_size: int, updates: int, seed: int) -> float:
    """Updates per second of a fresh DiscreteBC learner on ``buffer``."""
    torch.manual_seed(seed)
    config = make_config(
        "DiscreteBC", "discrete", updates, batch_size, 1e-3, network_encoder=ENCODERS[network]()
    )
    algo = config.create(device="cpu:0")
    info = buffer.dataset_info  # build_with_dataset would keep only the image's shape
    algo.create_impl(info.observation_signature.shape, info.action_size)
    for _ in range(20):
        algo.update(buffer.sample_transition_batch(batch_size))
    started = time.perf_counter()
    for _ in range(updates):
        algo.update(buffer.sample_transition_batch(batch_size))
    return updates / (time.perf_counter() - started)


def measure(args: Args) -> dict[str, Any]:
    from vlgor_envs.data.collect import CollectConfig, collect
    from vlgor_envs.data.d3rlpy_bridge import to_d3rlpy

    torch.set_num_threads(args.threads)
    previous = os.environ.get("MINARI_DATASETS_PATH")
    with tempfile.TemporaryDirectory() as root:
        os.environ["MINARI_DATASETS_PATH"] = root
        try:
            dataset = collect(
                CollectConfig("clevr", "train", args.episodes, seed=args.seed, dataset_id=DATASET_ID)
            )
            buffers = {name: to_d3rlpy(dataset, _feature(name)) for name in ("sentence", "roles")}
        finally:
            if previous is None:
                del os.environ["MINARI_DATASETS_PATH"]
            else:
                os.environ["MINARI_DATASETS_PATH"] = previous
    rates = {}
    for name, (network, feature, batch_size) in VARIANTS.items():
        rates[name] = updates_per_s(buffers[feature], network, batch_size, args.updates, args.seed)
        print(f"{name}: {rates[name]:.1f} updates/s")
    return {
        "updates_per_s": rates,
        "transitions_per_s": {name: rates[name] * VARIANTS[name][2] for name in rates},
        "transitions": buffers["roles"].transition_count,
    }


def readme_table() -> str:
    result = load_result(NAME)
    figures = result["figures"]
    rows = [
        [name, f"{rate:.1f}", f"{figures['transitions_per_s'][name]:.0f}", f"{3000 / rate / 60:.1f}"]
        for name in VARIANTS
        if (rate := figures["updates_per_s"].get(name))
    ]
    return (
        markdown_table(["DiscreteBC learner", "updates/s", "transitions/s", "3,000 updates (min)"], rows)
        + f"\n\n{result['config']['updates']} timed updates per row on {figures['transitions']} real CLEVR "
        + f"transitions, {result['config']['threads']} torch threads. "
        + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
