"""``vlgor imagine``: imagined datasets from counterfactual prompts (paper §3.2-3.3).

VLGOR fills the gap between the offline data and unseen instructions by rolling the
imagination model out on *counterfactual prompts*: a training goal ``G = <t, m, b>`` edited
in its target ``m`` or its behaviour ``b``. :func:`imagine` writes those rollouts as a Minari
dataset that the agents read exactly like a collected one.

Prompts (:func:`imagined_prompts`). Rollout ``k`` starts from the imagined env reset with seed
``seed + k`` (whose real env is reset with :func:`~vlgor_envs.imagination.env.real_env_seed`
of it) and follows one goal ``G'``, drawn from the first of two generators spawned from
``seed``:

- CLEVR, ``counterfactual``: a train goal (relation or motion kind) is sampled and edited by
  :func:`~vlgor_envs.language.clevr.counterfactual_target` (``edit="target"``) or
  :func:`~vlgor_envs.language.clevr.counterfactual_behavior` (``edit="behavior"``); one edit
  is picked uniformly. ``edits="both"`` flips a fair coin per rollout for the edit type;
  ``"target"`` keeps target edits only (the paper's Table 2 ablation "w/o behavior") and
  ``"behavior"`` behaviour edits only ("w/o target"). A train goal without an edit of the
  chosen type is redrawn. The train goal is recorded as ``source_goal``.
- Meta-World, ``counterfactual``: a counterfactual task of the split. Every one edits the goal
  region or the behaviour of a train task (``edit="behavior"``, that task as ``source_goal``);
  none edits the target object, so ``edits="target"`` is refused.
- ``train``, ``rephrasing``, ``hard``: goals sampled from the split as they are
  (``edit="none"``, no source goal); ``edits`` must stay ``"both"``.

Rollouts. The paper's model imagines ``(s_{t+1}, a_{t+1})`` from ``(s_t, G', a_t)``, so an
imagined trajectory needs its first action ``a'_0``:

- ``first_action="expert"`` (default): the scripted expert's action at the same start (a real
  env is reset with the same seed and goal, its first frame checked equal to the imagined
  one, and the expert asked);
- ``first_action="random"``: uniform over the action space, from a second generator spawned
  from ``seed`` (so the prompts do not depend on this choice).

Every later action is the model's own prediction ``info["imagined_action"]`` (continuous ones
clipped to the action space). The rollouts run ``num_envs`` at a time in one
:class:`~vlgor_envs.imagination.env.ImaginedVectorEnv` (one model call per step); a finished
slot is reset with the next prompt through a partial reset (``options["reset_mask"]``).
An episode is terminated when the goal predicate holds on the imagined outcome and truncated
at the env's step limit (or ``max_steps``). ``drop_failures=True`` drops the rollouts that
never reached their goal. The same arguments give the same dataset bit for bit; another
``num_envs`` batches the model differently, which can round a pixel differently.

Dataset. Id ``vlgor/<env>/imagined-<split>-v0``; the edit ablations are
``imagined-<split>-target-v0`` and ``imagined-<split>-behavior-v0``
(:func:`imagined_dataset_id`). Written atomically like a collected dataset
(:func:`~vlgor_envs.data.collect.staged_dataset`), images lossless and gzip-packed. Minari's
``env_spec`` is the imagined env (with its checkpoint, split, flow steps and temperature) and
``eval_env_spec`` the real env. Episodes are stored in rollout order, each with the episode
metadata of a collected dataset (``instruction``, ``split``, ``goal`` JSON, ``success``) plus
``edit`` (``"target"``, ``"behavior"`` or ``"none"``), ``source_goal`` (goal JSON, or the JSON
``null``) and ``rollout`` (``k``); Minari's episode ``seed`` is ``seed + k``. Per step,
``infos["is_success"]`` is the predicate on each imagined frame. ``metadata["vlgor"]`` holds
the imagined success rate, kept/dropped counts, edits, split, checkpoint (path and SHA-256 of
its config and weights), seeds, flow steps and first action.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import minari
import numpy as np
import torch
import tyro
from gymnasium import spaces
from minari.data_collector.episode_buffer import EpisodeBuffer
from tqdm import tqdm

from vlgor_envs import registry
from vlgor_envs.data.collect import (
    NAMESPACE,
    describe,
    make_expert,
    random_action,
    repack_hdf5,
)
from vlgor_envs.data.sharing import FORMAT_KEY, format_metadata
from vlgor_envs.data.staging import staged_dataset
from vlgor_envs.imagination.checkpoint import CONFIG_FILE, WEIGHTS_FILE, shipped_checkpoint
from vlgor_envs.imagination.env import ImaginedVectorEnv, real_env_seed
from vlgor_envs.imagination.model import (
    DEFAULT_FLOW_STEPS,
    DEFAULT_TEMPERATURE,
    UNRECORDED_TEMPERATURE,
    check_temperature,
)
from vlgor_envs.language import language_of
from vlgor_envs.language.goal import Goal, check_choice
from vlgor_envs.registry import EnvName
from vlgor_envs.workers import Backend

#: ``edits`` choices: both edit types, or one of them (the paper's Table 2 ablations).
EDITS: tuple[str, ...] = ("both", "target", "behavior")
FIRST_ACTIONS: tuple[str, ...] = ("expert", "random")
#: ``edit`` of a goal sampled from its split without an edit.
NO_EDIT = "none"
_COMPRESSION = "gzip"


@dataclasses.dataclass(frozen=True)
class Prompt:
    """One imagined rollout's goal ``G'``, how it was made, and the start seed."""

    goal: Goal
    edit: str
    """``"target"``, ``"behavior"`` or ``"none"``."""
    source: Goal | None
    """The train goal that was edited (``None`` without an edit)."""
    seed: int
    """Reset seed of the imagined env (``seed + k`` for rollout ``k``)."""
    rollout: int = 0
    """``k``: where the prompt stands among the dataset's rollouts."""


def imagined_dataset_id(env: str, split: str = "counterfactual", edits: str = "both") -> str:
    """``vlgor/<env>/imagined-<split>-v0``, or ``imagined-<split>-<edits>-v0`` for one edit type."""
    name = f"imagined-{split}" if edits == "both" else f"imagined-{split}-{edits}"
    return f"{NAMESPACE}/{env}/{name}-v0"


def check_arguments(env: str, split: str, edits: str) -> None:
    """Raise ``ValueError`` naming the fix if :func:`imagine` cannot make ``(env, split, edits)``."""
    check_choice("env", env, tuple(registry.ENTRIES))
    check_choice("split", split, language_of(env).SPLITS)
    check_choice("edits", edits, EDITS)
    if edits != "both" and split != "counterfactual":
        raise ValueError(
            f"edits={edits!r} applies to the counterfactual split only: {split} goals are sampled from "
            "the split without edits; leave edits='both'"
        )
    allowed = language_of(env).COUNTERFACTUAL_EDITS
    if edits not in ("both", *allowed):
        raise ValueError(
            f"{env} has no counterfactual {edits} edits, only {list(allowed)}; "
            f"use edits='both' or one of those"
        )


def _generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators of the prompts and of random first actions, both from ``seed``."""
    prompts, actions = np.random.default_rng(seed).spawn(2)
    return prompts, actions


def imagined_prompts(env: str, split: str, rollouts: int, seed: int = 0, edits: str = "both") -> list[Prompt]:
    """The goals of :func:`imagine`'s rollouts ``0 .. rollouts-1`` (see the module docstring)."""
    check_arguments(env, split, edits)
    language = language_of(env)
    rng, _ = _generators(seed)
    prompts = []
    for k in range(rollouts):
        if split == "counterfactual":
            goal, edit, source = language.sample_counterfactual(edits, rng)
            prompts.append(Prompt(goal, edit, source, seed + k, k))
        else:
            prompts.append(Prompt(language.sample_goal(split, rng), NO_EDIT, None, seed + k, k))
    return prompts


def checkpoint_digest(folder: Path) -> str:
    """SHA-256 (hex) of a checkpoint's ``config.json`` and ``model.safetensors``."""
    digest = hashlib.sha256()
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


@dataclasses.dataclass
class _Rollout:
    """One running rollout: what becomes its Minari episode."""

    index: int
    prompt: Prompt
    instruction: str
    action: Any
    images: list[np.ndarray]
    successes: list[bool]
    actions: list[Any] = dataclasses.field(default_factory=list)
    rewards: list[float] = dataclasses.field(default_factory=list)
    terminations: list[bool] = dataclasses.field(default_factory=list)
    truncations: list[bool] = dataclasses.field(default_factory=list)

    def episode(self) -> EpisodeBuffer:
        return EpisodeBuffer(
            seed=self.prompt.seed,
            observations={
                "image": np.stack(self.images),
                "instruction": [self.instruction] * len(self.images),
            },
            actions=np.stack(self.actions),
            rewards=list(self.rewards),
            terminations=list(self.terminations),
            truncations=list(self.truncations),
            infos={"is_success": np.asarray(self.successes)},
        )

    def metadata(self, split: str) -> dict[str, Any]:
        source = self.prompt.source
        return {
            "instruction": self.instruction,
            "split": split,
            "goal": self.prompt.goal.to_json(),
            "success": bool(self.terminations[-1]),
            "edit": self.prompt.edit,
            "source_goal": source.to_json() if source is not None else json.dumps(None),
            "rollout": self.prompt.rollout,
        }


def _as_action(space: gym.Space[Any], action: Any) -> Any:
    if isinstance(space, spaces.Discrete):
        return np.int64(action)
    assert isinstance(space, spaces.Box)
    return np.clip(np.asarray(action, dtype=space.dtype), space.low, space.high)


class _FirstActions:
    """``a'_0`` of each rollout: the scripted expert's at the same real start, or uniform."""

    def __init__(
        self,
        env: str,
        how: str,
        split: str,
        space: gym.Space[Any],
        image_size: int,
        rng: np.random.Generator,
    ) -> None:
        self.space, self.rng = space, rng
        self.real: gym.Env[Any, Any] | None = None
        if how == "expert":
            self.real = gym.make(registry.entry(env).env_id, split=split, image_size=image_size)
            self.expert = make_expert(env)

    def skip(self, rollouts: int) -> None:
        """Draw the random first actions of ``rollouts`` earlier rollouts (a shard's start)."""
        for _ in range(rollouts if self.real is None else 0):
            random_action(self.space, self.rng)

    def __call__(self, prompt: Prompt, image: np.ndarray) -> Any:
        if self.real is None:
            return random_action(self.space, self.rng)
        observation, info = self.real.reset(seed=real_env_seed(prompt.seed), options={"goal": prompt.goal})
        if not np.array_equal(observation["image"], image):
            raise RuntimeError(
                f"the real env reset with seed {prompt.seed} does not reproduce the imagined start; "
                "the expert's first action would not belong to it"
            )
        return self.expert.act(info)

    def close(self) -> None:
        if self.real is not None:
            self.real.close()


@dataclasses.dataclass(frozen=True)
class ImaginedMetadata:
    """An imagined dataset's ``metadata["vlgor"]``: written by :func:`imagine`, read back by
    :meth:`of`. Fields that older datasets lack read as their defaults."""

    env: str
    split: str
    rollouts: int
    env_id: str = ""
    real_env_id: str = ""
    edits: str = "both"
    policy: str = ""
    first_action: str = "expert"
    #: Always ``None``: imagined actions are the model's own (the field real datasets use).
    noise: None = None
    checkpoint: str = ""
    checkpoint_shipped: bool = True
    checkpoint_sha256: str | None = None
    flow_steps: int = DEFAULT_FLOW_STEPS
    temperature: float = UNRECORDED_TEMPERATURE
    max_steps: int | None = None
    seed: int = 0
    rollout_seeds: str = ""
    keep_failures: bool = True
    episodes: int = 0
    dropped: int = 0
    steps: int = 0
    successes: int = 0
    imagined_successes: int = 0
    imagined_success_rate: float = 0.0
    kept_edits: dict[str, int] = dataclasses.field(default_factory=dict)
    num_envs: int = 1
    device: str = "cpu"
    compression: str = _COMPRESSION
    imagination_seconds: float = 0.0
    #: Shards imagined side by side and combined (``vlgor imagine --shards``).
    shards: int = 1

    @classmethod
    def of(cls, dataset: minari.MinariDataset | str) -> ImaginedMetadata:
        """The record of an imagined dataset (an id or a loaded dataset)."""
        loaded = minari.load_dataset(dataset) if isinstance(dataset, str) else dataset
        raw = loaded.storage.metadata.get("vlgor") or {}
        if "imagined_success_rate" not in raw:
            raise ValueError(f"{loaded.id} is not an imagined vlgor dataset (`vlgor imagine` makes one)")
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in raw.items() if key in known})


@dataclasses.dataclass
class ImagineConfig:
    """Write an imagined Minari dataset: counterfactual prompts rolled out by the imagination model.

    ``vlgor imagine`` parses this and :func:`imagine` takes it.
    """

    env: EnvName
    """Which environment's imagination model."""
    split: Literal["train", "rephrasing", "counterfactual", "hard"] = "counterfactual"
    """Where the goals come from: edits of train goals (counterfactual) or sampled from the split."""
    rollouts: int = 1000
    """Imagined rollouts; rollout k starts from reset seed `seed + k`."""
    edits: Literal["both", "target", "behavior"] = "both"
    """Counterfactual edits: both, or only target / only behaviour (the paper's Table 2 ablations)."""
    drop_failures: bool = False
    """Drop rollouts whose imagined outcome never reached the goal (if none did, nothing is
    written and a RuntimeError says so)."""
    checkpoint: Path | None = None
    """Imagination checkpoint folder; default the shipped one."""
    dataset_id: str | None = None
    """Minari id; default `vlgor/<env>/imagined-<split>-v0` (`-<edits>-v0` for one edit type)."""
    overwrite: bool = False
    """Replace an existing dataset of that id."""
    num_envs: int = 16
    """Rollouts imagined together in one batched model call."""
    seed: int = 0
    """Base seed of the starts, the prompts and random first actions."""
    first_action: Literal["expert", "random"] = "expert"
    """First action a'_0: the scripted expert's at the same real start, or uniformly random."""
    flow_steps: int | None = None
    """Euler steps per imagined frame (default: the imagined env's)."""
    temperature: float = DEFAULT_TEMPERATURE
    """Scale of the flow's starting noise (0: deterministic frames; 1: as in training)."""
    max_steps: int | None = None
    """Truncate rollouts after this many steps (default: the env's limit)."""
    device: str = "cpu"
    """Torch device of the model."""
    threads: int | None = None
    """torch intra-op threads (default: torch's choice)."""
    progress: bool = True
    """Show a progress bar over rollouts."""
    shards: int = 1
    """Imagine the rollouts in this many contiguous shards side by side (each rollout keeps its
    seed and prompt), then combine them into the one dataset; the same episodes as one process
    when each shard holds at least `num_envs` rollouts (the model is batched alike)."""
    backend: Backend = "local"
    """Where the shards run: `local` processes, or `ray` tasks (`pip install 'vlgor[ray]'`)."""
    address: str | None = None
    """The Ray cluster for `--backend ray` (default: a local Ray); its workers need this
    machine's Minari datasets root at the same path."""


def _check(config: ImagineConfig) -> None:
    check_arguments(config.env, config.split, config.edits)
    check_choice("first_action", config.first_action, FIRST_ACTIONS)
    for name in ("rollouts", "num_envs", "shards"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    if config.seed < 0:
        raise ValueError(f"seed must be >= 0, got {config.seed}")
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {config.max_steps}")
    if config.flow_steps is not None and config.flow_steps < 1:
        raise ValueError(f"flow_steps must be >= 1, got {config.flow_steps}")
    check_temperature(config.temperature)
    if config.shards > config.rollouts:
        raise ValueError(f"shards must be <= rollouts ({config.rollouts}), got {config.shards}")


def imagined_env_kwargs(config: ImagineConfig) -> dict[str, Any]:
    """The arguments of the imagined vector env that makes ``config``'s rollouts."""
    return {
        "split": config.split,
        "checkpoint": None if config.checkpoint is None else str(config.checkpoint),
        "flow_steps": DEFAULT_FLOW_STEPS if config.flow_steps is None else config.flow_steps,
        "device": config.device,
        "temperature": config.temperature,
    }


def imagine(config: ImagineConfig) -> minari.MinariDataset:
    """Roll the imagination model out on counterfactual prompts and write a Minari dataset.

    See the module docstring for how prompts, first actions and episodes are made, and
    :class:`ImagineConfig` for the settings.

    Returns:
        The dataset, loaded from its final location.

    Raises:
        ValueError: Bad settings: ``edits`` other than ``"both"`` outside the counterfactual
            split, target edits for Meta-World, non-positive counts, malformed id.
        FileExistsError: ``dataset_id`` exists and ``overwrite`` is false (names ``--overwrite``).
        RuntimeError: ``drop_failures`` and no rollout reached its goal (nothing is written).
    """
    _check(config)
    if config.shards > 1:
        from vlgor_envs.imagination.shards import imagine_in_shards  # it builds on this module

        return imagine_in_shards(config)
    dataset_id = config.dataset_id or imagined_dataset_id(config.env, config.split, config.edits)
    start = time.perf_counter()
    with staged_dataset(dataset_id, config.overwrite, command="imagine") as staging:
        stats = imagine_rollouts(config, dataset_id, range(config.rollouts))
        for path in (staging / dataset_id / "data").glob("*.hdf5"):
            repack_hdf5(path, _COMPRESSION)
        record = imagined_record(config, stats, time.perf_counter() - start)
        write_record(minari.MinariDataset(staging / dataset_id / "data"), config.env, record)
    return minari.load_dataset(dataset_id)


def imagine_rollouts(
    config: ImagineConfig, dataset_id: str, rollouts: range, allow_empty: bool = False
) -> dict[str, Any]:
    """Imagine ``config``'s rollouts ``rollouts`` as dataset ``dataset_id`` in the current
    Minari root (uncompressed, without ``metadata["vlgor"]``); returns their counts. Without
    ``allow_empty``, nothing left after ``drop_failures`` is an error."""
    if config.threads:
        torch.set_num_threads(config.threads)
    prompts = imagined_prompts(config.env, config.split, config.rollouts, config.seed, config.edits)
    return _imagine_staged(
        config.env,
        imagined_env_kwargs(config),
        dataset_id,
        prompts[rollouts.start : rollouts.stop],
        _Options(
            keep_failures=not config.drop_failures,
            first_action=config.first_action,
            max_steps=config.max_steps,
            progress=config.progress,
            num_envs=min(config.num_envs, len(rollouts)),
            allow_empty=allow_empty,
            earlier_rollouts=rollouts.start,
        ),
        _generators(config.seed)[1],
    )


def imagined_record(
    config: ImagineConfig, stats: dict[str, Any], seconds: float, shards: int = 1
) -> ImaginedMetadata:
    """``metadata["vlgor"]`` of the dataset ``config`` makes, from its rollouts' ``stats``."""
    folder = Path(config.checkpoint) if config.checkpoint is not None else shipped_checkpoint(config.env)
    return ImaginedMetadata(
        env=config.env,
        env_id=registry.entry(config.env).imagined_env_id,
        real_env_id=registry.entry(config.env).env_id,
        split=config.split,
        edits=config.edits,
        policy=f"imagination model (first action: {config.first_action})",
        first_action=config.first_action,
        checkpoint=str(folder),
        checkpoint_shipped=config.checkpoint is None,
        checkpoint_sha256=checkpoint_digest(folder),
        flow_steps=imagined_env_kwargs(config)["flow_steps"],
        temperature=config.temperature,
        max_steps=config.max_steps,
        seed=config.seed,
        rollout_seeds=f"seed + k for rollout k in [0, {config.rollouts})",
        rollouts=config.rollouts,
        keep_failures=not config.drop_failures,
        **stats,
        num_envs=min(config.num_envs, config.rollouts // shards),
        shards=shards,
        device=config.device,
        compression=_COMPRESSION,
        imagination_seconds=round(seconds, 3),
    )


def write_record(dataset: minari.MinariDataset, env: str, record: ImaginedMetadata) -> None:
    """Store ``record`` and the shared format description in ``dataset``'s metadata."""
    dataset.storage.update_metadata(
        {"vlgor": dataclasses.asdict(record), FORMAT_KEY: format_metadata(env, imagined=True)}
    )


def imagined_description(env: str, env_kwargs: dict[str, Any], rollouts: int, first_action: str) -> str:
    """The Minari description of an imagined dataset of ``rollouts`` rollouts."""
    settings = ", ".join(f"{k}={v}" for k, v in env_kwargs.items())
    return (
        f"{rollouts} rollouts of the imagination model in {registry.entry(env).imagined_env_id} on "
        f"{env_kwargs['split']} prompts ({settings}); first action: {first_action}, then the model's "
        "own predicted actions. Images are lossless; each episode's metadata holds its instruction, "
        "split, goal (JSON), success, edit and source goal."
    )


def _empty_dataset(
    env: str, env_kwargs: dict[str, Any], dataset_id: str, prompts: int, first_action: str, image_size: int
) -> minari.MinariDataset:
    """The Minari dataset the rollouts are written into, with its spec and description."""
    split, imagined_id = env_kwargs["split"], registry.entry(env).imagined_env_id
    # Minari takes the env spec (and spaces) from an env; this one is never stepped.
    spec_env = gym.make(imagined_id, **env_kwargs)
    try:
        with warnings.catch_warnings():
            # Minari warns about every optional field left empty (author email, permalink, ...).
            warnings.filterwarnings("ignore", message=r".*is set to None", category=UserWarning)
            return minari.create_dataset_from_buffers(
                dataset_id,
                [],
                env=spec_env,
                eval_env=dataclasses.replace(
                    gym.spec(registry.entry(env).env_id), kwargs={"split": split, "image_size": image_size}
                ),
                algorithm_name=f"imagination model, first action {first_action}",
                author="vlgor",
                description=imagined_description(env, env_kwargs, prompts, first_action),
                data_format="hdf5",
                jpeg_encoding=False,
            )
    finally:
        spec_env.close()


class _Slots:
    """Rollouts imagined ``num_envs`` at a time: a finished slot takes the next prompt."""

    def __init__(
        self,
        vector: ImaginedVectorEnv,
        prompts: Sequence[Prompt],
        first_actions: _FirstActions,
        max_steps: int | None,
    ) -> None:
        self.vector, self.first_actions, self.max_steps = vector, first_actions, max_steps
        self.space = vector.single_action_space
        self.queue = collections.deque(enumerate(prompts))
        self.slots: list[_Rollout | None] = [None] * vector.num_envs
        self.idle = _as_action(
            self.space, np.zeros(self.space.shape) if isinstance(self.space, spaces.Box) else 0
        )
        # A partial reset needs every sub-env reset once; one goal for all keeps Meta-World to
        # one scene. Each slot is then reset with its own prompt.
        vector.reset(seed=prompts[0].seed, options={"goal": prompts[0].goal})
        for slot in range(vector.num_envs):
            self._begin(slot)

    def _reset(self, slot: int, prompt: Prompt) -> tuple[dict[str, Any], dict[str, Any]]:
        mask = np.zeros(self.vector.num_envs, dtype=bool)
        mask[slot] = True
        seeds: list[int | None] = [None] * self.vector.num_envs
        seeds[slot] = prompt.seed
        return self.vector.reset(seed=seeds, options={"reset_mask": mask, "goal": prompt.goal})

    def _begin(self, slot: int) -> None:
        index, prompt = self.queue.popleft()
        observation, info = self._reset(slot, prompt)
        image = observation["image"][slot].copy()
        action = _as_action(self.space, self.first_actions(prompt, image))
        success = bool(info["is_success"][slot])
        self.slots[slot] = _Rollout(
            index, prompt, observation["instruction"][slot], action, [image], [success]
        )

    def running(self) -> bool:
        return any(rollout is not None for rollout in self.slots)

    def step(self) -> list[_Rollout]:
        """One model call for every slot; returns the rollouts that finished."""
        actions = [rollout.action if rollout is not None else self.idle for rollout in self.slots]
        observation, rewards, terminated, truncated, info = self.vector.step(np.stack(actions))
        finished = []
        for slot, rollout in enumerate(self.slots):
            if rollout is None:
                continue
            rollout.actions.append(rollout.action)
            rollout.images.append(observation["image"][slot].copy())
            rollout.successes.append(bool(info["is_success"][slot]))
            rollout.rewards.append(float(rewards[slot]))
            rollout.terminations.append(bool(terminated[slot]))
            capped = self.max_steps is not None and len(rollout.actions) >= self.max_steps
            rollout.truncations.append(bool(truncated[slot]) or (capped and not terminated[slot]))
            if not (rollout.terminations[-1] or rollout.truncations[-1]):
                rollout.action = _as_action(self.space, info["imagined_action"][slot])
                continue
            finished.append(rollout)
            self.slots[slot] = None
            if self.queue:
                self._begin(slot)
            else:
                # Idle until the others finish: reset with a known prompt rather than
                # autoreset to a sampled goal (a new Meta-World scene to build).
                self._reset(slot, rollout.prompt)
        return finished


class _OrderedWriter:
    """Writes finished rollouts in prompt order, as soon as all earlier ones are done."""

    def __init__(self, dataset: minari.MinariDataset, split: str, keep_failures: bool) -> None:
        self.storage, self.split, self.keep_failures = dataset.storage, split, keep_failures
        self.done: dict[int, _Rollout] = {}
        self.metadata: list[dict[str, Any]] = []
        self.written = self.steps = 0
        self.kept_edits: collections.Counter[str] = collections.Counter()

    def add(self, rollout: _Rollout) -> None:
        self.done[rollout.index] = rollout
        while self.written in self.done:
            first = self.done.pop(self.written)
            self.written += 1
            if self.keep_failures or first.terminations[-1]:
                self.storage.update_episodes([first.episode()])
                self.metadata.append(first.metadata(self.split))
                self.kept_edits[first.prompt.edit] += 1
                self.steps += len(first.actions)

    def finish(self, prompts: int, allow_empty: bool = False) -> None:
        """Write the episodes' metadata; raise if every rollout was dropped (unless allowed)."""
        if not self.metadata and not allow_empty:
            raise nothing_kept_error(prompts)
        self.storage.update_episode_metadata(self.metadata)


@dataclasses.dataclass(frozen=True)
class _Options:
    """How :func:`_imagine_staged` rolls its prompts out and writes them."""

    keep_failures: bool
    first_action: str
    max_steps: int | None
    progress: bool
    num_envs: int
    #: Whether no rollout kept is fine (a shard of a larger dataset), not an error.
    allow_empty: bool = False
    #: Rollouts before these prompts, whose random first actions the generator skips.
    earlier_rollouts: int = 0


def nothing_kept_error(rollouts: int) -> RuntimeError:
    """The error of a ``drop_failures`` dataset that no rollout reached the goal of."""
    return RuntimeError(
        f"none of the {rollouts} imagined rollouts reached its goal, so drop_failures=True "
        "left nothing to write; imagine more rollouts or keep the failures"
    )


def _imagine_staged(
    env: str,
    env_kwargs: dict[str, Any],
    dataset_id: str,
    prompts: Sequence[Prompt],
    options: _Options,
    action_rng: np.random.Generator,
) -> dict[str, Any]:
    """Imagine the rollouts into the current Minari root; returns counts for ``metadata["vlgor"]``."""
    vector = gym.make_vec(
        registry.entry(env).imagined_env_id,
        num_envs=options.num_envs,
        vectorization_mode="vector_entry_point",
        **env_kwargs,
    )
    # The vector entry point is built unwrapped; its reset takes per-env seeds and a reset mask.
    assert isinstance(vector, ImaginedVectorEnv)
    observation_space = vector.single_observation_space
    assert isinstance(observation_space, spaces.Dict) and isinstance(observation_space["image"], spaces.Box)
    image_size = observation_space["image"].shape[0]
    split = env_kwargs["split"]
    first_actions = _FirstActions(
        env, options.first_action, split, vector.single_action_space, image_size, action_rng
    )
    first_actions.skip(options.earlier_rollouts)
    try:
        dataset = _empty_dataset(env, env_kwargs, dataset_id, len(prompts), options.first_action, image_size)
        writer = _OrderedWriter(dataset, split, options.keep_failures)
        slots = _Slots(vector, prompts, first_actions, options.max_steps)
        successes = finished = 0
        bar = tqdm(total=len(prompts), desc=dataset_id, unit="rollout", disable=not options.progress)
        with bar:
            while slots.running():
                for rollout in slots.step():
                    successes, finished = successes + rollout.terminations[-1], finished + 1
                    writer.add(rollout)
                    bar.update(1)
                    bar.set_postfix(success=f"{successes / finished:.2f}")
        writer.finish(len(prompts), options.allow_empty)
    finally:
        first_actions.close()
        vector.close()
    return {
        "episodes": len(writer.metadata),
        "dropped": len(prompts) - len(writer.metadata),
        "steps": writer.steps,
        "successes": sum(bool(m["success"]) for m in writer.metadata),
        "imagined_successes": successes,
        "imagined_success_rate": successes / len(prompts),
        "kept_edits": dict(sorted(writer.kept_edits.items())),
    }


def imagine_command(config: tyro.conf.OmitArgPrefixes[ImagineConfig]) -> None:
    """Roll the imagination model out on counterfactual prompts into a Minari dataset."""
    dataset = imagine(config)
    ours = ImaginedMetadata.of(dataset)
    summary = describe(dataset.id)
    print(
        f"wrote {dataset.id}: {summary['episodes']} episodes, {summary['steps']} steps, imagined success "
        f"rate {ours.imagined_success_rate:.3f} ({ours.imagined_successes}/{ours.rollouts} "
        f"rollouts reached their goal, {ours.dropped} dropped), {summary['bytes'] / 1e6:.1f} MB "
        f"at {summary['path']}"
    )
