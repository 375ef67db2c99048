"""``VLGOR-Imagined-CLEVR`` / ``VLGOR-Imagined-MetaWorld``: the imagination model as a Gymnasium env.

Resets come from the real env (seeded from this env's ``np_random``): its first frame, its
object state and its instruction. Every step asks the model for ``s_{t+h}`` given the current
(imagined) frame, the instruction and the action, and judges the imagined outcome with the
real env's goal predicate.

:class:`ImaginedVectorEnv` steps ``num_envs`` of them in one model call; each sub-env keeps its
own generators, so it produces what the single env with the same seed does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

import vlgor_envs  # noqa: F401  (registers the real envs)
from vlgor_envs import registry
from vlgor_envs.imagination.checkpoint import load_checkpoint, shipped_checkpoint
from vlgor_envs.imagination.judges import ImaginedEpisode, Judge
from vlgor_envs.imagination.model import (
    DEFAULT_FLOW_STEPS,
    DEFAULT_TEMPERATURE,
    WorldModel,
    check_temperature,
)
from vlgor_envs.language.encoder import default_text_encoder
from vlgor_envs.language.goal import check_choice

_MAX_SEED = 2**31 - 1


def real_env_seed(seed: int) -> int:
    """The seed the real env is reset with when an imagined env is reset with ``seed``.

    :class:`ImaginedEnv` and each sub-env of :class:`ImaginedVectorEnv` draw it from a
    generator seeded with ``seed``; resetting the real env with it (and the same ``options``)
    reproduces the imagined episode's first frame.
    """
    return int(np.random.default_rng(seed).integers(_MAX_SEED))


def _load_model(env: str, checkpoint: str | Path | None, device: str) -> WorldModel:
    model, _ = load_checkpoint(checkpoint if checkpoint is not None else shipped_checkpoint(env), device)
    if model.cfg.env != env:
        raise ValueError(f"checkpoint {checkpoint} imagines {model.cfg.env!r}, not {env!r}")
    return model


class _Imagination:
    """The batched core both env classes share: real-env resets and one model call per step."""

    def __init__(
        self,
        env: str,
        checkpoint: str | Path | None,
        split: str,
        horizon: int | None,
        flow_steps: int,
        device: str,
        guidance: float,
        temperature: float,
    ) -> None:
        self.env = check_choice("env", env, tuple(registry.ENTRIES))
        self.judge: Judge = registry.load(registry.entry(env).imagination_judge)()
        self.model = _load_model(env, checkpoint, device)
        if horizon is not None and horizon != self.model.cfg.horizon:
            raise ValueError(
                f"the checkpoint was trained for horizon {self.model.cfg.horizon}, not {horizon}; "
                "train one with `vlgor imagination pretrain --horizon H` or leave horizon unset"
            )
        if flow_steps < 1:
            raise ValueError(f"flow_steps must be >= 1, got {flow_steps}")
        check_temperature(temperature)
        self.split, self.flow_steps, self.device, self.guidance = split, flow_steps, device, guidance
        self.temperature = temperature
        self.image_size = self.model.cfg.image_size
        self.real = gym.make(registry.entry(env).env_id, split=split, image_size=self.image_size)
        self.observation_space = self.real.observation_space
        self.action_space = self.real.action_space

    def reset(self, seed: int, options: dict[str, Any] | None) -> tuple[ImaginedEpisode, dict[str, Any]]:
        observation, info = self.real.reset(seed=seed, options=options)
        episode = self.judge.start(observation, info, torch.Generator().manual_seed(seed))
        real_state = self.judge.real_state(info)
        return episode, self._info(episode, real_state[list(self.model.cfg.state_indices)], None, False)

    def step(self, episodes: list[ImaginedEpisode], actions: np.ndarray) -> list[tuple[Any, ...]]:
        """Imagine one step of every episode; returns ``(reward, terminated, truncated, info)`` each."""
        model = self.model
        frames = torch.from_numpy(np.stack([e.frame for e in episodes])).to(self.device)
        if model.cfg.action_kind == "discrete":
            action_tensor = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        else:
            action_tensor = torch.as_tensor(np.asarray(actions, dtype=np.float32))
        states, masks = default_text_encoder().encode_tokens(
            [e.instruction for e in episodes], model.cfg.transformer.max_text_tokens
        )
        noise = torch.stack([self._noise(e.generator) for e in episodes]).to(self.device)
        with torch.inference_mode():
            new_frames, next_actions, predicted = model.imagine(
                frames,
                action_tensor.to(self.device),
                torch.from_numpy(states).to(self.device),
                torch.from_numpy(masks).to(self.device),
                self.flow_steps,
                noise=noise,
                guidance=self.guidance,
                temperature=self.temperature,
            )
        results = []
        for i, episode in enumerate(episodes):
            episode.frame = new_frames[i].cpu().numpy()
            episode.steps += 1
            reward, success = self._judge(episode, predicted[i].cpu().numpy())
            truncated = not success and episode.steps >= episode.max_steps
            imagined_action: Any = next_actions[i].cpu().numpy()
            if model.cfg.action_kind == "discrete":
                imagined_action = np.int64(imagined_action)
            info = self._info(episode, predicted[i].cpu().numpy(), imagined_action, success)
            results.append((reward, success, truncated, info))
        return results

    def _noise(self, generator: torch.Generator) -> torch.Tensor:
        latent = self.model.cfg.autoencoder
        return torch.randn(
            (latent.latent_channels, latent.latent_size, latent.latent_size), generator=generator
        )

    def _judge(self, episode: ImaginedEpisode, predicted_state: np.ndarray) -> tuple[float, bool]:
        reward, success = self.judge.score(episode, predicted_state)
        return float(reward), bool(success)

    def _info(
        self, episode: ImaginedEpisode, state: Any, imagined_action: Any, success: bool
    ) -> dict[str, Any]:
        info: dict[str, Any] = {
            "goal": episode.goal,
            "is_success": bool(success),
            "predicted_state": np.asarray(state, dtype=np.float64),
        }
        if imagined_action is not None:
            info["imagined_action"] = imagined_action
        return {**info, **self.judge.describe(episode)}

    def observation(self, episode: ImaginedEpisode) -> dict[str, Any]:
        return {"image": episode.frame.copy(), "instruction": episode.instruction}

    def close(self) -> None:
        self.real.close()


class ImaginedEnv(gym.Env[dict[str, Any], Any]):
    """The imagination model of a real VLGOR env, stepped like that env.

    ## Description
    A learned simulator (paper §3.2): the shipped (or given) world-model checkpoint predicts
    the frame ``h`` steps ahead from the current frame, the instruction and the action. The
    model also predicts its own next action, reported as ``info["imagined_action"]``; an
    imagined rollout that follows it is the paper's imagined trajectory.

    ## Action Space
    The real env's: ``Discrete(40)`` for CLEVR, ``Box(-1, 1, (4,))`` for Meta-World.

    ## Observation Space
    The real env's: ``Dict(image=Box(uint8, (64, 64, 3)), instruction=Text)``.

    ## Rewards
    The real env's goal predicate applied to the imagined outcome. CLEVR: ball positions are
    read from the *imagined frame* by a colour detector
    (:func:`vlgor_envs.clevr.detect.detect_balls`, 0.002 mean error on real frames), and the
    real env's reward formula is applied to them. Meta-World: the state head's predicted hand
    or object position (the task's mover) against the task's goal position; success within
    0.05 (an approximation: Meta-World's own predicates read joint states the model does not
    predict), reward ``exp(-distance / 0.1) + 1.0 * success``.

    ## Starting State
    The real env's reset, seeded from this env's ``np_random``: its first frame, state and
    instruction (``options`` as in the real env: ``instruction`` and/or ``goal``).

    ## Episode End
    Terminated when the predicate holds on the imagined outcome; truncated after the real
    env's limit (50 steps for CLEVR, the task's limit for Meta-World).

    ## Arguments
    - ``env``: ``"clevr"`` or ``"metaworld"`` (set by the registered id).
    - ``checkpoint``: checkpoint folder; default the one shipped in the package.
    - ``split``: the language split of the instructions (default ``"train"``).
    - ``horizon``: must equal the checkpoint's (default: the checkpoint's).
    - ``flow_steps``: Euler steps per frame (default 2).
    - ``device``: torch device of the model (default ``"cpu"``).
    - ``guidance``: classifier-free guidance scale on the text (default 1.0: off).
    - ``temperature``: scale of the flow's starting noise (default 0.0: deterministic frames;
      1.0 samples as in training).

    ## Version History
    - v0 (unversioned id): initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        env: str = "clevr",
        checkpoint: str | None = None,
        split: str = "train",
        horizon: int | None = None,
        flow_steps: int = DEFAULT_FLOW_STEPS,
        device: str = "cpu",
        guidance: float = 1.0,
        temperature: float = DEFAULT_TEMPERATURE,
        render_mode: str | None = None,
    ) -> None:
        self._core = _Imagination(env, checkpoint, split, horizon, flow_steps, device, guidance, temperature)
        self.observation_space = self._core.observation_space
        self.action_space = self._core.action_space
        self.render_mode = render_mode
        self._episode: ImaginedEpisode | None = None

    @property
    def model(self) -> WorldModel:
        return self._core.model

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        super().reset(seed=seed)
        self._episode, info = self._core.reset(int(self.np_random.integers(_MAX_SEED)), options)
        return self._core.observation(self._episode), info

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._episode is None:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in the action space {self.action_space}")
        ((reward, terminated, truncated, info),) = self._core.step([self._episode], np.asarray([action]))
        return self._core.observation(self._episode), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._episode is None:
            return None
        return self._episode.frame.copy()

    def close(self) -> None:
        self._core.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._episode is not None:
            generator_state: Any = self._episode.generator.get_state()
            state["_episode"] = dataclasses.replace(self._episode, generator=generator_state)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        episode = state.get("_episode")
        if episode is not None:
            generator = torch.Generator()
            generator.set_state(episode.generator)
            state["_episode"] = dataclasses.replace(episode, generator=generator)
        self.__dict__.update(state)


class ImaginedVectorEnv(VectorEnv[dict[str, Any], Any, Any]):
    """``num_envs`` imagined envs stepped in one model call (Gymnasium's next-step autoreset).

    Sub-env ``i`` reset with seed ``seed + i`` produces what :class:`ImaginedEnv` reset with that
    seed produces. Observations are ``{"image": (N, H, W, 3), "instruction": tuple of str}``;
    ``info`` holds per-env arrays as Gymnasium's vector envs do.

    Partial resets follow Gymnasium's ``SyncVectorEnv``: ``reset(seed=[...], options={"reset_mask":
    mask, ...})`` resets only the sub-envs where the boolean ``(num_envs,)`` mask is true (each with
    its entry of the seed list and the remaining options, e.g. its own ``goal``), cancels their
    pending autoreset, and leaves the others running; ``info`` holds entries of the reset ones only.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, env: str = "clevr", **kwargs: Any) -> None:
        self._core = _Imagination(
            env,
            kwargs.pop("checkpoint", None),
            kwargs.pop("split", "train"),
            kwargs.pop("horizon", None),
            kwargs.pop("flow_steps", DEFAULT_FLOW_STEPS),
            kwargs.pop("device", "cpu"),
            kwargs.pop("guidance", 1.0),
            kwargs.pop("temperature", DEFAULT_TEMPERATURE),
        )
        kwargs.pop("render_mode", None)
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        self.num_envs = num_envs
        self.single_observation_space = self._core.observation_space
        self.single_action_space = self._core.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rngs = [np.random.default_rng() for _ in range(num_envs)]
        self._episodes: list[ImaginedEpisode] = []
        self._done = np.zeros(num_envs, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        seeds: list[int | None] | None = (
            list(range(seed, seed + self.num_envs)) if isinstance(seed, int) else seed
        )
        if seeds is not None and len(seeds) != self.num_envs:
            raise ValueError(f"got {len(seeds)} seeds for {self.num_envs} envs")
        options = dict(options) if options else {}
        mask = self._reset_mask(options.pop("reset_mask", None))
        if mask is not None and not self._episodes:
            raise RuntimeError("reset every env once before a partial reset with options['reset_mask']")
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        fresh: dict[int, ImaginedEpisode] = {}
        for i in range(self.num_envs):
            if mask is not None and not mask[i]:
                continue
            if seeds is not None:
                self._rngs[i] = np.random.default_rng(seeds[i])
            fresh[i], infos[i] = self._core.reset(int(self._rngs[i].integers(_MAX_SEED)), options or None)
            self._done[i] = False
        if mask is None:
            self._episodes = [fresh[i] for i in range(self.num_envs)]
        else:
            self._episodes = [fresh.get(i, episode) for i, episode in enumerate(self._episodes)]
        return self._observations(), self._stack(infos)

    def _reset_mask(self, mask: Any) -> np.ndarray | None:
        if mask is None:
            return None
        if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
            raise ValueError(
                f"options['reset_mask'] must be a bool array of shape ({self.num_envs},), got {mask!r}"
            )
        if not mask.any():
            raise ValueError("options['reset_mask'] resets no env: at least one entry must be True")
        return mask

    def step(self, actions: Any) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        running = [i for i in range(self.num_envs) if not self._done[i]]
        for i in range(self.num_envs):
            if self._done[i]:
                self._episodes[i], infos[i] = self._core.reset(int(self._rngs[i].integers(_MAX_SEED)), None)
        if running:
            results = self._core.step([self._episodes[i] for i in running], np.asarray(actions)[running])
            for i, (reward, term, trunc, info) in zip(running, results, strict=True):
                rewards[i], terminated[i], truncated[i], infos[i] = reward, term, trunc, info
        self._done = terminated | truncated
        return self._observations(), rewards, terminated, truncated, self._stack(infos)

    def _observations(self) -> dict[str, Any]:
        return {
            "image": np.stack([e.frame for e in self._episodes]),
            "instruction": tuple(e.instruction for e in self._episodes),
        }

    @staticmethod
    def _stack(infos: list[dict[str, Any]]) -> dict[str, Any]:
        keys = sorted({key for info in infos for key in info})
        stacked: dict[str, Any] = {}
        for key in keys:
            values = [info.get(key) for info in infos]
            arrays = all(isinstance(v, np.ndarray | np.generic | bool | float | int) for v in values)
            if arrays and len({np.asarray(v).shape for v in values}) == 1:
                stacked[key] = np.stack([np.asarray(v) for v in values])
            else:
                stacked[key] = np.empty(len(values), dtype=object)
                stacked[key][:] = values
            stacked[f"_{key}"] = np.array([key in info for info in infos])
        return stacked

    def close_extras(self, **kwargs: Any) -> None:
        self._core.close()
