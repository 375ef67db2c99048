"""Fidelity of the shipped imagination models on held-out real transitions (paper Table 1, Fig. 5).

For every held-out transition ``(s_t, a_t, G) -> s_{t+1}`` of expert rollouts under train and
counterfactual instructions: PSNR and SSIM of the imagined frame, MED (CLEVR: the pushed
ball's position read from the imagined frame by the colour detector, against the true one,
in arena-normalised units; Meta-World: the state head's object position error in metres),
and next-action accuracy. Execution success: from each held-out episode's start, the model's
own actions (after the recorded first one) carry an imagined rollout until the imagined
outcome meets the goal; those actions are then replayed in the real env.

Also: PSNR against the number of Euler flow steps (how the default was chosen), one-step
fidelity when sampling at temperature 1 (the training noise) instead of the default, and a
real-vs-imagined rollout strip per split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import gymnasium as gym
import minari
import numpy as np
import torch
import tyro
from matplotlib import pyplot as plt

from benchmarks.report import RESULTS_DIR, load_result, markdown_table, provenance, write_result
from vlgor_envs import registry
from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.data.collect import collect, collect_config, list_datasets
from vlgor_envs.imagination.checkpoint import load_checkpoint, shipped_checkpoint
from vlgor_envs.imagination.data import load_transitions
from vlgor_envs.imagination.env import ImaginedEnv
from vlgor_envs.imagination.metrics import arena_normalised_distance, psnr, ssim
from vlgor_envs.imagination.model import (
    DEFAULT_FLOW_STEPS,
    DEFAULT_TEMPERATURE,
    UNRECORDED_TEMPERATURE,
    WorldModel,
)
from vlgor_envs.language.encoder import default_text_encoder
from vlgor_envs.rollout import replay

NAME = "imagination_fidelity"
SPLITS = ("train", "counterfactual")
#: Held-out episodes: seeds no training dataset uses.
HELDOUT_SEED = 1_000_000
#: The paper's Table 1 (BAGEL-based VLGOR on CLEVR) and our targets.
PAPER = {"psnr": 23.94, "ssim": 0.8123, "med": 0.0884}
TARGETS = {"psnr": 30.0, "ssim": 0.95, "med": 0.03, "action_accuracy": 0.90}


@dataclass
class Args:
    envs: tuple[str, ...] = ("clevr", "metaworld")
    checkpoints: dict[str, str] = field(default_factory=dict)
    """Checkpoint folder per env (default: the shipped ones)."""
    heldout_episodes: dict[str, int] = field(default_factory=lambda: {"clevr": 100, "metaworld": 20})
    """Held-out episodes per split, collected once if missing."""
    execution_episodes: int = 50
    flow_steps: int = DEFAULT_FLOW_STEPS
    flow_step_sweep: tuple[int, ...] = (1, 2, 4, 8, 16)
    temperature: float = DEFAULT_TEMPERATURE
    """Scale of the flow's starting noise; train fidelity is also measured at `compare_temperature`."""
    compare_temperature: float = 1.0
    seed: int = 0
    keep_other_envs: bool = True
    """Keep a previous result's figures for the envs this run does not measure."""
    device: str = "cpu"
    """torch device of the imagination model, e.g. `cuda`."""


def heldout_dataset(env: str, split: str, episodes: int) -> str:
    """Id of the held-out expert dataset of a split, collected if it is missing."""
    dataset_id = f"vlgor/{env}/heldout-{split}-v0"
    if dataset_id not in list_datasets():
        collect(collect_config(env, split, episodes=episodes, seed=HELDOUT_SEED, dataset_id=dataset_id))
    return dataset_id


def _imagine_batches(
    model: WorldModel,
    frames: np.ndarray,
    actions: np.ndarray,
    instructions: list[str],
    flow_steps: int,
    seed: int,
    temperature: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    outputs: list[list[np.ndarray]] = [[], [], []]
    device = model.device
    generator = torch.Generator(device).manual_seed(seed)
    for start in range(0, len(frames), 64):
        rows = slice(start, start + 64)
        text, mask = default_text_encoder().encode_tokens(
            instructions[rows], model.cfg.transformer.max_text_tokens
        )
        with torch.inference_mode():
            result = model.imagine(
                torch.from_numpy(frames[rows]).to(device),
                torch.from_numpy(np.asarray(actions[rows])).to(device),
                torch.from_numpy(text).to(device),
                torch.from_numpy(mask).to(device),
                flow_steps,
                generator,
                temperature=temperature,
            )
        for out, value in zip(outputs, result, strict=True):
            out.append(value.cpu().numpy())
    imagined, next_actions, states = (np.concatenate(o) for o in outputs)
    return imagined, next_actions, states


def one_step_fidelity(
    model: WorldModel, dataset_id: str, flow_steps: int, seed: int, temperature: float = DEFAULT_TEMPERATURE
) -> dict[str, float]:
    """PSNR, SSIM, MED and next-action accuracy over every transition of a dataset."""
    data = load_transitions([dataset_id], model.cfg.horizon, progress=False)
    actions = np.asarray(data.actions)
    imagined, next_actions, states = _imagine_batches(
        model, data.frames[data.current], actions, data.instructions, flow_steps, seed, temperature
    )
    real = data.frames[data.future]
    true_states = data.states[data.future]
    valid = data.next_action_valid
    current = data.frames[data.current]
    with torch.inference_mode():
        reconstructed = np.concatenate(
            [
                model.autoencoder.decode(
                    model.autoencoder.encode(torch.from_numpy(real[i : i + 256]).to(model.device))
                )
                .cpu()
                .numpy()
                for i in range(0, len(real), 256)
            ]
        )
    figures = {
        "transitions": len(data),
        "psnr": float(psnr(imagined, real).mean()),
        "ssim": float(ssim(imagined, real).mean()),
        # Baselines: copying s_t, and the autoencoder's reconstruction of s_{t+h} (a ceiling).
        "copy_psnr": float(psnr(current, real).mean()),
        "copy_ssim": float(ssim(current, real).mean()),
        "autoencoder_psnr": float(psnr(reconstructed, real).mean()),
    }
    if model.cfg.env == "clevr":
        balls = actions // 8
        med: list[float] = []
        for i, ball in enumerate(balls):
            detected, seen = detect_balls(imagined[i])
            truth = true_states[i].reshape(5, 2)[ball]
            med.append(float(arena_normalised_distance(detected[ball], truth)) if seen[ball] else np.nan)
        figures["med"] = float(np.nanmean(med))
        rows = np.arange(len(balls))
        figures["copy_med"] = float(
            np.mean(
                arena_normalised_distance(
                    data.states[data.current].reshape(-1, 5, 2)[rows, balls],
                    true_states.reshape(-1, 5, 2)[rows, balls],
                )
            )
        )
        figures["med_missed"] = float(np.mean(np.isnan(med)))
        figures["med_state_head"] = float(
            np.mean(
                arena_normalised_distance(
                    states.reshape(-1, 5, 2)[np.arange(len(balls)), balls],
                    true_states.reshape(-1, 5, 2)[np.arange(len(balls)), balls],
                )
            )
        )
        true_next = np.asarray(data.next_actions)[valid]
        figures["action_accuracy"] = float(np.mean(next_actions[valid] == true_next))
        # Baseline: the expert repeats its current push.
        figures["copy_action_accuracy"] = float(np.mean(actions[valid] == true_next))
    else:
        figures["object_error_m"] = float(
            np.mean(np.linalg.norm(states[:, 4:7] - true_states[:, 4:7], axis=1))
        )
        figures["hand_error_m"] = float(np.mean(np.linalg.norm(states[:, 0:3] - true_states[:, 0:3], axis=1)))
        error = next_actions[valid] - np.asarray(data.next_actions)[valid]
        figures["action_mse"] = float(np.mean(error**2))
        figures["action_sign_agreement"] = float(
            np.mean(
                np.sign(next_actions[valid][:, :3]) == np.sign(np.asarray(data.next_actions)[valid][:, :3])
            )
        )
    return figures


def _episode_starts(dataset_id: str, count: int) -> list[tuple[int, Any, str]]:
    dataset = minari.load_dataset(dataset_id)
    starts = []
    for index, episode in enumerate(dataset.iterate_episodes()):
        if index >= count:
            break
        metadata = next(iter(dataset.storage.get_episode_metadata([index])))
        starts.append((int(metadata["seed"]), episode.actions[0], str(metadata["instruction"])))
    return starts


def execution_success(
    env: str,
    checkpoint: str | None,
    split: str,
    dataset_id: str,
    episodes: int,
    flow_steps: int,
    device: str = "cpu",
    temperature: float = DEFAULT_TEMPERATURE,
) -> dict[str, float | None]:
    """Imagine with the model's own actions, then replay those actions in the real env."""
    imagined = ImaginedEnv(
        env=env,
        checkpoint=checkpoint,
        split=split,
        flow_steps=flow_steps,
        device=device,
        temperature=temperature,
    )
    core = imagined._core  # resets from an exact real-env seed, to start where the dataset did
    real = gym.make(registry.entry(env).env_id, split=split)
    imagined_successes, real_successes, lengths = [], [], []
    for seed, first_action, instruction in _episode_starts(dataset_id, episodes):
        episode, _ = core.reset(seed, {"instruction": instruction})
        action, actions, success = first_action, [], False
        for _ in range(episode.max_steps):
            ((_, success, truncated, info),) = core.step([episode], np.asarray([action]))
            actions.append(action)
            if success or truncated:
                break
            action = info["imagined_action"]
        _, real_success = replay(real, seed, {"instruction": instruction}, actions)
        imagined_successes.append(success)
        real_successes.append(real_success)
        lengths.append(len(actions))
    imagined.close()
    real.close()
    claimed, achieved = np.asarray(imagined_successes), np.asarray(real_successes)
    return {
        "execution_success": float(np.mean(real_successes)),
        "imagined_success": float(np.mean(imagined_successes)),
        # How far an imagined success (the reward the imagined data carries) can be trusted.
        "imagined_success_real": float(achieved[claimed].mean()) if claimed.any() else None,
        "mean_actions": float(np.mean(lengths)),
        "episodes": len(real_successes),
    }


def flow_step_sweep(
    model: WorldModel, dataset_id: str, steps: tuple[int, ...], seed: int, temperature: float
) -> dict[str, dict[str, float]]:
    data = load_transitions([dataset_id], model.cfg.horizon, max_transitions=256, progress=False)
    sweep = {}
    for flow_steps in steps:
        start = time.perf_counter()
        imagined, _, _ = _imagine_batches(
            model,
            data.frames[data.current],
            np.asarray(data.actions),
            data.instructions,
            flow_steps,
            seed,
            temperature,
        )
        seconds = time.perf_counter() - start
        real = data.frames[data.future]
        sweep[str(flow_steps)] = {
            "psnr": float(psnr(imagined, real).mean()),
            "ssim": float(ssim(imagined, real).mean()),
            "frames_per_second": len(imagined) / seconds,
        }
        print(f"flow steps {flow_steps}: {sweep[str(flow_steps)]}")
    return sweep


def rollout_strip(
    model: WorldModel,
    env: str,
    dataset_id: str,
    path: Path,
    flow_steps: int,
    steps: int = 8,
    temperature: float = DEFAULT_TEMPERATURE,
) -> None:
    """Real frames (top) and the open-loop imagination of the same actions (bottom), Fig. 5 style."""
    dataset = minari.load_dataset(dataset_id)
    episode = max(
        dataset.iterate_episodes(range(min(10, dataset.total_episodes))), key=lambda e: len(e.actions)
    )
    instruction = str(next(iter(dataset.storage.get_episode_metadata([episode.id])))["instruction"])
    real = episode.observations["image"][: steps + 1]
    device = model.device
    frame = torch.from_numpy(real[:1]).to(device)
    imagined = [real[0]]
    text, mask = default_text_encoder().encode_tokens([instruction], model.cfg.transformer.max_text_tokens)
    generator = torch.Generator(device).manual_seed(0)
    for action in episode.actions[: len(real) - 1]:
        with torch.inference_mode():
            frame, _, _ = model.imagine(
                frame,
                torch.as_tensor(np.asarray([action]), device=device),
                torch.from_numpy(text).to(device),
                torch.from_numpy(mask).to(device),
                flow_steps,
                generator,
                temperature=temperature,
            )
        imagined.append(frame[0].cpu().numpy())
    columns = len(real)
    fig, axes = plt.subplots(2, columns, figsize=(1.3 * columns, 3.0), squeeze=False)
    for row, frames in enumerate((real, imagined)):
        for column in range(columns):
            axes[row][column].imshow(frames[column])
            axes[row][column].set_xticks([])
            axes[row][column].set_yticks([])
            if row == 0:
                axes[row][column].set_title(f"t={column}", fontsize=8)
        axes[row][0].set_ylabel(("real", "imagined")[row])
    fig.suptitle(f"{env}: “{instruction}”", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def measure(args: Args) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for env in args.envs:
        checkpoint = args.checkpoints.get(env)
        model, config = load_checkpoint(checkpoint or shipped_checkpoint(env), args.device)
        env_figures: dict[str, Any] = {
            "checkpoint": checkpoint or f"shipped ({env})",
            "training": config.get("training"),
        }
        for split in SPLITS:
            dataset_id = heldout_dataset(env, split, args.heldout_episodes[env])
            split_figures: dict[str, float | None] = {
                **one_step_fidelity(model, dataset_id, args.flow_steps, args.seed, args.temperature)
            }
            split_figures.update(
                execution_success(
                    env,
                    checkpoint,
                    split,
                    dataset_id,
                    args.execution_episodes,
                    args.flow_steps,
                    args.device,
                    args.temperature,
                )
            )
            env_figures[split] = split_figures
            print(env, split, split_figures)
            strip = RESULTS_DIR / f"{NAME}_{env}_{split}.png"
            rollout_strip(model, env, dataset_id, strip, args.flow_steps, temperature=args.temperature)
        train_set = heldout_dataset(env, "train", args.heldout_episodes[env])
        env_figures["compare_temperature"] = {
            "temperature": args.compare_temperature,
            **one_step_fidelity(model, train_set, args.flow_steps, args.seed, args.compare_temperature),
        }
        env_figures["flow_steps"] = flow_step_sweep(
            model, train_set, args.flow_step_sweep, args.seed, args.temperature
        )
        figures[env] = env_figures
    return figures


def _cell(value: float | None, percent: bool = False, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if percent else f"{value:.{digits}f}"


def _claimed_cell(figures: dict[str, Any]) -> str:
    """Imagined success, and the share of those episodes that were real successes."""
    real = figures.get("imagined_success_real")
    trust = "" if real is None else f" ({100 * real:.0f}% real)"
    return _cell(figures["imagined_success"], percent=True) + trust


def readme_table() -> str:
    result = load_result(NAME)
    rows = []
    for env, env_figures in result["figures"].items():
        for split in SPLITS:
            f = env_figures[split]
            med = f.get("med", f.get("object_error_m"))
            action = f.get("action_accuracy")
            rows.append(
                [
                    env,
                    split,
                    _cell(f["psnr"], digits=2),
                    _cell(f["ssim"], digits=4),
                    _cell(med, digits=4) + ("" if env == "clevr" else " m"),
                    _cell(action, percent=True) if action is not None else f"MSE {f['action_mse']:.3f}",
                    _cell(f["execution_success"], percent=True),
                    _claimed_cell(f),
                ]
            )
    for env, env_figures in result["figures"].items():
        f = env_figures["train"]
        if "copy_psnr" in f:
            copy_med = _cell(f["copy_med"], digits=4) if "copy_med" in f else "—"
            rows.append(
                [
                    f"{env}: copy s_t",
                    "train",
                    _cell(f["copy_psnr"], digits=2),
                    _cell(f["copy_ssim"], digits=4),
                    copy_med,
                    _cell(f["copy_action_accuracy"], percent=True) if "copy_action_accuracy" in f else "—",
                    "—",
                    "—",
                ]
            )
            rows.append([f"{env}: autoencoder", "train", _cell(f["autoencoder_psnr"], digits=2), *["—"] * 5])
        compared = env_figures.get("compare_temperature")
        if compared:
            med = compared.get("med", compared.get("object_error_m"))
            rows.append(
                [
                    f"{env}: temperature {compared['temperature']:g}",
                    "train",
                    _cell(compared["psnr"], digits=2),
                    _cell(compared["ssim"], digits=4),
                    _cell(med, digits=4) + ("" if env == "clevr" else " m"),
                    "—",
                    "—",
                    "—",
                ]
            )
    rows.append(["paper (BAGEL), CLEVR", "—", PAPER["psnr"], PAPER["ssim"], PAPER["med"], "—", "—", "—"])
    rows.append(["target here, CLEVR", "—", ">= 30", ">= 0.95", "<= 0.03", ">= 90% (train)", "—", "—"])
    sweeps = []
    for env, env_figures in result["figures"].items():
        sweep = sorted(env_figures["flow_steps"].items(), key=lambda item: int(item[0]))
        sweeps.append(
            f"{env}: "
            + ", ".join(f"{k}: {v['psnr']:.2f} dB ({v['frames_per_second']:.0f} frames/s)" for k, v in sweep)
        )
    sweep_line = "; ".join(sweeps)
    config = result["config"]
    temperature = config.get("temperature", UNRECORDED_TEMPERATURE)
    return (
        markdown_table(
            [
                "env",
                "instructions",
                "PSNR (dB)",
                "SSIM",
                "MED",
                "next action",
                "execution success",
                "imagined success (real)",
            ],
            rows,
        )
        + "\n\nOne-step fidelity on held-out expert transitions, "
        + f"{config['flow_steps']} flow steps, temperature {temperature:g}. "
        + "CLEVR MED: the pushed ball read from the imagined frame by the colour detector, arena-normalised; "
        + "Meta-World: the state head's object position error. Baselines: *copy s_t* predicts no change "
        + "(and the current action as the next one); "
        + "*autoencoder* reconstructs the true s_{t+1}, the ceiling of any imagined frame; "
        + "*temperature 1* samples the flow's start with the training noise. "
        + "*Execution success*: the model's own actions, replayed in the real env from the same start, "
        + "reach the goal; *imagined success*: the goal predicate holds on the imagined outcome of those "
        + "actions, and (in brackets) how many of those episodes also succeeded when replayed. "
        + "PSNR by flow steps (train instructions, 256 transitions, batches of 64): "
        + f"{sweep_line}. {provenance(result)}"
    )


def main(args: Args) -> None:
    figures = measure(args)
    previous = RESULTS_DIR / f"{NAME}.json"
    if args.keep_other_envs and previous.is_file():
        # A run of some envs keeps the other envs' figures (measured with the same code).
        figures = {**{k: v for k, v in load_result(NAME)["figures"].items() if k not in figures}, **figures}
    write_result(NAME, args, figures)


if __name__ == "__main__":
    main(tyro.cli(Args))
