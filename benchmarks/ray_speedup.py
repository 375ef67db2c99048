"""Speed-up of going wide on this machine: one imagined dataset in shards, local and on Ray.

The same job each time: ``vlgor imagine`` of ``rollouts`` CLEVR counterfactual rollouts (the
shipped model, ``num_envs`` per model call, one torch thread per process), written to a
temporary Minari root. It runs in one process, in ``shards`` local processes, and as
``shards`` Ray tasks on a local Ray of one CPU (the tasks one after another) and of
``shards`` CPUs (side by side). Ray's own start is timed apart: on a cluster it is paid once.
Every variant's episodes are checked equal to the one-process dataset's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import minari
import tyro

from benchmarks.report import load_result, markdown_table, provenance, write_result
from vlgor_envs.data.staging import minari_root
from vlgor_envs.imagination.rollouts import ImagineConfig, imagine
from vlgor_envs.workers import ray_session

NAME = "ray_speedup"
#: Table order (the JSON's keys are sorted), by each row name's start.
_ORDER = ("one process", "local pool", "Ray")


@dataclass
class Args:
    rollouts: int = 64
    shards: int = 2
    num_envs: int = 16


def _episodes_digest(dataset: minari.MinariDataset) -> str:
    """SHA-256 over every episode's images and actions, in order."""
    digest = hashlib.sha256()
    for episode in dataset.iterate_episodes():
        digest.update(episode.observations["image"].tobytes())
        digest.update(episode.actions.tobytes())
    return digest.hexdigest()


def _timed(config: ImagineConfig, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    dataset = imagine(dataclasses.replace(config, dataset_id=f"vlgor/clevr/speedup-{name}-v0"))
    return {"seconds": time.perf_counter() - started, "digest": _episodes_digest(dataset)}


def _on_ray(config: ImagineConfig, cpus: int, name: str) -> dict[str, Any]:
    """The sharded job on a local Ray of ``cpus`` CPUs, its start timed apart."""
    started = time.perf_counter()
    with ray_session(None, cpus):
        start_seconds = time.perf_counter() - started
        _timed(dataclasses.replace(config, backend="ray"), f"{name}-warm-up")  # workers import once
        result = _timed(dataclasses.replace(config, backend="ray"), name)
    return {**result, "ray_start_seconds": start_seconds}


def measure(args: Args) -> dict[str, Any]:
    base = ImagineConfig(
        "clevr", rollouts=args.rollouts, num_envs=args.num_envs, threads=1, overwrite=True, progress=False
    )
    sharded = dataclasses.replace(base, shards=args.shards)
    with tempfile.TemporaryDirectory() as root, minari_root(Path(root)):
        rows = {
            "one process": _timed(base, "one"),
            f"local pool, {args.shards} processes": _timed(sharded, "local"),
            "Ray, 1 CPU (shards one after another)": _on_ray(sharded, 1, "ray1"),
            f"Ray, {args.shards} CPUs (side by side)": _on_ray(sharded, args.shards, "ray2"),
        }
    reference = rows["one process"]["digest"]
    for row in rows.values():
        row["same_episodes"] = row.pop("digest") == reference
    return rows


def readme_table() -> str:
    result = load_result(NAME)
    rows_in = result["figures"]
    one = rows_in["one process"]["seconds"]
    ray_one = next(row["seconds"] for name, row in rows_in.items() if name.startswith("Ray, 1 CPU"))
    rows = [
        [
            name,
            f"{row['seconds']:.1f}",
            f"{one / row['seconds']:.2f}",
            f"{ray_one / row['seconds']:.2f}" if name.startswith("Ray") else "",
            f"{row['ray_start_seconds']:.1f}" if "ray_start_seconds" in row else "",
            "yes" if row["same_episodes"] else "no",
        ]
        for name, row in sorted(rows_in.items(), key=lambda item: _ORDER.index(item[0].split(",")[0]))
    ]
    config = result["config"]
    header = ["where", "seconds", "speed-up over one process", "over Ray on 1 CPU", "Ray start (s)"]
    return (
        markdown_table([*header, "same episodes"], rows)
        + f"\n\n`vlgor imagine` of {config['rollouts']} CLEVR counterfactual rollouts in "
        f"{config['shards']} shards (`python -m benchmarks.{NAME}`), one torch thread per process; "
        "Ray's seconds after a warm-up job, its start apart. " + provenance(result)
    )


def main(args: Args) -> None:
    write_result(NAME, args, measure(args))
    print(readme_table())


if __name__ == "__main__":
    main(tyro.cli(Args))
