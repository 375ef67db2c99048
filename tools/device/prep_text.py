"""Cache MiniLM token states and sentence embeddings for the device run (MiniLM is not there).

Covers every instruction of the grounding and held-out CLEVR datasets plus the train split's
(the throughput benchmark samples those). Writes ``.gpu/text_cache.{safetensors,json}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import minari
import numpy as np
from safetensors.numpy import save_file

from vlgor_envs.language.clevr import render, split_goals
from vlgor_envs.language.encoder import default_text_encoder

DATASETS = (
    "vlgor/clevr/real-train-v0",
    "vlgor/clevr/heldout-train-v0",
    "vlgor/clevr/heldout-counterfactual-v0",
)


def main(out: Path = Path(".gpu")) -> None:
    texts = {render(goal) for goal in split_goals("train")}
    for dataset_id in DATASETS:
        dataset = minari.load_dataset(dataset_id)
        for metadata in dataset.storage.get_episode_metadata(range(dataset.total_episodes)):
            texts.add(str(metadata["instruction"]))
    ordered = sorted(texts)
    encoder = default_text_encoder()
    tensors = {"embeddings": encoder.encode(ordered)}
    for i, text in enumerate(ordered):
        states, mask = encoder.encode_tokens([text], 64)
        tensors[f"tokens.{i}"] = states[0, : int(mask[0].sum())].astype(np.float16)
    out.mkdir(exist_ok=True)
    save_file(tensors, str(out / "text_cache.safetensors"))
    (out / "text_cache.json").write_text(json.dumps(ordered))
    print(f"cached {len(ordered)} instructions in {out}")


if __name__ == "__main__":
    main()
