"""The model card describes the shipped checkpoint's training from its config."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from benchmarks import model_card
from vlgor_envs.imagination.checkpoint import CONFIG_FILE, read_config, shipped_checkpoint


def _decoder_pass(base: dict, steps: int, learning_rate: float) -> dict:
    """Another tune-decoder stage on top of ``base`` (itself one), as a config records it."""
    tuned = copy.deepcopy(base)
    tuned["schedule"] = {**tuned["schedule"], "steps": steps, "learning_rate": learning_rate}
    tuned["base_training"] = base
    return tuned


def test_card_lists_every_decoder_pass_of_a_chain_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = read_config(shipped_checkpoint("clevr"))
    assert config["training"]["stage"] == "tune-decoder", "the shipped CLEVR decoder is tuned once"
    grounding = config["training"]["base_training"]
    # Two more passes on top of the shipped one: a checkpoint tuned from a tuned one.
    chained = _decoder_pass(_decoder_pass(config["training"], 5000, 1e-3), 3000, 5e-4)
    folder = tmp_path / "clevr"
    shutil.copytree(shipped_checkpoint("clevr"), folder)
    (folder / CONFIG_FILE).write_text(json.dumps({**config, "training": chained}))
    monkeypatch.setattr(model_card, "shipped_checkpoint", lambda env: folder)

    lines = model_card.card("clevr").splitlines()

    passes = [line for line in lines if line.startswith("- Decoder tuning, pass")]
    shipped_steps = config["training"]["schedule"]["steps"]
    assert [p.split(":")[0] for p in passes] == [f"- Decoder tuning, pass {n}" for n in (1, 2, 3)]
    assert f"{shipped_steps} steps at learning rate" in passes[0]
    assert "5000 steps at learning rate 0.001," in passes[1]
    assert "3000 steps at learning rate 0.0005," in passes[2]
    grounding_line = next(line for line in lines if line.startswith("- Grounding:"))
    assert f"{grounding['schedule']['steps']} steps, {grounding['seconds']} s." in grounding_line
    assert "plus the tuned decoder" in lines[2]


def test_card_gives_one_step_and_open_loop_figures_from_the_committed_results() -> None:
    results = model_card.RESULTS_DIR
    rollouts = json.loads((results / "rollout_fidelity.json").read_text())["figures"]["clevr"]["all"]
    one_step = json.loads((results / "imagination_fidelity.json").read_text())["figures"]["clevr"]

    lines = model_card.card("clevr").splitlines()

    step10 = model_card.TABLE_STEPS.index(10)
    psnr_rows = [line for line in lines if line.startswith("| psnr |")]
    assert len(psnr_rows) == 2, "one row in the one-step table, one in the open-loop table"
    one_step_cells = [cell.strip() for cell in psnr_rows[0].strip("|").split("|")]
    assert one_step_cells[1:] == [f"{one_step[split]['psnr']:.4g}" for split in model_card.SPLITS]
    open_loop_cells = [cell.strip() for cell in psnr_rows[1].strip("|").split("|")]
    assert open_loop_cells[1 + step10] == f"{rollouts['psnr'][9]:.3f}"
