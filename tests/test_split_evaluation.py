"""The split benchmark's judging: evaluation blocks, references, intervals and the oracle data."""

from __future__ import annotations

from pathlib import Path

import minari
import numpy as np
import pytest

from agents.split_benchmark import Args, ensure_oracle, oracle_splits_id, preset_for, run_reference
from agents.split_benchmark import evaluation as split_evaluation
from agents.split_benchmark.evaluation import block_seed, cell, interval, run_rates, separated
from vlgor_envs.imagination.rollouts import ImagineConfig, imagine, imagined_prompts
from vlgor_envs.language.goal import Goal


def _run(rates: list[float], episodes: int = 20) -> dict[str, object]:
    blocks = [
        {
            "step": k,
            "successes": round(r * episodes),
            "episodes": episodes,
            "by_kind": {"relation": [round(r * episodes), episodes]},
        }
        for k, r in enumerate(rates)
    ]
    return {"blocks": {"train": blocks}}


def test_every_checkpoint_and_split_has_start_states_of_its_own() -> None:
    seeds = {
        block_seed(split, checkpoint, 20) + i
        for split in range(4)
        for checkpoint in range(50)
        for i in range(20)
    }
    assert len(seeds) == 4 * 50 * 20
    # far from the datasets' seeds (0 .. 6,400 real, 10,000 .. 40,000 imagined)
    assert min(seeds) >= 1_000_000


def test_interval_is_rliables_iqm_with_a_bootstrap_interval() -> None:
    rates = [0.1, 0.2, 0.2, 0.3, 0.9, 0.0, 0.25, 0.3]
    iqm, low, high = interval(rates)
    # The IQM drops the lowest and highest quarter.
    assert iqm == pytest.approx(np.mean(sorted(rates)[2:6]))
    assert low < iqm < high
    assert interval(rates) == (iqm, low, high)  # seeded resamples
    assert interval([0.5] * 6) == (0.5, 0.5, 0.5)


def test_cell_pools_the_last_five_blocks_of_every_seed() -> None:
    # The first block of each run is before the last five and is left out.
    runs = [_run([1.0, 0.2, 0.2, 0.3, 0.3, 0.4]), _run([1.0, 0.6, 0.6, 0.7, 0.7, 0.8])]
    got = cell(runs, "train")
    assert run_rates(runs[0], "train") == pytest.approx([0.2, 0.2, 0.3, 0.3, 0.4])
    assert got["mean"] == pytest.approx(0.48) and got["std"] == pytest.approx(0.2)
    assert got["runs"] == 2 and got["episodes_per_run"] == 100
    assert got["by_kind"] == {"relation": pytest.approx(0.48)} and got["by_kind_episodes"] == {
        "relation": 200
    }
    low = cell([_run([0.0] * 6), _run([0.05] * 6)], "train")
    assert separated(got, low) and not separated(low, got) and not separated(got, got)


def test_references_are_seeded_and_bounded(tmp_path: Path) -> None:
    args = Args(preset="tiny", eval_splits=("train", "hard"), out=tmp_path)
    preset = preset_for("clevr", "tiny")
    random = run_reference(args, preset, "random", seed=1)
    again = run_reference(args, preset, "random", seed=1)
    assert random["blocks"] == again["blocks"]
    assert [len(blocks) for blocks in random["blocks"].values()] == [preset.checkpoints] * 2
    expert = run_reference(args, preset, "expert", seed=0)
    assert expert["last_five"]["train"] == 1.0
    assert split_evaluation.EVAL_ENVS > 1


def test_oracle_data_is_the_experts_real_rollouts_of_the_imagined_prompts() -> None:
    seed, rollouts = 20_000, 3
    oracle_id = ensure_oracle("clevr", "unit", "counterfactual", "both", rollouts, seed, fresh=False)
    assert oracle_id == oracle_splits_id("clevr", "unit", "counterfactual", "both")
    imagined = imagine(
        ImagineConfig(
            "clevr",
            split="counterfactual",
            rollouts=rollouts,
            seed=seed,
            dataset_id="vlgor/clevr/unit-imagined-v0",
            progress=False,
        )
    )
    oracle = minari.load_dataset(oracle_id)
    prompts = imagined_prompts("clevr", "counterfactual", rollouts, seed)
    metadata = oracle.storage.get_episode_metadata(range(rollouts))
    assert [Goal.from_json(m["goal"]) for m in metadata] == [p.goal for p in prompts]
    # Same goals and same first frames as the imagined rollouts, and the expert meets the goals.
    for real, dreamt in zip(oracle.iterate_episodes(), imagined.iterate_episodes(), strict=True):
        np.testing.assert_array_equal(real.observations["image"][0], dreamt.observations["image"][0])
        assert real.observations["instruction"][0] == dreamt.observations["instruction"][0]
    assert all(m["success"] for m in metadata)
    # Its env is recoverable from the dataset, with the reset option collection used.
    env = oracle.recover_environment()
    _, info = env.reset(seed=0, options={"goal_json": prompts[0].goal.to_json()})
    assert info["goal"] == prompts[0].goal
    env.close()
    # Made once: a second call reuses it.
    assert ensure_oracle("clevr", "unit", "counterfactual", "both", rollouts, seed, fresh=False) == oracle_id
