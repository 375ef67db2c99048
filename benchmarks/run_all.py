"""``make bench``: run every benchmark at its default size and refresh the README's tables."""

from __future__ import annotations

import dataclasses
import os

from agents import split_benchmark as splits
from benchmarks import (
    clevr_expert,
    clevr_throughput,
    cli_startup,
    compose_pilot,
    data_conversion,
    evaluation_throughput,
    expert_imitability,
    imagination_fidelity,
    imagination_gpu,
    imagination_sample_efficiency,
    imagination_throughput,
    imagined_replay,
    instruction_probe,
    learner_throughput,
    metaworld_expert,
    metaworld_throughput,
    model_card,
    next_action_predictability,
    ray_speedup,
    rollout_fidelity,
    steps_pilot,
    unroll_pilot,
)
from benchmarks.report import RESULTS_DIR, load_result, replace_readme_section


def main() -> None:
    clevr_throughput.main(clevr_throughput.Args())
    clevr_expert.main(clevr_expert.Args())
    metaworld_throughput.main(metaworld_throughput.Args())
    metaworld_expert.main(metaworld_expert.Args())
    data_conversion.main(data_conversion.Args(reuse=False))
    imagination_fidelity.main(imagination_fidelity.Args())
    rollout_fidelity.main(rollout_fidelity.Args())
    imagination_throughput.main(imagination_throughput.Args())
    next_action_predictability.main(next_action_predictability.Args())
    evaluation_throughput.main(evaluation_throughput.Args())
    instruction_probe.main(instruction_probe.Args())
    learner_throughput.main(learner_throughput.Args())
    cli_startup.main(cli_startup.Args())
    ray_speedup.main(ray_speedup.Args())
    model_card.main()
    # One one-thread worker per core (up to four): on two cores this beats one two-thread process.
    workers = min(4, os.cpu_count() or 1)
    for env in ("clevr", "metaworld"):
        splits.main(splits.Args(env=env, preset="cpu", workers=workers, results=RESULTS_DIR))
    # The CLEVR table's runs again on the hard split, one clause at a time.
    compose_pilot.main(compose_pilot.Args())
    splits.main(dataclasses.replace(splits.keep_failures_args(), workers=workers, results=RESULTS_DIR))
    # Replays the CLEVR datasets the two runs above imagined.
    imagined_replay.main(imagined_replay.Args())
    for temperature in splits.TEMPERATURES:
        splits.main(
            dataclasses.replace(splits.temperature_args(temperature), workers=workers, results=RESULTS_DIR)
        )
    refresh_readme()


def refresh_readme() -> None:
    """Rewrite the README's measured tables from ``benchmarks/results/*.json``."""
    for module in (
        clevr_throughput,
        clevr_expert,
        metaworld_throughput,
        metaworld_expert,
        data_conversion,
        imagination_fidelity,
        rollout_fidelity,
        imagination_throughput,
        next_action_predictability,
        evaluation_throughput,
        imagined_replay,
        instruction_probe,
        learner_throughput,
        cli_startup,
        ray_speedup,
        expert_imitability,  # a pilot, run by hand (about 25 minutes)
        steps_pilot,  # a pilot, run by hand (about 20 minutes a row)
        compose_pilot,
    ):
        replace_readme_section(module.NAME, module.readme_table())
    # A pilot run by hand (about 90 minutes on one core beside other work).
    if (RESULTS_DIR / f"{unroll_pilot.NAME}.json").is_file():
        replace_readme_section(unroll_pilot.NAME, unroll_pilot.readme_table())
    # Measured on a lent GPU (tools/device), so `main` does not run it.
    if (RESULTS_DIR / f"{imagination_gpu.NAME}.json").is_file():
        replace_readme_section(imagination_gpu.NAME, imagination_gpu.readme_table())
    # Needs the pretrained checkpoint of the model card's commands, so `main` does not run it.
    if (RESULTS_DIR / f"{imagination_sample_efficiency.NAME}.json").is_file():
        replace_readme_section(
            imagination_sample_efficiency.NAME, imagination_sample_efficiency.readme_table()
        )
    for name in (f"{splits.NAME}_clevr", f"{splits.NAME}_metaworld", f"{splits.KEEP_FAILURES_NAME}_clevr"):
        # A result measured before the Random/Expert rows and intervals keeps its README text.
        if (RESULTS_DIR / f"{name}.json").is_file() and "references" in load_result(name)["figures"]:
            replace_readme_section(name, splits.readme_table(load_result(name)))
            if name.startswith(f"{splits.NAME}_"):
                kinds = name.replace(splits.NAME, splits.KINDS_NAME)
                replace_readme_section(kinds, splits.kinds_table(load_result(name)))
    names = [f"{splits.TEMPERATURE_NAME}{t:g}_clevr" for t in splits.TEMPERATURES]
    if all((RESULTS_DIR / f"{name}.json").is_file() for name in names):
        replace_readme_section(
            f"{splits.TEMPERATURE_NAME}_clevr", splits.temperature_table([load_result(n) for n in names])
        )


if __name__ == "__main__":
    main()
