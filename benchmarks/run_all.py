"""``make bench``: run every benchmark at its default size and refresh the README's tables."""

from __future__ import annotations

from benchmarks import clevr_expert, clevr_throughput
from benchmarks.report import replace_readme_section


def main() -> None:
    clevr_throughput.main(clevr_throughput.Args())
    clevr_expert.main(clevr_expert.Args())
    refresh_readme()


def refresh_readme() -> None:
    """Rewrite the README's measured tables from ``benchmarks/results/*.json``."""
    replace_readme_section(clevr_throughput.NAME, clevr_throughput.readme_table())
    replace_readme_section(clevr_expert.NAME, clevr_expert.readme_table())


if __name__ == "__main__":
    main()
