"""The imagination model, its training stages, checkpoints and the imagined envs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import tyro

from vlgor_envs.clevr.detect import detect_balls
from vlgor_envs.data.collect import CollectConfig, collect
from vlgor_envs.imagination.checkpoint import (
    CheckpointError,
    load_checkpoint,
    read_config,
    recover_folder,
    save_checkpoint,
    upgrade,
)
from vlgor_envs.imagination.commands import imagination_command, model_config
from vlgor_envs.imagination.data import load_transitions
from vlgor_envs.imagination.env import ImaginedEnv, ImaginedVectorEnv
from vlgor_envs.imagination.metrics import arena_normalised_distance, psnr, ssim
from vlgor_envs.imagination.model import (
    DEFAULT_FLOW_STEPS,
    HEAD_MODULES,
    FlowConfig,
    LossConfig,
    WorldModel,
    WorldModelConfig,
)
from vlgor_envs.imagination.training import (
    Schedule,
    Unroll,
    _Batches,
    _history,
    _run_phase,
    _unroll,
    adapter_state,
    add_lora,
    finetune,
    load_adapter,
    pretrain,
    tune_decoder,
)

DATASET = "vlgor/clevr/tiny-train-v0"


@pytest.fixture(scope="module")
def dataset(minari_root: Path) -> str:
    collect(CollectConfig("clevr", episodes=6, seed=0, noise=0.3, dataset_id=DATASET, progress=False))
    return DATASET


@pytest.fixture(scope="module")
def tiny_checkpoint(dataset: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model, pretrained then grounded for a few steps on the tiny dataset."""
    root = tmp_path_factory.mktemp("checkpoints")
    cfg = model_config("clevr", "tiny")
    base = pretrain(
        [dataset], root / "base", cfg, Schedule(3, batch_size=8), Schedule(3, batch_size=8), progress=False
    )
    return finetune(base, [dataset], root / "grounded", Schedule(3, batch_size=8), rank=4, progress=False)


def _batch(model: WorldModel, dataset: str, size: int = 16) -> dict[str, torch.Tensor]:
    batches = _Batches(model, load_transitions([dataset], progress=False), with_text=True, progress=False)
    return batches.sample(np.random.default_rng(0), size)


def test_transitions_pair_each_step_with_its_future(dataset: str) -> None:
    data = load_transitions([dataset], horizon=2, progress=False)
    assert np.all(data.future - data.current <= 2)
    assert np.all(data.future > data.current)
    # a_{t+2} exists exactly when t + 2 is inside the episode.
    for episode in np.unique(data.episode):
        rows = np.flatnonzero(data.episode == episode)
        assert data.next_action_valid[rows].tolist() == [i + 2 < len(rows) for i in range(len(rows))]
    assert data.states.shape == (len(data.frames), 10)


def test_a_tiny_model_learns_within_a_few_steps(dataset: str) -> None:
    torch.manual_seed(0)
    model = WorldModel(model_config("clevr", "tiny"))
    batch = _batch(model, dataset)
    optimizer = torch.optim.Adam(
        [p for n, p in model.named_parameters() if not n.startswith("autoencoder")], 3e-3
    )
    generator = torch.Generator().manual_seed(0)
    first = model.loss(batch, generator)[0].item()
    for _ in range(40):
        loss, _ = model.loss(batch, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model.loss(batch, torch.Generator().manual_seed(0))[0].item() < 0.7 * first


def test_change_weighting_puts_the_flow_loss_on_the_cells_that_move(dataset: str) -> None:
    torch.manual_seed(0)
    # An untrained autoencoder's latents move little: any change counts.
    cfg = model_config("clevr", "tiny")

    def weighing(change_weight: float) -> WorldModelConfig:
        return dataclasses.replace(cfg, loss=LossConfig(change_weight=change_weight, change_threshold=1e-4))

    plain, weighted = WorldModel(weighing(0.0)), WorldModel(weighing(10.0))
    weighted.load_state_dict(plain.state_dict())
    batch = _batch(plain, dataset)
    _, plain_logs = plain.loss(batch, torch.Generator().manual_seed(0))
    _, weighted_logs = weighted.loss(batch, torch.Generator().manual_seed(0))
    # An untrained model predicts no change, so its error is largest where the frame changes:
    # weighting those cells raises the loss, and their own error is logged.
    assert "flow_changed" not in plain_logs
    assert weighted_logs["flow_changed"] > plain_logs["flow"]
    assert plain_logs["flow"] < weighted_logs["flow"] < weighted_logs["flow_changed"]


def test_save_load_round_trip_gives_equal_outputs(dataset: str, tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = WorldModel(model_config("clevr", "tiny")).eval()
    batch = _batch(model, dataset, size=4)
    path = save_checkpoint(model, tmp_path / "model", {"training": {"note": "test"}})
    loaded, config = load_checkpoint(path)
    assert config["training"] == {"note": "test"}
    outputs = [
        m.imagine(
            batch["frames"],
            batch["actions"],
            batch["text"],
            batch["text_mask"],
            2,
            torch.Generator().manual_seed(3),
        )
        for m in (model, loaded)
    ]
    for a, b in zip(*outputs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_temperature_zero_ignores_the_noise_and_one_samples_with_it(dataset: str) -> None:
    torch.manual_seed(2)
    model = WorldModel(model_config("clevr", "tiny")).eval()
    batch = _batch(model, dataset, size=2)
    inputs = (batch["frames"], batch["actions"], batch["text"], batch["text_mask"], 2)
    shape = (2, model.cfg.autoencoder.latent_channels, *(2 * [model.cfg.autoencoder.latent_size]))
    noises = [torch.randn(shape, generator=torch.Generator().manual_seed(k)) for k in (0, 1)]
    cold = [model.imagine(*inputs, noise=noise, temperature=0.0)[0] for noise in noises]
    warm = [model.imagine(*inputs, noise=noise, temperature=1.0)[0] for noise in noises]
    torch.testing.assert_close(cold[0], cold[1], rtol=0, atol=0)
    assert not torch.equal(warm[0], warm[1])
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
        model.imagine(*inputs, temperature=-1.0)


def test_a_wider_autoencoder_is_rebuilt_from_its_checkpoint(tmp_path: Path) -> None:
    cfg = model_config("clevr", "tiny", autoencoder_channels=(8, 16))
    assert cfg.autoencoder.hidden_channels == (8, 16)
    assert model_config("clevr", "gpu").autoencoder.hidden_channels == (64, 128)
    path = save_checkpoint(WorldModel(cfg), tmp_path / "model", {"training": None})
    loaded, _ = load_checkpoint(path)
    assert loaded.cfg.autoencoder.hidden_channels == (8, 16)


def test_lora_grounding_changes_only_adapters_and_heads(dataset: str) -> None:
    torch.manual_seed(2)
    model = WorldModel(model_config("clevr", "tiny"))
    batch = _batch(model, dataset)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    peft_model = add_lora(model, rank=4, alpha=8)
    trainable = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, 1e-2)
    for _ in range(3):
        loss, _ = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    heads_changed = False
    for name, parameter in peft_model.named_parameters():
        if "lora_" in name:
            assert parameter.requires_grad, name
            continue
        base_name = name.removeprefix("base_model.model.").replace(".base_layer", "")
        unchanged = torch.equal(parameter.detach(), before[base_name])
        if any(base_name.startswith(f"{head}.") for head in HEAD_MODULES):
            heads_changed |= not unchanged
        else:
            assert unchanged, f"{name} changed but is neither an adapter nor a head"
    assert heads_changed
    adapters = adapter_state(peft_model)
    assert adapters and all("lora_" in name or name.startswith("heads.") for name in adapters)


def test_adapters_save_load_and_merge(tiny_checkpoint: Path, dataset: str) -> None:
    merged, config = load_checkpoint(tiny_checkpoint)
    base, _ = load_checkpoint(config["training"]["base"])
    with_adapter = load_adapter(base, tiny_checkpoint)
    batch = _batch(merged, dataset, size=4)
    args = (batch["frames"], batch["actions"], batch["text"], batch["text_mask"])
    a = merged.understand(*args)
    b = with_adapter.base_model.model.understand(*args)
    torch.testing.assert_close(a.action, b.action, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(a.state, b.state, rtol=1e-4, atol=1e-4)


def test_tuning_the_decoder_fits_imagined_latents_and_changes_nothing_else(
    tiny_checkpoint: Path, dataset: str, tmp_path: Path
) -> None:
    schedule = Schedule(30, batch_size=8, learning_rate=3e-3, warmup_steps=2)
    path = tune_decoder(tiny_checkpoint, [dataset], tmp_path / "tuned", schedule, progress=False)
    grounded, _ = load_checkpoint(tiny_checkpoint)
    tuned, config = load_checkpoint(path)
    assert config["training"]["stage"] == "tune-decoder"
    before, after = grounded.state_dict(), tuned.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(name.startswith("autoencoder.decoder.") for name in changed)

    # The tuned decoder renders the grounded model's imagined latents closer to the real frames.
    batches = _Batches(grounded, load_transitions([dataset], progress=False), with_text=True, progress=False)
    rows = torch.arange(32)
    text = batches.text_index[rows]
    latents, _, _ = grounded.imagine_latents(
        batches.frames[batches.current[rows]],
        batches.actions[rows],
        batches.text[text],
        batches.text_mask[text],
        2,
    )
    real = batches.frames[batches.future[rows]].numpy()
    psnrs = [float(psnr(m.autoencoder.decode(latents).numpy(), real).mean()) for m in (grounded, tuned)]
    assert psnrs[1] > psnrs[0]

    # Its adapters carry the decoder, so loading them onto the pretrained base gives the tuned model.
    base, _ = load_checkpoint(config["training"]["base_training"]["base"])
    merged = load_adapter(base, path).merge_and_unload()
    torch.testing.assert_close(
        merged.autoencoder.decode(latents), tuned.autoencoder.decode(latents), rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="imagined_share"):
        tune_decoder(tiny_checkpoint, [dataset], tmp_path / "bad", schedule, imagined_share=1.5)


def test_unrolled_frames_are_the_models_own_open_loop_frames(tiny_checkpoint: Path, dataset: str) -> None:
    model, _ = load_checkpoint(tiny_checkpoint)
    batches = _Batches(model, load_transitions([dataset], progress=False), with_text=True, progress=False)
    data = batches.data
    back = _history(data, depth=2)
    starts = np.flatnonzero(np.r_[True, data.episode[1:] != data.episode[:-1]])
    long = starts[np.diff(np.r_[starts, len(data)]) >= 3]  # episodes of three pairs or more
    assert (back[starts] == 0).all() and (back[long + 1] == 1).all() and (back[long + 2] == 2).all()
    unrolled = _unroll(model, batches, Unroll(depth=2))
    # An episode's first pair keeps its real frame; the third is imagined twice from the first.
    first, third = int(long[0]), int(long[0] + 2)
    assert torch.equal(unrolled.frames[first], batches.frames[batches.current[first]])
    frame = batches.frames[batches.current[first]][None]
    for pair in (first, first + 1):
        text = batches.text[batches.text_index[pair]][None]
        mask = batches.text_mask[batches.text_index[pair]][None]
        frame, _, _ = model.imagine(frame, batches.actions[pair][None], text, mask, DEFAULT_FLOW_STEPS)
    assert torch.equal(unrolled.frames[third], frame[0])
    assert not torch.equal(unrolled.frames[third], batches.frames[batches.current[third]])
    torch.testing.assert_close(unrolled.latents[third], model.autoencoder.encode(frame)[0])


def test_grounding_on_unrolled_frames_is_seeded_and_recorded(
    tiny_checkpoint: Path, dataset: str, tmp_path: Path
) -> None:
    base = tiny_checkpoint.parent / "base"
    unroll = Unroll(depth=2, share=0.5, start=1, refresh_every=2)

    def ground(name: str, chosen: Unroll) -> dict[str, torch.Tensor]:
        out = finetune(
            base, [dataset], tmp_path / name, Schedule(3, batch_size=8), rank=4, progress=False, unroll=chosen
        )
        return load_checkpoint(out)[0].state_dict()

    first, again, plain = ground("a", unroll), ground("b", unroll), ground("plain", Unroll())
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert any(not torch.equal(first[name], plain[name]) for name in first)
    assert read_config(tmp_path / "a")["training"]["unroll"]["depth"] == 2
    with pytest.raises(ValueError, match="depth >= 0"):
        Unroll(depth=-1)


def test_noised_conditioning_latents_keep_the_real_ones_beside_them(
    tiny_checkpoint: Path, dataset: str, tmp_path: Path
) -> None:
    model, _ = load_checkpoint(tiny_checkpoint)
    batches = _Batches(model, load_transitions([dataset], progress=False), with_text=True, progress=False)
    plain = batches.sample(np.random.default_rng(0), 16)
    noised = batches.sample(np.random.default_rng(0), 16, condition_noise=0.5)
    # The same pairs; the real latents kept for the change weight, the conditioning ones noised
    # by a scale of at most 0.5 per row (the spread of each row's offset).
    torch.testing.assert_close(noised["clean_current_latents"], plain["current_latents"], rtol=0, atol=0)
    torch.testing.assert_close(noised["future_latents"], plain["future_latents"], rtol=0, atol=0)
    offset = (noised["current_latents"] - plain["current_latents"]).flatten(1)
    assert (offset.std(dim=1) > 0).all() and (offset.std(dim=1) < 0.5).all()

    base = tiny_checkpoint.parent / "base"

    def ground(name: str, noise: float) -> dict[str, torch.Tensor]:
        out = finetune(
            base,
            [dataset],
            tmp_path / name,
            Schedule(2, batch_size=8),
            rank=4,
            progress=False,
            condition_noise=noise,
        )
        return load_checkpoint(out)[0].state_dict()

    first, again = ground("a", 0.5), ground("b", 0.5)
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert read_config(tmp_path / "a")["training"]["condition_noise"] == 0.5
    with pytest.raises(ValueError, match="condition_noise must be >= 0, got -1"):
        finetune(base, [dataset], tmp_path / "bad", Schedule(2, batch_size=8), condition_noise=-1)


def test_training_resumes_where_it_stopped(dataset: str, tmp_path: Path) -> None:
    def run(stop_at: int | None, resume: bool) -> WorldModel:
        torch.manual_seed(0)
        model = WorldModel(model_config("clevr", "tiny"))
        frames = torch.from_numpy(load_transitions([dataset], progress=False).frames)

        def loss(step: int) -> tuple[torch.Tensor, dict[str, float]]:
            if stop_at is not None and step == stop_at:
                raise KeyboardInterrupt
            rng = np.random.default_rng([0, step])
            return model.autoencoder.loss(frames[torch.from_numpy(rng.integers(len(frames), size=4))])

        params = list(model.autoencoder.parameters())
        with contextlib.suppress(KeyboardInterrupt):
            _run_phase("autoencoder", tmp_path / "out", model, params, Schedule(6, 4), loss, resume, 2, False)
        return model

    straight = run(None, resume=False)
    run(5, resume=False)  # interrupted after the state saved at step 4
    assert json.loads((tmp_path / "out.training" / "state.json").read_text())["step"] == 4
    resumed = run(None, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def _copy_with_config(source: Path, target: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    edit(config)
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_bad_checkpoints_give_clear_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"config\.json is missing"):
        load_checkpoint(tmp_path / "nothing-here")
    # Damaged bytes in the middle of the weights, the file still the same size.
    damaged = _copy_with_config(tiny_checkpoint, tmp_path / "damaged", lambda config: None)
    weights = bytearray((damaged / "model.safetensors").read_bytes())
    middle = len(weights) // 2
    weights[middle : middle + 4096] = np.random.default_rng(0).bytes(4096)
    (damaged / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match the SHA-256"):
        load_checkpoint(damaged)
    (damaged / "adapter.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"has no adapter\.safetensors"):
        load_adapter(load_checkpoint(tiny_checkpoint)[0], damaged)
    # A config field removed must not fall back on today's default.
    unset = _copy_with_config(
        tiny_checkpoint, tmp_path / "unset", lambda config: config["model"].pop("flow_source")
    )
    with pytest.raises(CheckpointError, match=r"missing fields \['flow_source'\]"):
        load_checkpoint(unset)
    wider = _copy_with_config(
        tiny_checkpoint, tmp_path / "wider", lambda config: config["model"].update(width=64)
    )
    with pytest.raises(CheckpointError, match=r"does not match its config\.json"):
        load_checkpoint(wider)
    with pytest.raises(CheckpointError, match="not a vlgor-imagination checkpoint"):
        (wider / "config.json").write_text('{"format": "other"}')
        load_checkpoint(wider)


def test_a_format_1_checkpoint_is_named_and_upgraded(tiny_checkpoint: Path, tmp_path: Path) -> None:
    def to_format_1(config: dict[str, Any]) -> None:
        config["version"] = 1
        del config["files"]
        del config["model"]["source_noise"]  # format 1 read a missing field as its default

    old = _copy_with_config(tiny_checkpoint, tmp_path / "old", to_format_1)
    with pytest.raises(CheckpointError, match=r"format version 1.*checkpoint upgrade"):
        load_checkpoint(old)
    upgrade(old)
    model, config = load_checkpoint(old)
    assert set(config["files"]) == {"model.safetensors", "adapter.safetensors", "adapter.json"}
    assert config["model"]["source_noise"] == FlowConfig.source_noise
    original = load_checkpoint(tiny_checkpoint)[0].state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, original[name], msg=name)


def test_a_checkpoint_write_killed_between_its_renames_is_recovered(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    destination = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, destination)
    program = (
        "import os, signal, pathlib\n"
        "from vlgor_envs.imagination.checkpoint import load_checkpoint, save_checkpoint\n"
        "rename = pathlib.Path.rename\n"
        "def rename_then_die(self, target):\n"
        "    moved = rename(self, target)\n"
        "    if pathlib.Path(target).name.endswith('.previous'): os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return moved\n"
        "pathlib.Path.rename = rename_then_die\n"
        f"save_checkpoint(load_checkpoint({str(tiny_checkpoint)!r})[0], {str(destination)!r})\n"
    )
    killed = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not destination.exists() and len(list(tmp_path.glob(".model.*"))) == 2
    live = tmp_path / f".model.writing-{os.getpid()}-busy"  # a writer still at work is left alone
    live.mkdir()
    done = recover_folder(destination)
    assert done[0] == f"restored {destination}: a write replacing it was killed before it landed"
    assert len(done) == 2 and done[1].endswith("left by an interrupted write")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "model"]
    load_checkpoint(destination)  # the previous checkpoint, verified


def test_wrong_image_size_is_named(tiny_checkpoint: Path) -> None:
    model, _ = load_checkpoint(tiny_checkpoint)
    with pytest.raises(ValueError, match=r"\(batch, 64, 64, 3\)"):
        model.imagine(
            torch.zeros(1, 32, 32, 3, dtype=torch.uint8), torch.zeros(1, dtype=torch.long), None, None, 1
        )


def test_batched_and_single_stepping_agree(tiny_checkpoint: Path) -> None:
    vector = ImaginedVectorEnv(num_envs=3, checkpoint=str(tiny_checkpoint))
    observations, _ = vector.reset(seed=10)
    actions = np.array([5, 17, 33])
    stepped = vector.step(actions)
    for i in range(3):
        single = ImaginedEnv(checkpoint=str(tiny_checkpoint))
        observation, _ = single.reset(seed=10 + i)
        np.testing.assert_array_equal(observation["image"], observations["image"][i])
        assert observation["instruction"] == observations["instruction"][i]
        observation, _, _, _, info = single.step(actions[i])
        # One batched matmul vs one per env: float sums may differ in the last bits.
        difference = np.abs(observation["image"].astype(int) - stepped[0]["image"][i].astype(int))
        assert difference.max() <= 2 and np.mean(difference > 0) < 0.01
        assert info["imagined_action"] == stepped[4]["imagined_action"][i]
        single.close()
    vector.close()


def test_imagined_env_rejects_an_untrained_horizon_or_a_bad_temperature(tiny_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="horizon 1, not 3"):
        ImaginedEnv(checkpoint=str(tiny_checkpoint), horizon=3)
    with pytest.raises(ValueError, match="temperature"):
        ImaginedEnv(checkpoint=str(tiny_checkpoint), temperature=float("nan"))


def test_make_vec_steps_all_envs_in_one_call() -> None:
    envs = gym.make_vec("VLGOR-Imagined-CLEVR", num_envs=4, vectorization_mode="vector_entry_point")
    observations, _ = envs.reset(seed=0)
    assert observations["image"].shape == (4, 64, 64, 3)
    _, rewards, _, _, infos = envs.step(np.array([0, 9, 18, 27]))
    assert rewards.shape == (4,) and infos["imagined_action"].shape == (4,)
    envs.close()


def test_colour_detector_reads_real_frames() -> None:
    env = gym.make("VLGOR-CLEVR-v0")
    for seed in range(5):
        observation, info = env.reset(seed=seed)
        positions, seen = detect_balls(observation["image"])
        assert seen.all()
        np.testing.assert_allclose(positions, info["ball_positions"], atol=0.01)
    env.close()


def test_imagination_cli_trains_tiny_models(dataset: str, tmp_path: Path, minari_root: Path) -> None:
    common = ["--env", "clevr", "--datasets", dataset]
    base, grounded = tmp_path / "base", tmp_path / "grounded"
    pretrain = ["pretrain", "--out", str(base), "--preset", "tiny"]
    pretrain += ["--autoencoder-steps", "2", "--dynamics-steps", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "vlgor_envs.cli", "imagination", *pretrain, *common],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # The second stage in this process: another start costs 10 s of imports.
    finetune = ["finetune", "--base", str(base), "--out", str(grounded), "--steps", "2", "--rank", "2"]
    tyro.cli(imagination_command, args=[*finetune, *common])
    assert {p.name for p in grounded.iterdir()} == {
        "config.json",
        "model.safetensors",
        "adapter.safetensors",
        "adapter.json",
    }


def test_psnr_and_ssim_rank_frames_by_fidelity() -> None:
    env = gym.make("VLGOR-CLEVR-v0")
    frame = env.reset(seed=0)[0]["image"]
    env.close()
    rng = np.random.default_rng(0)
    slightly = np.clip(frame.astype(int) + rng.integers(-3, 4, frame.shape), 0, 255).astype(np.uint8)
    badly = np.clip(frame.astype(int) + rng.integers(-60, 61, frame.shape), 0, 255).astype(np.uint8)
    frames = np.stack([frame, frame, frame])
    noisy = np.stack([frame, slightly, badly])
    assert psnr(frames, noisy)[0] == 100.0
    assert 35 < psnr(frames, noisy)[1] < 50 and psnr(frames, noisy)[2] < 25
    scores = ssim(frames, noisy)
    assert scores[0] == pytest.approx(1.0) and 1.0 > scores[1] > scores[2]
    assert arena_normalised_distance([0.0, 0.0], [1.5, 0.0]) == pytest.approx(1.0)
