"""How long imagination stays true: open-loop fidelity per step, over whole rollouts.

For each held-out start (seeds no dataset uses) the scripted expert acts in the real env for
``steps`` steps, on past a success; the imagined env, reset from the same seed (hence the same
first frame and goal), is driven open-loop by the same actions, each step from its own
previous frame. Per step ``k``: PSNR and SSIM of the imagined frame against the real one; on
CLEVR the ball centres read from the imagined frame by the colour detector against the true
ones (world units, mean over the five balls; the ball radius is 0.13), on Meta-World the state
head's object position against the true one (metres); and how often the imagined success
(what the imagined env reports) equals the real one at that step. Copying the first frame is
the baseline every figure is shown against; the paper's Table 1 gives one-step figures only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym
import numpy as np
import torch
import tyro
from matplotlib import pyplot as plt
from tqdm import tqdm

from benchmarks.report import RESULTS_DIR, markdown_table, write_result
from vlgor_envs import registry
from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.data.collect import make_expert
from vlgor_envs.imagination.env import ImaginedEnv
from vlgor_envs.imagination.metrics import psnr, ssim
from vlgor_envs.imagination.model import DEFAULT_FLOW_STEPS, DEFAULT_TEMPERATURE

NAME = "rollout_fidelity"
#: Reset seeds of the held-out starts: ``HELDOUT_SEED + i`` (no dataset uses them).
HELDOUT_SEED = 3_000_000
#: The targets at step 10 (CLEVR), and the paper's Table 1 one-step figures (BAGEL-based, CLEVR).
TARGETS = {"psnr": 25.0, "ball_error": 0.05, "success_agreement": 0.90}
PAPER_ONE_STEP = {"psnr": 23.94, "ssim": 0.8123}
#: Steps shown in the results table.
TABLE_STEPS = (1, 3, 5, 10, 20)


@dataclass
class Args:
    envs: tuple[registry.EnvName, ...] = ("clevr", "metaworld")
    splits: tuple[str, ...] = ("train", "counterfactual", "hard")
    episodes: dict[str, int] = field(default_factory=lambda: {"clevr": 40, "metaworld": 10})
    """Held-out starts per split."""
    steps: int = 20
    """Open-loop steps per rollout."""
    checkpoints: dict[str, str] = field(default_factory=dict)
    """Checkpoint folder per env (default: the shipped ones)."""
    flow_steps: int = DEFAULT_FLOW_STEPS
    temperature: float = DEFAULT_TEMPERATURE
    threads: int | None = None
    """torch threads (default: torch's choice)."""
    results: Path = RESULTS_DIR


@dataclass
class _Rollouts:
    """``count`` rollouts of ``steps`` steps, real and imagined, each array step-major."""

    real_frames: np.ndarray  # (steps + 1, count, H, W, 3)
    imagined_frames: np.ndarray  # (steps + 1, count, H, W, 3); step 0 is the shared first frame
    real_states: np.ndarray  # (steps + 1, count, state)
    predicted_states: np.ndarray  # (steps + 1, count, state) from the model's state head
    real_success: np.ndarray  # (steps, count)
    imagined_success: np.ndarray  # (steps, count)


def _real_rollouts(env: str, split: str, seeds: list[int], steps: int) -> dict[str, Any]:
    """The expert's actions, frames, object states and successes in the real env."""
    entry = registry.entry(env)
    real = gym.make(entry.env_id, split=split, image_size=64)
    frames, states, actions, successes = [], [], [], []
    for seed in seeds:
        expert = make_expert(env)
        observation, info = real.reset(seed=seed)
        episode_frames, episode_states = [observation["image"]], [info[entry.object_state_info]]
        episode_actions, episode_success = [], []
        for _ in range(steps):
            action = expert.act(info)
            observation, _, _, _, info = real.unwrapped.step(action)  # on past a success
            episode_actions.append(action)
            episode_frames.append(observation["image"])
            episode_states.append(info[entry.object_state_info])
            episode_success.append(bool(info["is_success"]))
        frames.append(episode_frames)
        states.append(np.asarray(episode_states, dtype=np.float64).reshape(steps + 1, -1))
        actions.append(episode_actions)
        successes.append(episode_success)
    real.close()
    return {
        "frames": np.asarray(frames).swapaxes(0, 1),
        "states": np.asarray(states).swapaxes(0, 1),
        "actions": np.asarray(actions).swapaxes(0, 1),
        "success": np.asarray(successes).swapaxes(0, 1),
    }


def rollouts(args: Args, env: str, split: str) -> _Rollouts:
    """Real and open-loop imagined rollouts from the split's held-out starts."""
    count = args.episodes[env]
    seeds = [HELDOUT_SEED + 10_000 * args.splits.index(split) + i for i in range(count)]
    real = _real_rollouts(env, split, seeds, args.steps)
    imagined = ImaginedEnv(
        env=env,
        checkpoint=args.checkpoints.get(env),
        split=split,
        flow_steps=args.flow_steps,
        temperature=args.temperature,
    )
    core = imagined._core  # resets from an exact real-env seed and steps every rollout at once
    started = [core.reset(seed, None) for seed in seeds]
    episodes = [episode for episode, _ in started]
    if not all(np.array_equal(e.frame, f) for e, f in zip(episodes, real["frames"][0], strict=True)):
        raise RuntimeError(f"{env}: the imagined and real first frames differ; the seeds do not match")
    indices = list(core.model.cfg.state_indices)
    frames, predicted, success = (
        [real["frames"][0]],
        [np.stack([i["predicted_state"] for _, i in started])],
        [],
    )
    for actions in tqdm(real["actions"], desc=f"{env} {split}", leave=False):
        results = core.step(episodes, actions)
        frames.append(np.stack([e.frame for e in episodes]))
        predicted.append(np.stack([info["predicted_state"] for *_, info in results]))
        success.append([bool(terminated) for _, terminated, _, _ in results])
    imagined.close()
    return _Rollouts(
        real_frames=real["frames"],
        imagined_frames=np.asarray(frames),
        real_states=real["states"][..., indices],
        predicted_states=np.asarray(predicted),
        real_success=real["success"],
        imagined_success=np.asarray(success),
    )


def _ball_errors(frames: np.ndarray, states: np.ndarray) -> tuple[float, float]:
    """Mean distance (world units) of the balls detected in ``frames`` to ``states``' centres,
    and the share of balls not detected."""
    errors, missed = [], 0
    for frame, state in zip(frames, states, strict=True):
        centres, seen = detect_balls(frame)
        truth = state.reshape(-1, 2)
        errors.extend(np.linalg.norm(centres[seen] - truth[seen], axis=1))
        missed += int((~seen).sum())
    return float(np.mean(errors)) if errors else float("nan"), missed / (len(frames) * 5)


def per_step(env: str, found: _Rollouts) -> dict[str, list[float]]:
    """Each figure at steps ``1 .. steps`` (list index ``k - 1``), beside copying the first frame."""
    figures: dict[str, list[float]] = {key: [] for key in ("psnr", "ssim", "copy_psnr", "copy_ssim")}
    first = found.real_frames[0]
    for k in range(1, len(found.real_frames)):
        real = found.real_frames[k]
        figures["psnr"].append(float(psnr(found.imagined_frames[k], real).mean()))
        figures["ssim"].append(float(ssim(found.imagined_frames[k], real).mean()))
        figures["copy_psnr"].append(float(psnr(first, real).mean()))
        figures["copy_ssim"].append(float(ssim(first, real).mean()))
        if env == "clevr":
            error, missed = _ball_errors(found.imagined_frames[k], found.real_states[k])
            copy = np.linalg.norm(
                found.real_states[0].reshape(-1, 5, 2) - found.real_states[k].reshape(-1, 5, 2), axis=2
            )
            figures.setdefault("ball_error", []).append(error)
            figures.setdefault("balls_missed", []).append(missed)
            figures.setdefault("copy_ball_error", []).append(float(copy.mean()))
        else:  # hand xyz, gripper, object xyz: the object's position
            error = np.linalg.norm(found.predicted_states[k][:, 4:7] - found.real_states[k][:, 4:7], axis=1)
            figures.setdefault("object_error_m", []).append(float(error.mean()))
        agree = found.imagined_success[k - 1] == found.real_success[k - 1]
        figures.setdefault("success_agreement", []).append(float(agree.mean()))
        figures.setdefault("real_success", []).append(float(found.real_success[k - 1].mean()))
        figures.setdefault("imagined_success", []).append(float(found.imagined_success[k - 1].mean()))
    return figures


def _pooled(by_split: dict[str, dict[str, list[float]]], counts: dict[str, int]) -> dict[str, list[float]]:
    """Episode-weighted mean of each per-step figure over the splits."""
    total = sum(counts.values())
    keys = next(iter(by_split.values())).keys()
    return {
        key: [
            float(sum(counts[s] * by_split[s][key][k] for s in by_split) / total)
            for k in range(len(by_split[next(iter(by_split))][key]))
        ]
        for key in keys
    }


def measure(args: Args) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    figures: dict[str, Any] = {}
    for env in args.envs:
        by_split = {split: per_step(env, rollouts(args, env, split)) for split in args.splits}
        counts = {split: args.episodes[env] for split in args.splits}
        figures[env] = {"episodes": counts, "splits": by_split, "all": _pooled(by_split, counts)}
    return figures


def plot(figures: dict[str, Any], path: Path) -> None:
    envs = list(figures)
    fig, axes = plt.subplots(len(envs), 3, figsize=(12, 3.3 * len(envs)), squeeze=False)
    for row, env in enumerate(envs):
        pooled = figures[env]["all"]
        steps = np.arange(1, len(pooled["psnr"]) + 1)
        error_key = "ball_error" if env == "clevr" else "object_error_m"
        panels = [
            ("PSNR (dB)", "psnr", "copy_psnr", TARGETS["psnr"] if env == "clevr" else None),
            (
                "ball error (world units)" if env == "clevr" else "object error (m)",
                error_key,
                "copy_ball_error" if env == "clevr" else None,
                TARGETS["ball_error"] if env == "clevr" else None,
            ),
            ("imagined = real success", "success_agreement", None, TARGETS["success_agreement"]),
        ]
        for ax, (label, key, copy_key, target) in zip(axes[row], panels, strict=True):
            ax.plot(steps, pooled[key], marker="o", markersize=3, label="imagined")
            if copy_key:
                ax.plot(steps, pooled[copy_key], color="grey", label="copy the first frame")
            if target is not None:
                ax.axhline(target, color="green", linestyle="--", linewidth=0.8, label="target")
            ax.set_title(f"{env}: {label}", fontsize=9)
            ax.set_xlabel("open-loop step")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def env_rows(env: str, found: dict[str, Any]) -> list[list[str]]:
    """One table row per figure of ``env``'s pooled rollouts, at the steps of ``TABLE_STEPS``."""
    pooled = found["all"]
    keys = ["psnr", "copy_psnr", "ssim"]
    keys += ["ball_error", "copy_ball_error"] if env == "clevr" else ["object_error_m"]
    keys += ["success_agreement", "real_success"]
    return [
        [key] + [f"{pooled[key][k - 1]:.3f}" if k <= len(pooled[key]) else "" for k in TABLE_STEPS]
        for key in keys
    ]


def readme_table(directory: Path = RESULTS_DIR) -> str:
    result = json.loads((directory / f"{NAME}.json").read_text())
    rows = [[env, *row] for env, found in result["figures"].items() for row in env_rows(env, found)]
    header = ["env", "figure"] + [f"step {k}" for k in TABLE_STEPS]
    episodes = ", ".join(
        f"{env} {sum(found['episodes'].values())}" for env, found in result["figures"].items()
    )
    splits = ", ".join(result["config"]["splits"])
    note = (
        f"Open-loop rollouts of the expert's actions from held-out starts ({episodes} rollouts over the "
        f"{splits} splits; `python -m benchmarks.rollout_fidelity`). Targets at step 10 on CLEVR: PSNR "
        f"≥ {TARGETS['psnr']:g} dB, ball error ≤ {TARGETS['ball_error']:g}, success agreement ≥ "
        f"{TARGETS['success_agreement']:.0%}. The paper's Table 1 reports one step only (PSNR "
        f"{PAPER_ONE_STEP['psnr']}, SSIM {PAPER_ONE_STEP['ssim']}). Revision {result['git_revision'][:7]}."
    )
    return markdown_table(header, rows) + "\n\n" + note + "\n"


def main(args: Args) -> None:
    figures = measure(args)
    write_result(NAME, args, figures, args.results)
    plot(figures, args.results / f"{NAME}.png")
    print(readme_table(args.results))


if __name__ == "__main__":
    main(tyro.cli(Args))
