"""Imagination-model checkpoints: a folder of safetensors weights plus a JSON config.

A checkpoint folder holds ``config.json`` (format tag, model config, training record, and the
SHA-256 of every other file) and ``model.safetensors`` (every weight and buffer). Grounding adds
``adapter.safetensors`` and ``adapter.json`` (the LoRA adapters alone, before merging). Loading
verifies every digest and every config field. Nothing is pickled.

Writes are atomic: the folder is built under a temporary name beside its destination and
renamed into place, so an interrupted write leaves the previous checkpoint (or nothing).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vlgor_envs.imagination.model import WorldModel, WorldModelConfig

FORMAT = "vlgor-imagination"
#: 2: config.json records the SHA-256 of each file (``files``).
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Documentation beside the weights, rewritten by ``benchmarks.model_card``: not digested.
UNSEALED = (CONFIG_FILE, "MODEL_CARD.md")
_SHIPPED_FOLDER = Path(str(resources.files("vlgor_envs.imagination") / "checkpoints"))
#: The checkpoints shipped inside the package, by env name (its folders).
SHIPPED = tuple(sorted(folder.name for folder in _SHIPPED_FOLDER.iterdir() if folder.is_dir()))


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not match the model it is loaded into."""


def shipped_checkpoint(env: str) -> Path:
    """Folder of the default checkpoint shipped for ``env`` (``"clevr"`` or ``"metaworld"``)."""
    if env not in SHIPPED:
        raise ValueError(f"no shipped imagination checkpoint for env {env!r}; choose one of {SHIPPED}")
    return _SHIPPED_FOLDER / env


@contextmanager
def atomic_folder(destination: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``destination``; on success it replaces ``destination``.

    What a hard kill of an earlier write left is recovered first (:func:`recover_folder`).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(destination)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.writing-{os.getpid()}-", dir=destination.parent)
    )
    try:
        yield staging
        previous = destination.parent / f".{destination.name}.previous"
        shutil.rmtree(previous, ignore_errors=True)
        if destination.exists():
            destination.rename(previous)
        os.replace(staging, destination)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def recover_folder(destination: Path) -> list[str]:
    """After a hard kill of a write of ``destination``: put the previous folder back if the new
    one never landed, and remove staging folders whose writer is gone. Says what it did."""
    done = []
    previous = destination.parent / f".{destination.name}.previous"
    if previous.is_dir() and not destination.exists():
        previous.rename(destination)
        done.append(f"restored {destination}: a write replacing it was killed before it landed")
    for staging in destination.parent.glob(f".{destination.name}.writing-*"):
        pid = staging.name.removeprefix(f".{destination.name}.writing-").split("-")[0]
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)
            done.append(f"removed {staging}, left by an interrupted write")
    for line in done:
        print(f"vlgor: {line}", file=sys.stderr)
    return done


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().contiguous().clone() for name, tensor in state.items()}


def write_checkpoint_files(folder: Path, model: WorldModel, record: dict[str, Any]) -> None:
    """Write ``model.safetensors`` into an existing folder, then seal it: ``config.json`` with
    the digest of every file already there (write an adapter's files first)."""
    save_file(_contiguous(model.state_dict()), str(folder / WEIGHTS_FILE), metadata={"format": FORMAT})
    seal(folder, {"model": model.cfg.to_json(), **record})


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def seal(folder: Path, content: dict[str, Any]) -> None:
    """Write ``config.json`` (``content`` plus format, version and the digest of each file)."""
    files = {
        file.name: file_sha256(file)
        for file in sorted(folder.iterdir())
        if file.is_file() and file.name not in UNSEALED
    }
    config = {"format": FORMAT, "version": FORMAT_VERSION, **content, "files": files}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def save_checkpoint(model: WorldModel, path: str | Path, record: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + config + a training ``record``) to the folder ``path``, atomically."""
    path = Path(path)
    with atomic_folder(path) as staging:
        write_checkpoint_files(staging, model, record or {})
    return path


def read_config(path: str | Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder, checked for format and version."""
    path = Path(path)
    config_path = path / CONFIG_FILE
    if not config_path.is_file():
        raise CheckpointError(
            f"no imagination checkpoint at {path}: {CONFIG_FILE} is missing. Pass the folder written "
            "by `vlgor imagination pretrain`/`finetune`, or leave checkpoint unset for the shipped one"
        )
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"{config_path} is not valid JSON ({exc}); the checkpoint is corrupt, retrain it"
        ) from exc
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{config_path} is not a {FORMAT} checkpoint (format={config.get('format')!r})")
    if config.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path} has format version {config.get('version')}, this vlgor reads {FORMAT_VERSION}; "
            "re-save it with `python -m vlgor_envs.imagination.checkpoint upgrade PATH`"
        )
    verify_files(path, config)
    return config


def verify_files(path: Path, config: dict[str, Any]) -> None:
    """Check every file that ``config.json`` lists against its SHA-256."""
    files = config.get("files")
    if not isinstance(files, dict) or WEIGHTS_FILE not in files:
        raise CheckpointError(f"{path / CONFIG_FILE} lists no file digests; the checkpoint is incomplete")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(
                f"checkpoint {path} has no {name}; the write was interrupted or the file was removed"
            )
        if file_sha256(file) != expected:
            raise CheckpointError(
                f"{file} does not match the SHA-256 in {CONFIG_FILE}: the file is damaged or was "
                "replaced; restore it, or retrain the checkpoint"
            )


def read_weights(path: Path, name: str = WEIGHTS_FILE) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, with a clear error if it is missing or corrupt."""
    file = path / name
    if not file.is_file():
        raise CheckpointError(
            f"checkpoint {path} has no {name}; the write was interrupted or the file was removed"
        )
    try:
        return load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{file} is corrupt ({exc}); retrain the checkpoint or restore the file"
        ) from exc


def load_state(model: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load ``weights`` into ``model`` strictly, naming missing, unexpected and mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    mismatched = sorted(
        f"{name} {tuple(weights[name].shape)} vs {tuple(tensor.shape)}"
        for name, tensor in expected.items()
        if name in weights and weights[name].shape != tensor.shape
    )
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"checkpoint {source} does not match its config.json: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatches {mismatched[:5]}; it was written by another model shape"
        )
    model.load_state_dict(weights)


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[WorldModel, dict[str, Any]]:
    """Load a checkpoint folder: the model (in eval mode) and its parsed ``config.json``.

    Raises:
        CheckpointError: the folder, its config or its weights are missing, corrupt or do not
            match each other; the message names the file and the fix.
    """
    path = Path(path)
    config = read_config(path)
    try:
        cfg = WorldModelConfig.from_json(config["model"])
        model = WorldModel(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} has an invalid model config: {exc}") from exc
    load_state(model, read_weights(path), path)
    return model.to(device).eval(), config


def _with_format_1_defaults(model: dict[str, Any]) -> dict[str, Any]:
    """The model config as format 1 loaded it: a missing field took today's default."""
    defaults = WorldModelConfig().to_json()
    return {name: model.get(name, default) for name, default in defaults.items()}


def upgrade(path: str | Path) -> Path:
    """Re-save a format-1 checkpoint (no digests) as format 2, trusting its files as they are and
    writing out the defaults its config left unset."""
    path = Path(path)
    config = json.loads((path / CONFIG_FILE).read_text())
    if config.get("format") != FORMAT or config.get("version") != 1:
        raise CheckpointError(f"{path} is not a format-1 {FORMAT} checkpoint")
    content = {k: v for k, v in config.items() if k not in ("format", "version", "files")}
    content["model"] = _with_format_1_defaults(content["model"])
    with atomic_folder(path) as staging:
        for file in path.iterdir():
            if file.is_file() and file.name != CONFIG_FILE:
                shutil.copy2(file, staging / file.name)
        seal(staging, content)
    return path


if __name__ == "__main__":
    if sys.argv[1:2] != ["upgrade"] or len(sys.argv) != 3:
        sys.exit("usage: python -m vlgor_envs.imagination.checkpoint upgrade PATH")
    print(f"upgraded {upgrade(sys.argv[2])}")
