"""Benchmark records: JSON with the config, git revision and machine, and markdown tables."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any


def git_revision() -> str:
    """The checked-out commit, with ``-dirty`` when the tree has changes, or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        revision = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # The benchmarks write results/ and the README tables: only other changes make it dirty.
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!benchmarks/results",
                ":!README.md",
            ],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{revision}-dirty" if dirty else revision


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
    }


def write_result(name: str, config: Any, figures: dict[str, Any], directory: Path) -> Path:
    """Write ``<directory>/<name>.json`` atomically, print where, and return its path.

    ``config`` is the benchmark's argument dataclass.
    """
    directory.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "git_revision": git_revision(),
        "machine": machine(),
        "config": dataclasses.asdict(config),
        "figures": figures,
    }
    return write_record(name, record, directory)


def write_record(name: str, record: dict[str, Any], directory: Path) -> Path:
    """Write a finished record as ``<directory>/<name>.json`` atomically; returns its path."""
    path = directory / f"{name}.json"
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    partial.replace(path)
    print(f"{name} -> {path}")
    return path


def provenance(result: dict[str, Any]) -> str:
    """Where a result was measured: ``"2 CPU cores, revision abc1234."``."""
    return f"{result['machine']['cpu_count']} CPU cores, revision {result['git_revision']}."


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
