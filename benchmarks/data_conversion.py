"""Collect a CLEVR dataset, then time ``to_d3rlpy`` on it and measure its peak memory.

Collection runs here; the conversion runs in a fresh (spawned) process so that its peak RSS
is the conversion's own: ``ru_maxrss`` after the conversion minus ``ru_maxrss`` once the
libraries and the text encoder are loaded. That increase is compared with the dataset's
array bytes (every array of the Minari file, decompressed: T + 1 frames per episode,
actions, rewards, flags, instructions).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import minari
import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result

NAME = "data_conversion"


@dataclass
class Args:
    episodes: int = 2000
    """CLEVR episodes to collect (scripted expert)."""
    seed: int = 0
    """Base seed of the episodes."""
    noise: float = 0.0
    """Probability per step of a random action instead of the expert's."""
    image_size: int = 64
    """Frame side in pixels."""
    dataset_id: str = "vlgor/clevr/bench-conversion-v0"
    """Minari id of the benchmark dataset (in ``MINARI_DATASETS_PATH``)."""
    reuse: bool = True
    """Reuse an existing dataset of that id when it holds ``episodes`` episodes."""


def array_bytes(dataset: minari.MinariDataset) -> int:
    """Bytes of every array in the dataset's hdf5 files once decompressed (strings: UTF-8 bytes)."""
    total = 0

    def visit(_: str, item: Any) -> None:
        nonlocal total
        if not isinstance(item, h5py.Dataset):
            return
        if item.dtype.kind in "OSU":
            total += sum(len(v) if isinstance(v, bytes) else len(str(v).encode()) for v in item[()].ravel())
        else:
            total += item.size * item.dtype.itemsize

    for path in Path(dataset.spec.data_path).glob("*.hdf5"):
        with h5py.File(path, "r") as file:
            file.visititems(visit)
    return total


def _rss_bytes(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    # The peak must start at the current RSS: imports can leave a higher transient peak
    # that would hide the conversion's own growth.
    Path("/proc/self/clear_refs").write_text("5")


def _convert_in_child(dataset_id: str, root: str, queue: Any) -> None:
    os.environ["MINARI_DATASETS_PATH"] = root
    from vlgor_envs.data.d3rlpy_bridge import to_d3rlpy
    from vlgor_envs.language import default_text_encoder

    encoder = default_text_encoder()
    encoder.encode("warm up the encoder")
    _reset_peak_rss()
    baseline = _rss_bytes("VmRSS")
    start = time.perf_counter()
    buffer = to_d3rlpy(dataset_id, encoder)
    seconds = time.perf_counter() - start
    peak = _rss_bytes("VmHWM")
    queue.put(
        {
            "seconds": seconds,
            "baseline_rss": baseline,
            "peak_rss": peak,
            "transitions": buffer.transition_count,
            "episodes": buffer.size(),
        }
    )


def _collect(args: Args) -> tuple[minari.MinariDataset, dict[str, Any]]:
    from vlgor_envs.data import CollectConfig, collect

    if args.reuse:
        try:
            dataset = minari.load_dataset(args.dataset_id)
        except (FileNotFoundError, ValueError):
            dataset = None
        if dataset is not None and dataset.total_episodes == args.episodes:
            ours = dataset.storage.metadata["vlgor"]
            return dataset, {
                "reused": True,
                "rollout_seconds": ours["collection_seconds"],
                "wall_seconds": None,
            }
    start = time.perf_counter()
    dataset = collect(
        CollectConfig(
            "clevr",
            "train",
            args.episodes,
            args.seed,
            noise=args.noise,
            image_size=args.image_size,
            dataset_id=args.dataset_id,
            overwrite=True,
        )
    )
    wall = time.perf_counter() - start
    ours = dataset.storage.metadata["vlgor"]
    return dataset, {"reused": False, "rollout_seconds": ours["collection_seconds"], "wall_seconds": wall}


def measure(args: Args) -> dict[str, Any]:
    from vlgor_envs.data import datasets_root

    dataset, collection = _collect(args)
    arrays = array_bytes(dataset)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_convert_in_child, args=(args.dataset_id, str(datasets_root()), queue))
    child.start()
    result = queue.get()
    child.join()
    increase = result["peak_rss"] - result["baseline_rss"]
    mib = 2**20
    wall = collection["wall_seconds"]
    return {
        "episodes": int(dataset.total_episodes),
        "transitions": int(dataset.total_steps),
        "collection_reused": collection["reused"],
        "collection_episodes_per_s": round(dataset.total_episodes / wall, 1) if wall else None,
        "rollout_episodes_per_s": round(dataset.total_episodes / collection["rollout_seconds"], 1),
        "collection_wall_s": round(wall, 2) if wall else None,
        "bytes_on_disk": sum(
            p.stat().st_size for p in Path(dataset.spec.data_path).rglob("*") if p.is_file()
        ),
        "array_mib": round(arrays / mib, 1),
        "conversion_s": round(result["seconds"], 2),
        "conversion_transitions_per_s": round(result["transitions"] / result["seconds"], 1),
        "baseline_rss_mib": round(result["baseline_rss"] / mib, 1),
        "peak_rss_mib": round(result["peak_rss"] / mib, 1),
        "peak_rss_increase_mib": round(increase / mib, 1),
        "peak_rss_increase_over_array_bytes": round(increase / arrays, 3),
        "converted_transitions_match": result["transitions"] == dataset.total_steps
        and result["episodes"] == dataset.total_episodes,
    }


def readme_table() -> str:
    result = load_result(NAME)
    f = result["figures"]
    rows = [
        ["collection (expert rollouts + Minari write)", f"{f['collection_episodes_per_s']} episodes/s"],
        ["transitions", f["transitions"]],
        ["dataset arrays (decompressed)", f"{f['array_mib']} MiB"],
        ["on disk (gzip hdf5)", f"{f['bytes_on_disk'] / 2**20:.1f} MiB"],
        ["`to_d3rlpy` time", f"{f['conversion_s']} s ({f['conversion_transitions_per_s']} transitions/s)"],
        [
            "`to_d3rlpy` peak RSS increase",
            f"{f['peak_rss_increase_mib']} MiB = {f['peak_rss_increase_over_array_bytes']}x the arrays",
        ],
    ]
    note = f"\n{f['episodes']} CLEVR episodes, " + provenance(result)
    return markdown_table(["what", "figure"], rows) + "\n" + note


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))


if __name__ == "__main__":
    main(tyro.cli(Args))
