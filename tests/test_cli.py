"""Command-line smoke tests through subprocess at tiny sizes (STYLE.md #11)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import minari
import pytest
import tyro

from agents import split_benchmark as splits_benchmark
from agents.split_benchmark import Args as SplitArgs
from agents.split_benchmark import (
    drops_failures,
    ensure_imagined,
    imagined_by_note,
    imagined_splits_id,
    learner_config,
    learner_note,
    preset_for,
    ratio_tag,
    regimes_by_algo,
    regimes_of,
    temperature_table,
)
from benchmarks import clevr_throughput
from benchmarks.report import markdown_table, replace_readme_section
from vlgor_envs import cli
from vlgor_envs.data.collect import list_datasets
from vlgor_envs.imagination.checkpoint import shipped_checkpoint
from vlgor_envs.imagination.rollouts import ImagineConfig, checkpoint_digest, imagine
from vlgor_envs.quiet import plain_logs_off_terminal


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # One torch thread: pytest runs two workers on two cores, and torch on two threads beside
    # another busy process runs many times slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=env)


def test_vlgor_splits_clevr_prints_sizes_and_examples() -> None:
    result = run(sys.executable, "-m", "vlgor_envs.cli", "splits", "clevr", "--examples", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("train: 600 instructions = 60 tasks")
    assert any(line.startswith("counterfactual: 400 instructions = 40 tasks") for line in lines)
    assert any(line.startswith("hard: 3384 instructions") for line in lines)


def test_vlgor_splits_metaworld_lists_the_tasks() -> None:
    result = run(sys.executable, "-m", "vlgor_envs.cli", "splits", "metaworld", "--examples", "0")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("train: 100 instructions = 10 tasks")
    assert "door-close" in lines[2] and "reach-straight" in lines[2]
    assert lines[3].startswith("hard:") and "soccer" in lines[3]


def test_a_command_imports_only_its_own_layer() -> None:
    # Every subprocess test pays for what a command imports: torch, peft and d3rlpy cost 15 s.
    program = (
        "import sys; from vlgor_envs import cli; sys.argv = ['vlgor', 'collect', '--help']\n"
        "try: cli.main()\nexcept SystemExit: pass\n"
        "print(sorted({'torch', 'd3rlpy', 'peft', 'transformers'} & set(sys.modules)))"
    )
    result = run(sys.executable, "-c", program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_top_level_help_lists_every_command_without_importing_any() -> None:
    program = (
        "import sys; from vlgor_envs import cli; sys.argv = ['vlgor', '--help']\n"
        "try: cli.main()\nexcept SystemExit: pass\n"
        "print(sorted(m for m in cli.COMMANDS.values() if m[0] in sys.modules and m[0] != cli.__name__))"
    )
    result = run(sys.executable, "-c", program)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    *listing, imported = result.stdout.splitlines()
    assert imported == "[]"
    for name, (_, _, summary) in cli.COMMANDS.items():
        assert f"  {name}" in "\n".join(listing)
        # The summary is the start of the command's own docstring, so the two cannot drift apart.
        docstring = " ".join((cli.command(name).__doc__ or "").split())
        assert docstring.startswith(summary), name
    mistyped = run(sys.executable, "-m", "vlgor_envs.cli", "colect")
    assert (mistyped.returncode, mistyped.stderr.count("\n")) == (2, 1)
    assert mistyped.stderr.startswith("vlgor: error: unknown command 'colect'; the commands are splits")


def test_the_readme_lists_every_command() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    commands = readme[readme.index("## Commands") : readme.index("## Using")]
    assert [name for name in cli.COMMANDS if f"| `vlgor {name}" not in commands] == []


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    # `vlgor splits clevr --examples 500 | head -1`: the pipe closes while vlgor still writes.
    process = subprocess.Popen(
        [sys.executable, "-m", "vlgor_envs.cli", "splits", "clevr", "--examples", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().startswith("train:")
    process.stdout.close()
    _, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr) == (141, "")


def test_importing_the_packages_prints_no_dependency_notice() -> None:
    # d3rlpy imports the old gym, whose import prints a deprecation notice unless vlgor drops it.
    result = run(sys.executable, "-c", "import agents, agents.split_benchmark, d3rlpy")
    assert result.returncode == 0 and result.stderr == ""
    notice = run(sys.executable, "-c", "import d3rlpy")
    assert "Gym has been unmaintained" in notice.stderr  # what the test above would catch


def test_learner_logs_have_no_colour_codes_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    import d3rlpy.logging.logger  # noqa: F401  (configures structlog with colours)
    import structlog

    plain_logs_off_terminal()  # pytest's captured stdout is not a terminal
    structlog.get_logger("vlgor-test").info("fit", step=3)
    line = capsys.readouterr().out
    assert "fit" in line and "step=3" in line and "\x1b[" not in line


def test_vlgor_collect_then_datasets_list_and_show(tmp_path: Path) -> None:
    # No MUJOCO_GL: the package must pick the headless backend itself.
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env["MINARI_DATASETS_PATH"] = str(tmp_path)
    collect = [sys.executable, "-m", "vlgor_envs.cli", "collect", "--env", "clevr", "--episodes", "2"]
    result = subprocess.run([*collect, "--seed", "5"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote vlgor/clevr/real-train-v0: 2 episodes" in result.stdout
    again = subprocess.run(collect, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    assert again.stderr.startswith("vlgor: error: dataset 'vlgor/clevr/real-train-v0' already exists")
    assert again.stderr.count("\n") == 1  # one line, no traceback
    listed = subprocess.run(
        [sys.executable, "-m", "vlgor_envs.cli", "datasets", "list"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0 and listed.stdout.split()[0] == "vlgor/clevr/real-train-v0"
    shown = subprocess.run(
        [sys.executable, "-m", "vlgor_envs.cli", "datasets", "show", "vlgor/clevr/real-train-v0"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert shown.returncode == 0 and '"episodes": 2' in shown.stdout


def test_user_errors_are_one_line_and_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "minari"
    env = {**os.environ, "MINARI_DATASETS_PATH": str(root)}
    collect = [sys.executable, "-m", "vlgor_envs.cli", "collect", "--env", "clevr"]
    for flags, message in [
        (["--dataset-id", "foo"], "vlgor: error: dataset id 'foo' is malformed: expected [namespace/]name-v"),
        (["--episodes", "-1"], "vlgor: error: episodes must be >= 1, got -1"),
    ]:
        result = subprocess.run([*collect, *flags], capture_output=True, text=True, env=env, timeout=300)
        assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
        assert result.stderr.startswith(message)
    debug = subprocess.run([*collect, "--episodes", "-1", "--debug"], capture_output=True, text=True, env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    # Ctrl-C while collecting: exit code 130, one line, and no staging folder or dataset left.
    # Its stderr goes to a file: a pipe nobody reads fills up and blocks the progress bar.
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr_file:
        # pytest-xdist's workers ignore SIGINT, and children inherit that: give it back.
        process = subprocess.Popen(
            [*collect, "--episodes", "500"],
            stderr=stderr_file,
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 120
        while "ep/s]" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # tqdm's bar is out: the episodes have started
        # Again every half second, as a user would: one arriving inside jax's garbage-collection
        # callback is reported ("Exception ignored in _xla_gc_callback") and lost.
        while process.poll() is None and time.monotonic() < deadline + 60:
            process.send_signal(signal.SIGINT)
            time.sleep(0.5)
        process.kill()  # a no-op once it has exited
        process.wait()
    stderr = log.read_text()
    assert process.returncode == 130 and stderr.endswith("vlgor: interrupted\n"), (
        process.returncode,
        stderr[-2000:],
    )
    assert [p.name for p in root.iterdir()] == [".vlgor-locks"]  # no dataset, no staging folder


def test_what_a_sigkill_leaves_is_removed_by_the_next_listing(tmp_path: Path) -> None:
    env = {**os.environ, "MINARI_DATASETS_PATH": str(tmp_path)}
    collect = [sys.executable, "-m", "vlgor_envs.cli", "collect", "--env", "clevr", "--episodes", "500"]
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr_file:
        process = subprocess.Popen(collect, stderr=stderr_file, env=env)
        deadline = time.monotonic() + 120
        while "ep/s]" not in log.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # some episodes written into the staging folder
        process.send_signal(signal.SIGKILL)
        process.wait()
    (left,) = tmp_path.glob(".vlgor-staging-*")
    assert any(left.rglob("*.hdf5"))
    listed = subprocess.run(
        [sys.executable, "-m", "vlgor_envs.cli", "datasets", "list"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0 and listed.stdout.startswith("no vlgor datasets here")
    assert listed.stderr.startswith(f"vlgor: removed {left.name} (")
    assert listed.stderr.endswith("left by an interrupted write of 'vlgor/clevr/real-train-v0'\n")
    assert not left.exists()


def test_vlgor_rejects_an_unknown_env() -> None:
    result = run(sys.executable, "-m", "vlgor_envs.cli", "splits", "atari")
    assert result.returncode != 0
    assert "atari" in result.stderr


def test_demo_prints_success_per_split_and_writes_a_strip(tmp_path: Path) -> None:
    result = run(
        sys.executable,
        "-m",
        "benchmarks.demo",
        "--clevr-episodes",
        "1",
        "--metaworld-episodes",
        "1",
        "--clevr-dataset-episodes",
        "2",
        "--metaworld-dataset-episodes",
        "1",
        "--pipeline-preset",
        "tiny",
        # Two tiny imagined rollouts may both fail, and dropping them would leave no data.
        "--drop-failures",
        "False",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    for env_id in ("VLGOR-CLEVR-v0", "VLGOR-MetaWorld-v0"):
        assert f"Scripted expert on {env_id}" in result.stdout
    assert result.stdout.count("counterfactual: success") == 2
    assert "vlgor/clevr/demo-train-v0: 2 episodes" in result.stdout
    assert "vlgor/metaworld/demo-train-v0: 1 episodes" in result.stdout
    assert "discrete actions" in result.stdout and "continuous actions" in result.stdout
    assert "VLGOR-Imagined-CLEVR x16" in result.stdout
    for name in (
        "clevr_expert_rollout.png",
        "metaworld_expert_rollout.png",
        "clevr_imagined_rollout.png",
        "metaworld_imagined_rollout.png",
        "pipeline_clevr.png",
    ):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The pipeline's table: BC with and without imagined rollouts, on the counterfactual split.
    assert "| DiscreteBC | Baseline |" in result.stdout
    assert "| DiscreteBC | +VLGOR |" in result.stdout
    pipeline = json.loads((tmp_path / "pipeline_clevr.json").read_text())
    assert pipeline["figures"]["datasets"]["imagined"]["vlgor"] == [
        "vlgor/clevr/splits-tiny-imagined-rephrasing-v0",
        "vlgor/clevr/splits-tiny-imagined-counterfactual-v0",
        "vlgor/clevr/splits-tiny-imagined-hard-v0",
    ]
    assert set(pipeline["figures"]["table"]["DiscreteBC"]) == {"baseline", "vlgor"}


def test_throughput_benchmark_reports_every_rate() -> None:
    # Only that the figures exist and are rates; speed itself is measured by `make bench`.
    figures = clevr_throughput.measure(clevr_throughput.Args(steps=60))
    assert set(figures) == {"env_steps_per_s", "pushes_per_s", "renders_per_s", "episodes_reset"}
    assert all(figures[key] > 0 for key in ("env_steps_per_s", "pushes_per_s", "renders_per_s"))


def test_readme_sections_are_replaced_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:x -->\nold\n<!-- /bench:x -->\nend\n")
    replace_readme_section("x", markdown_table(["a"], [[1]]), readme)
    assert readme.read_text() == "intro\n<!-- bench:x -->\n| a |\n|---|\n| 1 |\n<!-- /bench:x -->\nend\n"
    with pytest.raises(ValueError, match="no '<!-- bench:y -->' section"):
        replace_readme_section("y", "", readme)


def test_vlgor_help_lists_the_pipeline_commands() -> None:
    result = run(sys.executable, "-m", "vlgor_envs.cli", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("collect", "imagination", "imagine", "train", "bench"):
        assert command in result.stdout


def test_vlgor_bench_splits_runs_at_tiny_size_and_writes_json_and_png(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--preset", "tiny", "--seeds", "2", "--algos", "DiscreteBC", "--threads", "1"]
    flags += ["--regimes", "baseline", "wo_behavior", "oracle", "--out", str(tmp_path / "runs")]
    # Kept, so that tiny imagined sets that all fail still give data (dropping is tested below).
    flags += ["--results", str(tmp_path), "--drop-failures", "False"]
    # Two worker processes make the datasets and train the runs.
    result = run(sys.executable, "-m", "vlgor_envs.cli", "bench", "splits", *flags, "--workers", "2")
    assert result.returncode == 0, result.stderr
    first_table = json.loads((tmp_path / "splits_clevr.json").read_text())["figures"]["table"]

    def resume(*more: str) -> str:
        # In this process: the command line ran above, and another start costs 15 s of imports.
        capsys.readouterr()
        splits_benchmark.main(tyro.cli(SplitArgs, args=[*flags, "--resume", *more]))
        return capsys.readouterr().out

    # Resumed, every finished run (and the random policy's two seeds and the expert) is reused.
    assert resume().count("reused the finished run") == 6 + 3
    record = json.loads((tmp_path / "splits_clevr.json").read_text())
    assert record["figures"]["table"] == first_table
    table = record["figures"]["table"]["DiscreteBC"]
    assert set(table) == {"baseline", "wo_behavior", "oracle"}
    assert set(table["baseline"]) == {"train", "rephrasing", "counterfactual", "hard"}
    # Two seeds each, every checkpoint evaluated on every split: the curves the plot draws.
    runs = record["figures"]["runs"]["DiscreteBC"]["wo_behavior"]
    assert len(runs) == 2 and all(len(run["curves"]["hard"]) == 3 for run in runs)
    assert record["figures"]["datasets"]["imagined"]["wo_behavior"][1].endswith("counterfactual-target-v0")
    oracle_ids = record["figures"]["datasets"]["imagined"]["oracle"]
    assert oracle_ids[1] == "vlgor/clevr/splits-tiny-oracle-counterfactual-v0"
    # Every cell: an interval around its IQM, over 2 seeds x 3 checkpoints x 1 episode, by goal kind.
    cell = table["oracle"]["counterfactual"]
    assert cell["ci"][0] <= cell["iqm"] <= cell["ci"][1] and cell["episodes_per_run"] == 3
    assert set(cell["by_kind"]) <= {"motion", "relation"} and sum(cell["by_kind_episodes"].values()) == 6
    # The floor and the ceiling, on the same episodes: the expert succeeds, random mostly not.
    references = record["figures"]["references"]
    assert references["expert"]["train"]["mean"] == 1.0 and references["random"]["train"]["runs"] == 2
    markdown = splits_benchmark.readme_table(record)
    assert (
        markdown.index("| Random |")
        < markdown.index("| Expert |")
        < markdown.index("| DiscreteBC | Baseline |")
    )
    assert "| counterfactual |" in splits_benchmark.kinds_table(record)
    assert (tmp_path / "splits_clevr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "imagined at temperature 0 by the shipped model, failed imagined rollouts kept" in markdown
    # Reused runs keep what they cost, so the record's run time is not this invocation's.
    runs_by_regime = record["figures"]["runs"]["DiscreteBC"].values()
    every_run = [run for seeds in runs_by_regime for run in seeds]
    assert all(r["seconds"] >= r["train_seconds"] > 0 for r in every_run)
    assert record["figures"]["seconds"]["runs"] == pytest.approx(sum(r["seconds"] for r in every_run))
    # A run trained with another learner config (here: image shifts) is trained again, and
    # at another temperature only the baseline runs are reused: imagined data is made anew.
    saved = tmp_path / "runs" / "clevr" / "DiscreteBC" / "baseline" / "seed0" / "benchmark_run.json"
    stale = json.loads(saved.read_text())
    by_worker = stale["result"], (saved.parent / "d3rlpy" / "imitation_loss.csv").read_text()
    stale["key"]["learner"]["encoder_factory"]["params"]["random_shift"] = 4
    saved.write_text(json.dumps(stale))
    warmer = resume("--temperature", "1")
    # the second baseline, the oracle runs and the references do not depend on the imagination
    assert warmer.count("reused the finished run") == 1 + 2 + 3
    assert "DiscreteBC baseline seed 1: reused" in warmer
    retrained = json.loads(saved.read_text())
    assert retrained["key"]["learner"]["encoder_factory"]["params"]["random_shift"] == 0
    # Trained again in this process, the run equals the one a worker process trained.
    loss = (saved.parent / "d3rlpy" / "imitation_loss.csv").read_text()
    assert (retrained["result"]["curves"], loss) == (by_worker[0]["curves"], by_worker[1])
    record = json.loads((tmp_path / "splits_clevr.json").read_text())
    assert record["figures"]["datasets"]["imagined"]["wo_behavior"][1].endswith("target-temperature1-v0")


def test_split_benchmark_regimes_follow_the_env() -> None:
    assert regimes_of(SplitArgs(env="clevr")) == ("baseline", "vlgor", "oracle", "wo_target", "wo_behavior")
    assert regimes_of(SplitArgs(env="metaworld")) == ("baseline", "vlgor", "oracle")
    with pytest.raises(ValueError, match="target edits"):
        regimes_of(SplitArgs(env="metaworld", regimes=("baseline", "wo_behavior")))
    with pytest.raises(ValueError, match="unknown regimes"):
        regimes_of(SplitArgs(env="clevr", regimes=("baseline", "imagined_only")))
    # As in the paper's Table 2, only the first algorithm runs the ablations by default.
    everything = regimes_of(SplitArgs(env="clevr"))
    by_algo = regimes_by_algo(SplitArgs(), ("DiscreteBC", "DiscreteCQL"), everything)
    assert by_algo == {"DiscreteBC": everything, "DiscreteCQL": ("baseline", "vlgor", "oracle")}
    by_algo = regimes_by_algo(SplitArgs(ablate="all"), ("DiscreteBC", "DiscreteCQL"), everything)
    assert by_algo == {"DiscreteBC": everything, "DiscreteCQL": everything}
    with pytest.raises(ValueError, match=r"DiscreteCQL would run none.*--ablate all"):
        regimes_by_algo(SplitArgs(), ("DiscreteBC", "DiscreteCQL"), ("wo_target", "wo_behavior"))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        splits_benchmark.measure(SplitArgs(preset="tiny", workers=0))  # before any data is made


def test_split_benchmark_reuses_imagined_data_only_at_its_temperature() -> None:
    assert (
        imagined_splits_id("clevr", "cpu", "hard", "both", 0.0) == "vlgor/clevr/splits-cpu-imagined-hard-v0"
    )
    assert (
        imagined_splits_id("clevr", "cpu", "counterfactual", "target", 0.5)
        == "vlgor/clevr/splits-cpu-imagined-counterfactual-target-temperature0p5-v0"
    )
    # A dataset under the default name, imagined at another temperature (as before the option);
    # its own preset name keeps it apart from the other tests' datasets.
    dataset_id = imagined_splits_id("clevr", "old", "counterfactual", "both", 0.0)
    imagine(
        ImagineConfig(
            "clevr",
            rollouts=1,
            num_envs=1,
            max_steps=2,
            progress=False,
            dataset_id=dataset_id,
            temperature=1.0,
        )
    )
    with pytest.raises(ValueError, match="imagined at temperature 1, not 0; pass --fresh-data"):
        ensure_imagined("clevr", "old", "counterfactual", "both", 1, seed=0, temperature=0.0, fresh=False)
    assert dataset_id in list_datasets()
    # Asked for temperature 1, the benchmark imagines a dataset of its own beside it.
    made = ensure_imagined("clevr", "old", "counterfactual", "both", 1, seed=0, temperature=1.0, fresh=False)
    assert made == "vlgor/clevr/splits-old-imagined-counterfactual-temperature1-v0"
    assert minari.load_dataset(made).storage.metadata["vlgor"]["temperature"] == 1.0


def test_split_benchmark_keeps_imagined_failures_apart_from_successes_only_data() -> None:
    # CLEVR drops the failed imagined rollouts unless told otherwise; Meta-World keeps them.
    assert drops_failures(SplitArgs(env="clevr")) and not drops_failures(SplitArgs(env="metaworld"))
    assert not drops_failures(SplitArgs(env="clevr", drop_failures=False))
    assert drops_failures(SplitArgs(env="metaworld", drop_failures=True))
    assert (
        imagined_splits_id("clevr", "cpu", "hard", "both", 1.0, drop_failures=True)
        == "vlgor/clevr/splits-cpu-imagined-hard-temperature1-successes-v0"
    )
    # A dataset under the successes-only name that kept its failures (made by hand) is refused.
    dataset_id = imagined_splits_id("clevr", "mixed", "counterfactual", "both", 0.0, drop_failures=True)
    imagine(
        ImagineConfig("clevr", rollouts=1, num_envs=1, max_steps=2, progress=False, dataset_id=dataset_id)
    )
    with pytest.raises(ValueError, match="should hold only the successes; pass --fresh-data"):
        ensure_imagined(
            "clevr", "mixed", "counterfactual", "both", 1, 0, 0.0, fresh=False, drop_failures=True
        )
    assert dataset_id in list_datasets()


def test_split_runs_at_another_ratio_get_folders_of_their_own() -> None:
    assert ratio_tag((1.0, 1.0)) == ""
    assert ratio_tag((1.0, 3.0)) == "-ratio1to3"
    assert ratio_tag((2.0, 0.5)) == "-ratio2to0p5"


def test_split_benchmark_refuses_data_imagined_by_another_model() -> None:
    dataset_id = imagined_splits_id("clevr", "stale", "counterfactual", "both", 0.0)
    imagine(
        ImagineConfig("clevr", rollouts=1, num_envs=1, max_steps=2, progress=False, dataset_id=dataset_id)
    )
    # Made by the shipped model: reused as it is.
    assert ensure_imagined("clevr", "stale", "counterfactual", "both", 1, 0, 0.0, fresh=False) == dataset_id
    storage = minari.load_dataset(dataset_id).storage
    storage.update_metadata({"vlgor": {**storage.metadata["vlgor"], "checkpoint_sha256": "0" * 64}})
    with pytest.raises(ValueError, match=r"by another model than the shipped clevr checkpoint.*--resume"):
        ensure_imagined("clevr", "stale", "counterfactual", "both", 1, 0, 0.0, fresh=False)
    assert dataset_id in list_datasets()


def test_split_table_names_the_model_that_imagined_its_data() -> None:
    shipped = checkpoint_digest(shipped_checkpoint("clevr"))
    real = {"episodes": 1, "imagined_by": None}
    assert imagined_by_note("clevr", {"real": real}) == ""
    fresh = {"real": real, "cf": {"imagined_by": shipped}}
    assert imagined_by_note("clevr", fresh) == " by the shipped model"
    stale = imagined_by_note("clevr", {"cf": {"imagined_by": "ab" * 32}})
    assert "checkpoint abababababab, not the one shipped now" in stale


def test_temperature_table_gives_each_seeds_counterfactual_gain() -> None:
    def run(counterfactual: float) -> dict[str, dict[str, float]]:
        return {"last_five": {"rephrasing": 0.1, "counterfactual": counterfactual, "hard": 0.0}}

    def split_means(counterfactual: float) -> dict[str, dict[str, float]]:
        return {s: {"mean": counterfactual, "std": 0.0} for s in ("rephrasing", "counterfactual")}

    result = {
        "config": {"env": "clevr", "temperature": 1.0, "seeds": 2, "preset": "cpu"},
        "machine": {"cpu_count": 2},
        "git_revision": "abc1234",
        "figures": {
            "runs": {"DiscreteBC": {"baseline": [run(0.2), run(0.3)], "vlgor": [run(0.3), run(0.2)]}},
            "table": {"DiscreteBC": {"baseline": split_means(0.25), "vlgor": split_means(0.25)}},
        },
    }
    table = temperature_table([result])
    row = table.splitlines()[2]
    assert row.startswith("| 1 | 25.0 ± 0.0 |") and row.endswith("| +10 / -10 |")
    # Recorded without its learner settings (as before they were recorded): flagged.
    assert "other d3rlpy settings than the current defaults" in table


def test_split_table_flags_learners_trained_with_other_settings() -> None:
    current = learner_config("clevr", "DiscreteBC", preset_for("clevr", "cpu"))
    assert current["encoder_factory"]["type"] == "vlgor_film" and current["learning_rate"] == 1e-3
    result: dict[str, Any] = {
        "config": {"env": "clevr", "preset": "cpu"},
        "figures": {"table": {"DiscreteBC": {}}, "learners": {"DiscreteBC": current}},
    }
    assert learner_note(result) == ""
    shifted = json.loads(json.dumps(current))
    shifted["encoder_factory"]["params"]["random_shift"] = 4
    result["figures"]["learners"] = {"DiscreteBC": shifted}
    assert "`--resume` trains them again" in learner_note(result)
