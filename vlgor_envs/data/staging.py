"""Atomic dataset writes that survive a hard kill, and one writer per dataset id.

A writer (``vlgor collect``, ``vlgor imagine``) first takes the id's lock, an ``flock`` on a
file under ``<datasets root>/.vlgor-locks/`` that the OS releases when the process dies, even by
SIGKILL: a second writer of the same id fails at once, naming the first. It then writes the
whole dataset into a hidden staging folder (``.vlgor-staging-<id>-*``, Minari pointed at it)
and renames it into place; replacing a dataset moves the old one to ``replaced/`` inside the
staging folder first. :func:`recover_interrupted_writes`, run before every write and by
``vlgor datasets list``, finds staging folders whose writer is gone, puts back a ``replaced/``
dataset whose replacement never landed, removes the rest and says what it did.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

from minari.dataset.minari_dataset import parse_dataset_id
from minari.namespace import (
    create_namespace,
    get_namespace_metadata,
    list_local_namespaces,
    namespace_hierarchy,
    update_namespace_metadata,
)
from minari.storage.datasets_root_dir import get_dataset_path

from vlgor_envs.data.sharing import namespace_metadata

STAGING_PREFIX = ".vlgor-staging-"
LOCKS_FOLDER = ".vlgor-locks"
_MINARI_ENV_VAR = "MINARI_DATASETS_PATH"


def datasets_root() -> Path:
    """The Minari datasets root (``MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    return Path(get_dataset_path())


def dataset_namespace(dataset_id: str) -> str | None:
    """The namespace of ``dataset_id``, or a ``ValueError`` saying what a good id looks like."""
    try:
        return parse_dataset_id(dataset_id)[0]
    except (TypeError, ValueError, AssertionError):  # minari fails with TypeError on "foo"
        raise ValueError(
            f"dataset id {dataset_id!r} is malformed: expected [namespace/]name-v<version>, "
            "e.g. 'vlgor/clevr/real-train-v0'"
        ) from None


def exists_error(dataset_id: str, command: str = "collect") -> FileExistsError:
    """The error for an existing ``dataset_id``; it names the fix (``vlgor <command> ... --overwrite``)."""
    return FileExistsError(
        f"dataset {dataset_id!r} already exists in {datasets_root()}; pass overwrite=True "
        f"(`vlgor {command} ... --overwrite`) to replace it, or choose another dataset_id"
    )


def _ensure_namespace(namespace: str) -> None:
    """Create ``namespace`` unless it exists, also when another process creates it meanwhile,
    and give it and the ones above it their metadata (:func:`_describe_namespaces`)."""
    if namespace not in list_local_namespaces():
        try:
            create_namespace(namespace)
        except ValueError:  # "already exists": a writer beside this one made it first
            if namespace not in list_local_namespaces():
                raise
    _describe_namespaces(namespace)


def _describe_namespaces(namespace: str) -> None:
    """Write :func:`~vlgor_envs.data.sharing.namespace_metadata` into ``namespace`` and the
    namespaces above it where theirs differs (Minari creates the parents with none)."""
    for level in namespace_hierarchy(namespace):
        wanted = namespace_metadata(level)
        if wanted and get_namespace_metadata(level) != wanted:
            update_namespace_metadata(level, **wanted)


@contextlib.contextmanager
def minari_root(path: Path) -> Iterator[None]:
    """Point Minari (which reads ``MINARI_DATASETS_PATH`` on every call) at ``path``."""
    previous = os.environ.get(_MINARI_ENV_VAR)
    os.environ[_MINARI_ENV_VAR] = str(path)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[_MINARI_ENV_VAR]
        else:
            os.environ[_MINARI_ENV_VAR] = previous


@contextlib.contextmanager
def writer_lock(root: Path, dataset_id: str, command: str) -> Iterator[None]:
    """Hold the one-writer lock of ``dataset_id`` under ``root``.

    Raises:
        FileExistsError: another live process holds it; the message names it.
    """
    folder = root / LOCKS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder / f"{quote(dataset_id, safe='')}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode(errors="replace").strip() or "another process"
            raise FileExistsError(
                f"dataset {dataset_id!r} is being written by {holder}; wait for it to finish, "
                "stop it, or choose another dataset_id"
            ) from None
        since = datetime.datetime.now().isoformat(timespec="seconds")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"`vlgor {command}` (pid {os.getpid()}, since {since})".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _staging_folder(root: Path, dataset_id: str) -> Path:
    name = f"{STAGING_PREFIX}{quote(dataset_id, safe='')}-"
    return Path(tempfile.mkdtemp(prefix=name, dir=root))


def _staged_id(staging: Path) -> str | None:
    """The dataset id a staging folder was made for (``None`` for unnamed, older ones)."""
    quoted = staging.name.removeprefix(STAGING_PREFIX).rpartition("-")[0]
    return unquote(quoted) or None


def _restore_replaced(root: Path, staging: Path) -> str | None:
    """Put the dataset an overwrite moved aside back in place if nothing replaced it."""
    metadata = staging / "replaced" / "data" / "metadata.json"
    if not metadata.is_file():
        return None
    dataset_id = str(json.loads(metadata.read_text())["dataset_id"])
    final = root / dataset_id
    if final.exists():
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    (staging / "replaced").rename(final)
    return f"restored {dataset_id!r}: a replacement of it was killed before the new data landed"


def _recover(root: Path, staging: Path) -> list[str]:
    """Recover one staging folder whose writer is gone (see the module docstring)."""
    done = [line for line in [_restore_replaced(root, staging)] if line]
    size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file()) / 1e6
    shutil.rmtree(staging, ignore_errors=True)
    what = _staged_id(staging) or "a dataset"
    done.append(f"removed {staging.name} ({size:.1f} MB), left by an interrupted write of {what!r}")
    return done


def recover_interrupted_writes(root: Path | None = None) -> list[str]:
    """Recover every staging folder under ``root`` whose writer is gone; one line per action."""
    root = datasets_root() if root is None else root
    done: list[str] = []
    for staging in sorted(root.glob(f"{STAGING_PREFIX}*")):
        dataset_id = _staged_id(staging)
        try:
            with contextlib.ExitStack() as held:
                if dataset_id is not None:
                    held.enter_context(writer_lock(root, dataset_id, "datasets recovery"))
                done += _recover(root, staging)
        except FileExistsError:
            continue  # its writer is still at work
    return done


def report_recovery(root: Path | None = None) -> None:
    """Run :func:`recover_interrupted_writes` and print what it did on stderr."""
    for line in recover_interrupted_writes(root):
        print(f"vlgor: {line}", file=sys.stderr)


@contextlib.contextmanager
def staged_dataset(dataset_id: str, overwrite: bool, command: str = "collect") -> Iterator[Path]:
    """Write the dataset ``dataset_id`` atomically (see the module docstring).

    Yields a fresh staging folder with Minari pointed at it; the body writes the complete
    dataset there under ``dataset_id``. When the body returns, that folder replaces
    ``<datasets root>/<dataset_id>`` in one rename (creating the namespace if needed); if the
    body raises, the staging folder is removed and an existing dataset stays untouched.

    Raises:
        ValueError: Malformed ``dataset_id`` (before anything runs).
        FileExistsError: ``dataset_id`` exists and ``overwrite`` is false (checked before the
            body runs and again before the rename), or another process is writing it; the
            message names ``vlgor <command>`` or that process.
    """
    namespace = dataset_namespace(dataset_id)  # a malformed id fails before anything runs
    root = datasets_root()
    root.mkdir(parents=True, exist_ok=True)
    report_recovery(root)
    final = root / dataset_id
    if final.exists() and not overwrite:
        raise exists_error(dataset_id, command)
    with writer_lock(root, dataset_id, command):
        staging = _staging_folder(root, dataset_id)
        try:
            with minari_root(staging):
                yield staging
            _move_into_place(staging, dataset_id, namespace, overwrite, command)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(
    staging: Path, dataset_id: str, namespace: str | None, overwrite: bool, command: str
) -> None:
    """Rename the staged dataset into place, moving an existing one to ``replaced/`` first."""
    final = staging.parent / dataset_id
    replaced = staging / "replaced"
    if final.exists():
        if not overwrite:
            raise exists_error(dataset_id, command)
        final.rename(replaced)
    try:
        if namespace is not None:
            _ensure_namespace(namespace)
        final.parent.mkdir(parents=True, exist_ok=True)
        (staging / dataset_id).rename(final)
    except BaseException:
        if replaced.exists() and not final.exists():
            replaced.rename(final)
        raise
